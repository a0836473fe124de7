package dispatch

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

// attrTree describes the attributes of every entry under dir (mounted
// directories skip left out): mode, owners, size, and the times, shown
// as "now" when within a minute of the present (UTIME_NOW, a NULL times
// argument), exactly otherwise.
func attrTree(t *testing.T, dir string, skip ...string) string {
	t.Helper()
	now := time.Now()
	when := func(ts unix.Timespec) string {
		if d := now.Sub(time.Unix(ts.Sec, ts.Nsec)); d < time.Minute && d > -time.Minute {
			return "now"
		}
		return fmt.Sprintf("%d.%09d", ts.Sec, ts.Nsec)
	}
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		for _, s := range skip {
			if rel == s {
				return filepath.SkipDir
			}
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		size := st.Size
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			size = 0
		}
		line := fmt.Sprintf("%s %o %d:%d size %d", rel, st.Mode, st.Uid, st.Gid, size)
		if rel != "." && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			line += " atime " + when(st.Atim) + " mtime " + when(st.Mtim)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// timespecs encodes struct timespec[2].
func timespecs(asec, ansec, msec, mnsec int64) gdata {
	var b []byte
	for _, v := range []int64{asec, ansec, msec, mnsec} {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	return gdata(b)
}

// timevals encodes struct timeval[2].
func timevals(asec, ausec, msec, musec int64) gdata { return timespecs(asec, ausec, msec, musec) }

// TestAttrNative: chmod, chown, the utime family and truncate, as one
// sequence in the guest (without a virtual identity) and natively on a
// tree laid out alike: each answer, and every entry's mode, owners, size
// and times after each step, are the native ones.
func TestAttrNative(t *testing.T) {
	h := newHarness(t)
	native := h.nativeTree(openLinks)
	expect(t, "chdir /", h.call("chdir", h.str("/")), Ok(0))
	old := []unix.Timespec{{Sec: 100000}, {Sec: 200000}}
	for _, dir := range []string{h.root, native} {
		for _, n := range []string{"f", "l", "ld", "dangling", "loop"} {
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, dir+"/"+n, old, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				t.Fatal(err)
			}
		}
	}
	gd := h.open(h.root+"/d", unix.O_RDONLY|unix.O_DIRECTORY)
	nd := h.open(native+"/d", unix.O_RDONLY|unix.O_DIRECTORY)
	gf := h.open(h.root+"/f", unix.O_RDONLY)
	nf := h.open(native+"/f", unix.O_RDONLY)
	gp := h.open(h.root+"/f", unix.O_PATH)
	np := h.open(native+"/f", unix.O_PATH)
	dir, file, pfile := gfd{gd, nd}, gfd{gf, nf}, gfd{gp, np}
	const cwd = unix.AT_FDCWD
	nf1 := unix.AT_SYMLINK_NOFOLLOW
	for _, c := range []struct {
		call string
		args []any
	}{
		{"chmod", []any{gpath("/f"), 0o600}},
		{"chmod", []any{gpath("/l"), 0o640}},
		{"chmod", []any{gpath("/d"), 0o1777}},
		{"chmod", []any{gpath("/f"), 0o7777}},
		{"chmod", []any{gpath("/f"), 0o170644}},
		{"chmod", []any{gpath("/dangling"), 0o644}},
		{"chmod", []any{gpath("/loop"), 0o644}},
		{"chmod", []any{gpath("/nope"), 0o644}},
		{"chmod", []any{gpath("/f/"), 0o644}},
		{"chmod", []any{gpath("/d/"), 0o755}},
		{"chmod", []any{gpath(""), 0o644}},
		{"chmod", []any{gbad{}, 0o644}},
		{"fchmodat", []any{cwd, gpath("/f"), 0o644}},
		{"fchmodat", []any{dir, gpath("../f"), 0o604}},
		{"fchmodat", []any{-1, gpath("f"), 0o604}},
		{"fchmodat2", []any{cwd, gpath("/l"), 0o600, nf1}},
		{"fchmodat2", []any{cwd, gpath("/dangling"), 0o600, nf1}},
		{"fchmodat2", []any{cwd, gpath("/f"), 0o640, nf1}},
		{"fchmodat2", []any{cwd, gpath("/f"), 0o640, 0x1}},
		{"fchmodat2", []any{file, gpath(""), 0o660, unix.AT_EMPTY_PATH}},
		{"fchmodat2", []any{pfile, gpath(""), 0o664, unix.AT_EMPTY_PATH}},
		{"fchmodat2", []any{file, gpath(""), 0o600, 0}},
		{"chown", []any{gpath("/f"), 1234, 5678}},
		{"chown", []any{gpath("/f"), -1, -1}},
		{"chown", []any{gpath("/f"), -1, 42}},
		{"chown", []any{gpath("/l"), 77, -1}},
		{"chown", []any{gpath("/dangling"), 1, 1}},
		{"chown", []any{gpath("/nope"), 1, 1}},
		{"chown", []any{gpath("/f/"), 1, 1}},
		{"lchown", []any{gpath("/l"), 99, 98}},
		{"lchown", []any{gpath("/dangling"), 97, 96}},
		{"lchown", []any{gpath("/nope"), 1, 1}},
		{"fchownat", []any{cwd, gpath("/ld"), 5, 6, nf1}},
		{"fchownat", []any{cwd, gpath("/ld"), 7, 8, 0}},
		{"fchownat", []any{file, gpath(""), 9, 10, unix.AT_EMPTY_PATH}},
		{"fchownat", []any{pfile, gpath(""), 11, 12, unix.AT_EMPTY_PATH}},
		{"fchownat", []any{file, gpath(""), 9, 10, 0}},
		{"fchownat", []any{cwd, gpath("/f"), 0, 0, 0x1}},
		{"fchownat", []any{dir, gpath("../f"), 0, 0, 0}},
		{"chmod", []any{gpath("/f"), 0o6755}},
		{"chown", []any{gpath("/f"), 0, 0}}, // clears set-id bits natively
		{"utime", []any{gpath("/f"), gdata(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 1000), 2000))}},
		{"utime", []any{gpath("/l"), uint64(0)}},
		{"utime", []any{gpath("/nope"), uint64(0)}},
		{"utime", []any{gpath("/f"), gbad{}}},
		{"utimes", []any{gpath("/ld"), timevals(3000, 5, 4000, 999999)}},
		{"utimes", []any{gpath("/f"), timevals(3000, 1000000, 4000, 0)}},
		{"utimes", []any{gpath("/f"), timevals(3000, -1, 4000, 0)}},
		{"utimes", []any{gpath("/dangling"), uint64(0)}},
		{"futimesat", []any{cwd, gpath("/f"), timevals(5000, 1, 6000, 2)}},
		{"futimesat", []any{dir, gpath("../f"), timevals(5001, 1, 6001, 2)}},
		{"futimesat", []any{file, uint64(0), timevals(5002, 1, 6002, 2)}},
		{"utimensat", []any{cwd, gpath("/f"), timespecs(7000, 1, 8000, 2), 0}},
		{"utimensat", []any{cwd, gpath("/f"), timespecs(0, unix.UTIME_OMIT, 9000, 3), 0}},
		{"utimensat", []any{cwd, gpath("/f"), timespecs(0, unix.UTIME_OMIT, 0, unix.UTIME_OMIT), 0}},
		{"utimensat", []any{cwd, gpath("/f"), timespecs(0, unix.UTIME_NOW, 0, unix.UTIME_OMIT), 0}},
		{"utimensat", []any{cwd, gpath("/l"), timespecs(1, 2, 3, 4), nf1}},
		{"utimensat", []any{cwd, gpath("/dangling"), timespecs(5, 6, 7, 8), nf1}},
		{"utimensat", []any{cwd, gpath("/dangling"), timespecs(5, 6, 7, 8), 0}},
		{"utimensat", []any{cwd, gpath("/loop"), uint64(0), nf1}},
		{"utimensat", []any{cwd, gpath("/ld"), uint64(0), 0}},
		{"utimensat", []any{cwd, gpath("/f"), timespecs(1, 1e9, 3, 4), 0}},
		{"utimensat", []any{cwd, gpath("/f"), timespecs(1, -1, 3, 4), 0}},
		{"utimensat", []any{cwd, gpath("/f"), timespecs(1, 2, 3, 4), 0x1}},
		{"utimensat", []any{cwd, gpath(""), timespecs(1, 2, 3, 4), 0}},
		{"utimensat", []any{file, gpath(""), timespecs(11, 12, 13, 14), unix.AT_EMPTY_PATH}},
		{"utimensat", []any{file, uint64(0), timespecs(15, 16, 17, 18), 0}},
		{"utimensat", []any{cwd, gpath(""), timespecs(19, 20, 21, 22), unix.AT_EMPTY_PATH}},
		{"fchmodat2", []any{cwd, gpath(""), 0o755, unix.AT_EMPTY_PATH}},
		{"fchownat", []any{cwd, gpath(""), -1, -1, unix.AT_EMPTY_PATH}},
		{"utimensat", []any{cwd, uint64(0), timespecs(15, 16, 17, 18), 0}},
		{"utimensat", []any{cwd, gpath("/f"), gbad{}, 0}},
		{"utimensat", []any{cwd, gpath("/nope"), uint64(0), 0}},
		// The kernel's order: the times are read (EFAULT), two UTIME_OMIT
		// succeed without a look at the path, then the flags, the path
		// and the nanoseconds are checked.
		{"utimensat", []any{cwd, gpath("/nope"), timespecs(0, unix.UTIME_OMIT, 0, unix.UTIME_OMIT), 0}},
		{"utimensat", []any{cwd, gbad{}, timespecs(0, unix.UTIME_OMIT, 0, unix.UTIME_OMIT), 0}},
		{"utimensat", []any{cwd, gpath("/f"), timespecs(0, unix.UTIME_OMIT, 0, unix.UTIME_OMIT), 0x1}},
		{"utimensat", []any{cwd, gpath("/f"), gbad{}, 0x1}},
		{"utimensat", []any{cwd, gpath("/nope"), timespecs(1, 1e9, 3, 4), 0}},
		{"utimensat", []any{cwd, gpath("/nope"), timespecs(1, 1e9, 3, 4), 0x1}},
		{"utimensat", []any{-1, gpath("f"), timespecs(1, 1e9, 3, 4), 0}},
		{"utimes", []any{gpath("/nope"), timevals(1, 1000000, 3, 4)}},
		{"truncate", []any{gpath("/f"), 3}},
		{"truncate", []any{gpath("/l"), 10}},
		{"truncate", []any{gpath("/f"), -1}},
		{"truncate", []any{gpath("/d"), 0}},
		{"truncate", []any{gpath("/nope"), 0}},
		{"truncate", []any{gpath("/f/"), 0}},
		{"truncate", []any{gpath("/dangling"), 0}},
		{"truncate", []any{gbad{}, 0}},
	} {
		what := c.call + " " + argString(c.args) + fmt.Sprint(c.args[len(c.args)-1])
		o := h.oracle(native, c.call, c.args...)
		o.check(t, what)
		g, n := attrTree(t, h.root, "mnt", "ro", "proc"), attrTree(t, native, "mnt", "ro", "proc")
		if g != n {
			t.Fatalf("after %s: the guest's tree\n%s\nnatively\n%s", what, g, n)
		}
	}
}

// TestAttrRules: the read-only bind (chmod(2), chown(2), utimensat(2),
// truncate(2): EROFS), and a virtual identity: its chown is recorded,
// not applied, with chown(2)'s rules for an unprivileged caller (EPERM
// to give a file away or to a group it is not in); chmod by the owner
// only, which clears S_ISGID when the file's group is not the caller's
// (chmod(2)); explicit times by the owner only, the present time with
// write permission (utimensat(2): EPERM, EACCES).
func TestAttrRules(t *testing.T) {
	h := newHarness(t)
	ro := h.str("/ro/f")
	ts := h.bytes(timespecs(1, 2, 3, 4))
	for _, c := range []struct {
		what string
		call string
		args []uint64
		want Result
	}{
		{"chmod on /ro", "chmod", []uint64{ro, 0o600}, Fail(unix.EROFS)},
		{"chown on /ro", "chown", []uint64{ro, 0, 0}, Fail(unix.EROFS)},
		{"lchown on /ro", "lchown", []uint64{ro, 0, 0}, Fail(unix.EROFS)},
		{"utimensat on /ro", "utimensat", []uint64{g64(unix.AT_FDCWD), ro, ts, 0}, Fail(unix.EROFS)},
		{"utimes now on /ro", "utimes", []uint64{ro, 0}, Fail(unix.EROFS)},
		{"truncate on /ro", "truncate", []uint64{ro, 0}, Fail(unix.EROFS)},
		{"truncate of a missing file on /ro", "truncate", []uint64{h.str("/ro/nope"), 0}, Fail(unix.ENOENT)},
		{"chmod on /mnt", "chmod", []uint64{h.str("/mnt/f"), 0o600}, Ok(0)},
	} {
		if n, _ := atForm(h.e.arch, c.call, c.args, func(n int64) uint64 { return uint64(n) }); !hasCall(h.e.arch, n) {
			t.Logf("%s left out: no %s on %s", c.what, c.call, h.e.arch.Name)
			continue
		}
		expect(t, c.what, h.call(c.call, c.args...), c.want)
	}
	var st unix.Stat_t
	if err := unix.Stat(h.hosts["/ro"]+"/f", &st); err != nil || st.Mode&0o7777 != 0o644 || st.Size != 6 {
		t.Errorf("the read-only bind's file changed: %v %o %d", err, st.Mode, st.Size)
	}
}

// TestAttrVirtualUser: a virtual identity's chown is recorded, not
// applied; a virtual user's chmod, chown, utime family and truncate on
// objects with recorded owners answer as the same calls natively by a
// host process of uid 1000 on files owned alike (chown(2), chmod(2):
// S_ISGID cleared outside the file's group; utimensat(2): explicit times
// by the owner only, EPERM; the present time with write permission,
// EACCES), and the guest sees the native owners and modes afterwards.
func TestAttrVirtualUser(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("the native oracle needs root to own files as other users")
	}
	v := newHarness(t, virtualID(identity.Config{UID: 0}))
	native := t.TempDir()
	// The test's temporary directories are 0700: uid 1000 must reach it.
	for _, d := range []string{native, filepath.Dir(native)} {
		if err := unix.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var host unix.Stat_t
	if err := unix.Stat(v.root+"/f", &host); err != nil {
		t.Fatal(err)
	}
	s := v.str
	files := []struct {
		name     string
		mode     uint32
		uid, gid int
	}{
		{"g", 0o644, 2000, 2000}, {"w", 0o666, 2000, 2000}, {"n", 0o644, 1000, 1000},
		{"m", 0o644, 1000, 3000}, {"x", 0o4755, 1000, 1000},
	}
	for _, f := range files {
		p := s("/" + f.name)
		expect(t, "root: mknod "+f.name, v.call("mknod", p, unix.S_IFREG, 0), Ok(0))
		expect(t, "root: chmod "+f.name, v.call("chmod", p, uint64(f.mode)), Ok(0))
		expect(t, "root: chown "+f.name, v.call("chown", p, uint64(f.uid), uint64(f.gid)), Ok(0))
		if err := unix.Mknod(native+"/"+f.name, unix.S_IFREG, 0); err != nil {
			t.Fatal(err)
		}
		if err := unix.Chown(native+"/"+f.name, f.uid, f.gid); err != nil {
			t.Fatal(err)
		}
		if err := unix.Chmod(native+"/"+f.name, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	expect(t, "root: symlink", v.call("symlink", s("g"), s("/sl")), Ok(0))
	expect(t, "root: lchown /sl", v.call("lchown", s("/sl"), 4000, 4000), Ok(0))
	if err := unix.Symlink("g", native+"/sl"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lchown(native+"/sl", 4000, 4000); err != nil {
		t.Fatal(err)
	}
	var after unix.Stat_t
	if err := unix.Stat(v.root+"/g", &after); err != nil || after.Uid != host.Uid || after.Gid != host.Gid {
		t.Errorf("the virtual chown changed the host file: %d:%d (want %d:%d)", after.Uid, after.Gid, host.Uid, host.Gid)
	}
	expect(t, "setgroups 1000", v.call("setgroups", 1, v.u32(1000)), Ok(0))
	expect(t, "setresgid 1000", v.call("setresgid", 1000, 1000, 1000), Ok(0))
	expect(t, "setresuid 1000", v.call("setresuid", 1000, 1000, 1000), Ok(0))
	const cwd = unix.AT_FDCWD
	for _, c := range []struct {
		call string
		args []any
	}{
		{"truncate", []any{gpath("/n"), 1}},
		{"chown", []any{gpath("/g"), 1000, 1000}},
		{"chown", []any{gpath("/n"), 2000, -1}},
		{"chown", []any{gpath("/n"), -1, 2000}},
		{"chown", []any{gpath("/n"), -1, 1000}},
		{"chown", []any{gpath("/n"), 1000, 1000}},
		{"chown", []any{gpath("/g"), -1, -1}},
		{"chown", []any{gpath("/m"), -1, 1000}},
		{"chown", []any{gpath("/x"), -1, 1000}},
		{"lchown", []any{gpath("/sl"), 1000, 1000}},
		{"chmod", []any{gpath("/g"), 0o600}},
		{"fchmodat2", []any{cwd, gpath("/g"), 0o600, 0}},
		{"chmod", []any{gpath("/n"), 0o600}},
		{"chmod", []any{gpath("/n"), 0o2755}},
		{"chmod", []any{gpath("/sl"), 0o600}},
		{"utimensat", []any{cwd, gpath("/g"), timespecs(1, 2, 3, 4), 0}},
		{"utimensat", []any{cwd, gpath("/g"), uint64(0), 0}},
		{"utimensat", []any{cwd, gpath("/g"), timespecs(0, unix.UTIME_NOW, 0, unix.UTIME_NOW), 0}},
		{"utimensat", []any{cwd, gpath("/g"), timespecs(0, unix.UTIME_NOW, 0, unix.UTIME_OMIT), 0}},
		{"utimensat", []any{cwd, gpath("/g"), timespecs(0, unix.UTIME_OMIT, 0, unix.UTIME_OMIT), 0}},
		{"utimensat", []any{cwd, gpath("/w"), timespecs(1, 2, 3, 4), 0}},
		{"utimensat", []any{cwd, gpath("/w"), uint64(0), 0}},
		{"utimensat", []any{cwd, gpath("/n"), timespecs(5, 6, 7, 8), 0}},
		{"utimes", []any{gpath("/g"), uint64(0)}},
		{"utimes", []any{gpath("/g"), timevals(1, 2, 3, 4)}},
		{"utime", []any{gpath("/w"), uint64(0)}},
		{"truncate", []any{gpath("/g"), 0}},
		{"truncate", []any{gpath("/w"), 0}},
	} {
		what := c.call + " " + argString(c.args) + fmt.Sprint(c.args[1:])
		v.oracleAs(native, asUser1000, c.call, c.args...).check(t, what)
	}
	for _, f := range append(files, struct {
		name     string
		mode     uint32
		uid, gid int
	}{name: "sl"}) {
		buf := v.alloc(statSize)
		expect(t, "lstat "+f.name, v.call("lstat", s("/"+f.name), buf), Ok(0))
		g := statOf(v.read(buf, statSize))
		var n unix.Stat_t
		if err := unix.Lstat(native+"/"+f.name, &n); err != nil {
			t.Fatal(err)
		}
		if g.Mode != n.Mode || g.Uid != n.Uid || g.Gid != n.Gid || g.Size != n.Size {
			t.Errorf("%s: the guest sees %o %d:%d size %d, natively %o %d:%d size %d", f.name,
				g.Mode, g.Uid, g.Gid, g.Size, n.Mode, n.Uid, n.Gid, n.Size)
		}
	}
}

// TestAttrTruncateKillsSetID: truncate(2) by a process without
// CAP_FSETID clears S_ISUID, and S_ISGID with group execute, as a write
// does (should_remove_suid in fs/inode.c): natively, a file of uid 1000
// mode 6755 becomes 0755 when it truncates it.
func TestAttrTruncateKillsSetID(t *testing.T) {
	t.Skip("known bug: a recorded mode's set-id bits survive a virtual user's truncate (and write), " +
		"which clear them natively; the host file has no set-id bits for the kernel to clear")
	v := newHarness(t, virtualID(identity.Config{UID: 0}))
	p := v.str("/x")
	expect(t, "mknod", v.call("mknod", p, unix.S_IFREG, 0), Ok(0))
	expect(t, "chown", v.call("chown", p, 1000, 1000), Ok(0))
	expect(t, "chmod", v.call("chmod", p, 0o6755), Ok(0))
	expect(t, "setresgid", v.call("setresgid", 1000, 1000, 1000), Ok(0))
	expect(t, "setresuid", v.call("setresuid", 1000, 1000, 1000), Ok(0))
	expect(t, "truncate", v.call("truncate", p, 1), Ok(0))
	buf := v.alloc(statSize)
	expect(t, "stat", v.call("stat", p, buf), Ok(0))
	if st := statOf(v.read(buf, statSize)); st.Mode&0o7777 != 0o755 {
		t.Errorf("mode %o after truncate, want 755", st.Mode&0o7777)
	}
}

// TestAttrVirtualUserTree: a virtual user 1000's chmod, chown, utimensat
// and truncate over the whole virtual-user tree (directories, sticky,
// search-only, its own and others') answer as a host thread of uid 1000
// does on the tree owned alike.
func TestAttrVirtualUserTree(t *testing.T) {
	v, native := virtualUser(t, userTree)
	const cwd = unix.AT_FDCWD
	for _, e := range userTree {
		if strings.HasPrefix(e.name, "dn/") {
			continue // TestVirtualUserSearch
		}
		p := gpath("/" + e.name)
		for _, c := range []struct {
			call string
			args []any
		}{
			{"utimensat", []any{cwd, p, uint64(0), 0}},
			{"utimensat", []any{cwd, p, timespecs(1, 2, 3, 4), 0}},
			{"utimensat", []any{cwd, p, timespecs(0, unix.UTIME_NOW, 0, unix.UTIME_NOW), unix.AT_SYMLINK_NOFOLLOW}},
			{"utimensat", []any{cwd, p, timespecs(5, 6, 7, 8), unix.AT_SYMLINK_NOFOLLOW}},
			{"truncate", []any{p, 0}},
			{"chown", []any{p, -1, 1000}},
			{"lchown", []any{p, -1, 1000}},
			{"chown", []any{p, 1000, -1}},
			{"chmod", []any{p, int(e.mode) | 0o4000}},
			{"fchmodat2", []any{cwd, p, int(e.mode), unix.AT_SYMLINK_NOFOLLOW}},
		} {
			what := c.call + " " + e.name + " " + fmt.Sprint(c.args[len(c.args)-1])
			v.oracleAs(native, asUser1000, c.call, c.args...).check(t, what)
		}
	}
	for _, e := range userTree {
		if strings.HasPrefix(e.name, "dn/") {
			continue
		}
		buf := v.alloc(statSize)
		expect(t, "lstat "+e.name, v.call("lstat", v.str("/"+e.name), buf), Ok(0))
		g := statOf(v.read(buf, statSize))
		var n unix.Stat_t
		if err := unix.Lstat(native+"/"+e.name, &n); err != nil {
			t.Fatal(err)
		}
		if g.Mode != n.Mode || g.Uid != n.Uid || g.Gid != n.Gid {
			t.Errorf("%s: the guest sees %o %d:%d, natively %o %d:%d", e.name, g.Mode, g.Uid, g.Gid, n.Mode, n.Uid, n.Gid)
		}
	}
}
