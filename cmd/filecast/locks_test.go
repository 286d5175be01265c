package main_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

type lockResult struct {
	LockToken    string `json:"lock_token"`
	FencingToken uint64 `json:"fencing_token"`
	ExpiresAt    string `json:"expires_at"`
	Holder       string `json:"holder"`
	Mode         string `json:"mode"`
}

// TestLocks_TwoProcessesContend runs two MCP servers on one data folder,
// as two hosts would: they share one hub, so their locks exclude each
// other, a write by the non-holder is refused, and the holder's write is
// an event both see.
func TestLocks_TwoProcessesContend(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	a := startStdio(t, legacyVersion, "--root", "w="+root, "--data", data)
	b := startStdio(t, legacyVersion, "--root", "w="+root, "--data", data)
	b.mustCall("subscribe", map[string]any{"events": []string{"created", "updated", "locked", "unlocked"}}, nil)

	var la lockResult
	a.mustCall("lock", map[string]any{"path": "plan.md", "ttl_seconds": 30}, &la)
	if la.LockToken == "" || la.FencingToken == 0 || !strings.HasPrefix(la.Holder, "test-agent#") || la.Mode != "exclusive" {
		t.Fatalf("lock result %+v", la)
	}
	msg := b.call("lock", map[string]any{"path": "plan.md"}, &lockResult{})
	if !strings.Contains(msg, la.Holder) {
		t.Fatalf("conflict %q does not name the holder %s", msg, la.Holder)
	}
	if msg := b.call("write_file", map[string]any{"path": "plan.md", "content": "b's plan"}, &map[string]any{}); !strings.Contains(msg, la.Holder) {
		t.Fatalf("write by non-holder: %q, want a refusal naming %s", msg, la.Holder)
	}
	if _, err := os.Stat(filepath.Join(root, "plan.md")); !os.IsNotExist(err) {
		t.Fatal("the refused write reached the disk")
	}
	var w struct {
		Seq  uint64 `json:"seq"`
		Size int64  `json:"size"`
	}
	a.mustCall("write_file", map[string]any{"path": "plan.md", "content": "a's plan", "lock_token": la.LockToken}, &w)
	if w.Seq == 0 || w.Size != 8 {
		t.Fatalf("write_file result %+v", w)
	}

	// b asks for the lock, ready to wait, while a releases it: whichever
	// comes first, b gets it with a larger fencing token. (That a waiting
	// lock is granted on release is tested in package server.)
	var lb lockResult
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.mustCall("lock", map[string]any{"path": "plan.md", "wait_ms": 20000}, &lb)
	}()
	var un struct {
		Released bool `json:"released"`
	}
	if msg := a.call("unlock", map[string]any{"path": "plan.md", "lock_token": "lk_wrong"}, &un); msg == "" {
		t.Fatal("unlock with a wrong token succeeded")
	}
	a.mustCall("unlock", map[string]any{"path": "plan.md", "lock_token": la.LockToken}, &un)
	wg.Wait()
	if lb.FencingToken <= la.FencingToken {
		t.Fatalf("fencing token %d after %d: not larger", lb.FencingToken, la.FencingToken)
	}

	got, _ := b.collect(nil, 4)
	var kinds []string
	for _, e := range got {
		if e.Type != "lock.expiring" { // a 30 s lock is warned about at once
			kinds = append(kinds, e.Type)
		}
	}
	want := "lock.acquired,file.created,lock.released,lock.acquired"
	if !strings.HasPrefix(strings.Join(kinds, ","), want) {
		t.Fatalf("b saw %v, want %s…", kinds, want)
	}
	for _, e := range got {
		if e.Type == "file.created" && e.Actor != "mcp:"+la.Holder {
			t.Errorf("write event actor %q, want mcp:%s", e.Actor, la.Holder)
		}
	}
	// The process that joined the hub writes as its own session too, not
	// as the hub's API.
	b.mustCall("write_file", map[string]any{"path": "plan.md", "content": "b's plan", "lock_token": lb.LockToken}, &w)
	a.mustCall("subscribe", map[string]any{"paths": []string{"plan.md"}}, nil)
	var ch changes
	a.mustCall("list_changes", map[string]any{"cursor": "w:" + strconv.FormatUint(w.Seq-1, 10), "limit": 1}, &ch)
	if len(ch.Events) != 1 || ch.Events[0].Actor != "mcp:"+lb.Holder {
		t.Errorf("the joined process's write: %+v, want actor mcp:%s", ch.Events, lb.Holder)
	}

	// Shared locks coexist; an exclusive one does not join them.
	var s1, s2 lockResult
	a.mustCall("lock", map[string]any{"path": "notes.md", "mode": "shared"}, &s1)
	b.mustCall("lock", map[string]any{"path": "notes.md", "mode": "shared"}, &s2)
	if msg := a.call("lock", map[string]any{"path": "other.md", "lock_token": s1.LockToken}, &lockResult{}); msg == "" {
		t.Error("refreshing a lock on the wrong path succeeded")
	}
}

// TestHub_FencedWrites: writes through the hub honour locks (423) and
// fencing tokens (409), and fencing tokens grow across a hub restart.
func TestHub_FencedWrites(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	addr := freeAddr(t)
	hub := startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", data)
	base := "http://" + addr + "/v1/workspaces/w"
	waitHTTP(t, "http://"+addr+"/healthz")

	lock := func() lockResult {
		var l lockResult
		code := doJSON(t, "POST", base+"/locks", map[string]any{"path": "doc.txt", "ttl_seconds": 30}, nil, &l)
		if code != http.StatusCreated {
			t.Fatalf("POST locks = %d", code)
		}
		return l
	}
	put := func(content string, hdr map[string]string) int {
		return doJSON(t, "PUT", base+"/files/doc.txt", content, hdr, nil)
	}
	l1 := lock()
	if code := put("by someone else", nil); code != http.StatusLocked {
		t.Fatalf("PUT without the lock = %d, want 423", code)
	}
	tok := map[string]string{"X-Filecast-Lock-Token": l1.LockToken, "X-Filecast-Fencing-Token": strconv.FormatUint(l1.FencingToken, 10)}
	if code := put("by the holder", tok); code != http.StatusOK {
		t.Fatalf("PUT by the holder = %d", code)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "doc.txt")); string(b) != "by the holder" {
		t.Fatalf("file holds %q", b)
	}
	if code := doJSON(t, "DELETE", base+"/locks/"+l1.LockToken, nil, nil, nil); code != http.StatusOK {
		t.Fatalf("DELETE lock = %d", code)
	}
	if code := put("stale", tok); code != http.StatusConflict {
		t.Fatalf("PUT with a released lock = %d, want 409", code)
	}

	hub.stop(t)
	startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", data)
	waitHTTP(t, "http://"+addr+"/healthz")
	l2 := lock()
	if l2.FencingToken <= l1.FencingToken {
		t.Fatalf("fencing token after restart %d, before %d", l2.FencingToken, l1.FencingToken)
	}
	stale := map[string]string{"X-Filecast-Lock-Token": l2.LockToken, "X-Filecast-Fencing-Token": strconv.FormatUint(l1.FencingToken, 10)}
	if code := put("old fence", stale); code != http.StatusConflict {
		t.Fatalf("PUT with an old fencing token = %d, want 409", code)
	}
	var list struct {
		Locks []lockResult `json:"locks"`
	}
	doJSON(t, "GET", base+"/locks", nil, nil, &list)
	if len(list.Locks) != 1 || list.Locks[0].Holder == "" || list.Locks[0].LockToken != "" {
		t.Fatalf("lock listing %+v (tokens must not be listed)", list)
	}
}

// doJSON sends body (JSON, or raw when it is a string) and decodes a JSON
// answer into out; it returns the status code.
func doJSON(t *testing.T, method, url string, body any, hdr map[string]string, out any) int {
	t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, url, err)
		}
	}
	return resp.StatusCode
}
