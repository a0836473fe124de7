package dispatch

import (
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

func init() {
	register(sysChdir, "chdir")
	register(sysFchdir, "fchdir")
	register(sysGetcwd, "getcwd")
	register(sysChroot, "chroot")
}

// The working directory is kept by kbox, per process, as a canonical guest
// path: the host kernel never resolves a relative guest path, so the guest's
// host cwd does not matter (it is kbox's exec directory, see exec.go).

func (e *Engine) searchableDir(r *Request, l *vfs.Lookup) error {
	if !l.Exists() {
		return unix.ENOENT
	}
	if l.Magic || !l.IsDir() {
		return unix.ENOTDIR
	}
	if err := e.permittedLookup(r, l, permExec, false); err != nil {
		return err
	}
	return unix.Faccessat2(l.Obj.FD(), "", unix.X_OK, unix.AT_EMPTY_PATH)
}

func sysChdir(e *Engine, r *Request) Result {
	l, err := e.resolveArg(r, atFDCWD, 0, vfs.FollowFinal)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	if err := e.searchableDir(r, l); err != nil {
		return Fail(err)
	}
	return errOf(e.Procs.update(r.Proc, func(p *Process) error { p.cwd = l.Path; return nil }))
}

func sysFchdir(e *Engine, r *Request) Result {
	g, st, err := e.fdPath(r, r.Int(0))
	if err != nil {
		return Fail(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return Fail(unix.ENOTDIR)
	}
	return errOf(e.Procs.update(r.Proc, func(p *Process) error { p.cwd = g; return nil }))
}

// guestCwdText is getcwd's answer: the cwd relative to the process root,
// or "(unreachable)" prefixed when the cwd lies outside it, as Linux does.
func guestCwdText(cwd, root string) string {
	if root == "" || root == "/" {
		return cwd
	}
	if cwd == root {
		return "/"
	}
	if strings.HasPrefix(cwd, root+"/") {
		return cwd[len(root):]
	}
	return "(unreachable)" + cwd
}

func sysGetcwd(e *Engine, r *Request) Result {
	cwd, root := r.Proc.CwdRoot()
	// Linux reports a removed cwd with ENOENT.
	l, err := e.ns.Resolve(e.canonicalCtx(r), "", cwd, vfs.FollowFinal)
	if err != nil {
		return Fail(unix.ENOENT)
	}
	gone := !l.Exists()
	l.Release()
	if gone {
		return Fail(unix.ENOENT)
	}
	text := guestCwdText(cwd, root)
	b := append([]byte(text), 0)
	if uint64(len(b)) > r.Args[1] {
		return Fail(unix.ERANGE)
	}
	if err := r.Mem.Write(r.Ptr(0), b); err != nil {
		return Fail(err)
	}
	return Ok(int64(len(b)))
}

// chroot is supported per process inside the guest namespace: it changes
// where that process's absolute paths start and where ".." stops. It needs
// (virtual) root, as CAP_SYS_CHROOT would be needed on Linux.
func sysChroot(e *Engine, r *Request) Result {
	if c := r.Proc.Creds(); e.cfg.Identity.Virtual && c.EUID != 0 || !e.cfg.Identity.Virtual && !e.cfg.GuestCaps {
		return Fail(unix.EPERM)
	}
	l, err := e.resolveArg(r, atFDCWD, 0, vfs.FollowFinal)
	if err != nil {
		return Fail(err)
	}
	defer l.Release()
	if err := e.searchableDir(r, l); err != nil {
		return Fail(err)
	}
	return errOf(e.Procs.update(r.Proc, func(p *Process) error { p.root = l.Path; return nil }))
}
