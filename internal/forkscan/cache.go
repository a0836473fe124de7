package forkscan

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// fileID identifies one version of a host file: a file rewritten in place
// or replaced changes its size, mtime or ctime (ctime cannot be set back),
// a different file has another (dev, ino).
type fileID struct {
	Dev, Ino, Size   int64
	MtimeNs, CtimeNs int64
}

func idOf(st *unix.Stat_t) fileID {
	return fileID{Dev: int64(st.Dev), Ino: int64(st.Ino), Size: st.Size,
		MtimeNs: st.Mtim.Nano(), CtimeNs: st.Ctim.Nano()}
}

func (id fileID) name() string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", id.Dev, id.Ino, id.Size, id.MtimeNs, id.CtimeNs)
}

// DefaultCacheDir is the user's cache directory for the scan:
// $XDG_CACHE_HOME/kbox/forkscan, else ~/.cache/kbox/forkscan; "" when
// neither is set.
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil || d == "" {
		return ""
	}
	return filepath.Join(d, "kbox", "forkscan")
}

// diskCache keeps one JSON file per scanned object, named by its fileID.
// A nil *diskCache caches nothing. Anything wrong with it (a directory that
// is not ours or is open to others, an unreadable or corrupted entry, a
// full disk) makes it cache less, never fail the scan.
type diskCache struct{ dir string }

// maxCacheEntries bounds the directory: past it, new entries are not
// written (a cache, not a store; remove the directory to start over).
const maxCacheEntries = 8192

// cacheEntry is an objInfo with the identity it was computed for.
type cacheEntry struct {
	ID   fileID   `json:"id"`
	Info *objInfo `json:"info"`
}

// openCache creates dir (0700) if needed and returns the cache, or nil
// when dir is "" or not a private directory of this user.
func openCache(dir string) *diskCache {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR ||
		int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0 {
		return nil
	}
	return &diskCache{dir: dir}
}

func (c *diskCache) get(id fileID) (*objInfo, bool) {
	if c == nil {
		return nil, false
	}
	f, err := os.OpenFile(filepath.Join(c.dir, id.name()), os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, false
	}
	var e cacheEntry
	if json.Unmarshal(b, &e) != nil || e.ID != id || e.Info == nil || e.Info.V != infoVersion {
		return nil, false
	}
	return e.Info, true
}

func (c *diskCache) put(id fileID, in *objInfo) {
	if c == nil {
		return
	}
	b, err := json.Marshal(cacheEntry{ID: id, Info: in})
	if err != nil {
		return
	}
	final := filepath.Join(c.dir, id.name())
	if _, err := os.Lstat(final); err != nil {
		// A new entry: only while the directory is not full.
		d, err := os.Open(c.dir)
		if err != nil {
			return
		}
		names, _ := d.Readdirnames(maxCacheEntries + 1)
		d.Close()
		if len(names) > maxCacheEntries {
			return
		}
	}
	tmp, err := os.CreateTemp(c.dir, ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), final) != nil {
		os.Remove(tmp.Name())
	}
}
