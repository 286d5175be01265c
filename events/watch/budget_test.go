package watch_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/watch"
)

// folders makes n folders in the workspace of e, a file in each.
func (e *env) folders(n int) {
	e.t.Helper()
	for i := range n {
		d := fmt.Sprintf("d%02d", i)
		if err := os.Mkdir(e.path(d), 0o755); err != nil {
			e.t.Fatal(err)
		}
		e.write(d+"/f.txt", d)
	}
}

// TestBudget_InotifyWatches: a workspace with more folders than the
// inotify watches left is polled, with one warning that names the sysctl
// (not one per folder); one within them is watched with notifications,
// takes its folders from the Budget and gives them back when it stops.
func TestBudget_InotifyWatches(t *testing.T) {
	t.Run("beyond", func(t *testing.T) {
		e := newEnv(t)
		e.folders(5) // 6 folders with the workspace's
		b := watch.BudgetOf(5, false)
		var logs logBuffer
		w := e.start(watch.Options{Budget: b, PollInterval: time.Hour, Logger: logs.logger()})
		x, _ := w.Watching()
		if x.Kind != watch.Poll || !strings.Contains(x.Reason, "needs over 5 inotify watches, more than the 5 left") {
			t.Errorf("Watching() = %+v, want poll for want of inotify watches", x)
		}
		warns := logs.lines("level=WARN")
		if len(warns) != 1 || !strings.Contains(warns[0], "fs.inotify.max_user_watches = 5") ||
			!strings.Contains(warns[0], "sudo sysctl fs.inotify.max_user_watches=") || !strings.Contains(warns[0], "watcher=poll") {
			t.Errorf("warnings: %q, want one naming fs.inotify.max_user_watches and how to raise it", warns)
		}
		if b.Left() != 5 {
			t.Errorf("Budget left = %d while polling, want 5 (nothing taken)", b.Left())
		}
		e.write("d03/g.txt", "g")
		e.round()
		e.waitEvents("d03/g.txt created", func(evs []events.Event) bool { return len(evs) == 1 && evs[0].Path == "d03/g.txt" })
	})
	t.Run("within", func(t *testing.T) {
		e := newEnv(t)
		e.folders(5)
		b := watch.BudgetOf(10, false)
		var logs logBuffer
		w := e.start(watch.Options{Budget: b, PollInterval: time.Hour, Logger: logs.logger()})
		if x, _ := w.Watching(); x.Kind != watch.Notify {
			t.Errorf("Watching() = %+v, want notify", x)
		}
		if got := logs.lines("level=WARN"); len(got) != 0 {
			t.Errorf("warnings: %q, want none", got)
		}
		if b.Left() != 4 {
			t.Errorf("Budget left = %d while watching 6 folders of 10, want 4", b.Left())
		}
		e.stop()
		if b.Left() != 10 {
			t.Errorf("Budget left = %d once stopped, want 10", b.Left())
		}
	})
}

// TestBudget_Shared: the Watchers of a process share one Budget: the
// second workspace that does not fit in what the first left is polled.
func TestBudget_Shared(t *testing.T) {
	b := watch.BudgetOf(10, false)
	first, second := newEnv(t), newEnv(t)
	first.folders(5)
	second.folders(5)
	w1 := first.start(watch.Options{Budget: b, PollInterval: time.Hour})
	w2 := second.start(watch.Options{Budget: b, PollInterval: time.Hour})
	x1, _ := w1.Watching()
	x2, _ := w2.Watching()
	if x1.Kind != watch.Notify || x2.Kind != watch.Poll || !strings.Contains(x2.Reason, "more than the 4 left") {
		t.Errorf("watching %+v and %+v, want the first notified and the second polled", x1, x2)
	}
}

// TestBudget_Descriptors: with kqueue every file takes a descriptor too:
// the Budget counts the workspace folder and every entry of every folder.
func TestBudget_Descriptors(t *testing.T) {
	e := newEnv(t)
	e.folders(10) // 1 + 10 folders + 10 files = 21 descriptors
	for _, tt := range []struct {
		budget int
		kind   watch.Kind
	}{{20, watch.Poll}, {21, watch.Notify}} {
		b := watch.BudgetOf(tt.budget, true)
		var logs logBuffer
		w := e.start(watch.Options{Budget: b, PollInterval: time.Hour, Logger: logs.logger()})
		if x, _ := w.Watching(); x.Kind != tt.kind {
			t.Errorf("with %d descriptors: Watching() = %+v, want %s", tt.budget, x, tt.kind)
		}
		if tt.kind == watch.Poll {
			if warns := logs.lines("level=WARN"); len(warns) != 1 || !strings.Contains(warns[0], "kqueue opens one per watched file and folder") || !strings.Contains(warns[0], "ulimit -n") {
				t.Errorf("warnings: %q, want one saying kqueue's descriptors ran short and how to raise the limit", warns)
			}
		}
		e.stop()
	}
}
