package launch

import (
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/forkscan"
	"github.com/kbox-go/kbox/internal/identity"
	"github.com/kbox-go/kbox/internal/inproc"
	"github.com/kbox-go/kbox/internal/netuser"
	"github.com/kbox-go/kbox/internal/tmpdirs"
	"github.com/kbox-go/kbox/internal/trace"
	"github.com/kbox-go/kbox/internal/vfs"
	"github.com/kbox-go/kbox/internal/web"
)

// Plan is a run ready to start: everything Options asked for, checked
// against the host and the guest. Close releases it (and removes the
// private directories of its mount table).
type Plan struct {
	NS       *vfs.Namespace
	Identity identity.Config
	Mode     string // --syscall-mode as given
	Tier     string // the tier chosen: seccomp, trap or rewrite
	Why      string // why that tier
	Warnings []string
	Argv     []string
	Path     string // guest path of the program
	Env      []string
	WorkDir  string
	Verbose  bool
	KeepCaps bool
	// Net is --net (checkNet): "host", "none" or "user".
	Net string
	// NetUser is --net=user's configuration (nil otherwise).
	NetUser *netuser.Config
	// Trace: --trace, --trace-format, --trace-filter and --summary.
	Trace trace.Options
	// stale delivers what the removal of earlier runs' leftovers removed:
	// it reads the whole temporary directory, so it runs beside the start
	// instead of before it, and Close waits for it.
	stale chan []string
	// Web: --web and its companions.
	Web web.Options
}

// Close releases the namespace and removes its private directories.
func (p *Plan) Close() {
	if p == nil {
		return
	}
	if p.stale != nil {
		for _, d := range <-p.stale {
			p.verbosef("removed %s, left behind by a kbox that did not end normally", d)
		}
		p.stale = nil
	}
	if p.NS == nil {
		return
	}
	p.NS.RemovePrivate()
	p.NS.Close()
	p.NS = nil
}

func (p *Plan) verbosef(format string, args ...any) {
	if p.Verbose {
		fmt.Fprintf(os.Stderr, "kbox: "+format+"\n", args...)
	}
}

// Prepare checks o and builds the run's plan: the mount table, the
// guest's identity, working directory, environment and program, and the
// tier. Its errors are Errors (ExitCode gives the status).
func Prepare(o Options) (*Plan, error) {
	s, err := check(o)
	if err != nil {
		return nil, err
	}
	if s.mode == "trap" || s.mode == "rewrite" {
		if err := inproc.Available(); err != nil {
			return nil, usagef("--syscall-mode=%s: %v", s.mode, err)
		}
		if s.overlay {
			return nil, usagef("--syscall-mode=%s: --overlay is served by the seccomp tier only", s.mode)
		}
		if s.net == "user" {
			return nil, usagef("--syscall-mode=%s: --net=user is served by the seccomp tier only (its in-process guest's calls run natively, where kbox cannot translate their addresses)", s.mode)
		}
	}
	p := &Plan{Identity: s.id, Mode: s.mode, Argv: s.argv, Env: s.env, Verbose: s.verbose, KeepCaps: s.keepCaps, Trace: s.trace, Web: s.web, Net: s.net, NetUser: s.netUser}
	// What earlier runs killed before their cleanup left behind.
	p.stale = make(chan []string, 1)
	go func() { p.stale <- tmpdirs.CleanStale() }()
	if p.NS, err = buildNamespace(s); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	if p.WorkDir, err = workDir(p.NS, s); err != nil {
		return nil, err
	}
	if p.Path, err = findCommand(p.NS, p.WorkDir, p.Argv[0], p.Env); err != nil {
		return nil, err
	}
	in := tierInput{Mode: s.mode, InProcess: inproc.Available(), NetUser: s.net == "user"}
	if s.mode != "seccomp" && in.InProcess == nil {
		in.Gaps = InProcessGaps(p.NS)
	}
	in.Scan = func() (string, string) { return scanProgram(p.NS, p.WorkDir, p.Path, p.Env) }
	p.Tier, p.Why, p.Warnings = chooseTier(in)
	ok = true
	return p, nil
}

// workDir is the guest's initial working directory: -w, else with a
// root flag the guest's /, else (the host's / read-only) kbox's own
// working directory when the guest has it, as proot and bwrap do.
func workDir(ns *vfs.Namespace, s spec) (string, error) {
	if s.workDir != "" {
		if err := guestDir(ns, s.workDir); err != nil {
			return "", failf(ExitFailure, "--work-dir %s: %s in the guest", s.workDir, describeErrno(err))
		}
		return s.workDir, nil
	}
	if s.root.Kind == RootHost && path.IsAbs(s.cwd) && guestDir(ns, path.Clean(s.cwd)) == nil {
		return path.Clean(s.cwd), nil
	}
	return "/", nil
}

// tierInput is what the tier is chosen from.
type tierInput struct {
	Mode      string
	InProcess error    // nil when this build has the in-process tiers (inproc.Available)
	Gaps      []string // what the kernel cannot enforce in-process here (InProcessGaps)
	NetUser   bool     // --net=user, which only the seccomp tier serves
	// Scan says which tier the program itself allows (internal/forkscan):
	// called only when nothing else decides.
	Scan func() (tier, why string)
}

// chooseTier picks the tier: the requested one (with a warning for each
// gap), or for auto seccomp when the build has no in-process tier or the
// kernel cannot confine one here, before looking at the program (the
// scan costs tens of milliseconds), else what the scan says.
func chooseTier(in tierInput) (tier, why string, warnings []string) {
	switch in.Mode {
	case "trap", "rewrite":
		for _, g := range in.Gaps {
			warnings = append(warnings, fmt.Sprintf("--syscall-mode=%s: not enforced by the kernel: %s", in.Mode, g))
		}
		return in.Mode, "requested", warnings
	case "auto":
	default:
		return "seccomp", "requested", nil
	}
	switch {
	case in.InProcess != nil:
		return "seccomp", "auto: no in-process tier in this build", nil
	case in.NetUser:
		return "seccomp", "auto: --net=user is served by the seccomp tier only", nil
	case len(in.Gaps) > 0:
		return "seccomp", "auto: the kernel cannot confine an in-process guest here: " + in.Gaps[0], nil
	}
	tier, why = in.Scan()
	return tier, why, nil
}

// scanProgram is auto's look at the program: rewrite for one that, with
// every library it loads at start, cannot create processes or threads
// (internal/forkscan.Program), seccomp for everything else (shells,
// scripts, threaded and Go programs, anything the scan cannot decide).
// docs/interception-tiers.md has the rules and what the scan cannot see.
func scanProgram(ns *vfs.Namespace, workDir, guestPath string, env []string) (string, string) {
	v, reason := forkscan.Program(ns, workDir, guestPath, env)
	if !v.InProcess() {
		return "seccomp", "auto: " + reason
	}
	return "rewrite", "auto: " + reason
}

// defaultPath is the search path when the guest's environment has no
// PATH (as the shells' default).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// findCommand locates cmd in the guest (a PATH search when it has no
// slash) and checks it can be executed, for a clear error before launch.
func findCommand(ns *vfs.Namespace, workDir, cmd string, env []string) (string, error) {
	if cmd == "" {
		return "", usagef("the command is empty")
	}
	ctx := &vfs.Context{Cwd: workDir, Root: "/"}
	var candidates []string
	if strings.Contains(cmd, "/") {
		candidates = []string{cmd}
	} else {
		pathVar := defaultPath
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				pathVar = v
			}
		}
		for _, dir := range strings.Split(pathVar, ":") {
			if dir == "" {
				dir = "."
			}
			candidates = append(candidates, path.Join(dir, cmd))
		}
	}
	var notExec error
	for _, c := range candidates {
		l, err := ns.Resolve(ctx, "", c, vfs.FollowFinal)
		if err != nil {
			continue
		}
		exists, regular := l.Exists(), l.Type() == unix.S_IFREG
		var accErr error
		if exists && regular {
			accErr = unix.Faccessat2(l.Obj.FD(), "", unix.X_OK, unix.AT_EMPTY_PATH|unix.AT_EACCESS)
		}
		isDir := l.IsDir()
		l.Release()
		switch {
		case !exists:
			continue
		case isDir:
			notExec = failf(ExitNotExec, "%s: is a directory in the guest", c)
		case !regular:
			notExec = failf(ExitNotExec, "%s: not a regular file in the guest", c)
		case accErr != nil:
			notExec = failf(ExitNotExec, "%s: not executable in the guest", c)
		default:
			if !path.IsAbs(c) {
				c = path.Join(workDir, c)
			}
			return c, nil
		}
	}
	if notExec != nil {
		return "", notExec
	}
	return "", failf(ExitNotFound, "%s: command not found in the guest", cmd)
}
