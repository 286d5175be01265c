package webhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events/webhook"
)

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		in   string
		want []time.Duration
		err  bool
	}{
		{in: webhook.DefaultScheduleText, want: []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute,
			2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}},
		{in: "100ms,200ms,400ms", want: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}},
		{in: " 1s , 1m30s ", want: []time.Duration{time.Second, 90 * time.Second}},
		{in: "", err: true},
		{in: "   ", err: true},
		{in: "5s,", err: true},
		{in: "5", err: true},
		{in: "-5s", err: true},
		{in: "0s", err: true},
		{in: "500us", err: true},
		{in: "200h", err: true},
		{in: "1d", err: true},
		{in: strings.Repeat("1s,", 50) + "1s", err: true},
	}
	for _, tt := range tests {
		got, err := webhook.ParseSchedule(tt.in)
		if tt.err {
			if !errors.Is(err, webhook.ErrBadSchedule) {
				t.Errorf("ParseSchedule(%q) = %v, %v; want ErrBadSchedule", tt.in, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseSchedule(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	if diff := cmp.Diff(tests[0].want, webhook.DefaultSchedule()); diff != "" {
		t.Errorf("DefaultSchedule (-want +got):\n%s", diff)
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{webhook.DefaultScheduleText, "100ms,200ms", "", ",", "1h1m1s1ms", "5s,,5s", "9999999999h", "1e3s", "-0s", " 1s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := webhook.ParseSchedule(s)
		if err != nil {
			if !errors.Is(err, webhook.ErrBadSchedule) {
				t.Fatalf("error %v does not match ErrBadSchedule", err)
			}
			return
		}
		if len(got) == 0 || len(got) > webhook.MaxScheduleLen {
			t.Fatalf("%d entries", len(got))
		}
		parts := make([]string, len(got))
		for i, d := range got {
			if d < webhook.MinDelay || d > webhook.MaxDelay {
				t.Fatalf("entry %v out of range", d)
			}
			parts[i] = d.String()
		}
		again, err := webhook.ParseSchedule(strings.Join(parts, ","))
		if err != nil || !cmp.Equal(got, again) {
			t.Fatalf("round trip of %v: %v, %v", got, again, err)
		}
	})
}
