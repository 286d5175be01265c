package tools

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/lock"
	"github.com/filecast/filecast/events/wire"
	"github.com/filecast/filecast/events/workspace"
)

// Limits of lock and write_file.
const (
	DefaultTTL   = 60 * time.Second
	MaxTTL       = 24 * time.Hour
	MaxLockWait  = 5 * time.Minute
	MaxWriteSize = events.MaxReadSize
	// releaseTimeout bounds releasing a lock taken by a session that ended
	// while the lock call ran.
	releaseTimeout = 5 * time.Second
)

// LockArgs is the input of lock.
type LockArgs struct {
	Path       string `json:"path"`
	Workspace  string `json:"workspace,omitempty"`
	TTLSeconds int    `json:"ttl_seconds,omitempty"`
	Mode       string `json:"mode,omitempty"`
	WaitMS     int    `json:"wait_ms,omitempty"`
	LockToken  string `json:"lock_token,omitempty"`
}

// LockResult is the output of lock.
type LockResult struct {
	LockToken    string `json:"lock_token"`
	FencingToken uint64 `json:"fencing_token"`
	ExpiresAt    string `json:"expires_at"` // RFC 3339, UTC
	Holder       string `json:"holder"`
	Mode         string `json:"mode"`
	Workspace    string `json:"workspace"`
	Path         string `json:"path"`
}

// UnlockArgs is the input of unlock.
type UnlockArgs struct {
	Path      string `json:"path"`
	Workspace string `json:"workspace,omitempty"`
	LockToken string `json:"lock_token"`
}

// UnlockResult is the output of unlock.
type UnlockResult struct {
	Released bool `json:"released"`
}

// WriteFileArgs is the input of write_file.
type WriteFileArgs struct {
	Path      string `json:"path"`
	Workspace string `json:"workspace,omitempty"`
	Content   string `json:"content"`
	Encoding  string `json:"encoding,omitempty"`
	LockToken string `json:"lock_token,omitempty"`
}

// WriteFileResult is the output of write_file.
type WriteFileResult struct {
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Seq       uint64 `json:"seq"`
	Unchanged bool   `json:"unchanged"`
	Workspace string `json:"workspace"`
	Path      string `json:"path"`
}

const (
	lockDesc = "Lock a file before you edit it so that no other agent changes it meanwhile, or take a shared lock so that nobody, you included, writes it while you read. The file need not exist. " +
		"Returns lock_token (for write_file and unlock; lock again with it to refresh: list_changes brings lock.expiring at half time), fencing_token, expires_at, holder, mode. " +
		"Errors: held by someone else (named, with the expiry): lock again with wait_ms, or do other work. " +
		"A lock_token that holds nothing: your lock expired; lock again, read the file again."
	unlockDesc = "Release your lock as soon as your edit is written. Returns released. " +
		"Error: the lock_token holds no lock on that path (wrong, expired or released): nothing to release."
	writeFileDesc = "Write a whole file through filecast, so that locks apply and subscribers hear of it. Missing folders are created. " +
		"Returns size, sha256 and seq of the change (unchanged and seq 0 when the content was the same). " +
		"Errors: locked by another holder, or anyone holds a shared lock: lock it yourself with wait_ms, read it again, write with lock_token. " +
		"Your lock expired or was taken over: lock again, read again, retry."
	listLocksDesc = "See who holds locks before you lock or edit. Returns locks: path, holder, mode, fencing_token, expires_at."
)

// lockTools returns lock, unlock, write_file and list_locks.
func (t *toolset) lockTools(readOnly []mcp.ToolOption) []toolDef {
	mutating := []mcp.ToolOption{mcp.WithReadOnlyHintAnnotation(false), mcp.WithOpenWorldHintAnnotation(false)}
	return []toolDef{
		{"lock", lockDesc, lockInput, lockOutput, mcp.NewTypedToolHandler(t.lock),
			append([]mcp.ToolOption{mcp.WithIdempotentHintAnnotation(false), mcp.WithDestructiveHintAnnotation(false)}, mutating...)},
		{"unlock", unlockDesc, unlockInput, unlockOutput, mcp.NewTypedToolHandler(t.unlock),
			append([]mcp.ToolOption{mcp.WithIdempotentHintAnnotation(false), mcp.WithDestructiveHintAnnotation(false)}, mutating...)},
		{"write_file", writeFileDesc, writeFileInput, writeFileOutput, mcp.NewTypedToolHandler(t.writeFile),
			append([]mcp.ToolOption{mcp.WithIdempotentHintAnnotation(true), mcp.WithDestructiveHintAnnotation(true)}, mutating...)},
		{"list_locks", listLocksDesc, listLocksInput, listLocksOutput, mcp.NewTypedToolHandler(t.listLocks),
			append([]mcp.ToolOption{mcp.WithIdempotentHintAnnotation(true)}, readOnly...)},
	}
}

func (t *toolset) lock(ctx context.Context, _ mcp.CallToolRequest, args LockArgs) (*mcp.CallToolResult, error) {
	sess, err := t.opts.Session(ctx)
	if err != nil {
		return noSession(err), nil
	}
	ws, p, bad := t.target(ctx, args.Workspace, args.Path)
	if bad != nil {
		return bad, nil
	}
	// The schema bounds ttl_seconds, mode and wait_ms; zero means omitted.
	ttl := DefaultTTL
	if args.TTLSeconds != 0 {
		ttl = time.Duration(args.TTLSeconds) * time.Second
	}
	mode := args.Mode
	if mode == "" && args.LockToken == "" {
		mode = events.LockExclusive
	}
	wait := time.Duration(args.WaitMS) * time.Millisecond
	lease, err := t.locker.Lock(ctx, events.LockRequest{
		Workspace: ws, Path: p, Holder: sess.Holder, Mode: mode, TTL: ttl, Wait: wait, Token: args.LockToken,
	})
	if err != nil {
		return t.lockFailure(sess, ws, p, args, err), nil
	}
	lease.Workspace = cmp.Or(lease.Workspace, ws)
	lease.Path = cmp.Or(lease.Path, p)
	lease.Holder = cmp.Or(lease.Holder, sess.Holder)
	lease.Mode = cmp.Or(lease.Mode, mode, events.LockExclusive)
	lease.Token = cmp.Or(lease.Token, args.LockToken)
	if sess.Leases != nil && !sess.Leases.Add(lease) {
		// The session ended while the lock was being taken: nobody would
		// release it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if err := t.locker.Unlock(rctx, lease.Workspace, lease.Path, lease.Token); err != nil {
			t.log.Debug("release lock of an ended session", "workspace", lease.Workspace, "path", lease.Path, "err", err)
		}
		return noSession(ErrNoSession), nil
	}
	return result(LockResult{
		LockToken:    lease.Token,
		FencingToken: lease.FencingToken,
		ExpiresAt:    lease.ExpiresAt.UTC().Format(time.RFC3339),
		Holder:       lease.Holder,
		Mode:         lease.Mode,
		Workspace:    lease.Workspace,
		Path:         lease.Path,
	}), nil
}

func (t *toolset) unlock(ctx context.Context, _ mcp.CallToolRequest, args UnlockArgs) (*mcp.CallToolResult, error) {
	sess, err := t.opts.Session(ctx)
	if err != nil {
		return noSession(err), nil
	}
	ws, p, bad := t.target(ctx, args.Workspace, args.Path)
	if bad != nil {
		return bad, nil
	}
	err = t.locker.Unlock(ctx, ws, p, args.LockToken)
	switch {
	case err == nil:
	case errors.Is(err, events.ErrNotHolder):
		if sess.Leases != nil {
			sess.Leases.Remove(ws, p, args.LockToken)
		}
		return mcp.NewToolResultError(fmt.Sprintf("the lock_token does not hold the lock on %q in workspace %s: it is the wrong token for this path, or the lock already expired or was released. There is nothing to release; check the path and token you passed.",
			p, ws)), nil
	default:
		return t.lockingFailure("unlock", err), nil
	}
	if sess.Leases != nil {
		sess.Leases.Remove(ws, p, args.LockToken)
	}
	return result(UnlockResult{Released: true}), nil
}

func (t *toolset) writeFile(ctx context.Context, _ mcp.CallToolRequest, args WriteFileArgs) (*mcp.CallToolResult, error) {
	sess, err := t.opts.Session(ctx)
	if err != nil {
		return noSession(err), nil
	}
	ws, p, bad := t.target(ctx, args.Workspace, args.Path)
	if bad != nil {
		return bad, nil
	}
	var content []byte
	switch args.Encoding {
	case "", "text":
		if len(args.Content) > t.opts.MaxWriteSize {
			return t.tooLarge(len(args.Content)), nil
		}
		content = []byte(args.Content)
	case "base64":
		if n := base64.StdEncoding.DecodedLen(len(args.Content)); n > t.opts.MaxWriteSize+3 {
			return t.tooLarge(n), nil
		}
		content, err = base64.StdEncoding.DecodeString(args.Content)
		if err != nil {
			return mcp.NewToolResultError("content is not valid base64: encode the bytes with standard base64 (RFC 4648, with padding), or use encoding \"text\" for text."), nil
		}
		if len(content) > t.opts.MaxWriteSize {
			return t.tooLarge(len(content)), nil
		}
	}
	ev, err := t.locker.WriteFile(ctx, events.WriteRequest{
		Workspace: ws, Path: p, Content: content, LockToken: args.LockToken, Actor: Actor(sess.Holder),
	})
	if err != nil {
		return t.writeFailure(sess, ws, p, args, err), nil
	}
	sum := sha256.Sum256(content)
	return result(WriteFileResult{
		Size:      int64(len(content)),
		SHA256:    hex.EncodeToString(sum[:]),
		Seq:       ev.Seq,
		Unchanged: ev.Seq == 0,
		Workspace: ws,
		Path:      p,
	}), nil
}

// Actor is the actor of the writes of a session whose lock holder name is
// holder: "mcp:" and the holder ("mcp:claude-code#3f2a"), so that a
// session's writes and locks name it the same way.
func Actor(holder string) string { return "mcp:" + cmp.Or(holder, "anonymous") }

// target resolves the workspace argument (optional when the server serves
// exactly one) and cleans the path.
func (t *toolset) target(ctx context.Context, ws, path string) (string, string, *mcp.CallToolResult) {
	names, _, err := t.workspaces(ctx)
	if err != nil {
		return "", "", t.failure("workspaces", err)
	}
	return resolve(names, ws, path)
}

// resolve picks the workspace argument among the names served (it may be
// omitted when there is one) and cleans the path.
func resolve(names []string, ws, path string) (string, string, *mcp.CallToolResult) {
	ws, bad := pick(names, ws, "the path is in")
	if bad != nil {
		return "", "", bad
	}
	p, err := workspace.Clean(path)
	if err != nil {
		return "", "", badPath(err)
	}
	return ws, p, nil
}

// pick resolves the workspace argument among the names served: it may be
// omitted when there is one. what says what the workspace holds, for the
// error when it is missing.
func pick(names []string, ws, what string) (string, *mcp.CallToolResult) {
	switch {
	case ws == "" && len(names) == 1:
		return names[0], nil
	case ws == "":
		return "", mcp.NewToolResultError(fmt.Sprintf("workspace is required: this server serves several workspaces, %s; pass the one %s as workspace.",
			list(names, "and"), what))
	case !slices.Contains(names, ws):
		return "", mcp.NewToolResultError(fmt.Sprintf("unknown workspace %q: use one of %s.", ws, strings.Join(names, ", ")))
	}
	return ws, nil
}

// reread says how to read a file's current content again.
const reread = "with read_file"

// lockedBy describes a lock that refused a request: "(exclusive) by X until T".
func lockedBy(le *events.LockError) string {
	return fmt.Sprintf("(%s) by %s until %s", cmp.Or(le.Mode, events.LockExclusive), le.Holder, le.ExpiresAt.UTC().Format(time.RFC3339))
}

// holds reports whether holder is one of the holders a LockError names
// (several, joined by ", ", for a shared lock).
func holds(le *events.LockError, holder string) bool {
	return holder != "" && slices.Contains(strings.Split(le.Holder, ", "), holder)
}

// lockFailure explains why lock failed and what to do next.
func (t *toolset) lockFailure(sess Session, ws, p string, args LockArgs, err error) *mcp.CallToolResult {
	var le *events.LockError
	switch {
	case errors.As(err, &le) && errors.Is(err, events.ErrLockConflict):
		var b strings.Builder
		fmt.Fprintf(&b, "%q in workspace %s is locked", p, ws)
		if le.Holder != "" {
			b.WriteString(" " + lockedBy(le))
		}
		b.WriteString(". ")
		if args.WaitMS > 0 {
			fmt.Fprintf(&b, "It was still held after waiting %d ms. ", args.WaitMS)
		}
		if holds(le, sess.Holder) {
			b.WriteString("That holder is this session: lock again with the lock_token you got for it to refresh it, or unlock it first.")
		} else {
			b.WriteString("Call lock again with wait_ms (for example 30000) to wait until it is released or expires, or work on something else meanwhile.")
		}
		return mcp.NewToolResultError(b.String())
	case errors.Is(err, events.ErrLockConflict):
		return mcp.NewToolResultError(plain(err) + ". Call lock again with wait_ms (for example 30000) to wait for it to be released.")
	case errors.Is(err, events.ErrNotHolder):
		return mcp.NewToolResultError(fmt.Sprintf("the lock_token holds no lock on %q in workspace %s: it is wrong, or the lock expired or was released. Call lock without lock_token to take the lock again, then read the file again (%s) before you write: someone else may have changed it.",
			p, ws, reread))
	case errors.Is(err, lock.ErrBadRequest), errors.Is(err, wire.ErrBadRequest):
		// The request itself is wrong, for example a refresh in another
		// mode: say what, without the operations it went through.
		return mcp.NewToolResultError(strings.TrimSuffix(after(err.Error(), "invalid request"), ".") + ". Nothing was changed.")
	}
	return t.lockingFailure("lock", err)
}

// writeFailure explains why write_file failed and what to do next.
func (t *toolset) writeFailure(sess Session, ws, p string, args WriteFileArgs, err error) *mcp.CallToolResult {
	var le *events.LockError
	hasLE := errors.As(err, &le)
	switch {
	case errors.Is(err, events.ErrLocked) && hasLE && le.Mode == events.LockShared:
		var b strings.Builder
		fmt.Fprintf(&b, "%q in workspace %s is locked %s. A shared lock is a read lock: nobody writes the file through filecast while one is held, its holders included, so the write was refused and nothing changed. ",
			p, ws, lockedBy(le))
		if holds(le, sess.Holder) {
			b.WriteString("This session holds one of those shared locks: unlock it, take the exclusive lock (lock with mode exclusive and wait_ms), then write with its lock_token.")
		} else {
			b.WriteString("Take the exclusive lock (lock with mode exclusive and wait_ms, for example 30000) to wait until the shared locks are released, then write with its lock_token.")
		}
		return mcp.NewToolResultError(b.String())
	case errors.Is(err, events.ErrLocked):
		var b strings.Builder
		fmt.Fprintf(&b, "%q in workspace %s is locked", p, ws)
		if hasLE && le.Holder != "" {
			b.WriteString(" " + lockedBy(le))
		}
		b.WriteString("; the write was refused and nothing changed. ")
		if hasLE && holds(le, sess.Holder) {
			b.WriteString("That holder is this session: pass the lock_token of that lock to write_file.")
		} else {
			fmt.Fprintf(&b, "Call lock with wait_ms (for example 30000) to wait for the lock, read the file again once you hold it (%s), then call write_file with your lock_token.", reread)
		}
		return mcp.NewToolResultError(b.String())
	case errors.Is(err, events.ErrStale), errors.Is(err, events.ErrNotHolder) && args.LockToken != "":
		var b strings.Builder
		fmt.Fprintf(&b, "your lock on %q in workspace %s is no longer current: it expired, was released or was taken over", p, ws)
		if hasLE && le.Holder != "" && !holds(le, sess.Holder) {
			fmt.Fprintf(&b, "; it is now held %s", lockedBy(le))
		}
		fmt.Fprintf(&b, ". The write was refused and nothing changed. Call lock again, read the file again (%s), then retry write_file with the new lock_token.", reread)
		return mcp.NewToolResultError(b.String())
	case errors.Is(err, events.ErrTooLarge):
		return t.tooLarge(len(args.Content))
	}
	return t.lockingFailure("write_file", err)
}

// lockingFailure handles the errors lock, unlock and write_file share.
func (t *toolset) lockingFailure(tool string, err error) *mcp.CallToolResult {
	switch {
	case errors.Is(err, events.ErrBadPath), errors.Is(err, events.ErrVCSInternal):
		return badPath(err)
	case errors.Is(err, events.ErrNotFound):
		return mcp.NewToolResultError(plain(err) + ". Check the path: a folder on the way may be a file.")
	}
	return t.failure(tool, err)
}

func badPath(err error) *mcp.CallToolResult {
	msg := plain(err) + "."
	if !errors.Is(err, events.ErrVCSInternal) && !strings.Contains(msg, "relative to the workspace root") {
		msg += " Give a path relative to the workspace root that stays inside it, for example \"src/main.go\"."
	}
	return mcp.NewToolResultError(msg)
}

func (t *toolset) tooLarge(n int) *mcp.CallToolResult {
	return mcp.NewToolResultError(fmt.Sprintf("content is too large, about %d bytes: write_file takes at most %d bytes. Split the file or write it another way.", n, t.opts.MaxWriteSize))
}
