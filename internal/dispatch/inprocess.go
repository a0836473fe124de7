package dispatch

import (
	"os"

	"golang.org/x/sys/unix"
)

// OpenProgram resolves p (relative to dirfd, in r's process) the way
// execve does — search and execute permission, noexec mounts, symlinks
// followed unless flags has AT_SYMLINK_NOFOLLOW — and opens it read-only.
// It returns the file and its canonical guest path. The in-process tiers
// load programs themselves and use it for their first program and for
// execve.
func (e *Engine) OpenProgram(r *Request, dirfd int, p string, flags int) (*os.File, string, error) {
	if p == "" {
		return nil, "", unix.ENOENT
	}
	l, err := e.resolveAt(r, dirfd, p, followIf(flags&unix.AT_SYMLINK_NOFOLLOW == 0))
	if err != nil {
		return nil, "", err
	}
	defer l.Release()
	if l.Exists() && !l.Magic {
		if err := e.permittedLookup(r, l, permExec, false); err != nil {
			return nil, "", err
		}
	}
	f, err := e.openExecutable(l)
	if err != nil {
		return nil, "", err
	}
	return f, l.Path, nil
}

// ProgramStarted records that r's process now runs exe (its /proc view and
// execve's credential rules); script is set for a "#!" script.
func (e *Engine) ProgramStarted(r *Request, exe string, script bool) {
	e.execDone(r, exe, script)
}

// Verbose reports whether -v lines are written.
func (e *Engine) Verbose() bool { return e.cfg.Verbose }

// Warnf writes a warning line, with or without -v.
func (e *Engine) Warnf(format string, args ...any) { e.warnf(format, args...) }

// OpenProgramFD is OpenProgram for fexecve (execveat with AT_EMPTY_PATH):
// the guest descriptor's file, checked as execve checks it. The guest path
// is "" when the file has none in the guest (a memfd, a deleted file).
func (e *Engine) OpenProgramFD(r *Request, fd int) (*os.File, string, error) {
	h, err := r.FDs.DupFD(fd)
	if err != nil {
		return nil, "", err
	}
	file := os.NewFile(uintptr(h), "fexecve")
	var st unix.Stat_t
	if err := unix.Fstat(h, &st); err != nil {
		file.Close()
		return nil, "", err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		file.Close()
		return nil, "", unix.EACCES
	}
	if err := unix.Faccessat2(h, "", unix.X_OK, unix.AT_EMPTY_PATH|unix.AT_EACCESS); err != nil {
		file.Close()
		return nil, "", err
	}
	if err := e.permitted(r, &st, permExec, false); err != nil {
		file.Close()
		return nil, "", err
	}
	exe, _, err := e.fdPath(r, fd)
	if err != nil {
		exe = ""
	}
	return file, exe, nil
}
