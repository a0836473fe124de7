package loader

import (
	"bytes"

	"golang.org/x/sys/unix"
)

// "#!" scripts, as Linux's fs/binfmt_script.c reads them. Every tier
// parses the "#!" line here, so a script means the same thing to each.
//
// What the kernel does, and so what ParseScript does:
//
//   - It reads the first ScriptBufSize bytes of the file (BINPRM_BUF_SIZE,
//     256 since Linux 5.1); a shorter file is padded with NUL bytes.
//   - The line ends at the first newline in those bytes; the search stops
//     at a NUL byte (strnchr).
//   - Without a newline the line may be truncated. That is refused
//     (ENOEXEC) only when the interpreter name itself may be: when no
//     space, tab or NUL follows its first byte within the buffer. Else the
//     line is the whole buffer but its last byte, and only the argument is
//     cut short (the interpreter can read the script itself).
//   - Trailing spaces and tabs before the newline (or before the last
//     byte of a full buffer) are dropped; leading ones skipped. No
//     interpreter name left: ENOEXEC. (So in a short file without a
//     newline, where NUL padding ends the line, trailing blanks stay.)
//   - The name ends at the first space, tab or NUL. If a space or tab ends
//     it, whatever follows the next run of spaces and tabs, up to the end
//     of the line or a NUL, is one argument, internal blanks included; it
//     may be empty (a NUL right after the blanks).
//   - The new argument vector is: the interpreter name, the argument if
//     any, the script's path as the caller gave it, the caller's argv[1:]
//     (Script.Argv).
//   - The interpreter is then opened like any program, and may itself be a
//     script, to the depth MaxScriptDepth allows.

// ScriptBufSize is how many bytes of a file the kernel reads to decide
// what it is (BINPRM_BUF_SIZE).
const ScriptBufSize = 256

// MaxScriptDepth is how many "#!" scripts an exec may go through before
// reaching a binary: fs/exec.c exec_binprm() counts the files it loads
// from depth 0 (the caller's) and fails with ELOOP on reaching a file at
// depth 6 ("if (depth > 5) return -ELOOP"), after opening it; so five
// scripts run, and the interpreter of a sixth is ELOOP whatever it is.
// (Linux 5.8 and later, which replaced the recursion of
// search_binary_handler by that loop; checked on 6.18: five nested
// scripts run, six fail.)
const MaxScriptDepth = 5

// Script is a parsed "#!" line.
type Script struct {
	Interp string // the interpreter's path, as written
	Arg    string // the optional argument (HasArg)
	HasArg bool   // an argument is passed, possibly empty
}

// IsScript reports whether a file starting with head is a "#!" script.
func IsScript(head []byte) bool {
	return len(head) >= 2 && head[0] == '#' && head[1] == '!'
}

// ParseScript parses the "#!" line of a file whose first bytes are head
// (at most ScriptBufSize of them are looked at) as Linux does. Errors:
// ENOEXEC for a file that is not a script, has no interpreter name or may
// have a truncated one; EACCES for an empty name (a NUL where it starts:
// the kernel then opens "", the working directory).
func ParseScript(head []byte) (Script, error) {
	if !IsScript(head) {
		return Script{}, unix.ENOEXEC
	}
	var buf [ScriptBufSize]byte
	copy(buf[:], head)
	spacetab := func(c byte) bool { return c == ' ' || c == '\t' }
	// The first non-blank at or after i, up to last included; -1 if none.
	nonBlank := func(i, last int) int {
		for ; i <= last; i++ {
			if !spacetab(buf[i]) {
				return i
			}
		}
		return -1
	}
	// The first blank or NUL at or after i, up to last included; -1 if none.
	terminator := func(i, last int) int {
		for ; i <= last; i++ {
			if spacetab(buf[i]) || buf[i] == 0 {
				return i
			}
		}
		return -1
	}
	bufEnd := ScriptBufSize - 1
	end := -1 // the line is buf[2:end]
	for i := 0; i < ScriptBufSize && buf[i] != 0; i++ {
		if buf[i] == '\n' {
			end = i
			break
		}
	}
	if end < 0 {
		first := nonBlank(2, bufEnd)
		if first < 0 || terminator(first, bufEnd) < 0 {
			return Script{}, unix.ENOEXEC // only blanks, or a truncated name
		}
		end = bufEnd
	}
	for spacetab(buf[end-1]) {
		end--
	}
	name := nonBlank(2, end)
	if name < 0 || name == end {
		return Script{}, unix.ENOEXEC // no interpreter name
	}
	// The kernel terminates the line at end and copies C strings.
	cstr := func(from, to int) string {
		b := buf[from:to]
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		return string(b)
	}
	var s Script
	sep := terminator(name, end)
	if sep >= 0 && buf[sep] != 0 {
		if arg := nonBlank(sep, end); arg >= 0 {
			s.HasArg, s.Arg = true, cstr(arg, end)
		}
	}
	if sep < 0 || sep > end {
		sep = end
	}
	s.Interp = cstr(name, sep)
	if s.Interp == "" {
		// The kernel opens "", which names the working directory:
		// a directory is not executable.
		return Script{}, unix.EACCES
	}
	return s, nil
}

// Argv returns the argument vector the interpreter gets: its name, the
// argument if any, the script's path as the caller named it, then the
// caller's arguments after argv[0].
func (s Script) Argv(scriptPath string, argv []string) []string {
	out := []string{s.Interp}
	if s.HasArg {
		out = append(out, s.Arg)
	}
	out = append(out, scriptPath)
	if len(argv) > 1 {
		out = append(out, argv[1:]...)
	}
	return out
}
