// Package daemon gives a data folder one hub, shared by every filecast
// process that uses the folder, and guards the folder so that only one
// process at a time opens its event log, locks and index.
//
// The guard is an advisory lock (flock) on the file LOCK in the data folder;
// the kernel drops it when the owner exits, however it exits, so a killed
// owner never leaves a stale lock behind:
//
//	l, err := daemon.Acquire(dataDir)
//	if err != nil { return err } // *daemon.BusyError names the owner's PID
//	defer l.Release()
//
// A [Shared] hub builds on it, as watchman and the gopls daemon do: dial
// the owner's unix socket (hub.sock in the data folder) first; if nobody
// answers, take the flock and become the owner; if the flock is busy, the
// owner is starting, so dial again. Clients keep a request open to the
// owner and race for the flock the moment it goes away; the winner opens
// the log and the locks (they live in the data folder) and the others
// connect to it. Calls are retried on the next owner where that is safe;
// a subscription ends with its owner, and events.Follow resumes it on the
// next one after the last delivered seq:
//
//	sh, err := daemon.NewShared(daemon.Options{
//		Dir:     dataDir,
//		Become:  startEmbeddedStack, // returns *daemon.Owner
//		Connect: func(socket string) (daemon.Backend, error) { ... daemon.Transport(socket) ... },
//	})
//	go sh.Run(ctx) // owned by the caller; returns when ctx is done
//	<-sh.Ready()
//	err = events.Follow(ctx, sh, "docs", cursor, fn, events.FollowOptions{}) // across changes of owner
//
// Unix sockets are limited to about 100 bytes of path, so the data folder's
// path must stay below about 90 bytes.
package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/gofrs/flock"
)

// ErrBusy reports that another process owns the data folder.
var ErrBusy = errors.New("daemon: data folder in use")

// BusyError is returned by Acquire when another process holds the lock.
type BusyError struct {
	Dir string
	PID int // 0 when the owner could not be read
}

func (e *BusyError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("data folder %s is in use by another filecast process; stop it or pass a different --data", e.Dir)
	}
	return fmt.Sprintf("data folder %s is in use by filecast process %d; stop it or pass a different --data", e.Dir, e.PID)
}

// Unwrap returns ErrBusy.
func (e *BusyError) Unwrap() error { return ErrBusy }

// Lock is a held data-folder lock.
type Lock struct {
	fl  *flock.Flock
	pid string
}

// Acquire creates dir if needed and takes its lock without waiting.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	fl := flock.New(filepath.Join(dir, LockName))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock data folder %s: %w", dir, err)
	}
	pidFile := filepath.Join(dir, "PID")
	if !ok {
		return nil, &BusyError{Dir: dir, PID: OwnerPID(dir)}
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		if !noSpace(err) {
			_ = fl.Unlock()
			return nil, fmt.Errorf("write pid file: %w", err)
		}
		// A full disk must not keep the hub from starting (it serves reads
		// then); the PID file only names the owner in errors.
		_ = os.Remove(pidFile)
	}
	return &Lock{fl: fl, pid: pidFile}, nil
}

// noSpace reports whether err says the disk (or the user's quota) is full.
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// OwnerPID returns the PID the owner of the data folder dir wrote, or 0
// when there is none or it cannot be read.
func OwnerPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "PID"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Release removes the PID file and drops the lock. It is safe to call twice.
func (l *Lock) Release() error {
	if l == nil || l.fl == nil {
		return nil
	}
	_ = os.Remove(l.pid)
	err := l.fl.Unlock()
	l.fl = nil
	return err
}
