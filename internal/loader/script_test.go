package loader

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// scriptCases are "#!" lines and what Linux makes of them (the cases
// marked native were run on Linux 6.18 with /bin/echo as the interpreter).
var scriptCases = []struct {
	name   string
	head   string
	interp string
	arg    string
	hasArg bool
	err    error
}{
	{name: "plain", head: "#!/bin/sh\necho hi\n", interp: "/bin/sh"},
	{name: "arg", head: "#!/bin/sh -e\n", interp: "/bin/sh", arg: "-e", hasArg: true},
	{name: "leading blanks", head: "#! \t /bin/sh\n", interp: "/bin/sh"},
	// native: one argument, internal blanks kept, trailing ones dropped.
	{name: "one argument", head: "#!/bin/echo\targ  x \t \n", interp: "/bin/echo", arg: "arg  x", hasArg: true},
	{name: "env", head: "#! /usr/bin/env  python3 -u \nx", interp: "/usr/bin/env", arg: "python3 -u", hasArg: true},
	{name: "tabs", head: "#!\t/bin/awk\t-f\n", interp: "/bin/awk", arg: "-f", hasArg: true},
	{name: "trailing blanks", head: "#!/bin/sh  \t\n", interp: "/bin/sh"},
	{name: "carriage return", head: "#!/bin/sh\r\n", interp: "/bin/sh\r"},
	// native: no newline at all in a short file runs.
	{name: "no newline", head: "#!/bin/sh", interp: "/bin/sh"},
	// native: without a newline the NUL padding ends the line, so
	// trailing blanks stay, and blanks after the name pass an empty
	// argument.
	{name: "no newline arg", head: "#!/bin/sh -x\t", interp: "/bin/sh", arg: "-x\t", hasArg: true},
	{name: "no newline blanks", head: "#!/bin/sh  ", interp: "/bin/sh", arg: "", hasArg: true},
	// native: an empty name opens "", the working directory: EACCES.
	{name: "empty", head: "#!", err: unix.EACCES},
	{name: "empty line", head: "#!\n/bin/sh\n", err: unix.ENOEXEC},
	{name: "blank line", head: "#! \t \n", err: unix.ENOEXEC},
	{name: "not a script", head: "\x7fELF", err: unix.ENOEXEC},
	{name: "one byte", head: "#", err: unix.ENOEXEC},
	{name: "hash space bang", head: "# !/bin/sh\n", err: unix.ENOEXEC},
	// The newline search stops at a NUL: the name ends there, no argument.
	{name: "nul after name", head: "#!/bin/sh\x00 -x\n", interp: "/bin/sh"},
	{name: "nul in arg", head: "#!/bin/sh -x\x00 y\n", interp: "/bin/sh", arg: "-x", hasArg: true},
	// native: an empty argument is passed.
	{name: "empty arg", head: "#!/bin/echo \t\x00zz\n", interp: "/bin/echo", arg: "", hasArg: true},
	{name: "nul name", head: "#!\x00/bin/sh\n", err: unix.EACCES},
	{name: "blank nul name", head: "#! \x00/bin/sh\n", err: unix.EACCES},
	// Longer than the buffer, no newline in it: a truncated name is
	// refused, a truncated argument is cut at byte 255.
	{name: "long name", head: "#!/" + strings.Repeat("a", 300), err: unix.ENOEXEC},
	{name: "long name then blank", head: "#!/" + strings.Repeat("a", 252) + " x", interp: "/" + strings.Repeat("a", 252)},
	{name: "long name at the edge", head: "#!/" + strings.Repeat("a", 253) + " x", err: unix.ENOEXEC},
	{name: "long arg", head: "#!/bin/sh " + strings.Repeat("b", 300), interp: "/bin/sh", arg: strings.Repeat("b", 245), hasArg: true},
	{name: "long arg then newline", head: "#!/bin/sh " + strings.Repeat("b", 300) + "\n", interp: "/bin/sh", arg: strings.Repeat("b", 245), hasArg: true},
	{name: "long blanks", head: "#!" + strings.Repeat(" ", 300) + "/bin/sh\n", err: unix.ENOEXEC},
	{name: "newline past the buffer", head: "#!/bin/sh" + strings.Repeat(" ", 250) + "\n", interp: "/bin/sh"},
	{name: "newline at the edge", head: "#!/bin/sh " + strings.Repeat("c", 245) + "\n", interp: "/bin/sh", arg: strings.Repeat("c", 245), hasArg: true},
}

func TestParseScript(t *testing.T) {
	for _, c := range scriptCases {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseScript([]byte(c.head))
			if err != c.err {
				t.Fatalf("ParseScript(%q): error %v, want %v", c.head, err, c.err)
			}
			if err != nil {
				return
			}
			want := Script{Interp: c.interp, Arg: c.arg, HasArg: c.hasArg}
			if s != want {
				t.Errorf("ParseScript(%q) = %+v, want %+v", c.head, s, want)
			}
			// Only the first ScriptBufSize bytes count.
			if len(c.head) > ScriptBufSize {
				if s2, err := ParseScript([]byte(c.head[:ScriptBufSize])); err != nil || s2 != s {
					t.Errorf("the first %d bytes alone: %+v, %v", ScriptBufSize, s2, err)
				}
			}
		})
	}
}

func TestScriptArgv(t *testing.T) {
	for _, c := range []struct {
		s    Script
		argv []string
		want []string
	}{
		{Script{Interp: "/bin/sh"}, []string{"x", "a", "b"}, []string{"/bin/sh", "./s", "a", "b"}},
		{Script{Interp: "/bin/sh", Arg: "-e", HasArg: true}, []string{"x"}, []string{"/bin/sh", "-e", "./s"}},
		{Script{Interp: "/bin/echo", HasArg: true}, nil, []string{"/bin/echo", "", "./s"}},
	} {
		if got := c.s.Argv("./s", c.argv); strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
			t.Errorf("%+v.Argv(./s, %q) = %q, want %q", c.s, c.argv, got, c.want)
		}
	}
}

// FuzzScript checks ParseScript's invariants on any input: no panic; a
// name without blanks, NUL or newline; an argument without NUL or
// newline and without leading blanks; both taken from the first
// ScriptBufSize bytes.
func FuzzScript(f *testing.F) {
	for _, c := range scriptCases {
		f.Add([]byte(c.head))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseScript(b)
		if err != nil {
			if err != unix.ENOEXEC && err != unix.EACCES {
				t.Fatalf("error %v", err)
			}
			return
		}
		head := b
		if len(head) > ScriptBufSize {
			head = head[:ScriptBufSize]
		}
		if s.Interp == "" || strings.ContainsAny(s.Interp, " \t\x00\n") || !strings.Contains(string(head), s.Interp) {
			t.Fatalf("interpreter %q from %q", s.Interp, b)
		}
		if !s.HasArg && s.Arg != "" {
			t.Fatalf("argument %q without HasArg", s.Arg)
		}
		if strings.ContainsAny(s.Arg, "\x00\n") || strings.TrimLeft(s.Arg, " \t") != s.Arg || !strings.Contains(string(head), s.Arg) {
			t.Fatalf("argument %q from %q", s.Arg, b)
		}
		if s2, err := ParseScript(head); err != nil || s2 != s {
			t.Fatalf("the first %d bytes alone: %+v, %v; all of it: %+v", ScriptBufSize, s2, err, s)
		}
	})
}
