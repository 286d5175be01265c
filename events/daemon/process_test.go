package daemon_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events/daemon"
	"github.com/filecast/filecast/events/eventstest"
)

// childEnv makes the test binary run as the owning process of
// TestShared_OwnerKilled: "DATA|WORKSPACE".
const childEnv = "FILECAST_SHARED_CHILD"

// runChild owns the hub and appends events on command ("append N" on
// stdin answers "appended SEQ") until it is killed or stdin closes.
func runChild(t *testing.T, spec string) {
	data, wsDir, _ := strings.Cut(spec, "|")
	e := envAt(t, data, wsDir)
	sh, err := daemon.NewShared(e.options("child"))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = sh.Run(ctx) }()
	select {
	case <-sh.Ready():
	case <-time.After(10 * time.Second):
		fmt.Println("error not ready")
		os.Exit(2)
	}
	if !sh.IsOwner() {
		fmt.Println("error not the owner")
		os.Exit(2)
	}
	fmt.Println("owner", os.Getpid())
	next := 1
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		n, err := strconv.Atoi(strings.TrimPrefix(in.Text(), "append "))
		if err != nil {
			fmt.Println("error", err)
			continue
		}
		seq, err := appendN(ctx, e.hubs.last(), next, n)
		if err != nil {
			fmt.Println("error", err)
			continue
		}
		next += n
		fmt.Println("appended", seq)
	}
	os.Exit(0)
}

func TestShared_OwnerKilled(t *testing.T) {
	if spec := os.Getenv(childEnv); spec != "" {
		runChild(t, spec)
		return
	}
	root := t.TempDir()
	data, wsDir := filepath.Join(root, "data"), filepath.Join(root, "ws")
	e := envAt(t, data, wsDir)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()

	cmd := exec.Command(os.Args[0], "-test.run=^TestShared_OwnerKilled$")
	cmd.Env = append(os.Environ(), childEnv+"="+data+"|"+wsDir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	expect := func(prefix string) string {
		t.Helper()
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("child exited while we waited for %q", prefix)
				}
				if strings.HasPrefix(line, "error") {
					t.Fatalf("child: %s", line)
				}
				if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
					return rest
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("child did not say %q", prefix)
			}
		}
	}
	send := func(n int) string {
		t.Helper()
		if _, err := io.WriteString(stdin, fmt.Sprintf("append %d\n", n)); err != nil {
			t.Fatal(err)
		}
		return expect("appended")
	}
	if pid := expect("owner"); pid != strconv.Itoa(cmd.Process.Pid) {
		t.Fatalf("owner pid %s, want %d", pid, cmd.Process.Pid)
	}

	p := start(t, e.options("parent"))
	p.ready(t)
	if p.IsOwner() {
		t.Fatal("the parent owns the hub while the child does")
	}
	c := subscribe(ctx, p, 0)
	if got := send(3); got != "3" {
		t.Fatalf("child appended up to %s, want 3", got)
	}
	c.waitFor(t, 3, 5*time.Second)
	// Appended and stored, perhaps not delivered yet: the kill must not lose them.
	if got := send(2); got != "5" {
		t.Fatalf("child appended up to %s, want 5", got)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed := time.Now()

	eventstest.Within(t, 10*time.Second, "parent takes over from the killed owner", p.IsOwner)
	t.Logf("takeover %v after the kill", time.Since(killed))
	h := e.hubs.last()
	if h == nil {
		t.Fatal("the parent did not start a hub")
	}
	if _, err := appendN(ctx, h, 6, 3); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, 8, 5*time.Second)
	if diff := cmp.Diff(seqs(1, 8), c.got()); diff != "" {
		t.Fatalf("delivered seqs (-want +got):\n%s", diff)
	}
	fi, err := os.Lstat(filepath.Join(data, daemon.SocketName))
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket after takeover: %v, %v", fi, err)
	}
}
