package wire_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestFeedOnlyForTheRouter: the JSON wire is spoken through this package;
// the SSE package is imported only where its handlers are mounted (the
// router) or built (cmd), not for its helpers.
func TestFeedOnlyForTheRouter(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "github.com/filecast/filecast/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/filecast/filecast/"
	allowed := []string{"events/api", "events/node", "cmd/filecast"}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		for _, imp := range fields[1:] {
			if imp != mod+"events/feed" {
				continue
			}
			ok := false
			for _, a := range allowed {
				ok = ok || pkg == a || strings.HasPrefix(pkg, a+"/")
			}
			if !ok {
				t.Errorf("%s imports events/feed; the JSON wire helpers are in events/wire", pkg)
			}
		}
	}
}
