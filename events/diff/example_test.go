package diff_test

import (
	"fmt"

	"github.com/filecast/filecast/events/diff"
)

func Example() {
	old := []byte("# Plan\n- read the spec\n- write the parser\n- test it\n- ship\n")
	cur := []byte("# Plan\n- read the spec\n- write the parser\n- fuzz it\n- ship\n- celebrate\n")
	if !diff.IsText(old) || !diff.IsText(cur) {
		fmt.Println("binary")
		return
	}
	r := diff.Unified(old, cur, diff.Options{})
	fmt.Print(r.Text)
	fmt.Println(r.Added, "added,", r.Deleted, "deleted, truncated:", r.Truncated)
	// Output:
	// @@ -1,5 +1,6 @@
	//  # Plan
	//  - read the spec
	//  - write the parser
	// -- test it
	// +- fuzz it
	//  - ship
	// +- celebrate
	// 2 added, 1 deleted, truncated: false
}

// A created file: its first lines, within the bound.
func Example_created() {
	r := diff.Unified(nil, []byte("one\ntwo\nthree\nfour\n"), diff.Options{MaxBytes: 36})
	fmt.Print(r.Text)
	fmt.Println("truncated:", r.Truncated)
	// Output:
	// @@ -0,0 +1,3 @@
	// +one
	// +two
	// +three
	// truncated: true
}
