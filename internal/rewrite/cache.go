//go:build linux

package rewrite

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Cache keeps the rewrite tier's patch plans between runs: decoding a
// large executable section (busybox-static: 1.6 MB) takes tens of
// milliseconds, finding its sites again costs nothing. A plan is keyed by
// the file's identity and version (device, inode, size, modification and
// change times) and the section's place in it, and re-validated against
// the code before use (ISA.Valid), so a stale or damaged entry is
// recomputed, never applied blindly. The cache is kbox's own directory
// under the user's cache directory ($XDG_CACHE_HOME or ~/.cache), never
// inside the guest; without one (or when it does not exist yet) nothing is
// cached.
type Cache struct {
	dir string
	// readOnly: plans are used but never stored (the confined child: see
	// internal/inproc's Config.PlanCacheReadOnly).
	readOnly bool
}

// planMagic starts every plan file; its number changes whenever planSites
// would plan differently (any ISA), so older plans are recomputed.
const planMagic = "kbox-rewrite-plan-4\n"

// planCacheDir is where plans live, beneath the user's cache directory
// ("" when the user has none: kbox does not create ~/.cache, or /.cache
// for a HOME of /).
func planCacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	if fi, err := os.Stat(base); err != nil || !fi.IsDir() {
		return ""
	}
	return filepath.Join(base, "kbox", "rewrite-plans")
}

// CacheDir is the plan cache's directory when it exists ("" when not).
func CacheDir() string {
	dir := planCacheDir()
	if fi, err := os.Stat(dir); dir == "" || err != nil || !fi.IsDir() {
		return ""
	}
	return dir
}

// NewCache opens the user's plan cache: read-only, or creating its
// directory. Without one, plans are neither loaded nor stored.
func NewCache(readOnly bool) Cache {
	if readOnly {
		if dir := CacheDir(); dir != "" {
			return Cache{dir: dir, readOnly: true}
		}
		return Cache{}
	}
	dir := planCacheDir()
	if dir == "" || os.MkdirAll(dir, 0o700) != nil || unix.Access(dir, unix.W_OK) != nil {
		return Cache{}
	}
	return Cache{dir: dir}
}

// Key names a section of the file st describes: its identity, version
// and the section's place in it.
func Key(st *unix.Stat_t, off, size uint64) string {
	return fmt.Sprintf("%x-%x-%x-%d.%d-%d.%d-%x-%x", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec,
		st.Ctim.Sec, st.Ctim.Nsec, off, size)
}

// Load returns the cached plan under key and the number of syscalls found.
func (c Cache) Load(key string) ([]Site, int, bool) {
	if c.dir == "" || key == "" {
		return nil, 0, false
	}
	b, err := os.ReadFile(filepath.Join(c.dir, key))
	if err != nil || len(b) < len(planMagic)+8 || string(b[:len(planMagic)]) != planMagic {
		return nil, 0, false
	}
	b = b[len(planMagic):]
	found, n := int(binary.LittleEndian.Uint32(b)), int(binary.LittleEndian.Uint32(b[4:]))
	b = b[8:]
	if len(b) != 8*n {
		return nil, 0, false
	}
	plan := make([]Site, n)
	for i := range plan {
		plan[i] = Site{binary.LittleEndian.Uint32(b[8*i:]), binary.LittleEndian.Uint32(b[8*i+4:])}
	}
	return plan, found, true
}

// Store caches plan under key (not in a read-only cache).
func (c Cache) Store(key string, plan []Site, found int) {
	if c.dir == "" || key == "" || c.readOnly {
		return
	}
	b := []byte(planMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(found))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(plan)))
	for _, p := range plan {
		b = binary.LittleEndian.AppendUint32(b, p.Start)
		b = binary.LittleEndian.AppendUint32(b, p.Sys)
	}
	// Write and rename: a concurrent kbox never reads half a plan.
	tmp, err := os.CreateTemp(c.dir, ".plan-")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return
	}
	if os.Rename(tmp.Name(), filepath.Join(c.dir, key)) != nil {
		os.Remove(tmp.Name())
	}
}
