package webhook

import (
	"encoding/json"
	"strconv"

	"github.com/filecast/filecast/events"
)

// eventHead holds the fields of a stored event that select and describe a
// delivery; decoding only them is cheaper than decoding the whole event.
type eventHead struct {
	ID        string      `json:"event_id"`
	Seq       uint64      `json:"seq"`
	Type      events.Type `json:"type"`
	Workspace string      `json:"workspace"`
	Path      string      `json:"path"`
	OldPath   string      `json:"old_path"`
}

func (h *eventHead) event() events.Event {
	return events.Event{ID: h.ID, Seq: h.Seq, Type: h.Type, Workspace: h.Workspace, Path: h.Path, OldPath: h.OldPath}
}

// liveBody returns the body of a live delivery: the event as the journal
// stored it (with seq 0) with its seq set, which is what encoding the
// decoded event with that seq gives. The journal writes the event as
// {"event_id":"…","seq":0,…}; when data starts so and the ID needs no JSON
// escaping, seq is spliced into a copy of data, else the event is decoded
// and encoded again. data is not modified.
func liveBody(data []byte, id string, seq uint64) ([]byte, error) {
	const head, zero = `{"event_id":"`, `","seq":0,`
	n := len(head) + len(id) + len(zero)
	if plainID(id) && len(data) > n && string(data[:len(head)]) == head &&
		string(data[len(head):len(head)+len(id)]) == id && string(data[len(head)+len(id):n]) == zero {
		out := make([]byte, 0, len(data)+20)
		out = append(out, data[:n-2]...) // up to "seq":
		out = strconv.AppendUint(out, seq, 10)
		return append(out, data[n-1:]...), nil // from the comma on
	}
	var ev events.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, err
	}
	ev.Seq = seq
	return ev.MarshalJSON()
}

// plainID reports whether JSON writes id as it is: ASCII letters, digits,
// '-' and '_' only.
func plainID(id string) bool {
	if id == "" {
		return false
	}
	for i := range len(id) {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
