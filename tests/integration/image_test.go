package integration

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// treeTar is a tar of the host directory dir with every owner 0:0, as an
// image built from it would have.
func treeTar(t testing.TB, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name, h.Uid, h.Gid, h.Uname, h.Gname = rel, 0, 0, "", ""
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	return buf.Bytes()
}

type tarEnt struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
	major, minor     int64
}

func entsTar(t testing.TB, ents ...tarEnt) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Devmajor: e.major, Devminor: e.minor, Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0)}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return buf.Bytes()
}

func tarLayer(t testing.TB, b []byte, comp compression.Compression) v1.Layer {
	t.Helper()
	opts := []tarball.LayerOption{tarball.WithCompression(comp)}
	if comp == compression.ZStd {
		opts = append(opts, tarball.WithMediaType(types.OCILayerZStd))
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var (
	imageRegOnce sync.Once
	imageRegRef  string
)

// fixtureImageRef pushes an image built from the fixture root to an
// in-process registry on loopback (once) and returns its reference: the
// fixture as layer 1 (all root's), a layer of owners, set-id bits and
// device nodes, and a zstd layer that removes /etc/motd; its
// configuration runs a shell command as the fixture's "user".
func fixtureImageRef(t *testing.T) string {
	root := fixtureRoot(t)
	imageRegOnce.Do(func() {
		srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		// The server lives as long as the test binary.
		l1 := tarLayer(t, treeTar(t, root), compression.GZip)
		l2 := tarLayer(t, entsTar(t,
			tarEnt{name: "opt/", typ: tar.TypeDir, mode: 0o755},
			tarEnt{name: "opt/tool", typ: tar.TypeReg, mode: 0o4755, body: "#!/bin/sh\necho tool\n"},
			tarEnt{name: "opt/sgid", typ: tar.TypeReg, mode: 0o2755, gid: 50, body: "x"},
			tarEnt{name: "opt/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
			tarEnt{name: "opt/disk", typ: tar.TypeBlock, mode: 0o660, gid: 6, major: 8, minor: 0},
			tarEnt{name: "home/user/", typ: tar.TypeDir, mode: 0o750, uid: 1000, gid: 1000},
			tarEnt{name: "home/user/notes", typ: tar.TypeReg, mode: 0o640, uid: 1000, gid: 1000, body: "mine\n"},
			tarEnt{name: "opt/notes-link", typ: tar.TypeLink, link: "home/user/notes"},
		), compression.GZip)
		l3 := tarLayer(t, entsTar(t, tarEnt{name: "etc/.wh.motd", typ: tar.TypeReg}), compression.ZStd)
		img, err := mutate.AppendLayers(empty.Image, l1, l2, l3)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", hostArch()
		cf.Config = v1.Config{
			Env:        []string{"PATH=/bin:/usr/bin", "GREETING=hello from the image"},
			Entrypoint: []string{"/bin/sh", "-c"},
			Cmd:        []string{`echo "$GREETING"; id -u; id -g; pwd; echo "HOME=$HOME"`},
			WorkingDir: "/home/user",
			User:       "user",
		}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/kbox/fixture:1")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		imageRegRef = ref.String()
	})
	if imageRegRef == "" {
		t.Fatal("the fixture image could not be pushed")
	}
	return imageRegRef
}

// TestImagePullRun: the fixture image pulled from a registry and run, as
// root and as an unprivileged uid: the owners, set-id bits and device
// nodes of the image show through -S, the whiteout removed its file, and
// kbox run applies the image's user, environment, directory and command.
func TestImagePullRun(t *testing.T) {
	ref := fixtureImageRef(t)
	forEachVariant(t, "", func(t *testing.T, v variant) {
		base := mkTempDir(t, "kbox-it-image-")
		chownTree(t, base, v.uid())
		dir := filepath.Join(base, "root")
		env := []string{"XDG_CACHE_HOME=" + filepath.Join(base, "cache")}
		t0 := time.Now()
		out, errOut, code := runKbox(t, runOpts{Args: []string{"image", "pull", ref, dir}, Unpriv: v.unpriv, Env: env})
		if code != 0 {
			t.Fatalf("pull: status %d\n%s%s", code, out, errOut)
		}
		t.Logf("pull took %v: %s", time.Since(t0), strings.TrimSpace(errOut))
		// Again from the cache, into another directory.
		t0 = time.Now()
		if _, errOut, code := runKbox(t, runOpts{Args: []string{"image", "pull", ref, dir + "2"}, Unpriv: v.unpriv, Env: env}); code != 0 {
			t.Fatalf("second pull: status %d\n%s", code, errOut)
		}
		t.Logf("pull from the cache took %v", time.Since(t0))

		out, errOut, code = runKbox(t, runOpts{Unpriv: v.unpriv, Args: []string{"-S", dir, "--", "/bin/sh", "-c",
			"stat -c '%A %u %g %n' / /bin/busybox /opt/tool /opt/sgid /opt/null /opt/disk /home/user /home/user/notes /opt/notes-link; " +
				"test -e /etc/motd && echo motd-present; cat /home/user/notes"}})
		if code != 0 {
			t.Fatalf("-S stat: status %d\n%s%s", code, out, errOut)
		}
		want := strings.Join([]string{
			"drwxr-xr-x 0 0 /",
			"-rwxr-xr-x 0 0 /bin/busybox",
			"-rwsr-xr-x 0 0 /opt/tool",
			"-rwxr-sr-x 0 50 /opt/sgid",
			"crw-rw-rw- 0 0 /opt/null",
			"brw-rw---- 0 6 /opt/disk",
			"drwxr-x--- 1000 1000 /home/user",
			"-rw-r----- 1000 1000 /home/user/notes",
			"-rw-r----- 1000 1000 /opt/notes-link",
			"mine",
		}, "\n") + "\n"
		if out != want {
			t.Errorf("kbox -S %s: got\n%swant\n%s(stderr %s)", dir, out, want, errOut)
		}

		// kbox run: the image's configuration.
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"run", dir}, "hello from the image\n1000\n1000\n/home/user\nHOME=/home/user\n"},
			{[]string{"run", dir, "--", "echo replaced; id -u"}, "replaced\n1000\n"},
			{[]string{"run", "--entrypoint", "/bin/echo", dir, "a", "b"}, "a b\n"},
			{[]string{"run", "-w", "/", "--setenv", "GREETING=flag", "--change-id", "0:0", dir}, "flag\n0\n0\n/\nHOME=/\n"},
			{[]string{"run", "-0", dir, "--", "id -u; cat /home/user/notes"}, "0\nmine\n"},
		} {
			out, errOut, code := runKbox(t, runOpts{Unpriv: v.unpriv, Args: c.args})
			if code != 0 || out != c.want {
				t.Errorf("kbox %s: status %d, got\n%swant\n%sstderr: %s", strings.Join(c.args, " "), code, out, c.want, errOut)
			}
		}
		// The cache: three layers, emptied by prune.
		out, errOut, code = runKbox(t, runOpts{Unpriv: v.unpriv, Args: []string{"image", "prune"}, Env: env})
		if code != 0 || !strings.HasPrefix(out, "removed 3 layers") {
			t.Errorf("kbox image prune: status %d, %q %s", code, out, errOut)
		}
		// The user cannot read what the image keeps from it.
		out, _, code = runKbox(t, runOpts{Unpriv: v.unpriv, Args: []string{"run", "--change-id", "65534:65534", dir, "--", "cat /home/user/notes"}})
		if code == 0 {
			t.Errorf("uid 65534 read /home/user/notes (0640 1000:1000): %q", out)
		}
	})
}

func hostArch() string { return runtime.GOARCH }

// TestImageUnpackExt4: an ext4 image of the fixture root (made by mke2fs
// -d, with a set-uid file, a user's directory and a device node when the
// tests run as root) unpacked by kbox image unpack and run with -S and
// kbox run.
func TestImageUnpackExt4(t *testing.T) {
	mke2fs, err := exec.LookPath("mke2fs")
	if err != nil {
		t.Skip("mke2fs (e2fsprogs) not installed")
	}
	base := mkTempDir(t, "kbox-it-ext4-")
	stage := filepath.Join(base, "stage")
	if out, err := exec.Command("cp", "-a", fixtureRoot(t), stage).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	want := "-rwxr-xr-x 0 0 /bin/busybox\n"
	if isRoot() {
		os.MkdirAll(filepath.Join(stage, "opt"), 0o755)
		writeFile(t, filepath.Join(stage, "opt/tool"), "#!/bin/sh\n", 0o755)
		unix.Chmod(filepath.Join(stage, "opt/tool"), 0o4755)
		os.MkdirAll(filepath.Join(stage, "home/user"), 0o750)
		os.Chmod(filepath.Join(stage, "home/user"), 0o750)
		os.Chown(filepath.Join(stage, "home/user"), 1000, 1000)
		unix.Mknod(filepath.Join(stage, "opt/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
		unix.Chmod(filepath.Join(stage, "opt/null"), 0o666)
		want += "-rwsr-xr-x 0 0 /opt/tool\ndrwxr-x--- 1000 1000 /home/user\ncrw-rw-rw- 0 0 /opt/null\n"
	} else {
		want = strings.Repeat(want, 4)
	}
	img := filepath.Join(base, "root.ext4")
	if out, err := exec.Command(mke2fs, "-q", "-t", "ext4", "-d", stage, "-b", "4096", img, "64M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	os.Chmod(img, 0o644)
	forEachVariant(t, "", func(t *testing.T, v variant) {
		d := mkTempDir(t, "kbox-it-ext4-out-")
		chownTree(t, d, v.uid())
		dir := filepath.Join(d, "root")
		t0 := time.Now()
		out, errOut, code := runKbox(t, runOpts{Args: []string{"image", "unpack", img, dir}, Unpriv: v.unpriv})
		if code != 0 {
			t.Fatalf("unpack: status %d\n%s%s", code, out, errOut)
		}
		t.Logf("unpack took %v: %s", time.Since(t0), strings.TrimSpace(errOut))
		args := []string{"-S", dir, "--", "stat", "-c", "%A %u %g %n", "/bin/busybox", "/opt/tool", "/home/user", "/opt/null"}
		if !isRoot() {
			args = []string{"-S", dir, "--", "stat", "-c", "%A %u %g %n", "/bin/busybox", "/bin/busybox", "/bin/busybox", "/bin/busybox"}
		}
		out, errOut, code = runKbox(t, runOpts{Unpriv: v.unpriv, Args: args})
		if code != 0 || out != want {
			t.Errorf("kbox -S: status %d, got\n%swant\n%sstderr %s", code, out, want, errOut)
		}
		out, errOut, code = runKbox(t, runOpts{Unpriv: v.unpriv, Args: []string{"run", dir, "--", "/bin/sh", "-c", "id -u; pwd"}})
		if code != 0 || out != "0\n/\n" {
			t.Errorf("kbox run: status %d, got %q, stderr %s", code, out, errOut)
		}
		// -S IMAGE.ext4: unpacked into the cache once, the same view.
		env := []string{"XDG_CACHE_HOME=" + filepath.Join(d, "cache")}
		args[1] = img
		for i := range 2 {
			out, errOut, code = runKbox(t, runOpts{Unpriv: v.unpriv, Args: args, Env: env})
			if code != 0 || out != want || strings.Contains(errOut, "unpacked") != (i == 0) {
				t.Errorf("kbox -S %s (run %d): status %d, got\n%swant\n%sstderr %s", img, i+1, code, out, want, errOut)
			}
		}
	})
}

// TestImageCLIErrors: usage errors end with status 125 and say why.
func TestImageCLIErrors(t *testing.T) {
	dir := mkTempDir(t, "kbox-it-image-cli-")
	writeFile(t, filepath.Join(dir, "notempty", "f"), "x", 0o644)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"image"}, 0, ""},
		{[]string{"image", "pull"}, 125, "want REF DIR"},
		{[]string{"image", "pull", "oci:" + dir + "/none", dir + "/out"}, 125, "none"},
		{[]string{"image", "pull", "docker-archive:" + dir + "/none.tar", dir + "/notempty"}, 125, "is not empty"},
		{[]string{"image", "pull", "--platform", "linux", "oci:x", dir + "/out"}, 125, "OS/ARCH"},
		{[]string{"image", "unpack", dir + "/notempty/f", dir + "/out"}, 125, "not a readable ext4 image"},
		{[]string{"image", "frob"}, 125, "unknown subcommand"},
		{[]string{"run"}, 125, "want DIR"},
		{[]string{"run", "-S", dir, dir}, 125, "--system-root cannot be used with kbox run"},
		{[]string{"run", dir}, 125, "no image configuration"},
	} {
		_, errOut, code := runKbox(t, runOpts{Args: c.args})
		if code != c.code || !strings.Contains(errOut, c.msg) {
			t.Errorf("kbox %s: status %d, stderr %q; want %d and %q", strings.Join(c.args, " "), code, errOut, c.code, c.msg)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("a failed pull left %s/out", dir)
	}
}
