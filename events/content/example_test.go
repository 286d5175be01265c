package content_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/filecast/filecast/events/content"
	"github.com/filecast/filecast/events/diff"
	"github.com/filecast/filecast/events/natsd"
)

func Example() {
	dir, err := os.MkdirTemp("", "content-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	srv, err := natsd.Start(ctx, natsd.Options{StoreDir: dir})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	st, err := content.Open(ctx, srv.Conn(), content.Options{Room: srv.Room})
	if err != nil {
		panic(err)
	}
	defer st.Close()

	docs := st.Workspace("docs")
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	before := []byte("func add(a, b int) int {\n\treturn a - b\n}\n")
	after := []byte("func add(a, b int) int {\n\treturn a + b\n}\n")

	// Indexing: the file as it is.
	if err := docs.Put(ctx, sum(before), before); err != nil {
		panic(err)
	}
	// The file changes: keep the new content, retire the old one.
	docs.Offer(sum(after), after)
	docs.Retire(sum(before))
	if err := st.Flush(ctx); err != nil {
		panic(err)
	}

	// Later, the diff of that change.
	prev, err := docs.Get(ctx, sum(before))
	if errors.Is(err, content.ErrNotStored) {
		fmt.Println("diff_unavailable: not_stored")
		return
	}
	fmt.Print(diff.Unified(prev, after, diff.Options{}).Text)
	// Output:
	// @@ -1,3 +1,3 @@
	//  func add(a, b int) int {
	// -	return a - b
	// +	return a + b
	//  }
}
