// Package launch owns starting a guest once the command line is parsed:
// for the in-process tiers (trap, rewrite), the confined child that hosts
// the guest and the supervisor that stays outside it (internal/sandbox
// has the mechanism, this file the policy: what the child may reach).
package launch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/dispatch"
	"github.com/kbox-go/kbox/internal/identity"
	"github.com/kbox-go/kbox/internal/inproc"
	"github.com/kbox-go/kbox/internal/landlock"
	"github.com/kbox-go/kbox/internal/policy"
	"github.com/kbox-go/kbox/internal/rewrite"
	"github.com/kbox-go/kbox/internal/sandbox"
	"github.com/kbox-go/kbox/internal/seccomp"
	"github.com/kbox-go/kbox/internal/supervise"
	"github.com/kbox-go/kbox/internal/trace"
	"github.com/kbox-go/kbox/internal/vfs"
)

// MinLandlockABI is the Landlock ABI an in-process guest needs to be
// confined as the seccomp tier confines it: ABI 3 (Linux 6.2) handles
// truncate(2), which older ABIs leave unrestricted everywhere.
const MinLandlockABI = 3

// Mount is one guest mount as the child rebuilds it.
type Mount struct {
	Guest, Host string
	ReadOnly    bool
	Kind        vfs.MountKind
}

// InProcess is what the confined child needs to host the guest.
type InProcess struct {
	Tier      string // "trap" or "rewrite"
	Why       string // why that tier (for the trace and summary)
	Mounts    []Mount
	Identity  identity.Config
	WorkDir   string
	Path      string // guest path of the program
	Argv, Env []string
	Verbose   bool
	KeepCaps  bool
	Net       string // --net: "host" or "none"
	// ProfileFD, when nonzero, is a CPU profile to write (an inherited
	// descriptor: the confined child cannot create files outside the
	// guest).
	ProfileFD int
	// Trace is the child's part of --trace and --summary; TraceFD and
	// SummaryFD are their inherited sinks (0: none).
	Trace              trace.ChildSpec
	TraceFD, SummaryFD int
	// StreamFD: the live stream to the parent's dashboard (--web), 0: none.
	StreamFD int
}

// EngineConfig is the dispatch configuration of a run.
func EngineConfig(ns *vfs.Namespace, pol *policy.Resolved, id identity.Config, workDir, execDir string, verbose, keepCaps bool) dispatch.Config {
	return dispatch.Config{
		Arch: pol.Arch, NS: ns, Identity: id, InitialCwd: workDir,
		ExecDir: execDir, Verbose: verbose,
		GuestCaps: os.Geteuid() == 0 && keepCaps,
		Denied:    pol.Denied(),
		// --net=none under -v: the refused socket families.
		NetRefused: pol.NetRefused(),
		// With Landlock the kernel itself refuses to execute anything
		// outside the guest's mounts, which makes the exec path rewrite
		// safe even when another guest thread could race it.
		ExecBackstop: landlock.ABI() > 0,
	}
}

// InProcessGaps lists what the kernel cannot enforce for an in-process
// guest with this mount table: auto never picks an in-process tier when
// there is any, an explicit one runs and says what is not enforced.
func InProcessGaps(ns *vfs.Namespace) []string {
	if err := sandbox.Supported(); err != nil {
		return []string{err.Error()}
	}
	// What no Landlock ABI up to 7 (Linux 6.18) covers, and the
	// in-process filter cannot tell from kbox's own use of the same
	// calls: a guest that takes over kbox's code can change the metadata
	// of host files it can name outside its mounts (kbox started by root:
	// of any file), connect to pathname AF_UNIX sockets outside them (a
	// session bus) and see which host paths exist. Until kbox's supervisor
	// performs these calls for the confined process, auto keeps away.
	gaps := []string{"Landlock does not confine file metadata nor pathname sockets: a guest that takes over kbox's code can chmod, chown, utime and set extended attributes of host files outside its mounts that " +
		map[bool]string{true: "root", false: "you"}[privileged()] + " can, connect to AF_UNIX sockets there (a session bus), and stat any host path"}
	switch abiV := landlock.ABI(); {
	case abiV == 0:
		gaps = append(gaps, "no Landlock in this kernel: a guest that takes over kbox's code reaches every host file you can")
	case abiV < MinLandlockABI:
		gaps = append(gaps, fmt.Sprintf("Landlock ABI %d: truncate(2) of host files outside the guest's mounts is not confined (ABI %d, Linux 6.2, needed)", abiV, MinLandlockABI))
	}
	for _, m := range ns.Mounts() {
		if m.Overlay != nil {
			gaps = append(gaps, "the overlay root (--overlay) is served by the seccomp tier only")
		}
		if m.ReadOnly || m.Kind == vfs.KindProc {
			continue
		}
		if m.Host == "/" || strings.HasPrefix("/proc/", m.Host+"/") {
			gaps = append(gaps, fmt.Sprintf("the writable mount of %s contains /proc: the guest could write kbox's memory through /proc/self/mem", m.Host))
		}
	}
	return gaps
}

// landlockRules are the host paths the child may reach: every mount with
// its rights (read-only ones: read and execute), procfs read-only (kbox
// reads its own maps and descriptors there; nothing in /proc is writable,
// /proc/self/mem included), and the rewrite tier's plan cache read-only.
func landlockRules(abiV int, ns *vfs.Namespace) []landlock.Rule {
	const read = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	const procRead = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	rules := []landlock.Rule{{Path: "/proc", Access: procRead}}
	for _, m := range ns.Mounts() {
		switch {
		case m.Kind == vfs.KindProc:
			rules = append(rules, landlock.Rule{Path: m.Host, Access: procRead})
		case m.Kind == vfs.KindPts:
			// Not the host's whole devpts: the resolver shows the guest
			// only its own terminals, but a guest that controls the
			// process could open any pty the user (or a root guest's
			// DAC_OVERRIDE) may. Only the terminals kbox's stdio are.
			for _, tty := range stdioTTYs(m.Host) {
				rules = append(rules, landlock.Rule{Path: tty, Access: landlock.FSRights(abiV)})
			}
		case m.ReadOnly:
			rules = append(rules, landlock.Rule{Path: m.Host, Access: read})
		default:
			rules = append(rules, landlock.Rule{Path: m.Host, Access: landlock.FSRights(abiV)})
		}
	}
	if dir := rewrite.CacheDir(); dir != "" {
		rules = append(rules, landlock.Rule{Path: dir, Access: procRead})
	}
	return rules
}

// stdioTTYs lists the terminals beneath dir (a devpts) that kbox's
// standard descriptors are.
func stdioTTYs(dir string) []string {
	var out []string
	seen := map[string]bool{}
	for fd := 0; fd <= 2; fd++ {
		p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		if err != nil || seen[p] || !strings.HasPrefix(p, dir+"/") {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return out
}

// RunInProcess starts the confined child that hosts the guest and
// supervises it until it ends: kbox's exit code, or started false (and
// an error) when the guest never ran, so that auto mode may fall back.
func RunInProcess(spec InProcess, ns *vfs.Namespace, pol *policy.Resolved, tr trace.Options, verbosef func(string, ...any)) (code int, started bool, err error) {
	for _, m := range ns.Mounts() {
		spec.Mounts = append(spec.Mounts, Mount{Guest: m.Guest, Host: m.Host, ReadOnly: m.ReadOnly, Kind: m.Kind})
	}
	filter, err := seccomp.Compile(pol.InProcess())
	if err != nil {
		return 125, false, fmt.Errorf("compiling the in-process filter: %w", err)
	}
	plan := sandbox.Plan{Filter: filter, DropCaps: !spec.KeepCaps && privileged()}
	if abiV := landlock.ABI(); abiV > 0 {
		plan.LandlockABI = abiV
		plan.Rules = landlockRules(abiV, ns)
		if abiV >= 6 {
			plan.Scopes = landlock.ScopeSignal | landlock.ScopeAbstractUnixSocket
		}
	}
	if pf := os.Getenv("KBOX_CPUPROFILE"); pf != "" {
		// Profiling hook for docs/benchmarks.md: the child cannot create
		// files outside the guest, so it writes to one opened here.
		if f, err := os.Create(pf); err == nil {
			defer f.Close()
			spec.ProfileFD = sandbox.ExtraFD + len(plan.Extra)
			plan.Extra = append(plan.Extra, f)
		}
	}
	if tr.Enabled() {
		// The child cannot open files outside the guest: its trace and
		// summary go to descriptors opened here.
		sinks, err := tr.OpenSinks()
		if err != nil {
			return ExitFailure, false, err
		}
		defer sinks.Close()
		spec.Trace = tr.Child(spec.Why)
		if sinks.Trace != nil {
			spec.TraceFD = sandbox.ExtraFD + len(plan.Extra)
			plan.Extra = append(plan.Extra, sinks.Trace)
		}
		if sinks.Summary != nil {
			spec.SummaryFD = sandbox.ExtraFD + len(plan.Extra)
			plan.Extra = append(plan.Extra, sinks.Summary)
		}
		if sinks.Stream != nil {
			spec.StreamFD = sandbox.ExtraFD + len(plan.Extra)
			plan.Extra = append(plan.Extra, sinks.Stream)
		}
	}
	if spec.Tier == "rewrite" {
		// The child reads the plan cache but never writes it: plans are
		// computed here, by a process no guest runs in.
		if isa := rewrite.Host(); isa != nil {
			if n := rewrite.Prime(ns, isa, spec.Path); n > 0 {
				verbosef("rewrite: %d patch plans computed and cached for the program and its libraries", n)
			}
		}
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return 125, false, err
	}
	verbosef("in-process child: %d filter instructions, Landlock ABI %d with %d rules, capabilities %s",
		len(filter), plan.LandlockABI, len(plan.Rules), map[bool]string{true: "only the file-permission ones kept", false: "kept"}[plan.DropCaps])
	// The child's death signal follows the thread that forks it: this
	// goroutine keeps that thread until kbox exits.
	runtime.LockOSThread()
	var target atomic.Int64
	forward := func(sig unix.Signal) {
		if pid := target.Load(); pid > 0 {
			unix.Kill(int(pid), sig)
		}
	}
	defer supervise.ForwardSignals(forward, false)()
	hadTTY := supervise.ForegroundTTY(os.Stdin)
	child, err := sandbox.Spawn(plan, b, spec.Env, [3]*os.File{os.Stdin, os.Stdout, os.Stderr}, hadTTY)
	if err != nil {
		return 125, false, err
	}
	target.Store(int64(child.Pid))
	// The child inherited the signals kbox was started with ignored; the
	// guest may handle them later (the child then catches them).
	defer supervise.ForwardSignals(forward, true)()
	defer supervise.ReclaimTTY(os.Stdin, hadTTY)
	startErr := child.Started()
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(child.Pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 125, startErr == nil, fmt.Errorf("waiting for the in-process child: %w", err)
		}
		break
	}
	if startErr != nil {
		var se *sandbox.StartError
		if errors.As(startErr, &se) {
			return se.Code, false, errors.New(se.Msg)
		}
		return supervise.ExitCode(ws), false, fmt.Errorf("the in-process child ended before the guest started (%s)", describe(ws))
	}
	return supervise.ExitCode(ws), true, nil
}

func describe(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + unix.SignalName(ws.Signal())
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}

// privileged reports whether kbox holds capabilities (started by root);
// unknown counts as privileged, so that they are dropped.
func privileged() bool {
	p, err := supervise.Privileged()
	return p || err != nil
}

// InProcessChild is the confined child's main (os.Args[1] is
// sandbox.Marker): it hosts the guest and never returns once the guest
// runs; the guest's exit ends the process. It returns an exit code only
// when the guest could not start (the parent has been told why).
func InProcessChild() int {
	fail := func(code int, err error) int {
		sandbox.ReportFailed(code, err.Error())
		return code
	}
	b, err := sandbox.ReadSpec()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kbox: %v\n", err)
		return 125
	}
	var spec InProcess
	if err := json.Unmarshal(b, &spec); err != nil {
		return fail(125, fmt.Errorf("reading the launch spec: %w", err))
	}
	if spec.ProfileFD != 0 {
		pprof.StartCPUProfile(os.NewFile(uintptr(spec.ProfileFD), "profile"))
	}
	ns := vfs.NewNamespace()
	for _, m := range spec.Mounts {
		if err := ns.Add(m.Guest, m.Host, m.ReadOnly, m.Kind); err != nil {
			return fail(125, fmt.Errorf("rebuilding the mount table: %w", err))
		}
	}
	ns.Seal()
	// -v: the dangerous set goes to the engine, which refuses and counts
	// it (the process's own filters still deny it in BPF).
	pol, err := policy.Resolve(abi.Host(), policy.Options{VirtualIdentity: spec.Identity.Virtual, NotifyDenied: spec.Verbose,
		NetNone: spec.Net == "none"})
	if err != nil {
		return fail(125, err)
	}
	eng, err := dispatch.New(EngineConfig(ns, pol, spec.Identity, spec.WorkDir, "", spec.Verbose, spec.KeepCaps))
	if err != nil {
		return fail(125, err)
	}
	var traceFile, summaryFile *os.File
	if spec.TraceFD != 0 {
		traceFile = os.NewFile(uintptr(spec.TraceFD), "trace")
	}
	if spec.SummaryFD != 0 {
		summaryFile = os.NewFile(uintptr(spec.SummaryFD), "summary")
	}
	var streamFile *os.File
	if spec.StreamFD != 0 {
		streamFile = os.NewFile(uintptr(spec.StreamFD), "stream")
	}
	tr, err := trace.OpenChildStream(spec.Trace, traceFile, summaryFile, streamFile)
	if err != nil {
		return fail(125, err)
	}
	eng.SetTracer(tr)
	code, err := inproc.Run(inproc.Config{Engine: eng, Policy: pol, Path: spec.Path, Argv: spec.Argv, Env: spec.Env,
		AtExit: pprof.StopCPUProfile, Rewrite: spec.Tier == "rewrite", PlanCacheReadOnly: true,
		OnStart: sandbox.ReportStarted})
	// Run returns only when the guest could not start.
	return fail(code, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "kbox: ")))
}
