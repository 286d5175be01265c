package main_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/filecast/filecast/events/eventstest"
)

// receiver is a webhook endpoint that checks every signature itself, the
// way a Standard Webhooks library does.
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	secret []byte
	paths  []string
	ids    map[string]int
	bad    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var msg struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
		Path      string `json:"path"`
	}
	_ = json.Unmarshal(body, &msg)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	mac := hmac.New(sha256.New, rc.secret)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !strings.Contains(" "+r.Header.Get("webhook-signature")+" ", " "+want+" ") {
		rc.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if msg.Type == "webhook.verification" {
		_, _ = io.WriteString(w, msg.Challenge)
		return
	}
	if rc.ids[id] == 0 {
		rc.paths = append(rc.paths, msg.Path)
	}
	rc.ids[id]++
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) got() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.paths...)
}

// TestWebhook_ReceiverDownAndBack registers a webhook against a small
// receiver, stops the receiver, changes files, starts it again on the same
// address, and receives every event, signed, in order.
func TestWebhook_ReceiverDownAndBack(t *testing.T) {
	root := t.TempDir()
	addr := freeAddr(t)
	startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", t.TempDir(),
		"--allow-private-webhooks", "--webhook-schedule", "100ms,200ms,400ms,800ms,1s,1s,1s,1s,1s,1s")
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")

	rc := &receiver{t: t, ids: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rcAddr := ln.Addr().String()
	srv := &http.Server{Handler: rc}
	go srv.Serve(ln)

	var hook struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
		Status string `json:"status"`
	}
	// The secret is needed before the verification request arrives: hold
	// the receiver until it is known.
	rc.mu.Lock()
	code := doJSON(t, "POST", base+"/v1/webhooks", map[string]any{"url": "http://" + rcAddr + "/hook", "workspace": "w", "extensions": []string{"md"}}, nil, &hook)
	if code != http.StatusCreated || !strings.HasPrefix(hook.Secret, "whsec_") || hook.Status != "pending" {
		rc.mu.Unlock()
		t.Fatalf("register = %d %+v", code, hook)
	}
	rc.secret, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(hook.Secret, "whsec_"))
	rc.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "the webhook to be verified", func() bool {
		var h struct {
			Status string `json:"status"`
		}
		getJSON(t, base+"/v1/webhooks/"+hook.ID, &h)
		return h.Status == "active"
	})

	writeFile(t, filepath.Join(root, "1.md"), "one")
	eventstest.Eventually(t, "1.md delivered", func() bool { return len(rc.got()) == 1 })

	_ = srv.Close() // the receiver goes down
	writeFile(t, filepath.Join(root, "2.md"), "two")
	writeFile(t, filepath.Join(root, "skip.txt"), "filtered out")
	writeFile(t, filepath.Join(root, "3.md"), "three")
	eventstest.Eventually(t, "deliveries to fail while the receiver is down", func() bool {
		var h struct {
			FailingSince string `json:"failing_since"`
		}
		getJSON(t, base+"/v1/webhooks/"+hook.ID, &h)
		return h.FailingSince != ""
	})

	ln, err = net.Listen("tcp", rcAddr) // back, on the same address
	if err != nil {
		t.Fatal(err)
	}
	srv = &http.Server{Handler: rc}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Close() })
	eventstest.Eventually(t, "every event delivered", func() bool { return len(rc.got()) == 3 })
	if got := strings.Join(rc.got(), ","); got != "1.md,2.md,3.md" {
		t.Fatalf("delivered %s, want 1.md,2.md,3.md in order", got)
	}
	rc.mu.Lock()
	bad := rc.bad
	rc.mu.Unlock()
	if bad != 0 {
		t.Fatalf("%d requests carried a bad signature", bad)
	}

	var deliveries struct {
		Deliveries []struct {
			Status string `json:"status"`
		} `json:"deliveries"`
	}
	if code := getJSON(t, base+"/v1/webhooks/"+hook.ID+"/deliveries", &deliveries); code != 200 {
		t.Fatalf("deliveries = %d", code)
	}
	retried := 0 // attempts that failed and were scheduled again
	for _, d := range deliveries.Deliveries {
		if d.Status != "succeeded" {
			retried++
		}
	}
	if retried == 0 {
		t.Errorf("the attempts while the receiver was down are not in the deliveries: %+v", deliveries)
	}
}

// TestWebhook_RefusesPrivateAddress: without --allow-private-webhooks a
// webhook on loopback is refused at registration.
func TestWebhook_RefusesPrivateAddress(t *testing.T) {
	addr := freeAddr(t)
	startProc(t, "hub", "--root", "w="+t.TempDir(), "--listen", addr, "--data", t.TempDir())
	waitHTTP(t, "http://"+addr+"/healthz")
	for _, u := range []string{"http://127.0.0.1:9/x", "http://169.254.169.254/latest", "http://[::1]/x", "http://10.1.2.3/x"} {
		if code := doJSON(t, "POST", "http://"+addr+"/v1/webhooks", map[string]any{"url": u, "workspace": "w"}, nil, nil); code != http.StatusBadRequest {
			t.Errorf("register %s = %d, want 400", u, code)
		}
	}
}
