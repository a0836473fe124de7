package vfs

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// errName renders a resolve result for table comparisons.
func errName(err error) string {
	if en, ok := err.(unix.Errno); ok {
		return unix.ErrnoName(en)
	}
	return err.Error()
}

func TestFileBind(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	if err := os.MkdirAll(filepath.Join(root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(base, "src")
	if err := os.WriteFile(src, []byte("bound"), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := NewNamespace()
	defer ns.Close()
	if err := ns.Add("/", src, false, KindBind); err == nil {
		t.Fatal("a file as the root mount was accepted")
	}
	if err := ns.Add("/", root, false, KindBind); err != nil {
		t.Fatal(err)
	}
	if err := ns.Add("/d/tmpfile", src, false, KindTmp); err == nil {
		t.Error("a file bind of kind KindTmp was accepted")
	}
	if err := ns.Add("/d/f", src, false, KindBind); err != nil {
		t.Fatalf("file bind: %v", err)
	}
	ns.Seal()
	ctx := &Context{Cwd: "/", Root: "/"}

	l, err := ns.Resolve(ctx, "", "/d/f", FollowFinal)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := l.Stat()
	if !l.Exists() || l.Type() != unix.S_IFREG || st.Size != 5 || !l.MountPoint || !l.Mount.File {
		t.Errorf("/d/f: exists=%v mode=%o size=%d mountpoint=%v file=%v", l.Exists(), st.Mode, st.Size, l.MountPoint, l.Mount.File)
	}
	if !l.ReadOnly {
		t.Error("/d/f: a file bind's object must be read-only (its metadata)")
	}
	if got := hostLocation(t, l); got != src {
		t.Errorf("/d/f reaches host %s, want %s", got, src)
	}
	l.Release()
	for p, want := range map[string]string{"/d/f/x": "ENOTDIR", "/d/f/": "ENOTDIR", "/d/f/..": "ENOTDIR"} {
		if l, err := ns.Resolve(ctx, "", p, FollowFinal); err == nil {
			t.Errorf("%s: resolved to %s, want %s", p, l.Path, want)
			l.Release()
		} else if errName(err) != want {
			t.Errorf("%s: %v, want %s", p, err, want)
		}
	}
	// A ParentOnly lookup of the mount point is fully resolved (never
	// deferred to the shadowed placeholder).
	l, err = ns.Resolve(ctx, "/d", "f", ParentOnly)
	if err != nil {
		t.Fatal(err)
	}
	if l.Deferred || hostLocation(t, l) != src {
		t.Errorf("ParentOnly lookup of a file bind: deferred=%v host=%s", l.Deferred, hostLocation(t, l))
	}
	l.Release()
	if g, ok := ns.GuestPathOfHost(src); !ok || g != "/d/f" {
		t.Errorf("GuestPathOfHost(%s) = %q %v, want /d/f", src, g, ok)
	}
}

func TestReadOnlyFor(t *testing.T) {
	root := t.TempDir()
	ns := NewNamespace()
	defer ns.Close()
	if err := ns.Add("/", root, false, KindBind); err != nil {
		t.Fatal(err)
	}
	if err := ns.Add("/proc", "/proc", false, KindBind); err != nil {
		t.Fatal(err)
	}
	if err := ns.Add("/roproc", "/proc", true, KindBind); err != nil {
		t.Fatal(err)
	}
	ns.Seal()
	proc, roproc := ns.mountAt("/proc"), ns.mountAt("/roproc")
	if proc.Kind != KindProc || roproc.Kind != KindProc {
		t.Fatalf("a procfs bind is not KindProc: %d %d", proc.Kind, roproc.Kind)
	}
	ctx := &Context{Tgid: 100, Tid: 101}
	cases := []struct {
		m    *Mount
		path string
		ro   bool
	}{
		{proc, "/proc/100/comm", false},
		{proc, "/proc/100/task/101/comm", false},
		{proc, "/proc/101/oom_score_adj", false},
		{proc, "/proc/100", true},
		{proc, "/proc/100/", true},
		{proc, "/proc", true},
		{proc, "/proc/200/comm", true},
		{proc, "/proc/0100/comm", true},
		{proc, "/proc/+100/comm", true},
		{proc, "/proc/sys/kernel/core_pattern", true},
		{proc, "/proc/sys/vm/drop_caches", true},
		{proc, "/proc/sysrq-trigger", true},
		{proc, "/proc/sys/fs/binfmt_misc/register", true},
		{roproc, "/roproc/100/comm", true},
		{ns.Root(), "/etc/x", false},
	}
	for _, c := range cases {
		if got := ns.ReadOnlyFor(ctx, c.m, c.path); got != c.ro {
			t.Errorf("ReadOnlyFor(%s) = %v, want %v", c.path, got, c.ro)
		}
	}
	if !ns.ReadOnlyFor(&Context{}, proc, "/proc/0/comm") || !ns.ReadOnlyFor(nil, proc, "/proc/100/comm") {
		t.Error("a context without a process owns no /proc entries")
	}

	// Through the resolver: /proc/self and /proc/thread-self are the
	// caller's own entries.
	self := os.Getpid()
	rctx := &Context{Tgid: self, Tid: unix.Gettid(), Cwd: "/", Root: "/"}
	for p, ro := range map[string]bool{"/proc/self/comm": false, "/proc/thread-self/comm": false,
		"/proc/self": true, "/proc/sys/kernel/core_pattern": true, "/proc/1/comm": true, "/roproc/self/comm": true} {
		l, err := ns.Resolve(rctx, "", p, FollowFinal)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if l.ReadOnly != ro {
			t.Errorf("%s (%s): ReadOnly=%v, want %v", p, l.Path, l.ReadOnly, ro)
		}
		l.Release()
	}
}

func TestAddDev(t *testing.T) {
	if _, err := os.Stat("/dev/null"); err != nil {
		t.Skip("no /dev/null on this host")
	}
	root := t.TempDir()
	ns := NewNamespace()
	if err := ns.Add("/", root, false, KindBind); err != nil {
		t.Fatal(err)
	}
	if err := ns.AddDev("/dev"); err != nil {
		t.Fatal(err)
	}
	// A bind below the private /dev gets its mount point there.
	if g, err := ns.AddBind("/dev/dri", t.TempDir(), BindOptions{}); err != nil || g != "/dev/dri" {
		t.Errorf("AddBind /dev/dri: %q, %v", g, err)
	}
	ns.Seal()
	var private []string
	for _, m := range ns.Mounts() {
		if m.Kind == KindTmp {
			private = append(private, m.Host)
		}
	}
	defer func() {
		ns.RemovePrivate()
		ns.Close()
		for _, d := range private {
			if _, err := os.Lstat(d); err == nil {
				t.Errorf("private directory %s left behind", d)
			}
		}
	}()
	if len(private) != 2 {
		t.Fatalf("private directories %v, want /dev and /dev/shm", private)
	}
	ctx := &Context{Cwd: "/", Root: "/"}

	dev := ns.mountAt("/dev")
	ents, err := os.ReadDir(dev.Host)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{"dri", "fd", "pts", "shm", "stderr", "stdin", "stdout"}
	for _, n := range DevNodes {
		var st unix.Stat_t
		if unix.Stat("/dev/"+n, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR {
			want = append(want, n)
		}
	}
	sort.Strings(want)
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("/dev holds %v, want %v", names, want)
	}

	for _, c := range []struct {
		path    string
		exists  bool
		ro      bool
		typ     uint32
		mountRO bool
	}{
		{"/dev", true, true, unix.S_IFDIR, true},
		{"/dev/null", true, true, unix.S_IFCHR, false},
		{"/dev/urandom", true, true, unix.S_IFCHR, false},
		{"/dev/shm", true, false, unix.S_IFDIR, false},
		{"/dev/kmsg", false, true, 0, true},
		{"/dev/sda", false, true, 0, true},
		{"/dev/userfaultfd", false, true, 0, true},
		{"/dev/loop0", false, true, 0, true},
		{"/dev/shm/new", false, false, 0, false},
	} {
		l, err := ns.Resolve(ctx, "", c.path, 0)
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if l.Exists() != c.exists || l.ReadOnly != c.ro || l.Mount.ReadOnly != c.mountRO ||
			(c.exists && l.Type() != c.typ) {
			t.Errorf("%s: exists=%v ReadOnly=%v mount ReadOnly=%v mode=%o; want %v %v %v type %o",
				c.path, l.Exists(), l.ReadOnly, l.Mount.ReadOnly, l.Type(), c.exists, c.ro, c.mountRO, c.typ)
		}
		l.Release()
	}
	types := ns.FileBindTypes()
	if len(types) != 1 {
		t.Fatalf("FileBindTypes: %v, want the private /dev only", types)
	}
	for k, names := range types {
		if k != [2]uint64{dev.dev, dev.ino} {
			t.Errorf("FileBindTypes keyed by %v, want /dev's %v", k, [2]uint64{dev.dev, dev.ino})
		}
		if names["null"] != unix.S_IFCHR || names["shm"] != 0 || names["fd"] != 0 {
			t.Errorf("FileBindTypes of /dev: %v", names)
		}
	}
	l, err := ns.Resolve(ctx, "", "/dev/stdout", 0)
	if err != nil || l.Type() != unix.S_IFLNK {
		t.Errorf("/dev/stdout: %v, not a symlink", err)
	} else if target, _ := readlinkFD(l.Obj.FD()); target != "/proc/self/fd/1" {
		t.Errorf("/dev/stdout -> %s", target)
	}
	l.Release()
}

// fakeProcs is a ProcView that cannot tell which ptys are the guest's;
// fakePtys is one whose guest holds the ptys in held.
type fakeProcs struct{}

func (fakeProcs) IsGuest(pid int) bool        { return true }
func (fakeProcs) Cwd(pid int) (string, bool)  { return "/", true }
func (fakeProcs) Root(pid int) (string, bool) { return "/", true }
func (fakeProcs) Exe(pid int) (string, bool)  { return "", false }
func (fakeProcs) GuestDir(dirfd, id int) bool { return true }

type fakePtys struct {
	fakeProcs
	held map[int]bool
}

func (f fakePtys) GuestPty(caller, n int) bool { return f.held[n] }

func holding(n ...int) fakePtys {
	f := fakePtys{held: map[int]bool{}}
	for _, x := range n {
		f.held[x] = true
	}
	return f
}

func TestPtsVisibility(t *testing.T) {
	var sfs unix.Statfs_t
	if unix.Statfs("/dev/pts", &sfs) != nil || sfs.Type != unix.DEVPTS_SUPER_MAGIC {
		t.Skip("no devpts at /dev/pts")
	}
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("/dev/ptmx: %v", err)
	}
	defer unix.Close(master)
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	ns := NewNamespace()
	defer ns.Close()
	if err := ns.Add("/", root, false, KindBind); err != nil {
		t.Fatal(err)
	}
	if err := ns.Add("/pts", "/dev/pts", false, KindBind); err != nil {
		t.Fatal(err)
	}
	ns.Seal()
	if k := ns.mountAt("/pts").Kind; k != KindPts {
		t.Fatalf("a devpts bind is kind %d, want KindPts", k)
	}
	pty := "/pts/" + strconv.Itoa(n)
	resolve := func(procs ProcView, p string) string {
		l, err := ns.Resolve(&Context{Cwd: "/", Root: "/", Procs: procs}, "", p, FollowFinal|ParentOnly)
		if err != nil {
			return errName(err)
		}
		defer l.Release()
		if !l.Exists() {
			return "ENOENT"
		}
		return l.Path
	}
	for _, c := range []struct {
		procs ProcView
		path  string
		want  string
	}{
		{holding(n), pty, pty},
		{holding(), pty, "ENOENT"},
		{holding(), pty + "/", "ENOENT"},
		{holding(n), "/pts/ptmx", "ENOENT"},
		{holding(n), "/pts/0" + strconv.Itoa(n), "ENOENT"},
		{fakeProcs{}, pty, "ENOENT"}, // a view that cannot tell: nothing is visible
		{nil, pty, pty},              // kbox's own lookups
	} {
		if got := resolve(c.procs, c.path); got != c.want {
			t.Errorf("%s with %T: got %s, want %s", c.path, c.procs, got, c.want)
		}
	}
}
