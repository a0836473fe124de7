// Command kbox runs a Linux program inside a guest root filesystem without
// root, containers or ptrace: every syscall is intercepted and resolved in
// the guest's own namespace. This file only turns the command line into
// launch.Options and prints what launch says; internal/launch prepares
// and runs the guest.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kbox-go/kbox/internal/inproc"
	"github.com/kbox-go/kbox/internal/launch"
	"github.com/kbox-go/kbox/internal/sandbox"
	"github.com/kbox-go/kbox/internal/tier/unotify"
	"github.com/kbox-go/kbox/internal/web"
)

// Version is the kbox release.
const Version = "0.1.0"

func init() {
	if len(os.Args) > 1 && os.Args[1] == sandbox.Marker {
		// The confined child names the process after the guest's program
		// from its main thread (internal/inproc, setComm).
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
	if len(os.Args) > 1 && os.Args[1] == "diff" {
		// kbox diff UPPER; kbox -- diff runs a program named diff.
		code, err := runDiff(os.Args[2:])
		if err != nil {
			fmt.Fprintf(os.Stderr, "kbox diff: %v\n", err)
		}
		os.Exit(code)
	}
	run := run
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "image":
			run, os.Args = imageCommand, os.Args[1:]
		case "run":
			run, os.Args = runImage, os.Args[1:]
		}
	}
	code, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "kbox: %v\n", err)
	}
	os.Exit(code)
}

// flags are the values the flag set fills.
type flags struct {
	o                                    launch.Options
	rootDir, recommendedRoot, systemRoot string
	help, version                        bool
	overlay                              string
}

// overlayTemp is --overlay's value when given without =DIR.
const overlayTemp = "(temporary)"

// envFlag is --setenv, --unsetenv or --clearenv: each appends to one
// ordered list, so that they apply in the order given.
type envFlag struct {
	kind launch.EnvOpKind
	ops  *[]launch.EnvOp
}

func (f envFlag) String() string { return "" }
func (f envFlag) Type() string {
	return map[launch.EnvOpKind]string{launch.EnvSet: "NAME=VALUE", launch.EnvUnset: "NAME", launch.EnvClear: "bool"}[f.kind]
}
func (f envFlag) Set(v string) error {
	op, err := launch.ParseEnvFlag(f.kind, v)
	if err == nil {
		*f.ops = append(*f.ops, op)
	}
	return err
}
func (f envFlag) IsBoolFlag() bool { return f.kind == launch.EnvClear }

func newFlagSet(f *flags) *pflag.FlagSet {
	o := &f.o
	fs := pflag.NewFlagSet("kbox", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SortFlags = false
	fs.StringVarP(&f.rootDir, "root-dir", "r", "", "use directory `DIR` as the guest's / (nothing else is mounted)")
	fs.StringVarP(&f.recommendedRoot, "recommended-root", "R", "", "use `DIR` as / and also mount the host's /proc (only the guest's processes; read-only but for each process's own entries), /sys (read-only), a private /dev (null, zero, full, random, urandom, tty, ptmx, the guest's own ptys, a private shm), a private writable /tmp (removed at exit) and the host's /etc/resolv.conf, /etc/hosts, /etc/nsswitch.conf (read-only)")
	fs.StringVarP(&f.systemRoot, "system-root", "S", "", "like --recommended-root `DIR`, and the guest runs as root (implies --root-id)")
	fs.StringVar(&f.overlay, "overlay", "", "the root below is never written: the guest's changes go to upper directory `DIR` (kept; kbox diff DIR lists them), or without =DIR to a temporary one removed at exit (docs/overlay.md)")
	fs.Lookup("overlay").NoOptDefVal = overlayTemp
	fs.BoolVar(&o.ReadOnly, "read-only", false, "make the guest's root read-only (every change fails with EROFS); the private /tmp and /dev and binds keep their own modes")
	fs.StringArrayVarP(&o.Binds, "bind-mount", "b", nil, "make host directory or file SRC visible at guest path DST (`SRC:DST[:ro]`, read-only with :ro); repeatable")
	fs.StringVarP(&o.WorkDir, "work-dir", "w", "", "initial working directory `DIR` inside the guest (default: / with a root flag, else kbox's own)")
	fs.StringVarP(&o.Command, "command", "c", "", "program `CMD` to run; all positional arguments become its arguments")
	fs.Var(envFlag{launch.EnvSet, &o.Env}, "setenv", "set a variable in the guest's environment; repeatable")
	fs.Var(envFlag{launch.EnvUnset, &o.Env}, "unsetenv", "remove a variable from the guest's environment; repeatable")
	fs.Var(envFlag{launch.EnvClear, &o.Env}, "clearenv", "start the guest's environment empty (the environment flags apply in the order given)")
	fs.Lookup("clearenv").NoOptDefVal = "true"
	fs.BoolVarP(&o.RootID, "root-id", "0", false, "the guest sees itself as uid 0 / gid 0 with root's capabilities; your files appear owned by root, other users' keep their ids; chown, chmod and new files' owners are recorded (user.containers.override_stat) and checked as Linux would (docs/identity.md)")
	fs.StringVar(&o.ChangeID, "change-id", "", "the guest sees itself as `UID:GID`; your files appear owned by it (not with -0 or -S)")
	fs.StringVar(&o.Mode, "syscall-mode", "auto", "interception tier `MODE`: seccomp (child process, supervisor answers; runs anything), trap (in-process, every syscall a SIGSYS; single-process, single-threaded programs; needs a cgo build), rewrite (trap plus patched syscall sites: descriptor-local calls on files run without a signal), auto (rewrite when the program cannot fork or start threads and the kernel can confine the in-process kbox with Landlock ABI 3+, else seccomp)")
	fs.StringVar(&o.Net, "net", "host", "the guest's network `MODE`: host (the host's network, as the invoking user reaches it; abstract AF_UNIX names are the sandbox's own in every mode), none (AF_UNIX sockets only: every other socket family fails with EAFNOSUPPORT) or user (the sandbox's own: the guest is 10.0.2.15 with its own loopback, the host's 127.0.0.1 is the gateway 10.0.2.2, DNS is 10.0.2.3; outbound IPv4 only to --allow-net, the rest fails with EACCES; no IPv6; seccomp tier only) (docs/network.md)")
	fs.StringArrayVar(&o.AllowNet, "allow-net", nil, "with --net=user, let the guest reach `HOST[:PORT]`: an IPv4 address, ADDR/BITS, a name (resolved by kbox at start), or 10.0.2.2 for the host's loopback services; repeatable")
	fs.StringArrayVar(&o.Publish, "publish", nil, "with --net=user, the guest's server on port GUEST (TCP and UDP) listens on the host's 127.0.0.1:HOST (or IP:HOST): `[IP:]HOST:GUEST`; repeatable")
	fs.StringVar(&o.DNS, "dns", "", "with --net=user, the DNS server `ADDR[:PORT]` the forwarder 10.0.2.3:53 sends to (default: the host's /etc/resolv.conf's first IPv4 nameserver)")
	fs.BoolVar(&o.KeepCaps, "keep-caps", false, "when started as real root, let the guest keep root's capabilities (default: none)")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "one stderr line per denied or unsupported call and per tier decision; a summary at exit")
	fs.StringVar(&o.Trace.Path, "trace", "", "record every syscall kbox sees to `FILE` (- for stderr), strace-like or JSON lines (docs/observability.md)")
	fs.StringVar(&o.Trace.Format, "trace-format", "text", "format of --trace: text or json (`FORMAT`)")
	fs.StringVar(&o.Trace.Filter, "trace-filter", "", "which calls --trace records, as strace's -e trace=: classes (file, process, network, signal, ipc, desc, memory), names, ! to negate, comma-separated (`SPEC`)")
	fs.StringVar(&o.Trace.Summary, "summary", "", "at exit, a summary of the run: a JSON document to `FILE`, or with - (or no value) an strace -c style table on stderr")
	fs.Lookup("summary").NoOptDefVal = "-"
	fs.BoolVar(&o.Trace.Fast, "trace-fast", false, "with --trace or --web in the rewrite tier, also record the calls its fast path would serve without a trap: the fast path is left off, so each costs a trap (docs/observability.md)")
	fs.StringVar(&o.Web.Addr, "web", "", "serve a live dashboard of the run at `ADDR` (HOST:PORT or PORT; default "+web.DefaultAddr+", loopback only): rates, latencies, the guest's processes, the events (docs/observability.md); -v prints the URL")
	fs.Lookup("web").NoOptDefVal = web.DefaultAddr
	fs.BoolVar(&o.Web.BindAny, "web-bind-any", false, "let --web listen on a non-loopback address (the dashboard shows the guest's paths and arguments to whoever connects)")
	fs.DurationVar(&o.Web.Linger, "web-linger", 0, "keep the --web dashboard serving for `DURATION` (e.g. 30s) after the guest ends")
	fs.BoolVarP(&f.help, "help", "h", false, "show this help")
	fs.BoolVar(&f.version, "version", false, "print the version and the tiers this build has")
	fs.Usage = func() {}
	return fs
}

func usage(fs *pflag.FlagSet) string {
	return `Usage: kbox [flags] [--] [COMMAND [ARGS...]]

Run COMMAND (default /bin/sh) inside a guest root filesystem, rootless.
Every path the program names is resolved inside the guest's mount table;
it cannot reach host files outside it. With no root flag the guest's / is
the host's / read-only, and the guest starts in your working directory.
A root flag may name an ext4 image instead of a directory: it is unpacked
once into $XDG_CACHE_HOME/kbox/roots (docs/images.md).
The guest's environment is yours, changed only by the environment flags.

Flags:
` + fs.FlagUsagesWrapped(80) + `
Examples:
  kbox -R ./debian -- sh              a shell in a root, with /proc, /dev, /tmp
  kbox -S ./debian -- apt-get update  as root (virtual), e.g. to install
  kbox -r ./root -b ./src:/src:ro -w /src -- make
  kbox --clearenv --setenv PATH=/bin -- env
  kbox -S ./debian --trace=- --trace-filter=file -- ls /etc
  kbox -S ./debian --summary=run.json -- make
  kbox -S ./debian --web -v --web-linger=1m -- make
  kbox image pull docker.io/library/alpine:3.21 ./alpine
  kbox run ./alpine -- sh             the image's user, environment, command

Subcommands: kbox image pull|unpack|prune (images), kbox run (a pulled
image's configuration applied); kbox image --help, kbox run --help.

Exit status: the guest's own (128+N when it is killed by signal N);
125 kbox itself failed (bad usage, an unusable root or bind, a start-up
error), 126 the command is not executable, 127 the command was not found.
`
}

// tiers are the interception tiers this build has.
func tiers() string {
	if inproc.Available() != nil {
		return "seccomp"
	}
	return "seccomp, trap, rewrite"
}

func run(args []string) (int, error) {
	var f flags
	fs := newFlagSet(&f)
	if err := fs.Parse(args); err != nil {
		return launch.ExitFailure, fmt.Errorf("%v (see kbox --help)", err)
	}
	if f.help {
		fmt.Print(usage(fs))
		return 0, nil
	}
	if f.version {
		fmt.Printf("kbox %s (%s, %s/%s; tiers: %s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH, tiers())
		return 0, nil
	}
	o, err := options(f, fs)
	if err != nil {
		return launch.ExitFailure, err
	}
	if err := ext4Roots(&o); err != nil {
		return launch.ExitFailure, err
	}
	return start(o)
}

// options is the launch options the parsed flags say.
func options(f flags, fs *pflag.FlagSet) (launch.Options, error) {
	o := f.o
	for _, r := range []struct {
		name string
		kind launch.RootKind
		dir  string
	}{{"root-dir", launch.RootPlain, f.rootDir}, {"recommended-root", launch.RootRecommended, f.recommendedRoot},
		{"system-root", launch.RootSystem, f.systemRoot}} {
		if fs.Changed(r.name) {
			o.Roots = append(o.Roots, launch.Root{Kind: r.kind, Dir: r.dir})
		}
	}
	if fs.Changed("overlay") {
		o.Overlay = true
		if f.overlay != overlayTemp {
			if f.overlay == "" {
				return o, fmt.Errorf("--overlay=: empty directory (see kbox --help)")
			}
			o.OverlayDir = f.overlay
		}
	}
	o.WorkDirSet = fs.Changed("work-dir")
	o.CommandSet = fs.Changed("command")
	o.ChangeSet = fs.Changed("change-id")
	o.Args = fs.Args()
	o.HostEnv = os.Environ()
	if wd, err := os.Getwd(); err == nil && strings.HasPrefix(wd, "/") {
		o.Cwd = wd
	}
	return o, nil
}

// start prepares and runs the guest.
func start(o launch.Options) (int, error) {
	p, err := launch.Prepare(o)
	if err != nil {
		return launch.ExitCode(err), err
	}
	defer p.Close()
	code, err := launch.Run(p)
	if err != nil && code == 0 {
		code = launch.ExitCode(err)
	}
	return code, err
}
