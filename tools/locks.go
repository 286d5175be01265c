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
	"github.com/mark3labs/mcp-go/server"

	"github.com/filecast/filecast/events"
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
	lockDesc = "Take an expiring lock on a file before you edit it, so that no other agent changes it meanwhile (or a shared lock to keep it from changing while you read it). " +
		"The path need not exist yet. Pass the returned lock_token to write_file and to unlock when done; lock again with lock_token to refresh a lock that is about to expire. " +
		"Returns lock_token, fencing_token, expires_at, holder and mode. " +
		"Errors: if someone else holds the lock, the error names them and when their lock expires: call lock again with wait_ms to wait for it, or work on something else. " +
		"A lock_token that no longer holds the lock means your lock expired or was released: take a new one and read the file again."
	unlockDesc = "Release a lock you took with lock, as soon as your edit is written, so that others can take it. " +
		"Returns released: true. Errors: a lock_token that does not hold the lock on that path (wrong token, or the lock already expired or was released) is reported; there is then nothing to release."
	writeFileDesc = "Write a whole file in the workspace through filecast, so that locks and fencing apply and every subscriber hears of the change. " +
		"Pass lock_token when you hold a lock on the path. Content is text, or base64 with encoding: base64; at most 16 MiB. " +
		"Returns size, sha256 and seq (the log position of the change; 0 with unchanged: true when the file already had this content). " +
		"Errors: if another holder has the file locked exclusively the write is refused, naming them: call lock with wait_ms, read the file again, then write with your lock_token. " +
		"If your own lock expired or was taken over the write is refused too: lock again, read the file again, then retry."
)

// registerLocks adds lock, unlock and write_file to s.
func (t *toolset) registerLocks(s *server.MCPServer) {
	s.AddTools(
		server.ServerTool{
			Tool: newTool("lock", lockDesc, lockInput, lockOutput,
				mcp.WithIdempotentHintAnnotation(false), mcp.WithReadOnlyHintAnnotation(false),
				mcp.WithDestructiveHintAnnotation(false), mcp.WithOpenWorldHintAnnotation(false)),
			Handler: mcp.NewTypedToolHandler(t.lock),
		},
		server.ServerTool{
			Tool: newTool("unlock", unlockDesc, unlockInput, unlockOutput,
				mcp.WithIdempotentHintAnnotation(false), mcp.WithReadOnlyHintAnnotation(false),
				mcp.WithDestructiveHintAnnotation(false), mcp.WithOpenWorldHintAnnotation(false)),
			Handler: mcp.NewTypedToolHandler(t.unlock),
		},
		server.ServerTool{
			Tool: newTool("write_file", writeFileDesc, writeFileInput, writeFileOutput,
				mcp.WithIdempotentHintAnnotation(true), mcp.WithReadOnlyHintAnnotation(false),
				mcp.WithDestructiveHintAnnotation(true), mcp.WithOpenWorldHintAnnotation(false)),
			Handler: mcp.NewTypedToolHandler(t.writeFile),
		},
	)
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
	ttl := DefaultTTL
	if args.TTLSeconds != 0 {
		ttl = time.Duration(args.TTLSeconds) * time.Second
	}
	if ttl < time.Second || ttl > MaxTTL {
		return mcp.NewToolResultError(fmt.Sprintf("ttl_seconds %d is out of range: give 1 to 86400 seconds, or omit it for 60.", args.TTLSeconds)), nil
	}
	mode := args.Mode
	switch mode {
	case "":
		mode = events.LockExclusive
	case events.LockExclusive, events.LockShared:
	default:
		return mcp.NewToolResultError(fmt.Sprintf("mode %q is not a lock mode: use \"exclusive\" to edit a file or \"shared\" to keep it from changing while you read it.", args.Mode)), nil
	}
	if args.WaitMS < 0 {
		return mcp.NewToolResultError("wait_ms must not be negative: give 0 to fail at once when the lock is held, or up to 300000 to wait."), nil
	}
	wait := min(time.Duration(args.WaitMS)*time.Millisecond, MaxLockWait)
	lease, err := t.locker.Lock(ctx, events.LockRequest{
		Workspace: ws, Path: p, Holder: sess.Holder, Mode: mode, TTL: ttl, Wait: wait, Token: args.LockToken,
	})
	if err != nil {
		return t.lockFailure(sess, ws, p, args, err), nil
	}
	lease.Workspace = cmp.Or(lease.Workspace, ws)
	lease.Path = cmp.Or(lease.Path, p)
	lease.Holder = cmp.Or(lease.Holder, sess.Holder)
	lease.Mode = cmp.Or(lease.Mode, mode)
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
	if args.LockToken == "" {
		return mcp.NewToolResultError("lock_token is required: pass the lock_token that lock returned for this path."), nil
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
		return mcp.NewToolResultError(fmt.Sprintf("the lock_token does not hold the lock on %q in workspace %s (%v): it is the wrong token for this path, or the lock already expired or was released. There is nothing to release; check the path and token you passed.",
			p, ws, err)), nil
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
			return mcp.NewToolResultError(fmt.Sprintf("content is not valid base64 (%v): encode the bytes with standard base64 (RFC 4648, with padding), or use encoding \"text\" for text.", err)), nil
		}
		if len(content) > t.opts.MaxWriteSize {
			return t.tooLarge(len(content)), nil
		}
	default:
		return mcp.NewToolResultError(fmt.Sprintf("encoding %q is not supported: use \"text\" (default) or \"base64\".", args.Encoding)), nil
	}
	ev, err := t.locker.WriteFile(ctx, events.WriteRequest{
		Workspace: ws, Path: p, Content: content, LockToken: args.LockToken, Actor: "mcp:" + cmp.Or(sess.Client, "anonymous"),
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

// target resolves the workspace argument (optional when the server serves
// exactly one) and cleans the path.
func (t *toolset) target(ctx context.Context, ws, path string) (string, string, *mcp.CallToolResult) {
	names, _, err := t.workspaces(ctx)
	if err != nil {
		return "", "", t.failure("workspaces", err)
	}
	switch {
	case ws == "" && len(names) == 1:
		ws = names[0]
	case ws == "":
		return "", "", mcp.NewToolResultError(fmt.Sprintf("workspace is required: this server serves several workspaces (%s); pass the one the path is in as workspace.",
			strings.Join(names, ", ")))
	case !slices.Contains(names, ws):
		return "", "", mcp.NewToolResultError(fmt.Sprintf("%v %q: use one of: %s.", events.ErrUnknownWorkspace, ws, strings.Join(names, ", ")))
	}
	if path == "" {
		return "", "", mcp.NewToolResultError("path is required: give the file's path relative to the workspace root, for example \"src/main.go\".")
	}
	p, err := workspace.Clean(path)
	if err != nil {
		return "", "", badPath(err)
	}
	return ws, p, nil
}

// lockFailure explains why lock failed and what to do next.
func (t *toolset) lockFailure(sess Session, ws, p string, args LockArgs, err error) *mcp.CallToolResult {
	var le *events.LockError
	switch {
	case errors.As(err, &le) && errors.Is(err, events.ErrLockConflict):
		var b strings.Builder
		fmt.Fprintf(&b, "%q in workspace %s is locked", p, ws)
		if le.Holder != "" {
			fmt.Fprintf(&b, " (%s) by %s until %s", cmp.Or(le.Mode, "exclusive"), le.Holder, le.ExpiresAt.UTC().Format(time.RFC3339))
		}
		b.WriteString(". ")
		if args.WaitMS > 0 {
			fmt.Fprintf(&b, "It was still held after waiting %d ms. ", args.WaitMS)
		}
		if le.Holder != "" && le.Holder == sess.Holder {
			b.WriteString("That holder is this session: lock again with the lock_token you got for it to refresh it, or unlock it first.")
		} else {
			b.WriteString("Call lock again with wait_ms (for example 30000) to wait until it is released or expires, or work on something else meanwhile.")
		}
		return mcp.NewToolResultError(b.String())
	case errors.Is(err, events.ErrLockConflict):
		return mcp.NewToolResultError(err.Error() + "; call lock again with wait_ms (for example 30000) to wait for it to be released.")
	case errors.Is(err, events.ErrNotHolder):
		return mcp.NewToolResultError(fmt.Sprintf("the lock_token does not hold a lock on %q in workspace %s (%v): it is wrong, or the lock expired or was released. Call lock without lock_token to take the lock again, then read the file again before writing: someone else may have changed it.",
			p, ws, err))
	}
	return t.lockingFailure("lock", err)
}

// writeFailure explains why write_file failed and what to do next.
func (t *toolset) writeFailure(sess Session, ws, p string, args WriteFileArgs, err error) *mcp.CallToolResult {
	var le *events.LockError
	hasLE := errors.As(err, &le)
	switch {
	case errors.Is(err, events.ErrLocked):
		var b strings.Builder
		fmt.Fprintf(&b, "%q in workspace %s is locked", p, ws)
		if hasLE && le.Holder != "" {
			fmt.Fprintf(&b, " (%s) by %s until %s", cmp.Or(le.Mode, "exclusive"), le.Holder, le.ExpiresAt.UTC().Format(time.RFC3339))
		}
		b.WriteString("; the write was refused and nothing changed. ")
		if hasLE && le.Holder != "" && le.Holder == sess.Holder {
			b.WriteString("That holder is this session: pass the lock_token of that lock to write_file.")
		} else {
			b.WriteString("Call lock with wait_ms (for example 30000) to wait for the lock, read the file again once you hold it, then call write_file with your lock_token.")
		}
		return mcp.NewToolResultError(b.String())
	case errors.Is(err, events.ErrStale):
		var b strings.Builder
		fmt.Fprintf(&b, "your lock on %q in workspace %s is no longer current: it expired or was taken over", p, ws)
		if hasLE && le.Holder != "" && le.Holder != sess.Holder {
			fmt.Fprintf(&b, " (now held by %s until %s)", le.Holder, le.ExpiresAt.UTC().Format(time.RFC3339))
		}
		if hasLE && le.Why != "" {
			b.WriteString("; " + le.Why)
		}
		b.WriteString(". The write was refused and nothing changed. Call lock again, read the file again (it may have changed meanwhile), then retry write_file with the new lock_token.")
		return mcp.NewToolResultError(b.String())
	case errors.Is(err, events.ErrNotHolder) && args.LockToken != "":
		return mcp.NewToolResultError(fmt.Sprintf("the lock_token holds no lock on %q in workspace %s (%v). Call lock again, read the file again, then retry write_file with the new lock_token.", p, ws, err))
	case errors.Is(err, events.ErrTooLarge):
		return mcp.NewToolResultError(fmt.Sprintf("%v; write_file takes at most %d bytes.", err, t.opts.MaxWriteSize))
	}
	return t.lockingFailure("write_file", err)
}

// lockingFailure handles the errors lock, unlock and write_file share.
func (t *toolset) lockingFailure(tool string, err error) *mcp.CallToolResult {
	switch {
	case errors.Is(err, events.ErrBadPath), errors.Is(err, events.ErrVCSInternal):
		return badPath(err)
	case errors.Is(err, events.ErrNotFound):
		return mcp.NewToolResultError(err.Error() + "; check the path (a folder on the way may be a file).")
	}
	return t.failure(tool, err)
}

func badPath(err error) *mcp.CallToolResult {
	if errors.Is(err, events.ErrVCSInternal) {
		return mcp.NewToolResultError(err.Error() + ".")
	}
	return mcp.NewToolResultError(err.Error() + "; give a path relative to the workspace root that stays inside it, for example \"src/main.go\".")
}

func (t *toolset) tooLarge(n int) *mcp.CallToolResult {
	return mcp.NewToolResultError(fmt.Sprintf("content is too large (about %d bytes): write_file takes at most %d bytes; split the file or write it another way.", n, t.opts.MaxWriteSize))
}
