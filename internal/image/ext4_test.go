package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

// TestUnpackExt4: an ext4 image made by mke2fs -d (with, as root, other
// owners, a set-uid file and a device node; a directory hard link made by
// debugfs that loops back to the root) unpacks to the same tree with its
// owners recorded.
func TestUnpackExt4(t *testing.T) {
	mke2fs, err := exec.LookPath("mke2fs")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/mke2fs"); err != nil {
			t.Skip("mke2fs (e2fsprogs) not installed")
		}
		mke2fs = "/usr/sbin/mke2fs"
	}
	// busybox's mke2fs (the arm64 test VM's) has no -d.
	if out, _ := exec.Command(mke2fs, "-V").CombinedOutput(); !strings.Contains(string(out), "EXT2FS Library") {
		t.Skipf("%s is not e2fsprogs' mke2fs (no -d): %.60q", mke2fs, out)
	}
	base := t.TempDir()
	stage := filepath.Join(base, "stage")
	for _, d := range []string{"bin", "etc", "home/user", "dev"} {
		if err := os.MkdirAll(filepath.Join(stage, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(stage, "bin/tool"), []byte("tool"), 0o755)
	os.WriteFile(filepath.Join(stage, "etc/conf"), []byte("conf"), 0o644)
	os.Link(filepath.Join(stage, "bin/tool"), filepath.Join(stage, "bin/tool2"))
	os.Symlink("../etc/conf", filepath.Join(stage, "bin/conf"))
	os.Symlink("/../../..", filepath.Join(stage, "up"))
	root := os.Getuid() == 0
	if root {
		unix.Chmod(filepath.Join(stage, "bin/tool"), 0o4755)
		os.Chown(filepath.Join(stage, "home/user"), 1000, 1000)
		os.Chmod(filepath.Join(stage, "home/user"), 0o750)
		if err := unix.Mknod(filepath.Join(stage, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		unix.Chmod(filepath.Join(stage, "dev/null"), 0o666)
	}
	img := filepath.Join(base, "img.ext4")
	if out, err := exec.Command(mke2fs, "-q", "-t", "ext4", "-d", stage, "-b", "4096", img, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	if debugfs, err := exec.LookPath("debugfs"); err == nil {
		if out, err := exec.Command(debugfs, "-w", "-R", "ln / /etc/loop", img).CombinedOutput(); err != nil {
			t.Fatalf("debugfs: %v\n%s", err, out)
		}
	}
	dir := filepath.Join(base, "out")
	var warnings []string
	res, err := UnpackExt4(img, dir, func(f string, a ...any) { warnings = append(warnings, f) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bin/", "bin/conf -> ../etc/conf", "bin/tool =tool", "bin/tool2 =tool", "dev/", "etc/", "etc/conf =conf",
		"home/", "home/user/", "lost+found/", "up -> /../../.."}
	if root {
		want = append(want[:5], append([]string{"dev/null ="}, want[5:]...)...)
	}
	if got := tree(t, dir); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tree:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.HasPrefix(res.Meta.Digest, "ext4-sha256:") {
		t.Errorf("meta %+v", res.Meta)
	}
	if m, err := ReadMeta(dir); err != nil || m.Source != "ext4:"+img {
		t.Errorf("ReadMeta: %+v %v", m, err)
	}
	var a, b unix.Stat_t
	unix.Stat(filepath.Join(dir, "bin/tool"), &a)
	unix.Stat(filepath.Join(dir, "bin/tool2"), &b)
	if a.Ino != b.Ino {
		t.Errorf("bin/tool and bin/tool2 are not one inode")
	}
	uid := uint32(os.Getuid())
	gid := uint32(os.Getgid())
	checks := map[string]identity.Record{"etc/conf": {UID: uid, GID: gid, Mode: 0o644, Type: "file"}}
	if root {
		checks["bin/tool"] = identity.Record{Mode: 0o4755, Type: "file"}
		checks["home/user"] = identity.Record{UID: 1000, GID: 1000, Mode: 0o750, Type: "dir"}
		checks["dev/null"] = identity.Record{Mode: 0o666, Type: "char-1-3"}
	}
	for p, w := range checks {
		if r := record(t, filepath.Join(dir, p)); r != w {
			t.Errorf("%s: record %+v, want %+v", p, r, w)
		}
	}
	if _, err := exec.LookPath("debugfs"); err == nil && (len(warnings) != 1 || !strings.Contains(warnings[0], "second entry for a directory")) {
		t.Errorf("warnings %q, want the loop's", warnings)
	}
	// Not an ext4 image.
	os.WriteFile(filepath.Join(base, "junk"), make([]byte, 4<<20), 0o644)
	if _, err := UnpackExt4(filepath.Join(base, "junk"), filepath.Join(base, "out2"), nil); err == nil {
		t.Error("a file of zeros unpacked")
	}
	if _, err := os.Stat(filepath.Join(base, "out2")); !os.IsNotExist(err) {
		t.Errorf("a failed unpack left its root: %v", err)
	}
}
