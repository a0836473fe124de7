// Package image makes guest roots from container images: kbox image pull
// (a registry, a docker-archive, an OCI archive or layout, through
// go-containerregistry), kbox image unpack (an ext4 image) and the image
// configuration kbox run applies. docs/images.md describes them.
package image

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

// Result is what a pull made.
type Result struct {
	Meta  Meta
	Stats Stats
}

// Pull makes dir a root from the image ref (see docs/images.md for the
// reference forms). dir must not exist or be an empty directory; the root
// is built next to it and renamed into place, and the image's
// configuration is written to MetaPath(dir).
func Pull(ctx context.Context, ref, dir string, o Options) (*Result, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := checkTarget(dir); err != nil {
		return nil, err
	}
	src, err := open(ctx, ref, &o)
	if err != nil {
		return nil, err
	}
	defer src.cleanup()
	cf, err := src.img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image configuration: %w", err)
	}
	layers, err := src.img.Layers()
	if err != nil {
		return nil, err
	}
	var c *cache
	if src.remote && o.CacheDir != "-" {
		cdir := o.CacheDir
		if cdir == "" {
			if cdir, err = DefaultCacheDir(); err != nil {
				o.warnf("no layer cache (%v): layers are extracted as they arrive", err)
			}
		}
		if cdir != "" {
			if err := os.MkdirAll(cdir, 0o700); err != nil {
				o.warnf("no layer cache (%v): layers are extracted as they arrive", err)
			} else {
				c = &cache{cdir}
			}
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".kbox-pull-")
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	x, err := newExtractor(tmp, o.warnf)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	// The root directory itself: root's, 0755, unless a layer says.
	if rfd, err := x.openIn("", resolveHow); err == nil {
		x.record(rfd, "", identity.Record{Mode: 0o755, Type: "dir"})
		unix.Close(rfd)
	}
	if err := pullLayers(ctx, layers, c, x, o.Progress); err != nil {
		return nil, err
	}
	meta := Meta{Source: src.desc, Digest: src.digest, Platform: src.platform, Config: configOf(cf)}
	if err := os.Chmod(tmp, 0o755|os.ModeDir); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("moving the root into place: %w", err)
	}
	done = true
	if err := WriteMeta(dir, meta); err != nil {
		return nil, err
	}
	if c != nil {
		max := o.CacheMax
		if max == 0 {
			max = DefaultCacheMax
		}
		if _, err := Prune(c.dir, max); err != nil {
			o.warnf("trimming the layer cache: %v", err)
		}
	}
	return &Result{Meta: meta, Stats: x.stats}, nil
}

// checkTarget accepts a missing path or an empty directory.
func checkTarget(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	}
	return nil
}

// pullLayers downloads the layers (three at a time, into the cache) and
// applies them in order as they arrive.
func pullLayers(ctx context.Context, layers []v1.Layer, c *cache, x *extractor, pr *Progress) error {
	type job struct {
		digest string
		size   int64
		bar    *Bar
		ready  chan error
	}
	jobs := make([]*job, len(layers))
	for i, l := range layers {
		h, err := l.Digest()
		if err != nil {
			return err
		}
		size, _ := l.Size()
		jobs[i] = &job{digest: h.String(), size: size, ready: make(chan error, 1)}
		jobs[i].bar = pr.Add(fmt.Sprintf("layer %d/%d %s", i+1, len(layers), short(h.String())), size)
	}
	// On an error the downloads still running are cancelled, then waited
	// for (deferred calls run last first).
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c != nil {
		sem := make(chan struct{}, 3)
		for i, j := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					j.ready <- ctx.Err()
					return
				}
				defer func() { <-sem }()
				j.ready <- fetch(ctx, layers[i], c, j.digest, j.bar)
			}()
		}
	}
	for i, j := range jobs {
		var r io.ReadCloser
		var dr *digestReader
		if c != nil {
			if err := <-j.ready; err != nil {
				j.bar.Fail()
				return fmt.Errorf("layer %s: %w", j.digest, err)
			}
			f, err := c.get(j.digest)
			if err != nil {
				return err
			}
			r = f
			dr = newDigestReader(f)
			j.bar.Extracting()
		} else {
			rc, err := layers[i].Uncompressed()
			if err != nil {
				return fmt.Errorf("layer %s: %w", j.digest, err)
			}
			r = rc
			j.bar.Extracting()
		}
		var in io.Reader = ctxReader{ctx, r}
		if dr != nil {
			in = ctxReader{ctx, dr}
		}
		in = j.bar.Reader(in)
		err := applyCompressed(x, in)
		if dr != nil {
			// The rest of the blob (tar padding) still counts; a blob
			// that failed to apply is checked too, so that a damaged
			// one goes.
			_, cerr := io.Copy(io.Discard, dr)
			if cerr == nil && dr.digest() != j.digest {
				c.remove(j.digest)
				err = fmt.Errorf("the cached blob is damaged (digest %s); it was removed, pull again", dr.digest())
			} else if err == nil {
				err = cerr
			}
		}
		r.Close()
		if err != nil {
			j.bar.Fail()
			return fmt.Errorf("layer %s: %w", j.digest, err)
		}
		j.bar.Done()
	}
	return nil
}

// fetch brings one layer into the cache unless it is there.
func fetch(ctx context.Context, l v1.Layer, c *cache, digest string, bar *Bar) error {
	if f, err := c.get(digest); err == nil {
		f.Close()
		bar.Cached()
		return nil
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	bar.Downloading()
	return c.put(digest, bar.Reader(ctxReader{ctx, rc}))
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// applyCompressed applies a layer that may be gzip, zstd or plain tar,
// by its first bytes (the media types lie often enough).
func applyCompressed(x *extractor, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer z.Close()
		return x.apply(z)
	case bytes.Equal(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<30))
		if err != nil {
			return err
		}
		defer z.Close()
		return x.apply(z)
	}
	return x.apply(br)
}

func short(digest string) string {
	if len(digest) > 19 {
		return digest[:19]
	}
	return digest
}
