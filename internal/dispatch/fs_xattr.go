package dispatch

import (
	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

func init() {
	register(sysGetxattr, "getxattr", "lgetxattr")
	register(sysSetxattr, "setxattr", "lsetxattr")
	register(sysListxattr, "listxattr", "llistxattr")
	register(sysRemovexattr, "removexattr", "lremovexattr")
	register(sysInotifyAddWatch, "inotify_add_watch")
}

const xattrSizeMax = 65536

// xattrFollow: the l* variants do not follow a final symlink.
func (e *Engine) xattrFollow(r *Request) bool {
	switch e.arch.SyscallName(r.Nr) {
	case "lgetxattr", "lsetxattr", "llistxattr", "lremovexattr":
		return false
	}
	return true
}

func (e *Engine) xattrTarget(r *Request, write bool) (*vfs.Lookup, string, error) {
	follow := e.xattrFollow(r)
	l, err := e.resolveArg(r, atFDCWD, 0, followIf(follow))
	if err != nil {
		return nil, "", err
	}
	if !l.Exists() {
		l.Release()
		return nil, "", unix.ENOENT
	}
	if l.Magic || l.VirtualLink {
		l.Release()
		return nil, "", unix.EACCES
	}
	if write {
		if err := writable(l); err != nil {
			l.Release()
			return nil, "", err
		}
	}
	return l, hostPath(l, follow), nil
}

func xattrName(r *Request, i int) (string, error) {
	name, err := r.Mem.ReadString(r.Ptr(i), 255)
	if err == unix.ENAMETOOLONG || (err == nil && name == "") {
		return "", unix.ERANGE
	}
	return name, err
}

func sysGetxattr(e *Engine, r *Request) Result {
	name, err := xattrName(r, 1)
	if err != nil {
		return Fail(err)
	}
	l, hp, err := e.xattrTarget(r, false)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	size := clampSize(r.Args[3], xattrSizeMax)
	buf := make([]byte, size)
	var n int
	if e.xattrFollow(r) {
		n, err = unix.Getxattr(hp, name, buf)
	} else {
		n, err = unix.Lgetxattr(hp, name, buf)
	}
	if err != nil {
		return Fail(err)
	}
	if size > 0 {
		if err := r.Mem.Write(r.Ptr(2), buf[:n]); err != nil {
			return Fail(err)
		}
	}
	return Ok(int64(n))
}

func sysSetxattr(e *Engine, r *Request) Result {
	name, err := xattrName(r, 1)
	if err != nil {
		return Fail(err)
	}
	size := r.Args[3]
	if size > xattrSizeMax {
		return Fail(unix.E2BIG)
	}
	val := make([]byte, size)
	if size > 0 {
		if err := r.Mem.Read(r.Ptr(2), val); err != nil {
			return Fail(err)
		}
	}
	flags := r.Int(4)
	l, hp, err := e.xattrTarget(r, true)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	if e.xattrFollow(r) {
		return errOf(unix.Setxattr(hp, name, val, flags))
	}
	return errOf(unix.Lsetxattr(hp, name, val, flags))
}

func sysListxattr(e *Engine, r *Request) Result {
	l, hp, err := e.xattrTarget(r, false)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	size := clampSize(r.Args[2], xattrListMax)
	buf := make([]byte, size)
	var n int
	if e.xattrFollow(r) {
		n, err = unix.Listxattr(hp, buf)
	} else {
		n, err = unix.Llistxattr(hp, buf)
	}
	if err != nil {
		return Fail(err)
	}
	if size > 0 {
		if err := r.Mem.Write(r.Ptr(1), buf[:n]); err != nil {
			return Fail(err)
		}
	}
	return Ok(int64(n))
}

func sysRemovexattr(e *Engine, r *Request) Result {
	name, err := xattrName(r, 1)
	if err != nil {
		return Fail(err)
	}
	l, hp, err := e.xattrTarget(r, true)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	if e.xattrFollow(r) {
		return errOf(unix.Removexattr(hp, name))
	}
	return errOf(unix.Lremovexattr(hp, name))
}

func sysInotifyAddWatch(e *Engine, r *Request) Result {
	mask := r.Uint(2)
	follow := mask&unix.IN_DONT_FOLLOW == 0
	l, err := e.resolveArg(r, atFDCWD, 1, followIf(follow))
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	if !l.Exists() {
		return Fail(unix.ENOENT)
	}
	if l.Magic {
		return Fail(unix.EACCES)
	}
	if mask&unix.IN_ONLYDIR != 0 && !l.IsDir() {
		return Fail(unix.ENOTDIR)
	}
	ifd, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(ifd)
	hostMask := mask
	if l.Stat.Mode&unix.S_IFMT == unix.S_IFLNK {
		hostMask |= unix.IN_DONT_FOLLOW
	} else {
		hostMask &^= unix.IN_DONT_FOLLOW
	}
	wd, err := unix.InotifyAddWatch(ifd, hostPath(l, follow), hostMask)
	if err != nil {
		return Fail(err)
	}
	return Ok(int64(wd))
}
