package dispatch

import (
	"encoding/binary"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/identity"

	"github.com/kbox-go/kbox/internal/vfs"
)

func init() {
	register(sysOpen, "open")
	register(sysOpenat, "openat")
	register(sysOpenat2, "openat2")
	register(sysCreat, "creat")
}

func sysOpen(e *Engine, r *Request) Result {
	return e.openCommon(r, atFDCWD, 0, uint64(r.Uint(1)), uint32(r.Uint(2)), 0)
}

func sysOpenat(e *Engine, r *Request) Result {
	return e.openCommon(r, r.Int(0), 1, uint64(r.Uint(2)), uint32(r.Uint(3)), 0)
}

func sysCreat(e *Engine, r *Request) Result {
	return e.openCommon(r, atFDCWD, 0, unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC, uint32(r.Uint(1)), 0)
}

// openHowSize is the size of struct open_how in its first version.
const openHowSize = 24

// openHowSizeMax is the largest open_how the kernel accepts (PAGE_SIZE).
const openHowSizeMax = 4096

const resolveKnown = unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_SYMLINKS |
	unix.RESOLVE_BENEATH | unix.RESOLVE_IN_ROOT | abi.ResolveCached

func sysOpenat2(e *Engine, r *Request) Result {
	size := r.Args[3]
	if size < openHowSize {
		return Fail(unix.EINVAL)
	}
	if size > openHowSizeMax {
		return Fail(unix.E2BIG) // the kernel's copy_struct_from_user limit
	}
	buf := make([]byte, size)
	if err := r.Mem.Read(r.Ptr(2), buf); err != nil {
		return Fail(err)
	}
	for _, b := range buf[openHowSize:] {
		if b != 0 {
			return Fail(unix.E2BIG)
		}
	}
	flags := binary.LittleEndian.Uint64(buf[0:])
	mode := binary.LittleEndian.Uint64(buf[8:])
	resolve := binary.LittleEndian.Uint64(buf[16:])
	if resolve&^uint64(resolveKnown) != 0 || flags>>32 != 0 {
		return Fail(unix.EINVAL)
	}
	if mode&^0o7777 != 0 || (mode != 0 && flags&(unix.O_CREAT|unix.O_TMPFILE) == 0) {
		return Fail(unix.EINVAL)
	}
	if resolve&unix.RESOLVE_BENEATH != 0 && resolve&unix.RESOLVE_IN_ROOT != 0 {
		return Fail(unix.EINVAL)
	}
	if resolve&abi.ResolveCached != 0 && flags&(unix.O_CREAT|unix.O_TRUNC|unix.O_TMPFILE) != 0 {
		return Fail(unix.EAGAIN)
	}
	var vf vfs.Flags
	if resolve&unix.RESOLVE_NO_XDEV != 0 {
		vf |= vfs.NoXdev
	}
	if resolve&unix.RESOLVE_NO_MAGICLINKS != 0 {
		vf |= vfs.NoMagicLinks
	}
	if resolve&unix.RESOLVE_NO_SYMLINKS != 0 {
		vf |= vfs.NoSymlinks
	}
	if resolve&unix.RESOLVE_BENEATH != 0 {
		vf |= vfs.Beneath
	}
	if resolve&unix.RESOLVE_IN_ROOT != 0 {
		vf |= vfs.InRoot
	}
	return e.openCommon(r, r.Int(0), 1, flags, uint32(mode), vf)
}

// openCommon implements every open variant: resolve in the guest, then open
// the resolved object relative to kbox's own descriptors and inject it.
func (e *Engine) openCommon(r *Request, dirfd, pathArg int, flags uint64, mode uint32, vf vfs.Flags) Result {
	p, err := r.Path(pathArg)
	if err != nil {
		return Fail(err)
	}
	if flags&unix.O_TMPFILE == unix.O_TMPFILE {
		// O_TMPFILE contains O_DIRECTORY; the path names the directory.
		return e.openTmpfile(r, dirfd, p, flags, mode, vf)
	}
	if flags&unix.O_PATH != 0 {
		// seccomp cannot install an O_PATH descriptor in the guest (ADDFD
		// takes only files that can do I/O), so O_PATH is served with a
		// read-only, non-blocking descriptor of the same object (O_PATH
		// stays in flags for openOnce's decisions, not the host's open).
		// It differs where the object is unreadable (EACCES). A symlink
		// itself (O_NOFOLLOW) gets a stand-in (fs_opath.go).
		flags = unix.O_PATH | unix.O_RDONLY | unix.O_NONBLOCK | flags&(unix.O_CLOEXEC|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	}
	creat := flags&unix.O_CREAT != 0
	excl := creat && flags&unix.O_EXCL != 0
	if flags&unix.O_NOFOLLOW == 0 && !excl {
		vf |= vfs.FollowFinal
	}
	for attempt := 0; attempt < 8; attempt++ {
		res, retry := e.openOnce(r, dirfd, p, flags, mode, vf)
		if !retry {
			return res
		}
	}
	return e.denied(r, unix.EAGAIN, "open of "+p+" kept racing with concurrent changes")
}

func accessWrites(flags uint64) bool {
	acc := flags & unix.O_ACCMODE
	return acc == unix.O_WRONLY || acc == unix.O_RDWR || flags&unix.O_TRUNC != 0
}

// openOnce makes one attempt; retry reports a lost race with a concurrent
// change of the final component.
func (e *Engine) openOnce(r *Request, dirfd int, p string, flags uint64, mode uint32, vf vfs.Flags) (Result, bool) {
	cloexec := flags&unix.O_CLOEXEC != 0
	hostFlags := int(flags&^unix.O_PATH) | unix.O_CLOEXEC
	creds := r.Proc.Creds()
	emulate := e.checksFiles(&creds)
	fast := vfs.ParentOnly
	if emulate {
		fast = 0 // permission checks need the object's status first
	}
	l, err := e.resolveAt(r, dirfd, p, vf|fast)
	if err != nil {
		return Fail(err), false
	}
	if accessWrites(flags) && procMemFile(l) {
		l.Release()
		return e.denied(r, unix.EACCES, "open of "+l.Path+" for writing: another process's memory (fs_procmem.go)"), false
	}
	if l.Deferred {
		// Fast path: one no-follow open of the name in its resolved parent.
		// A symlink there (ELOOP) needs the full walk when it is followed;
		// creating or writing on a read-only mount takes the careful path.
		if !(l.ReadOnly && (accessWrites(flags) || flags&unix.O_CREAT != 0)) {
			var fd int
			if flags&unix.O_CREAT != 0 {
				fd, err = e.createOpen(r, l.Parent.FD(), l.Name, hostFlags|unix.O_NOFOLLOW, mode)
			} else {
				fd, err = e.hostOpen(r, l.Parent.FD(), l.Name, hostFlags|unix.O_NOFOLLOW, mode)
			}
			l.Release()
			// ELOOP, or ENOTDIR with O_DIRECTORY: a symlink the guest
			// wants followed; the careful path follows it.
			symlink := err == unix.ELOOP || (err == unix.ENOTDIR && flags&unix.O_DIRECTORY != 0)
			switch {
			case err == nil:
				return InjectFD(fd, cloexec), false
			case err == unix.EACCES && e.adopts(&creds):
				// Root's own file the host mode refuses: the careful
				// path settles it (perm.go, adopt).
			case !symlink || (vf&vfs.FollowFinal == 0 && flags&unix.O_PATH == 0):
				return Fail(err), false
			}
		} else {
			l.Release()
		}
		if l, err = e.resolveAt(r, dirfd, p, vf); err != nil {
			return Fail(err), false
		}
	}
	defer l.Release()

	if l.Host {
		return e.denied(r, unix.EACCES, "open of "+l.Path+": a file outside the guest's mounts"), false
	}
	if l.Magic {
		// A guest process's pipe/socket/anon inode reached through
		// /proc/<pid>/fd/N: let the kernel follow that one link, as it would.
		fd, err := e.hostOpen(r, l.Parent.FD(), l.Name, hostFlags&^(unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW), 0)
		if err != nil {
			return Fail(err), false
		}
		return InjectFD(fd, cloexec), false
	}

	if res, ok := e.sysvipcFile(l, flags); ok {
		return res, false // the guest's own SysV IPC objects only (ipc.go)
	}
	if res, ok := e.procStatusFile(l, flags); ok {
		return res, false // a guest process's virtual ids (procview.go)
	}

	if !l.Exists() {
		if !(flags&unix.O_CREAT != 0) {
			return Fail(unix.ENOENT), false
		}
		if l.Trailing {
			return Fail(unix.EISDIR), false
		}
		if err := writable(l); err != nil {
			return Fail(err), false
		}
		if err := e.permittedFD(r, l.Parent.FD(), permWrite|permExec); err != nil {
			return Fail(err), false
		}
		if err := e.copyUp(r, l, vfs.ChangeEntry); err != nil {
			return Fail(err), false
		}
		fd, err := e.createFile(r, l.Parent.FD(), l.Name, hostFlags|unix.O_NOFOLLOW, mode)
		switch err {
		case nil:
			return InjectFD(fd, cloexec), false
		case unix.EEXIST:
			if flags&unix.O_EXCL != 0 {
				return Fail(unix.EEXIST), false
			}
			return Result{}, true // appeared meanwhile
		}
		return Fail(err), false
	}

	if flags&unix.O_CREAT != 0 && flags&unix.O_EXCL != 0 {
		return Fail(unix.EEXIST), false
	}
	ftype := l.Type()
	if ftype == unix.S_IFLNK {
		// Not followed (O_NOFOLLOW): only O_PATH may open a symlink itself.
		if flags&unix.O_PATH == 0 {
			return Fail(unix.ELOOP), false
		}
		if flags&unix.O_DIRECTORY != 0 {
			return Fail(unix.ENOTDIR), false
		}
		fd, err := e.symlinkPathFD(r, l)
		if err != nil {
			return Fail(err), false
		}
		return InjectFD(fd, cloexec), false
	}
	if flags&unix.O_DIRECTORY != 0 && ftype != unix.S_IFDIR {
		return Fail(unix.ENOTDIR), false
	}
	if flags&unix.O_CREAT != 0 && ftype == unix.S_IFDIR {
		return Fail(unix.EISDIR), false // open_last_lookups: O_CREAT of a directory
	}
	if ftype == unix.S_IFDIR && (flags&unix.O_ACCMODE != unix.O_RDONLY || flags&unix.O_TRUNC != 0) && flags&unix.O_PATH == 0 {
		return Fail(unix.EISDIR), false
	}
	if accessWrites(flags) {
		if err := writableData(l); err != nil {
			return Fail(err), false
		}
	}
	if emulate || e.adopts(&creds) {
		mask := openMask(flags)
		if flags&unix.O_PATH != 0 && emulate {
			mask = 0 // O_PATH needs no permission on the object itself (open(2))
		}
		if err := e.permitted(r, l, mask, false); err != nil {
			return Fail(err), false
		}
	}
	if emulate && flags&unix.O_NOATIME != 0 && flags&unix.O_PATH == 0 && !creds.Has(identity.CapFowner) &&
		(l.Mount == nil || l.Mount.Kind != vfs.KindProc) {
		// may_open: O_NOATIME by the owner or CAP_FOWNER only (EPERM).
		var st unix.Stat_t
		if err := unix.Fstat(l.Obj.FD(), &st); err != nil {
			return Fail(err), false
		}
		if ov := e.currentOwner(hostPath(l, false), -1, &st); ov.uid != creds.FSUID {
			return e.denied(r, unix.EPERM, "O_NOATIME open of "+l.Path+", owned by another"), false
		}
	}
	if accessWrites(flags) && ftype == unix.S_IFREG {
		// Opening a regular file to write copies it up (overlayfs's
		// ovl_open_need_copy_up: not a device, FIFO or socket).
		if err := e.lowerAllows(r, l, needWrite); err != nil {
			return Fail(err), false
		}
		if err := e.copyUp(r, l, vfs.ChangeObject); err != nil {
			return Fail(err), false
		}
	}
	var fd int
	reopen := hostFlags &^ (unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW)
	if ftype == unix.S_IFDIR {
		fd, err = unix.Openat(l.Obj.FD(), ".", reopen, 0)
	} else {
		// Reopen exactly the inode we resolved through kbox's own descriptor.
		fd, err = e.hostOpen(r, unix.AT_FDCWD, procFD(l.Obj.FD()), reopen, 0)
	}
	if err != nil {
		return Fail(err), false
	}
	return InjectFD(fd, cloexec), false
}

func (e *Engine) openTmpfile(r *Request, dirfd int, p string, flags uint64, mode uint32, vf vfs.Flags) Result {
	l, err := e.resolveAt(r, dirfd, p, vf|vfs.FollowFinal)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	if !l.Exists() {
		return Fail(unix.ENOENT)
	}
	if !l.IsDir() {
		return Fail(unix.ENOTDIR)
	}
	if err := writable(l); err != nil {
		return Fail(err)
	}
	if err := e.permittedFD(r, l.Obj.FD(), permWrite|permExec); err != nil {
		return Fail(err)
	}
	if err := e.copyUp(r, l, vfs.ChangeObject); err != nil {
		return Fail(err)
	}
	fd := -1
	err = e.createAs(r, "O_TMPFILE in "+l.Path, func() error {
		var err error
		fd, err = unix.Openat(l.Obj.FD(), ".", int(flags)|unix.O_CLOEXEC, mode)
		return err
	})
	if err != nil {
		return Fail(err)
	}
	e.created(r, l.Obj.FD(), fd) // the guest's owner (ownership.go)
	return InjectFD(fd, flags&unix.O_CLOEXEC != 0)
}

// hostOpen opens name in dirfd for the guest without letting a FIFO or a
// device stall the supervisor unannounced: it looks at the object first
// (one no-follow fstatat) and, when the open may block, tells the tier
// before opening it. A guest that swaps a regular file for a FIFO between
// the two calls can only stall its own supervisor's leader, and only until
// the FIFO is opened from the other end (which then needs a new leader:
// the guest deadlocks itself).
//
// Only a FIFO opened for reading or writing alone, or a device, can block
// (O_RDWR on a FIFO never does). A FIFO writer is served without holding a
// thread where the tier allows it (see openFIFOWriter).
func (e *Engine) hostOpen(r *Request, dirfd int, name string, flags int, mode uint32) (int, error) {
	if flags&(unix.O_NONBLOCK|unix.O_PATH) == 0 {
		var st unix.Stat_t
		statFlags := unix.AT_SYMLINK_NOFOLLOW
		if flags&unix.O_NOFOLLOW == 0 {
			statFlags = 0
		}
		err := unix.Fstatat(dirfd, name, &st, statFlags)
		if err == nil {
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFREG, unix.S_IFDIR, unix.S_IFLNK:
			case unix.S_IFIFO:
				switch flags & unix.O_ACCMODE {
				case unix.O_RDWR:
				case unix.O_WRONLY:
					if r.Waiting != nil {
						return e.openFIFOWriter(r, dirfd, name, flags, mode, statFlags)
					}
					if err := r.MayBlock(); err != nil {
						return -1, err
					}
				default:
					if err := r.MayBlock(); err != nil {
						return -1, err
					}
				}
			case unix.S_IFCHR:
				if !memDevice(st.Rdev) {
					if err := r.MayBlock(); err != nil {
						return -1, err
					}
				}
			default:
				if err := r.MayBlock(); err != nil {
					return -1, err
				}
			}
		}
	}
	return unix.Openat(dirfd, name, flags, mode)
}

// memDevice reports a character device of Linux's memory class (major
// 1: /dev/null, zero, full, random, urandom, kmsg, mem...), whose open
// never waits: a shell's "> /dev/null" is then served without handing the
// receiving on to a new leader.
func memDevice(rdev uint64) bool { return unix.Major(rdev) == 1 }

// fifoPause bounds the pause between a FIFO writer's attempts: the
// pauses grow to fifoPause, and further with the number of writers waiting
// at once, so that all of them together make about fifoAttemptsPerSecond
// attempts. fifoCheckEvery attempts, a writer checks that the guest still
// waits for it (each check walks the kernel's list of pending
// notifications).
const (
	fifoPause             = 20 * time.Millisecond
	fifoAttemptsPerSecond = 2000
	fifoCheckEvery        = 8
)

// openFIFOWriter opens a FIFO for writing, which blocks until the FIFO has
// a reader, without holding an OS thread meanwhile: a non-blocking open
// succeeds exactly when a reader is there (ENXIO otherwise), so kbox
// retries it, with a growing pause, for as long as the guest waits, then
// clears O_NONBLOCK on the new open file description. A blocked reader is
// woken by the writer's open as natively; a reader that opens and closes
// again between two attempts is not seen (the writer keeps waiting, where
// natively its open would succeed and its first write fail with EPIPE).
// Thousands of guest threads waiting to write to FIFOs therefore cost kbox
// goroutines, not threads, and never a slot a reader needs.
func (e *Engine) openFIFOWriter(r *Request, dirfd int, name string, flags int, mode uint32, statFlags int) (int, error) {
	pause := 100 * time.Microsecond
	waiting := false
	defer func() {
		if waiting {
			e.fifoWriters.Add(-1)
		}
	}()
	for attempt := 1; ; attempt++ {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_NONBLOCK, mode)
		if err == nil {
			fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
			if err == nil {
				_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
			}
			if err != nil {
				unix.Close(fd)
				return -1, err
			}
			return fd, nil
		}
		if err != unix.ENXIO {
			return -1, err
		}
		if !waiting {
			r.MayWait()
			e.fifoWriters.Add(1)
			waiting = true
		}
		if attempt%fifoCheckEvery == 0 {
			var st unix.Stat_t
			if unix.Fstatat(dirfd, name, &st, statFlags) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
				return -1, err // no longer a FIFO: its own ENXIO
			}
			if !r.StillPending() {
				return -1, unix.EINTR
			}
		}
		time.Sleep(pause)
		limit := max(fifoPause, time.Duration(e.fifoWriters.Load())*time.Second/fifoAttemptsPerSecond)
		pause = min(2*pause, limit)
	}
}
