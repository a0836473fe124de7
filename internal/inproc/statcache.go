//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/dispatch"
)

// statCache is Go's side of the in-process stat cache (statcache.c, where
// the rules are): it fills the C table from the engine's plain stats
// (dispatch.PlainStat) and owns the O_PATH descriptors the entries hold.
// Only the guest thread uses it, from inside a served call.
type statCache struct {
	gen uint64 // the C generation the slots were filled in
	// seen holds the paths the engine served once in this generation: a
	// path enters the cache at its second stat, so a program that stats
	// every file once (tar, find) pays no O_PATH open per file.
	seen     map[string]bool
	fds      [statCacheSlots]int // descriptor per slot, -1: none
	inserted uint64
}

const statCacheSeenMax = 4096

func newStatCache() *statCache {
	c := &statCache{seen: map[string]bool{}}
	for i := range c.fds {
		c.fds[i] = -1
	}
	return c
}

// statCacheHash is FNV-1a over the path, seeded with the no-follow flag
// (kbox_sc_hash).
func statCacheHash(p string, nofollow bool) uint32 {
	h := uint32(2166136261)
	if nofollow {
		h ^= 1
	}
	for i := 0; i < len(p); i++ {
		h = (h ^ uint32(p[i])) * 16777619
	}
	return h
}

// reset empties every slot and closes their descriptors: the generation
// they were valid for has ended.
func (c *statCache) reset(gen uint64) {
	for i, fd := range c.fds {
		if fd >= 0 {
			setStatCacheSlot(i, 0, -1, 0, "", false)
			unix.Close(fd)
			c.fds[i] = -1
		}
	}
	clear(c.seen)
	c.gen = gen
}

// note is the engine's plain-stat hook.
func (c *statCache) note(ps dispatch.PlainStat) {
	if ps.Dirfd != unix.AT_FDCWD || ps.Path == "" || len(ps.Path) >= statCachePath {
		return
	}
	if gen := statCacheGen(); gen != c.gen {
		c.reset(gen)
	}
	key := ps.Path
	if !ps.Follow {
		key += "\x00"
	}
	if !c.seen[key] {
		if len(c.seen) >= statCacheSeenMax {
			clear(c.seen)
		}
		c.seen[key] = true
		return
	}
	fd, err := unix.Openat(ps.Parent, ps.Name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Dev != ps.Stat.Dev || st.Ino != ps.Stat.Ino {
		unix.Close(fd) // changed on the host in between: not cached
		return
	}
	c.insert(ps.Path, !ps.Follow, fd)
}

// insert stores fd for path in the slot lookups reach first among: the
// path's own, an empty or stale one, the first probed (evicted).
func (c *statCache) insert(path string, nofollow bool, fd int) {
	h := statCacheHash(path, nofollow)
	slot := -1
	for i := 0; i < statCacheProbe; i++ {
		s := int((h + uint32(i)) & (statCacheSlots - 1))
		gen, _, hash, same := statCacheSlot(s, path, nofollow)
		if gen == c.gen && hash == h && same {
			slot = s
			break
		}
		if slot < 0 && gen != c.gen {
			slot = s
		}
	}
	if slot < 0 {
		slot = int(h & (statCacheSlots - 1))
	}
	if old := c.fds[slot]; old >= 0 {
		setStatCacheSlot(slot, 0, -1, 0, "", false)
		unix.Close(old)
	}
	c.fds[slot] = fd
	setStatCacheSlot(slot, c.gen, fd, h, path, nofollow)
	c.inserted++
}
