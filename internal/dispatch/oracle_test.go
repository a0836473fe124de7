package dispatch

// A native oracle for path calls: the same raw system call, with the same
// arguments, made by the guest through the engine and natively on a
// directory laid out alike (absolute paths rebased onto it, relative ones
// from it).

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

// Argument kinds of oracle calls.
type (
	gpath string // a path: natively rebased onto the native root when absolute
	gtext string // a string passed unchanged (a symlink's target)
	gbuf  int    // an output buffer of this many bytes
	gdata []byte // input bytes (a struct the call reads)
)

// gfd is a descriptor: the guest's and the native one.
type gfd struct{ g, n int }

// gbad is an unmapped address: EFAULT both ways.
type gbad struct{}

// opened marks a call that returned a new descriptor (its number differs).
const opened = -1000

// oracleResult is one call's outcome in the guest and natively.
type oracleResult struct {
	got, want       Result
	gotFD, wantFD   int      // descriptors when opened, else -1
	gotBuf, wantBuf [][]byte // the output buffers, in argument order
	// leftOut: the call was not made (absent on this architecture with
	// no *at form, or newer than the host kernel): nothing to compare.
	leftOut bool
}

// newerCalls are the calls a host kernel may lack (fchmodat2: Linux 6.6)
// that kbox serves itself: the native oracle cannot judge them there.
var newerCalls = map[string]bool{"fchmodat2": true}

// kernelLacks reports whether the host kernel answers the call with
// ENOSYS (probed with a bad descriptor, which fails before any effect).
func kernelLacks(nr int) bool {
	_, _, e := unix.Syscall6(uintptr(nr), ^uintptr(0), 0, 0, 0, 0, 0)
	return e == unix.ENOSYS
}

// oracle makes call name with args in the guest and natively (from
// directory native), and returns both outcomes; descriptors opened are
// closed at the end of the test.
func (h *harness) oracle(native, name string, args ...any) oracleResult {
	h.t.Helper()
	return h.oracleAs(native, nil, name, args...)
}

// oracleAs is oracle with prep run natively first, on the thread that
// makes the native call (to take other credentials, which end with it).
func (h *harness) oracleAs(native string, prep func() error, name string, args ...any) oracleResult {
	h.t.Helper()
	name, args = atForm(h.e.arch, name, args, func(n int64) any { return int(n) })
	o := oracleResult{gotFD: -1, wantFD: -1}
	if nr, ok := h.e.arch.Nr(name); !ok || newerCalls[name] && kernelLacks(nr) {
		h.t.Logf("%s left out: not a call of this architecture (%s) or this kernel", name, h.e.arch.Name)
		o.leftOut = true
		return o
	}
	var gargs []uint64
	var bufs []uint64
	for _, a := range args {
		switch v := a.(type) {
		case gpath:
			gargs = append(gargs, h.str(string(v)))
		case gtext:
			gargs = append(gargs, h.str(string(v)))
		case gbuf:
			b := h.alloc(int(v))
			bufs = append(bufs, b)
			gargs = append(gargs, b)
		case gdata:
			gargs = append(gargs, h.bytes(v))
		case gbad:
			gargs = append(gargs, badAddr)
		case gfd:
			gargs = append(gargs, g64(v.g))
		case int:
			gargs = append(gargs, g64(v))
		case uint64:
			gargs = append(gargs, v)
		default:
			h.t.Fatalf("oracle: argument %T", a)
		}
	}
	o.got = h.call(name, gargs...)
	if o.got.Kind == Inject {
		o.gotFD = o.got.FD
		h.t.Cleanup(func() { unix.Close(o.gotFD) })
		o.got = Ok(opened)
	}
	for i, b := range bufs {
		n := int(args[bufIndex(args, i)].(gbuf))
		o.gotBuf = append(o.gotBuf, h.read(b, n))
	}

	nr := h.e.arch.MustNr(name)
	var prepErr error
	inDir(h.t, native, func() {
		var keep [][]byte
		var nargs [6]uintptr
		for i, a := range args {
			switch v := a.(type) {
			case gpath:
				s := string(v)
				if len(s) > 0 && s[0] == '/' {
					s = native + s
				}
				b := append([]byte(s), 0)
				keep = append(keep, b)
				nargs[i] = ptrOf(b)
			case gtext:
				b := append([]byte(string(v)), 0)
				keep = append(keep, b)
				nargs[i] = ptrOf(b)
			case gbuf:
				b := make([]byte, max(int(v), 1))
				keep = append(keep, b)
				o.wantBuf = append(o.wantBuf, b[:v])
				nargs[i] = ptrOf(b)
			case gdata:
				b := append([]byte(nil), v...)
				b = append(b, 0)
				keep = append(keep, b)
				nargs[i] = ptrOf(b)
			case gbad:
				nargs[i] = badAddr
			case gfd:
				nargs[i] = uintptr(v.n)
			case int:
				nargs[i] = uintptr(v)
			case uint64:
				nargs[i] = uintptr(v)
			}
		}
		if prep != nil {
			if prepErr = prep(); prepErr != nil {
				return
			}
		}
		r, _, en := unix.Syscall6(uintptr(nr), nargs[0], nargs[1], nargs[2], nargs[3], nargs[4], nargs[5])
		runtime.KeepAlive(keep)
		if en != 0 {
			o.want = Fail(en)
		} else {
			o.want = Ok(int64(r))
		}
	})
	if prepErr != nil {
		h.t.Fatalf("oracle: native preparation: %v", prepErr)
	}
	if o.want.Kind == Value && isOpenCall(name) {
		o.wantFD = int(o.want.Val)
		h.t.Cleanup(func() { unix.Close(o.wantFD) })
		o.want = Ok(opened)
	}
	return o
}

func isOpenCall(name string) bool {
	switch name {
	case "open", "openat", "openat2", "creat":
		return true
	}
	return false
}

// bufIndex returns the index in args of the i-th gbuf.
func bufIndex(args []any, i int) int {
	for j, a := range args {
		if _, ok := a.(gbuf); ok {
			if i == 0 {
				return j
			}
			i--
		}
	}
	return -1
}

// check compares the guest's answer with the native one.
func (o oracleResult) check(t *testing.T, what string) bool {
	t.Helper()
	if o.leftOut {
		return false
	}
	if !same(o.got, o.want) {
		t.Errorf("%s: got %s, natively %s", what, resultString(o.got), resultString(o.want))
		return false
	}
	return true
}

// nativeTree returns a native directory laid out as the harness's guest
// tree (the mounts as plain directories), with links made by links (name
// -> target) in both.
func (h *harness) nativeTree(links map[string]string) string {
	h.t.Helper()
	native := h.t.TempDir()
	populate(h.t, native)
	for _, mp := range []string{"mnt", "ro", "proc"} {
		if err := os.Mkdir(filepath.Join(native, mp), 0o755); err != nil {
			h.t.Fatal(err)
		}
	}
	populate(h.t, native+"/mnt")
	populate(h.t, native+"/ro")
	for name, target := range links {
		for _, dir := range []string{h.root, native} {
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
				h.t.Fatal(err)
			}
		}
	}
	return native
}

// ownedEntry is one object of an owned tree: a file, a directory (dir)
// or a symlink (target), with its mode and owners.
type ownedEntry struct {
	name     string
	dir      bool
	target   string
	mode     uint32
	uid, gid int
}

// userTree is the tree of the virtual-user tests: other users' files and
// directories, writable or not, sticky or not, and the user's own.
var userTree = []ownedEntry{
	{name: "g", mode: 0o644, uid: 2000, gid: 2000},
	{name: "w", mode: 0o666, uid: 2000, gid: 2000},
	{name: "n", mode: 0o600, uid: 1000, gid: 1000},
	{name: "z", mode: 0o000, uid: 1000, gid: 1000},
	{name: "gx", mode: 0o750, uid: 2000, gid: 1000},
	{name: "dd", dir: true, mode: 0o755, uid: 2000, gid: 2000},
	{name: "dd/f", mode: 0o666, uid: 2000, gid: 2000},
	{name: "dw", dir: true, mode: 0o777, uid: 2000, gid: 2000},
	{name: "dw/f", mode: 0o644, uid: 2000, gid: 2000},
	{name: "dw/mine", mode: 0o644, uid: 1000, gid: 1000},
	{name: "dw/sub", dir: true, mode: 0o755, uid: 2000, gid: 2000},
	{name: "dt", dir: true, mode: 0o1777, uid: 2000, gid: 2000},
	{name: "dt/f", mode: 0o666, uid: 2000, gid: 2000},
	{name: "dt/mine", mode: 0o644, uid: 1000, gid: 1000},
	{name: "dx", dir: true, mode: 0o711, uid: 2000, gid: 2000},
	{name: "dx/f", mode: 0o644, uid: 2000, gid: 2000},
	{name: "dn", dir: true, mode: 0o700, uid: 2000, gid: 2000},
	{name: "dn/f", mode: 0o644, uid: 2000, gid: 2000},
	{name: "dm", dir: true, mode: 0o755, uid: 1000, gid: 1000},
	{name: "dm/f", mode: 0o644, uid: 2000, gid: 2000},
	{name: "lg", target: "g", uid: 2000, gid: 2000},
}

// virtualUser makes a harness whose guest is a virtual user 1000 (groups
// {1000}) over the entries, recorded by a virtual root first, and a
// native tree owned alike; the native half of an oracleAs call runs
// with asUser1000.
func virtualUser(t *testing.T, entries []ownedEntry) (*harness, string) {
	t.Helper()
	if unix.Geteuid() != 0 {
		t.Skip("the native oracle needs root to own files as other users")
	}
	v := newHarness(t, virtualID(identity.Config{UID: 0}))
	native := t.TempDir()
	populate(t, native)
	// The test's temporary directories are 0700: uid 1000 must reach it.
	for _, d := range []string{native, filepath.Dir(native)} {
		if err := unix.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range entries {
		p := v.str("/" + e.name)
		np := native + "/" + e.name
		var err error
		switch {
		case e.target != "":
			expect(t, "symlink "+e.name, v.call("symlink", v.str(e.target), p), Ok(0))
			expect(t, "lchown "+e.name, v.call("lchown", p, uint64(e.uid), uint64(e.gid)), Ok(0))
			if err = unix.Symlink(e.target, np); err == nil {
				err = unix.Lchown(np, e.uid, e.gid)
			}
			if err != nil {
				t.Fatal(err)
			}
			continue
		case e.dir:
			expect(t, "mkdir "+e.name, v.call("mkdir", p, 0o700), Ok(0))
			err = unix.Mkdir(np, 0o700)
		default:
			expect(t, "mknod "+e.name, v.call("mknod", p, unix.S_IFREG|0o600, 0), Ok(0))
			err = unix.Mknod(np, unix.S_IFREG|0o600, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
		expect(t, "chown "+e.name, v.call("chown", p, uint64(e.uid), uint64(e.gid)), Ok(0))
		expect(t, "chmod "+e.name, v.call("chmod", p, uint64(e.mode)), Ok(0))
		if err := unix.Chown(np, e.uid, e.gid); err != nil {
			t.Fatal(err)
		}
		if err := unix.Chmod(np, e.mode); err != nil {
			t.Fatal(err)
		}
	}
	expect(t, "setgroups 1000", v.call("setgroups", 1, v.u32(1000)), Ok(0))
	expect(t, "setresgid 1000", v.call("setresgid", 1000, 1000, 1000), Ok(0))
	expect(t, "setresuid 1000", v.call("setresuid", 1000, 1000, 1000), Ok(0))
	return v, native
}

// asUser1000 gives the calling thread uid and gid 1000 with no other
// group, as virtualUser's guest has (raw calls: the thread's own
// credentials, which end with it; see onThread).
func asUser1000() error {
	groups := []uint32{1000}
	if _, _, en := unix.RawSyscall(unix.SYS_SETGROUPS, 1, uintptr(unsafe.Pointer(&groups[0])), 0); en != 0 {
		return en
	}
	if _, _, en := unix.RawSyscall(unix.SYS_SETRESGID, 1000, 1000, 1000); en != 0 {
		return en
	}
	if _, _, en := unix.RawSyscall(unix.SYS_SETRESUID, 1000, 1000, 1000); en != 0 {
		return en
	}
	return nil
}
