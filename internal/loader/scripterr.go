package loader

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Why an exec failed, said the same way by every tier: one line when the
// command kbox was asked to run cannot be, a -v line when a guest's own
// exec fails (the guest itself only sees the errno, as natively).

// InterpError is an exec that failed on an interpreter the program names:
// a "#!" line's, or an ELF's PT_INTERP (ELF). Err is the errno the caller
// gets.
type InterpError struct {
	Interp string
	ELF    bool
	Err    error
}

func (e *InterpError) Error() string { return e.describe() }
func (e *InterpError) Unwrap() error { return e.Err }

func (e *InterpError) describe() string {
	what := "interpreter "
	if e.ELF {
		what = "ELF interpreter "
	}
	var en unix.Errno
	if errors.As(e.Err, &en) {
		switch en {
		case unix.ENOENT, unix.ENOTDIR:
			return what + e.Interp + " not found in the guest"
		}
	}
	return what + e.Interp + ": " + cannotExecute(e.Err)
}

// NotELF is the error of a program that is neither a script nor an ELF
// the tier loads: ENOEXEC to the caller. Detail, when set, is the
// loader's reason for refusing a file that does start like an ELF.
type NotELF struct{ Detail string }

func (e *NotELF) Error() string { return cannotExecute(e) }
func (e *NotELF) Unwrap() error { return unix.ENOEXEC }

// ExecFailure is the line that says why the exec of path failed with
// err, without kbox's prefix: "/x.sh: interpreter /nonexistent not found
// in the guest", "/bin/x: cannot execute: not an ELF program or script
// (ENOEXEC)".
func ExecFailure(path string, err error) string {
	var ie *InterpError
	if errors.As(err, &ie) {
		return path + ": " + ie.describe()
	}
	var en unix.Errno
	if errors.As(err, &en) && (en == unix.ENOENT || en == unix.ENOTDIR) {
		return path + ": not found in the guest"
	}
	return path + ": " + cannotExecute(err)
}

// LookupMiss reports a failure that is only the program's path not
// existing, as a PATH search meets it at every directory: not worth a -v
// line.
func LookupMiss(err error) bool {
	var ie *InterpError
	if errors.As(err, &ie) {
		return false
	}
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR)
}

// cannotExecute describes err as "cannot execute: <why> (ERRNO)".
func cannotExecute(err error) string {
	var en unix.Errno
	if !errors.As(err, &en) {
		return "cannot execute: " + err.Error()
	}
	detail := ""
	var ne *NotELF
	if errors.As(err, &ne) && ne.Detail != "" {
		detail = ": " + ne.Detail
	}
	var why string
	switch en {
	case unix.ENOEXEC:
		why = "not an ELF program or script"
	case unix.EACCES:
		why = "permission denied"
	case unix.ELOOP:
		why = "too many levels of symbolic links or of nested #! scripts"
	default:
		why = en.Error()
	}
	return "cannot execute: " + why + " (" + unix.ErrnoName(en) + ")" + detail
}

// ExecExitCode is the exit status bash gives when execve fails with err:
// 127 for ENOENT (the program, or its interpreter, not found), 126 for
// anything else.
func ExecExitCode(err error) int {
	if errors.Is(err, unix.ENOENT) {
		return 127
	}
	return 126
}
