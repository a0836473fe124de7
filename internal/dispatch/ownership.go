package dispatch

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

// Recorded ownership. Under a virtual identity (-0, -S, --change-id) the
// guest's files have owners and modes the invoking user cannot give them
// on the host: a root guest chowns to any user, sets set-id bits, makes
// files mode 000 and still reads them; a guest that dropped to another
// user creates files that user owns. kbox keeps the guest's view per
// object in the user.containers.override_stat extended attribute — the
// convention of the rootless container tools (containers/storage,
// fuse-overlayfs), so roots they prepared read back correctly — as
// "uid:gid:mode:type" (mode in octal), and stat, lstat, fstat and statx
// report the recorded values; kbox's permission checks use them too
// (perm.go).
//
// The host mode of an object the invoking user owns is the guest's mode,
// without set-id bits, plus the owner bits kbox itself needs to keep
// working on it (hostNeeds: read and write for a file, with execute when
// the guest's mode has any execute bit; read, write and search for a
// directory). Whenever the two differ the record holds the guest's mode,
// so a guest can make a file 0444 or 000 and still chown it, and virtual
// root can still read it, in this run and the next. The record is written
// before the host mode changes whenever the host mode allows it (which is
// always, once an object is settled): a kbox killed in between leaves the
// guest's view right and the host mode at worst stricter than needed,
// which the next access repairs.
//
// Objects that cannot carry user.* attributes — symlinks, FIFOs, sockets
// and device nodes — and filesystems without user extended attributes
// keep their records in memory, for the run only.

const overrideXattr = "user.containers.override_stat"

type override struct {
	uid, gid, mode uint32 // mode: permission and set-id bits only
	// dev is the record's type when it names a device node
	// ("char-MAJOR-MINOR", "block-MAJOR-MINOR"): a regular file kept as
	// the placeholder of one (kbox image pull, docs/images.md).
	dev string
}

// inodeKey names an object in the in-memory store; the type keeps a
// record from applying to an object of another kind that reuses the inode
// number.
type inodeKey struct {
	dev, ino uint64
	ftype    uint32
}

func keyOf(st *unix.Stat_t) inodeKey {
	return inodeKey{st.Dev, st.Ino, st.Mode & unix.S_IFMT}
}

type ownershipStore struct {
	mu                    sync.Mutex
	mem                   map[inodeKey]override
	warned, warnedSpecial bool
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

// xattrCapable reports whether an object of this type can carry user.*
// extended attributes (the kernel allows them on regular files and
// directories only).
func xattrCapable(mode uint32) bool {
	t := mode & unix.S_IFMT
	return t == unix.S_IFREG || t == unix.S_IFDIR
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
	ov := override{uid: uint32(u), gid: uint32(g), mode: uint32(m) & 0o7777}
	if len(f) > 3 {
		if _, _, _, ok := (identity.Record{Type: f[3]}).Device(); ok {
			ov.dev = f[3]
		}
	}
	return ov, true
}

// hostNeeds is the owner permission kbox needs on an object it keeps a
// guest's view of: to read it for virtual root, to write its record, to
// execute it when the guest may.
func hostNeeds(ftype, guestMode uint32) uint32 {
	switch ftype {
	case unix.S_IFDIR:
		return 0o700
	case unix.S_IFREG:
		if guestMode&0o111 != 0 {
			return 0o700
		}
		return 0o600
	case unix.S_IFIFO, unix.S_IFSOCK:
		return 0o600
	}
	return 0
}

// readOverride returns the record for the object with status st, reached
// by fd (any descriptor of it, O_PATH included) or, when fd < 0, by the
// kbox-built path p. p reaches the object itself when followed
// (/proc/self/fd/N, or a name in a resolved parent that is not a symlink);
// symlinks are never followed: their records live in memory only.
func (e *Engine) readOverride(p string, fd int, st *unix.Stat_t) (override, bool) {
	if xattrCapable(st.Mode) {
		buf := make([]byte, 64)
		var n int
		var err error
		if fd >= 0 {
			n, err = unix.Fgetxattr(fd, overrideXattr, buf)
			if err == unix.EBADF { // an O_PATH descriptor
				n, err = unix.Getxattr(procFD(fd), overrideXattr, buf)
			}
		} else {
			n, err = unix.Getxattr(p, overrideXattr, buf)
		}
		if err == nil {
			if ov, ok := parseOverride(string(buf[:n])); ok {
				// kbox before 2026-12 recorded mode 0000 when it chowned
				// a directory it knew only by type (vfs.Lookup.Stat). A
				// record kbox writes now keeps the host mode the guest
				// mode plus the owner's own bits (writeOverride's
				// callers), so a 0000 record of a directory whose host
				// mode grants group or others anything is one of those:
				// it reads as the host mode.
				if ov.mode == 0 && st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Mode&0o077 != 0 {
					ov.mode = st.Mode & 0o7777
				}
				return ov, true
			}
		}
		if err != unix.ENOTSUP && err != unix.EOPNOTSUPP {
			return override{}, false // the attribute is the record
		}
	}
	e.owners.mu.Lock()
	defer e.owners.mu.Unlock()
	ov, ok := e.owners.mem[keyOf(st)]
	return ov, ok
}

// writeOverride records ov for the object.
func (e *Engine) writeOverride(p string, fd int, st *unix.Stat_t, ov override) error {
	if xattrCapable(st.Mode) {
		typ := fileTypeName(st.Mode)
		if ov.dev != "" && st.Mode&unix.S_IFMT == unix.S_IFREG {
			typ = ov.dev
		}
		val := []byte(fmt.Sprintf("%d:%d:%04o:%s", ov.uid, ov.gid, ov.mode, typ))
		var err error
		if fd >= 0 {
			err = unix.Fsetxattr(fd, overrideXattr, val, 0)
			if err == unix.EBADF {
				err = unix.Setxattr(procFD(fd), overrideXattr, val, 0)
			}
		} else {
			err = unix.Setxattr(p, overrideXattr, val, 0)
		}
		if err != unix.ENOTSUP && err != unix.EOPNOTSUPP {
			return err
		}
	}
	e.owners.mu.Lock()
	defer e.owners.mu.Unlock()
	e.owners.mem[keyOf(st)] = ov
	switch {
	case xattrCapable(st.Mode) && !e.owners.warned:
		e.owners.warned = true
		e.warnf("the filesystem holding %s has no user extended attributes: owners and modes recorded there are kept in memory for this run only", fileTypeName(st.Mode))
	case !xattrCapable(st.Mode) && !e.owners.warnedSpecial:
		e.owners.warnedSpecial = true
		e.Verbosef("ownership of a %s (symlinks, FIFOs, sockets and device nodes cannot carry user.* attributes) is recorded in memory for this run only", fileTypeName(st.Mode))
	}
	return nil
}

// recordsOwnership reports whether chown and chmod go through the guest's
// view (virtual identity) rather than straight to the host.
func (e *Engine) recordsOwnership(r *Request) bool {
	return e.cfg.Identity.Virtual
}

// currentOwner is the object's owner and mode as the guest sees them.
func (e *Engine) currentOwner(p string, fd int, st *unix.Stat_t) override {
	if ov, ok := e.readOverride(p, fd, st); ok {
		return ov
	}
	u, g := e.guestOwner(st.Uid, st.Gid)
	return override{uid: u, gid: g, mode: st.Mode & 0o7777}
}

// ownsHost reports whether kbox may change the object's host mode.
func (e *Engine) ownsHost(st *unix.Stat_t) bool {
	return e.hostUID == 0 || st.Uid == e.hostUID
}

// hostModeFor is the host mode an object with guest mode m should have.
func (e *Engine) hostModeFor(st *unix.Stat_t, m uint32) uint32 {
	ftype := st.Mode & unix.S_IFMT
	if ftype == unix.S_IFLNK || !e.ownsHost(st) {
		return st.Mode & 0o7777
	}
	// Set-id bits live in the record only: a set-id file on the host is
	// never something a guest should be able to make.
	h := m & 0o1777
	if e.hostUID != 0 {
		h |= hostNeeds(ftype, m)
	}
	return h
}

// settle makes ov the guest's view of the object and its host mode what
// hostModeFor says. A record is kept when the view differs from what the
// host alone shows, or when keep is set (a record existed, or the guest
// named an owner). The object is reached by fd (any
// descriptor) or by path p (see readOverride).
func (e *Engine) settle(p string, fd int, st *unix.Stat_t, ov override, keep bool) error {
	host := st.Mode & 0o7777
	want := e.hostModeFor(st, ov.mode)
	iu, ig := e.guestOwner(st.Uid, st.Gid)
	record := keep || ov.uid != iu || ov.gid != ig || ov.mode != want
	chmodPath := p
	if fd >= 0 {
		chmodPath = procFD(fd)
	}
	chmod := func() error {
		if want == host {
			return nil
		}
		err := unix.Chmod(chmodPath, want)
		if err == nil {
			st.Mode = st.Mode&unix.S_IFMT | want
		}
		return err
	}
	// Record first when the host mode lets kbox (the record then always
	// describes the guest's view); otherwise open the host mode first.
	if record && xattrCapable(st.Mode) && e.hostUID != 0 && host&0o200 == 0 && e.ownsHost(st) {
		if err := chmod(); err != nil {
			return err
		}
	}
	if record {
		if err := e.writeOverride(p, fd, st, ov); err != nil {
			if err == unix.EACCES {
				// Another user's object kbox can neither change nor
				// record, as root in a user namespace cannot change an
				// inode whose owner it does not map.
				err = unix.EPERM
			}
			return err
		}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK || !e.ownsHost(st) {
		return nil
	}
	return chmod()
}

// fsCap reports whether the process holds capability cp over files (the
// filesystem capabilities follow the fsuid; see identity.Creds).
func fsCap(c *identity.Creds, cp int) bool { return c.Has(cp) }

// inGroup reports whether gid is the process's fsgid or one of its groups.
func inGroup(c *identity.Creds, gid uint32) bool { return c.FSGID == gid || contains(c.Groups, gid) }

// guestChown performs chown for the guest: Linux's rules for who may give
// which owner (CAP_CHOWN, or the owner changing the group to one of its
// own), the set-id bits a chown clears, and the record.
func (e *Engine) guestChown(r *Request, p string, fd int, st *unix.Stat_t, uid, gid uint32) error {
	c := r.Proc.Creds()
	cur, had := e.readOverride(p, fd, st)
	if !had {
		cur = e.currentOwner(p, fd, st)
	}
	ov := cur
	if uid != identity.Keep {
		if uid != cur.uid && !fsCap(&c, identity.CapChown) || c.FSUID != cur.uid && !fsCap(&c, identity.CapChown) {
			return e.refuse(r, unix.EPERM, "chown to uid %d of an object owned by %d", uid, cur.uid)
		}
		ov.uid = uid
	}
	if gid != identity.Keep {
		if !fsCap(&c, identity.CapChown) && (c.FSUID != cur.uid || gid != cur.gid && !inGroup(&c, gid)) {
			return e.refuse(r, unix.EPERM, "chown to gid %d of an object owned by %d:%d", gid, cur.uid, cur.gid)
		}
		ov.gid = gid
	}
	// chown clears the set-user-id bit of a non-directory, and its
	// set-group-id bit when group execute is set (without group execute it
	// marks mandatory locking and stays), whoever calls it.
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		ov.mode &^= unix.S_ISUID
		if ov.mode&unix.S_IXGRP != 0 {
			ov.mode &^= unix.S_ISGID
		}
	}
	// An explicit owner is always recorded: the file stays root's (or
	// the named user's) in a later run under another identity mapping.
	return e.settle(p, fd, st, ov, had || uid != identity.Keep || gid != identity.Keep)
}

// guestChmod performs chmod for the guest: only the owner (or CAP_FOWNER)
// may; S_ISGID is dropped when the caller is not in the file's group and
// lacks CAP_FSETID.
func (e *Engine) guestChmod(r *Request, p string, fd int, st *unix.Stat_t, mode uint32) error {
	c := r.Proc.Creds()
	cur, had := e.readOverride(p, fd, st)
	if !had {
		cur = e.currentOwner(p, fd, st)
	}
	if c.FSUID != cur.uid && !fsCap(&c, identity.CapFowner) {
		return e.refuse(r, unix.EPERM, "chmod of an object owned by %d", cur.uid)
	}
	mode &= 0o7777
	if mode&unix.S_ISGID != 0 && !inGroup(&c, cur.gid) && !fsCap(&c, identity.CapFsetid) {
		mode &^= unix.S_ISGID
	}
	cur.mode = mode
	return e.settle(p, fd, st, cur, had)
}

// refuse logs a refusal of the guest's (-v) and returns err.
func (e *Engine) refuse(r *Request, err unix.Errno, format string, args ...any) error {
	e.Verbosef("pid %d: %s denied (%s): %s", r.Tgid, e.arch.SyscallName(r.Nr), unix.ErrnoName(err), fmt.Sprintf(format, args...))
	return err
}

// created gives an object the guest just created (fd, any descriptor of
// it, in the directory parentFD) the owner Linux would: the creator's
// fsuid, and its fsgid or, in a set-group-id directory, the directory's
// group (a new directory inheriting the set-group-id bit); and settles
// its host mode. Failures leave the object as the host made it (-v).
func (e *Engine) created(r *Request, parentFD, fd int) {
	if !e.cfg.Identity.Virtual {
		return
	}
	var st, pst unix.Stat_t
	if unix.Fstat(fd, &st) != nil || unix.Fstat(parentFD, &pst) != nil {
		return
	}
	if !xattrCapable(st.Mode) {
		// A record left by an earlier object with this inode number.
		e.owners.mu.Lock()
		delete(e.owners.mem, keyOf(&st))
		e.owners.mu.Unlock()
	}
	c := r.Proc.Creds()
	dir := e.currentOwner("", parentFD, &pst)
	ov := override{uid: c.FSUID, gid: c.FSGID, mode: st.Mode & 0o7777}
	if dir.mode&unix.S_ISGID != 0 {
		ov.gid = dir.gid
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			ov.mode |= unix.S_ISGID
		}
	}
	if err := e.settle("", fd, &st, ov, false); err != nil {
		e.Verbosef("pid %d: recording the owner of a new %s failed: %v", r.Tgid, fileTypeName(st.Mode), err)
	}
}

// createdAt is created for an object named name in parentFD, not followed.
func (e *Engine) createdAt(r *Request, parentFD int, name string) {
	if !e.cfg.Identity.Virtual {
		return
	}
	fd, err := unix.Openat(parentFD, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	e.created(r, parentFD, fd)
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
	if ov.dev != "" && st.Mode&unix.S_IFMT == unix.S_IFREG {
		// A device node's placeholder shows as the node.
		char, major, minor, _ := (identity.Record{Type: ov.dev}).Device()
		st.Mode = unix.S_IFBLK | ov.mode
		if char {
			st.Mode = unix.S_IFCHR | ov.mode
		}
		st.Rdev, st.Size, st.Blocks = unix.Mkdev(major, minor), 0, 0
	}
	return true
}

// aclAccess is the POSIX access ACL attribute; an ACL that says no more
// than a mode is how cp -a, tar --acls and setfacl set modes.
const aclAccess = "system.posix_acl_access"

// aclMode returns the mode an access ACL is equivalent to (the kernel's
// posix_acl_equiv_mode: owner, group or mask, other; no named entries).
func aclMode(val []byte) (uint32, bool) {
	if len(val) < 4 || (len(val)-4)%8 != 0 || binary.LittleEndian.Uint32(val) != 2 {
		return 0, false
	}
	var mode, group, mask uint32
	seen, hasMask := 0, false
	for off := 4; off < len(val); off += 8 {
		tag, perm := binary.LittleEndian.Uint16(val[off:]), uint32(binary.LittleEndian.Uint16(val[off+2:]))
		if perm&^7 != 0 {
			return 0, false
		}
		switch tag {
		case 0x01: // ACL_USER_OBJ
			mode |= perm << 6
		case 0x04: // ACL_GROUP_OBJ
			group = perm
		case 0x10: // ACL_MASK
			mask, hasMask = perm, true
		case 0x20: // ACL_OTHER
			mode |= perm
		default: // ACL_USER, ACL_GROUP: a real ACL
			return 0, false
		}
		seen++
	}
	if seen < 3 {
		return 0, false
	}
	if hasMask {
		group = mask
	}
	return mode | group<<3, true
}

// aclSet serves setting an access ACL under a virtual identity: an ACL
// equivalent to a mode is the guest's chmod of the permission bits (what
// the kernel does with it), so the record and the host mode stay kbox's;
// ok=false lets the host store a real ACL.
func (e *Engine) aclSet(r *Request, p string, fd int, name string, val []byte) (Result, bool) {
	if name != aclAccess || !e.cfg.Identity.Virtual {
		return Result{}, false
	}
	mode, ok := aclMode(val)
	if !ok {
		return Result{}, false
	}
	var st unix.Stat_t
	var err error
	if fd >= 0 {
		err = unix.Fstat(fd, &st)
	} else {
		err = unix.Stat(p, &st)
	}
	if err != nil {
		return Fail(err), true
	}
	if !xattrCapable(st.Mode) {
		return Result{}, false
	}
	cur := e.currentOwner(p, fd, &st)
	return errOf(e.guestChmod(r, p, fd, &st, cur.mode&^0o777|mode)), true
}
