package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func layerOf(t *testing.T, comp compression.Compression, ents ...ent) v1.Layer {
	t.Helper()
	b := mkTar(t, ents...)
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

// testImage is a three-layer image for arch: gzip, zstd, gzip, with a
// whiteout, an opaque directory, a hard link across layers and an owner.
func testImage(t *testing.T, arch string) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image,
		layerOf(t, compression.GZip, dir("etc"), file("etc/arch", arch), file("etc/gone", "g"), dir("var"), file("var/old", "o"),
			ent{name: "bin/tool", typ: tar.TypeReg, mode: 0o4755, uid: 0, gid: 0, body: "tool"}),
		layerOf(t, compression.ZStd, file("etc/.wh.gone", ""), dir("var"), file("var/.wh..wh..opq", ""), file("var/new", "n"),
			ent{name: "home/u", typ: tar.TypeDir, mode: 0o750, uid: 1000, gid: 1000}),
		layerOf(t, compression.GZip, hardlink("bin/tool2", "bin/tool")),
	)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config = v1.Config{Env: []string{"PATH=/bin", "A=" + arch}, Entrypoint: []string{"/bin/tool"}, Cmd: []string{"x"},
		WorkingDir: "/etc", User: "1000:1000"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// testIndex holds images for amd64, arm64 (v8) and s390x.
func testIndex(t *testing.T) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "s390x"}, {OS: "linux", Architecture: "arm64", Variant: "v8"},
		{OS: "linux", Architecture: "amd64"}} {
		adds = append(adds, mutate.IndexAddendum{Add: testImage(t, p.Architecture), Descriptor: v1.Descriptor{Platform: &p}})
	}
	return mutate.AppendManifests(empty.Index, adds...)
}

// checkRoot checks a pulled root of testImage(arch).
func checkRoot(t *testing.T, root, arch string) {
	t.Helper()
	want := []string{"bin/", "bin/tool =tool", "bin/tool2 =tool", "etc/", "etc/arch =" + arch, "home/", "home/u/", "var/", "var/new =n"}
	if got := tree(t, root); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("root:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r := record(t, filepath.Join(root, "bin/tool2")); r.Mode != 0o4755 || r.UID != 0 {
		t.Errorf("bin/tool2 record %+v", r)
	}
	if r := record(t, filepath.Join(root, "home/u")); r.UID != 1000 || r.GID != 1000 || r.Mode != 0o750 {
		t.Errorf("home/u record %+v", r)
	}
	m, err := ReadMeta(root)
	if err != nil {
		t.Fatal(err)
	}
	if m.Platform != "linux/"+arch && !strings.HasPrefix(m.Platform, "linux/"+arch+"/") {
		t.Errorf("meta platform %q", m.Platform)
	}
	if strings.Join(m.Config.Env, " ") != "PATH=/bin A="+arch || m.Config.User != "1000:1000" || m.Config.WorkingDir != "/etc" ||
		strings.Join(m.Config.Entrypoint, " ") != "/bin/tool" || strings.Join(m.Config.Cmd, " ") != "x" {
		t.Errorf("meta config %+v", m.Config)
	}
}

func hostOf(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func TestPullRegistry(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the test index has amd64 and arm64 images")
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	idx := testIndex(t)
	ref, err := name.ParseReference(hostOf(srv) + "/test/multi:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	o := Options{CacheDir: cacheDir, Warn: t.Logf, Keychain: authn.NewMultiKeychain()}
	ctx := context.Background()
	base := t.TempDir()

	// By tag: the host's architecture.
	root := filepath.Join(base, "tag")
	if _, err := Pull(ctx, ref.String(), root, o); err != nil {
		t.Fatal(err)
	}
	checkRoot(t, root, runtime.GOARCH)
	blobs, _ := os.ReadDir(filepath.Join(cacheDir, "sha256"))
	if len(blobs) != 3 {
		t.Errorf("the cache holds %d blobs, want 3", len(blobs))
	}

	// By the index's digest, another platform.
	d, _ := idx.Digest()
	other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
	o2 := o
	o2.Platform = "linux/" + other
	root = filepath.Join(base, "digest")
	res, err := Pull(ctx, hostOf(srv)+"/test/multi@"+d.String(), root, o2)
	if err != nil {
		t.Fatal(err)
	}
	checkRoot(t, root, other)
	if want, _ := testImage(t, other).Digest(); res.Meta.Digest != want.String() {
		t.Errorf("meta digest %s, want %s", res.Meta.Digest, want)
	}

	// By an image manifest's digest, from the cache: a damaged blob is
	// noticed and removed.
	s390, _ := testImage(t, "s390x").Digest()
	o3 := o
	o3.Platform = "linux/s390x"
	if _, err := Pull(ctx, hostOf(srv)+"/test/multi@"+s390.String(), filepath.Join(base, "s390"), o3); err != nil {
		t.Fatal(err)
	}
	checkRoot(t, filepath.Join(base, "s390"), "s390x")

	// A platform the index lacks.
	o4 := o
	o4.Platform = "linux/riscv64"
	if _, err := Pull(ctx, ref.String(), filepath.Join(base, "none"), o4); err == nil || !strings.Contains(err.Error(), "no image for linux/riscv64") {
		t.Errorf("riscv64: %v", err)
	}
	if _, err := os.Stat(filepath.Join(base, "none")); !os.IsNotExist(err) {
		t.Errorf("a failed pull left its root: %v", err)
	}
	// A non-empty target is refused.
	if _, err := Pull(ctx, ref.String(), filepath.Join(base, "tag"), o); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty target: %v", err)
	}

	// A damaged cache entry is found on use and removed.
	l, _ := testImage(t, runtime.GOARCH).Layers()
	ld, _ := l[0].Digest()
	cached := filepath.Join(cacheDir, "sha256", ld.Hex)
	b, _ := os.ReadFile(cached)
	b[len(b)/2] ^= 0xff
	os.WriteFile(cached, b, 0o600)
	_, err = Pull(ctx, ref.String(), filepath.Join(base, "damaged"), o)
	if err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged cache: %v", err)
	}
	if _, err := os.Stat(cached); !os.IsNotExist(err) {
		t.Errorf("the damaged blob is still cached")
	}
	if _, err := Pull(ctx, ref.String(), filepath.Join(base, "again"), o); err != nil {
		t.Fatalf("pull after the damaged blob went: %v", err)
	}

	// Prune to nothing.
	pr, err := Prune(cacheDir, 0)
	if err != nil || pr.Kept != 0 || pr.Removed == 0 {
		t.Errorf("prune: %+v %v", pr, err)
	}
}

// authServer wraps the registry: basic auth, or a bearer token handed out
// by its own token endpoint for the basic credentials.
func authServer(t *testing.T, bearer bool) *httptest.Server {
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	const user, pass, token = "alice", "s3cret", "tok-123"
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		basicOK := ok && u == user && p == pass
		if r.URL.Path == "/token" {
			if !basicOK {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"token": token})
			return
		}
		if bearer {
			if r.Header.Get("Authorization") == "Bearer "+token {
				reg.ServeHTTP(w, r)
				return
			}
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test"`, srv.URL))
		} else {
			if basicOK {
				reg.ServeHTTP(w, r)
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	return srv
}

func TestPullAuth(t *testing.T) {
	for _, bearer := range []bool{false, true} {
		t.Run(map[bool]string{false: "basic", true: "bearer"}[bearer], func(t *testing.T) {
			srv := authServer(t, bearer)
			defer srv.Close()
			ref := hostOf(srv) + "/private/img:latest"
			r, _ := name.ParseReference(ref)
			img := testImage(t, runtime.GOARCH)
			if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"})); err != nil {
				t.Fatal(err)
			}
			// No credentials: refused.
			cfgDir := t.TempDir()
			t.Setenv("DOCKER_CONFIG", cfgDir)
			t.Setenv("REGISTRY_AUTH_FILE", filepath.Join(cfgDir, "none.json"))
			o := Options{CacheDir: "-", Warn: t.Logf}
			if _, err := Pull(context.Background(), ref, filepath.Join(t.TempDir(), "r"), o); err == nil ||
				!strings.Contains(err.Error(), "UNAUTHORIZED") && !strings.Contains(err.Error(), "401") {
				t.Fatalf("without credentials: %v", err)
			}
			// The credentials in $DOCKER_CONFIG/config.json, through the
			// default keychain.
			auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
			cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, hostOf(srv), auth)
			if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(t.TempDir(), "r")
			if _, err := Pull(context.Background(), ref, root, o); err != nil {
				t.Fatal(err)
			}
			checkRoot(t, root, runtime.GOARCH)
		})
	}
}

func TestPullLocalSources(t *testing.T) {
	img := testImage(t, runtime.GOARCH)
	base := t.TempDir()
	// docker-archive
	tarPath := filepath.Join(base, "img.tar")
	tag, _ := name.NewTag("example.com/img:1")
	if err := tarball.WriteToFile(tarPath, tag, img); err != nil {
		t.Fatal(err)
	}
	o := Options{Warn: t.Logf}
	root := filepath.Join(base, "from-docker-archive")
	if _, err := Pull(context.Background(), "docker-archive:"+tarPath, root, o); err != nil {
		t.Fatal(err)
	}
	checkRoot(t, root, runtime.GOARCH)
	// oci: a layout with the multi-arch index, and one tagged image.
	lp, err := layout.Write(filepath.Join(base, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(testIndex(t)); err != nil {
		t.Fatal(err)
	}
	root = filepath.Join(base, "from-oci")
	if _, err := Pull(context.Background(), "oci:"+filepath.Join(base, "layout"), root, o); err != nil {
		t.Fatal(err)
	}
	checkRoot(t, root, runtime.GOARCH)
	lp2, err := layout.Write(filepath.Join(base, "layout2"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"amd64", "arm64"} {
		err := lp2.AppendImage(testImage(t, a), layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "img-" + a}))
		if err != nil {
			t.Fatal(err)
		}
	}
	root = filepath.Join(base, "from-oci-tag")
	if _, err := Pull(context.Background(), "oci:"+filepath.Join(base, "layout2")+":img-arm64", root, o); err != nil {
		t.Fatal(err)
	}
	checkRoot(t, root, "arm64")
	// oci-archive: the first layout as a tar.
	arch := filepath.Join(base, "layout.tar")
	if out, err := exec.Command("tar", "-C", filepath.Join(base, "layout"), "-cf", arch, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	root = filepath.Join(base, "from-oci-archive")
	if _, err := Pull(context.Background(), "oci-archive:"+arch, root, o); err != nil {
		t.Fatal(err)
	}
	checkRoot(t, root, runtime.GOARCH)
}
