package dispatch

import (
	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"

	"github.com/kbox-go/kbox/internal/vfs"
)

func init() {
	register(sysStat, "stat")
	register(sysLstat, "lstat")
	register(sysNewfstatat, "newfstatat")
	register(sysFstat, "fstat")
	register(sysStatx, "statx")
	register(sysAccess, "access")
	register(sysFaccessat, "faccessat")
	register(sysFaccessat2, "faccessat2")
	register(sysReadlink, "readlink")
	register(sysReadlinkat, "readlinkat")
	register(sysStatfs, "statfs")
}

// guestOwner translates host ownership into the guest's view: the invoking
// user's files appear owned by the guest identity.
func (e *Engine) guestOwner(uid, gid uint32) (uint32, uint32) {
	id := e.cfg.Identity
	if !id.Virtual {
		return uid, gid
	}
	if uid == e.hostUID {
		uid = id.UID
	}
	if gid == e.hostGID {
		gid = id.GID
	}
	return uid, gid
}

// writeStat writes a stat result; recorded is true when its ownership
// already comes from a recorded override (see ownership.go).
func (e *Engine) writeStat(r *Request, addr uint64, st *unix.Stat_t, recorded bool) Result {
	if !recorded {
		st.Uid, st.Gid = e.guestOwner(st.Uid, st.Gid)
	}
	if err := r.Mem.Write(addr, bytesOf(st)); err != nil {
		return Fail(err)
	}
	return Ok(0)
}

// statLookup stats a resolved object.
func statLookup(l *vfs.Lookup) (unix.Stat_t, error) {
	if !l.Exists() {
		return unix.Stat_t{}, unix.ENOENT
	}
	if l.Magic {
		fd, _, err := objectFD(l)
		if err != nil {
			return unix.Stat_t{}, err
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		return st, err
	}
	return l.Stat()
}

func (e *Engine) statPath(r *Request, dirfd, pathArg int, flags int, buf uint64) Result {
	p, err := r.Path(pathArg)
	if err != nil {
		return Fail(err)
	}
	if p == "" {
		if flags&unix.AT_EMPTY_PATH == 0 {
			return Fail(unix.ENOENT)
		}
		return e.statFD(r, dirfd, buf)
	}
	st, recorded, err := e.statAt(r, dirfd, p, flags&unix.AT_SYMLINK_NOFOLLOW == 0)
	if err != nil {
		return Fail(err)
	}
	return e.writeStat(r, buf, &st, recorded)
}

// statAt stats a guest path. The common case (a plain name that is not a
// symlink to follow) costs one fstatat on the cached parent directory.
// recorded reports that st's ownership came from a recorded override.
func (e *Engine) statAt(r *Request, dirfd int, p string, follow bool) (st unix.Stat_t, recorded bool, err error) {
	l, err := e.resolveAt(r, dirfd, p, followIf(follow)|vfs.ParentOnly)
	if err != nil {
		return st, false, err
	}
	if l.Deferred {
		err := unix.Fstatat(l.Parent.FD(), l.Name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err != nil || !follow || st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if err == nil {
				recorded = e.applyOverride(procFD(l.Parent.FD())+"/"+l.Name, -1, &st)
				if !recorded && e.plainStat != nil {
					e.plainStat(PlainStat{Dirfd: dirfd, Path: p, Follow: follow, Parent: l.Parent.FD(), Name: l.Name, Stat: &st})
				}
			}
			l.Release()
			return st, recorded, err
		}
		l.Release()
		if l, err = e.resolveAt(r, dirfd, p, vfs.FollowFinal); err != nil {
			return st, false, err
		}
	}
	defer l.Release()
	st, err = statLookup(l)
	if err == nil && !l.Magic && !l.VirtualLink {
		recorded = e.applyOverride(hostPath(l, false), -1, &st)
	}
	return st, recorded, err
}

// statFD stats a guest descriptor (AT_FDCWD means the cwd).
func (e *Engine) statFD(r *Request, fd int, buf uint64) Result {
	if fd == atFDCWD {
		cwd, _ := r.Proc.CwdRoot()
		l, err := e.ns.Resolve(e.canonicalCtx(r), "", cwd, vfs.FollowFinal)
		if err != nil {
			return Fail(err)
		}
		defer l.Release()
		st, err := statLookup(l)
		if err != nil {
			return Fail(err)
		}
		return e.writeStat(r, buf, &st, e.applyOverride(hostPath(l, false), -1, &st))
	}
	h, err := e.dupObject(r, fd)
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(h)
	var st unix.Stat_t
	if err := unix.Fstat(h, &st); err != nil {
		return Fail(err)
	}
	return e.writeStat(r, buf, &st, e.applyOverride("", h, &st))
}

func sysStat(e *Engine, r *Request) Result { return e.statPath(r, atFDCWD, 0, 0, r.Ptr(1)) }
func sysLstat(e *Engine, r *Request) Result {
	return e.statPath(r, atFDCWD, 0, unix.AT_SYMLINK_NOFOLLOW, r.Ptr(1))
}
func sysFstat(e *Engine, r *Request) Result { return e.statFD(r, r.Int(0), r.Ptr(1)) }

func sysNewfstatat(e *Engine, r *Request) Result {
	flags := r.Int(3)
	if flags&^(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH|unix.AT_NO_AUTOMOUNT) != 0 {
		return Fail(unix.EINVAL)
	}
	return e.statPath(r, r.Int(0), 1, flags, r.Ptr(2))
}

func sysStatx(e *Engine, r *Request) Result {
	dirfd, flags, mask, buf := r.Int(0), r.Int(2), int(r.Uint(3)), r.Ptr(4)
	if flags&^(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH|unix.AT_NO_AUTOMOUNT|abi.AtStatxSyncType) != 0 ||
		flags&abi.AtStatxSyncType == abi.AtStatxSyncType {
		return Fail(unix.EINVAL)
	}
	if uint32(mask)&unix.STATX__RESERVED != 0 {
		return Fail(unix.EINVAL)
	}
	p, err := r.Path(1)
	if err != nil && !(err == unix.EFAULT && r.Args[1] == 0 && flags&unix.AT_EMPTY_PATH != 0) {
		return Fail(err)
	}
	var stx unix.Statx_t
	sync := flags & abi.AtStatxSyncType
	p, h, err := e.emptyPath(r, dirfd, p, flags)
	if err != nil {
		return Fail(err)
	}
	if h >= 0 {
		defer unix.Close(h)
		if err := unix.Statx(h, "", unix.AT_EMPTY_PATH|sync, mask, &stx); err != nil {
			return Fail(err)
		}
		return e.writeStatx(r, buf, &stx, e.statxOverride("", h, &stx))
	}
	l, err := e.resolveAt(r, dirfd, p, followIf(flags&unix.AT_SYMLINK_NOFOLLOW == 0))
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	fd, owned, err := objectFD(l)
	if err != nil {
		return Fail(err)
	}
	if owned {
		defer unix.Close(fd)
	}
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|sync, mask, &stx); err != nil {
		return Fail(err)
	}
	recorded := false
	if !l.Magic && !l.VirtualLink {
		recorded = e.statxOverride(hostPath(l, false), -1, &stx)
	}
	return e.writeStatx(r, buf, &stx, recorded)
}

// statxOverride applies a recorded override to a statx result.
func (e *Engine) statxOverride(p string, fd int, stx *unix.Statx_t) bool {
	st := unix.Stat_t{Dev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), Ino: stx.Ino, Mode: uint32(stx.Mode), Uid: stx.Uid, Gid: stx.Gid}
	if !e.applyOverride(p, fd, &st) {
		return false
	}
	stx.Uid, stx.Gid, stx.Mode = st.Uid, st.Gid, uint16(st.Mode)
	if st.Rdev != 0 { // a device node's placeholder
		stx.Rdev_major, stx.Rdev_minor, stx.Size, stx.Blocks = unix.Major(st.Rdev), unix.Minor(st.Rdev), 0, 0
	}
	return true
}

func (e *Engine) writeStatx(r *Request, addr uint64, stx *unix.Statx_t, recorded bool) Result {
	if !recorded {
		stx.Uid, stx.Gid = e.guestOwner(stx.Uid, stx.Gid)
	}
	if err := r.Mem.Write(addr, bytesOf(stx)); err != nil {
		return Fail(err)
	}
	return Ok(0)
}

func (e *Engine) accessCommon(r *Request, dirfd, pathArg int, mode uint32, flags int) Result {
	if mode&^(unix.R_OK|unix.W_OK|unix.X_OK) != 0 {
		return Fail(unix.EINVAL)
	}
	if flags&^(unix.AT_EACCESS|unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return Fail(unix.EINVAL)
	}
	p, err := r.Path(pathArg)
	if err != nil {
		return Fail(err)
	}
	p, h, err := e.emptyPath(r, dirfd, p, flags)
	if err != nil {
		return Fail(err)
	}
	if h >= 0 {
		defer unix.Close(h)
		return errOf(unix.Faccessat2(h, "", mode, unix.AT_EMPTY_PATH|flags&unix.AT_EACCESS))
	}
	l, err := e.resolveAt(r, dirfd, p, followIf(flags&unix.AT_SYMLINK_NOFOLLOW == 0))
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	if !l.Exists() {
		return Fail(unix.ENOENT)
	}
	if mode&unix.W_OK != 0 {
		if err := writableData(l); err != nil {
			return Fail(err)
		}
	}
	if !l.Magic {
		if err := e.permitted(r, l, mode, flags&unix.AT_EACCESS == 0); err != nil {
			return Fail(err)
		}
	}
	fd, owned, err := objectFD(l)
	if err != nil {
		return Fail(err)
	}
	if owned {
		defer unix.Close(fd)
	}
	return errOf(unix.Faccessat2(fd, "", mode, unix.AT_EMPTY_PATH|flags&unix.AT_EACCESS))
}

func sysAccess(e *Engine, r *Request) Result {
	return e.accessCommon(r, atFDCWD, 0, r.Uint(1), 0)
}
func sysFaccessat(e *Engine, r *Request) Result {
	return e.accessCommon(r, r.Int(0), 1, r.Uint(2), 0)
}
func sysFaccessat2(e *Engine, r *Request) Result {
	return e.accessCommon(r, r.Int(0), 1, r.Uint(2), r.Int(3))
}

func (e *Engine) readlinkCommon(r *Request, dirfd, pathArg int, buf uint64, size int) Result {
	if size <= 0 {
		return Fail(unix.EINVAL)
	}
	p, err := r.Path(pathArg)
	if err != nil {
		return Fail(err)
	}
	var text string
	if p == "" {
		// readlinkat(fd, "") reads the symlink an O_PATH descriptor names.
		if dirfd == atFDCWD {
			return Fail(unix.ENOENT)
		}
		h, err := e.dupObject(r, dirfd)
		if err != nil {
			return Fail(err)
		}
		b := make([]byte, vfs.PathMax)
		n, err := unix.Readlinkat(h, "", b)
		unix.Close(h)
		if err != nil {
			return Fail(err)
		}
		text = string(b[:n])
	} else {
		// A plain last component in a plain directory is read with one
		// readlinkat of that single name in kbox's descriptor of its
		// parent (readlinkat never follows it): no O_PATH open, fstat and
		// close of the link. The kernel's answer is Linux's own: EINVAL
		// for what is not a symlink, ENOENT for a missing name. Mount
		// points, procfs and overlays are resolved in full (ParentOnly).
		l, err := e.resolveAt(r, dirfd, p, vfs.ParentOnly)
		if err != nil {
			return Fail(err)
		}
		defer l.Release()
		switch {
		case l.Deferred:
			b := make([]byte, vfs.PathMax)
			n, err := unix.Readlinkat(l.Parent.FD(), l.Name, b)
			if err != nil {
				return Fail(err)
			}
			text = string(b[:n])
		case !l.Exists():
			return Fail(unix.ENOENT)
		case l.VirtualLink:
			text = l.LinkText
		case l.Type() != unix.S_IFLNK:
			return Fail(unix.EINVAL)
		default:
			b := make([]byte, vfs.PathMax)
			n, err := unix.Readlinkat(l.Obj.FD(), "", b)
			if err != nil {
				return Fail(err)
			}
			text = string(b[:n])
		}
	}
	out := []byte(text)
	if len(out) > size {
		out = out[:size]
	}
	if err := r.Mem.Write(buf, out); err != nil {
		return Fail(err)
	}
	return Ok(int64(len(out)))
}

func sysReadlink(e *Engine, r *Request) Result {
	return e.readlinkCommon(r, atFDCWD, 0, r.Ptr(1), r.Int(2))
}
func sysReadlinkat(e *Engine, r *Request) Result {
	return e.readlinkCommon(r, r.Int(0), 1, r.Ptr(2), r.Int(3))
}

func sysStatfs(e *Engine, r *Request) Result {
	l, err := e.resolveArg(r, atFDCWD, 0, vfs.FollowFinal)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	fd, owned, err := objectFD(l)
	if err != nil {
		return Fail(err)
	}
	if owned {
		defer unix.Close(fd)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return Fail(err)
	}
	if l.ReadOnly {
		sfs.Flags |= unix.ST_RDONLY
	}
	if err := r.Mem.Write(r.Ptr(1), bytesOf(&sfs)); err != nil {
		return Fail(err)
	}
	return Ok(0)
}
