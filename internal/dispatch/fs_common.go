package dispatch

import (
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

const atFDCWD = -100 // AT_FDCWD as the kernel reads a dirfd int

// dirStart returns the canonical guest directory a relative path at dirfd
// starts from ("" for the process cwd).
func (e *Engine) dirStart(r *Request, dirfd int, p string) (string, error) {
	if dirfd == atFDCWD || (len(p) > 0 && p[0] == '/') {
		return "", nil
	}
	g, st, err := e.fdPath(r, dirfd)
	if st.Mode != 0 && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "", unix.ENOTDIR
	}
	if err != nil {
		return "", err
	}
	return g, nil
}

// fdPath maps a guest descriptor to the canonical guest path of what it
// names. A descriptor whose object lies outside every mount (an inherited
// host directory, a deleted directory) has no guest path: EACCES/ENOENT.
func (e *Engine) fdPath(r *Request, fd int) (string, unix.Stat_t, error) {
	var st unix.Stat_t
	h, err := e.dupObject(r, fd)
	if err != nil {
		return "", st, err
	}
	defer unix.Close(h)
	if err := unix.Fstat(h, &st); err != nil {
		return "", st, err
	}
	host, err := readlinkProcFD(h)
	if err != nil {
		return "", st, err
	}
	if len(host) > 10 && host[len(host)-10:] == " (deleted)" {
		return "", st, unix.ENOENT
	}
	g, ok := e.ns.GuestPathOfHost(host)
	if !ok {
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			e.Verbosef("pid %d: descriptor %d names %q, outside the guest namespace", r.Tgid, fd, host)
		}
		return "", st, unix.EACCES
	}
	return g, st, nil
}

func readlinkProcFD(fd int) (string, error) {
	buf := make([]byte, vfs.PathMax)
	n, err := unix.Readlink("/proc/self/fd/"+strconv.Itoa(fd), buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// resolveAt resolves (dirfd, path) for the calling guest process.
func (e *Engine) resolveAt(r *Request, dirfd int, p string, flags vfs.Flags) (*vfs.Lookup, error) {
	if p == "" {
		return nil, unix.ENOENT
	}
	rel := p
	if flags&(vfs.InRoot|vfs.Beneath) != 0 {
		// openat2 scopes even an absolute path to dirfd.
		rel = "."
	}
	start, err := e.dirStart(r, dirfd, rel)
	if err != nil {
		return nil, err
	}
	l, err := e.ns.Resolve(e.ctx(r), start, p, flags)
	r.noteResolved(l, err)
	return l, err
}

// canonicalCtx is the resolver context for canonical guest paths kbox
// stored itself (a cwd, a chroot): they are absolute in the guest
// namespace, not in the process's chroot.
func (e *Engine) canonicalCtx(r *Request) *vfs.Context {
	c := e.ctx(r)
	c.Root = "/"
	return c
}

// resolveArg reads the path at argument i and resolves it against dirfd.
func (e *Engine) resolveArg(r *Request, dirfd, i int, flags vfs.Flags) (*vfs.Lookup, error) {
	p, err := r.Path(i)
	if err != nil {
		return nil, err
	}
	return e.resolveAt(r, dirfd, p, flags)
}

// procFD names one of kbox's own descriptors through procfs, so the kernel
// reaches exactly the object kbox resolved (a kbox-built path, never a
// guest-supplied one).
func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// hostPath returns a kbox-built path to the looked-up object. follow=false
// names a symlink itself (one component inside the resolved parent).
func hostPath(l *vfs.Lookup, follow bool) string {
	if !follow && l.Obj != nil && l.Type() == unix.S_IFLNK && l.Parent != nil {
		return procFD(l.Parent.FD()) + "/" + l.Name
	}
	return procFD(l.Obj.FD())
}

// objectFD returns a descriptor of the looked-up object (opening procfs
// magic objects as the kernel would); close reports whether the caller owns it.
func objectFD(l *vfs.Lookup) (fd int, owned bool, err error) {
	if l.Magic {
		fd, err := unix.Openat(l.Parent.FD(), l.Name, unix.O_PATH|unix.O_CLOEXEC, 0)
		return fd, err == nil, err
	}
	if l.Obj == nil {
		return -1, false, unix.ENOENT
	}
	return l.Obj.FD(), false, nil
}

// writable fails with EROFS when the calling process may not modify the
// looked-up object: it lies on a read-only mount, or in a host procfs
// outside the process's own /proc/<pid> entries (vfs.Namespace.ReadOnlyFor).
func writable(l *vfs.Lookup) error {
	if l.ReadOnly {
		return unix.EROFS
	}
	return nil
}

// writableData is writable for opening an existing object to write its
// data. A device node, FIFO or socket reached through a writable file bind
// (kbox's /dev/null, /dev/tty, ...) may be written; its metadata stays
// read-only (chmod, chown, utimes, xattrs: writable).
func writableData(l *vfs.Lookup) error {
	if l.Mount != nil && l.Mount.File && !l.Mount.ReadOnly {
		switch l.Type() {
		case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
			return nil
		}
	}
	return writable(l)
}

// copyUp gets l ready for the modifying call about to act on it, after
// that call's checks (vfs.Lookup.Prepare): in an overlay the directory
// holding the name (vfs.ChangeEntry) or the object itself
// (vfs.ChangeObject) is copied to the upper layer first, so that the
// call acts on the upper layer's descriptors. Elsewhere it does nothing.
func (e *Engine) copyUp(r *Request, l *vfs.Lookup, c vfs.Change) error {
	if !l.Overlaid() {
		return nil
	}
	if c == vfs.ChangeEntry && !l.Exists() && vfs.ReservedName(l.Name) {
		e.denied(r, unix.EPERM, "creating "+l.Path+": names beginning with "+vfs.WhiteoutPrefix+" are the overlay's (docs/overlay.md)")
		return unix.EPERM
	}
	if c == vfs.ChangeEntry {
		if err := e.lowerDirAllows(r, l); err != nil {
			return err
		}
	}
	if err := l.Prepare(c); err != nil {
		e.Verbosef("pid %d: copy-up for a change of %s: %v", r.Tgid, l.Path, err)
		return err
	}
	return nil
}

func followIf(cond bool) vfs.Flags {
	if cond {
		return vfs.FollowFinal
	}
	return 0
}

// emptyPath applies AT_EMPTY_PATH to a path argument: an empty path names
// dirfd itself. It returns the path to resolve ("." for AT_FDCWD), or a
// host duplicate h >= 0 of dirfd to act on (the caller closes it); an
// empty path without AT_EMPTY_PATH is ENOENT.
func (e *Engine) emptyPath(r *Request, dirfd int, p string, flags int) (string, int, error) {
	if p != "" {
		return p, -1, nil
	}
	if flags&unix.AT_EMPTY_PATH == 0 {
		return "", -1, unix.ENOENT
	}
	if dirfd == atFDCWD {
		return ".", -1, nil
	}
	h, err := e.dupObject(r, dirfd)
	return "", h, err
}
