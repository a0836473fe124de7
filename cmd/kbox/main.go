// Command kbox runs a Linux program inside a guest root filesystem without
// root, containers or ptrace: every syscall is intercepted and resolved in
// the guest's own namespace. This file only wires the command line to the
// internal packages.
package main

import (
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/dispatch"
	"github.com/kbox-go/kbox/internal/forkscan"
	"github.com/kbox-go/kbox/internal/identity"
	"github.com/kbox-go/kbox/internal/landlock"
	"github.com/kbox-go/kbox/internal/launch"
	"github.com/kbox-go/kbox/internal/policy"
	"github.com/kbox-go/kbox/internal/sandbox"
	"github.com/kbox-go/kbox/internal/seccomp"
	"github.com/kbox-go/kbox/internal/tier/trap"
	"github.com/kbox-go/kbox/internal/tier/unotify"
	"github.com/kbox-go/kbox/internal/tmpdirs"
	"github.com/kbox-go/kbox/internal/vfs"
)

// Version is the kbox release.
const Version = "0.1.0"

// Exit statuses of kbox itself (the guest's own status is passed through).
const (
	exitUsage    = 2   // bad flags or arguments
	exitSetup    = 3   // a root or bind mount that cannot be used
	exitInternal = 125 // kbox failed to start the guest
	exitNotExec  = 126 // the command exists but cannot be executed
	exitNotFound = 127 // the command does not exist in the guest
)

type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func fail(code int, format string, args ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...)}
}

func init() {
	if len(os.Args) > 1 && os.Args[1] == sandbox.Marker {
		// The confined child names the process after the guest's program
		// from its main thread (internal/tier/trap, setComm).
		runtime.LockOSThread()
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == sandbox.Marker {
		os.Exit(launch.InProcessChild())
	}
	if len(os.Args) > 1 && os.Args[1] == unotify.ReaperArg {
		unotify.ReaperMain()
		return
	}
	if len(os.Args) > 1 && os.Args[1] == unotify.InitArg {
		unotify.ChildMain()
		return
	}
	code, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "kbox: %v\n", err)
	}
	os.Exit(code)
}

type options struct {
	rootDir, recommendedRoot, systemRoot string
	binds                                []string
	workDir                              string
	command                              string
	rootID                               bool
	changeID                             string
	mode                                 string
	verbose                              bool
	keepCaps                             bool
	help, version                        bool
}

func newFlagSet(o *options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("kbox", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.StringVarP(&o.rootDir, "root-dir", "r", "", "use directory `DIR` as the guest's / (nothing else is mounted)")
	fs.StringVarP(&o.recommendedRoot, "recommended-root", "R", "", "use `DIR` as / and also mount the host's /proc (only the guest's processes; read-only but for each process's own entries), /sys (read-only), a private /dev (null, zero, full, random, urandom, tty, ptmx, the guest's own ptys, a private shm) and a private writable /tmp")
	fs.StringVarP(&o.systemRoot, "system-root", "S", "", "like --recommended-root `DIR`, and the guest runs as root (implies --root-id)")
	fs.StringArrayVarP(&o.binds, "bind-mount", "b", nil, "make host directory SRC visible at guest path DST, read-only with :ro; repeatable (`SRC:DST[:ro]`)")
	fs.StringVarP(&o.workDir, "work-dir", "w", "/", "initial working directory inside the guest (`DIR`)")
	fs.StringVarP(&o.command, "command", "c", "", "program to run; all positional arguments become its arguments (`CMD`)")
	fs.BoolVarP(&o.rootID, "root-id", "0", false, "the guest sees itself as uid 0 / gid 0; your files appear owned by root, and chown and set-id bits are recorded (user.containers.override_stat)")
	fs.StringVar(&o.changeID, "change-id", "", "the guest sees itself as `UID:GID`; your files appear owned by it")
	fs.StringVar(&o.mode, "syscall-mode", "auto", "interception tier (`MODE`): seccomp (child process, supervisor answers; runs anything), trap (in-process, every syscall a SIGSYS; single-process, single-threaded programs; needs a cgo build), rewrite (trap plus patched syscall sites: descriptor-local calls on files run without a signal), auto (rewrite when the program cannot fork or start threads and the kernel can confine the in-process kbox with Landlock ABI 3+, else seccomp)")
	fs.BoolVar(&o.keepCaps, "keep-caps", false, "when started as real root, let the guest keep root's capabilities (default: none)")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "one stderr line per denied or unsupported call and per tier decision; a summary at exit")
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")
	fs.BoolVar(&o.version, "version", false, "print the version")
	fs.Usage = func() {}
	return fs
}

func usage(fs *pflag.FlagSet) string {
	return `Usage: kbox [flags] [--] [COMMAND [ARGS...]]

Run COMMAND (default /bin/sh) inside a guest root filesystem, rootless.
Every path the program names is resolved inside the guest's mount table;
it cannot reach host files outside it. With no root flag the guest's / is
the host's / mounted read-only.

Flags:
` + fs.FlagUsages() + `
Exit status: the guest's own (128+N when it is killed by signal N);
2 bad usage, 3 unusable root or bind mount, 125 kbox could not start the
guest, 126 the command is not executable, 127 the command was not found.
`
}

func run(args []string) (int, error) {
	var o options
	fs := newFlagSet(&o)
	if err := fs.Parse(args); err != nil {
		return exitUsage, fmt.Errorf("%v (see kbox --help)", err)
	}
	if o.help {
		fmt.Print(usage(fs))
		return 0, nil
	}
	if o.version {
		fmt.Printf("kbox %s (%s, %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0, nil
	}
	switch o.mode {
	case "auto", "seccomp":
	case "trap", "rewrite":
		if err := trap.Available(); err != nil {
			return exitUsage, fmt.Errorf("--syscall-mode=%s: %v", o.mode, err)
		}
	default:
		return exitUsage, fmt.Errorf("--syscall-mode must be auto, seccomp, trap or rewrite, not %q", o.mode)
	}

	// What earlier runs killed before their cleanup left behind.
	for _, p := range tmpdirs.CleanStale() {
		if o.verbose {
			fmt.Fprintf(os.Stderr, "kbox: removed %s, left behind by a kbox that did not end normally\n", p)
		}
	}
	idCfg, err := identityFrom(&o)
	if err != nil {
		return exitUsage, err
	}
	ns, cleanup, err := buildNamespace(&o)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code, ee
		}
		return exitSetup, err
	}
	defer cleanup()

	argv := fs.Args()
	if o.command != "" {
		argv = append([]string{o.command}, argv...)
	}
	if len(argv) == 0 {
		argv = []string{"/bin/sh"}
	}
	workDir := path.Clean("/" + o.workDir)
	guestPath, err := findCommand(ns, workDir, argv[0], os.Environ())
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code, ee
		}
		return exitInternal, err
	}
	tierName, why := o.mode, "requested"
	if o.mode == "auto" {
		tierName, why = autoTier(ns, workDir, guestPath)
	}

	arch := abi.Host()
	pol, err := policy.Resolve(arch, policy.Options{VirtualIdentity: idCfg.Virtual})
	if err != nil {
		return exitInternal, err
	}
	verbosef := func(format string, args ...any) {
		if o.verbose {
			fmt.Fprintf(os.Stderr, "kbox: "+format+"\n", args...)
		}
	}
	if tierName == "trap" || tierName == "rewrite" {
		gaps := launch.InProcessGaps(ns)
		if o.mode == "auto" && len(gaps) > 0 {
			tierName, why = "seccomp", why+", but the kernel cannot confine an in-process guest here: "+gaps[0]
		} else {
			for _, g := range gaps {
				fmt.Fprintf(os.Stderr, "kbox: warning: --syscall-mode=%s: not enforced by the kernel: %s\n", tierName, g)
			}
			verbosef("tier: %s (%s)", tierName, why)
			env := append(os.Environ(), "KBOX_SYSCALL_MODE="+tierName)
			code, started, err := launch.RunInProcess(launch.InProcess{Tier: tierName, Identity: idCfg, WorkDir: workDir,
				Path: guestPath, Argv: argv, Env: env, Verbose: o.verbose, KeepCaps: o.keepCaps}, ns, pol, verbosef)
			if started || o.mode != "auto" {
				return code, err
			}
			// The in-process tier could not start the guest: the next tier.
			verbosef("tier %s failed to start (%v): falling back to seccomp", tierName, err)
			tierName, why = "seccomp", "auto: fallback"
		}
	}

	if pf := os.Getenv("KBOX_CPUPROFILE"); pf != "" {
		// Profiling hook for docs/benchmarks.md; not a user feature.
		if f, err := os.Create(pf); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	execTmp, err := tmpdirs.Make("exec", 0o700)
	if err != nil {
		return exitInternal, fmt.Errorf("creating the exec directory: %w", err)
	}
	defer execTmp.Remove()
	execDir := execTmp.Path
	prog, err := seccomp.Compile(pol.Program())
	if err != nil {
		return exitInternal, fmt.Errorf("compiling the seccomp filter: %w", err)
	}
	llABI := landlock.ABI()
	var execRoots []string
	for _, m := range ns.Mounts() {
		execRoots = append(execRoots, m.Host)
	}
	eng, err := dispatch.New(launch.EngineConfig(ns, pol, idCfg, workDir, execDir, o.verbose, o.keepCaps))
	if err != nil {
		return exitInternal, err
	}
	defer eng.Close()
	eng.Verbosef("tier: seccomp (%s)", why)
	eng.Verbosef("seccomp filter: %d instructions", len(prog))
	if llABI > 0 {
		eng.Verbosef("landlock ABI %d: exec confined to the guest's mounts (backstop)", llABI)
	} else {
		eng.Verbosef("landlock unavailable: execve from multi-threaded processes is refused")
	}
	env := append(os.Environ(), "KBOX_SYSCALL_MODE=seccomp")
	res, err := unotify.Run(eng, unotify.Launch{Filter: prog, Path: guestPath, Argv: argv, Env: env, ExecDir: execDir, KeepCaps: o.keepCaps,
		Landlock: llABI, ExecRoots: execRoots})
	if err != nil {
		return exitInternal, err
	}
	eng.Report()
	if res.Error != "" {
		return res.ExitCode, errors.New(res.Error)
	}
	return res.ExitCode, nil
}

// autoTier picks the tier for --syscall-mode=auto: rewrite for a program
// that cannot create processes or threads (internal/forkscan), seccomp for
// everything else (shells, scripts, threaded and Go programs) and when the
// in-process tiers are not in this build. docs/interception-tiers.md has
// the rules and what the scan cannot see.
func autoTier(ns *vfs.Namespace, workDir, guestPath string) (string, string) {
	if err := trap.Available(); err != nil {
		return "seccomp", "auto: no in-process tier in this build"
	}
	f, err := ns.OpenFile(workDir, guestPath)
	if errors.Is(err, unix.ENOENT) {
		return "seccomp", "auto: program not found"
	}
	if err != nil {
		return "seccomp", "auto: " + err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "seccomp", "auto: " + err.Error()
	}
	rep, err := forkscan.Scan(f, st.Size())
	if err != nil {
		return "seccomp", "auto: not a program the in-process tiers load (" + err.Error() + ")"
	}
	if creates, reason := rep.CreatesProcesses(); creates {
		return "seccomp", "auto: " + reason
	}
	return "rewrite", "auto: no fork-family sites"
}

func identityFrom(o *options) (identity.Config, error) {
	if o.rootID || o.systemRoot != "" {
		return identity.Config{Virtual: true, UID: 0, GID: 0}, nil
	}
	if o.changeID != "" {
		var u, g uint32
		var rest string
		n, _ := fmt.Sscanf(o.changeID, "%d:%d%s", &u, &g, &rest)
		if n != 2 || strings.Count(o.changeID, ":") != 1 || u == identity.Keep || g == identity.Keep {
			return identity.Config{}, fmt.Errorf("--change-id wants UID:GID (decimal), got %q", o.changeID)
		}
		return identity.Config{Virtual: true, UID: u, GID: g}, nil
	}
	return identity.Config{}, nil
}

// buildNamespace turns the root and bind flags into a mount table.
func buildNamespace(o *options) (*vfs.Namespace, func(), error) {
	ns := vfs.NewNamespace()
	cleanup := func() { ns.RemovePrivate(); ns.Close() }
	root, recommended := "", false
	set := 0
	for _, r := range []struct {
		v   string
		rec bool
	}{{o.rootDir, false}, {o.recommendedRoot, true}, {o.systemRoot, true}} {
		if r.v != "" {
			set++
			root = r.v
			recommended = recommended || r.rec
		}
	}
	if set > 1 {
		return nil, nil, fail(exitUsage, "give only one of --root-dir, --recommended-root, --system-root")
	}
	if root == "" {
		if err := ns.Add("/", "/", true, vfs.KindBind); err != nil {
			return nil, nil, fail(exitSetup, "mounting the host's / read-only: %v", err)
		}
		// /proc is read-only except each process's own entries (the
		// resolver's rule for every procfs mount); /dev is kbox's private
		// one, as with -R/-S.
		var sfs unix.Statfs_t
		if unix.Statfs("/proc", &sfs) == nil && sfs.Type == unix.PROC_SUPER_MAGIC {
			if err := ns.Add("/proc", "/proc", false, vfs.KindProc); err != nil {
				return nil, nil, fail(exitSetup, "mounting /proc: %v", err)
			}
		}
		if err := ns.AddDev("/dev"); err != nil {
			cleanup()
			return nil, nil, fail(exitSetup, "mounting /dev: %v", err)
		}
	} else {
		st, err := os.Stat(root)
		switch {
		case err != nil:
			return nil, nil, fail(exitSetup, "guest root %s: %v", root, errors.Unwrap(err))
		case !st.IsDir():
			return nil, nil, fail(exitSetup, "guest root %s is not a directory", root)
		}
		if err := ns.Add("/", root, false, vfs.KindBind); err != nil {
			return nil, nil, fail(exitSetup, "guest root %s: %v", root, err)
		}
		if recommended {
			// The host's /proc (read-only except each process's own
			// entries: the resolver's rule for every procfs mount) and
			// /sys (read-only), kbox's private /dev (vfs.AddDev) and a
			// private /tmp.
			for _, m := range []struct {
				guest, host string
				ro          bool
			}{{"/proc", "/proc", false}, {"/sys", "/sys", true}} {
				os.Mkdir(path.Join(root, m.guest), 0o755)
				if err := ns.Add(m.guest, m.host, m.ro, vfs.KindBind); err != nil {
					cleanup()
					return nil, nil, fail(exitSetup, "mounting host %s: %v", m.host, err)
				}
			}
			os.Mkdir(path.Join(root, "dev"), 0o755)
			if err := ns.AddDev("/dev"); err != nil {
				cleanup()
				return nil, nil, fail(exitSetup, "mounting /dev: %v", err)
			}
			unix.Mkdir(path.Join(root, "tmp"), 0o1777)
			if err := ns.AddPrivate("/tmp", "tmp", 0o1777); err != nil {
				cleanup()
				return nil, nil, fail(exitSetup, "mounting the private /tmp: %v", err)
			}
		}
	}
	for _, spec := range o.binds {
		src, dst, ro, err := parseBind(spec)
		if err != nil {
			cleanup()
			return nil, nil, fail(exitUsage, "%v", err)
		}
		st, err := os.Stat(src)
		if err != nil {
			cleanup()
			return nil, nil, fail(exitSetup, "bind source %s: %v", src, errors.Unwrap(err))
		}
		if !st.IsDir() {
			cleanup()
			return nil, nil, fail(exitSetup, "bind source %s is not a directory (only directories can be bound)", src)
		}
		if !ns.MakeMountPoint(dst) && root != "" {
			os.MkdirAll(path.Join(root, dst), 0o755)
		}
		if err := ns.Add(dst, src, ro, vfs.KindBind); err != nil {
			cleanup()
			return nil, nil, fail(exitSetup, "bind %s: %v", spec, err)
		}
	}
	ns.Seal()
	return ns, cleanup, nil
}

// parseBind parses SRC:DST[:ro].
func parseBind(spec string) (src, dst string, ro bool, err error) {
	parts := strings.Split(spec, ":")
	if len(parts) == 3 {
		if parts[2] != "ro" && parts[2] != "rw" {
			return "", "", false, fmt.Errorf("bind mount %q: the third field must be ro or rw", spec)
		}
		ro = parts[2] == "ro"
		parts = parts[:2]
	}
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", "", false, fmt.Errorf("bind mount %q: want SRC:DST[:ro]", spec)
	}
	if !path.IsAbs(parts[1]) {
		return "", "", false, fmt.Errorf("bind mount %q: DST must be an absolute guest path", spec)
	}
	if path.Clean(parts[1]) == "/" {
		return "", "", false, fmt.Errorf("bind mount %q: use --root-dir to replace /", spec)
	}
	return parts[0], path.Clean(parts[1]), ro, nil
}

// findCommand locates argv[0] in the guest (PATH search when it has no
// slash) and checks it can be executed, for a clear error before launch.
func findCommand(ns *vfs.Namespace, workDir, cmd string, env []string) (string, error) {
	ctx := &vfs.Context{Cwd: workDir, Root: "/"}
	l, err := ns.Resolve(ctx, "", workDir, vfs.FollowFinal)
	if err != nil || !l.IsDir() {
		if l != nil {
			l.Release()
		}
		return "", fail(exitSetup, "work directory %s does not exist in the guest", workDir)
	}
	l.Release()
	var candidates []string
	if strings.Contains(cmd, "/") {
		candidates = []string{cmd}
	} else {
		pathVar := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
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
		l.Release()
		switch {
		case !exists:
			continue
		case !regular:
			notExec = fail(exitNotExec, "%s: not a regular file in the guest", c)
		case accErr != nil:
			notExec = fail(exitNotExec, "%s: not executable in the guest", c)
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
	return "", fail(exitNotFound, "%s: command not found in the guest", cmd)
}
