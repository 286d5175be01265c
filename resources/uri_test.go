package resources_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/resources"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		uri     string
		want    resources.Ref
		wantErr string
	}{
		{uri: "filecast://docs/a.md", want: resources.Ref{Workspace: "docs", Path: "a.md"}},
		{uri: "filecast://docs/reports/q3.md", want: resources.Ref{Workspace: "docs", Path: "reports/q3.md"}},
		{uri: "filecast://docs/", want: resources.Ref{Workspace: "docs", Folder: true}},
		{uri: "filecast://docs", want: resources.Ref{Workspace: "docs", Folder: true}},
		{uri: "filecast://docs/reports/", want: resources.Ref{Workspace: "docs", Path: "reports", Folder: true}},
		{uri: "file:///etc/passwd", wantErr: "starts with filecast://"},
		{uri: "filecast:///etc/passwd", wantErr: "valid workspace name"},
		{uri: "filecast://docs/../x", wantErr: "leaves the workspace"},
		{uri: "filecast://docs/a/../b", wantErr: "clean form"},
		{uri: "filecast://docs//a", wantErr: "absolute paths"},
		{uri: "filecast://docs/a//b", wantErr: "clean form"},
		{uri: "filecast://docs/a%2e", wantErr: "percent-escapes"},
		{uri: "filecast://docs/a\nb", wantErr: "control characters"},
		{uri: "filecast://docs/../", wantErr: "leaves the workspace"},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			got, err := resources.ParseURI(tt.uri)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, events.ErrBadPath) {
					t.Fatalf("err = %v, want ErrBadPath containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestRef_Covers(t *testing.T) {
	root := resources.Ref{Workspace: "docs", Folder: true}
	dir := resources.Ref{Workspace: "docs", Path: "a", Folder: true}
	file := resources.Ref{Workspace: "docs", Path: "a/b.md"}
	for _, tt := range []struct {
		ref      resources.Ref
		ws, path string
		want     bool
	}{
		{root, "docs", "x.md", true},
		{root, "src", "x.md", false},
		{dir, "docs", "a/b.md", true},
		{dir, "docs", "ab/c.md", false},
		{dir, "docs", "a", false},
		{file, "docs", "a/b.md", true},
		{file, "docs", "a/b.mdx", false},
	} {
		if got := tt.ref.Covers(tt.ws, tt.path); got != tt.want {
			t.Errorf("%v.Covers(%s, %s) = %v", tt.ref, tt.ws, tt.path, got)
		}
	}
}

// FuzzParseURI checks that a parsed URI round-trips and never names a path
// outside its workspace.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"filecast://docs/a.md", "filecast://docs/", "filecast://d/a/../b", "filecast://x/..", "filecast://w/a/b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		ref, err := resources.ParseURI(uri)
		if err != nil {
			return
		}
		if strings.HasPrefix(ref.Path, "/") || ref.Path == ".." || strings.HasPrefix(ref.Path, "../") || strings.Contains(ref.Path, "/../") {
			t.Fatalf("%q parsed to escaping path %q", uri, ref.Path)
		}
		again, err := resources.ParseURI(ref.String())
		if err != nil || again != ref {
			t.Fatalf("%q: round trip %q gave %+v, %v", uri, ref.String(), again, err)
		}
	})
}
