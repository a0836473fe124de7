package dispatch

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/vfs"
)

// Changes through a descriptor. Path-based calls that change a file check
// the mount the path resolves through (writable). A descriptor has no
// path, but it came from one: the guest opened it through kbox (which
// checked the open itself, so it writes only where the guest may write),
// or inherited it. Calls that change an object's metadata through a
// descriptor opened for reading — fchmod, fchown, the AT_EMPTY_PATH forms
// of fchmodat2 and fchownat, futimens, fsetxattr, fremovexattr, the inode
// ioctls — need no write access to the descriptor, only ownership of the
// file, so each of them asks fdChangeCheck which mount the object belongs
// to, and acts on kbox's duplicate of the descriptor, never on the
// guest's number (which another thread could point elsewhere meanwhile).
//
// Calls that need a descriptor open for writing (write, ftruncate,
// fallocate, copy_file_range and FICLONE into it) stay in the kernel: an
// open for writing on a read-only mount never succeeds in the first place.

// fdChangeCheck decides whether the guest may change the object host
// descriptor h (kbox's duplicate of a guest descriptor) names. The object's
// host path, as the kernel reports it, is mapped back to the guest's mount
// table: the mount with the longest host directory containing it decides
// (vfs.Namespace.MountOfHost), so a read-only bind inside a writable root
// is read-only however the file was reached. It returns 0, or the errno
// and a reason for -v:
//
//   - a read-only mount: EROFS;
//   - a file the guest's mounts do not reach (an inherited descriptor of a
//     host file, a file under a mount point's shadowed directory): EROFS,
//     as the guest cannot change what it cannot name;
//   - a pipe or socket: allowed (its inode belongs to that object alone);
//   - an unlinked file: judged by the directory it was unlinked from;
//     unless it lives on no mount of kbox's namespace at all (memfd_create,
//     which no path reaches): allowed;
//   - any other kernel object (anon_inode:..., one inode the kernel shares
//     between every eventfd, timerfd, epoll instance of the host): EPERM.
func (e *Engine) fdChangeCheck(ctx *vfs.Context, h int) (unix.Errno, string) {
	var st unix.Stat_t
	if err := unix.Fstat(h, &st); err != nil {
		return abi.Errno(err, unix.EIO), "fstat of the descriptor"
	}
	target, err := readlinkProcFD(h)
	if err != nil {
		return abi.Errno(err, unix.EIO), "reading the descriptor's path"
	}
	if !strings.HasPrefix(target, "/") {
		if strings.HasPrefix(target, "pipe:[") || strings.HasPrefix(target, "socket:[") {
			return 0, ""
		}
		return unix.EPERM, "the descriptor names the kernel object " + strconv.Quote(target) + ", not a file of the guest"
	}
	if st.Nlink == 0 && strings.HasSuffix(target, " (deleted)") {
		if !mountAttached(h) {
			return 0, "" // memfd: no path reaches it
		}
		target = strings.TrimSuffix(target, " (deleted)")
	}
	if _, lower := e.ns.LowerOfHost(target); lower {
		return unix.EROFS, "the descriptor names " + strconv.Quote(target) + ", a file of the overlay's lower layer (never changed)"
	}
	m, g, ok := e.ns.MountOfHost(target)
	switch {
	case !ok:
		return unix.EROFS, "the descriptor names " + strconv.Quote(target) + ", outside the guest's mounts"
	case e.ns.ReadOnlyFor(ctx, m, g):
		return unix.EROFS, "the descriptor names " + strconv.Quote(target) + ", on the read-only mount " + m.Guest
	}
	return 0, ""
}

// dupForChange duplicates guest descriptor fd for a call that changes the
// object it names, after fdChangeCheck. ok=false: res is the answer (the
// refusal is logged for -v, prefixed with what when set).
func (e *Engine) dupForChange(r *Request, fd int, what string) (h int, res Result, ok bool) {
	h, err := e.dupObject(r, fd) // a symlink's O_PATH stand-in: the symlink (fs_opath.go)
	if err != nil {
		return -1, Fail(err), false
	}
	if up, err := e.copyUpFD(r, h); err != nil {
		unix.Close(h)
		return -1, Fail(err), false
	} else if up >= 0 {
		unix.Close(h)
		h = up
	}
	if res, ok := e.changeCheck(r, h, fd, what); !ok {
		unix.Close(h)
		return -1, res, false
	}
	return h, Result{}, true
}

// copyUpFD copies up the file host descriptor h names when it is a file
// of an overlay's lower layer, as overlayfs does for a change through a
// descriptor (fchmod of a file opened for reading): it returns a
// descriptor of the upper layer's copy opened as h is, or -1 when h is
// not a lower file. The guest's own descriptor keeps naming the lower
// file (docs/overlay.md).
func (e *Engine) copyUpFD(r *Request, h int) (int, error) {
	if e.ns.Overlay() == nil {
		return -1, nil
	}
	target, err := readlinkProcFD(h)
	if err != nil {
		return -1, nil
	}
	g, lower := e.ns.LowerOfHost(target)
	if !lower {
		return -1, nil
	}
	var hst, lst unix.Stat_t
	if err := unix.Fstat(h, &hst); err != nil {
		return -1, err
	}
	l, err := e.ns.Resolve(e.canonicalCtx(r), "", g, 0)
	if err != nil {
		return -1, err
	}
	defer l.Release()
	switch {
	case l.Obj == nil || unix.Fstat(l.Obj.FD(), &lst) != nil || lst.Mode&unix.S_IFMT != hst.Mode&unix.S_IFMT:
		// The path names no such object now: the descriptor's cannot be
		// copied up (it stays unchanged, as the lower layer always is).
		e.denied(r, unix.EROFS, "change through a descriptor of "+g+": the overlay's lower file is no longer at that path")
		return -1, unix.EROFS
	case lst.Dev == hst.Dev && lst.Ino == hst.Ino:
		if err := e.copyUp(r, l, vfs.ChangeObject); err != nil {
			return -1, err
		}
	case !l.Upper():
		e.denied(r, unix.EROFS, "change through a descriptor of "+g+": another lower file is at that path now")
		return -1, unix.EROFS
		// Otherwise the upper layer's object at the path is the copy made
		// since the descriptor was opened (a directory copied up as the
		// parent of a change in it): the change goes there, as in
		// overlayfs, where the descriptor names the copied-up inode.
	}
	fl, err := unix.FcntlInt(uintptr(h), unix.F_GETFL, 0)
	if err != nil {
		return -1, err
	}
	if fl&unix.O_PATH != 0 {
		return unix.FcntlInt(uintptr(l.Obj.FD()), unix.F_DUPFD_CLOEXEC, 0)
	}
	return unix.Open(procFD(l.Obj.FD()), fl&(unix.O_ACCMODE|unix.O_DIRECTORY)|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
}

// changeCheck is fdChangeCheck of h, kbox's duplicate of guest descriptor
// fd, for a caller that duplicated it itself (to fail with EBADF before
// it reads the call's argument, as the kernel does). ok=false: res is the
// answer (logged for -v, prefixed with what when set).
func (e *Engine) changeCheck(r *Request, h, fd int, what string) (res Result, ok bool) {
	if en, why := e.fdChangeCheck(e.ctx(r), h); en != 0 {
		if what != "" {
			what += " "
		}
		return e.denied(r, en, what+"on descriptor "+strconv.Itoa(fd)+": "+why), false
	}
	return Result{}, true
}

// mountAttached reports whether the mount host descriptor h lives on is in
// kbox's mount namespace (false for the kernel's internal mounts: memfds,
// pipes, anonymous inodes). Unknown (an old kernel): true.
func mountAttached(h int) bool {
	var stx unix.Statx_t
	if err := unix.Statx(h, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx); err != nil || stx.Mask&unix.STATX_MNT_ID == 0 {
		return true
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return true
	}
	defer f.Close()
	want := strconv.FormatUint(stx.Mnt_id, 10) + " "
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), want) {
			return true
		}
	}
	return sc.Err() != nil
}
