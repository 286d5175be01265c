package lock_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/lock"
)

// BenchmarkManager_Holders measures the annotation of a file event: a
// lookup in the mirror of many locks.
func BenchmarkManager_Holders(b *testing.B) {
	m, _, _ := setup(b, lock.Options{})
	for i := range 100 {
		acquire(b, m, req("h", fmt.Sprintf("dir/file%d.go", i), events.LockShared, time.Minute))
	}
	l := acquire(b, m, req("h", "dir/hot.go", "", time.Minute))
	b.Run("locked", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if hs := m.Holders("docs", "dir/hot.go"); len(hs) != 1 {
				b.Fatal(hs)
			}
		}
	})
	b.Run("free", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if hs := m.Holders("docs", "dir/free.go"); len(hs) != 0 {
				b.Fatal(hs)
			}
		}
	})
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Check("docs", "dir/hot.go", l.Token, l.FencingToken); err != nil {
				b.Fatal(err)
			}
		}
	})
}
