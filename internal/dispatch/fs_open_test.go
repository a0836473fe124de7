package dispatch

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/identity"
)

// openLinks are the symlinks of the open and stat tests.
var openLinks = map[string]string{"l": "f", "ld": "d", "dangling": "nowhere", "loop": "loop"}

// sameOpened compares what two descriptors (the guest's and the native
// one) opened: the file type, mode, size and access mode.
func sameOpened(t *testing.T, what string, gfd, nfd int) {
	t.Helper()
	var gs, ns unix.Stat_t
	if err := unix.Fstat(gfd, &gs); err != nil {
		t.Errorf("%s: fstat guest: %v", what, err)
		return
	}
	if err := unix.Fstat(nfd, &ns); err != nil {
		t.Errorf("%s: fstat native: %v", what, err)
		return
	}
	if gs.Mode != ns.Mode || gs.Size != ns.Size {
		t.Errorf("%s: guest opened mode %o size %d, natively mode %o size %d", what, gs.Mode, gs.Size, ns.Mode, ns.Size)
	}
	gfl, _ := unix.FcntlInt(uintptr(gfd), unix.F_GETFL, 0)
	nfl, _ := unix.FcntlInt(uintptr(nfd), unix.F_GETFL, 0)
	if gfl&unix.O_ACCMODE != nfl&unix.O_ACCMODE || gfl&unix.O_APPEND != nfl&unix.O_APPEND {
		t.Errorf("%s: guest flags %#x, natively %#x", what, gfl, nfl)
	}
}

// TestOpenNative: open, openat and creat, in the guest and natively on a
// tree laid out alike, in order (creations persist): the answers, and
// what was opened, are the native ones.
func TestOpenNative(t *testing.T) {
	h := newHarness(t)
	native := h.nativeTree(openLinks)
	expect(t, "chdir /", h.call("chdir", h.str("/")), Ok(0))
	const (
		rd, wr, rw = unix.O_RDONLY, unix.O_WRONLY, unix.O_RDWR
		cr, ex     = unix.O_CREAT, unix.O_EXCL
	)
	long := strings.Repeat("n", 256)
	for _, c := range []struct {
		path  string
		flags int
		mode  int
	}{
		{"/f", rd, 0},
		{"/f", wr, 0},
		{"/f", rw | unix.O_APPEND, 0},
		{"f", rd, 0},
		{"./d/../f", rd, 0},
		{"/d", rd, 0},
		{"/d", wr, 0},
		{"/d", rw, 0},
		{"/d", rd | unix.O_TRUNC, 0},
		{"/d", rd | unix.O_DIRECTORY, 0},
		{"/f", rd | unix.O_DIRECTORY, 0},
		{"/f/", rd, 0},
		{"/d/", rd, 0},
		{"/f/x", rd, 0},
		{"/nope", rd, 0},
		{"/nope/x", rd | cr, 0o644},
		{"", rd, 0},
		{"/", rd, 0},
		{"/d/..", rd | unix.O_DIRECTORY, 0},
		{"/new", wr | cr, 0o640},
		{"/new", wr | cr | ex, 0o640},
		{"/f", rd | cr | ex, 0o644},
		{"/d", rd | cr, 0o644},
		{"/d", rd | cr | ex, 0o644},
		{"/new2", rw | cr | ex, 0o600},
		{"/newdir/", wr | cr, 0o644},
		{"/d/", wr | cr, 0o644},
		{"/f", wr | unix.O_TRUNC, 0},
		{"/l", rd, 0},
		{"/l", rd | unix.O_NOFOLLOW, 0},
		{"/l", rd | cr | ex, 0o644},
		{"/l", wr | cr, 0o644},
		{"/d/..", rd | unix.O_DIRECTORY, 0},
		{"/ld", rd | unix.O_DIRECTORY | unix.O_NOFOLLOW, 0},
		{"/ld/", rd | unix.O_NOFOLLOW, 0},
		{"/ld/f", rd | unix.O_NOFOLLOW, 0},
		{"/loop", rd, 0},
		{"/loop", rd | unix.O_NOFOLLOW, 0},
		{"/dangling", rd, 0},
		{"/dangling", rd | cr | ex, 0o644},
		{"/dangling", wr | cr, 0o644},
		{"/nowhere", rd, 0},
		{"/l", unix.O_PATH | unix.O_NOFOLLOW, 0},
		{"/l", unix.O_PATH | unix.O_NOFOLLOW | unix.O_DIRECTORY, 0},
		{"/l", unix.O_PATH, 0},
		{"/d", unix.O_PATH | wr, 0},
		{"/nope", unix.O_PATH, 0},
		{"/d", unix.O_TMPFILE | rw, 0o600},
		{"/d", unix.O_TMPFILE | wr | ex, 0o600},
		{"/d", unix.O_TMPFILE | rd, 0o600},
		{"/f", unix.O_TMPFILE | rw, 0o600},
		{"/nope", unix.O_TMPFILE | rw, 0o600},
		{"/" + long, rd | cr, 0o644},
		{"/" + strings.Repeat("a/", 2100), rd, 0},
		{"/mnt/f", rd, 0},
		{"/mnt/d/../f", rd, 0},
		{"/mnt/new", wr | cr | ex, 0o644},
	} {
		what := c.path
		if len(what) > 40 {
			what = what[:40] + "..."
		}
		what = "open " + what + " " + strings.TrimSpace(openFlagNames(c.flags))
		o := h.oracle(native, "open", gpath(c.path), c.flags, c.mode)
		if o.check(t, what) && o.gotFD >= 0 && c.flags&unix.O_PATH == 0 {
			sameOpened(t, what, o.gotFD, o.wantFD)
		}
	}
	// openat and creat reach the same code by other arguments.
	for _, c := range []struct {
		call string
		args []any
	}{
		{"openat", []any{unix.AT_FDCWD, gpath("/f"), rd, 0}},
		{"openat", []any{unix.AT_FDCWD, gpath("d"), rd | unix.O_DIRECTORY, 0}},
		{"openat", []any{unix.AT_FDCWD, gpath("/f"), rd | cr | ex, 0o644}},
		{"openat", []any{-1, gpath("f"), rd, 0}},
		{"openat", []any{-1, gpath("/f"), rd, 0}},
		{"openat", []any{unix.AT_FDCWD, gbad{}, rd, 0}},
		{"creat", []any{gpath("/c"), 0o600}},
		{"creat", []any{gpath("/c"), 0o600}},
		{"creat", []any{gpath("/d"), 0o600}},
		{"creat", []any{gpath("/l"), 0o600}},
		{"creat", []any{gpath("/nope/c"), 0o600}},
		{"open", []any{gbad{}, rd, 0}},
	} {
		o := h.oracle(native, c.call, c.args...)
		if o.check(t, c.call+" "+argString(c.args)) && o.gotFD >= 0 {
			sameOpened(t, c.call, o.gotFD, o.wantFD)
		}
	}
}

func argString(args []any) string {
	var b strings.Builder
	for _, a := range args {
		switch v := a.(type) {
		case gpath:
			b.WriteString(string(v) + " ")
		case gbad:
			b.WriteString("(bad) ")
		}
	}
	return b.String()
}

func openFlagNames(f int) string {
	var s string
	for _, n := range []struct {
		bit  int
		name string
	}{{unix.O_WRONLY, "O_WRONLY"}, {unix.O_RDWR, "O_RDWR"}, {unix.O_CREAT, "O_CREAT"}, {unix.O_EXCL, "O_EXCL"},
		{unix.O_TRUNC, "O_TRUNC"}, {unix.O_APPEND, "O_APPEND"}, {unix.O_NOFOLLOW, "O_NOFOLLOW"},
		{unix.O_PATH, "O_PATH"}, {unix.O_TMPFILE, "O_TMPFILE"}, {unix.O_DIRECTORY, "O_DIRECTORY"}} {
		if f&n.bit == n.bit {
			s += " " + n.name
		}
	}
	return s
}

// openHow encodes struct open_how, padded with pad bytes (size 24+len(pad)).
func openHow(flags, mode, resolve uint64, pad ...byte) gdata {
	b := binary.LittleEndian.AppendUint64(nil, flags)
	b = binary.LittleEndian.AppendUint64(b, mode)
	b = binary.LittleEndian.AppendUint64(b, resolve)
	return gdata(append(b, pad...))
}

// TestOpenat2Native: openat2's struct checks and RESOLVE_* flags, against
// the native call on a tree laid out alike.
func TestOpenat2Native(t *testing.T) {
	h := newHarness(t)
	native := h.nativeTree(openLinks)
	if _, err := unix.Openat2(unix.AT_FDCWD, native+"/f", &unix.OpenHow{Flags: unix.O_RDONLY}); err == unix.ENOSYS {
		t.Skip("no openat2 on this kernel")
	}
	expect(t, "chdir /", h.call("chdir", h.str("/")), Ok(0))
	zero8 := make([]byte, 8)
	for _, c := range []struct {
		what string
		path string
		how  gdata
		size int // 0: len(how)
	}{
		{"plain", "/f", openHow(unix.O_RDONLY, 0, 0), 0},
		{"size 23", "/f", openHow(unix.O_RDONLY, 0, 0), 23},
		{"size 32, zero tail", "/f", openHow(unix.O_RDONLY, 0, 0, zero8...), 0},
		{"size 32, non-zero tail", "/f", openHow(unix.O_RDONLY, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0), 0},
		{"size above a page", "/f", openHow(unix.O_RDONLY, 0, 0), 4097},
		{"unknown resolve bit", "/f", openHow(unix.O_RDONLY, 0, 0x80), 0},
		{"flags above 32 bits", "/f", openHow(1<<40, 0, 0), 0},
		{"mode without O_CREAT", "/f", openHow(unix.O_RDONLY, 0o644, 0), 0},
		{"mode with file type bits", "/n1", openHow(unix.O_CREAT|unix.O_WRONLY, 0o100644, 0), 0},
		{"O_CREAT with mode", "/n2", openHow(unix.O_CREAT|unix.O_WRONLY, 0o600, 0), 0},
		{"BENEATH with IN_ROOT", "f", openHow(unix.O_RDONLY, 0, unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT), 0},
		{"CACHED with O_CREAT", "/n3", openHow(unix.O_CREAT|unix.O_WRONLY, 0o600, abi.ResolveCached), 0},
		{"NO_SYMLINKS, a symlink", "/l", openHow(unix.O_RDONLY, 0, unix.RESOLVE_NO_SYMLINKS), 0},
		{"NO_SYMLINKS, through a symlink", "/ld/f", openHow(unix.O_RDONLY, 0, unix.RESOLVE_NO_SYMLINKS), 0},
		{"NO_SYMLINKS, a file", "/f", openHow(unix.O_RDONLY, 0, unix.RESOLVE_NO_SYMLINKS), 0},
		{"NO_SYMLINKS with O_PATH|O_NOFOLLOW", "/l", openHow(unix.O_PATH|unix.O_NOFOLLOW, 0, unix.RESOLVE_NO_SYMLINKS), 0},
		{"BENEATH, relative", "d/../f", openHow(unix.O_RDONLY, 0, unix.RESOLVE_BENEATH), 0},
		{"BENEATH, absolute", "/f", openHow(unix.O_RDONLY, 0, unix.RESOLVE_BENEATH), 0},
		{"BENEATH, dot-dot out", "../f", openHow(unix.O_RDONLY, 0, unix.RESOLVE_BENEATH), 0},
		{"NO_MAGICLINKS, a plain symlink", "l", openHow(unix.O_RDONLY, 0, unix.RESOLVE_NO_MAGICLINKS), 0},
		{"NO_XDEV, same mount", "d/../f", openHow(unix.O_RDONLY, 0, unix.RESOLVE_NO_XDEV), 0},
		{"O_DIRECTORY on a file", "/f", openHow(unix.O_RDONLY|unix.O_DIRECTORY, 0, 0), 0},
		{"missing", "/nope", openHow(unix.O_RDONLY, 0, 0), 0},
		{"IN_ROOT, relative", "d/../f", openHow(unix.O_RDONLY, 0, unix.RESOLVE_IN_ROOT), 0},
		{"NO_SYMLINKS|BENEATH, O_CREAT through a dangling symlink", "dangling", openHow(unix.O_CREAT|unix.O_WRONLY, 0o600, unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_BENEATH), 0},
	} {
		size := c.size
		if size == 0 {
			size = len(c.how)
		}
		how := c.how
		if size > len(how) {
			how = append(append(gdata(nil), how...), make([]byte, size-len(how))...)
		}
		o := h.oracle(native, "openat2", unix.AT_FDCWD, gpath(c.path), how, size)
		if o.check(t, "openat2 "+c.what) && o.gotFD >= 0 && c.what != "NO_SYMLINKS with O_PATH|O_NOFOLLOW" {
			sameOpened(t, c.what, o.gotFD, o.wantFD)
		}
	}
	// From a directory descriptor: RESOLVE_IN_ROOT makes it the root
	// ("/" and ".." stay in it), RESOLVE_BENEATH refuses to leave it.
	gd := h.open(h.root+"/d", unix.O_RDONLY|unix.O_DIRECTORY)
	nd := h.open(native+"/d", unix.O_RDONLY|unix.O_DIRECTORY)
	if err := os.WriteFile(native+"/d/in", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.root+"/d/in", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, path string
		resolve    uint64
	}{
		{"IN_ROOT, absolute", "/in", unix.RESOLVE_IN_ROOT},
		{"IN_ROOT, dot-dot above", "../../in", unix.RESOLVE_IN_ROOT},
		{"IN_ROOT, the outer file", "/f", unix.RESOLVE_IN_ROOT},
		{"BENEATH, inside", "in", unix.RESOLVE_BENEATH},
		{"BENEATH, dot-dot out", "../f", unix.RESOLVE_BENEATH},
		{"BENEATH, absolute", "/f", unix.RESOLVE_BENEATH},
		{"NO_XDEV, dot-dot within the mount", "../f", unix.RESOLVE_NO_XDEV},
	} {
		o := h.oracle(native, "openat2", gfd{gd, nd}, gtext(c.path), openHow(unix.O_RDONLY, 0, c.resolve), 24)
		if o.check(t, "openat2 from /d, "+c.what) && o.gotFD >= 0 {
			sameOpened(t, c.what, o.gotFD, o.wantFD)
		}
	}
	// The bad pointers: EFAULT (copy_struct_from_user, getname).
	expect(t, "openat2 bad how", h.call("openat2", g64(unix.AT_FDCWD), h.str("/f"), badAddr, 24), Fail(unix.EFAULT))
	expect(t, "openat2 bad path", h.call("openat2", g64(unix.AT_FDCWD), badAddr, uint64(h.bytes(openHow(0, 0, 0))), 24), Fail(unix.EFAULT))
	// NO_XDEV across a mount (the native tree has none): EXDEV, as
	// openat2(2) says of a path crossing a mount point.
	expect(t, "openat2 NO_XDEV into /mnt", h.call("openat2", g64(unix.AT_FDCWD), h.str("/mnt/f"),
		h.bytes(openHow(unix.O_RDONLY, 0, unix.RESOLVE_NO_XDEV)), 24), Fail(unix.EXDEV))
}

// TestOpenRules: what the native tree cannot show: the read-only bind
// (EROFS: open(2) "pathname refers to a file on a read-only filesystem
// and write access was requested"), and the virtual identity's
// permission checks.
func TestOpenRules(t *testing.T) {
	h := newHarness(t)
	open := func(p string, flags int) Result {
		res := h.call("open", h.str(p), uint64(flags), 0o644)
		if res.Kind == Inject {
			unix.Close(res.FD)
			return Ok(opened)
		}
		return res
	}
	for _, c := range []struct {
		path  string
		flags int
		want  Result
	}{
		{"/ro/f", unix.O_RDONLY, Ok(opened)},
		{"/ro/d", unix.O_RDONLY | unix.O_DIRECTORY, Ok(opened)},
		{"/ro/f", unix.O_WRONLY, Fail(unix.EROFS)},
		{"/ro/f", unix.O_RDWR, Fail(unix.EROFS)},
		{"/ro/f", unix.O_RDONLY | unix.O_TRUNC, Fail(unix.EROFS)},
		{"/ro/new", unix.O_WRONLY | unix.O_CREAT, Fail(unix.EROFS)},
		{"/ro/f", unix.O_RDONLY | unix.O_CREAT, Ok(opened)},
		{"/ro/f", unix.O_RDONLY | unix.O_CREAT | unix.O_EXCL, Fail(unix.EEXIST)},
		{"/ro/nope", unix.O_RDONLY, Fail(unix.ENOENT)},
		{"/ro/d", unix.O_TMPFILE | unix.O_RDWR, Fail(unix.EROFS)},
		{"/ro/f", unix.O_PATH, Ok(opened)},
		{"/mnt/null", unix.O_WRONLY, Ok(opened)},
	} {
		expect(t, "open "+c.path+openFlagNames(c.flags), open(c.path, c.flags), c.want)
	}
	// O_PATH|O_NOFOLLOW on a symlink gives a descriptor of the symlink
	// itself (open(2)): fstatat(AT_EMPTY_PATH) shows a symlink, and
	// readlinkat(fd, "") reads it.
	if err := os.Symlink("f", h.root+"/l"); err != nil {
		t.Fatal(err)
	}
	if res := h.call("open", h.str("/l"), unix.O_PATH|unix.O_NOFOLLOW, 0); res.Kind != Inject {
		t.Errorf("open /l O_PATH|O_NOFOLLOW: %s", resultString(res))
	} else {
		defer unix.Close(res.FD)
		fd, err := unix.FcntlInt(uintptr(res.FD), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		buf := h.alloc(statSize)
		expect(t, "fstatat of the O_PATH symlink", h.call("newfstatat", uint64(fd), h.str(""), buf, unix.AT_EMPTY_PATH), Ok(0))
		if st := statOf(h.read(buf, statSize)); st.Mode&unix.S_IFMT != unix.S_IFLNK {
			t.Errorf("fstatat of the O_PATH symlink: mode %o", st.Mode)
		}
		expect(t, "readlinkat of the O_PATH symlink", h.call("readlinkat", uint64(fd), h.str(""), buf, 16), Ok(1))
		if got := string(h.read(buf, 1)); got != "f" {
			t.Errorf("readlinkat of the O_PATH symlink read %q", got)
		}
	}
	// A path longer than PATH_MAX (with its NUL): ENAMETOOLONG (getname).
	expect(t, "open of a 4096-byte path", open("/"+strings.Repeat("a", 4095), unix.O_RDONLY), Fail(unix.ENAMETOOLONG))
	if err := unix.Access(h.hosts["/ro"]+"/new", unix.F_OK); err == nil {
		t.Error("a file was created on the read-only bind")
	}

	// A virtual user (uid 1000: the host user's files are its own) is
	// refused a mode-000 file (open(2) EACCES); the virtual root is not.
	for _, c := range []struct {
		name string
		id   identity.Config
		want Result
	}{
		{"virtual root", identity.Config{UID: 0}, Ok(opened)},
		{"virtual user", identity.Config{UID: 1000, GID: 1000}, Fail(unix.EACCES)},
	} {
		h := newHarness(t, virtualID(c.id))
		if err := unix.Chmod(h.root+"/f", 0); err != nil {
			t.Fatal(err)
		}
		res := h.call("open", h.str("/f"), unix.O_RDONLY, 0)
		if res.Kind == Inject {
			unix.Close(res.FD)
			res = Ok(opened)
		}
		expect(t, c.name+": open of a mode-000 file", res, c.want)
		// Creating in a directory without write permission: EACCES for
		// the user.
		if err := unix.Chmod(h.root+"/d", 0o555); err != nil {
			t.Fatal(err)
		}
		res = h.call("open", h.str("/d/new"), unix.O_WRONLY|unix.O_CREAT, 0o644)
		if res.Kind == Inject {
			unix.Close(res.FD)
			res = Ok(opened)
		}
		expect(t, c.name+": create in a mode-555 directory", res, c.want)
	}
}

// TestOpenVirtualUser: a virtual user 1000's opens answer as a host
// thread of uid 1000 does on a tree owned alike (path_resolution(7):
// search permission on each directory, then the access mode on the
// object; open(2) EACCES, EPERM for O_NOATIME by another, the
// fs.protected_* sysctls where they apply).
func TestOpenVirtualUser(t *testing.T) {
	v, native := virtualUser(t, userTree)
	const (
		rd, wr, rw = unix.O_RDONLY, unix.O_WRONLY, unix.O_RDWR
		cr, ex     = unix.O_CREAT, unix.O_EXCL
	)
	for _, c := range []struct {
		path  string
		flags int
	}{
		{"/g", rd}, {"/g", wr}, {"/g", rw}, {"/g", rd | unix.O_TRUNC}, {"/g", rd | cr},
		{"/w", rw}, {"/n", rw}, {"/z", rd}, {"/z", wr}, {"/z", unix.O_PATH},
		{"/gx", rd}, {"/gx", wr},
		{"/dd/f", rw}, {"/dd/new", wr | cr}, {"/dd/f", rw | cr}, {"/dd", unix.O_TMPFILE | rw},
		{"/dw/new", wr | cr | ex}, {"/dw", unix.O_TMPFILE | rw},
		{"/dx/f", rd}, {"/dx", rd}, {"/dx", unix.O_PATH}, {"/dx/nope", rd},
		{"/dn", unix.O_PATH}, {"/dn/nope", wr | cr}, // /dn/f: TestVirtualUserSearch
		{"/dm/f", rd}, {"/dm/f", wr}, {"/dm/new", wr | cr},
		{"/dt/f", rw}, {"/dt/f", rw | cr}, {"/dt/mine", rw | cr}, {"/dt/new", rw | cr},
		{"/lg", rd}, {"/lg", wr}, {"/lg", unix.O_PATH | unix.O_NOFOLLOW},
		{"/n", rd | unix.O_NOATIME}, {"/g", rd | unix.O_NOATIME},
	} {
		o := v.oracleAs(native, asUser1000, "open", gpath(c.path), c.flags, 0o644)
		o.check(t, "open "+c.path+openFlagNames(c.flags))
	}
}

// TestOpenMemDeviceNoBlocking: opening a memory-class device (/dev/null
// bound on /mnt/null) is served without announcing a blocking open (no
// new leader per "> /dev/null"), while a FIFO opened for reading, which
// blocks until a writer comes, is still announced.
func TestOpenMemDeviceNoBlocking(t *testing.T) {
	h := newHarness(t)
	announced := 0
	blocking := func() error { announced++; return unix.EINTR }
	r := h.req("open", h.str("/mnt/null"), unix.O_WRONLY|unix.O_TRUNC, 0)
	r.Blocking = blocking
	res := h.e.Dispatch(r)
	if res.Kind != Inject || announced != 0 {
		t.Fatalf("open /mnt/null: %+v, %d blocking announcements (want an injected descriptor, none)", res, announced)
	}
	unix.Close(res.FD)
	if err := unix.Mkfifo(h.root+"/fifo", 0o644); err != nil {
		t.Fatal(err)
	}
	r = h.req("open", h.str("/fifo"), unix.O_RDONLY, 0)
	r.Blocking = blocking
	if res := h.e.Dispatch(r); announced != 1 || res.Kind != Errno {
		t.Fatalf("open of a FIFO for reading: %+v, %d announcements (want the announcement's error, one)", res, announced)
	}
}
