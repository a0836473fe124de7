package vfs

import (
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Handle is a reference-counted host descriptor owned by the resolver. The
// dentry cache and any number of in-flight lookups may share one; the
// descriptor is closed when the last reference is released, so an
// invalidation never closes a descriptor another goroutine is using.
type Handle struct {
	fd     int
	refs   atomic.Int32
	static bool // mount roots: owned by the Namespace, never closed here
	// layer says which layer of an overlay mount the descriptor is in
	// (layerNone outside overlays); lower is, for a directory of the
	// upper layer merged with one of the lower layer, that directory
	// (released with this handle). See overlay.go.
	layer layer
	lower *Handle
}

func newHandle(fd int) *Handle {
	h := &Handle{fd: fd}
	h.refs.Store(1)
	return h
}

func staticHandle(fd int) *Handle { return &Handle{fd: fd, static: true} }

// FD returns the host descriptor; valid until Release.
func (h *Handle) FD() int { return h.fd }

func (h *Handle) acquire() *Handle {
	if h != nil && !h.static {
		h.refs.Add(1)
	}
	return h
}

// Release drops one reference.
func (h *Handle) Release() {
	if h == nil || h.static {
		return
	}
	if h.refs.Add(-1) == 0 {
		unix.Close(h.fd)
		h.lower.Release()
	}
}

// dirCache maps canonical guest directory paths to descriptors. Any guest
// operation that may change the tree clears it (Invalidate); a generation
// number stops a lookup that started before an invalidation from inserting a
// stale entry after it.
type dirCache struct {
	mu      sync.Mutex
	entries map[string]*Handle
	gen     uint64
	hits    atomic.Uint64
	misses  atomic.Uint64
}

const dirCacheMax = 8192

func newDirCache() *dirCache { return &dirCache{entries: map[string]*Handle{}} }

func (c *dirCache) get(p string) *Handle {
	c.mu.Lock()
	h := c.entries[p]
	if h != nil {
		h.acquire()
	}
	c.mu.Unlock()
	if h != nil {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return h
}

func (c *dirCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put stores h (taking a reference) if no invalidation happened since gen.
func (c *dirCache) put(p string, h *Handle, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if _, ok := c.entries[p]; ok {
		return
	}
	if len(c.entries) >= dirCacheMax {
		c.clearLocked()
	}
	c.entries[p] = h.acquire()
}

func (c *dirCache) clear() {
	c.mu.Lock()
	c.clearLocked()
	c.mu.Unlock()
}

func (c *dirCache) clearLocked() {
	for k, h := range c.entries {
		h.Release()
		delete(c.entries, k)
	}
	c.gen++
}

// Invalidate drops every cached directory. Handlers call it after any guest
// operation that can change the tree (rename, unlink, rmdir, symlink, ...).
func (ns *Namespace) Invalidate() { ns.cache.clear() }

// CacheStats reports dentry cache hits and misses.
func (ns *Namespace) CacheStats() (hits, misses uint64) {
	return ns.cache.hits.Load(), ns.cache.misses.Load()
}

// OpenFile opens for reading the object at guest path p (relative paths
// from cwd; symlinks followed in the guest) through the descriptor the
// resolver holds, for kbox's own reading of guest files (the auto scan,
// the rewrite plan cache), never for the guest. ENOENT when nothing is
// there.
func (ns *Namespace) OpenFile(cwd, p string) (*os.File, error) {
	l, err := ns.Resolve(&Context{Cwd: cwd, Root: "/"}, "", p, FollowFinal)
	if err != nil {
		return nil, err
	}
	defer l.Release()
	if !l.Exists() || l.Obj == nil {
		return nil, unix.ENOENT
	}
	return os.Open("/proc/self/fd/" + strconv.Itoa(l.Obj.FD()))
}
