package vfs

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ovTree is an overlay over a small lower tree:
//
//	/f        "lower-f" (0640, mtime 2001-01-01, xattr user.k=v when supported)
//	/d/a      "a"
//	/d/sub/b  "b"
//	/l -> f
//	/gone     "x"  (whited out in the upper layer)
//	/od/old   "o"  (od is opaque in the upper layer, holding new)
type ovTree struct {
	lower, upper string
	ns           *Namespace
	xattr        bool
}

func newOvTree(t *testing.T) *ovTree {
	t.Helper()
	base := t.TempDir()
	o := &ovTree{lower: filepath.Join(base, "lower"), upper: filepath.Join(base, "upper")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"d/sub", "od"} {
		must(os.MkdirAll(filepath.Join(o.lower, d), 0o755))
	}
	files := map[string]string{"f": "lower-f", "d/a": "a", "d/sub/b": "b", "gone": "x", "od/old": "o"}
	for p, c := range files {
		must(os.WriteFile(filepath.Join(o.lower, p), []byte(c), 0o644))
	}
	must(os.Chmod(filepath.Join(o.lower, "f"), 0o640))
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	must(os.Chtimes(filepath.Join(o.lower, "f"), old, old))
	o.xattr = unix.Setxattr(filepath.Join(o.lower, "f"), "user.k", []byte("v"), 0) == nil
	must(os.Symlink("f", filepath.Join(o.lower, "l")))
	// The upper layer: a whiteout of /gone, an opaque /od with /od/new.
	must(os.MkdirAll(filepath.Join(o.upper, "od"), 0o755))
	must(os.WriteFile(filepath.Join(o.upper, ".wh.gone"), nil, 0))
	must(os.WriteFile(filepath.Join(o.upper, "od", OpaqueMarker), nil, 0))
	must(os.WriteFile(filepath.Join(o.upper, "od", "new"), []byte("n"), 0o644))
	o.ns = NewNamespace()
	must(o.ns.AddOverlay(o.upper, o.lower))
	o.ns.Seal()
	t.Cleanup(o.ns.Close)
	return o
}

func (o *ovTree) resolve(t *testing.T, p string, flags Flags) *Lookup {
	t.Helper()
	l, err := o.ns.Resolve(&Context{Cwd: "/", Root: "/"}, "", p, flags)
	if err != nil {
		t.Fatalf("resolve %s: %v", p, err)
	}
	t.Cleanup(l.Release)
	return l
}

func (o *ovTree) names(t *testing.T, p string) []string {
	t.Helper()
	l := o.resolve(t, p, FollowFinal)
	if !l.IsDir() {
		t.Fatalf("%s: not a directory", p)
	}
	ents, err := o.ns.Overlay().listing(l.Obj)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ents {
		if d.Name != "." && d.Name != ".." {
			out = append(out, d.Name)
		}
	}
	sort.Strings(out)
	return out
}

func readObj(t *testing.T, l *Lookup) string {
	t.Helper()
	b, err := os.ReadFile(procPath(l.Obj.FD()))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOverlayLookup(t *testing.T) {
	o := newOvTree(t)
	if l := o.resolve(t, "/f", FollowFinal); readObj(t, l) != "lower-f" || l.Upper() {
		t.Errorf("/f: want the lower file")
	}
	if l := o.resolve(t, "/l", FollowFinal); readObj(t, l) != "lower-f" {
		t.Errorf("/l: want the lower file through the link")
	}
	for _, p := range []string{"/gone", "/od/old", "/.wh.gone", "/od/" + OpaqueMarker, "/" + InfoName} {
		if l := o.resolve(t, p, 0); l.Exists() {
			t.Errorf("%s: exists, want hidden", p)
		}
	}
	if l := o.resolve(t, "/od/new", 0); readObj(t, l) != "n" {
		t.Errorf("/od/new: want the upper file")
	}
	if got, want := strings.Join(o.names(t, "/"), " "), "d f l od"; got != want {
		t.Errorf("listing of /: %q, want %q", got, want)
	}
	if got := strings.Join(o.names(t, "/od"), " "); got != "new" {
		t.Errorf("listing of opaque /od: %q, want new", got)
	}
}

func TestOverlayCopyUp(t *testing.T) {
	o := newOvTree(t)
	l := o.resolve(t, "/d/sub/b", FollowFinal)
	if err := l.Prepare(ChangeObject); err != nil {
		t.Fatal(err)
	}
	if !l.Upper() {
		t.Fatal("after Prepare(ChangeObject) the object is not the upper one")
	}
	if b, err := os.ReadFile(filepath.Join(o.upper, "d/sub/b")); err != nil || string(b) != "b" {
		t.Fatalf("upper d/sub/b: %q %v", b, err)
	}
	// The parent directories came first, with the lower's modes.
	for _, d := range []string{"d", "d/sub"} {
		st, err := os.Stat(filepath.Join(o.upper, d))
		if err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("upper %s: %v %v", d, st, err)
		}
	}
	// d is merged: d/a still shows through.
	if got := strings.Join(o.names(t, "/d"), " "); got != "a sub" {
		t.Errorf("listing of /d after copy-up: %q", got)
	}
	// Mode, times and xattrs of /f.
	l = o.resolve(t, "/f", FollowFinal)
	if err := l.Prepare(ChangeObject); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(o.upper, "f"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o640 || st.Mtim.Sec != time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).Unix() {
		t.Errorf("copied-up f: mode %o mtime %d", st.Mode&0o7777, st.Mtim.Sec)
	}
	if o.xattr {
		buf := make([]byte, 16)
		if n, err := unix.Getxattr(filepath.Join(o.upper, "f"), "user.k", buf); err != nil || string(buf[:n]) != "v" {
			t.Errorf("copied-up f: xattr user.k %q %v", buf[:n], err)
		}
	}
	// The lower file is untouched.
	if b, _ := os.ReadFile(filepath.Join(o.lower, "f")); string(b) != "lower-f" {
		t.Errorf("lower f changed: %q", b)
	}
}

func TestOverlayUnlinkAndRecreate(t *testing.T) {
	o := newOvTree(t)
	// rm d/a: a whiteout in a copied-up d.
	l := o.resolve(t, "/d/a", ExactLast)
	if err := l.Unlink(0); err != unix.EROFS {
		t.Errorf("Unlink before Prepare: %v, want EROFS (never act on the lower layer)", err)
	}
	if err := l.Prepare(ChangeEntry); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlink(0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(o.upper, "d", ".wh.a")); err != nil {
		t.Errorf("no whiteout of d/a: %v", err)
	}
	o.ns.Invalidate()
	if got := strings.Join(o.names(t, "/d"), " "); got != "sub" {
		t.Errorf("listing of /d: %q, want sub", got)
	}
	// rmdir of a non-empty merged directory.
	l = o.resolve(t, "/d/sub", ExactLast)
	if err := l.Prepare(ChangeEntry); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlink(unix.AT_REMOVEDIR); err != unix.ENOTEMPTY {
		t.Errorf("rmdir /d/sub: %v, want ENOTEMPTY", err)
	}
	if err := l.Unlink(0); err != unix.EISDIR {
		t.Errorf("unlink /d/sub: %v, want EISDIR", err)
	}
	b := o.resolve(t, "/d/sub/b", ExactLast)
	if err := b.Prepare(ChangeEntry); err != nil {
		t.Fatal(err)
	}
	if err := b.Unlink(0); err != nil {
		t.Fatal(err)
	}
	o.ns.Invalidate()
	l = o.resolve(t, "/d/sub", ExactLast)
	if err := l.Prepare(ChangeEntry); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlink(unix.AT_REMOVEDIR); err != nil {
		t.Fatalf("rmdir /d/sub once empty: %v", err)
	}
	o.ns.Invalidate()
	// mkdir /d/sub again: opaque, b does not come back.
	if err := unix.Mkdirat(o.resolve(t, "/d", 0).Obj.FD(), "sub", 0o755); err != nil {
		t.Fatal(err)
	}
	o.ns.Invalidate()
	if got := o.names(t, "/d/sub"); len(got) != 0 {
		t.Errorf("recreated /d/sub lists %q, want nothing", got)
	}
	var out []string
	if err := Diff(o.upper, o.lower, func(k byte, p string) { out = append(out, string(k)+" "+p) }); err != nil {
		t.Fatal(err)
	}
	want := "C /d|D /d/a|C /d/sub|D /gone|C /od|A /od/new"
	if got := strings.Join(out, "|"); got != want {
		t.Errorf("Diff:\n got %s\nwant %s", got, want)
	}
}

func TestOverlayRename(t *testing.T) {
	o := newOvTree(t)
	oldL := o.resolve(t, "/d", ExactLast)
	newL := o.resolve(t, "/d2", ExactLast)
	if err := Rename(oldL, newL, 0); err != unix.EXDEV {
		t.Errorf("rename of a lower directory: %v, want EXDEV", err)
	}
	oldL = o.resolve(t, "/f", ExactLast)
	newL = o.resolve(t, "/g", ExactLast)
	if err := Rename(oldL, newL, 0); err != nil {
		t.Fatalf("rename of a lower file: %v", err)
	}
	o.ns.Invalidate()
	if got := strings.Join(o.names(t, "/"), " "); got != "d g l od" {
		t.Errorf("after rename f g: %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(o.upper, "g")); string(b) != "lower-f" {
		t.Errorf("upper g: %q", b)
	}
	if l := o.resolve(t, "/l", FollowFinal); l.Exists() {
		t.Errorf("/l still reaches f")
	}
	// A name reserved for the overlay cannot be made.
	l := o.resolve(t, "/.wh.x", ExactLast)
	if err := l.Prepare(ChangeEntry); err != unix.EPERM {
		t.Errorf("Prepare of /.wh.x: %v, want EPERM", err)
	}
	if b, _ := os.ReadFile(filepath.Join(o.lower, "f")); string(b) != "lower-f" {
		t.Errorf("lower f changed: %q", b)
	}
}

func TestOverlayUpperInsideLowerOnly(t *testing.T) {
	base := t.TempDir()
	ns := NewNamespace()
	defer ns.Close()
	if err := ns.AddOverlay(base, filepath.Join(base, "lower")); err == nil {
		t.Error("an upper directory holding the lower one was accepted")
	}
}

func TestOverlayHostMapping(t *testing.T) {
	o := newOvTree(t)
	if g, ok := o.ns.LowerOfHost(filepath.Join(o.lower, "d/a")); !ok || g != "/d/a" {
		t.Errorf("LowerOfHost(lower/d/a) = %q %v", g, ok)
	}
	if _, ok := o.ns.LowerOfHost(filepath.Join(o.upper, "od/new")); ok {
		t.Error("an upper file was taken for a lower one")
	}
	if g, ok := o.ns.GuestPathOfHost(filepath.Join(o.upper, "od/new")); !ok || g != "/od/new" {
		t.Errorf("GuestPathOfHost(upper/od/new) = %q %v", g, ok)
	}
}
