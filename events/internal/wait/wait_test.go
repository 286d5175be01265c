package wait_test

import (
	"context"
	"testing"
	"time"

	"github.com/filecast/filecast/events/internal/wait"
)

func TestSleep(t *testing.T) {
	if !wait.Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep with a live context reported that it was cut short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if wait.Sleep(ctx, time.Hour) {
		t.Error("Sleep with a cancelled context reported that the hour passed")
	}
	if time.Since(start) > time.Minute {
		t.Error("Sleep did not return when its context was done")
	}
}
