package server_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/server"
)

// toolBudget bounds what the tools cost a model on every turn: the bytes
// of name, description and input schema of all of them together, as
// tools/list serves them.
const toolBudget = 8000

// TestTools_Budget measures the name, description and input schema of
// every tool as tools/list serves them (a server that can lock, so every
// tool is there), prints the figures and fails above toolBudget.
func TestTools_Budget(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{})
	srv := serve(t, st.Hub, server.Options{})
	s := openRaw(t, srv)
	s.request("initialize", json.RawMessage(`{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"budget","version":"1"}}`))
	s.notify("notifications/initialized")
	line := s.request("tools/list", json.RawMessage(`{}`))
	var ans struct {
		Result struct {
			Tools []struct {
				Name         string          `json:"name"`
				Description  string          `json:"description"`
				InputSchema  json.RawMessage `json:"inputSchema"`
				OutputSchema json.RawMessage `json:"outputSchema"`
			} `json:"tools"`
		} `json:"result"`
	}
	if err := json.Unmarshal(line, &ans); err != nil {
		t.Fatal(err)
	}
	total, all := 0, 0
	var names []string
	for _, tool := range ans.Result.Tools {
		n := len(tool.Name) + len(tool.Description) + len(tool.InputSchema)
		total += n
		all += n + len(tool.OutputSchema)
		names = append(names, tool.Name)
		t.Logf("%-13s %5d bytes (description %4d, input schema %4d; output schema %4d)", tool.Name, n, len(tool.Description), len(tool.InputSchema), len(tool.OutputSchema))
	}
	slices.Sort(names)
	fmt.Printf("tool budget: %d of %d bytes (name + description + input schema) for %d tools %v; tools/list %d bytes in all\n",
		total, toolBudget, len(names), names, len(line))
	if total > toolBudget {
		t.Errorf("the tools take %d bytes of name, description and input schema, over the budget of %d", total, toolBudget)
	}
}
