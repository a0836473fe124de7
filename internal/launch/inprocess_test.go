package launch

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/landlock"
	"github.com/kbox-go/kbox/internal/vfs"
)

func namespace(t *testing.T, mounts ...Mount) *vfs.Namespace {
	t.Helper()
	ns := vfs.NewNamespace()
	for _, m := range mounts {
		if err := ns.Add(m.Guest, m.Host, m.ReadOnly, m.Kind); err != nil {
			t.Fatal(err)
		}
	}
	ns.Seal()
	t.Cleanup(ns.Close)
	return ns
}

func TestInProcessGaps(t *testing.T) {
	if landlock.ABI() < MinLandlockABI {
		t.Skip("this kernel's Landlock is too old: every namespace has more gaps")
	}
	root := t.TempDir()
	// File metadata is never confined in-process (no Landlock right
	// covers it): that one gap is always there.
	metadataOnly := func(gaps []string) bool { return len(gaps) == 1 && strings.Contains(gaps[0], "metadata") }
	if gaps := InProcessGaps(namespace(t, Mount{Guest: "/", Host: root}, Mount{Guest: "/proc", Host: "/proc", Kind: vfs.KindProc})); !metadataOnly(gaps) {
		t.Errorf("a writable root and /proc: gaps %q, want only the metadata one", gaps)
	}
	if gaps := InProcessGaps(namespace(t, Mount{Guest: "/", Host: "/", ReadOnly: true})); !metadataOnly(gaps) {
		t.Errorf("the default root: gaps %q, want only the metadata one", gaps)
	}
	gaps := InProcessGaps(namespace(t, Mount{Guest: "/", Host: root}, Mount{Guest: "/host", Host: "/"}))
	if len(gaps) != 2 || !strings.Contains(gaps[1], "/proc/self/mem") {
		t.Errorf("the host's / writable: gaps %q, want the metadata and the /proc ones", gaps)
	}
}

func TestLandlockRules(t *testing.T) {
	root, ro := t.TempDir(), t.TempDir()
	ns := namespace(t, Mount{Guest: "/", Host: root}, Mount{Guest: "/ro", Host: ro, ReadOnly: true},
		Mount{Guest: "/proc", Host: "/proc", Kind: vfs.KindProc})
	const read = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	rights := map[string]uint64{}
	for _, r := range landlockRules(7, ns) {
		rights[r.Path] |= r.Access
	}
	if rights["/proc"] != read {
		t.Errorf("/proc: %#x, want read only (%#x)", rights["/proc"], read)
	}
	if rights[ro] != read|unix.LANDLOCK_ACCESS_FS_EXECUTE {
		t.Errorf("read-only mount: %#x", rights[ro])
	}
	if rights[root] != landlock.FSRights(7) {
		t.Errorf("writable root: %#x, want every right %#x", rights[root], landlock.FSRights(7))
	}
}
