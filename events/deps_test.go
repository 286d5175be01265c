package events_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps the data flow one way: nothing under events/
// imports the MCP surface or mcp-go, and each third-party library stays in
// the package that owns it.
func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "github.com/filecast/filecast/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/filecast/filecast/"
	owners := map[string][]string{
		"github.com/mark3labs/mcp-go":         {"server", "tools", "resources", "cmd/filecast"},
		"github.com/nats-io/nats-server":      {"events/natsd"},
		"github.com/fsnotify/fsnotify":        {"events/watch", "cmd/filecast/internal/bench"},
		"github.com/prometheus/client_golang": {"events/metrics"},
		"github.com/tmaxmax/go-sse":           {"events/feed", "events/remote"},
		"github.com/nats-io/nats.go":          {"events/natsd", "events/journal", "events/lock", "events/leader", "events/relay", "events/webhook", "events/content", "events/node"},
		"github.com/klauspost/compress":       {"events/content"},
		mod + "server":                        {"cmd/filecast"},
		mod + "tools":                         {"server", "cmd/filecast"},
		mod + "resources":                     {"server", "tools", "cmd/filecast"},
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 5 {
		t.Fatalf("go list found only %d packages", len(lines))
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		for _, imp := range fields[1:] {
			for lib, allowed := range owners {
				if imp != lib && !strings.HasPrefix(imp, lib+"/") {
					continue
				}
				ok := false
				for _, a := range allowed {
					if pkg == a || strings.HasPrefix(pkg, a+"/") {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s imports %s; only %v may", pkg, imp, allowed)
				}
			}
		}
	}
}
