package dispatch

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

// O_PATH descriptors of symlinks. open(link, O_PATH|O_NOFOLLOW) gives a
// descriptor of the symlink itself; glibc's fchmodat(AT_SYMLINK_NOFOLLOW)
// and lchmod depend on it (tar, dpkg-deb), and so do fstatat, readlinkat,
// fchownat and linkat with AT_EMPTY_PATH.
//
// The in-process tiers install kbox's own O_PATH descriptor of the
// symlink. The seccomp tier cannot: SECCOMP_IOCTL_NOTIF_ADDFD refuses an
// O_PATH file (EBADF), and only O_PATH opens a symlink. There the guest
// gets a stand-in: an unnamed file (O_TMPFILE) in kbox's private exec
// directory, opened with access mode 3 (neither read nor write: read and
// write fail with EBADF as on an O_PATH descriptor), whose content names
// the symlink: a secret of this kbox run, the symlink's device and inode,
// and its canonical guest path. The guest cannot forge one: it cannot
// create files in kbox's exec directory, nor read the secret (the
// stand-in is unreadable through its descriptor and cannot be reopened:
// its /proc/self/fd link names no guest path). Handlers that act on a
// descriptor (dupObject) replace a stand-in with an O_PATH descriptor of
// the symlink, found again by its guest path and checked to be the same
// inode: fstat, fstatat/statx/faccessat2 with AT_EMPTY_PATH, readlinkat,
// linkat with AT_EMPTY_PATH; as a dirfd or for fchdir it is ENOTDIR.
// Deviation: once the symlink is renamed or removed, the stand-in no
// longer finds it (ENOENT), where Linux's descriptor still names it.

// pathStandIn holds what identifies stand-ins of this run.
type pathStandIn struct {
	once   sync.Once
	secret [32]byte
	dev    uint64 // device of the exec directory
	ok     bool
}

var standIns pathStandIn

const standInHeader = 32 + 8 + 8

func (e *Engine) standInInit() bool {
	standIns.once.Do(func() {
		if e.cfg.ExecDir == "" {
			return
		}
		var st unix.Stat_t
		if unix.Stat(e.cfg.ExecDir, &st) != nil {
			return
		}
		if _, err := rand.Read(standIns.secret[:]); err != nil {
			return
		}
		standIns.dev, standIns.ok = st.Dev, true
	})
	return standIns.ok
}

// symlinkPathFD returns a descriptor to install for open(O_PATH) of the
// symlink l.
func (e *Engine) symlinkPathFD(r *Request, l *vfs.Lookup) (int, error) {
	if r.FDs.InstallsOPath() {
		return unix.FcntlInt(uintptr(l.Obj.FD()), unix.F_DUPFD_CLOEXEC, 0)
	}
	if !e.standInInit() {
		e.Verbosef("pid %d: O_PATH descriptor of symlink %s: no private directory for a stand-in", r.Tgid, l.Path)
		return -1, unix.ELOOP
	}
	st, err := l.Stat()
	if err != nil {
		return -1, err
	}
	tmp, err := unix.Open(e.cfg.ExecDir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		e.Verbosef("pid %d: O_PATH descriptor of symlink %s: stand-in: %v", r.Tgid, l.Path, err)
		return -1, err
	}
	defer unix.Close(tmp)
	b := make([]byte, standInHeader, standInHeader+len(l.Path))
	copy(b, standIns.secret[:])
	binary.LittleEndian.PutUint64(b[32:], st.Dev)
	binary.LittleEndian.PutUint64(b[40:], st.Ino)
	b = append(b, l.Path...)
	if n, err := unix.Write(tmp, b); err != nil || n != len(b) {
		if err == nil {
			err = unix.EIO
		}
		return -1, err
	}
	// Access mode 3: no read, no write (see above).
	return unix.Open(procFD(tmp), unix.O_RDWR|unix.O_WRONLY|unix.O_CLOEXEC, 0)
}

// standInPath reports whether host descriptor h is a stand-in of this run
// and returns the symlink's device, inode and guest path.
func standInPath(h int, st *unix.Stat_t) (dev, ino uint64, p string, ok bool) {
	if !standIns.ok || st.Dev != standIns.dev || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 0 ||
		st.Size <= standInHeader || st.Size > standInHeader+vfs.PathMax {
		return 0, 0, "", false
	}
	fd, err := unix.Open(procFD(h), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, "", false
	}
	defer unix.Close(fd)
	b := make([]byte, st.Size+1)
	n, err := unix.Pread(fd, b, 0)
	if err != nil || int64(n) != st.Size || !bytes.Equal(b[:32], standIns.secret[:]) {
		return 0, 0, "", false
	}
	return binary.LittleEndian.Uint64(b[32:]), binary.LittleEndian.Uint64(b[40:]), string(b[standInHeader:n]), true
}

// dupObject is DupFD for calls that act on the object a guest descriptor
// names: a stand-in becomes an O_PATH descriptor of its symlink.
func (e *Engine) dupObject(r *Request, fd int) (int, error) {
	h, err := r.FDs.DupFD(fd)
	if err != nil || !standIns.ok {
		return h, err
	}
	var st unix.Stat_t
	if unix.Fstat(h, &st) != nil {
		return h, nil
	}
	dev, ino, p, ok := standInPath(h, &st)
	if !ok {
		return h, nil
	}
	unix.Close(h)
	l, err := e.ns.Resolve(e.canonicalCtx(r), "", p, 0)
	if err != nil {
		return -1, err
	}
	defer l.Release()
	lst, err := l.Stat()
	if err != nil || l.Type() != unix.S_IFLNK || lst.Dev != dev || lst.Ino != ino {
		e.Verbosef("pid %d: descriptor %d: symlink %s is gone", r.Tgid, fd, p)
		return -1, unix.ENOENT
	}
	return unix.FcntlInt(uintptr(l.Obj.FD()), unix.F_DUPFD_CLOEXEC, 0)
}

// StandIn implements vfs.StandInView: the guest path of the symlink a
// stand-in names, for readlink of /proc/<pid>/fd/N. dirfd/name is the fd
// link (only opened O_PATH: no device or FIFO is opened), text its host
// text, that of a deleted file for a stand-in.
func (t *ProcTable) StandIn(dirfd int, name, text string) (string, bool) {
	if !standIns.ok || !strings.HasSuffix(text, " (deleted)") {
		return "", false
	}
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return "", false
	}
	_, _, p, ok := standInPath(fd, &st)
	return p, ok
}
