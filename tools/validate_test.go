package tools

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSchemas_MatchArguments checks that every input schema is one the
// validator enforces completely and that its properties are exactly the
// fields of the tool's argument struct, with matching types, and required
// exactly when the field has no omitempty.
func TestSchemas_MatchArguments(t *testing.T) {
	for _, tc := range []struct {
		tool   string
		schema string
		args   any
	}{
		{"subscribe", subscribeInput, SubscribeArgs{}},
		{"unsubscribe", unsubscribeInput, UnsubscribeArgs{}},
		{"list_changes", listChangesInput, ListChangesArgs{}},
		{"lock", lockInput, LockArgs{}},
		{"unlock", unlockInput, UnlockArgs{}},
		{"write_file", writeFileInput, WriteFileArgs{}},
		{"list_locks", listLocksInput, ListLocksArgs{}},
		{"read_file", readFileInput, ReadFileArgs{}},
		{"list_files", listFilesInput, ListFilesArgs{}},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			s, err := parseSchema(strings.Replace(tc.schema, "EXCLUDE_OWN", "x", 1))
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			var required []string
			typ := reflect.TypeOf(tc.args)
			for i := range typ.NumField() {
				f := typ.Field(i)
				name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
				want[name] = jsonType(f.Type)
				if !strings.Contains(opts, "omitempty") {
					required = append(required, name)
				}
			}
			got := map[string]string{}
			for name, p := range s.Properties {
				got[name] = p.Type
				if p.Type == "array" {
					got[name] += " of " + p.Items.Type
				}
				if p.Description == "" {
					t.Errorf("%s has no description", name)
				}
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("properties (-struct +schema):\n%s", d)
			}
			slices.Sort(required)
			have := slices.Sorted(slices.Values(s.Required))
			if d := cmp.Diff(required, have); d != "" {
				t.Errorf("required (-struct +schema):\n%s", d)
			}
		})
	}
}

func jsonType(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int:
		return "integer"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice:
		return "array of " + jsonType(t.Elem())
	}
	return t.String()
}

func TestSchema_Check(t *testing.T) {
	s, err := parseSchema(`{
	  "type": "object",
	  "properties": {
	    "path": {"type": "string", "minLength": 1, "description": "p"},
	    "paths": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "description": "p"},
	    "events": {"type": "array", "items": {"type": "string", "enum": ["created", "updated", "deleted"]}, "description": "e"},
	    "mode": {"type": "string", "enum": ["exclusive", "shared"], "description": "m"},
	    "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "l"},
	    "wait_ms": {"type": "integer", "minimum": 0, "description": "w"},
	    "cursor": {"type": "string", "maxLength": 5, "description": "c"},
	    "own": {"type": "boolean", "description": "o"}
	  },
	  "required": ["path"],
	  "additionalProperties": false
	}`)
	if err != nil {
		t.Fatal(err)
	}
	const tail = " Nothing was done: fix the arguments and call t again."
	const takes = " t takes cursor, events, limit, mode, own, path (required), paths and wait_ms."
	for _, tc := range []struct {
		args any
		want string
	}{
		{map[string]any{"path": "a"}, ""},
		{map[string]any{"path": "a", "limit": 1000.0, "wait_ms": 0, "own": false, "paths": []any{"x"}, "events": []string{"created"}, "mode": "shared", "cursor": "docs:"}, ""},
		{map[string]any{"path": "a", "limit": 10.0}, ""},
		{nil, "path is required." + takes + tail},
		{map[string]any{}, "path is required." + takes + tail},
		{"text", "The arguments of t must be an object of named values, not \"text\"." + takes},
		{map[string]any{"path": "a", "paht": 1}, `unknown argument "paht" (did you mean path?).` + takes + tail},
		{map[string]any{"path": "a", "Limit": 1}, `unknown argument "Limit" (did you mean limit?).` + takes + tail},
		{map[string]any{"path": "a", "zzz": 1}, `unknown argument "zzz".` + takes + tail},
		{map[string]any{"path": nil}, "path must be a string, not null." + tail},
		{map[string]any{"path": "a", "cursor": nil}, "cursor must be a string, not null (leave it out instead)." + tail},
		{map[string]any{"path": ""}, "path must not be empty." + tail},
		{map[string]any{"path": 3}, "path must be a string, not 3." + tail},
		{map[string]any{"path": "a", "limit": 0}, "limit must be a whole number from 1 to 1000, not 0." + tail},
		{map[string]any{"path": "a", "limit": 1001}, "limit must be a whole number from 1 to 1000, not 1001." + tail},
		{map[string]any{"path": "a", "limit": 2.5}, "limit must be a whole number from 1 to 1000, not 2.5." + tail},
		{map[string]any{"path": "a", "limit": "ten"}, `limit must be a whole number from 1 to 1000, not "ten".` + tail},
		{map[string]any{"path": "a", "wait_ms": -1}, "wait_ms must be a whole number of at least 0, not -1." + tail},
		{map[string]any{"path": "a", "own": "yes"}, `own must be true or false, not "yes".` + tail},
		{map[string]any{"path": "a", "mode": "readonly"}, `mode must be "exclusive" or "shared", not "readonly".` + tail},
		{map[string]any{"path": "a", "events": []any{"created", "exploded"}}, `events contains "exploded", which is not one of "created", "updated" or "deleted".` + tail},
		{map[string]any{"path": "a", "paths": "*.md"}, `paths must be a list of strings, not "*.md".` + tail},
		{map[string]any{"path": "a", "paths": []any{"a", 1}}, `paths contains 1, which is not a string.` + tail},
		{map[string]any{"path": "a", "paths": []any{"a", "b", "c"}}, `paths may hold at most 2 items, not 3.` + tail},
		{map[string]any{"path": "a", "cursor": "docs:123"}, `cursor must be at most 5 characters long, not 8.` + tail},
		{map[string]any{"limit": 0, "mode": 1}, "path is required; limit must be a whole number from 1 to 1000, not 0; mode must be \"exclusive\" or \"shared\", not 1." + takes + tail},
	} {
		if got := s.check("t", tc.args); got != tc.want {
			t.Errorf("check(%v):\n got %q\nwant %q", tc.args, got, tc.want)
		}
	}
}

func TestParseSchema_Refuses(t *testing.T) {
	for _, bad := range []string{
		`{"type": "object", "properties": {}}`,                                                                       // additionalProperties missing
		`{"type": "object", "properties": {}, "additionalProperties": true}`,                                         // open
		`{"type": "object", "properties": {"a": {"type": "string", "pattern": "x"}}, "additionalProperties": false}`, // unknown keyword
		`{"type": "object", "properties": {"a": {"type": "number"}}, "additionalProperties": false}`,                 // unsupported type
		`{"type": "object", "properties": {}, "required": ["a"], "additionalProperties": false}`,                     // required not a property
	} {
		if _, err := parseSchema(bad); err == nil {
			t.Errorf("parseSchema(%s) accepted it", bad)
		}
	}
}

// TestCheck_RawArgumentsAsDecoded checks arguments as the client sent
// them (mcp-go keeps the bytes) and as mcp-go decoded them, and wants
// the same verdict: the raw bytes save encoding them again, and keep
// integers above 2^53 exact.
func TestCheck_RawArgumentsAsDecoded(t *testing.T) {
	s, err := parseSchema(listChangesInput)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{
		`{}`, `null`, `{"limit":10,"wait_ms":0,"detail":"full","diff":true}`, `{"limit":0}`, `{"limit":1.5}`,
		`{"limit":"10"}`, `{"nope":1,"limit":2000}`, `[1]`, `"text"`, `{"cursor":"proj:1","subscription_id":"s-1"}`,
		`{"detail":"é <&>"}`, `{"limit":1e3}`, `{"limit":1000.0}`,
	} {
		var decoded any
		if err := json.Unmarshal([]byte(raw), &decoded); err != nil {
			t.Fatal(err)
		}
		got, want := s.check("list_changes", json.RawMessage(raw)), s.check("list_changes", decoded)
		if got != want {
			t.Errorf("check(%s) = %q from the bytes, %q decoded", raw, got, want)
		}
	}
	big := s.check("list_changes", json.RawMessage(`{"limit":9007199254740993}`))
	if !strings.Contains(big, "9007199254740993") {
		t.Errorf("check of limit 9007199254740993 = %q, want the number as sent", big)
	}
}
