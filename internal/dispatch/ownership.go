package dispatch

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Recorded ownership. A guest running as (virtual) root expects chown and
// set-id mode bits to stick, which the invoking user cannot do on the host.
// kbox records them per file in the user.containers.override_stat
// extended attribute — the convention of the rootless container tools
// (containers/storage, fuse-overlayfs), so roots they prepared read back
// correctly — as "uid:gid:mode:type" (mode in octal), and stat, lstat,
// fstat and statx report the recorded values. Where the host filesystem
// has no user extended attributes (or for symlinks, which cannot carry
// them), the record is kept in memory for the run and kbox warns once.

const overrideXattr = "user.containers.override_stat"

type override struct {
	uid, gid, mode uint32 // mode: permission and set-id bits only
}

type inodeKey struct{ dev, ino uint64 }

type ownershipStore struct {
	mu     sync.Mutex
	mem    map[inodeKey]override
	warned bool
}

func newOwnershipStore() *ownershipStore {
	return &ownershipStore{mem: map[inodeKey]override{}}
}

func fileTypeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "pipe"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "char"
	case unix.S_IFBLK:
		return "block"
	}
	return "file"
}

func parseOverride(v string) (override, bool) {
	f := strings.Split(strings.TrimRight(v, "\x00"), ":")
	if len(f) < 3 {
		return override{}, false
	}
	u, err1 := strconv.ParseUint(f[0], 10, 32)
	g, err2 := strconv.ParseUint(f[1], 10, 32)
	m, err3 := strconv.ParseUint(f[2], 8, 32)
	if err1 != nil || err2 != nil || err3 != nil {
		return override{}, false
	}
	return override{uid: uint32(u), gid: uint32(g), mode: uint32(m) & 0o7777}, true
}

// readOverride returns the record for the object at kbox-built path p
// (no-follow) with status st.
//
// p is a kbox-built path that reaches the object itself when followed
// (/proc/self/fd/N, or a name in a resolved parent that is not a symlink);
// symlinks are never followed: their records live in memory only.
func (e *Engine) readOverride(p string, fd int, st *unix.Stat_t) (override, bool) {
	buf := make([]byte, 64)
	n, err := -1, error(unix.ENODATA)
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
	case fd >= 0:
		n, err = unix.Fgetxattr(fd, overrideXattr, buf)
	default:
		n, err = unix.Getxattr(p, overrideXattr, buf)
	}
	if err == nil {
		if ov, ok := parseOverride(string(buf[:n])); ok {
			// kbox before 2026-12 recorded mode 0000 when it chowned a
			// directory it knew only by type (vfs.Lookup.Stat): such a
			// record of a directory whose host mode is not 0000 reads as
			// the host mode. A deliberate chmod 000 of a directory changes
			// the host mode too, so it still reads 0000.
			if ov.mode == 0 && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				ov.mode = st.Mode & 0o7777
			}
			return ov, true
		}
	}
	e.owners.mu.Lock()
	defer e.owners.mu.Unlock()
	ov, ok := e.owners.mem[inodeKey{st.Dev, st.Ino}]
	return ov, ok
}

// writeOverride records ov for the object.
func (e *Engine) writeOverride(r *Request, p string, fd int, st *unix.Stat_t, ov override) error {
	val := []byte(fmt.Sprintf("%d:%d:%04o:%s", ov.uid, ov.gid, ov.mode, fileTypeName(st.Mode)))
	var err error
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		err = unix.EPERM // user.* attributes are not allowed on symlinks
	} else if fd >= 0 {
		err = unix.Fsetxattr(fd, overrideXattr, val, 0)
	} else {
		err = unix.Setxattr(p, overrideXattr, val, 0)
	}
	if err == nil {
		return nil
	}
	if err != unix.ENOTSUP && err != unix.EPERM && err != unix.EOPNOTSUPP {
		return err
	}
	e.owners.mu.Lock()
	defer e.owners.mu.Unlock()
	e.owners.mem[inodeKey{st.Dev, st.Ino}] = ov
	if !e.owners.warned && st.Mode&unix.S_IFMT != unix.S_IFLNK {
		e.owners.warned = true
		e.warnf("the guest root's filesystem has no user extended attributes: ownership recorded by chown is kept in memory for this run only")
	}
	return nil
}

// recordsOwnership reports whether chown and set-id bits are recorded
// rather than applied: the guest believes it is root.
func (e *Engine) recordsOwnership(r *Request) bool {
	if !e.cfg.Identity.Virtual {
		return false
	}
	c := r.Proc.Creds()
	return c.EUID == 0
}

// currentOwner is the object's owner as the guest sees it.
func (e *Engine) currentOwner(p string, fd int, st *unix.Stat_t) override {
	if ov, ok := e.readOverride(p, fd, st); ok {
		return ov
	}
	u, g := e.guestOwner(st.Uid, st.Gid)
	return override{uid: u, gid: g, mode: st.Mode & 0o7777}
}

// recordChown records a chown by a (virtual) root guest.
func (e *Engine) recordChown(r *Request, p string, fd int, st *unix.Stat_t, uid, gid uint32) error {
	ov := e.currentOwner(p, fd, st)
	if uid != ^uint32(0) {
		ov.uid = uid
	}
	if gid != ^uint32(0) {
		ov.gid = gid
	}
	// chown clears set-id bits of non-directories, as Linux does.
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		ov.mode &^= unix.S_ISUID | unix.S_ISGID
	}
	return e.writeOverride(r, p, fd, st, ov)
}

// recordMode keeps set-id bits (and the mode) of a chmod when a record is
// in use for the object or set-id bits are asked for.
func (e *Engine) recordMode(r *Request, p string, fd int, st *unix.Stat_t, mode uint32) error {
	_, had := e.readOverride(p, fd, st)
	if !had && mode&(unix.S_ISUID|unix.S_ISGID|recordAlways) == 0 {
		return nil
	}
	ov := e.currentOwner(p, fd, st)
	ov.mode = mode & 0o7777
	return e.writeOverride(r, p, fd, st, ov)
}

// applyOverride rewrites a stat result with the recorded ownership.
func (e *Engine) applyOverride(p string, fd int, st *unix.Stat_t) bool {
	if !e.cfg.Identity.Virtual {
		return false
	}
	ov, ok := e.readOverride(p, fd, st)
	if !ok {
		return false
	}
	st.Uid, st.Gid = ov.uid, ov.gid
	st.Mode = st.Mode&unix.S_IFMT | ov.mode
	return true
}
