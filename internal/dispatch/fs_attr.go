package dispatch

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
	"github.com/kbox-go/kbox/internal/vfs"
)

func init() {
	register(sysChmod, "chmod")
	register(sysFchmodat, "fchmodat")
	register(sysFchmodat2, "fchmodat2")
	register(sysChown, "chown")
	register(sysLchown, "lchown")
	register(sysFchownat, "fchownat")
	register(sysFchown, "fchown")
	register(sysFchmod, "fchmod")
	register(sysUtime, "utime")
	register(sysUtimes, "utimes")
	register(sysFutimesat, "futimesat")
	register(sysUtimensat, "utimensat")
	register(sysTruncate, "truncate")
}

// existing resolves an existing object and checks the mount is writable.
func (e *Engine) existing(r *Request, dirfd, pathArg int, follow bool, need lowerNeed) (*vfs.Lookup, error) {
	p, err := r.Path(pathArg)
	if err != nil {
		return nil, err
	}
	return e.existingAt(r, dirfd, p, follow, need)
}

// existingAt is existing for path p ("." for AT_FDCWD with an empty
// path and AT_EMPTY_PATH: the working directory).
func (e *Engine) existingAt(r *Request, dirfd int, p string, follow bool, need lowerNeed) (*vfs.Lookup, error) {
	l, err := e.resolveAt(r, dirfd, p, followIf(follow))
	if err != nil {
		return nil, err
	}
	if !l.Exists() {
		l.Release()
		return nil, unix.ENOENT
	}
	if l.Magic || l.VirtualLink {
		l.Release()
		return nil, unix.EACCES
	}
	if err := writable(l); err != nil {
		l.Release()
		return nil, err
	}
	if err := e.lowerAllows(r, l, need); err != nil {
		l.Release()
		return nil, err
	}
	if err := e.copyUp(r, l, vfs.ChangeObject); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}

func (e *Engine) chmodCommon(r *Request, dirfd, pathArg int, mode uint32, flags int) Result {
	if flags&^(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return Fail(unix.EINVAL)
	}
	p, err := r.Path(pathArg)
	if err != nil {
		return Fail(err)
	}
	if flags&unix.AT_EMPTY_PATH != 0 && p == "" {
		if dirfd != atFDCWD {
			return e.fdChmod(r, dirfd, mode, false)
		}
		p = "." // the working directory
	}
	l, err := e.existingAt(r, dirfd, p, flags&unix.AT_SYMLINK_NOFOLLOW == 0, needOwner)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	if l.Type() == unix.S_IFLNK {
		return Fail(unix.EOPNOTSUPP)
	}
	if e.recordsOwnership(r) {
		// The guest's mode, with Linux's rules, kept by ownership.go.
		var st unix.Stat_t
		if err := unix.Fstat(l.Obj.FD(), &st); err != nil {
			return Fail(err)
		}
		return errOf(e.guestChmod(r, hostPath(l, false), -1, &st, mode))
	}
	return errOf(unix.Chmod(procFD(l.Obj.FD()), mode&0o7777))
}

// notPathFD fails with EBADF for an O_PATH descriptor, which fchmod and
// fchown refuse.
func notPathFD(h int) error {
	fl, err := unix.FcntlInt(uintptr(h), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if fl&unix.O_PATH != 0 {
		return unix.EBADF
	}
	return nil
}

// fdChmod serves fchmodat2(fd, "", AT_EMPTY_PATH) and, with fchmod set,
// fchmod(fd) (which, unlike the AT_EMPTY_PATH form, refuses an O_PATH
// descriptor, as the kernel does).
func (e *Engine) fdChmod(r *Request, fd int, mode uint32, fchmod bool) Result {
	h, res, ok := e.dupForChange(r, fd, "")
	if !ok {
		return res
	}
	defer unix.Close(h)
	if e.recordsOwnership(r) {
		if fchmod {
			if err := notPathFD(h); err != nil {
				return Fail(err)
			}
		}
		var st unix.Stat_t
		if err := unix.Fstat(h, &st); err != nil {
			return Fail(err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return Fail(unix.EOPNOTSUPP)
		}
		return errOf(e.guestChmod(r, "", h, &st, mode))
	}
	if fchmod {
		return errOf(unix.Fchmod(h, mode&0o7777))
	}
	return errOf(unix.Chmod(procFD(h), mode&0o7777))
}

// fchmod is notified: the object's mount decides (fs_fdwrite.go).
func sysFchmod(e *Engine, r *Request) Result { return e.fdChmod(r, r.Int(0), r.Uint(1), true) }

// fchown is notified: the object's mount decides (fs_fdwrite.go).
func sysFchown(e *Engine, r *Request) Result {
	return e.fdChown(r, r.Int(0), r.Uint(1), r.Uint(2), true)
}

// fdChown serves fchownat(fd, "", AT_EMPTY_PATH) and, with fchown set,
// fchown(fd) (which refuses an O_PATH descriptor, as the kernel does).
func (e *Engine) fdChown(r *Request, fd int, uid, gid uint32, fchown bool) Result {
	h, res, ok := e.dupForChange(r, fd, "")
	if !ok {
		return res
	}
	defer unix.Close(h)
	if fl, err := unix.FcntlInt(uintptr(h), unix.F_GETFL, 0); fchown && err == nil && fl&unix.O_PATH != 0 {
		return Fail(unix.EBADF) // fchown refuses an O_PATH descriptor, also when recorded
	}
	if e.recordsOwnership(r) {
		// The guest's owners, with Linux's rules: recorded, not applied.
		if fchown {
			if err := notPathFD(h); err != nil {
				return Fail(err)
			}
		}
		var st unix.Stat_t
		if err := unix.Fstat(h, &st); err != nil {
			return Fail(err)
		}
		return errOf(e.guestChown(r, "", h, &st, uid, gid))
	}
	u, g := e.hostOwner(uid, gid)
	if fchown {
		return errOf(unix.Fchown(h, u, g))
	}
	return errOf(unix.Fchownat(h, "", u, g, unix.AT_EMPTY_PATH))
}

func sysChmod(e *Engine, r *Request) Result { return e.chmodCommon(r, atFDCWD, 0, r.Uint(1), 0) }
func sysFchmodat(e *Engine, r *Request) Result {
	return e.chmodCommon(r, r.Int(0), 1, r.Uint(2), 0)
}
func sysFchmodat2(e *Engine, r *Request) Result {
	return e.chmodCommon(r, r.Int(0), 1, r.Uint(2), r.Int(3))
}

// hostOwner maps guest ids in a chown back to host ids (-1 stays -1).
func (e *Engine) hostOwner(uid, gid uint32) (int, int) {
	id := e.cfg.Identity
	u, g := int(int32(uid)), int(int32(gid))
	if id.Virtual {
		if uid == id.UID && uid != identity.Keep {
			u = int(e.hostUID)
		}
		if gid == id.GID && gid != identity.Keep {
			g = int(e.hostGID)
		}
	}
	return u, g
}

func (e *Engine) chownCommon(r *Request, dirfd, pathArg int, uid, gid uint32, flags int) Result {
	if flags&^(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return Fail(unix.EINVAL)
	}
	u, g := e.hostOwner(uid, gid)
	p, err := r.Path(pathArg)
	if err != nil {
		return Fail(err)
	}
	if p == "" && flags&unix.AT_EMPTY_PATH != 0 {
		if dirfd != atFDCWD {
			return e.fdChown(r, dirfd, uid, gid, false)
		}
		p = "." // the working directory
	}
	follow := flags&unix.AT_SYMLINK_NOFOLLOW == 0
	l, err := e.existingAt(r, dirfd, p, follow, needOwner)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	if e.recordsOwnership(r) {
		// The guest's owners, with Linux's rules: recorded, not applied.
		var st unix.Stat_t
		if err := unix.Fstat(l.Obj.FD(), &st); err != nil {
			return Fail(err)
		}
		return errOf(e.guestChown(r, hostPath(l, false), -1, &st, uid, gid))
	}
	return errOf(unix.Fchownat(l.Obj.FD(), "", u, g, unix.AT_EMPTY_PATH))
}

func sysChown(e *Engine, r *Request) Result {
	return e.chownCommon(r, atFDCWD, 0, r.Uint(1), r.Uint(2), 0)
}
func sysLchown(e *Engine, r *Request) Result {
	return e.chownCommon(r, atFDCWD, 0, r.Uint(1), r.Uint(2), unix.AT_SYMLINK_NOFOLLOW)
}
func sysFchownat(e *Engine, r *Request) Result {
	return e.chownCommon(r, r.Int(0), 1, r.Uint(2), r.Uint(3), r.Int(4))
}

// setTimes applies timespecs (nil: now) to an object. Symlinks themselves
// (follow=false) are reached as one name inside their resolved parent.
func (e *Engine) setTimes(r *Request, dirfd, pathArg int, ts []unix.Timespec, follow bool) Result {
	p, err := r.Path(pathArg)
	if err != nil {
		return Fail(err)
	}
	return e.setTimesAt(r, dirfd, p, ts, follow)
}

// setTimesAt is setTimes for path p.
func (e *Engine) setTimesAt(r *Request, dirfd int, p string, ts []unix.Timespec, follow bool) Result {
	need := needOwnerOrWrite // the present time (ATTR_TOUCH)
	if ts != nil && !(ts[0].Nsec == unix.UTIME_NOW && ts[1].Nsec == unix.UTIME_NOW) {
		need = needOwner
	}
	l, err := e.existingAt(r, dirfd, p, follow, need)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	if err := e.mayTouch(r, l.Obj.FD(), ts); err != nil {
		return Fail(err)
	}
	if l.Type() == unix.S_IFLNK && l.Parent != nil {
		return errOf(utimensatRaw(l.Parent.FD(), l.Name, ts, unix.AT_SYMLINK_NOFOLLOW))
	}
	return errOf(utimensatRaw(unix.AT_FDCWD, procFD(l.Obj.FD()), ts, 0))
}

// readTimevals reads struct timeval[2] (or NULL) as timespecs.
func readTimevals(r *Request, addr uint64) ([]unix.Timespec, error) {
	if addr == 0 {
		return nil, nil
	}
	var b [32]byte
	if err := r.Mem.Read(addr, b[:]); err != nil {
		return nil, err
	}
	ts := make([]unix.Timespec, 2)
	for i := 0; i < 2; i++ {
		sec := int64(binary.LittleEndian.Uint64(b[16*i:]))
		usec := int64(binary.LittleEndian.Uint64(b[16*i+8:]))
		if usec < 0 || usec >= 1000000 {
			return nil, unix.EINVAL
		}
		ts[i] = unix.Timespec{Sec: sec, Nsec: usec * 1000}
	}
	return ts, nil
}

func sysUtime(e *Engine, r *Request) Result {
	var ts []unix.Timespec
	if r.Ptr(1) != 0 {
		var b [16]byte
		if err := r.Mem.Read(r.Ptr(1), b[:]); err != nil {
			return Fail(err)
		}
		ts = []unix.Timespec{{Sec: int64(binary.LittleEndian.Uint64(b[0:]))}, {Sec: int64(binary.LittleEndian.Uint64(b[8:]))}}
	}
	return e.setTimes(r, atFDCWD, 0, ts, true)
}

func sysUtimes(e *Engine, r *Request) Result {
	ts, err := readTimevals(r, r.Ptr(1))
	if err != nil {
		return Fail(err)
	}
	return e.setTimes(r, atFDCWD, 0, ts, true)
}

func sysFutimesat(e *Engine, r *Request) Result {
	ts, err := readTimevals(r, r.Ptr(2))
	if err != nil {
		return Fail(err)
	}
	if r.Ptr(1) == 0 {
		return e.fdTimes(r, r.Int(0), ts)
	}
	return e.setTimes(r, r.Int(0), 1, ts, true)
}

// fdTimes sets the times of a guest descriptor (utimensat with a NULL path).
func (e *Engine) fdTimes(r *Request, fd int, ts []unix.Timespec) Result {
	if fd == atFDCWD {
		return Fail(unix.EFAULT)
	}
	h, res, ok := e.dupForChange(r, fd, "")
	if !ok {
		return res
	}
	defer unix.Close(h)
	if err := e.mayTouch(r, h, ts); err != nil {
		return Fail(err)
	}
	return errOf(utimensatRaw(h, "", ts, 0))
}

// mayTouch checks a virtual identity's change of the times of the object
// fd names by the guest's owner, as the kernel's may_setattr and
// setattr_prepare do: times other than two UTIME_NOW (ATTR_TIMES_SET)
// need the owner or CAP_FOWNER (EPERM); the present time (ATTR_TOUCH)
// needs the owner, CAP_FOWNER or write permission (EACCES).
func (e *Engine) mayTouch(r *Request, fd int, ts []unix.Timespec) error {
	c := r.Proc.Creds()
	if !e.cfg.Identity.Virtual || c.Has(identity.CapFowner) {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	ov := e.currentOwner("", fd, &st)
	if ov.uid == c.FSUID {
		return nil
	}
	if ts != nil && !(ts[0].Nsec == unix.UTIME_NOW && ts[1].Nsec == unix.UTIME_NOW) {
		return e.refuse(r, unix.EPERM, "setting times of an object owned by %d", ov.uid)
	}
	return e.permittedObj(r, "", fd, &st, permWrite, false)
}

func sysUtimensat(e *Engine, r *Request) Result {
	// The kernel's order (fs/utimes.c): the times are read, two
	// UTIME_OMIT succeed at once ("we must not even check the path"),
	// then the flags are checked, the object is found, and only then
	// are the nanoseconds checked (vfs_utimes).
	flags := r.Int(3)
	var ts []unix.Timespec
	if r.Ptr(2) != 0 {
		var b [32]byte
		if err := r.Mem.Read(r.Ptr(2), b[:]); err != nil {
			return Fail(err)
		}
		ts = make([]unix.Timespec, 2)
		for i := 0; i < 2; i++ {
			ts[i] = unix.Timespec{Sec: int64(binary.LittleEndian.Uint64(b[16*i:])), Nsec: int64(binary.LittleEndian.Uint64(b[16*i+8:]))}
		}
		if ts[0].Nsec == unix.UTIME_OMIT && ts[1].Nsec == unix.UTIME_OMIT {
			return Ok(0)
		}
	}
	if flags&^(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return Fail(unix.EINVAL)
	}
	bad := false
	for _, t := range ts {
		if t.Nsec != unix.UTIME_NOW && t.Nsec != unix.UTIME_OMIT && (t.Nsec < 0 || t.Nsec >= 1e9) {
			bad = true
		}
	}
	fdCase := r.Ptr(1) == 0
	cwdCase := false
	if !fdCase {
		p, err := r.Path(1)
		if err != nil {
			return Fail(err)
		}
		if p == "" && flags&unix.AT_EMPTY_PATH == 0 {
			return Fail(unix.ENOENT)
		}
		fdCase = p == "" && r.Int(0) != atFDCWD
		cwdCase = p == "" && r.Int(0) == atFDCWD
	}
	if fdCase {
		if bad && r.Int(0) != atFDCWD {
			h, err := e.dupObject(r, r.Int(0))
			if err != nil {
				return Fail(err)
			}
			unix.Close(h)
			return Fail(unix.EINVAL)
		}
		return e.fdTimes(r, r.Int(0), ts)
	}
	if cwdCase {
		if bad {
			return Fail(unix.EINVAL)
		}
		return e.setTimesAt(r, atFDCWD, ".", ts, true) // the working directory
	}
	if bad {
		l, err := e.resolveArg(r, r.Int(0), 1, followIf(flags&unix.AT_SYMLINK_NOFOLLOW == 0))
		if err != nil {
			return Fail(err)
		}
		defer l.Release()
		if !l.Exists() {
			return Fail(unix.ENOENT)
		}
		return Fail(unix.EINVAL)
	}
	return e.setTimes(r, r.Int(0), 1, ts, flags&unix.AT_SYMLINK_NOFOLLOW == 0)
}

func sysTruncate(e *Engine, r *Request) Result {
	length := int64(r.Args[1])
	if length < 0 {
		return Fail(unix.EINVAL)
	}
	l, err := e.existing(r, atFDCWD, 0, true, needWrite)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	if l.IsDir() {
		return Fail(unix.EISDIR)
	}
	if err := e.permitted(r, l, permWrite, false); err != nil {
		return Fail(err)
	}
	return errOf(unix.Truncate(procFD(l.Obj.FD()), length))
}
