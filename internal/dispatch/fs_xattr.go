package dispatch

import (
	"bytes"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

func init() {
	register(sysGetxattr, "getxattr", "lgetxattr")
	register(sysSetxattr, "setxattr", "lsetxattr")
	register(sysListxattr, "listxattr", "llistxattr")
	register(sysRemovexattr, "removexattr", "lremovexattr")
	register(sysFgetxattr, "fgetxattr")
	register(sysFsetxattr, "fsetxattr")
	register(sysFlistxattr, "flistxattr")
	register(sysFremovexattr, "fremovexattr")
	register(sysInotifyAddWatch, "inotify_add_watch")
}

const xattrSizeMax = 65536

// kbox's ownership record (ownership.go) is kbox's, not the guest's: the
// guest can neither set nor remove it, through any call (EPERM), and does
// not see it: getxattr answers ENODATA and listxattr leaves it out.
// Otherwise a guest could forge the owner and set-id bits kbox reports
// for a file, and a copy with its extended attributes (cp -a, tar
// --xattrs) would try to copy the record instead of letting kbox record
// the chown and chmod the copy makes.

// xattrToChange reads the name (argument 1) of an attribute the call
// sets or removes, refusing kbox's ownership record; ok=false: res is the
// answer.
func (e *Engine) xattrToChange(r *Request) (name string, res Result, ok bool) {
	name, err := xattrName(r, 1)
	if err != nil {
		return "", Fail(err), false
	}
	if name == overrideXattr {
		return "", e.denied(r, unix.EPERM, strconv.Quote(name)+" is kbox's ownership record"), false
	}
	return name, Result{}, true
}

// hideRecord removes kbox's ownership record from a NUL-separated name list.
func hideRecord(list []byte) []byte {
	out := list[:0:0]
	for _, n := range bytes.SplitAfter(list, []byte{0}) {
		if len(n) > 0 && string(bytes.TrimSuffix(n, []byte{0})) != overrideXattr {
			out = append(out, n...)
		}
	}
	return out
}

// getxattrOut completes a getxattr-family call: name is hidden when it is
// kbox's record; otherwise get fills buf (at most xattrSizeMax bytes) and
// the value goes to the guest buffer at argument valArg of size sizeArg.
func (e *Engine) getxattrOut(r *Request, name string, valArg, sizeArg int, get func(buf []byte) (int, error)) Result {
	if name == overrideXattr {
		return Fail(unix.ENODATA)
	}
	size := int(min(r.Args[sizeArg], xattrSizeMax))
	buf := make([]byte, size)
	n, err := get(buf)
	if err != nil {
		return Fail(err)
	}
	if size > 0 {
		if err := r.Mem.Write(r.Ptr(valArg), buf[:n]); err != nil {
			return Fail(err)
		}
	}
	return Ok(int64(n))
}

// listxattrOut completes a listxattr-family call: the full list is read
// (list fills buf), kbox's record removed, and the rest returned as the
// kernel would for a guest buffer at argument listArg of size sizeArg
// (size 0: only the length; too small: ERANGE).
func (e *Engine) listxattrOut(r *Request, listArg, sizeArg int, list func(buf []byte) (int, error)) Result {
	buf := make([]byte, xattrListMax)
	n, err := list(buf)
	if err != nil {
		return Fail(err)
	}
	names := hideRecord(buf[:n])
	size := r.Args[sizeArg]
	switch {
	case size == 0:
		return Ok(int64(len(names)))
	case size < uint64(len(names)):
		return Fail(unix.ERANGE)
	}
	if err := r.Mem.Write(r.Ptr(listArg), names); err != nil {
		return Fail(err)
	}
	return Ok(int64(len(names)))
}

// readXattrValue reads a setxattr-family value (argument valArg, size
// sizeArg) from guest memory.
func readXattrValue(r *Request, valArg, sizeArg int) ([]byte, error) {
	size := r.Args[sizeArg]
	if size > xattrSizeMax {
		return nil, unix.E2BIG
	}
	val := make([]byte, size)
	if size > 0 {
		if err := r.Mem.Read(r.Ptr(valArg), val); err != nil {
			return nil, err
		}
	}
	return val, nil
}

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
		if err := e.lowerAllows(r, l, needWrite); err != nil {
			l.Release()
			return nil, "", err
		}
		if err := e.copyUp(r, l, vfs.ChangeObject); err != nil {
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
	return e.getxattrOut(r, name, 2, 3, func(buf []byte) (int, error) {
		if e.xattrFollow(r) {
			return unix.Getxattr(hp, name, buf)
		}
		return unix.Lgetxattr(hp, name, buf)
	})
}

func sysSetxattr(e *Engine, r *Request) Result {
	name, res, ok := e.xattrToChange(r)
	if !ok {
		return res
	}
	val, err := readXattrValue(r, 2, 3)
	if err != nil {
		return Fail(err)
	}
	flags := r.Int(4)
	l, hp, err := e.xattrTarget(r, true)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	if l.Type() != unix.S_IFLNK {
		if res, ok := e.aclSet(r, hp, -1, name, val); ok {
			return res // a mode in ACL form (ownership.go)
		}
	}
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
	return e.listxattrOut(r, 1, 2, func(buf []byte) (int, error) {
		if e.xattrFollow(r) {
			return unix.Listxattr(hp, buf)
		}
		return unix.Llistxattr(hp, buf)
	})
}

func sysRemovexattr(e *Engine, r *Request) Result {
	name, res, ok := e.xattrToChange(r)
	if !ok {
		return res
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

// The descriptor forms run on kbox's duplicate of the descriptor; the
// changing ones after the mount check of fs_fdwrite.go.

func sysFgetxattr(e *Engine, r *Request) Result {
	name, err := xattrName(r, 1)
	if err != nil {
		return Fail(err)
	}
	h, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(h)
	return e.getxattrOut(r, name, 2, 3, func(buf []byte) (int, error) { return unix.Fgetxattr(h, name, buf) })
}

func sysFlistxattr(e *Engine, r *Request) Result {
	h, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(h)
	return e.listxattrOut(r, 1, 2, func(buf []byte) (int, error) { return unix.Flistxattr(h, buf) })
}

func sysFsetxattr(e *Engine, r *Request) Result {
	name, res, ok := e.xattrToChange(r)
	if !ok {
		return res
	}
	val, err := readXattrValue(r, 2, 3)
	if err != nil {
		return Fail(err)
	}
	h, res, ok := e.dupForChange(r, r.Int(0), "")
	if !ok {
		return res
	}
	defer unix.Close(h)
	if res, ok := e.aclSet(r, "", h, name, val); ok {
		return res // a mode in ACL form (ownership.go)
	}
	return errOf(unix.Fsetxattr(h, name, val, r.Int(4)))
}

func sysFremovexattr(e *Engine, r *Request) Result {
	name, res, ok := e.xattrToChange(r)
	if !ok {
		return res
	}
	h, res, ok := e.dupForChange(r, r.Int(0), "")
	if !ok {
		return res
	}
	defer unix.Close(h)
	return errOf(unix.Fremovexattr(h, name))
}

// inotifyAllBits is the kernel's ALL_INOTIFY_BITS.
const inotifyAllBits = unix.IN_ALL_EVENTS | unix.IN_UNMOUNT | unix.IN_Q_OVERFLOW | unix.IN_IGNORED | unix.IN_ONLYDIR |
	unix.IN_DONT_FOLLOW | unix.IN_EXCL_UNLINK | unix.IN_MASK_CREATE | unix.IN_MASK_ADD | unix.IN_ISDIR | unix.IN_ONESHOT

// sysInotifyAddWatch resolves the path in the guest and adds the watch
// on kbox's duplicate of the inotify descriptor, in the kernel's order:
// the mask (EINVAL), the descriptor (EBADF; not an inotify instance:
// EINVAL), then the path.
func sysInotifyAddWatch(e *Engine, r *Request) Result {
	mask := r.Uint(2)
	if mask&unix.IN_MASK_ADD != 0 && mask&unix.IN_MASK_CREATE != 0 || mask&inotifyAllBits == 0 {
		return Fail(unix.EINVAL)
	}
	ifd, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(ifd)
	if target, err := readlinkProcFD(ifd); err != nil || target != "anon_inode:inotify" {
		return Fail(unix.EINVAL)
	}
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
	hostMask := mask
	if l.Type() == unix.S_IFLNK {
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
