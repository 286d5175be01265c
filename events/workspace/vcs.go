package workspace

import (
	"strings"
	"unicode/utf8"

	"github.com/filecast/filecast/events"
)

// VCSFolders are the version-control folders filecast never reads, writes,
// lists or locks anything in, at any depth: a hook or a configuration
// entry there (core.fsmonitor, hooks/pre-commit, [hooks] in hgrc) runs
// code the next time the tool runs.
var VCSFolders = []string{".git", ".hg", ".svn"}

// InVCS reports whether the clean relative path rel is a version-control
// folder (see VCSFolders) or lies inside one, at any depth. Names are
// compared the way case-insensitive file systems do: ".GIT" and ".Git"
// count, as does a name with the code points HFS+ ignores (".g\u200cit")
// or the trailing dots and spaces Windows drops.
func InVCS(rel string) bool {
	_, ok := vcsSegment(rel)
	return ok
}

// vcsSegment returns the first segment of rel that names a version-control
// folder.
func vcsSegment(rel string) (string, bool) {
	for seg := range strings.SplitSeq(rel, "/") {
		if isVCSName(seg) {
			return seg, true
		}
	}
	return "", false
}

func isVCSName(seg string) bool {
	if len(seg) < 3 {
		return false
	}
	if !isASCII(seg) {
		seg = strings.Map(func(r rune) rune {
			if hfsIgnored(r) {
				return -1
			}
			return r
		}, seg)
	}
	seg = strings.TrimRight(seg, ". ")
	for _, d := range VCSFolders {
		if strings.EqualFold(seg, d) {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// hfsIgnored reports the code points HFS+ leaves out when it compares
// names (the list git checks for the same reason).
func hfsIgnored(r rune) bool {
	switch {
	case r >= 0x200c && r <= 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x206a && r <= 0x206f, r == 0xfeff:
		return true
	}
	return false
}

// vcsError is the error of a path in a version-control folder.
func vcsError(rel, seg string) error {
	return &events.Error{Kind: events.ErrVCSInternal, Value: rel,
		Why: seg + " is a version-control folder, whose hooks and configuration run code: filecast never reads, writes, lists or locks anything in it; use the version-control tool itself"}
}
