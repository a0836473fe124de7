package dispatch

import (
	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

func init() {
	register(sysMkdir, "mkdir")
	register(sysMkdirat, "mkdirat")
	register(sysMknod, "mknod")
	register(sysMknodat, "mknodat")
	register(sysUnlink, "unlink")
	register(sysUnlinkat, "unlinkat")
	register(sysRmdir, "rmdir")
	register(sysRename, "rename")
	register(sysRenameat, "renameat")
	register(sysRenameat2, "renameat2")
	register(sysLink, "link")
	register(sysLinkat, "linkat")
	register(sysSymlink, "symlink")
	register(sysSymlinkat, "symlinkat")
}

// createTarget resolves the path of an object to be created: it must not
// exist (whatever it is: a trailing slash follows no symlink there) and
// its last component must be a plain name; a trailing slash is allowed
// for a directory only (ENOENT otherwise), as Linux's filename_create.
func (e *Engine) createTarget(r *Request, dirfd, pathArg int, dir bool) (*vfs.Lookup, error) {
	l, err := e.resolveArg(r, dirfd, pathArg, vfs.ExactLast)
	if err != nil {
		return nil, err
	}
	if l.Exists() || l.Last != vfs.LastNorm {
		l.Release()
		return nil, unix.EEXIST
	}
	if l.Trailing && !dir {
		l.Release()
		return nil, unix.ENOENT
	}
	if err := writable(l); err != nil {
		l.Release()
		return nil, err
	}
	if err := e.permittedFD(r, l.Parent.FD(), permWrite|permExec); err != nil {
		l.Release()
		return nil, err
	}
	if err := e.copyUp(r, l, vfs.ChangeEntry); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}

func (e *Engine) mkdirCommon(r *Request, dirfd, pathArg int, mode uint32) Result {
	l, err := e.createTarget(r, dirfd, pathArg, true)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	if err := e.createAs(r, "mkdir "+l.Path, func() error { return unix.Mkdirat(l.Parent.FD(), l.Name, mode) }); err != nil {
		return Fail(err)
	}
	e.createdAt(r, l.Parent.FD(), l.Name) // the guest's owner (ownership.go)
	return Ok(0)
}

func sysMkdir(e *Engine, r *Request) Result   { return e.mkdirCommon(r, atFDCWD, 0, r.Uint(1)) }
func sysMkdirat(e *Engine, r *Request) Result { return e.mkdirCommon(r, r.Int(0), 1, r.Uint(2)) }

func (e *Engine) mknodCommon(r *Request, dirfd, pathArg int, mode uint32, dev uint64) Result {
	// may_mknod (fs/namei.c), before the lookup: a directory is EPERM,
	// an unknown type EINVAL.
	switch mode & unix.S_IFMT {
	case 0, unix.S_IFREG, unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFCHR, unix.S_IFBLK:
	case unix.S_IFDIR:
		return Fail(unix.EPERM)
	default:
		return Fail(unix.EINVAL)
	}
	l, err := e.createTarget(r, dirfd, pathArg, false)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	if t := mode & unix.S_IFMT; t == unix.S_IFCHR || t == unix.S_IFBLK {
		// After the name's and the directory's checks, as vfs_mknod's
		// CAP_MKNOD check.
		return e.denied(r, unix.EPERM, "device nodes cannot be created in the guest")
	}
	if l.Trailing {
		return Fail(unix.ENOENT)
	}
	if err := e.createAs(r, "mknod "+l.Path, func() error { return unix.Mknodat(l.Parent.FD(), l.Name, mode, 0) }); err != nil {
		return Fail(err)
	}
	e.createdAt(r, l.Parent.FD(), l.Name)
	return Ok(0)
}

func sysMknod(e *Engine, r *Request) Result {
	return e.mknodCommon(r, atFDCWD, 0, r.Uint(1), r.Args[2])
}
func sysMknodat(e *Engine, r *Request) Result {
	return e.mknodCommon(r, r.Int(0), 1, r.Uint(2), r.Args[3])
}

// removeTarget resolves an existing object to unlink or rmdir. A trailing
// slash follows no symlink in the last component; unlink of a name with
// one fails (EISDIR for a directory, ENOTDIR for anything else), and
// rmdir leaves the kernel to refuse a non-directory.
func (e *Engine) removeTarget(r *Request, dirfd, pathArg int, dir bool) (*vfs.Lookup, error) {
	l, err := e.resolveArg(r, dirfd, pathArg, vfs.ExactLast)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*vfs.Lookup, error) { l.Release(); return nil, err }
	switch l.Last {
	case vfs.LastDot:
		if dir {
			return fail(unix.EINVAL)
		}
		return fail(unix.EISDIR)
	case vfs.LastDotDot:
		if dir {
			return fail(unix.ENOTEMPTY)
		}
		return fail(unix.EISDIR)
	case vfs.LastRoot:
		if dir {
			return fail(unix.EBUSY)
		}
		return fail(unix.EISDIR)
	}
	if !l.Exists() {
		return fail(unix.ENOENT)
	}
	if l.Trailing && !dir {
		if l.IsDir() {
			return fail(unix.EISDIR)
		}
		return fail(unix.ENOTDIR)
	}
	if l.MountPoint {
		return fail(unix.EBUSY)
	}
	if l.Magic || l.VirtualLink {
		return fail(unix.EACCES)
	}
	if err := writable(l); err != nil {
		return fail(err)
	}
	if err := e.permittedFD(r, l.Parent.FD(), permWrite|permExec); err != nil {
		return fail(err)
	}
	if err := e.mayDelete(r, l.Parent.FD(), l.Obj.FD()); err != nil {
		return fail(err)
	}
	if err := e.copyUp(r, l, vfs.ChangeEntry); err != nil {
		return fail(err)
	}
	return l, nil
}

func (e *Engine) unlinkCommon(r *Request, dirfd, pathArg, flags int) Result {
	if flags&^unix.AT_REMOVEDIR != 0 {
		return Fail(unix.EINVAL)
	}
	dir := flags&unix.AT_REMOVEDIR != 0
	l, err := e.removeTarget(r, dirfd, pathArg, dir)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	err = l.Unlink(flags) // unlinkat(2), or an overlay's whiteout
	if err == nil {
		e.forgetRecord(l)
	}
	if dir && err == nil {
		e.mutated()
	}
	return errOf(err)
}

// forgetRecord drops the in-memory ownership record (ownership.go: kept
// for symlinks and where the file system has no user xattrs) of the
// object l once it is gone: its inode number may be given to the next
// file created, which must not inherit the record (tar replacing a
// symlink it had chowned then showed a new file with the link's mode).
func (e *Engine) forgetRecord(l *vfs.Lookup) {
	if l.Obj == nil {
		return
	}
	var st unix.Stat_t
	if unix.Fstat(l.Obj.FD(), &st) != nil || st.Nlink != 0 {
		return
	}
	e.owners.mu.Lock()
	delete(e.owners.mem, keyOf(&st))
	e.owners.mu.Unlock()
}

func sysUnlink(e *Engine, r *Request) Result   { return e.unlinkCommon(r, atFDCWD, 0, 0) }
func sysRmdir(e *Engine, r *Request) Result    { return e.unlinkCommon(r, atFDCWD, 0, unix.AT_REMOVEDIR) }
func sysUnlinkat(e *Engine, r *Request) Result { return e.unlinkCommon(r, r.Int(0), 1, r.Int(2)) }

func (e *Engine) renameCommon(r *Request, olddir, oldArg, newdir, newArg int, flags uint32) Result {
	if flags&^(unix.RENAME_NOREPLACE|unix.RENAME_EXCHANGE|unix.RENAME_WHITEOUT) != 0 ||
		(flags&unix.RENAME_EXCHANGE != 0 && flags&(unix.RENAME_NOREPLACE|unix.RENAME_WHITEOUT) != 0) {
		return Fail(unix.EINVAL)
	}
	if flags&unix.RENAME_WHITEOUT != 0 {
		return e.denied(r, unix.EPERM, "RENAME_WHITEOUT creates a device node")
	}
	oldL, err := e.resolveArg(r, olddir, oldArg, vfs.ExactLast)
	if err != nil {
		return Fail(err)
	}
	defer oldL.Release()
	newL, err := e.resolveArg(r, newdir, newArg, vfs.ExactLast)
	if err != nil {
		return Fail(err)
	}
	defer newL.Release()
	if oldL.Last != vfs.LastNorm || newL.Last != vfs.LastNorm {
		return Fail(unix.EBUSY)
	}
	if !oldL.Exists() {
		return Fail(unix.ENOENT)
	}
	if !oldL.IsDir() && (oldL.Trailing || newL.Trailing && flags&unix.RENAME_EXCHANGE == 0) {
		return Fail(unix.ENOTDIR)
	}
	if flags&unix.RENAME_EXCHANGE != 0 && !newL.Exists() {
		return Fail(unix.ENOENT)
	}
	if flags&unix.RENAME_EXCHANGE != 0 && newL.Trailing && !newL.IsDir() {
		return Fail(unix.ENOTDIR)
	}
	if oldL.MountPoint || newL.MountPoint {
		return Fail(unix.EBUSY)
	}
	if oldL.Magic || oldL.VirtualLink || newL.Magic || newL.VirtualLink {
		return Fail(unix.EXDEV)
	}
	if oldL.Mount != newL.Mount {
		return Fail(unix.EXDEV)
	}
	if err := writable(oldL); err != nil {
		return Fail(err)
	}
	if err := writable(newL); err != nil {
		return Fail(err)
	}
	if err := e.mayRename(r, oldL, newL); err != nil {
		return Fail(err)
	}
	for _, l := range []*vfs.Lookup{oldL, newL} {
		if err := e.lowerDirAllows(r, l); err != nil {
			return Fail(err)
		}
	}
	err = vfs.Rename(oldL, newL, uint(flags)) // renameat2(2), with an overlay's copy-up
	if err == nil {
		e.forgetRecord(newL) // a replaced object
		e.mutated()
	}
	return errOf(err)
}

func sysRename(e *Engine, r *Request) Result { return e.renameCommon(r, atFDCWD, 0, atFDCWD, 1, 0) }
func sysRenameat(e *Engine, r *Request) Result {
	return e.renameCommon(r, r.Int(0), 1, r.Int(2), 3, 0)
}
func sysRenameat2(e *Engine, r *Request) Result {
	return e.renameCommon(r, r.Int(0), 1, r.Int(2), 3, r.Uint(4))
}

func (e *Engine) linkCommon(r *Request, olddir, oldArg, newdir, newArg, flags int) Result {
	if flags&^(unix.AT_SYMLINK_FOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return Fail(unix.EINVAL)
	}
	oldPath, err := r.Path(oldArg)
	if err != nil {
		return Fail(err)
	}
	var src string // kbox-built path of the object to link
	var srcMount *vfs.Mount
	if oldPath == "" && flags&unix.AT_EMPTY_PATH != 0 && olddir != atFDCWD {
		h, err := e.dupObject(r, olddir)
		if err != nil {
			return Fail(err)
		}
		defer unix.Close(h)
		g, _, err := e.fdPath(r, olddir)
		if err != nil {
			return Fail(err)
		}
		l, err := e.ns.Resolve(e.canonicalCtx(r), "", g, 0)
		if err != nil {
			return Fail(err)
		}
		srcMount = l.Mount
		if l.Overlaid() {
			// The descriptor's file, copied up when it is the lower
			// layer's: the new name must never link a lower file.
			if !l.Exists() {
				l.Release()
				return Fail(unix.ENOENT)
			}
			if err := e.copyUp(r, l, vfs.ChangeObject); err != nil {
				l.Release()
				return Fail(err)
			}
			h2, err := unix.FcntlInt(uintptr(l.Obj.FD()), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				l.Release()
				return Fail(err)
			}
			defer unix.Close(h2)
			h = h2
		}
		l.Release()
		src = procFD(h)
	} else {
		oldL, err := e.resolveAt(r, olddir, oldPath, followIf(flags&unix.AT_SYMLINK_FOLLOW != 0))
		if err != nil {
			return Fail(err)
		}
		defer oldL.Release()
		if !oldL.Exists() {
			return Fail(unix.ENOENT)
		}
		if oldL.Magic || oldL.VirtualLink {
			return Fail(unix.EXDEV)
		}
		if oldL.IsDir() {
			return Fail(unix.EPERM)
		}
		srcMount = oldL.Mount
		if err := e.copyUp(r, oldL, vfs.ChangeObject); err != nil {
			return Fail(err)
		}
		src = procFD(oldL.Obj.FD())
	}
	newL, err := e.createTarget(r, newdir, newArg, false)
	if err != nil {
		return Fail(err)
	}
	defer newL.Release()
	if newL.Mount != srcMount {
		return Fail(unix.EXDEV)
	}
	// Following kbox's own /proc/self/fd link reaches exactly the resolved
	// inode; this is also how an unprivileged process links an O_PATH fd.
	return errOf(unix.Linkat(unix.AT_FDCWD, src, newL.Parent.FD(), newL.Name, unix.AT_SYMLINK_FOLLOW))
}

func sysLink(e *Engine, r *Request) Result { return e.linkCommon(r, atFDCWD, 0, atFDCWD, 1, 0) }
func sysLinkat(e *Engine, r *Request) Result {
	return e.linkCommon(r, r.Int(0), 1, r.Int(2), 3, r.Int(4))
}

func (e *Engine) symlinkCommon(r *Request, targetArg, dirfd, pathArg int) Result {
	target, err := r.Path(targetArg)
	if err != nil {
		return Fail(err)
	}
	if target == "" {
		return Fail(unix.ENOENT)
	}
	l, err := e.createTarget(r, dirfd, pathArg, false)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	if l.Trailing {
		return Fail(unix.ENOENT)
	}
	// The target text is stored as given: it is only ever interpreted by
	// kbox's resolver, in the guest namespace.
	if err := unix.Symlinkat(target, l.Parent.FD(), l.Name); err != nil {
		return Fail(err)
	}
	e.createdAt(r, l.Parent.FD(), l.Name)
	return Ok(0)
}

func sysSymlink(e *Engine, r *Request) Result   { return e.symlinkCommon(r, 0, atFDCWD, 1) }
func sysSymlinkat(e *Engine, r *Request) Result { return e.symlinkCommon(r, 0, r.Int(1), 2) }
