package main_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"

	"github.com/filecast/filecast/tools"
)

// TestRemoteAgent_FileTools gives agents without disk access what a local
// one sees: "filecast mcp --hub" over stdio and "filecast mcp --http
// --hub" over streamable HTTP read files (whole, and a big one in parts),
// list them with a cursor that list_changes continues from without a
// gap, and list locks, all through the hub's HTTP API.
func TestRemoteAgent_FileTools(t *testing.T) {
	root := t.TempDir()
	addr := freeAddr(t)
	startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", t.TempDir())
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")
	writeFile(t, filepath.Join(root, "src", "main.go"), "package main\n")
	big := strings.Repeat("0123456789abcdé\n", 20000)
	writeFile(t, filepath.Join(root, "big.txt"), big)
	if err := os.MkdirAll(filepath.Join(root, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, ".git", "config"), "[core]\n")

	agents := remoteAgents(t, base)
	for _, name := range []string{"stdio", "http"} {
		t.Run(name, func(t *testing.T) {
			a := agents[name]()
			a.t = t
			var r tools.ReadFileResult
			a.mustCall("read_file", map[string]any{"path": "src/main.go"}, &r)
			if r.Content != "package main\n" || r.Encoding != "text" || r.Size != 13 || r.SHA256 != sum("package main\n") || !strings.HasPrefix(r.Cursor, "w:") {
				t.Errorf("read_file: %+v", r)
			}
			if msg := a.call("read_file", map[string]any{"path": "big.txt"}, nil); !strings.Contains(msg, "offset and length") {
				t.Errorf("read_file of a big file: %q", msg)
			}
			var got strings.Builder
			for off := int64(0); off < int64(len(big)); {
				var p tools.ReadFileResult
				a.mustCall("read_file", map[string]any{"path": "big.txt", "offset": off, "length": 200000}, &p)
				if p.Size != int64(len(big)) || p.SHA256 != sum(big) || p.Length == nil || *p.Length == 0 {
					t.Fatalf("part at %d: %+v", off, p)
				}
				got.WriteString(p.Content)
				off = *p.Offset + *p.Length
			}
			if got.String() != big {
				t.Errorf("the parts make %d bytes, not the file", got.Len())
			}
			for path, want := range map[string]string{".git/config": "version-control", "nope.txt": "no such file"} {
				if msg := a.call("read_file", map[string]any{"path": path}, nil); !strings.Contains(msg, want) {
					t.Errorf("read_file %s: %q, want it to say %q", path, msg, want)
				}
			}

			var l tools.ListFilesResult
			a.mustCall("list_files", map[string]any{"paths": []string{"src/main.*"}}, &l)
			if len(l.Files) != 1 || l.Files[0].Path != "src/main.go" || l.Files[0].SHA256 != sum("package main\n") {
				t.Errorf("list_files: %+v", l)
			}
			writeFile(t, filepath.Join(root, "src", "new-"+name+".go"), "package main // "+name+"\n")
			var ch changes
			a.mustCall("list_changes", map[string]any{"cursor": l.Cursor, "wait_ms": 5000}, &ch)
			if len(ch.Events) != 1 || ch.Events[0].Path != "src/new-"+name+".go" || ch.Events[0].Type != "file.created" {
				t.Errorf("list_changes after list_files: %v", kinds(ch.Events))
			}

			var lk tools.LockResult
			a.mustCall("lock", map[string]any{"path": "src/main.go"}, &lk)
			var locks tools.ListLocksResult
			a.mustCall("list_locks", nil, &locks)
			if len(locks.Locks) != 1 || locks.Locks[0].Path != "src/main.go" || locks.Locks[0].FencingToken != lk.FencingToken {
				t.Errorf("list_locks: %+v", locks)
			}
			a.mustCall("unlock", map[string]any{"path": "src/main.go", "lock_token": lk.LockToken}, nil)
		})
	}
}

func sum(s string) string {
	b := sha256.Sum256([]byte(s))
	return hex.EncodeToString(b[:])
}

// TestRemoteAgent_Diffs: agents without disk access ("filecast mcp
// --hub" over stdio, "filecast mcp --http --hub" over streamable HTTP)
// see what changed: list_changes with diff true gives the diff of the
// first change of a file that was there when the hub first started, and
// read_file since the version they read before gives the diff of the
// next one, both from the hub's content store through its HTTP API.
func TestRemoteAgent_Diffs(t *testing.T) {
	root := t.TempDir()
	main := "package main\n\nfunc main() {\n\tprintln(\"hello\")\n}\n"
	writeFile(t, filepath.Join(root, "main.go"), main) // there at the first start
	addr := freeAddr(t)
	startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", t.TempDir())
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")
	agents := remoteAgents(t, base)
	first := true
	for _, name := range []string{"stdio", "http"} {
		t.Run(name, func(t *testing.T) {
			a := agents[name]()
			a.t = t
			var before tools.ReadFileResult
			a.mustCall("read_file", map[string]any{"path": "main.go"}, &before)
			if first && before.Content != main {
				t.Fatalf("read_file at first: %+v", before)
			}
			first = false
			edited := strings.Replace(before.Content, "}\n", "\tprintln(\""+name+"\")\n}\n", 1)
			writeFile(t, filepath.Join(root, "main.go"), edited)
			var ch struct {
				Events []struct {
					Type, Path, Diff string
				} `json:"events"`
			}
			a.mustCall("list_changes", map[string]any{"cursor": before.Cursor, "wait_ms": 5000, "diff": true}, &ch)
			wantLine := "+\tprintln(\"" + name + "\")\n }\n"
			if len(ch.Events) != 1 || ch.Events[0].Type != "file.updated" || !strings.HasPrefix(ch.Events[0].Diff, "@@ -") || !strings.HasSuffix(ch.Events[0].Diff, wantLine) {
				t.Errorf("list_changes with diff: %+v, want the line added", ch.Events)
			}
			var r tools.ReadFileResult
			a.mustCall("read_file", map[string]any{"path": "main.go", "since": before.SHA256}, &r)
			if r.Diff == nil || *r.Diff != ch.Events[0].Diff || r.Content != "" || r.SHA256 != sum(edited) {
				t.Errorf("read_file since: %+v, want the same diff as list_changes", r)
			}
		})
	}
}

// remoteAgents starts "filecast mcp --http --hub base" and returns how to
// start an agent of the hub at base over each transport: stdio (its own
// "filecast mcp --hub") and streamable HTTP (to that server).
func remoteAgents(t *testing.T, base string) map[string]func() *agent {
	t.Helper()
	mcpAddr := freeAddr(t)
	startProc(t, "mcp", "--http", mcpAddr, "--hub", base)
	url := "http://" + mcpAddr + "/mcp"
	waitMCP(t, url)
	return map[string]func() *agent{
		"stdio": func() *agent { return startStdio(t, legacyVersion, "--hub", base) },
		"http": func() *agent {
			c, err := client.NewStreamableHttpClient(url)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			return newAgent(t, c, legacyVersion)
		},
	}
}
