package workspace_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

func TestClean(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"a.md", "a.md", true},
		{"./a.md", "a.md", true},
		{"docs//x/../a.md", "docs/a.md", true},
		{"docs/", "", false},
		{"in.txt/", "", false},
		{"in.txt/.", "", false},
		{"a/in.txt//", "", false},
		{"a/in.txt/..", "a", true},
		{".gitignore", ".gitignore", true},
		{".github/workflows/ci.yml", ".github/workflows/ci.yml", true},
		{"x.git/config", "x.git/config", true},
		{"git/config", "git/config", true},
		{"ünïcode/文件.txt", "ünïcode/文件.txt", true},
		{"", "", false},
		{".", "", false},
		{"..", "", false},
		{"../etc/passwd", "", false},
		{"a/../../b", "", false},
		{"/etc/passwd", "", false},
		{"a\x00b", "", false},
		{"a\nb", "", false},
		{"a\\b", "", false},
		{"\xff\xfe", "", false},
		{strings.Repeat("a", workspace.MaxPathLen+1), "", false},
	}
	for _, tt := range tests {
		got, err := workspace.Clean(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("Clean(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, events.ErrBadPath) {
				t.Errorf("Clean(%q) error %v does not wrap ErrBadPath", tt.in, err)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("Clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"a", "../a", "/a", "a/./b", "a\x00", "..//..", "a/b/../../..", ".git/config", "x/.G\u200cIT./hooks", "a/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c, err := workspace.Clean(p)
		if err != nil {
			return
		}
		if c == "" || c == "." || strings.HasPrefix(c, "/") || c == ".." || strings.HasPrefix(c, "../") || strings.Contains(c, "/../") || strings.HasSuffix(c, "/..") {
			t.Fatalf("Clean(%q) = %q escapes or is empty", p, c)
		}
		if strings.ContainsAny(c, "\x00\n\\") {
			t.Fatalf("Clean(%q) = %q keeps a forbidden character", p, c)
		}
		if workspace.InVCS(c) {
			t.Fatalf("Clean(%q) = %q, inside a version-control folder", p, c)
		}
		if again, err := workspace.Clean(c); err != nil || again != c {
			t.Fatalf("Clean not idempotent: %q -> %q -> %q %v", p, c, again, err)
		}
	})
}

// TestClean_VCS refuses version-control folders and everything in them,
// at any depth and however the name is spelt on a case-insensitive file
// system, with events.ErrVCSInternal.
func TestClean_VCS(t *testing.T) {
	for _, p := range []string{
		".git", ".git/", ".git/config", ".git/hooks/pre-commit", "./.git/HEAD",
		"vendor/x/.git/config", "a/b/c/.git", "docs/../.git/config",
		".hg/hgrc", "sub/.hg", ".svn/entries", "x/.svn/wc.db",
		".GIT/config", ".Git/hooks/post-checkout", ".HG/hgrc", "sub/.SvN/x",
		".g\u200cit/config", "\ufeff.git/config", ".git./config", ".git /config", ".git../x",
	} {
		t.Run(p, func(t *testing.T) {
			_, err := workspace.Clean(p)
			if !errors.Is(err, events.ErrVCSInternal) {
				t.Fatalf("Clean(%q) error = %v, want ErrVCSInternal", p, err)
			}
			if errors.Is(err, events.ErrBadPath) {
				t.Errorf("Clean(%q) error %v also wraps ErrBadPath", p, err)
			}
			if !strings.Contains(err.Error(), "version-control") {
				t.Errorf("Clean(%q) error %q does not say why", p, err)
			}
			if !workspace.InVCS(strings.TrimSuffix(strings.TrimPrefix(p, "./"), "/")) && !strings.Contains(p, "..") {
				t.Errorf("InVCS(%q) = false", p)
			}
		})
	}
	// A folder prefix (listings, resource folders) is refused the same way.
	for _, p := range []string{".git/", ".git", "sub/.hg/", "x/.svn"} {
		if _, err := workspace.CleanPrefix(p); !errors.Is(err, events.ErrVCSInternal) {
			t.Errorf("CleanPrefix(%q) error = %v, want ErrVCSInternal", p, err)
		}
	}
	for _, p := range []string{".gitignore", ".gitattributes", ".github", "git", "my.git", ".gits/x", "..", ".", "a/.g/it"} {
		if workspace.InVCS(p) {
			t.Errorf("InVCS(%q) = true", p)
		}
	}
}

// TestCleanPrefix keeps the trailing "/" of a folder prefix, which Clean
// refuses for a file.
func TestCleanPrefix(t *testing.T) {
	for in, want := range map[string]string{"": "", "/": "", ".": "", "docs": "docs", "docs/": "docs", "a/b/": "a/b", "docs/.": "docs"} {
		got, err := workspace.CleanPrefix(in)
		if err != nil || got != want {
			t.Errorf("CleanPrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"../", "/etc/", "a\x00/"} {
		if _, err := workspace.CleanPrefix(in); !errors.Is(err, events.ErrBadPath) {
			t.Errorf("CleanPrefix(%q) error = %v, want ErrBadPath", in, err)
		}
	}
}

func TestParse(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "my-docs")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.Parse(sub)
	if err != nil || ws.Name != "my-docs" {
		t.Fatalf("Parse(dir) = %+v, %v", ws, err)
	}
	ws, err = workspace.Parse("notes=" + sub)
	if err != nil || ws.Name != "notes" {
		t.Fatalf("Parse(NAME=dir) = %+v, %v", ws, err)
	}
	for _, bad := range []string{filepath.Join(dir, "missing"), "bad/name=" + sub, "=" + sub + "x"} {
		if _, err := workspace.Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
	f := filepath.Join(dir, "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := workspace.Parse(f); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("Parse(file) = %v", err)
	}
}

func TestWorkspace_ReadFile(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.txt")
	if err := os.WriteFile(secret, []byte("top secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.Parse(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, ws.Abs("docs/a.txt"), "hello")
	mustWrite(t, ws.Abs("big.bin"), strings.Repeat("x", 100))
	if err := os.Symlink(secret, ws.Abs("escape.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("docs/a.txt", ws.Abs("inside.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, ws.Abs("outdir")); err != nil {
		t.Fatal(err)
	}

	data, _, err := ws.ReadFile("docs/a.txt", 1<<20)
	if err != nil || string(data) != "hello" {
		t.Fatalf("ReadFile = %q, %v", data, err)
	}
	data, _, err = ws.ReadFile("inside.txt", 1<<20)
	if err != nil || string(data) != "hello" {
		t.Fatalf("ReadFile(link inside) = %q, %v", data, err)
	}
	for _, p := range []string{"escape.txt", "outdir/secret.txt"} {
		data, _, err = ws.ReadFile(p, 1<<20)
		if !errors.Is(err, events.ErrBadPath) || len(data) != 0 {
			t.Errorf("ReadFile(%s) = %q, %v; want ErrBadPath", p, data, err)
		}
	}
	if _, _, err := ws.ReadFile("missing", 1<<20); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("ReadFile(missing) = %v", err)
	}
	if _, _, err := ws.ReadFile("docs", 1<<20); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("ReadFile(folder) = %v", err)
	}
	if _, _, err := ws.ReadFile("big.bin", 10); !errors.Is(err, events.ErrTooLarge) {
		t.Errorf("ReadFile(big) = %v", err)
	}
}

// TestWorkspace_ReadFile_LinkIntoVCS refuses a symbolic link that leads
// into a version-control folder, by its own name or through a linked
// folder.
func TestWorkspace_ReadFile_LinkIntoVCS(t *testing.T) {
	ws, err := workspace.Parse(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, ws.Abs(".git/config"), "[remote]\n\turl = https://user:secret@example.com/r.git\n")
	mustWrite(t, ws.Abs("sub/.hg/hgrc"), "[hooks]\n")
	mustWrite(t, ws.Abs("plain.txt"), "ok")
	for link, target := range map[string]string{"cfg": ".git/config", "gitdir": ".git", "hgrc": "sub/.hg/hgrc", "ok.txt": "plain.txt"} {
		if err := os.Symlink(target, ws.Abs(link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"cfg", "gitdir/config", "hgrc"} {
		data, _, err := ws.ReadFile(p, 1<<20)
		if !errors.Is(err, events.ErrVCSInternal) || len(data) != 0 {
			t.Errorf("ReadFile(%s) = %q, %v; want ErrVCSInternal", p, data, err)
		}
	}
	if data, _, err := ws.ReadFile("ok.txt", 1<<20); err != nil || string(data) != "ok" {
		t.Errorf("ReadFile(ok.txt) = %q, %v", data, err)
	}
}

func TestWorkspace_Rel(t *testing.T) {
	ws := workspace.Workspace{Name: "w", Dir: "/srv/w"}
	for in, want := range map[string]string{"/srv/w/a": "a", "/srv/w/x/y": "x/y", "/srv/w": "", "/srv/wx/a": "", "/srv": ""} {
		got, ok := ws.Rel(in)
		if got != want || ok != (want != "") {
			t.Errorf("Rel(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestIgnorer(t *testing.T) {
	ig, err := workspace.NewIgnorer([]string{"build/", "*.log"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path  string
		isDir bool
		want  bool
	}{
		{".git", true, true},
		{".git/HEAD", false, true},
		{"sub/.git/config", false, true},
		{"node_modules/.cache/x", false, true},
		{"node_modules/pkg/index.js", false, false},
		{"a.txt.swp", false, true},
		{".a.txt.swp", false, true},
		{"notes.md~", false, true},
		{".#notes.md", false, true},
		{"#notes.md#", false, true},
		{"build", true, true},
		{"build/out.o", false, true},
		{"src/app.log", false, true},
		{"src/app.go", false, false},
		{"gitignore.md", false, false},
		{".GIT/config", false, true},
		{"vendor/x/.Hg", true, true},
		{"a/.svn/entries", false, true},
		{".gitignore", false, false},
	}
	for _, tt := range tests {
		if got := ig.Ignored(tt.path, tt.isDir); got != tt.want {
			t.Errorf("Ignored(%q, dir=%v) = %v, want %v", tt.path, tt.isDir, got, tt.want)
		}
	}
	if _, err := workspace.NewIgnorer([]string{"[bad"}); err == nil {
		t.Error("NewIgnorer accepted a bad glob")
	}
}

// TestIgnorer_Deep checks paths thousands of folders deep: an ignored
// folder anywhere on the way ignores what is under it, and IgnoredChild,
// for a path whose parent is known not to be ignored, agrees with Ignored.
func TestIgnorer_Deep(t *testing.T) {
	ig, err := workspace.NewIgnorer([]string{"build/"})
	if err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat("d/", 2000)
	for _, tt := range []struct {
		path  string
		isDir bool
		want  bool
	}{
		{deep + "f.txt", false, false},
		{deep + "f.swp", false, true},
		{deep + ".git", true, true},
		{deep + ".git/x/" + deep + "f.txt", false, true},
		{deep + "node_modules/.cache/" + deep + "f", false, true},
		{"build/" + deep + "f.txt", false, true},
		{deep + "build/f.txt", false, true},
		{deep + "builder/f.txt", false, false},
	} {
		if got := ig.Ignored(tt.path, tt.isDir); got != tt.want {
			t.Errorf("Ignored(…%q, dir=%v) = %v, want %v", tt.path[len(tt.path)-min(len(tt.path), 40):], tt.isDir, got, tt.want)
		}
	}
	for _, tt := range []struct {
		path  string
		isDir bool
		want  bool
	}{
		{deep + "f.txt", false, false},
		{deep + "f.swp", false, true},
		{deep + ".git", true, true},
		{deep + "node_modules/.cache", true, true},
		{"build", true, true},
	} {
		if got := ig.IgnoredChild(tt.path, tt.isDir); got != tt.want {
			t.Errorf("IgnoredChild(…%q, dir=%v) = %v, want %v", tt.path[len(tt.path)-min(len(tt.path), 40):], tt.isDir, got, tt.want)
		}
	}
	// IgnoredChild looks at the path alone, not at its parents.
	if ig.IgnoredChild("build/out.o", false) {
		t.Error("IgnoredChild(build/out.o) looked at the parent folder")
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
