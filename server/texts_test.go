package server_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/server"
)

// served is what a client sees of a server: its tools, the names in
// their schemas and every text written for the model.
type served struct {
	tools map[string]bool
	names map[string]bool // properties of every schema, at any depth
	texts []string        // descriptions and instructions
}

func inspect(t *testing.T, c *client.Client, instructions string) served {
	t.Helper()
	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	s := served{tools: map[string]bool{}, names: map[string]bool{}, texts: []string{instructions}}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok {
				for k := range props {
					s.names[k] = true
				}
			}
			if d, ok := v["description"].(string); ok {
				s.texts = append(s.texts, d)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	for _, tool := range res.Tools {
		s.tools[tool.Name] = true
		b, err := json.Marshal(tool)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		walk(v)
	}
	return s
}

var (
	snakeRE    = regexp.MustCompile(`\b[a-z]+(?:_[a-z]+)+\b`)
	callRE     = regexp.MustCompile(`\b[Cc]all (\w+)`)
	prefixRE   = regexp.MustCompile(`(^|: |\()(events|inbox|hub|journal|remote|daemon|relay|natsd|feed|api|tools|server|resources|webhook|lock|workspace): `)
	nestedRE   = regexp.MustCompile(`\([^)]*\(`)
	goTypesRE  = regexp.MustCompile(`Go struct|Go value|unmarshal|float64|int64|\[\]string|map\[|json: `)
	deadEndsRE = regexp.MustCompile(`(?i)list the files|listing's cursor`)
)

// checkText reports what is wrong with one text the server shows a model:
// a tool that is not registered, a package prefix, nested parentheses, a
// Go type, or a phrase said twice.
func (s served) checkText(t *testing.T, where, text string) {
	t.Helper()
	for _, p := range s.problems(text) {
		t.Errorf("%s %s: %q", where, p, text)
	}
}

func (s served) problems(text string) []string {
	var out []string
	for _, w := range snakeRE.FindAllString(text, -1) {
		if !s.tools[w] && !s.names[w] {
			out = append(out, "names "+w+", which is neither a tool of this server nor an argument or field of one")
		}
	}
	for _, m := range callRE.FindAllStringSubmatch(text, -1) {
		if w := m[1]; !s.tools[w] && w != "again" && w != "it" && w != "to" {
			out = append(out, "says to call "+w+", which is not a tool of this server")
		}
	}
	if m := deadEndsRE.FindString(text); m != "" && !s.tools["list_files"] {
		out = append(out, "sends the model to "+m+", which no tool of this server does")
	}
	if prefixRE.MatchString(text) {
		out = append(out, "has a Go package prefix")
	}
	if nestedRE.MatchString(text) {
		out = append(out, "has nested parentheses")
	}
	if goTypesRE.MatchString(text) {
		out = append(out, "shows Go types")
	}
	seen := map[string]bool{}
	for _, clause := range regexp.MustCompile(`[.;:]\s`).Split(text, -1) {
		clause = strings.ToLower(strings.TrimSpace(clause))
		if len(strings.Fields(clause)) < 4 {
			continue
		}
		if seen[clause] {
			out = append(out, "says "+clause+" twice")
		}
		seen[clause] = true
	}
	return out
}

// TestTexts_NameOnlyWhatExists checks every description, the instructions
// and every error text of the golden transcripts: none names a tool the
// server does not register (list_locks, lock, unlock and write_file do
// not exist without locks), none has a package prefix, nested
// parentheses, Go types or a repeated phrase. It runs against a server
// that can lock (every tool registered) and one that cannot.
func TestTexts_NameOnlyWhatExists(t *testing.T) {
	t.Run("locking", func(t *testing.T) {
		st := hubtest.Start(t, hubtest.Options{})
		h := &harness{srv: serve(t, st.Hub, server.Options{})}
		c, _ := h.stdioClient(t, clientOpts{})
		s := inspect(t, c, initInstructions(t, c))
		for _, tool := range []string{"subscribe", "unsubscribe", "list_changes", "read_file", "list_files", "lock", "unlock", "write_file", "list_locks"} {
			if !s.tools[tool] {
				t.Fatalf("tool %s is not registered", tool)
			}
		}
		for _, text := range s.texts {
			s.checkText(t, "a description", text)
		}
		// The answers recorded in the transcripts come from this server.
		files, err := filepath.Glob(filepath.Join(goldenDir, "*.txtar"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no transcripts: %v", err)
		}
		n := 0
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range parseTxtar(data).files {
				if !strings.HasPrefix(f.name, "<") {
					continue
				}
				for _, text := range answerTexts(t, f.data) {
					s.checkText(t, filepath.Base(file), text)
					n++
				}
			}
		}
		if n < 30 {
			t.Errorf("only %d error texts in the transcripts", n)
		}
	})
	t.Run("without locks", func(t *testing.T) {
		h := start(t, server.Options{}, "docs")
		c, _ := h.stdioClient(t, clientOpts{})
		s := inspect(t, c, initInstructions(t, c))
		if s.tools["write_file"] || s.tools["lock"] || s.tools["list_locks"] {
			t.Fatal("a server without a Locker registered lock tools")
		}
		for _, text := range s.texts {
			s.checkText(t, "a description", text)
		}
	})
	t.Run("the check catches what it should", func(t *testing.T) {
		s := served{tools: map[string]bool{"list_changes": true}, names: map[string]bool{"lock_token": true}}
		for _, bad := range []string{
			"read the file with read_file",
			"call lock again",
			"list the files again and continue from the listing's cursor",
			"events: invalid cursor",
			"refused (held (exclusive))",
			"cannot unmarshal string into Go struct field",
			"use created or updated; use created or updated",
		} {
			if len(s.problems(bad)) == 0 {
				t.Errorf("%q passed the check", bad)
			}
		}
	})
}

// initInstructions returns the instructions of a fresh initialize.
func initInstructions(t *testing.T, c *client.Client) string {
	t.Helper()
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "texts", Version: "1"}
	req.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	res, err := c.Initialize(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res.Instructions
}

// answerTexts returns the texts of an answer a model may read: tool error
// texts and JSON-RPC error messages.
func answerTexts(t *testing.T, data []byte) []string {
	var a struct {
		Result *struct {
			IsError bool `json:"isError"`
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatalf("answer %s: %v", data, err)
	}
	var out []string
	if a.Error != nil {
		out = append(out, a.Error.Message)
	}
	if a.Result != nil && a.Result.IsError {
		for _, c := range a.Result.Content {
			out = append(out, c.Text)
		}
	}
	return slices.Clip(out)
}
