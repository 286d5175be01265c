package hub_test

import (
	"testing"

	"github.com/filecast/filecast/events/hub"
)

func TestIsTempName(t *testing.T) {
	for _, name := range []string{hub.TempName("a.txt"), hub.TempName("x"), hub.TempName(".hidden")} {
		if !hub.IsTempName(name) {
			t.Errorf("IsTempName(%q) = false for a name TempName gave", name)
		}
	}
	for _, name := range []string{"", ".tmp", "..filecast-0123456789abcdef.tmp", ".filecast-0123456789abcdef.tmp", "a.filecast-0123456789abcdef.tmp", ".a.filecast-0123456789abcdeg.tmp", ".a.filecast-0123456789abcdef.tmp.x"} {
		if hub.IsTempName(name) {
			t.Errorf("IsTempName(%q) = true", name)
		}
	}
}
