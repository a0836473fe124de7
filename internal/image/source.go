package image

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// source is an image chosen from a reference, ready to read.
type source struct {
	img      v1.Image
	remote   bool   // layers come from a registry (and go through the cache)
	desc     string // what was pulled, for the metadata
	digest   string // the image manifest's digest
	platform string
	cleanup  func()
}

// HostPlatform is the platform kbox runs guests of.
func HostPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if p.Architecture == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// ParsePlatform reads OS/ARCH[/VARIANT].
func ParsePlatform(s string) (v1.Platform, error) {
	f := strings.Split(s, "/")
	if len(f) < 2 || len(f) > 3 || f[0] == "" || f[1] == "" {
		return v1.Platform{}, fmt.Errorf("--platform wants OS/ARCH[/VARIANT], got %q", s)
	}
	p := v1.Platform{OS: f[0], Architecture: f[1]}
	if len(f) == 3 {
		p.Variant = f[2]
	}
	return p, nil
}

// matches reports whether an index entry's platform fits want; an entry
// without a variant fits any variant asked for by default (arm64's v8).
func matches(have *v1.Platform, want v1.Platform, variantGiven bool) bool {
	if have == nil || have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	if have.Variant == "" || have.Variant == want.Variant {
		return true
	}
	return !variantGiven && want.Variant == ""
}

// fromIndex picks the image for want from idx, descending into nested
// indexes.
func fromIndex(idx v1.ImageIndex, want v1.Platform, variantGiven bool) (v1.Image, v1.Hash, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, v1.Hash{}, err
	}
	var seen []string
	for _, d := range m.Manifests {
		if d.MediaType.IsIndex() {
			sub, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, v1.Hash{}, err
			}
			if img, h, err := fromIndex(sub, want, variantGiven); err == nil {
				return img, h, nil
			}
			continue
		}
		if d.Platform != nil {
			seen = append(seen, d.Platform.String())
		}
		if d.MediaType.IsImage() && matches(d.Platform, want, variantGiven) {
			img, err := idx.Image(d.Digest)
			return img, d.Digest, err
		}
	}
	return nil, v1.Hash{}, fmt.Errorf("no image for %s in the index (it has: %s)", want.String(), strings.Join(seen, ", "))
}

// open resolves ref to an image.
func open(ctx context.Context, ref string, o *Options) (*source, error) {
	want := HostPlatform()
	variantGiven := false
	if o.Platform != "" {
		p, err := ParsePlatform(o.Platform)
		if err != nil {
			return nil, err
		}
		want, variantGiven = p, p.Variant != ""
	}
	s := &source{desc: ref, platform: want.String(), cleanup: func() {}}
	switch {
	case strings.HasPrefix(ref, "docker-archive:"):
		file := strings.TrimPrefix(ref, "docker-archive:")
		img, err := tarball.ImageFromPath(file, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		s.img = img
	case strings.HasPrefix(ref, "oci-archive:"):
		file := strings.TrimPrefix(ref, "oci-archive:")
		dir, err := os.MkdirTemp("", "kbox-oci-archive-")
		if err != nil {
			return nil, err
		}
		s.cleanup = func() { os.RemoveAll(dir) }
		if err := unpackPlain(file, dir); err != nil {
			s.cleanup()
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		if err := s.fromLayout(dir, "", want, variantGiven); err != nil {
			s.cleanup()
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
	case strings.HasPrefix(ref, "oci:"):
		dir, tag := strings.TrimPrefix(ref, "oci:"), ""
		if i := strings.LastIndexByte(dir, ':'); i >= 0 && !strings.Contains(dir[i:], "/") {
			dir, tag = dir[:i], dir[i+1:]
		}
		if err := s.fromLayout(dir, tag, want, variantGiven); err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
	default:
		r, err := name.ParseReference(strings.TrimPrefix(ref, "docker://"))
		if err != nil {
			return nil, err
		}
		s.desc = r.Name()
		opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(o.keychain()), remote.WithPlatform(want),
			remote.WithUserAgent("kbox")}
		if o.Transport != nil {
			opts = append(opts, remote.WithTransport(o.Transport))
		}
		d, err := remote.Get(r, opts...)
		if err != nil {
			return nil, err
		}
		s.remote = true
		if d.MediaType.IsIndex() {
			idx, err := d.ImageIndex()
			if err != nil {
				return nil, err
			}
			img, _, err := fromIndex(idx, want, variantGiven)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.desc, err)
			}
			s.img = img
		} else {
			img, err := d.Image()
			if err != nil {
				return nil, err
			}
			s.img = img
		}
	}
	h, err := s.img.Digest()
	if err != nil {
		return nil, err
	}
	s.digest = h.String()
	if cf, err := s.img.ConfigFile(); err == nil && cf.Architecture != "" {
		p := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		s.platform = p.String()
		if cf.OS != want.OS || cf.Architecture != want.Architecture {
			o.warnf("the image is for %s, not %s", s.platform, want.String())
		}
	}
	return s, nil
}

// fromLayout opens an OCI layout directory; tag selects a manifest by its
// org.opencontainers.image.ref.name annotation.
func (s *source) fromLayout(dir, tag string, want v1.Platform, variantGiven bool) error {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return err
	}
	if tag == "" {
		img, _, err := fromIndex(idx, want, variantGiven)
		if err == nil {
			s.img = img
			return nil
		}
		m, merr := idx.IndexManifest()
		if merr != nil || len(m.Manifests) != 1 {
			return err
		}
		tag = m.Manifests[0].Annotations["org.opencontainers.image.ref.name"]
		if tag == "" {
			return s.layoutEntry(idx, m.Manifests[0], want, variantGiven)
		}
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range m.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == tag {
			return s.layoutEntry(idx, d, want, variantGiven)
		}
	}
	return fmt.Errorf("no manifest named %q in the layout", tag)
}

func (s *source) layoutEntry(idx v1.ImageIndex, d v1.Descriptor, want v1.Platform, variantGiven bool) error {
	if d.MediaType.IsIndex() {
		sub, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return err
		}
		s.img, _, err = fromIndex(sub, want, variantGiven)
		return err
	}
	img, err := idx.Image(d.Digest)
	s.img = img
	return err
}

// keychain is the credentials source: the default keychain reads
// ~/.docker/config.json ($DOCKER_CONFIG), podman's auth.json and runs the
// credential helpers they name.
func (o *Options) keychain() authn.Keychain {
	if o.Keychain != nil {
		return o.Keychain
	}
	return authn.DefaultKeychain
}

// Options tune Pull.
type Options struct {
	Platform  string // OS/ARCH[/VARIANT]; default the host's
	CacheDir  string // the layer cache; "" for the default, "-" for none
	CacheMax  int64  // bytes the cache may keep after a pull (0: DefaultCacheMax)
	Progress  *Progress
	Keychain  authn.Keychain
	Transport http.RoundTripper
	Warn      func(format string, args ...any)
}

func (o *Options) warnf(format string, args ...any) {
	if o.Warn != nil {
		o.Warn(format, args...)
	}
}
