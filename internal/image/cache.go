package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The layer cache: compressed layer blobs as the registry served them,
// named by their digest, $XDG_CACHE_HOME/kbox/layers/sha256/HEX (default
// ~/.cache/kbox/...). A blob is written to a temporary name and renamed
// once its digest checked, and its digest is checked again each time it
// is extracted; a mismatch removes it. After each pull the least recently
// used blobs go until the cache is under its limit.

// DefaultCacheMax is the cache's default limit.
const DefaultCacheMax = 4 << 30

// DefaultCacheDir is where the cache lives.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "kbox", "layers"), nil
}

type cache struct{ dir string }

func (c cache) path(digest string) (string, error) {
	algo, hexd, ok := strings.Cut(digest, ":")
	if !ok || algo != "sha256" || len(hexd) != 64 || strings.Trim(hexd, "0123456789abcdef") != "" {
		return "", fmt.Errorf("unsupported layer digest %q", digest)
	}
	return filepath.Join(c.dir, algo, hexd), nil
}

// get opens the cached blob for digest, touching it (its modification
// time is its last use).
func (c cache) get(digest string) (*os.File, error) {
	p, err := c.path(digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now)
	return f, nil
}

// put stores r's content under digest, checking it.
func (c cache) put(digest string, r io.Reader) error {
	p, err := c.path(digest)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".part-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), r); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("layer %s: the registry sent content with digest %s", digest, got)
	}
	return os.Rename(tmp.Name(), p)
}

func (c cache) remove(digest string) {
	if p, err := c.path(digest); err == nil {
		os.Remove(p)
	}
}

// PruneResult says what a prune did.
type PruneResult struct {
	Removed, Kept           int
	RemovedBytes, KeptBytes int64
}

// Prune removes the least recently used blobs of the cache in dir until
// it holds at most keep bytes (0 empties it), and leftover partial
// downloads.
func Prune(dir string, keep int64) (PruneResult, error) {
	var res PruneResult
	type blob struct {
		path string
		size int64
		used time.Time
	}
	var blobs []blob
	var total int64
	ents, err := os.ReadDir(filepath.Join(dir, "sha256"))
	if errors.Is(err, os.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, err
	}
	for _, e := range ents {
		p := filepath.Join(dir, "sha256", e.Name())
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if strings.HasPrefix(e.Name(), ".part-") {
			if time.Since(fi.ModTime()) > time.Hour {
				os.Remove(p)
			}
			continue
		}
		blobs = append(blobs, blob{p, fi.Size(), fi.ModTime()})
		total += fi.Size()
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].used.Before(blobs[j].used) })
	for _, b := range blobs {
		if total <= keep {
			res.Kept++
			res.KeptBytes += b.size
			continue
		}
		if err := os.Remove(b.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return res, err
		}
		total -= b.size
		res.Removed++
		res.RemovedBytes += b.size
	}
	return res, nil
}

// digestReader hashes what is read through it.
type digestReader struct {
	r io.Reader
	h hash.Hash
}

func newDigestReader(r io.Reader) *digestReader { return &digestReader{r, sha256.New()} }

func (d *digestReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	return n, err
}

func (d *digestReader) digest() string { return "sha256:" + hex.EncodeToString(d.h.Sum(nil)) }

// ParseSize reads a size: bytes, or with a K, M, G or T suffix (powers of
// 1024, an optional trailing B or iB).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s), "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult = 1 << (10 * (i + 1))
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("bad size %q (want e.g. 4G, 500M, 1048576)", s)
	}
	return int64(v * float64(mult)), nil
}
