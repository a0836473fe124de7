package dispatch

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// xattrNative runs an xattr call natively on host path p (or descriptor
// fd for the f* forms); it returns the result and the bytes of the
// caller's buffer it filled.
func xattrNative(call, p string, fd int, name, val string, size uint64, flags int) (Result, []byte) {
	buf := make([]byte, size)
	var n int
	var err error
	switch call {
	case "getxattr":
		n, err = unix.Getxattr(p, name, buf)
	case "lgetxattr":
		n, err = unix.Lgetxattr(p, name, buf)
	case "fgetxattr":
		n, err = unix.Fgetxattr(fd, name, buf)
	case "listxattr":
		n, err = unix.Listxattr(p, buf)
	case "llistxattr":
		n, err = unix.Llistxattr(p, buf)
	case "flistxattr":
		n, err = unix.Flistxattr(fd, buf)
	case "setxattr":
		err = unix.Setxattr(p, name, []byte(val), flags)
	case "lsetxattr":
		err = unix.Lsetxattr(p, name, []byte(val), flags)
	case "fsetxattr":
		err = unix.Fsetxattr(fd, name, []byte(val), flags)
	case "removexattr":
		err = unix.Removexattr(p, name)
	case "lremovexattr":
		err = unix.Lremovexattr(p, name)
	case "fremovexattr":
		err = unix.Fremovexattr(fd, name)
	default:
		panic(call)
	}
	if err != nil {
		return Fail(err), nil
	}
	if strings.Contains(call, "get") || strings.Contains(call, "list") {
		if size == 0 {
			return Ok(int64(n)), nil
		}
		return Ok(int64(n)), buf[:n]
	}
	return Ok(0), nil
}

// xattrGuest runs the same call through the engine; path is a guest path
// (or fd a guest descriptor).
func (h *harness) xattrGuest(call, path string, fd int, name, val string, size uint64, flags int) (Result, []byte) {
	target := uint64(fd)
	if !strings.HasPrefix(call, "f") {
		target = h.str(path)
	}
	nameAddr := h.str(name)
	var res Result
	var buf uint64
	switch {
	case strings.Contains(call, "get"):
		buf = h.alloc(int(size))
		res = h.call(call, target, nameAddr, buf, size)
	case strings.Contains(call, "list"):
		buf = h.alloc(int(size))
		res = h.call(call, target, buf, size)
	case strings.Contains(call, "set"):
		res = h.call(call, target, nameAddr, h.bytes([]byte(val)), uint64(len(val)), uint64(flags))
	default:
		res = h.call(call, target, nameAddr)
	}
	if res.Kind == Value && size > 0 && buf != 0 {
		return res, h.read(buf, int(res.Val))
	}
	return res, nil
}

// TestXattrNative runs the same sequence of xattr calls on a file of the
// guest root and natively on a file laid out alike: every answer, and
// every value or list returned, must be the native one.
func TestXattrNative(t *testing.T) {
	h := newHarness(t)
	native := t.TempDir()
	populate(t, native)
	for _, dir := range []string{h.root, native} {
		if err := os.Symlink("f", filepath.Join(dir, "l")); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Setxattr(native+"/f", "user.probe", []byte("x"), 0); err != nil {
		t.Skipf("user xattrs unsupported here: %v", err)
	}
	unix.Removexattr(native+"/f", "user.probe")
	nfd := h.open(native+"/f", unix.O_RDONLY)
	gfd := h.open(h.root+"/f", unix.O_RDONLY)
	npath := h.open(native+"/f", unix.O_PATH)
	gpath := h.open(h.root+"/f", unix.O_PATH)
	for i, c := range []struct {
		call, path, name, val string
		size                  uint64
		flags                 int
		opath                 bool
	}{
		{call: "getxattr", path: "/f", name: "user.a", size: 64},
		{call: "setxattr", path: "/f", name: "user.a", val: "v1"},
		{call: "setxattr", path: "/f", name: "user.a", val: "v2", flags: unix.XATTR_CREATE},
		{call: "setxattr", path: "/f", name: "user.b", val: "v2", flags: unix.XATTR_REPLACE},
		{call: "setxattr", path: "/f", name: "user.empty", val: ""},
		{call: "getxattr", path: "/f", name: "user.a", size: 0},
		{call: "getxattr", path: "/f", name: "user.a", size: 1},
		{call: "getxattr", path: "/f", name: "user.a", size: 64},
		{call: "getxattr", path: "/f", name: "user.empty", size: 64},
		{call: "getxattr", path: "/l", name: "user.a", size: 64},
		{call: "lgetxattr", path: "/l", name: "user.a", size: 64},
		{call: "lsetxattr", path: "/l", name: "user.c", val: "v"},
		{call: "llistxattr", path: "/l", size: 256},
		{call: "listxattr", path: "/f", size: 0},
		{call: "listxattr", path: "/f", size: 3},
		{call: "listxattr", path: "/f", size: 256},
		{call: "listxattr", path: "/l", size: 256},
		{call: "listxattr", path: "/d", size: 256},
		{call: "getxattr", path: "/nope", name: "user.a", size: 64},
		{call: "setxattr", path: "/nope", name: "user.a", val: "v"},
		{call: "getxattr", path: "/f/x", name: "user.a", size: 64},
		{call: "setxattr", path: "/f", name: "nonamespace", val: "v"},
		{call: "getxattr", path: "/f", name: "bogus.a", size: 64},
		{call: "setxattr", path: "/f", name: "", val: "v"},
		{call: "getxattr", path: "/f", name: strings.Repeat("u", 256), size: 64},
		{call: "setxattr", path: "/f", name: "user." + strings.Repeat("u", 250), val: "v"},
		{call: "removexattr", path: "/f", name: "user.a"},
		{call: "removexattr", path: "/f", name: "user.a"},
		{call: "lremovexattr", path: "/l", name: "user.a"},
		{call: "fsetxattr", name: "user.fd", val: "fv"},
		{call: "fgetxattr", name: "user.fd", size: 64},
		{call: "fgetxattr", name: "user.fd", size: 1},
		{call: "flistxattr", size: 256},
		{call: "flistxattr", size: 1},
		{call: "fremovexattr", name: "user.fd"},
		{call: "fremovexattr", name: "user.fd"},
		{call: "fgetxattr", name: "user.empty", size: 64, opath: true},
		{call: "fsetxattr", name: "user.p", val: "v", opath: true},
		{call: "flistxattr", size: 256, opath: true},
	} {
		nf, gf := nfd, gfd
		if c.opath {
			nf, gf = npath, gpath
		}
		want, wantBuf := xattrNative(c.call, native+c.path, nf, c.name, c.val, c.size, c.flags)
		got, gotBuf := h.xattrGuest(c.call, c.path, gf, c.name, c.val, c.size, c.flags)
		what := c.call + " " + c.path + " " + c.name
		if len(what) > 60 {
			what = what[:60] + "..."
		}
		expect(t, fmt.Sprintf("step %d: %s", i, what), got, want)
		if !bytes.Equal(gotBuf, wantBuf) {
			t.Errorf("step %d: %s: returned %q, natively %q", i, what, gotBuf, wantBuf)
		}
	}
}

// TestXattrRules: what kbox decides itself, by its rules: its ownership
// record is invisible and unchangeable; a read-only mount is read-only
// (mnt_want_write in fs/xattr.c: EROFS); bad pointers are EFAULT.
func TestXattrRules(t *testing.T) {
	h := newHarness(t)
	f := h.root + "/f"
	if err := unix.Setxattr(f, "user.keep", []byte("k"), 0); err != nil {
		t.Skipf("user xattrs unsupported here: %v", err)
	}
	if err := unix.Setxattr(f, overrideXattr, []byte("record"), 0); err != nil {
		t.Fatal(err)
	}
	rofd := h.open(h.hosts["/ro"]+"/f", unix.O_RDONLY)
	fd := h.open(f, unix.O_RDONLY)
	name := h.str("user.x")
	rec := h.str(overrideXattr)
	val := h.bytes([]byte("v"))
	path := h.str("/f")
	ro := h.str("/ro/f")
	buf := h.alloc(256)
	for _, c := range []struct {
		what string
		res  Result
		want Result
	}{
		{"getxattr of the record", h.call("getxattr", path, rec, buf, 256), Fail(unix.ENODATA)},
		{"fgetxattr of the record", h.call("fgetxattr", uint64(fd), rec, buf, 256), Fail(unix.ENODATA)},
		{"setxattr of the record", h.call("setxattr", path, rec, val, 1, 0), Fail(unix.EPERM)},
		{"lsetxattr of the record", h.call("lsetxattr", path, rec, val, 1, 0), Fail(unix.EPERM)},
		{"fsetxattr of the record", h.call("fsetxattr", uint64(fd), rec, val, 1, 0), Fail(unix.EPERM)},
		{"removexattr of the record", h.call("removexattr", path, rec), Fail(unix.EPERM)},
		{"fremovexattr of the record", h.call("fremovexattr", uint64(fd), rec), Fail(unix.EPERM)},
		// "user.keep\0" without the record.
		{"listxattr length", h.call("listxattr", path, 0, 0), Ok(10)},
		{"listxattr exact", h.call("listxattr", path, buf, 10), Ok(10)},
		{"listxattr one short", h.call("listxattr", path, buf, 9), Fail(unix.ERANGE)},
		{"flistxattr", h.call("flistxattr", uint64(fd), buf, 256), Ok(10)},
		{"setxattr on the read-only bind", h.call("setxattr", ro, name, val, 1, 0), Fail(unix.EROFS)},
		{"removexattr on the read-only bind", h.call("removexattr", ro, name), Fail(unix.EROFS)},
		{"fsetxattr on the read-only bind", h.call("fsetxattr", uint64(rofd), name, val, 1, 0), Fail(unix.EROFS)},
		{"fremovexattr on the read-only bind", h.call("fremovexattr", uint64(rofd), name), Fail(unix.EROFS)},
		{"getxattr on the read-only bind", h.call("getxattr", ro, name, buf, 256), Fail(unix.ENODATA)},
		{"setxattr bad path", h.call("setxattr", badAddr, name, val, 1, 0), Fail(unix.EFAULT)},
		{"setxattr bad name", h.call("setxattr", path, badAddr, val, 1, 0), Fail(unix.EFAULT)},
		{"setxattr bad value", h.call("setxattr", path, name, badAddr, 1, 0), Fail(unix.EFAULT)},
		{"getxattr bad buffer", h.call("getxattr", path, h.str("user.keep"), badAddr, 256), Fail(unix.EFAULT)},
		{"listxattr bad buffer", h.call("listxattr", path, badAddr, 256), Fail(unix.EFAULT)},
		{"fgetxattr bad descriptor", h.call("fgetxattr", g64(-1), name, buf, 256), Fail(unix.EBADF)},
		{"fsetxattr bad descriptor", h.call("fsetxattr", g64(-1), name, val, 1, 0), Fail(unix.EBADF)},
	} {
		expect(t, c.what, c.res, c.want)
	}
	if got := string(h.read(buf, 10)); got != "user.keep\x00" {
		t.Errorf("listxattr returned %q", got)
	}
	if v, err := unix.Getxattr(f, overrideXattr, make([]byte, 64)); err != nil || v != len("record") {
		t.Errorf("the record was changed: %d %v", v, err)
	}
	for _, s := range []string{"is kbox's ownership record", "on the read-only mount /ro"} {
		if !h.logged(s) {
			t.Errorf("no -v line says %q:\n%s", s, h.log)
		}
	}
}

// TestInotifyAddWatch: the watched path is resolved in the guest; the
// answers are the native ones for a tree laid out alike (the watch
// descriptor numbers included: each inotify instance counts from 1).
func TestInotifyAddWatch(t *testing.T) {
	h := newHarness(t)
	native := t.TempDir()
	populate(t, native)
	for _, dir := range []string{h.root, native} {
		if err := os.Symlink("f", filepath.Join(dir, "l")); err != nil {
			t.Fatal(err)
		}
	}
	nin, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nin)
	gin, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(gin)
	for _, c := range []struct {
		path string
		mask uint32
	}{
		{"/f", unix.IN_MODIFY},
		{"/d", unix.IN_CREATE},
		{"/f", unix.IN_ATTRIB}, // the same file again: the same watch
		{"/l", unix.IN_MODIFY},
		{"/l", unix.IN_MODIFY | unix.IN_DONT_FOLLOW},
		{"/f", unix.IN_MODIFY | unix.IN_ONLYDIR},
		{"/l", unix.IN_MODIFY | unix.IN_ONLYDIR},
		{"/nope", unix.IN_MODIFY},
		{"/f/x", unix.IN_MODIFY},
		{"/d", 0},
	} {
		wd, err := unix.InotifyAddWatch(nin, native+c.path, c.mask)
		want := ret(int64(wd), err)
		expect(t, "inotify_add_watch "+c.path, h.call("inotify_add_watch", uint64(gin), h.str(c.path), uint64(c.mask)), want)
	}
	// On the read-only bind: watching changes nothing.
	if res := h.call("inotify_add_watch", uint64(gin), h.str("/ro/f"), unix.IN_MODIFY); res.Kind != Value {
		t.Errorf("inotify_add_watch /ro/f: %s", resultString(res))
	}
	// The kernel's order: the mask, the descriptor, then the path.
	file := h.open(h.root+"/f", unix.O_RDONLY)
	for _, c := range []struct {
		what string
		fd   int
		path string
		mask uint32
	}{
		{"bad descriptor", -1, "/f", unix.IN_MODIFY},
		{"bad descriptor, missing path", -1, "/nope", unix.IN_MODIFY},
		{"not an inotify descriptor, missing path", file, "/nope", unix.IN_MODIFY},
		{"no valid bit, bad descriptor", -1, "/nope", 0x800000},
		{"IN_MASK_ADD with IN_MASK_CREATE", gin, "/f", unix.IN_MODIFY | unix.IN_MASK_ADD | unix.IN_MASK_CREATE},
	} {
		_, err := unix.InotifyAddWatch(c.fd, native+c.path, c.mask)
		expect(t, "inotify_add_watch "+c.what, h.call("inotify_add_watch", g64(c.fd), h.str(c.path), uint64(c.mask)), Fail(err))
	}
	expect(t, "inotify_add_watch bad path", h.call("inotify_add_watch", uint64(gin), badAddr, unix.IN_MODIFY), Fail(unix.EFAULT))
}
