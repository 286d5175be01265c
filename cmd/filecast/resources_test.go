package main_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// TestMCPResources lists and reads files as resources, subscribes to a
// file and to the workspace root, and receives updated and list_changed
// notifications.
func TestMCPResources(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "readme.md"), "# hello")
	if err := os.WriteFile(filepath.Join(root, "img.bin"), []byte{0, 1, 2, 255}, 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "sub", "deep.txt"), "deep")
	a := startStdio(t, legacyVersion, "--root", "proj="+root, "--data", t.TempDir())
	ctx := t.Context()

	list, err := a.c.ListResources(ctx, mcp.ListResourcesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	uris := map[string]bool{}
	for _, r := range list.Resources {
		uris[r.URI] = true
	}
	for _, want := range []string{"filecast://proj/readme.md", "filecast://proj/img.bin", "filecast://proj/sub/deep.txt"} {
		if !uris[want] {
			t.Errorf("resources/list lacks %s (got %v)", want, uris)
		}
	}

	read := func(uri string) mcp.ResourceContents {
		req := mcp.ReadResourceRequest{}
		req.Params.URI = uri
		res, err := a.c.ReadResource(ctx, req)
		if err != nil {
			t.Fatalf("read %s: %v", uri, err)
		}
		if len(res.Contents) != 1 {
			t.Fatalf("read %s: %d contents", uri, len(res.Contents))
		}
		return res.Contents[0]
	}
	if tc, ok := read("filecast://proj/readme.md").(mcp.TextResourceContents); !ok || tc.Text != "# hello" || tc.MIMEType == "" {
		t.Errorf("readme.md = %#v", tc)
	}
	bc, ok := read("filecast://proj/img.bin").(mcp.BlobResourceContents)
	if !ok {
		t.Fatalf("img.bin is not a blob")
	}
	if b, err := base64.StdEncoding.DecodeString(bc.Blob); err != nil || string(b) != "\x00\x01\x02\xff" {
		t.Errorf("img.bin blob = %q, %v", b, err)
	}

	sub := func(uri string) {
		req := mcp.SubscribeRequest{}
		req.Params.URI = uri
		if err := a.c.Subscribe(ctx, req); err != nil {
			t.Fatalf("subscribe %s: %v", uri, err)
		}
	}
	sub("filecast://proj/readme.md")
	writeFile(t, filepath.Join(root, "readme.md"), "# changed")
	a.waitNote("updated readme.md", func(a *agent) bool { return updatedURIs(a)["filecast://proj/readme.md"] >= 1 })
	writeFile(t, filepath.Join(root, "sub", "deep.txt"), "not subscribed yet")

	sub("filecast://proj/")
	writeFile(t, filepath.Join(root, "sub", "new.txt"), "new")
	a.waitNote("updated sub/new.txt and list_changed", func(a *agent) bool {
		return updatedURIs(a)["filecast://proj/sub/new.txt"] >= 1 &&
			len(a.notifications("notifications/resources/list_changed")) >= 1
	})
	if n := updatedURIs(a)["filecast://proj/sub/deep.txt"]; n != 0 {
		// It changed before the folder subscription existed... unless the
		// folder subscription raced it; the write came first, so it must not
		// have been announced more than once.
		if n > 1 {
			t.Errorf("deep.txt announced %d times", n)
		}
	}
}
