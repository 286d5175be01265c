package webhook_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast/events/webhook"
)

// vector is a signature computed outside Go (testdata/signatures.json);
// the first is the Standard Webhooks reference vector.
type vector struct {
	Name      string `json:"name"`
	Secret    string `json:"secret"`
	ID        string `json:"id"`
	Timestamp int64  `json:"timestamp"`
	Body      string `json:"body"`
	Signature string `json:"signature"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/signatures.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	return vs
}

func headerOf(id string, ts int64, sig string) http.Header {
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", sig)
	return h
}

func TestSign_Vectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			got, err := webhook.Sign(v.Secret, v.ID, time.Unix(v.Timestamp, 0), []byte(v.Body))
			if err != nil {
				t.Fatal(err)
			}
			if got != v.Signature {
				t.Errorf("Sign = %s, want %s", got, v.Signature)
			}
			now := time.Unix(v.Timestamp, 0).Add(time.Minute)
			if err := webhook.VerifyAt([]string{v.Secret}, headerOf(v.ID, v.Timestamp, v.Signature), []byte(v.Body), 0, now); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	secret, other := webhook.NewSecret(), webhook.NewSecret()
	now := time.Now()
	body := []byte(`{"event_id":"e1"}`)
	sig := func(s string, ts time.Time) string {
		out, err := webhook.Sign(s, "e1", ts, body)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		name    string
		secrets []string
		header  http.Header
		body    []byte
		want    error
	}{
		{"valid", []string{secret}, headerOf("e1", now.Unix(), sig(secret, now)), body, nil},
		{"valid among several", []string{secret}, headerOf("e1", now.Unix(), "v1a,xyz "+sig(other, now)+" "+sig(secret, now)), body, nil},
		{"second secret", []string{other, secret}, headerOf("e1", now.Unix(), sig(secret, now)), body, nil},
		{"wrong secret", []string{other}, headerOf("e1", now.Unix(), sig(secret, now)), body, webhook.ErrNoMatch},
		{"body changed", []string{secret}, headerOf("e1", now.Unix(), sig(secret, now)), []byte(`{"event_id":"e2"}`), webhook.ErrNoMatch},
		{"id changed", []string{secret}, headerOf("e2", now.Unix(), sig(secret, now)), body, webhook.ErrNoMatch},
		{"too old", []string{secret}, headerOf("e1", now.Add(-10*time.Minute).Unix(), sig(secret, now.Add(-10*time.Minute))), body, webhook.ErrTimestamp},
		{"future", []string{secret}, headerOf("e1", now.Add(10*time.Minute).Unix(), sig(secret, now.Add(10*time.Minute))), body, webhook.ErrTimestamp},
		{"timestamp not a number", []string{secret}, func() http.Header {
			h := headerOf("e1", 0, sig(secret, now))
			h.Set("webhook-timestamp", "soon")
			return h
		}(), body, webhook.ErrTimestamp},
		{"no signature header", []string{secret}, func() http.Header {
			h := headerOf("e1", now.Unix(), "")
			h.Del("webhook-signature")
			return h
		}(), body, webhook.ErrMissingHeaders},
		{"only other versions", []string{secret}, headerOf("e1", now.Unix(), "v2,"+strings.TrimPrefix(sig(secret, now), "v1,")), body, webhook.ErrNoMatch},
		{"bad secret", []string{"whsec_!!!"}, headerOf("e1", now.Unix(), sig(secret, now)), body, webhook.ErrBadSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.Verify(tt.secrets, tt.header, tt.body, 0)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	a, b := webhook.NewSecret(), webhook.NewSecret()
	if a == b {
		t.Fatal("two secrets are equal")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if !strings.HasPrefix(a, "whsec_") || err != nil || len(raw) < 24 {
		t.Errorf("secret %q: %d bytes, err %v", a, len(raw), err)
	}
}

func FuzzVerify(f *testing.F) {
	for _, v := range []vector{
		{ID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Timestamp: 1614265330, Body: `{"test": 2432232314}`, Signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
		{ID: "x", Timestamp: -1, Body: "", Signature: "v1, v1,,, v1a,abc"},
		{ID: "", Timestamp: 1 << 62, Body: "{}", Signature: strings.Repeat("v1,AAAA ", 100)},
	} {
		f.Add(v.ID, strconv.FormatInt(v.Timestamp, 10), v.Signature, []byte(v.Body))
	}
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	now := time.Unix(1614265330, 0)
	f.Fuzz(func(t *testing.T, id, ts, sigHeader string, body []byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sigHeader)
		err := webhook.VerifyAt([]string{secret}, h, body, time.Hour, now)
		if err == nil {
			// Accepted: then the header really holds the signature.
			n, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil {
				t.Fatalf("accepted timestamp %q", ts)
			}
			want, _ := webhook.Sign(secret, id, time.Unix(n, 0), body)
			if !strings.Contains(sigHeader, want) {
				t.Fatalf("accepted %q without the signature %s", sigHeader, want)
			}
		}
		// A freshly signed message always verifies, whatever its bytes.
		if strings.ContainsAny(id, "\r\n\x00") || strings.TrimSpace(id) != id || id == "" {
			return
		}
		good, err := webhook.Sign(secret, id, now, body)
		if err != nil {
			t.Fatal(err)
		}
		if err := webhook.VerifyAt([]string{secret}, headerOf(id, now.Unix(), good+" "+sigHeader), body, time.Hour, now); err != nil {
			t.Fatalf("a valid signature was refused: %v", err)
		}
	})
}
