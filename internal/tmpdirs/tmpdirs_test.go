package tmpdirs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
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

// TestCandidates: the directory read finds every directory named
// Prefix+..., however many other entries the temporary directory has (more
// than one getdents buffer here), and no file nor other name.
func TestCandidates(t *testing.T) {
	dir := t.TempDir()
	want := map[string]bool{}
	for i := 0; i < 3000; i++ {
		name := fmt.Sprintf("other-entry-with-a-long-name-%04d", i)
		if i%500 == 0 {
			name = fmt.Sprintf("%sexec-%d", Prefix, i)
			want[name] = true
		}
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, Prefix+"file-1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, Prefix), 0o755); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, n := range candidates(dir) {
		got[n] = true
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("candidates = %v, want %v", got, want)
	}
}

func BenchmarkCandidates(b *testing.B) {
	for i := 0; i < b.N; i++ {
		candidates(os.TempDir())
	}
}
