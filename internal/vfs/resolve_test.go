package vfs

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// tree builds a host directory used as a guest root:
//
//	/etc/hostname            file
//	/a/b/c                   dirs
//	/a/file                  file
//	/abs -> /etc             absolute symlink (must stay in the guest)
//	/rel -> a/b              relative symlink
//	/up -> ../../../..       climbing symlink
//	/loop1 -> loop2, /loop2 -> loop1
//	/dangling -> nowhere
//	/outside -> <host dir outside the root>
//	/mnt                     mount point (bind of another host dir)
//	bind: /mnt/inner/deep, /mnt/back -> ../etc
type tree struct {
	root, outside, bind string
	ns                  *Namespace
}

func newTree(t testing.TB) *tree {
	t.Helper()
	base := t.TempDir()
	tr := &tree{root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside"), bind: filepath.Join(base, "bind")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"etc", "a/b/c", "mnt", "tmp"} {
		must(os.MkdirAll(filepath.Join(tr.root, d), 0o755))
	}
	must(os.MkdirAll(filepath.Join(tr.bind, "inner/deep"), 0o755))
	must(os.MkdirAll(tr.outside, 0o755))
	must(os.WriteFile(filepath.Join(tr.outside, "secret"), []byte("host"), 0o644))
	must(os.WriteFile(filepath.Join(tr.root, "etc/hostname"), []byte("guest"), 0o644))
	must(os.WriteFile(filepath.Join(tr.root, "a/file"), []byte("f"), 0o644))
	links := map[string]string{
		"abs": "/etc", "rel": "a/b", "up": "../../../..", "loop1": "loop2", "loop2": "loop1",
		"dangling": "nowhere", "outside": tr.outside, "a/b/toroot": "/", "a/b/dots": "../..",
	}
	for name, target := range links {
		must(os.Symlink(target, filepath.Join(tr.root, name)))
	}
	must(os.Symlink("../etc", filepath.Join(tr.bind, "back")))
	// A chain of 40 links is allowed, 41 is ELOOP.
	for i := 0; i < 41; i++ {
		must(os.Symlink("chain"+strconv.Itoa(i+1), filepath.Join(tr.root, "chain"+strconv.Itoa(i))))
	}
	must(os.WriteFile(filepath.Join(tr.root, "chain41"), []byte("end"), 0o644))
	tr.ns = NewNamespace()
	must(tr.ns.Add("/", tr.root, false, KindBind))
	must(tr.ns.Add("/mnt", tr.bind, true, KindBind))
	tr.ns.Seal()
	t.Cleanup(tr.ns.Close)
	return tr
}

func (tr *tree) resolve(t testing.TB, cwd, p string, flags Flags) (*Lookup, error) {
	t.Helper()
	return tr.ns.Resolve(&Context{Cwd: cwd, Root: "/"}, "", p, flags)
}

func TestResolve(t *testing.T) {
	tr := newTree(t)
	cases := []struct {
		cwd, path string
		flags     Flags
		want      string // canonical guest path, or errno name
		exists    bool
	}{
		{"/", "/etc/hostname", FollowFinal, "/etc/hostname", true},
		{"/", "etc/hostname", FollowFinal, "/etc/hostname", true},
		{"/a/b", "../../etc/hostname", FollowFinal, "/etc/hostname", true},
		{"/", "/../../../etc/hostname", FollowFinal, "/etc/hostname", true},
		{"/a", "../../../../..", FollowFinal, "/", true},
		{"/", "/abs/hostname", FollowFinal, "/etc/hostname", true},
		{"/", "/rel/c", FollowFinal, "/a/b/c", true},
		{"/a/b", "toroot/etc/hostname", FollowFinal, "/etc/hostname", true},
		{"/a/b", "dots/etc", FollowFinal, "/etc", true},
		{"/", "/up/etc/hostname", FollowFinal, "/etc/hostname", true},
		{"/", "/abs", 0, "/abs", true},
		{"/", "/abs", FollowFinal, "/etc", true},
		{"/", "/loop1", FollowFinal, "ELOOP", false},
		{"/", "/loop1", 0, "/loop1", true},
		{"/", "/loop1/x", 0, "ELOOP", false},
		{"/", "/dangling", FollowFinal, "/nowhere", false},
		{"/", "/outside/secret", FollowFinal, "ENOENT", false},
		{"/", "/a/file/x", FollowFinal, "ENOTDIR", false},
		{"/", "/a/file/", FollowFinal, "ENOTDIR", false},
		{"/", "/missing/x", FollowFinal, "ENOENT", false},
		{"/", "/missing", FollowFinal, "/missing", false},
		{"/", "/chain1", FollowFinal, "/chain41", true},
		{"/", "/chain0", FollowFinal, "ELOOP", false},
		{"/", "/mnt/inner/deep", FollowFinal, "/mnt/inner/deep", true},
		{"/", "/mnt/inner/../../etc/hostname", FollowFinal, "/etc/hostname", true},
		{"/mnt/inner", "../..", FollowFinal, "/", true},
		{"/", "/mnt/back/hostname", FollowFinal, "/etc/hostname", true},
		{"/", "/" + strings.Repeat("x", 256), FollowFinal, "ENAMETOOLONG", false},
		{"/", "/" + strings.Repeat("a/", 2100), FollowFinal, "ENAMETOOLONG", false},
		{"/", "", FollowFinal, "ENOENT", false},
	}
	for _, c := range cases {
		l, err := tr.resolve(t, c.cwd, c.path, c.flags)
		got := ""
		if err != nil {
			got = unix.ErrnoName(err.(unix.Errno))
		} else {
			got = l.Path
			if l.Exists() != c.exists {
				t.Errorf("%s (cwd %s): exists=%v, want %v", c.path, c.cwd, l.Exists(), c.exists)
			}
			l.Release()
		}
		if got != c.want {
			t.Errorf("%q (cwd %s, flags %b): got %s, want %s", c.path, c.cwd, c.flags, got, c.want)
		}
	}
}

func TestResolveOpenat2Flags(t *testing.T) {
	tr := newTree(t)
	cases := []struct {
		start, path string
		flags       Flags
		want        string
	}{
		{"/a", "../etc", Beneath | FollowFinal, "EXDEV"},
		{"/a", "/etc", Beneath | FollowFinal, "EXDEV"},
		{"/a", "b/c", Beneath | FollowFinal, "/a/b/c"},
		{"/a/b", "toroot", Beneath | FollowFinal, "EXDEV"},
		{"/a", "../../..", InRoot | FollowFinal, "/a"},
		{"/a", "/b/c", InRoot | FollowFinal, "/a/b/c"},
		{"/a/b", "toroot", InRoot | FollowFinal, "/a/b"},
		{"/", "abs", NoSymlinks | FollowFinal, "ELOOP"},
		{"/", "rel/c", NoSymlinks | FollowFinal, "ELOOP"},
		{"/", "mnt/inner", NoXdev | FollowFinal, "EXDEV"},
		{"/mnt", "inner", NoXdev | FollowFinal, "/mnt/inner"},
		{"/mnt", "..", NoXdev | FollowFinal, "EXDEV"},
	}
	for _, c := range cases {
		l, err := tr.ns.Resolve(&Context{Cwd: "/", Root: "/"}, c.start, c.path, c.flags)
		got := ""
		if err != nil {
			got = unix.ErrnoName(err.(unix.Errno))
		} else {
			got = l.Path
			l.Release()
		}
		if got != c.want {
			t.Errorf("%s from %s (flags %b): got %s, want %s", c.path, c.start, c.flags, got, c.want)
		}
	}
}

func TestResolveLastKinds(t *testing.T) {
	tr := newTree(t)
	for _, c := range []struct {
		path string
		kind LastKind
	}{{"/", LastRoot}, {"/a/.", LastDot}, {"/a/b/..", LastDotDot}, {"/a/b", LastNorm}} {
		l, err := tr.resolve(t, "/", c.path, 0)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		if l.Last != c.kind {
			t.Errorf("%s: last kind %d, want %d", c.path, l.Last, c.kind)
		}
		l.Release()
	}
	l, err := tr.resolve(t, "/", "/mnt", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !l.MountPoint || !l.Mount.ReadOnly {
		t.Errorf("/mnt: MountPoint=%v ReadOnly=%v", l.MountPoint, l.Mount.ReadOnly)
	}
	l.Release()
}

func TestGuestPathOfHost(t *testing.T) {
	tr := newTree(t)
	cases := []struct {
		host, want string
		ok         bool
	}{
		{tr.root, "/", true},
		{tr.root + "/etc/hostname", "/etc/hostname", true},
		{tr.bind + "/inner", "/mnt/inner", true},
		{tr.root + "/mnt/shadowed", "", false}, // hidden by the /mnt mount
		{tr.outside, "", false},
		{"relative", "", false},
	}
	for _, c := range cases {
		got, ok := tr.ns.GuestPathOfHost(c.host)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %q %v, want %q %v", c.host, got, ok, c.want, c.ok)
		}
	}
}

// TestCacheInvalidation: a cached directory renamed away must not be found
// at its old path.
func TestCacheInvalidation(t *testing.T) {
	tr := newTree(t)
	l, err := tr.resolve(t, "/", "/a/b/c", FollowFinal)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if err := os.Rename(filepath.Join(tr.root, "a/b"), filepath.Join(tr.root, "a/moved")); err != nil {
		t.Fatal(err)
	}
	tr.ns.Invalidate()
	l, err = tr.resolve(t, "/", "/a/b/c", FollowFinal)
	if err != unix.ENOENT {
		t.Fatalf("after rename: got %v (%v), want ENOENT", err, l)
	}
}

// hostLocation returns where on the host a lookup's object (or parent) is.
func hostLocation(t testing.TB, l *Lookup) string {
	fd := -1
	switch {
	case l.Obj != nil:
		fd = l.Obj.FD()
	case l.Parent != nil:
		fd = l.Parent.FD()
	default:
		return ""
	}
	buf := make([]byte, PathMax)
	n, err := unix.Readlink("/proc/self/fd/"+strconv.Itoa(fd), buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

// FuzzResolve checks the confinement invariant: whatever the path, the
// resolved object (or the directory it would be created in) lies inside a
// mount's host directory, never elsewhere on the host.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/", "..", "../../..", "/abs/../..", "outside/secret", "/up/up/up",
		"a/b/toroot/../..", "/mnt/back/../../..", "loop1", "chain0", "a/./b/../../rel/../..", "//etc//hostname",
		"/mnt/inner/../../outside", "a/b/dots/dots/outside"} {
		f.Add(s, "/")
		f.Add(s, "/a/b")
	}
	tr := newTree(f)
	f.Fuzz(func(t *testing.T, p, cwd string) {
		if !strings.HasPrefix(cwd, "/") || strings.Contains(cwd, "\x00") || strings.Contains(p, "\x00") {
			return
		}
		cl, err := tr.resolve(t, "/", cwd, FollowFinal)
		if err != nil || !cl.IsDir() {
			if cl != nil {
				cl.Release()
			}
			return
		}
		cwd = cl.Path
		cl.Release()
		for _, fl := range []Flags{0, FollowFinal} {
			l, err := tr.resolve(t, cwd, p, fl)
			if err != nil {
				continue
			}
			loc := hostLocation(t, l)
			inside := strings.HasPrefix(loc+"/", tr.root+"/") || strings.HasPrefix(loc+"/", tr.bind+"/")
			if !inside || strings.HasPrefix(loc+"/", tr.outside+"/") {
				t.Errorf("%q from %s resolved to host %s, outside the guest", p, cwd, loc)
			}
			if !strings.HasPrefix(l.Path, "/") {
				t.Errorf("%q: non-absolute guest path %q", p, l.Path)
			}
			l.Release()
		}
	})
}

// TestMountOfHost: a host path belongs to the mount with the longest host
// directory that reaches it; read-only wins between mounts of one directory.
func TestMountOfHost(t *testing.T) {
	base := t.TempDir()
	rw, ro := filepath.Join(base, "rw"), filepath.Join(base, "rw", "sub")
	if err := os.MkdirAll(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	ns := NewNamespace()
	defer ns.Close()
	for _, m := range []struct {
		guest, host string
		ro          bool
	}{{"/", rw, false}, {"/ro", ro, true}, {"/same-rw", ro, false}, {"/rw2", base, false}} {
		if err := ns.Add(m.guest, m.host, m.ro, KindBind); err != nil {
			t.Fatal(err)
		}
	}
	ns.Seal()
	for _, c := range []struct {
		host, guest string
		ro, ok      bool
	}{
		{filepath.Join(rw, "f"), "/f", false, true},
		{filepath.Join(ro, "f"), "/ro/f", true, true}, // /sub/f (rw) and /same-rw/f too: read-only wins
		{base + "/other", "/rw2/other", false, true},
		{"/elsewhere/x", "", false, false},
	} {
		m, g, ok := ns.MountOfHost(c.host)
		if ok != c.ok || (ok && (m.ReadOnly != c.ro || g != c.guest)) {
			t.Errorf("%s: got %v %q ok=%v, want ro=%v %q ok=%v", c.host, m, g, ok, c.ro, c.guest, c.ok)
		}
	}
}

// TestCachedDirStat: a directory the walk reached through the dentry cache
// is known by its type only; Lookup.Stat must still give its whole status
// (mode, size, owner), as an uncached lookup does.
func TestCachedDirStat(t *testing.T) {
	tr := newTree(t)
	if err := os.Chmod(filepath.Join(tr.root, "a/b"), 0o751); err != nil {
		t.Fatal(err)
	}
	var host unix.Stat_t
	if err := unix.Stat(filepath.Join(tr.root, "a/b"), &host); err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"/a/b", "/a/b", "/a/b/", "/a/b/c/..", "/rel"} {
		l, err := tr.resolve(t, "/", p, FollowFinal)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		st, err := l.Stat()
		if err != nil || l.Type() != unix.S_IFDIR || st.Mode != host.Mode || st.Size != host.Size || st.Ino != host.Ino || st.Nlink != host.Nlink {
			t.Errorf("lookup %d of %s: type %o, stat %o size %d ino %d nlink %d (%v); want mode %o size %d ino %d nlink %d",
				i, p, l.Type(), st.Mode, st.Size, st.Ino, st.Nlink, err, host.Mode, host.Size, host.Ino, host.Nlink)
		}
		l.Release()
	}
	if hits, _ := tr.ns.CacheStats(); hits == 0 {
		t.Error("no lookup was served from the dentry cache: the test does not test it")
	}
	l, err := tr.resolve(t, "/", "/missing", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if _, err := l.Stat(); err != unix.ENOENT || l.Type() != 0 {
		t.Errorf("missing: Stat %v, Type %o; want ENOENT, 0", err, l.Type())
	}
}
