package dispatch

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

// statOf decodes a struct stat written by a call.
func statOf(b []byte) unix.Stat_t {
	var st unix.Stat_t
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&st)), unsafe.Sizeof(st)), b)
	return st
}

// statxOf decodes a struct statx written by a call.
func statxOf(b []byte) unix.Statx_t {
	var st unix.Statx_t
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&st)), unsafe.Sizeof(st)), b)
	return st
}

const (
	statSize  = int(unsafe.Sizeof(unix.Stat_t{}))
	statxSize = int(unsafe.Sizeof(unix.Statx_t{}))
)

// statFields is what a stat of a tree laid out alike must agree on.
func statFields(st unix.Stat_t) string {
	size := st.Size
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		size = 0 // a directory's size is the file system's business
	}
	return fmt.Sprintf("mode %o nlink %d uid %d gid %d size %d", st.Mode, st.Nlink, st.Uid, st.Gid, size)
}

func statxFields(st unix.Statx_t) string {
	size := st.Size
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		size = 0
	}
	return fmt.Sprintf("mask %#x mode %o nlink %d uid %d gid %d size %d", st.Mask, st.Mode, st.Nlink, st.Uid, st.Gid, size)
}

// TestStatNative: stat, lstat, newfstatat and statx in the guest and
// natively on a tree laid out alike: the answers and the status returned.
func TestStatNative(t *testing.T) {
	h := newHarness(t)
	native := h.nativeTree(openLinks)
	expect(t, "chdir /", h.call("chdir", h.str("/")), Ok(0))
	gd := h.open(h.root+"/d", unix.O_RDONLY|unix.O_DIRECTORY)
	nd := h.open(native+"/d", unix.O_RDONLY|unix.O_DIRECTORY)
	gl := h.open(h.root+"/l", unix.O_PATH|unix.O_NOFOLLOW)
	nl := h.open(native+"/l", unix.O_PATH|unix.O_NOFOLLOW)
	dir, lnk := gfd{gd, nd}, gfd{gl, nl}
	paths := []string{"/f", "/d", "f", "/l", "/ld", "/dangling", "/loop", "/f/", "/d/", "/l/", "/ld/", "/dangling/",
		"/nope", "", "/f/x", "/d/.", "/d/..", "/d//f", "/" + strings.Repeat("n", 256)}
	type step struct {
		call string
		args []any
	}
	var steps []step
	for _, p := range paths {
		steps = append(steps,
			step{"stat", []any{gpath(p), gbuf(statSize)}},
			step{"lstat", []any{gpath(p), gbuf(statSize)}},
			step{"newfstatat", []any{unix.AT_FDCWD, gpath(p), gbuf(statSize), unix.AT_SYMLINK_NOFOLLOW}},
			step{"statx", []any{unix.AT_FDCWD, gpath(p), 0, unix.STATX_BASIC_STATS, gbuf(statxSize)}},
			step{"statx", []any{unix.AT_FDCWD, gpath(p), unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE | unix.STATX_SIZE, gbuf(statxSize)}})
	}
	steps = append(steps,
		step{"stat", []any{gbad{}, gbuf(statSize)}},
		step{"stat", []any{gpath("/f"), gbad{}}},
		step{"newfstatat", []any{dir, gpath("f"), gbuf(statSize), 0}},
		step{"newfstatat", []any{dir, gpath(""), gbuf(statSize), unix.AT_EMPTY_PATH}},
		step{"newfstatat", []any{dir, gpath(""), gbuf(statSize), 0}},
		step{"newfstatat", []any{unix.AT_FDCWD, gpath(""), gbuf(statSize), unix.AT_EMPTY_PATH}},
		step{"newfstatat", []any{lnk, gpath(""), gbuf(statSize), unix.AT_EMPTY_PATH}},
		step{"newfstatat", []any{-1, gpath("f"), gbuf(statSize), 0}},
		step{"newfstatat", []any{-1, gpath("/f"), gbuf(statSize), 0}},
		step{"newfstatat", []any{unix.AT_FDCWD, gpath("/f"), gbuf(statSize), 0x1}},
		step{"newfstatat", []any{unix.AT_FDCWD, gpath("/f"), gbuf(statSize), unix.AT_REMOVEDIR}},
		step{"statx", []any{dir, gpath(""), unix.AT_EMPTY_PATH, unix.STATX_BASIC_STATS, gbuf(statxSize)}},
		step{"statx", []any{lnk, gpath(""), unix.AT_EMPTY_PATH, unix.STATX_BASIC_STATS, gbuf(statxSize)}},
		step{"statx", []any{dir, uint64(0), unix.AT_EMPTY_PATH, unix.STATX_BASIC_STATS, gbuf(statxSize)}},
		step{"statx", []any{dir, gpath(""), 0, unix.STATX_BASIC_STATS, gbuf(statxSize)}},
		step{"statx", []any{unix.AT_FDCWD, gpath("/f"), 0, 0, gbuf(statxSize)}},
		step{"statx", []any{unix.AT_FDCWD, gpath("/f"), 0, unix.STATX_ALL, gbuf(statxSize)}},
		step{"statx", []any{unix.AT_FDCWD, gpath("/f"), 0, 0x80000000, gbuf(statxSize)}},
		step{"statx", []any{unix.AT_FDCWD, gpath("/f"), unix.AT_STATX_FORCE_SYNC | unix.AT_STATX_DONT_SYNC, unix.STATX_BASIC_STATS, gbuf(statxSize)}},
		step{"statx", []any{unix.AT_FDCWD, gpath("/f"), unix.AT_STATX_DONT_SYNC, unix.STATX_BASIC_STATS, gbuf(statxSize)}},
		step{"statx", []any{unix.AT_FDCWD, gpath("/f"), 0x1, unix.STATX_BASIC_STATS, gbuf(statxSize)}},
		step{"statx", []any{unix.AT_FDCWD, gpath("/f"), 0, unix.STATX_BASIC_STATS, gbad{}}},
	)
	for _, s := range steps {
		what := s.call + " " + argString(s.args) + fmt.Sprint(s.args[len(s.args)-2:])
		if s.call == "statx" && s.args[1] == any(uint64(0)) && !statxNullPath() {
			// a NULL path with AT_EMPTY_PATH is Linux 6.11's; kbox
			// serves it on any kernel, the oracle cannot judge it
			t.Logf("%s left out: this kernel refuses a NULL statx path", what)
			continue
		}
		o := h.oracle(native, s.call, s.args...)
		if !o.check(t, what) || o.got.Kind != Value || len(o.gotBuf) == 0 {
			continue
		}
		var g, n string
		if s.call == "statx" {
			gs, ns := statxOf(o.gotBuf[0]), statxOf(o.wantBuf[0])
			ns.Mask &= gs.Mask | unix.STATX_MNT_ID | unix.STATX_MNT_ID_UNIQUE // kbox may open the object to stat it
			g, n = statxFields(gs), statxFields(ns)
		} else {
			g, n = statFields(statOf(o.gotBuf[0])), statFields(statOf(o.wantBuf[0]))
		}
		if g != n {
			t.Errorf("%s: guest sees %s, natively %s", what, g, n)
		}
	}
}

// TestAccessNative: access, faccessat and faccessat2 (as the host's
// root here, without a virtual identity) against the native calls.
func TestAccessNative(t *testing.T) {
	h := newHarness(t)
	native := h.nativeTree(openLinks)
	for _, dir := range []string{h.root, native} {
		if err := unix.Chmod(dir+"/d", 0o700); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(dir+"/x", unix.S_IFREG|0o100, 0); err != nil {
			t.Fatal(err)
		}
	}
	gd := h.open(h.root+"/d", unix.O_RDONLY|unix.O_DIRECTORY)
	nd := h.open(native+"/d", unix.O_RDONLY|unix.O_DIRECTORY)
	dir := gfd{gd, nd}
	modes := []int{unix.F_OK, unix.R_OK, unix.W_OK, unix.X_OK, unix.R_OK | unix.W_OK | unix.X_OK}
	for _, p := range []string{"/f", "/d", "/x", "/l", "/ld/", "/dangling", "/nope", "", "/f/", "/f/x"} {
		for _, m := range modes {
			o := h.oracle(native, "access", gpath(p), m)
			o.check(t, fmt.Sprintf("access %q %d", p, m))
			for _, fl := range []int{0, unix.AT_SYMLINK_NOFOLLOW, unix.AT_EACCESS} {
				o := h.oracle(native, "faccessat2", unix.AT_FDCWD, gpath(p), m, fl)
				o.check(t, fmt.Sprintf("faccessat2 %q %d %#x", p, m, fl))
			}
		}
	}
	for _, c := range []struct {
		call string
		args []any
	}{
		{"access", []any{gpath("/f"), 8}},
		{"access", []any{gbad{}, unix.R_OK}},
		{"faccessat", []any{dir, gpath("f"), unix.R_OK}},
		{"faccessat", []any{dir, gpath("nope"), unix.R_OK}},
		{"faccessat", []any{-1, gpath("f"), unix.R_OK}},
		{"faccessat", []any{unix.AT_FDCWD, gpath("/f"), 0x10}},
		{"faccessat2", []any{dir, gpath(""), unix.W_OK, unix.AT_EMPTY_PATH}},
		{"faccessat2", []any{dir, gpath(""), unix.W_OK, 0}},
		{"faccessat2", []any{unix.AT_FDCWD, gpath("/f"), unix.R_OK, 0x1}},
		{"faccessat2", []any{unix.AT_FDCWD, gpath("/f"), unix.R_OK, unix.AT_REMOVEDIR}},
	} {
		o := h.oracle(native, c.call, c.args...)
		o.check(t, c.call+" "+argString(c.args)+fmt.Sprint(c.args[len(c.args)-1]))
	}
}

// TestAccessRules: the read-only bind (access(2): EROFS "write permission
// was requested for a file on a read-only filesystem") and a virtual
// identity's permission checks by the recorded and mapped owners
// (path_resolution(7)): uid 1000 owns the host user's files.
func TestAccessRules(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct {
		path string
		mode int
		want Result
	}{
		{"/ro/f", unix.W_OK, Fail(unix.EROFS)},
		{"/ro/d", unix.W_OK, Fail(unix.EROFS)},
		{"/ro/f", unix.R_OK, Ok(0)},
		{"/ro/nope", unix.W_OK, Fail(unix.ENOENT)},
		{"/mnt/f", unix.W_OK, Ok(0)},
	} {
		expect(t, fmt.Sprintf("access %s %d", c.path, c.mode), h.call("access", h.str(c.path), uint64(c.mode)), c.want)
	}
	for _, c := range []struct {
		name string
		id   identity.Config
		// answers for: R_OK on 0644, W_OK on 0444, X_OK on 0644,
		// X_OK on 0100, W_OK in a 0555 directory's file 0644, R_OK of 0000.
		want [6]Result
	}{
		{"virtual root", identity.Config{UID: 0},
			[6]Result{Ok(0), Ok(0), Fail(unix.EACCES), Ok(0), Ok(0), Ok(0)}},
		{"virtual user", identity.Config{UID: 1000, GID: 1000},
			[6]Result{Ok(0), Fail(unix.EACCES), Fail(unix.EACCES), Ok(0), Ok(0), Fail(unix.EACCES)}},
	} {
		h := newHarness(t, virtualID(c.id))
		for name, mode := range map[string]uint32{"a": 0o644, "b": 0o444, "x": 0o100, "z": 0} {
			if err := unix.Mknod(h.root+"/"+name, unix.S_IFREG|mode, 0); err != nil {
				t.Fatal(err)
			}
			if err := unix.Chmod(h.root+"/"+name, mode); err != nil {
				t.Fatal(err)
			}
		}
		if err := unix.Chmod(h.root+"/d", 0o555); err != nil {
			t.Fatal(err)
		}
		for i, q := range []struct {
			path string
			mode int
		}{{"/a", unix.R_OK}, {"/b", unix.W_OK}, {"/a", unix.X_OK}, {"/x", unix.X_OK}, {"/d/../a", unix.W_OK}, {"/z", unix.R_OK}} {
			expect(t, fmt.Sprintf("%s: access %s %d", c.name, q.path, q.mode), h.call("access", h.str(q.path), uint64(q.mode)), c.want[i])
		}
		// The guest sees its own ids on the host user's files.
		buf := h.alloc(statSize)
		expect(t, c.name+": stat /a", h.call("stat", h.str("/a"), buf), Ok(0))
		if st := statOf(h.read(buf, statSize)); st.Uid != c.id.UID || st.Gid != c.id.GID {
			t.Errorf("%s: stat /a shows %d:%d", c.name, st.Uid, st.Gid)
		}
	}
}

// TestReadlinkNative: readlink and readlinkat, buffer sizes and
// truncation (readlink(2): "truncate (to bufsiz characters)", no NUL),
// against the native calls; the buffers must match byte for byte.
func TestReadlinkNative(t *testing.T) {
	h := newHarness(t)
	links := map[string]string{"long": strings.Repeat("t", 300)}
	for k, v := range openLinks {
		links[k] = v
	}
	native := h.nativeTree(links)
	gl := h.open(h.root+"/l", unix.O_PATH|unix.O_NOFOLLOW)
	nl := h.open(native+"/l", unix.O_PATH|unix.O_NOFOLLOW)
	gf := h.open(h.root+"/f", unix.O_PATH)
	nf := h.open(native+"/f", unix.O_PATH)
	gd := h.open(h.root, unix.O_RDONLY|unix.O_DIRECTORY)
	nd := h.open(native, unix.O_RDONLY|unix.O_DIRECTORY)
	for _, c := range []struct {
		call string
		args []any
	}{
		{"readlink", []any{gpath("/l"), gbuf(64), 64}},
		{"readlink", []any{gpath("/l"), gbuf(1), 1}},
		{"readlink", []any{gpath("/dangling"), gbuf(3), 3}},
		{"readlink", []any{gpath("/long"), gbuf(512), 512}},
		{"readlink", []any{gpath("/long"), gbuf(299), 299}},
		{"readlink", []any{gpath("/l"), gbuf(8), 0}},
		{"readlink", []any{gpath("/l"), gbuf(8), -1}},
		{"readlink", []any{gpath("/f"), gbuf(8), 8}},
		{"readlink", []any{gpath("/d"), gbuf(8), 8}},
		{"readlink", []any{gpath("/nope"), gbuf(8), 8}},
		{"readlink", []any{gpath("/l/"), gbuf(8), 8}},
		{"readlink", []any{gpath("/ld/"), gbuf(8), 8}},
		{"readlink", []any{gpath("/f/x"), gbuf(8), 8}},
		{"readlink", []any{gpath(""), gbuf(8), 8}},
		{"readlink", []any{gbad{}, gbuf(8), 8}},
		{"readlinkat", []any{unix.AT_FDCWD, gpath("/loop"), gbuf(8), 8}},
		{"readlinkat", []any{gfd{gd, nd}, gpath("l"), gbuf(8), 8}},
		{"readlinkat", []any{gfd{gl, nl}, gpath(""), gbuf(8), 8}},
		{"readlinkat", []any{gfd{gf, nf}, gpath(""), gbuf(8), 8}},
		{"readlinkat", []any{gfd{gd, nd}, gpath(""), gbuf(8), 8}},
		{"readlinkat", []any{-1, gpath("l"), gbuf(8), 8}},
		{"readlinkat", []any{unix.AT_FDCWD, gpath(""), gbuf(8), 8}},
	} {
		what := c.call + " " + argString(c.args) + fmt.Sprint(c.args[len(c.args)-1])
		o := h.oracle(native, c.call, c.args...)
		if o.check(t, what) && string(o.gotBuf[0]) != string(o.wantBuf[0]) {
			t.Errorf("%s: guest's buffer %q, natively %q", what, o.gotBuf[0], o.wantBuf[0])
		}
	}
	expect(t, "readlink to a bad buffer", h.call("readlink", h.str("/l"), badAddr, 8), Fail(unix.EFAULT))
}

// TestStatfs: statfs answers natively on the guest's tree, and the
// read-only bind is flagged ST_RDONLY (statfs(2) f_flags).
func TestStatfs(t *testing.T) {
	h := newHarness(t)
	native := h.nativeTree(openLinks)
	sz := int(unsafe.Sizeof(unix.Statfs_t{}))
	for _, p := range []string{"/f", "/d", "/l", "/dangling", "/nope", "", "/f/x"} {
		o := h.oracle(native, "statfs", gpath(p), gbuf(sz))
		o.check(t, "statfs "+p)
	}
	expect(t, "statfs bad path", h.call("statfs", badAddr, h.alloc(sz)), Fail(unix.EFAULT))
	expect(t, "statfs bad buffer", h.call("statfs", h.str("/f"), badAddr), Fail(unix.EFAULT))
	for _, c := range []struct {
		path string
		ro   bool
	}{{"/ro/f", true}, {"/ro", true}, {"/mnt/f", false}, {"/f", false}} {
		buf := h.alloc(sz)
		expect(t, "statfs "+c.path, h.call("statfs", h.str(c.path), buf), Ok(0))
		var sfs unix.Statfs_t
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&sfs)), sz), h.read(buf, sz))
		if (sfs.Flags&unix.ST_RDONLY != 0) != c.ro {
			t.Errorf("statfs %s: flags %#x", c.path, sfs.Flags)
		}
	}
}

// TestAccessVirtualUser: a virtual user 1000's access, faccessat2 and
// stat answer as a host thread of uid 1000 does on a tree owned alike.
func TestAccessVirtualUser(t *testing.T) {
	v, native := virtualUser(t, userTree)
	for _, e := range userTree {
		if strings.HasPrefix(e.name, "dn/") {
			continue // TestVirtualUserSearch
		}
		p := "/" + e.name
		for _, m := range []int{unix.F_OK, unix.R_OK, unix.W_OK, unix.X_OK, unix.R_OK | unix.X_OK} {
			v.oracleAs(native, asUser1000, "access", gpath(p), m).check(t, fmt.Sprintf("access %s %d", p, m))
			v.oracleAs(native, asUser1000, "faccessat2", unix.AT_FDCWD, gpath(p), m, unix.AT_EACCESS).
				check(t, fmt.Sprintf("faccessat2 %s %d AT_EACCESS", p, m))
		}
		v.oracleAs(native, asUser1000, "stat", gpath(p), gbuf(statSize)).check(t, "stat "+p)
		v.oracleAs(native, asUser1000, "readlink", gpath(p), gbuf(16), 16).check(t, "readlink "+p)
	}
	for _, p := range []string{"/dx/nope", "/dd/nope", "/dx/f/"} {
		v.oracleAs(native, asUser1000, "stat", gpath(p), gbuf(statSize)).check(t, "stat "+p)
		v.oracleAs(native, asUser1000, "access", gpath(p), unix.F_OK).check(t, "access "+p)
	}
}

// TestVirtualUserSearch: a directory without search permission for the
// caller stops a path walk through it (path_resolution(7): EACCES "if
// search permission is denied on a component of the path prefix").
func TestVirtualUserSearch(t *testing.T) {
	t.Skip("known bug: kbox's resolver does not check a virtual user's search permission on the directories of a path " +
		"(/dn 0700 of uid 2000: uid 1000 opens, stats and reads /dn/f)")
	v, native := virtualUser(t, userTree)
	for _, p := range []string{"/dn/f", "/dn/nope", "/dn/f/"} {
		v.oracleAs(native, asUser1000, "open", gpath(p), unix.O_RDONLY, 0).check(t, "open "+p)
		v.oracleAs(native, asUser1000, "open", gpath(p), unix.O_PATH, 0).check(t, "open O_PATH "+p)
		v.oracleAs(native, asUser1000, "stat", gpath(p), gbuf(statSize)).check(t, "stat "+p)
		v.oracleAs(native, asUser1000, "access", gpath(p), unix.F_OK).check(t, "access "+p)
		v.oracleAs(native, asUser1000, "readlink", gpath(p), gbuf(16), 16).check(t, "readlink "+p)
	}
}

// statxNullPath reports whether the host kernel takes statx(fd, NULL,
// AT_EMPTY_PATH) (Linux 6.11).
func statxNullPath() bool {
	var st unix.Statx_t
	_, _, e := unix.Syscall6(unix.SYS_STATX, ^uintptr(99) /* AT_FDCWD */, 0, unix.AT_EMPTY_PATH, unix.STATX_TYPE,
		uintptr(unsafe.Pointer(&st)), 0)
	return e == 0
}
