package launch

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/kbox-go/kbox/internal/identity"
)

func TestExitCode(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("anything"), ExitFailure},
		{usagef("bad"), ExitFailure},
		{failf(ExitNotExec, "x"), 126},
		{failf(ExitNotFound, "x"), 127},
		{fmt.Errorf("wrapped: %w", failf(ExitNotFound, "x")), 127},
	}
	for _, c := range cases {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestParseBind(t *testing.T) {
	cases := []struct {
		spec, cwd string
		want      bind
		err       string
	}{
		{"/a:/b", "/", bind{Src: "/a", Dst: "/b"}, ""},
		{"/a:/b:ro", "/", bind{Src: "/a", Dst: "/b", RO: true}, ""},
		{"/a:/b:rw", "/", bind{Src: "/a", Dst: "/b"}, ""},
		{"/a/../c/:/b//d/", "/", bind{Src: "/c", Dst: "/b/d"}, ""},
		{"src:/b", "/home/u", bind{Src: "/home/u/src", Dst: "/b"}, ""},
		{"./src/..:/b", "/home/u", bind{Src: "/home/u", Dst: "/b"}, ""},
		{"../x:/b", "/home/u", bind{Src: "/home/x", Dst: "/b"}, ""},
		{"src:/b", "", bind{}, "--bind-mount SRC src: a relative path, and kbox's working directory is unknown"},
		{"x", "/", bind{}, `--bind-mount "x": want SRC:DST[:ro]`},
		{"a:b:c:d", "/", bind{}, `--bind-mount "a:b:c:d": want SRC:DST[:ro]`},
		{":/b", "/", bind{}, `--bind-mount ":/b": empty SRC`},
		{"/a:", "/", bind{}, `--bind-mount "/a:": empty DST`},
		{"/a:b", "/", bind{}, `--bind-mount "/a:b": DST must be an absolute guest path`},
		{"/a:/b:xx", "/", bind{}, `--bind-mount "/a:/b:xx": the third field must be ro or rw`},
		{"/a:/", "/", bind{}, `--bind-mount "/a:/": use --root-dir to replace /`},
		{"/a:/..", "/", bind{}, `--bind-mount "/a:/..": use --root-dir to replace /`},
	}
	for _, c := range cases {
		got, err := parseBind(c.spec, c.cwd)
		if c.err != "" {
			if err == nil || err.Error() != c.err || ExitCode(err) != ExitFailure {
				t.Errorf("parseBind(%q, %q): %v, want error %q (status 125)", c.spec, c.cwd, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseBind(%q, %q) = %+v, %v; want %+v", c.spec, c.cwd, got, err, c.want)
		}
	}
}

func TestCheckRootsAndPaths(t *testing.T) {
	cases := []struct {
		name string
		o    Options
		root Root
		work string
		err  string
	}{
		{"no root", Options{}, Root{}, "", ""},
		{"absolute", Options{Roots: []Root{{RootPlain, "/srv/r/"}}}, Root{RootPlain, "/srv/r"}, "", ""},
		{"relative", Options{Cwd: "/home/u", Roots: []Root{{RootRecommended, "root"}}}, Root{RootRecommended, "/home/u/root"}, "", ""},
		{"dot", Options{Cwd: "/home/u", Roots: []Root{{RootSystem, "."}}}, Root{RootSystem, "/home/u"}, "", ""},
		{"dotdot", Options{Cwd: "/home/u/x", Roots: []Root{{RootPlain, "../r/./"}}}, Root{RootPlain, "/home/u/r"}, "", ""},
		{"empty -r", Options{Roots: []Root{{RootPlain, ""}}}, Root{}, "", "--root-dir: empty path"},
		{"empty -R", Options{Roots: []Root{{RootRecommended, ""}}}, Root{}, "", "--recommended-root: empty path"},
		{"empty -S", Options{Roots: []Root{{RootSystem, ""}}}, Root{}, "", "--system-root: empty path"},
		{"relative without cwd", Options{Roots: []Root{{RootPlain, "r"}}}, Root{}, "", "--root-dir r: a relative path, and kbox's working directory is unknown"},
		{"two roots", Options{Roots: []Root{{RootPlain, "/a"}, {RootPlain, "/b"}}}, Root{}, "", "give only one of --root-dir, --recommended-root, --system-root"},
		{"work dir", Options{WorkDir: "etc/../usr/", WorkDirSet: true}, Root{}, "/usr", ""},
		{"work dir dotdot", Options{WorkDir: "/../..", WorkDirSet: true}, Root{}, "/", ""},
		{"empty work dir", Options{WorkDirSet: true}, Root{}, "", "--work-dir: empty path"},
		{"bad mode", Options{Mode: "fast"}, Root{}, "", `--syscall-mode must be auto, seccomp, trap or rewrite, not "fast"`},
	}
	for _, c := range cases {
		s, err := check(c.o)
		if c.err != "" {
			if err == nil || err.Error() != c.err || ExitCode(err) != ExitFailure {
				t.Errorf("%s: %v, want error %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || s.root != c.root || s.workDir != c.work {
			t.Errorf("%s: root %+v work dir %q, %v; want %+v %q", c.name, s.root, s.workDir, err, c.root, c.work)
		}
		if s.mode != "auto" {
			t.Errorf("%s: mode %q, want auto by default", c.name, s.mode)
		}
	}
}

func TestCheckCommand(t *testing.T) {
	cases := []struct {
		o    Options
		argv []string
		err  string
	}{
		{Options{}, []string{"/bin/sh"}, ""},
		{Options{Args: []string{"ls", "-l"}}, []string{"ls", "-l"}, ""},
		{Options{Command: "echo", CommandSet: true, Args: []string{"a"}}, []string{"echo", "a"}, ""},
		{Options{Args: []string{""}}, nil, "the command is empty"},
		{Options{CommandSet: true, Args: []string{"x"}}, nil, "the command is empty"},
	}
	for _, c := range cases {
		s, err := check(c.o)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%+v: %v, want %q", c.o, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(s.argv, c.argv) {
			t.Errorf("%+v: argv %q, %v; want %q", c.o, s.argv, err, c.argv)
		}
	}
}

func TestIdentity(t *testing.T) {
	root := identity.Config{Virtual: true}
	cases := []struct {
		o    Options
		kind RootKind
		want identity.Config
		err  string
	}{
		{Options{}, RootPlain, identity.Config{}, ""},
		{Options{RootID: true}, RootPlain, root, ""},
		{Options{}, RootSystem, root, ""},
		{Options{ChangeID: "1000:100", ChangeSet: true}, RootRecommended, identity.Config{Virtual: true, UID: 1000, GID: 100}, ""},
		{Options{ChangeID: "0:0", ChangeSet: true}, RootHost, root, ""},
		{Options{ChangeID: "1:1", ChangeSet: true}, RootSystem, identity.Config{}, "--change-id cannot be combined with --system-root (the guest runs as root there); use --recommended-root --change-id"},
		{Options{ChangeID: "1:1", ChangeSet: true, RootID: true}, RootPlain, identity.Config{}, "give only one of --root-id, --change-id"},
		{Options{ChangeID: "", ChangeSet: true}, RootPlain, identity.Config{}, `--change-id wants UID:GID (decimal), got ""`},
		{Options{ChangeID: "1000", ChangeSet: true}, RootPlain, identity.Config{}, `--change-id wants UID:GID (decimal), got "1000"`},
		{Options{ChangeID: "1:2:3", ChangeSet: true}, RootPlain, identity.Config{}, `--change-id wants UID:GID (decimal), got "1:2:3"`},
		{Options{ChangeID: "4294967295:1", ChangeSet: true}, RootPlain, identity.Config{}, `--change-id wants UID:GID (decimal), got "4294967295:1"`},
	}
	for _, c := range cases {
		got, err := identityOf(c.o, c.kind)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%+v %v: %v, want %q", c.o, c.kind, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%+v %v: %+v, %v; want %+v", c.o, c.kind, got, err, c.want)
		}
	}
}

func TestApplyEnv(t *testing.T) {
	host := []string{"PATH=/bin", "HOME=/root", "A=1"}
	set := func(n, v string) EnvOp { return EnvOp{Kind: EnvSet, Name: n, Value: v} }
	unset := func(n string) EnvOp { return EnvOp{Kind: EnvUnset, Name: n} }
	clear := EnvOp{Kind: EnvClear}
	cases := []struct {
		ops  []EnvOp
		want string
		err  string
	}{
		{nil, "PATH=/bin HOME=/root A=1", ""},
		{[]EnvOp{set("B", "2")}, "PATH=/bin HOME=/root A=1 B=2", ""},
		{[]EnvOp{set("A", "x=y")}, "PATH=/bin HOME=/root A=x=y", ""},
		{[]EnvOp{set("E", "")}, "PATH=/bin HOME=/root A=1 E=", ""},
		{[]EnvOp{unset("HOME"), unset("NOPE")}, "PATH=/bin A=1", ""},
		{[]EnvOp{set("B", "2"), clear, set("C", "3")}, "C=3", ""},
		{[]EnvOp{clear}, "", ""},
		{[]EnvOp{set("A", "2"), unset("A"), set("A", "3")}, "PATH=/bin HOME=/root A=3", ""},
		{[]EnvOp{set("", "x")}, "", `--setenv: bad variable name ""`},
		{[]EnvOp{unset("A=B")}, "", `--unsetenv: bad variable name "A=B"`},
		{[]EnvOp{set("A", "a\x00b")}, "", "--setenv A: the value contains a NUL byte"},
	}
	for _, c := range cases {
		got, err := applyEnv(host, c.ops)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%+v: %v, want %q", c.ops, err, c.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("%+v: %q, %v; want %q", c.ops, got, err, c.want)
		}
	}
	if strings.Join(host, " ") != "PATH=/bin HOME=/root A=1" {
		t.Errorf("applyEnv changed its input: %q", host)
	}
}

func TestParseEnvFlag(t *testing.T) {
	cases := []struct {
		kind EnvOpKind
		v    string
		want EnvOp
		bad  bool
	}{
		{EnvSet, "A=1", EnvOp{Kind: EnvSet, Name: "A", Value: "1"}, false},
		{EnvSet, "A==", EnvOp{Kind: EnvSet, Name: "A", Value: "="}, false},
		{EnvSet, "A=", EnvOp{Kind: EnvSet, Name: "A"}, false},
		{EnvSet, "A", EnvOp{}, true},
		{EnvSet, "=1", EnvOp{}, true},
		{EnvUnset, "A", EnvOp{Kind: EnvUnset, Name: "A"}, false},
		{EnvUnset, "A=1", EnvOp{}, true},
		{EnvUnset, "", EnvOp{}, true},
		{EnvClear, "true", EnvOp{Kind: EnvClear}, false},
	}
	for _, c := range cases {
		got, err := ParseEnvFlag(c.kind, c.v)
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("ParseEnvFlag(%d, %q) = %+v, %v", c.kind, c.v, got, err)
		}
	}
}

func TestNameServiceBinds(t *testing.T) {
	all := func(string) bool { return true }
	cases := []struct {
		binds  []bind
		exists func(string) bool
		want   []string
	}{
		{nil, all, NameServiceFiles()},
		{nil, func(p string) bool { return p == "/etc/hosts" }, []string{"/etc/hosts"}},
		{[]bind{{Dst: "/etc/hosts"}}, all, []string{"/etc/resolv.conf", "/etc/nsswitch.conf"}},
		{[]bind{{Dst: "/etc"}}, all, nil},
		{[]bind{{Dst: "/et"}, {Dst: "/etc/hosts.d"}}, all, NameServiceFiles()},
	}
	for _, c := range cases {
		if got := nameServiceBinds(c.binds, c.exists); !reflect.DeepEqual(got, c.want) {
			t.Errorf("binds %+v: %q, want %q", c.binds, got, c.want)
		}
	}
}

func TestChooseTier(t *testing.T) {
	noCgo := errors.New("no cgo")
	gap := []string{"no Landlock"}
	cases := []struct {
		in       tierInput
		tier     string
		why      string
		warnings int
		scanned  bool
	}{
		{tierInput{Mode: "seccomp"}, "seccomp", "requested", 0, false},
		{tierInput{Mode: "trap"}, "trap", "requested", 0, false},
		{tierInput{Mode: "rewrite", Gaps: gap}, "rewrite", "requested", 1, false},
		{tierInput{Mode: "auto", InProcess: noCgo}, "seccomp", "auto: no in-process tier in this build", 0, false},
		// the gaps decide before the program is scanned
		{tierInput{Mode: "auto", Gaps: gap}, "seccomp", "auto: the kernel cannot confine an in-process guest here: no Landlock", 0, false},
		{tierInput{Mode: "auto"}, "rewrite", "scan", 0, true},
	}
	for _, c := range cases {
		scanned := false
		c.in.Scan = func() (string, string) { scanned = true; return "rewrite", "scan" }
		tier, why, warnings := chooseTier(c.in)
		if tier != c.tier || why != c.why || len(warnings) != c.warnings || scanned != c.scanned {
			t.Errorf("%+v: %s %q %q scanned %v; want %s %q, %d warnings, scanned %v",
				c.in, tier, why, warnings, scanned, c.tier, c.why, c.warnings, c.scanned)
		}
	}
}
