package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/api"
)

// TestHealthz answers 200 while all is well and 503 with the problems
// otherwise; a caller without a token on a hub with tokens learns what is
// wrong but not which workspace, and a token limited to workspaces sees
// only theirs.
func TestHealthz(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var probs []events.Problem
	missing := events.Problem{Code: events.ProblemWorkspaceUnavailable, Workspace: "docs", Message: `events: workspace unavailable "docs": its folder is missing`, Since: since}
	full := events.Problem{Code: events.ProblemInsufficientStorage, Message: "the event log cannot take more events", Since: since}
	health := func() []events.Problem { return probs }
	open, _ := newServer(t, api.Options{Health: health})
	guarded, _ := newServer(t, api.Options{Health: health, Tokens: []api.Token{
		{Name: "ci", Secret: "s3cretS3cretS3cret"},
		{Name: "other", Secret: "0therS3cretS3cret", Workspaces: []string{"src"}},
	}})
	get := func(url, secret string) (int, api.HealthBody) {
		t.Helper()
		h := map[string]string{}
		if secret != "" {
			h["Authorization"] = "Bearer " + secret
		}
		res := do(t, "GET", url+"/healthz", h, nil)
		var body api.HealthBody
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, body
	}
	redacted := missing
	redacted.Workspace, redacted.Message = "", "a workspace is unavailable: its folder is missing (send a token to see which)"
	tests := []struct {
		name   string
		probs  []events.Problem
		url    string
		secret string
		status int
		want   []events.Problem
	}{
		{"all well", nil, open.URL, "", 200, nil},
		{"missing folder", []events.Problem{missing}, open.URL, "", 503, []events.Problem{missing}},
		{"both", []events.Problem{missing, full}, open.URL, "", 503, []events.Problem{missing, full}},
		{"no token", []events.Problem{missing, full}, guarded.URL, "", 503, []events.Problem{redacted, full}},
		{"token", []events.Problem{missing, full}, guarded.URL, "s3cretS3cretS3cret", 503, []events.Problem{missing, full}},
		{"token of other workspaces", []events.Problem{missing}, guarded.URL, "0therS3cretS3cret", 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probs = tt.probs
			status, body := get(tt.url, tt.secret)
			wantStatus := "ok"
			if tt.status != http.StatusOK {
				wantStatus = "degraded"
			}
			if status != tt.status || body.Status != wantStatus {
				t.Errorf("status %d %q, want %d %q", status, body.Status, tt.status, wantStatus)
			}
			if diff := cmp.Diff(tt.want, body.Problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
