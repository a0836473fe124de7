package tmpdirs

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestCleanStaleKeepsHeldRemovesOrphans(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	held, err := Make("tmp", 0o1777)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Remove()
	if fi, err := os.Stat(held.Path); err != nil || fi.Mode()&os.ModePerm != 0o777 || fi.Mode()&os.ModeSticky == 0 {
		t.Fatalf("mode of %s: %v %v", held.Path, fi.Mode(), err)
	}
	// An orphan: made by a process that is gone (its lock died with it).
	cmd := exec.Command("sh", "-c", `d=$(mktemp -d "$TMPDIR/kbox-run-exec-XXXXXX") && touch "$d/f" && echo "$d"`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	orphan := string(out[:len(out)-1])
	other := filepath.Join(os.TempDir(), "kbox-it-bin-123")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	removed := CleanStale()
	if len(removed) != 1 || removed[0] != orphan {
		t.Errorf("removed %q, want only %s", removed, orphan)
	}
	for _, keep := range []string{held.Path, other} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s was removed: %v", keep, err)
		}
	}
	held.Remove()
	if _, err := os.Stat(held.Path); !os.IsNotExist(err) {
		t.Errorf("Remove left %s", held.Path)
	}
}
