package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

// ent is one tar member for the tests.
type ent struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
	major, minor     int64
}

func file(name, body string) ent { return ent{name: name, body: body, typ: tar.TypeReg, mode: 0o644} }
func dir(name string) ent        { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) ent {
	return ent{name: name, link: target, typ: tar.TypeSymlink, mode: 0o777}
}
func hardlink(name, target string) ent {
	return ent{name: name, link: target, typ: tar.TypeLink, mode: 0o644}
}

func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Devmajor: e.major, Devminor: e.minor, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// applyLayers applies the layers to a fresh root inside a sandbox
// directory (so an escape lands somewhere the test can see) and returns
// the root and the sandbox.
func applyLayers(t *testing.T, layers ...[]byte) (root, outside string, err error) {
	t.Helper()
	outside = t.TempDir()
	root = filepath.Join(outside, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	x, err := newExtractor(root, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	for _, l := range layers {
		if err = x.apply(bytes.NewReader(l)); err != nil {
			break
		}
	}
	return root, outside, err
}

// tree lists everything under dir: "path type [-> target | =content]".
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		s := rel
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			s += " -> " + l
		case fi.IsDir():
			s += "/"
		default:
			b, _ := os.ReadFile(p)
			s += " =" + string(b)
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func record(t *testing.T, p string) identity.Record {
	t.Helper()
	buf := make([]byte, 128)
	n, err := unix.Lgetxattr(p, identity.OverrideXattr, buf)
	if err != nil {
		t.Fatalf("%s: no record: %v", p, err)
	}
	r, ok := identity.ParseRecord(string(buf[:n]))
	if !ok {
		t.Fatalf("%s: bad record %q", p, buf[:n])
	}
	return r
}

func TestApplyWhiteoutsOpaqueHardlinks(t *testing.T) {
	l1 := mkTar(t, dir("etc"), file("etc/a", "A"), file("etc/b", "B"), dir("opt"), dir("opt/sub"),
		file("opt/sub/x", "X"), file("opt/keep", "K"), file("data", "shared"), symlink("lnk", "etc/a"))
	l2 := mkTar(t,
		file(".wh.nothing", ""),
		file("etc/.wh.a", ""),
		dir("opt"), file("opt/.wh..wh..opq", ""), file("opt/new", "N"),
		hardlink("etc/data2", "data"), // a hard link to a file of the layer below
		hardlink("lnk2", "lnk"),       // to a symlink: the symlink itself
		file("etc/b", "B2"),           // replaced
	)
	l3 := mkTar(t, file(".wh.lnk", ""), dir("opt/sub"), file("opt/sub/y", "Y"))
	root, _, err := applyLayers(t, l1, l2, l3)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"data =shared", "etc/", "etc/b =B2", "etc/data2 =shared", "lnk2 -> etc/a", "opt/", "opt/new =N", "opt/sub/", "opt/sub/y =Y"}
	if got := tree(t, root); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var a, b unix.Stat_t
	unix.Stat(filepath.Join(root, "data"), &a)
	unix.Stat(filepath.Join(root, "etc/data2"), &b)
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("data and etc/data2 are not one inode: %d/%d nlink %d", a.Ino, b.Ino, a.Nlink)
	}
}

func TestApplyOpaqueKeepsSameLayer(t *testing.T) {
	// The marker after entries of its own layer: those stay.
	l1 := mkTar(t, dir("d"), file("d/old", "o"))
	l2 := mkTar(t, dir("d"), file("d/new", "n"), file("d/.wh..wh..opq", ""))
	root, _, err := applyLayers(t, l1, l2)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tree(t, root), ","); got != "d/,d/new =n" {
		t.Errorf("tree %s", got)
	}
}

func TestApplyOwnershipRecords(t *testing.T) {
	l := mkTar(t,
		ent{name: "./", typ: tar.TypeDir, mode: 0o755},
		ent{name: "bin", typ: tar.TypeDir, mode: 0o755},
		ent{name: "bin/su", typ: tar.TypeReg, mode: 0o4755, body: "#!"},
		ent{name: "home/user", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000},
		ent{name: "home/user/secret", typ: tar.TypeReg, mode: 0o400, uid: 1000, gid: 100, body: "s"},
		ent{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
		ent{name: "dev/sda", typ: tar.TypeBlock, mode: 0o660, gid: 6, major: 8, minor: 0},
		ent{name: "shadow", typ: tar.TypeReg, mode: 0o000, gid: 42, body: "x"},
		ent{name: "fifo", typ: tar.TypeFifo, mode: 0o644},
	)
	root, _, err := applyLayers(t, l)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path       string
		want       identity.Record
		hostMode   uint32
		hostFormat uint32
	}{
		{"", identity.Record{Mode: 0o755, Type: "dir"}, 0o755, unix.S_IFDIR},
		{"bin/su", identity.Record{Mode: 0o4755, Type: "file"}, 0o755, unix.S_IFREG},
		{"home", identity.Record{Mode: 0o755, Type: "dir"}, 0o755, unix.S_IFDIR}, // made for home/user
		{"home/user", identity.Record{UID: 1000, GID: 1000, Mode: 0o700, Type: "dir"}, 0o700, unix.S_IFDIR},
		{"home/user/secret", identity.Record{UID: 1000, GID: 100, Mode: 0o400, Type: "file"}, 0o600, unix.S_IFREG},
		{"dev/null", identity.Record{Mode: 0o666, Type: "char-1-3"}, 0o666, unix.S_IFREG},
		{"dev/sda", identity.Record{GID: 6, Mode: 0o660, Type: "block-8-0"}, 0o660, unix.S_IFREG},
		{"shadow", identity.Record{GID: 42, Mode: 0, Type: "file"}, 0o600, unix.S_IFREG},
	} {
		p := filepath.Join(root, c.path)
		if got := record(t, p); got != c.want {
			t.Errorf("%s: record %+v, want %+v", c.path, got, c.want)
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != c.hostFormat|c.hostMode || int(st.Uid) != os.Getuid() {
			t.Errorf("%s: host mode %o uid %d, want %o uid %d", c.path, st.Mode, st.Uid, c.hostFormat|c.hostMode, os.Getuid())
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "fifo"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo: %v mode %o", err, st.Mode)
	}
}

// TestApplyHostile: members that try to write outside the root. Each
// must either fail or land inside it; nothing may appear outside.
func TestApplyHostile(t *testing.T) {
	cases := []struct {
		name   string
		layers [][]byte
		inside []string // what the root must hold afterwards ("" skips)
	}{
		{"dotdot", [][]byte{mkTar(t, file("../escaped", "x"), file("a/../../escaped2", "x"))}, []string{"escaped =x", "escaped2 =x"}},
		{"absolute", [][]byte{mkTar(t, file("/escaped", "x"), file("/../../escaped2", "y"))}, []string{"escaped =x", "escaped2 =y"}},
		{"symlink then file", [][]byte{mkTar(t, symlink("evil", ".."), file("evil/escaped", "x"))},
			[]string{"escaped =x", "evil -> .."}},
		{"absolute symlink then file", [][]byte{mkTar(t, symlink("evil", "/"), dir("evil/sub"), file("evil/sub/escaped", "x"))},
			[]string{"evil -> /", "sub/", "sub/escaped =x"}},
		{"symlink to outside dir, across layers", [][]byte{mkTar(t, symlink("evil", "../../..")), mkTar(t, file("evil/escaped", "x"))},
			[]string{"escaped =x", "evil -> ../../.."}},
		{"symlink as the last component", [][]byte{mkTar(t, symlink("f", "../escaped")), mkTar(t, file("f", "x"))},
			[]string{"f =x"}},
		{"hard link to outside", [][]byte{mkTar(t, hardlink("h", "../outside-file"))}, nil},
		{"hard link through a symlink", [][]byte{mkTar(t, symlink("up", ".."), hardlink("h", "up/outside-file"))}, nil},
		{"hard link to an absolute path", [][]byte{mkTar(t, hardlink("h", "/etc/passwd"))}, nil},
		{"whiteout outside", [][]byte{mkTar(t, file("../.wh.outside-file", ""), symlink("up", ".."), file("up/.wh.outside-file", ""))}, []string{"up -> .."}},
		{"opaque outside", [][]byte{mkTar(t, symlink("up", "../.."), file("up/.wh..wh..opq", ""))}, []string{}},
		{"directory over a symlink", [][]byte{mkTar(t, symlink("d", "..")), mkTar(t, dir("d"), file("d/escaped", "x"))},
			[]string{"d/", "d/escaped =x"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outside := t.TempDir()
			if err := os.WriteFile(filepath.Join(outside, "outside-file"), []byte("host"), 0o644); err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(outside, "a", "b", "root")
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			x, err := newExtractor(root, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range c.layers {
				if err = x.apply(bytes.NewReader(l)); err != nil {
					t.Logf("refused: %v", err)
					break
				}
			}
			x.Close()
			got := tree(t, outside)
			var escaped []string
			for _, g := range got {
				if !strings.HasPrefix(g, "a/b/root/") && g != "a/" && g != "a/b/" && g != "a/b/root/" && g != "outside-file =host" {
					escaped = append(escaped, g)
				}
			}
			if len(escaped) > 0 || !contains(got, "outside-file =host") {
				t.Fatalf("wrote outside the root: %v", got)
			}
			if c.inside != nil {
				in := tree(t, root)
				if strings.Join(in, ",") != strings.Join(c.inside, ",") {
					t.Errorf("root holds %v, want %v", in, c.inside)
				}
			}
			if c.inside == nil && err == nil {
				t.Errorf("the hard link to outside was accepted: %v", tree(t, root))
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
