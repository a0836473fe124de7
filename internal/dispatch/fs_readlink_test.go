package dispatch

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadlinkLastComponent: readlink reads a plain last component with
// one readlinkat in kbox's descriptor of its parent, and everything the
// resolver must interpret is still resolved in full: a mount point whose
// placeholder in the host tree is a symlink reads as the mounted
// directory (EINVAL), procfs links read as the guest sees them, a
// trailing slash follows the link.
func TestReadlinkLastComponent(t *testing.T) {
	h := newHarness(t, withProc())
	for _, dir := range []string{h.root, h.hosts["/mnt"], h.hosts["/ro"]} {
		if err := os.Symlink("f", filepath.Join(dir, "l")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../x", filepath.Join(dir, "d", "up")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("d", filepath.Join(h.root, "ld")); err != nil {
		t.Fatal(err)
	}
	// The placeholder of the /ro mount becomes a symlink on the host: the
	// guest still reaches the mounted directory there.
	if err := os.Remove(filepath.Join(h.root, "ro")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(h.root, "ro")); err != nil {
		t.Fatal(err)
	}
	readlink := func(p string) (string, Result) {
		buf := h.alloc(64)
		res := h.call("readlink", h.str(p), buf, 64)
		if res.Kind != Value || res.Val < 0 {
			return "", res
		}
		return string(h.read(buf, int(res.Val))), res
	}
	for _, c := range []struct {
		path, text string
		err        unix.Errno
	}{
		{"/l", "f", 0},
		{"/mnt/l", "f", 0},
		{"/ro/l", "f", 0},
		{"/d/up", "../x", 0},
		{"/ld/up", "../x", 0},
		{"/mnt/d/up", "../x", 0},
		{"/ro/d/../d/up", "../x", 0},
		{"/d/up", "../x", 0}, // again, from the directory cache
		{"/ro", "", unix.EINVAL},
		{"/mnt", "", unix.EINVAL},
		{"/mnt/null", "", unix.EINVAL},
		{"/f", "", unix.EINVAL},
		{"/d", "", unix.EINVAL},
		{"/ld/", "", unix.EINVAL},
		{"/nope", "", unix.ENOENT},
		{"/d/nope", "", unix.ENOENT},
		{"/f/x", "", unix.ENOTDIR},
		{"/proc/self", strconv.Itoa(h.proc.Tgid), 0},
		{"/proc/self/cwd", "/", 0},
		{"/proc/self/root", "/", 0},
	} {
		text, res := readlink(c.path)
		switch {
		case c.err != 0:
			expect(t, "readlink "+c.path, res, Fail(c.err))
		case res.Kind != Value || res.Val != int64(len(c.text)) || text != c.text:
			t.Errorf("readlink %s = %+v %q, want %q", c.path, res, text, c.text)
		}
	}
	// readlinkat relative to a guest descriptor of a directory.
	d := h.open(filepath.Join(h.root, "d"), unix.O_RDONLY|unix.O_DIRECTORY)
	buf := h.alloc(64)
	if res := h.call("readlinkat", uint64(d), h.str("up"), buf, 64); res.Kind != Value || res.Val != 4 || string(h.read(buf, 4)) != "../x" {
		t.Errorf("readlinkat(d, up) = %+v %q", res, h.read(buf, 4))
	}
}
