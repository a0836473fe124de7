//go:build cgo && linux && amd64

package trap

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// planCache keeps the rewrite tier's patch plans between runs: decoding a
// large executable section (busybox-static: 1.6 MB) takes tens of
// milliseconds, finding its sites again costs nothing. A plan is keyed by
// the file's identity and version (device, inode, size, modification and
// change times) and the section's place in it, and re-validated against
// the code before use (validPlan), so a stale or damaged entry is
// recomputed, never applied blindly. The cache is kbox's own directory
// under the user's cache directory ($XDG_CACHE_HOME or ~/.cache), never
// inside the guest; without one (or when it does not exist yet) nothing is
// cached.
type planCache struct {
	dir string
	// readOnly: plans are used but never stored (the confined child: see
	// Config.PlanCacheReadOnly).
	readOnly bool
}

// planMagic starts every plan file; its number changes whenever planSites
// would plan differently, so older plans are recomputed.
const planMagic = "kbox-rewrite-plan-3\n"

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

// PlanCacheDir is the plan cache's directory when it exists ("" when not).
func PlanCacheDir() string {
	dir := planCacheDir()
	if fi, err := os.Stat(dir); dir == "" || err != nil || !fi.IsDir() {
		return ""
	}
	return dir
}

func newPlanCache(readOnly bool) planCache {
	if readOnly {
		if dir := PlanCacheDir(); dir != "" {
			return planCache{dir: dir, readOnly: true}
		}
		return planCache{}
	}
	dir := planCacheDir()
	if dir == "" || os.MkdirAll(dir, 0o700) != nil || unix.Access(dir, unix.W_OK) != nil {
		return planCache{}
	}
	return planCache{dir: dir}
}

func planKey(st *unix.Stat_t, off, size uint64) string {
	return fmt.Sprintf("%x-%x-%x-%d.%d-%d.%d-%x-%x", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec,
		st.Ctim.Sec, st.Ctim.Nsec, off, size)
}

func (c planCache) load(key string) ([]site, int, bool) {
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
	plan := make([]site, n)
	for i := range plan {
		plan[i] = site{binary.LittleEndian.Uint32(b[8*i:]), binary.LittleEndian.Uint32(b[8*i+4:])}
	}
	return plan, found, true
}

func (c planCache) store(key string, plan []site, found int) {
	if c.dir == "" || key == "" || c.readOnly {
		return
	}
	b := []byte(planMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(found))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(plan)))
	for _, p := range plan {
		b = binary.LittleEndian.AppendUint32(b, p.start)
		b = binary.LittleEndian.AppendUint32(b, p.sys)
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
