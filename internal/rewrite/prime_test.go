//go:build linux

package rewrite

import (
	"debug/elf"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

// TestPrime: the supervisor plans a program and its libraries
// from their files, once; what it stores is what Plan finds in the
// section's bytes.
func TestPrime(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the host's programs are not x86-64")
	}
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	ns := vfs.NewNamespace()
	if err := ns.Add("/", "/", true, vfs.KindBind); err != nil {
		t.Fatal(err)
	}
	ns.Seal()
	defer ns.Close()
	prog := "/bin/true"
	n := Prime(ns, X86_64, prog)
	if n == 0 {
		t.Fatalf("PrimePlanCache(%s) stored no plan", prog)
	}
	if again := Prime(ns, X86_64, prog); again != 0 {
		t.Errorf("a second run stored %d plans, want 0 (all cached)", again)
	}
	f, err := os.Open(prog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		t.Fatal(err)
	}
	text := ef.Section(".text")
	if text == nil {
		t.Skip("no .text in " + prog)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	code, err := text.Data()
	if err != nil {
		t.Fatal(err)
	}
	want, wantFound := X86_64.Plan(code)
	c := Cache{dir: filepath.Join(cache, "kbox", "rewrite-plans"), readOnly: true}
	got, found, ok := c.Load(Key(&st, text.Offset, text.Size))
	if !ok || found != wantFound || !slices.Equal(got, want) {
		t.Errorf("cached plan of %s .text: ok=%v found=%d (want %d), %d sites (want %d)", prog, ok, found, wantFound, len(got), len(want))
	}
}
