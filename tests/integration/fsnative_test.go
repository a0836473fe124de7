package integration

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Tests that compare what a guest program gets under kbox with what the
// same program gets natively (chroot into the same root): file modes under
// the guest's umask, stat of cached directories, trailing slashes, O_PATH
// on symlinks.

// scNative runs sc natively in root (chroot) with working directory cwd,
// as root or as unprivUID, and returns its output.
func scNative(t *testing.T, root, cwd string, asRoot bool, ops []string) string {
	t.Helper()
	if !isRoot() {
		t.Skip("the native oracle needs root (chroot)")
	}
	chroot, err := exec.LookPath("chroot")
	if err != nil {
		t.Skip("chroot(8) not found")
	}
	var args []string
	if !asRoot {
		u := strconv.Itoa(unprivUID)
		args = append(args, "--userspec="+u+":"+u, "--groups="+u)
	}
	args = append(args, root, "/bin/sh", "-c", `cd "$1" || exit 99; shift; exec "$@"`, "sh", cwd, "/bin/sc")
	args = append(args, ops...)
	out, errOut, code := runKbox(t, runOpts{Bin: chroot, Args: args})
	if code != 0 {
		t.Fatalf("native %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// scGuest runs sc under kbox in the given tier and root mode.
func scGuest(t *testing.T, tier, mode string, v variant, root, cwd string, ops []string) string {
	t.Helper()
	args := append([]string{"--syscall-mode=" + tier, mode, root, "-w", cwd, "--", "/bin/sc"}, ops...)
	out, errOut, code := runKbox(t, runOpts{Unpriv: v.unpriv, Args: args})
	if code != 0 {
		t.Fatalf("kbox %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// nativeAsRoot says as whom the native oracle runs for a kbox variant: a
// -S guest is (virtual) root; a -r guest is who runs kbox.
func nativeAsRoot(mode string, v variant) bool { return mode == "-S" || !v.unpriv }

var statNoise = regexp.MustCompile(` (uid|gid|size|nlink|ino)=\S+`)

// comparable drops from sc's output what differs between two copies of a
// tree (inode numbers, link counts, sizes) and the owner, which the native
// run and a -S guest see differently.
func comparable(out string) []string {
	var r []string
	for _, l := range lines(out) {
		r = append(r, statNoise.ReplaceAllString(l, ""))
	}
	return r
}

// compareNative runs ops natively in dir n and under kbox in dir w (both
// fresh, made by prep) of one root, and fails on any difference.
func compareNative(t *testing.T, tier, mode string, v variant, prep func(t *testing.T, dir string), ops []string) {
	t.Helper()
	root := freshRoot(t, v.uid())
	for _, d := range []string{"n", "w"} {
		dir := filepath.Join(root, d)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if prep != nil {
			prep(t, dir)
		}
		chownTree(t, dir, v.uid())
	}
	want := comparable(scNative(t, root, "/n", nativeAsRoot(mode, v), ops))
	got := comparable(scGuest(t, tier, mode, v, root, "/w", ops))
	if diff := compareLines(want, got); diff != "" {
		t.Errorf("sc %s\nunder kbox (want = native):\n%s", strings.Join(ops, " "), diff)
	}
}

// splitOps splits sc ops; ” stands for an empty argument.
func splitOps(s string) []string {
	f := strings.Fields(s)
	for i := range f {
		if f[i] == "''" {
			f[i] = ""
		}
	}
	return f
}

// defaultACL gives dir a default POSIX ACL granting everyone rwx (user::rwx
// group::rwx other::rwx): files created in it take their mode from it, not
// from the umask. false when the file system has no ACLs.
func defaultACL(t *testing.T, dir string) bool {
	b := make([]byte, 4+3*8)
	binary.LittleEndian.PutUint32(b, 2)
	for i, tag := range []uint16{0x01, 0x04, 0x20} {
		e := b[4+8*i:]
		binary.LittleEndian.PutUint16(e, tag)
		binary.LittleEndian.PutUint16(e[2:], 7)
		binary.LittleEndian.PutUint32(e[4:], 0xffffffff)
	}
	if err := unix.Setxattr(dir, "system.posix_acl_default", b, 0); err != nil {
		t.Logf("no default ACL on %s: %v", dir, err)
		return false
	}
	return true
}

// TestUmaskCreate: every call that creates a file system object applies the
// guest's umask as Linux does (issue 18 class 3: umask 077 gave 0644).
func TestUmaskCreate(t *testing.T) {
	create := "open f O_CREAT|O_WRONLY 0666 , mkdir d 0777 , mknod p fifo 0666 , unix_bind s , " +
		"open e O_CREAT|O_EXCL|O_RDWR 0777 , openat cwd x O_CREAT|O_WRONLY|O_TRUNC 0644 , creat c 0666 , mkdirat cwd d/sub 0775 , " +
		"open . O_TMPFILE|O_WRONLY 0666 , fstat @10 , " +
		"stat f , stat d , stat p , stat s , stat e , stat x , stat c , stat d/sub"
	forEachTierModeVariant(t, func(t *testing.T, tier, mode string, v variant) {
		for _, mask := range []string{"077", "027", "0", "022", "002"} {
			t.Run("umask"+mask, func(t *testing.T) {
				compareNative(t, tier, mode, v, nil, splitOps("umask "+mask+" , "+create))
			})
		}
		t.Run("defaultACL", func(t *testing.T) {
			acl := true
			compareNative(t, tier, mode, v, func(t *testing.T, dir string) { acl = acl && defaultACL(t, dir) },
				splitOps("umask 077 , "+create))
			if !acl {
				t.Skip("the host file system has no POSIX ACLs")
			}
		})
	})
}

// TestCachedDirStat: a directory the resolver serves from its dentry cache
// has its whole status (issue 17 item 8: lstat("/etc/") gave mode 040000,
// and chown recorded mode 0000 for good).
func TestCachedDirStat(t *testing.T) {
	ops := "mkdir a 0751 , mkdir a/b 0700 , stat a/b , lstat a/ , stat a , lstat a , stat a/. , stat a/b/.. , " +
		"fstatat cwd a/ AT_SYMLINK_NOFOLLOW , statx cwd a/ AT_SYMLINK_NOFOLLOW , access a/ X_OK , " +
		"chown a 7 -1 , stat a , chmod a 0750 , stat a , chown a/ -1 7 , lstat a/ , stat a/b/.. , " +
		"mkdir s 0705 , stat s/ , lstat s/"
	forEachTierModeVariant(t, func(t *testing.T, tier, mode string, v variant) {
		root := freshRoot(t, v.uid())
		w := filepath.Join(root, "w")
		if err := os.Mkdir(w, 0o755); err != nil {
			t.Fatal(err)
		}
		chownTree(t, w, v.uid())
		got := comparable(scGuest(t, tier, mode, v, root, "/w", splitOps(ops)))
		// chown to 7 is recorded for a -S guest, allowed natively for
		// real root only, refused (EPERM) for a -r guest that is not root.
		chown := "chown: ok 0"
		if mode == "-r" && v.unpriv {
			chown = "chown: err EPERM"
		}
		want := []string{"mkdir: ok 0", "mkdir: ok 0", "stat: ok type=dir mode=0700", "lstat: ok type=dir mode=0751",
			"stat: ok type=dir mode=0751", "lstat: ok type=dir mode=0751", "stat: ok type=dir mode=0751", "stat: ok type=dir mode=0751",
			"fstatat: ok type=dir mode=0751", "statx: ok type=dir mode=0751", "access: ok 0",
			chown, "stat: ok type=dir mode=0751", "chmod: ok 0", "stat: ok type=dir mode=0750", chown,
			"lstat: ok type=dir mode=0750", "stat: ok type=dir mode=0750",
			"mkdir: ok 0", "stat: ok type=dir mode=0705", "lstat: ok type=dir mode=0705"}
		if diff := compareLines(want, got); diff != "" {
			t.Errorf("sc %s\n%s", ops, diff)
		}
		// The same ops natively give the same modes.
		if mode == "-S" || !v.unpriv {
			n := filepath.Join(root, "n")
			if err := os.Mkdir(n, 0o755); err != nil {
				t.Fatal(err)
			}
			chownTree(t, n, v.uid())
			native := comparable(scNative(t, root, "/n", nativeAsRoot(mode, v), splitOps(ops)))
			if diff := compareLines(native, got); diff != "" {
				t.Errorf("native differs:\n%s", diff)
			}
		}
	})
}
