package dispatch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

// getcwd returns the guest's getcwd answer with a buffer of size bytes.
func (h *harness) getcwd(size int) (string, Result) {
	buf := h.alloc(max(size, 1))
	res := h.call("getcwd", buf, uint64(size))
	if res.Kind != Value {
		return "", res
	}
	return h.cstr(buf), res
}

// nativeGetcwd is the raw getcwd syscall (the length, NUL included).
func nativeGetcwd(size int) (string, Result) {
	buf := make([]byte, max(size, 1))
	n, _, en := unix.Syscall(unix.SYS_GETCWD, ptrOf(buf), uintptr(size), 0)
	keepAlive(buf)
	if en != 0 {
		return "", Fail(en)
	}
	return string(buf[:n-1]), Ok(int64(n))
}

// TestChdirNative: chdir, then getcwd, in the guest and natively from a
// directory laid out alike; the errors are the native ones, and the
// working directory the guest reads back is the native one with the
// native directory's prefix removed.
func TestChdirNative(t *testing.T) {
	native := t.TempDir()
	populate(t, native)
	h := newHarness(t)
	h.separateGuest()
	for _, dir := range []string{h.root, native} {
		os.Symlink("d", filepath.Join(dir, "ld"))
		os.Symlink("nowhere", filepath.Join(dir, "dangling"))
	}
	if err := os.MkdirAll(native+"/mnt/d", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		steps []string // chdir arguments, in order (relative ones from the previous)
		cwd   string   // the guest's getcwd after the steps
	}{
		{"directory", []string{"/d"}, "/d"},
		{"relative", []string{"d"}, "/d"},
		{"file", []string{"/f"}, "/"},
		{"missing", []string{"/nope"}, "/"},
		{"empty path", []string{""}, "/"},
		{"below a file", []string{"/f/x"}, "/"},
		{"symlink to a directory", []string{"/ld"}, "/d"},
		{"dangling symlink", []string{"/dangling"}, "/"},
		{"dot-dot", []string{"/d", ".."}, "/"},
		{"dot-dot above the root", []string{"/d", "/.."}, "/"},
		{"second mount and back", []string{"/mnt/d", "../..", "mnt"}, "/mnt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			expect(t, "chdir / first", h.call("chdir", h.str("/")), Ok(0))
			var want []Result
			var nativeCwd string
			inDir(t, native, func() {
				for _, s := range c.steps {
					if s != "" && s[0] == '/' {
						s = native + s
					}
					if s == native+"/.." {
						s = native // the guest's root is its own ".."
					}
					want = append(want, ret(0, unix.Chdir(s)))
				}
				nativeCwd, _ = nativeGetcwd(4096)
			})
			for i, s := range c.steps {
				p := h.str(s)
				expect(t, "chdir "+s, h.call("chdir", p), want[i])
			}
			got, res := h.getcwd(4096)
			if rel := "/" + strings.TrimPrefix(strings.TrimPrefix(nativeCwd, native), "/"); rel != c.cwd {
				t.Fatalf("native cwd %s: the table's %s is wrong", nativeCwd, c.cwd)
			}
			if res.Kind != Value || got != c.cwd || res.Val != int64(len(c.cwd)+1) {
				t.Errorf("getcwd: %q (%s), want %q (%d)", got, resultString(res), c.cwd, len(c.cwd)+1)
			}
		})
	}
}

// TestGetcwd: the buffer must hold the path and its NUL (ERANGE
// otherwise, checked natively); a removed working directory is ENOENT;
// bad pointers are EFAULT.
func TestGetcwd(t *testing.T) {
	native := t.TempDir()
	var n int
	var sizes [3]Result
	inDir(t, native, func() {
		p, _ := nativeGetcwd(4096)
		n = len(p) + 1
		_, sizes[0] = nativeGetcwd(n)
		_, sizes[1] = nativeGetcwd(n - 1)
		_, sizes[2] = nativeGetcwd(0)
	})
	if !same(sizes[0], Ok(int64(n))) || !same(sizes[1], Fail(unix.ERANGE)) || !same(sizes[2], Fail(unix.ERANGE)) {
		t.Fatalf("native getcwd with %d bytes: %v", n, sizes)
	}
	h := newHarness(t)
	expect(t, "chdir /d", h.call("chdir", h.str("/d")), Ok(0))
	for _, c := range []struct {
		size int
		want Result
	}{{4096, Ok(3)}, {3, Ok(3)}, {2, Fail(unix.ERANGE)}, {1, Fail(unix.ERANGE)}, {0, Fail(unix.ERANGE)}} {
		_, res := h.getcwd(c.size)
		expect(t, "getcwd size "+resultString(Ok(int64(c.size))), res, c.want)
	}
	expect(t, "getcwd bad buffer", h.call("getcwd", badAddr, 4096), Fail(unix.EFAULT))
	// Linux: getcwd of a removed directory is ENOENT.
	var removed Result
	gone := filepath.Join(native, "gone")
	if err := os.Mkdir(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	inDir(t, gone, func() {
		if err := unix.Rmdir(gone); err == nil {
			_, removed = nativeGetcwd(4096)
		}
	})
	if err := os.Mkdir(h.root+"/gone", 0o755); err != nil {
		t.Fatal(err)
	}
	expect(t, "chdir /gone", h.call("chdir", h.str("/gone")), Ok(0))
	expect(t, "rmdir /gone", h.call("rmdir", h.str("/gone")), Ok(0))
	_, res := h.getcwd(4096)
	expect(t, "getcwd of a directory the guest removed", res, removed)
	expect(t, "chdir bad pointer", h.call("chdir", badAddr), Fail(unix.EFAULT))
}

// TestFchdir: fchdir to a directory descriptor sets the guest path of
// that directory; a file is ENOTDIR, a bad descriptor EBADF, a directory
// the guest's mounts do not reach EACCES (it has no guest path).
func TestFchdir(t *testing.T) {
	h := newHarness(t)
	native := t.TempDir()
	populate(t, native)
	nfile := h.open(native+"/f", unix.O_RDONLY)
	for _, c := range []struct {
		name string
		fd   int
		want Result
		cwd  string
	}{
		{"directory", h.open(h.root+"/d", unix.O_RDONLY|unix.O_DIRECTORY), Ok(0), "/d"},
		{"O_PATH directory", h.open(h.hosts["/mnt"]+"/d", unix.O_PATH), Ok(0), "/mnt/d"},
		{"read-only bind", h.open(h.hosts["/ro"], unix.O_PATH), Ok(0), "/ro"},
		{"file", h.open(h.root+"/f", unix.O_RDONLY), ret(0, unix.Fchdir(nfile)), ""},
		{"bad descriptor", -1, ret(0, unix.Fchdir(-1)), ""},
		{"outside the mounts", h.open(native, unix.O_PATH), Fail(unix.EACCES), ""},
	} {
		before, _ := h.getcwd(4096)
		expect(t, "fchdir "+c.name, h.call("fchdir", g64(c.fd)), c.want)
		want := c.cwd
		if want == "" {
			want = before
		}
		if got, _ := h.getcwd(4096); got != want {
			t.Errorf("fchdir %s: cwd %q, want %q", c.name, got, want)
		}
	}
}

// TestChdirPermission: a guest that left root (setresuid to 1000, as su
// does) may not enter a directory without search permission for it
// (path_resolution(7)): EACCES, as natively for the same ids.
func TestChdirPermission(t *testing.T) {
	h := newHarness(t, virtualID(identity.Config{UID: 0, GID: 0}))
	native := t.TempDir()
	for _, dir := range []string{h.root + "/private", native + "/private"} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	want := Fail(unix.EACCES)
	if os.Geteuid() == 0 {
		onThread(func() {
			if _, _, en := unix.RawSyscall(unix.SYS_SETRESUID, 1000, 1000, 1000); en != 0 {
				want = Fail(en)
				return
			}
			want = ret(0, unix.Access(native+"/private/.", unix.X_OK))
			if fd, err := unix.Open(native+"/private", unix.O_PATH, 0); err == nil {
				want = ret(0, unix.Fchdir(fd))
				unix.Close(fd)
			}
		})
	}
	expect(t, "chdir as root", h.call("chdir", h.str("/private")), Ok(0))
	expect(t, "chdir /", h.call("chdir", h.str("/")), Ok(0))
	expect(t, "setresuid 1000", h.call("setresuid", 1000, 1000, 1000), Ok(0))
	expect(t, "chdir as 1000", h.call("chdir", h.str("/private")), want)
	expect(t, "chdir /d as 1000", h.call("chdir", h.str("/d")), Ok(0))
}

// TestChroot: chroot needs privilege (CAP_SYS_CHROOT: a virtual root, or
// a guest holding real capabilities), then makes the directory the
// process's "/": absolute paths and ".." stop there, and getcwd reports
// a working directory outside it as "(unreachable)", as Linux does.
func TestChroot(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []harnessOpt
		want Result
	}{
		{"host identity", nil, Fail(unix.EPERM)},
		{"host identity with capabilities", []harnessOpt{guestCaps()}, Ok(0)},
		{"virtual root", []harnessOpt{virtualID(identity.Config{UID: 0})}, Ok(0)},
		{"virtual user", []harnessOpt{virtualID(identity.Config{UID: 1000, GID: 1000})}, Fail(unix.EPERM)},
	} {
		h := newHarness(t, c.opts...)
		expect(t, c.name+": chroot /d", h.call("chroot", h.str("/d")), c.want)
	}

	// The native oracle: getcwd of a cwd outside the root.
	if os.Geteuid() == 0 {
		native := t.TempDir()
		populate(t, native)
		var got string
		inDir(t, native, func() {
			if unix.Chroot(native+"/d") == nil {
				got, _ = nativeGetcwd(4096)
			}
		})
		if got != "(unreachable)"+native {
			t.Fatalf("native getcwd after chroot: %q", got)
		}
	}
	h := newHarness(t, virtualID(identity.Config{UID: 0}))
	if err := os.Mkdir(h.root+"/d/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	expect(t, "chroot /f", h.call("chroot", h.str("/f")), Fail(unix.ENOTDIR))
	expect(t, "chroot /nope", h.call("chroot", h.str("/nope")), Fail(unix.ENOENT))
	expect(t, "chroot bad pointer", h.call("chroot", badAddr), Fail(unix.EFAULT))
	expect(t, "chroot /d", h.call("chroot", h.str("/d")), Ok(0))
	if got, _ := h.getcwd(4096); got != "(unreachable)/" {
		t.Errorf("getcwd after chroot: %q, want (unreachable)/", got)
	}
	expect(t, "chdir /sub", h.call("chdir", h.str("/sub")), Ok(0))
	if got, _ := h.getcwd(4096); got != "/sub" {
		t.Errorf("getcwd in the chroot: %q, want /sub", got)
	}
	expect(t, "chdir ../..", h.call("chdir", h.str("../..")), Ok(0))
	if got, _ := h.getcwd(4096); got != "/" {
		t.Errorf("getcwd after ../.. in the chroot: %q, want /", got)
	}
	// "/f" is the root's f, outside the chroot: not found from inside.
	expect(t, "chdir /f from the chroot", h.call("chdir", h.str("/f")), Fail(unix.ENOENT))
	expect(t, "chdir /sub again", h.call("chdir", h.str("/sub")), Ok(0))
}
