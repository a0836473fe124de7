package launch

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/kbox-go/kbox/internal/identity"
	"github.com/kbox-go/kbox/internal/netuser"
	"github.com/kbox-go/kbox/internal/trace"
	"github.com/kbox-go/kbox/internal/web"
)

// Exit statuses of kbox itself, as container runtimes (docker, podman,
// runc) use them; every other status is the guest's own (128+N when it is
// killed by signal N).
const (
	ExitFailure  = 125 // kbox failed: bad usage, an unusable root or bind, a start-up error
	ExitNotExec  = 126 // the command exists in the guest but cannot be executed
	ExitNotFound = 127 // the command does not exist in the guest
)

// Error is a failure of kbox itself with the exit status it ends with.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func failf(code int, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// usagef is a usage error: the command line cannot be run as given.
func usagef(format string, args ...any) error { return failf(ExitFailure, format, args...) }

// ExitCode is the status kbox ends with after err: an Error's own,
// ExitFailure for any other error, 0 for none.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ExitFailure
}

// RootKind says which root flag chose the guest's /.
type RootKind uint8

const (
	// RootHost: no root flag; the host's / read-only.
	RootHost RootKind = iota
	// RootPlain: --root-dir, the directory and nothing else.
	RootPlain
	// RootRecommended: --recommended-root, with /proc, /sys, /dev, /tmp
	// and the host's name-service files.
	RootRecommended
	// RootSystem: --system-root, as RootRecommended and the guest is root.
	RootSystem
)

// Flag is the long flag that selects the kind.
func (k RootKind) Flag() string {
	return [...]string{"", "--root-dir", "--recommended-root", "--system-root"}[k]
}

// Root is one root flag as given.
type Root struct {
	Kind RootKind
	Dir  string
}

// EnvOpKind is what an environment flag does.
type EnvOpKind uint8

const (
	EnvSet   EnvOpKind = iota // --setenv NAME=VALUE
	EnvUnset                  // --unsetenv NAME
	EnvClear                  // --clearenv
)

// EnvOp is one environment flag, applied to the guest's environment in
// the order the flags were given.
type EnvOp struct {
	Kind  EnvOpKind
	Name  string
	Value string
}

// Options is the command line as plain data: what cmd/kbox parsed, not
// yet checked against the host.
type Options struct {
	Roots      []Root   // every root flag given (more than one is an error)
	Binds      []string // SRC:DST[:ro|rw]
	WorkDir    string
	WorkDirSet bool // -w was given (even empty)
	Command    string
	CommandSet bool     // -c was given (even empty)
	Args       []string // positional arguments
	RootID     bool
	ChangeID   string
	ChangeSet  bool // --change-id was given
	Mode       string
	Env        []EnvOp
	HostEnv    []string // kbox's own environment, the guest's starting point
	Cwd        string   // kbox's working directory ("" when unknown)
	Verbose    bool
	KeepCaps   bool
	// Net is --net: "host" (the default), "none" or "user".
	Net string
	// AllowNet, Publish and DNS: --allow-net, --publish and --dns, for
	// --net=user (docs/network.md).
	AllowNet []string
	Publish  []string
	DNS      string
	// Trace: --trace, --trace-format, --trace-filter and --summary (host
	// paths; relative ones are taken from Cwd).
	Trace trace.Options
	// Web: --web, --web-bind-any, --web-linger.
	Web web.Options
	// Overlay: --overlay was given; OverlayDir is its upper directory
	// ("" for a temporary one removed at exit). docs/overlay.md.
	Overlay    bool
	OverlayDir string
	// ReadOnly: --read-only, the root mount is read-only.
	ReadOnly bool
}

// bind is one parsed bind flag.
type bind struct {
	Src, Dst string // absolute host path, clean absolute guest path
	RO       bool
}

// spec is Options checked and normalised, before anything on the host
// is touched.
type spec struct {
	root     Root // Kind RootHost when no root flag
	binds    []bind
	workDir  string // "" when not given
	argv     []string
	id       identity.Config
	env      []string
	mode     string
	verbose  bool
	keepCaps bool
	cwd      string
	trace    trace.Options
	web      web.Options
	net      string
	netUser  *netuser.Config // --net=user's configuration
	overlay  bool
	upper    string // absolute --overlay=DIR, "" for a temporary one
	readOnly bool
}

// check validates o and makes every path absolute: the part of
// preparing a run that touches nothing on the host.
func check(o Options) (spec, error) {
	s := spec{mode: o.Mode, verbose: o.Verbose, keepCaps: o.KeepCaps, cwd: o.Cwd}
	var err0 error
	if s.mode == "" {
		s.mode = "auto"
	}
	switch s.mode {
	case "auto", "seccomp", "trap", "rewrite":
	default:
		return s, usagef("--syscall-mode must be auto, seccomp, trap or rewrite, not %q", o.Mode)
	}
	if s.net, err0 = checkNet(o.Net); err0 != nil {
		return s, err0
	}
	if s.netUser, err0 = checkNetUser(o, s.net); err0 != nil {
		return s, err0
	}
	switch len(o.Roots) {
	case 0:
	case 1:
		r := o.Roots[0]
		dir, err := absPath(r.Kind.Flag(), r.Dir, o.Cwd)
		if err != nil {
			return s, err
		}
		s.root = Root{Kind: r.Kind, Dir: dir}
	default:
		return s, usagef("give only one of --root-dir, --recommended-root, --system-root")
	}
	id, err := identityOf(o, s.root.Kind)
	if err != nil {
		return s, err
	}
	s.id = id
	for _, b := range o.Binds {
		pb, err := parseBind(b, o.Cwd)
		if err != nil {
			return s, err
		}
		s.binds = append(s.binds, pb)
	}
	if o.WorkDirSet {
		if o.WorkDir == "" {
			return s, usagef("--work-dir: empty path")
		}
		// A guest path: relative ones are taken from the guest's /.
		s.workDir = path.Clean("/" + o.WorkDir)
	}
	s.argv = o.Args
	if o.CommandSet {
		s.argv = append([]string{o.Command}, o.Args...)
	}
	if len(s.argv) == 0 {
		s.argv = []string{"/bin/sh"}
	}
	if s.argv[0] == "" {
		return s, usagef("the command is empty")
	}
	env, err := applyEnv(o.HostEnv, o.Env)
	if err != nil {
		return s, err
	}
	s.env = env
	if s.trace, err = checkTrace(o.Trace, o.Cwd, o.Web.Enabled()); err != nil {
		return s, err
	}
	if o.Web.Enabled() {
		if _, err := web.NormalizeAddr(o.Web.Addr, o.Web.BindAny); err != nil {
			return s, usagef("%v", err)
		}
	} else if o.Web.BindAny || o.Web.Linger != 0 {
		return s, usagef("--web-bind-any and --web-linger need --web")
	}
	if o.Web.Linger < 0 {
		return s, usagef("--web-linger: negative duration %v", o.Web.Linger)
	}
	s.web = o.Web
	if err := checkOverlay(o, &s); err != nil {
		return s, err
	}
	return s, nil
}

// checkTrace validates the trace flags before anything runs: the format,
// the filter, and the sink paths made absolute ("-" is stderr).
func checkTrace(t trace.Options, cwd string, web bool) (trace.Options, error) {
	switch t.Format {
	case "", "text", "json":
	default:
		return t, usagef("--trace-format must be text or json, not %q", t.Format)
	}
	if _, err := trace.ParseFilter(t.Filter); err != nil {
		return t, usagef("--trace-filter: %v", err)
	}
	if t.Filter != "" && t.Path == "" && !web {
		return t, usagef("--trace-filter needs --trace or --web")
	}
	if t.Fast && t.Path == "" && !web {
		return t, usagef("--trace-fast needs --trace or --web")
	}
	for _, f := range []struct {
		flag string
		p    *string
	}{{"--trace", &t.Path}, {"--summary", &t.Summary}} {
		if *f.p == "" || *f.p == "-" {
			continue
		}
		abs, err := absPath(f.flag, *f.p, cwd)
		if err != nil {
			return t, err
		}
		*f.p = abs
	}
	return t, nil
}

// absPath makes a host path flag's value absolute (relative to cwd) and
// clean; an empty value is a usage error.
func absPath(flag, p, cwd string) (string, error) {
	if p == "" {
		return "", usagef("%s: empty path", flag)
	}
	if !path.IsAbs(p) {
		if cwd == "" {
			return "", usagef("%s %s: a relative path, and kbox's working directory is unknown", flag, p)
		}
		p = path.Join(cwd, p)
	}
	return path.Clean(p), nil
}

// parseBind parses SRC:DST[:ro|rw]; SRC is made absolute from cwd.
func parseBind(specText, cwd string) (bind, error) {
	parts := strings.Split(specText, ":")
	ro := false
	if len(parts) == 3 {
		if parts[2] != "ro" && parts[2] != "rw" {
			return bind{}, usagef("--bind-mount %q: the third field must be ro or rw", specText)
		}
		ro = parts[2] == "ro"
		parts = parts[:2]
	}
	if len(parts) != 2 {
		return bind{}, usagef("--bind-mount %q: want SRC:DST[:ro]", specText)
	}
	if parts[0] == "" {
		return bind{}, usagef("--bind-mount %q: empty SRC", specText)
	}
	if parts[1] == "" {
		return bind{}, usagef("--bind-mount %q: empty DST", specText)
	}
	if !path.IsAbs(parts[1]) {
		return bind{}, usagef("--bind-mount %q: DST must be an absolute guest path", specText)
	}
	if path.Clean(parts[1]) == "/" {
		return bind{}, usagef("--bind-mount %q: use --root-dir to replace /", specText)
	}
	src, err := absPath("--bind-mount SRC", parts[0], cwd)
	if err != nil {
		return bind{}, err
	}
	return bind{Src: src, Dst: path.Clean(parts[1]), RO: ro}, nil
}

// identityOf is the guest's identity from -0, --change-id and -S.
func identityOf(o Options, root RootKind) (identity.Config, error) {
	if o.ChangeSet {
		switch {
		case root == RootSystem:
			return identity.Config{}, usagef("--change-id cannot be combined with --system-root (the guest runs as root there); use --recommended-root --change-id")
		case o.RootID:
			return identity.Config{}, usagef("give only one of --root-id, --change-id")
		}
		var u, g uint32
		var rest string
		n, _ := fmt.Sscanf(o.ChangeID, "%d:%d%s", &u, &g, &rest)
		if n != 2 || strings.Count(o.ChangeID, ":") != 1 || u == identity.Keep || g == identity.Keep {
			return identity.Config{}, usagef("--change-id wants UID:GID (decimal), got %q", o.ChangeID)
		}
		return identity.Config{Virtual: true, UID: u, GID: g}, nil
	}
	if o.RootID || root == RootSystem {
		return identity.Config{Virtual: true, UID: 0, GID: 0}, nil
	}
	return identity.Config{}, nil
}

// applyEnv applies the environment flags to env, in order, as bwrap does:
// --setenv replaces or adds, --unsetenv removes, --clearenv empties. kbox
// adds nothing of its own.
func applyEnv(env []string, ops []EnvOp) ([]string, error) {
	out := append([]string(nil), env...)
	remove := func(name string) {
		kept := out[:0]
		for _, kv := range out {
			if n, _, _ := strings.Cut(kv, "="); n != name {
				kept = append(kept, kv)
			}
		}
		out = kept
	}
	for _, op := range ops {
		switch op.Kind {
		case EnvClear:
			out = out[:0]
		case EnvUnset, EnvSet:
			flag := map[EnvOpKind]string{EnvSet: "--setenv", EnvUnset: "--unsetenv"}[op.Kind]
			if op.Name == "" || strings.ContainsAny(op.Name, "=\x00") {
				return nil, usagef("%s: bad variable name %q", flag, op.Name)
			}
			if strings.ContainsRune(op.Value, 0) {
				return nil, usagef("%s %s: the value contains a NUL byte", flag, op.Name)
			}
			remove(op.Name)
			if op.Kind == EnvSet {
				out = append(out, op.Name+"="+op.Value)
			}
		}
	}
	return out, nil
}

// ParseEnvFlag turns one environment flag's value into an EnvOp:
// NAME=VALUE for --setenv, NAME for --unsetenv.
func ParseEnvFlag(kind EnvOpKind, v string) (EnvOp, error) {
	switch kind {
	case EnvSet:
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return EnvOp{}, fmt.Errorf("want NAME=VALUE, got %q", v)
		}
		return EnvOp{Kind: EnvSet, Name: name, Value: value}, nil
	case EnvUnset:
		if v == "" || strings.Contains(v, "=") {
			return EnvOp{}, fmt.Errorf("want a variable NAME, got %q", v)
		}
		return EnvOp{Kind: EnvUnset, Name: v}, nil
	}
	return EnvOp{Kind: EnvClear}, nil
}
