package feed_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/feed"
)

func TestFeed_Events_WireFormat(t *testing.T) {
	fx := newFixture(t, feed.Options{Heartbeat: 30 * time.Millisecond})
	stored := fx.src.Append("docs",
		events.Event{Type: events.FileCreated, Path: "reports/q3.md", Size: 5, SHA256: "ab"},
		events.Event{Type: events.FileMoved, Path: "b.md", OldPath: "a.md", Size: 5, SHA256: "ab"},
	)
	s := open(t, fx.srv.URL+"/v1/workspaces/docs/events", map[string]string{"Last-Event-ID": "0"})
	if s.res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", s.res.StatusCode)
	}
	if ct := s.res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}

	hello := parseMsg(s.message())
	if hello.ID != "0" || hello.Retry == "" || len(hello.Comments) != 1 || len(hello.Data) != 0 {
		t.Errorf("first message = %+v, want id 0, a retry hint and a comment", hello)
	}
	for _, want := range stored {
		lines := s.message()
		wantData, _ := json.Marshal(want)
		wantLines := []string{
			fmt.Sprintf("id: %d", want.Seq),
			"event: " + string(want.Type),
			"data: " + string(wantData),
		}
		if diff := cmp.Diff(wantLines, lines); diff != "" {
			t.Errorf("message of event %d (-want +got):\n%s", want.Seq, diff)
		}
	}
	if got := parseMsg(s.message()); len(got.Comments) != 1 || got.Comments[0] != "heartbeat" || got.ID != "" {
		t.Errorf("idle stream sent %+v, want a heartbeat comment", got)
	}
	if n := fx.feed.Subscribers(); n != 1 {
		t.Errorf("Subscribers() = %d, want 1", n)
	}
}

func TestFeed_Events_Resume(t *testing.T) {
	fx := newFixture(t, feed.Options{})
	fx.appendN(5)
	base := fx.srv.URL + "/v1/workspaces/docs/events"
	tests := []struct {
		name   string
		url    string
		header map[string]string
		want   []uint64 // before the live event 6
	}{
		{"header", base, map[string]string{"Last-Event-ID": "2"}, []uint64{3, 4, 5}},
		{"header zero is the start", base, map[string]string{"Last-Event-ID": "0"}, seqRange(1, 5)},
		{"header in cursor form", base, map[string]string{"Last-Event-ID": "docs:4,src:1"}, []uint64{5}},
		{"cursor query", base + "?cursor=docs:3", nil, []uint64{4, 5}},
		{"last_event_id query", base + "?last_event_id=1", nil, seqRange(2, 5)},
		{"header wins over query", base + "?cursor=1", map[string]string{"Last-Event-ID": "4"}, []uint64{5}},
		{"at the head", base, map[string]string{"Last-Event-ID": "5"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, tt.url, tt.header)
			if s.res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", s.res.StatusCode)
			}
			if got := s.seqs(len(tt.want)); !cmp.Equal(got, tt.want, cmpopts.EquateEmpty()) {
				t.Errorf("replayed %v, want %v", got, tt.want)
			}
		})
	}
	// Live events follow the replay without a gap.
	s := open(t, base, map[string]string{"Last-Event-ID": "3"})
	if got := s.seqs(2); !cmp.Equal(got, []uint64{4, 5}) {
		t.Fatalf("replayed %v", got)
	}
	fx.appendN(2)
	if got := s.seqs(2); !cmp.Equal(got, []uint64{6, 7}) {
		t.Errorf("live events %v, want [6 7]", got)
	}
}

func TestFeed_Events_NoPositionStartsAtHead(t *testing.T) {
	fx := newFixture(t, feed.Options{})
	fx.appendN(3)
	s := open(t, fx.srv.URL+"/v1/workspaces/docs/events", nil)
	if hello := parseMsg(s.message()); hello.ID != "3" {
		t.Fatalf("first message id %q, want the head 3", hello.ID)
	}
	fx.appendN(1)
	if got := s.seqs(1); got[0] != 4 {
		t.Errorf("first event %d, want 4 (live only)", got[0])
	}
}

func TestFeed_Events_Filters(t *testing.T) {
	fx := newFixture(t, feed.Options{})
	fx.src.Append("docs",
		events.Event{Type: events.FileCreated, Path: "reports/a.md"},                // 1
		events.Event{Type: events.FileCreated, Path: "src/main.go"},                 // 2
		events.Event{Type: events.FileDeleted, Path: "reports/b.md"},                // 3
		events.Event{Type: events.FileMoved, Path: "x.md", OldPath: "reports/c.md"}, // 4
		events.Event{Type: events.LockAcquired, Path: "reports/a.md"},               // 5
		events.Event{Type: events.FileUpdated, Path: "reports/a.md"},                // 6
		events.Event{Type: events.FileDeleted, Path: "src/old.go"},                  // 7
	)
	tests := []struct {
		query  string
		want   []uint64
		marker events.Event // matches the filter; appended after the check
	}{
		{"", seqRange(1, 7), events.Event{Type: events.LockReleased, Path: "m"}},
		{"path=reports/", []uint64{1, 3, 4, 5, 6}, events.Event{Type: events.FileCreated, Path: "reports/m"}},
		{"path=*.go", []uint64{2, 7}, events.Event{Type: events.FileCreated, Path: "m.go"}},
		{"path=reports/**&type=deleted", []uint64{3}, events.Event{Type: events.FileDeleted, Path: "reports/m"}},
		{"type=file.deleted&type=created", []uint64{1, 2, 3, 7}, events.Event{Type: events.FileCreated, Path: "m"}},
		{"type=locked", []uint64{5}, events.Event{Type: events.LockExpiring, Path: "m"}},
		{"path=src/**&path=reports/a.md&type=updated&type=created", []uint64{1, 2, 6}, events.Event{Type: events.FileUpdated, Path: "src/m"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			s := open(t, fx.srv.URL+"/v1/workspaces/docs/events?"+tt.query, map[string]string{"Last-Event-ID": "0"})
			got := s.seqs(len(tt.want))
			if !cmp.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			// The next event must come after the fixture: nothing that
			// should have been filtered out follows.
			fx.src.Append("docs", tt.marker)
			if _, ev := s.event(); ev.Seq <= 7 {
				t.Errorf("event %d (%s %s) passed the filter", ev.Seq, ev.Type, ev.Path)
			}
		})
	}
}

func TestFeed_Events_ErrorsBeforeStream(t *testing.T) {
	fx := newFixture(t, feed.Options{})
	fx.appendN(10)
	fx.src.Trim("docs", 4)
	base := fx.srv.URL + "/v1/workspaces/"
	tests := []struct {
		name   string
		url    string
		header map[string]string
		status int
		code   string
	}{
		{"bad Last-Event-ID", base + "docs/events", map[string]string{"Last-Event-ID": "abc"}, 400, "bad_cursor"},
		{"negative Last-Event-ID", base + "docs/events", map[string]string{"Last-Event-ID": "-1"}, 400, "bad_cursor"},
		{"bad cursor query", base + "docs/events?cursor=docs:x", nil, 400, "bad_cursor"},
		{"bad glob", base + "docs/events?path=" + url.QueryEscape("[a"), nil, 400, "bad_glob"},
		{"absolute glob", base + "docs/events?path=/etc/**", nil, 400, "bad_glob"},
		{"bad type", base + "docs/events?type=renamed", nil, 400, "bad_type"},
		{"unknown workspace", base + "nope/events", nil, 404, "unknown_workspace"},
		{"bad workspace name", base + ".hidden/events", nil, 400, "bad_path"},
		{"expired cursor", base + "docs/events", map[string]string{"Last-Event-ID": "2"}, 410, "cursor_expired"},
		{"cursor past the head", base + "docs/events", map[string]string{"Last-Event-ID": "11"}, 410, "cursor_expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, tt.url, tt.header)
			e := errorBody(t, s.res, tt.status)
			if e.Code != tt.code || e.Message == "" {
				t.Errorf("error = %+v, want code %s and a message", e, tt.code)
			}
		})
	}
	// The last position the log still holds is fine.
	s := open(t, base+"docs/events", map[string]string{"Last-Event-ID": "4"})
	if got := s.seqs(1); got[0] != 5 {
		t.Errorf("first event %d, want 5", got[0])
	}
}

func TestFeed_Events_NewlineInPathStaysInData(t *testing.T) {
	fx := newFixture(t, feed.Options{})
	evil := "a\nid: 999\nevent: file.deleted\r\ndata: x\n\nb.md"
	fx.src.Append("docs", events.Event{Type: events.FileCreated, Path: evil, OldPath: "\r"})
	s := open(t, fx.srv.URL+"/v1/workspaces/docs/events", map[string]string{"Last-Event-ID": "0"})
	parseMsg(s.message()) // hello
	lines := s.message()
	if len(lines) != 3 || !strings.HasPrefix(lines[2], "data: ") {
		t.Fatalf("message lines %q, want id, event and one data line", lines)
	}
	var ev events.Event
	if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[2], "data: ")), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Path != evil || lines[0] != "id: 1" || lines[1] != "event: file.created" {
		t.Errorf("got %q, path %q", lines, ev.Path)
	}
}

func TestFeed_Events_StalledClientIsDropped(t *testing.T) {
	tests := []struct {
		name  string
		batch func() []events.Event
	}{
		// A client that falls a queue behind is cut off.
		{"many events", func() []events.Event {
			batch := make([]events.Event, 200)
			for i := range batch {
				batch[i] = events.Event{Type: events.FileUpdated, Path: strings.Repeat("x", 4000)}
			}
			return batch
		}},
		// A single write that cannot complete hits the write deadline.
		{"one huge event", func() []events.Event {
			return []events.Event{{Type: events.FileUpdated, Path: strings.Repeat("y", 8<<20)}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t, feed.Options{WriteTimeout: 200 * time.Millisecond, Heartbeat: time.Hour})
			conn, err := net.Dial("tcp", fx.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
			fmt.Fprintf(conn, "GET /v1/workspaces/docs/events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 0\r\n\r\n")
			eventstest.Eventually(t, "the stream to open", func() bool { return fx.feed.Subscribers() == 1 })

			fx.src.Append("docs", tt.batch()...)
			eventstest.Eventually(t, "the handler of a client that never reads to return", func() bool {
				if fx.feed.Subscribers() == 0 {
					return true
				}
				if tt.name == "many events" {
					fx.src.Append("docs", tt.batch()...)
				}
				return false
			})
			// The server still serves others.
			s := open(t, fx.srv.URL+"/v1/workspaces/docs/events", nil)
			if s.res.StatusCode != http.StatusOK {
				t.Errorf("status %d after dropping a client", s.res.StatusCode)
			}
		})
	}
}

func TestFeed_Events_ClientGoneReleasesSubscription(t *testing.T) {
	fx := newFixture(t, feed.Options{})
	s := open(t, fx.srv.URL+"/v1/workspaces/docs/events", nil)
	parseMsg(s.message())
	s.res.Body.Close()
	eventstest.Eventually(t, "the handler to return", func() bool { return fx.feed.Subscribers() == 0 })
}

func TestFeed_Close(t *testing.T) {
	fx := newFixture(t, feed.Options{})
	s := open(t, fx.srv.URL+"/v1/workspaces/docs/events", nil)
	parseMsg(s.message())
	fx.feed.Close()
	if rest, err := io.ReadAll(s.br); err != nil {
		t.Errorf("stream did not end after Close: %v (read %q)", err, rest)
	}
	eventstest.Eventually(t, "the handler to return", func() bool { return fx.feed.Subscribers() == 0 })
	s2 := open(t, fx.srv.URL+"/v1/workspaces/docs/events", nil)
	if e := errorBody(t, s2.res, http.StatusServiceUnavailable); e.Code != "unavailable" {
		t.Errorf("code %q", e.Code)
	}
}

func TestFeed_Events_ReplaysLongBacklog(t *testing.T) {
	fx := newFixture(t, feed.Options{})
	fx.appendN(3000) // far more than the writer's queue
	s := open(t, fx.srv.URL+"/v1/workspaces/docs/events", map[string]string{"Last-Event-ID": "0"})
	if got := s.seqs(3000); !cmp.Equal(got, seqRange(1, 3000)) {
		t.Errorf("replayed %d events, not 1..3000 in order", len(got))
	}
}
