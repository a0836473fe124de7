package vfs

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAddBindMountPoints: mount points the guest root lacks are kbox's
// own (a private read-only directory for missing parents, listing
// entries for the rest); nothing is made in the root.
func TestAddBindMountPoints(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	root, src := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
	os.Symlink("usr/lib", filepath.Join(root, "lib"))
	os.Symlink("nowhere", filepath.Join(root, "dangling"))
	os.WriteFile(filepath.Join(root, "file"), nil, 0o644)
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, []byte("x"), 0o644)
	ns := NewNamespace()
	if err := ns.Add("/", root, false, KindBind); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ guest, src, want string }{
		{"/opt/a/b", src, "/opt/a/b"},  // below a missing /opt
		{"/lib/x", src, "/usr/lib/x"},  // through the root's link
		{"/newfile", file, "/newfile"}, // a file bind, name missing
		{"/file", file, "/file"},       // a file bind over a file
		{"/opt/a/c", file, "/opt/a/c"}, // in kbox's private /opt
	} {
		got, err := ns.AddBind(c.guest, c.src, BindOptions{})
		if err != nil || got != c.want {
			t.Errorf("AddBind(%s) = %q, %v; want %q", c.guest, got, err, c.want)
		}
	}
	for _, c := range []struct{ guest, src string }{
		{"/file/x", src},     // below a file
		{"/usr", file},       // a file over a directory
		{"/file", src},       // a directory over a file
		{"/opt/a/b", src},    // twice
		{"/dangling/x", src}, // below a link to nothing
	} {
		if _, err := ns.AddBind(c.guest, c.src, BindOptions{}); err == nil {
			t.Errorf("AddBind(%s, %s): no error", c.guest, c.src)
		}
	}
	ns.Seal()
	defer func() {
		ns.RemovePrivate()
		ns.Close()
		if left, _ := os.ReadDir(os.Getenv("TMPDIR")); len(left) != 0 {
			t.Errorf("private directories left: %v", left)
		}
	}()
	ents, _ := os.ReadDir(root)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 4 {
		t.Errorf("the root holds %q, want only dangling, file, lib, usr", names)
	}
	var st unix.Stat_t
	key := func(p string) [2]uint64 {
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return [2]uint64{st.Dev, st.Ino}
	}
	got := map[string][]string{}
	for k, ents := range ns.VirtualEntries() {
		for _, e := range ents {
			for _, d := range []string{root, filepath.Join(root, "usr/lib")} {
				if key(d) == k {
					got[d] = append(got[d], e.Name+"="+map[uint32]string{unix.S_IFDIR: "dir", unix.S_IFREG: "reg"}[e.Type])
				}
			}
		}
	}
	for _, v := range got {
		sort.Strings(v)
	}
	if len(got) != 2 || len(got[root]) != 2 || got[root][0] != "newfile=reg" || got[root][1] != "opt=dir" ||
		len(got[filepath.Join(root, "usr/lib")]) != 1 || got[filepath.Join(root, "usr/lib")][0] != "x=dir" {
		t.Errorf("virtual entries %q; want newfile=reg, opt=dir in / and x=dir in /usr/lib", got)
	}
	// The private /opt holds the rest of the path: a, a/b, a/c.
	ctx := &Context{Cwd: "/", Root: "/"}
	for p, dir := range map[string]bool{"/opt/a": true, "/opt/a/b": true, "/opt/a/c": false, "/lib/x": true} {
		l, err := ns.Resolve(ctx, "", p, FollowFinal)
		if err != nil || !l.Exists() || l.IsDir() != dir {
			t.Errorf("%s: %v (exists %v)", p, err, err == nil && l.Exists())
		}
		l.Release()
	}
}
