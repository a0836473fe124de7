package main

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// allPeers are the other sandboxes compared, in column order.
var allPeers = []string{"proot", "bwrap", "runsc", "fakechroot"}

// peerPackages are the Debian packages of the peers apt-get can install.
var peerPackages = map[string]string{"proot": "proot", "bwrap": "bubblewrap", "fakechroot": "fakechroot"}

// runscVersion is the gVisor module version go install builds.
const runscVersion = "gvisor.dev/gvisor/runsc@v0.0.0-20260905035102-160fafc42237"

// runscVariants are the global flags tried, in order, for `runsc ... do`.
var runscVariants = [][]string{
	{"--rootless", "--network=none"},
	{"--rootless", "--network=none", "--ignore-cgroups"},
	{"--network=none", "--ignore-cgroups"},
	{"--network=none", "--ignore-cgroups", "--platform=ptrace"},
}

// peerSetup is what preparing the peers produced.
type peerSetup struct {
	runners    []*runner
	runscBuild time.Duration // time spent in go install (excluded from the budget)
}

func setupPeers(e *env, cfg config, log *logger) peerSetup {
	var ps peerSetup
	installPeers(cfg, log)
	for _, name := range cfg.peers {
		var r *runner
		switch name {
		case "proot":
			r = prootRunner(e, cfg)
		case "bwrap":
			r = bwrapRunner(e, cfg)
		case "fakechroot":
			r = fakechrootRunner(e, cfg)
		case "runsc":
			var d time.Duration
			r, d = runscRunner(e, cfg, log)
			ps.runscBuild = d
		}
		if r.Skip == "" {
			log.printf("probing %s", name)
			r.probe(e)
		}
		if r.Skip != "" {
			log.printf("%s: %s", name, r.Skip)
		}
		ps.runners = append(ps.runners, r)
	}
	return ps
}

// installPeers apt-get installs the missing Debian peers when allowed.
func installPeers(cfg config, log *logger) {
	if cfg.noInstall || !isRoot() {
		return
	}
	var missing []string
	for _, name := range cfg.peers {
		if pkg, ok := peerPackages[name]; ok {
			if _, err := exec.LookPath(name); err != nil {
				missing = append(missing, pkg)
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	install := append([]string{"apt-get", "install", "-y", "-q"}, missing...)
	log.printf("installing %s", strings.Join(missing, " "))
	if o := run(proc{argv: install, env: env, timeout: 5 * time.Minute}); o.err != nil {
		log.printf("apt-get install failed (%s); running apt-get update and retrying", firstLine(o.stderr))
		run(proc{argv: []string{"apt-get", "update", "-q"}, env: env, timeout: 5 * time.Minute})
		if o := run(proc{argv: install, env: env, timeout: 5 * time.Minute}); o.err != nil {
			log.printf("apt-get install failed: %s", reason(o))
		}
	}
}

// missingReason explains why a peer binary is absent.
func missingReason(cfg config, pkg string) string {
	switch {
	case cfg.noInstall:
		return "not installed (--no-install; Debian package " + pkg + ")"
	case !isRoot():
		return "not installed (installing Debian package " + pkg + " needs root)"
	default:
		return "not installed (apt-get install " + pkg + " failed)"
	}
}

func prootRunner(e *env, cfg config) *runner {
	r := &runner{Name: "proot", Kind: kindPeer, Prog: "/bin/bench"}
	bin, err := exec.LookPath("proot")
	if err != nil {
		r.Skip = missingReason(cfg, "proot")
		return r
	}
	// Debian's build may lack seccomp acceleration: then every syscall,
	// even getpid, is a ptrace stop.
	if o := run(proc{argv: []string{bin, "-V"}, timeout: 10 * time.Second}); o.err == nil {
		for _, l := range strings.Split(o.stdout+o.stderr, "\n") {
			if strings.Contains(l, "accelerators") {
				r.Note = strings.TrimSpace(l)
			}
		}
	}
	r.wrap = func(argv []string, dev bool) []string {
		w := []string{bin, "-r", e.root}
		if dev {
			w = append(w, "-b", "/dev")
		}
		return append(w, argv...)
	}
	return r
}

func bwrapRunner(e *env, cfg config) *runner {
	r := &runner{Name: "bwrap", Kind: kindPeer, Prog: "/bin/bench"}
	bin, err := exec.LookPath("bwrap")
	if err != nil {
		r.Skip = missingReason(cfg, "bubblewrap")
		return r
	}
	// /tmp stays ROOT/tmp (no --tmpfs /tmp) so that lseek_write and the
	// shell loop write the same ext4 directory as every other column.
	r.Note = "bwrap --bind ROOT / --proc /proc --dev /dev (no --tmpfs /tmp: writes go to ROOT/tmp like the other columns)"
	r.wrap = func(argv []string, dev bool) []string {
		return append([]string{bin, "--bind", e.root, "/", "--proc", "/proc", "--dev", "/dev"}, argv...)
	}
	return r
}

func fakechrootRunner(e *env, cfg config) *runner {
	r := &runner{Name: "fakechroot", Kind: kindPeer, Prog: libcBench,
		Note: "per-call rows run " + libcBench + ": tests/guest/bench.c built against glibc with its syscall(2) calls routed " +
			"through the libc wrappers (bench/guest/libc_shim.c); /bin/bench-glibc issues raw syscall(2), which LD_PRELOAD cannot see, " +
			"and the guest's busybox is static, so fakechroot never loads into the whole-command rows"}
	bin, err := exec.LookPath("fakechroot")
	if err != nil {
		r.Skip = missingReason(cfg, "fakechroot")
		return r
	}
	chroot, err := exec.LookPath("chroot")
	if err != nil {
		chroot = "/usr/sbin/chroot"
	}
	r.wrap = func(argv []string, dev bool) []string {
		return append([]string{bin, chroot, e.root}, argv...)
	}
	return r
}

// runscRunner finds or builds runsc and tries the flag variants.
func runscRunner(e *env, cfg config, log *logger) (*runner, time.Duration) {
	r := &runner{Name: "runsc", Kind: kindPeer, Prog: "/bin/bench"}
	bin, built, why := findRunsc(e, cfg, log)
	if bin == "" {
		r.Skip = why
		return r, built
	}
	var firstErr outcome
	for i, flags := range runscVariants {
		wrap := func(argv []string, dev bool) []string {
			w := append([]string{bin}, flags...)
			w = append(w, "do", "--root", e.root, "--cwd", "/")
			return append(w, argv...)
		}
		o := run(proc{argv: wrap([]string{"/bin/true"}, false), timeout: time.Minute})
		if o.err == nil {
			r.wrap = wrap
			r.Note = "runsc " + strings.Join(flags, " ") + " do --root ROOT (writes go to gVisor's in-memory overlay)"
			return r, built
		}
		if i == 0 {
			firstErr = o
		}
	}
	r.Skip = fmt.Sprintf("runsc do fails with all %d flag variants tried (%s): %s", len(runscVariants), variantList(), reason(firstErr))
	if cause := runscCause(e, bin); cause != "" {
		r.Skip += "; the sandbox's debug log says: " + cause
	}
	return r, built
}

func variantList() string {
	var vs []string
	for _, v := range runscVariants {
		vs = append(vs, strings.Join(v, " "))
	}
	return strings.Join(vs, " | ")
}

// shortCause drops the argument dump runsc puts before the error proper,
// e.g. "setCapsAndCallSelf([... 30 flags ...], &{caps}): error executing
// /proc/self/exe: ..." becomes "setCapsAndCallSelf(...): error executing ...".
func shortCause(msg string) string {
	msg = strings.TrimSpace(msg)
	if len(msg) <= 160 {
		return msg
	}
	i := strings.LastIndex(msg, "): ")
	j := strings.Index(msg, "(")
	if i < 0 || j < 0 || j > i {
		return msg[:160] + "..."
	}
	return msg[:j] + "(...)" + msg[i+1:]
}

// findRunsc returns runsc from PATH or the harness's GOBIN cache, building
// it with go install when allowed.
func findRunsc(e *env, cfg config, log *logger) (bin string, built time.Duration, why string) {
	if p, err := exec.LookPath("runsc"); err == nil {
		return p, 0, ""
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	gobin := filepath.Join(cache, "kbox-bench", "gobin")
	bin = filepath.Join(gobin, "runsc")
	static, err := isStatic(bin)
	if err == nil && static {
		return bin, 0, ""
	}
	// A cgo build of runsc is dynamically linked: its sandbox re-executes
	// /proc/self/exe inside a minimal chroot that has no dynamic loader,
	// and that execve fails with ENOENT. Only a pure-Go build works.
	switch {
	case cfg.quick:
		return "", 0, "not installed (no runsc build under --quick)"
	case cfg.noInstall && err == nil:
		return "", 0, "the cached " + bin + " is a dynamically linked (cgo) build, which cannot start its sandbox; rebuild without --no-install"
	case cfg.noInstall:
		return "", 0, "not installed (--no-install; CGO_ENABLED=0 go install " + runscVersion + " builds it)"
	}
	log.printf("building runsc: CGO_ENABLED=0 go install %s (one time, up to 8 minutes)", runscVersion)
	t0 := time.Now()
	env := append(os.Environ(), "GOBIN="+gobin, "CGO_ENABLED=0")
	o := run(proc{argv: []string{e.goTool, "install", runscVersion}, env: env, dir: e.work, timeout: 8 * time.Minute})
	built = time.Since(t0)
	if o.err != nil {
		return "", built, "go install " + runscVersion + " failed: " + lastLine(o.stderr)
	}
	return bin, built, ""
}

// runscCause reruns the simplest variant with a debug log and returns the
// first fatal error of the sandbox or gofer, which the client's own
// message ("cannot read client sync file") hides.
func runscCause(e *env, bin string) string {
	dir, err := os.MkdirTemp(e.work, "runsc-log-")
	if err != nil {
		return ""
	}
	argv := append([]string{bin, "--debug", "--debug-log=" + dir + "/"}, runscVariants[0]...)
	argv = append(argv, "do", "--root", e.root, "--cwd", "/", "/bin/true")
	run(proc{argv: argv, timeout: time.Minute})
	logs, _ := filepath.Glob(filepath.Join(dir, "*"))
	var fallback string
	for _, f := range logs {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			_, msg, ok := strings.Cut(l, "FATAL ERROR: ")
			if !ok {
				continue
			}
			if !strings.Contains(msg, "cannot create sandbox") && !strings.Contains(msg, "cannot read client sync file") {
				return shortCause(msg)
			}
			if fallback == "" {
				fallback = shortCause(msg)
			}
		}
	}
	return fallback
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// isStatic reports whether the ELF file at path has no program
// interpreter.
func isStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}
