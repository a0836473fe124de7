package launch

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/dispatch"
	"github.com/kbox-go/kbox/internal/landlock"
	"github.com/kbox-go/kbox/internal/policy"
	"github.com/kbox-go/kbox/internal/seccomp"
	"github.com/kbox-go/kbox/internal/tier/unotify"
	"github.com/kbox-go/kbox/internal/tmpdirs"
	"github.com/kbox-go/kbox/internal/trace"
)

// Run starts the guest as p plans and supervises it until it ends: the
// guest's exit status (128+N when killed by signal N), or an Error's
// status when kbox failed. When auto's in-process tier cannot start the
// guest, Run falls back to the seccomp tier. The caller closes p.
func Run(p *Plan) (int, error) {
	// With -v the seccomp tier's filter notifies the dangerous set so that
	// each refusal is named and counted (the engine answers EPERM); the
	// in-process tiers' filters deny it in BPF regardless, and their
	// guest's calls trap first anyway.
	// The seccomp tier's launcher puts the guest in a Landlock domain of
	// its own when the kernel has Landlock (runSeccomp): resolved for it
	// here, so that the table is built once.
	pol, err := policy.Resolve(abi.Host(), policy.Options{VirtualIdentity: p.Identity.Virtual, NotifyDenied: p.Verbose,
		NetNone: p.Net == "none", NetUser: p.Net == "user", GuestDomain: p.Tier == "seccomp" && landlock.ABI() > 0})
	if err != nil {
		return ExitFailure, err
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(os.Stderr, "kbox: warning: %s\n", w)
	}
	obs, err := startWeb(p)
	if err != nil {
		return ExitFailure, err
	}
	code, err := run(p, pol, obs)
	obs.close(code)
	return code, err
}

// run runs the guest in the plan's tier, --web's observer watching.
func run(p *Plan, pol *policy.Resolved, obs *observer) (int, error) {
	if p.Tier == "trap" || p.Tier == "rewrite" {
		p.verbosef("tier: %s (%s)", p.Tier, p.Why)
		tr, err := obs.inProcess(p.Trace)
		if err != nil {
			return ExitFailure, err
		}
		code, started, err := RunInProcess(InProcess{Tier: p.Tier, Why: p.Why, Identity: p.Identity, WorkDir: p.WorkDir,
			Path: p.Path, Argv: p.Argv, Env: p.Env, Verbose: p.Verbose, KeepCaps: p.KeepCaps, Net: p.Net}, p.NS, pol, tr, p.verbosef)
		obs.inProcessDone(code, started)
		if started || p.Mode != "auto" {
			return code, err
		}
		// The in-process tier could not start the guest: the next tier.
		p.verbosef("tier %s failed to start (%v): falling back to seccomp", p.Tier, err)
		p.Tier, p.Why = "seccomp", "auto: fallback"
	}
	return runSeccomp(p, pol, obs)
}

// runSeccomp runs the guest in the seccomp tier: a child process whose
// calls the supervisor answers (internal/tier/unotify).
func runSeccomp(p *Plan, pol *policy.Resolved, obs *observer) (int, error) {
	if pf := os.Getenv("KBOX_CPUPROFILE"); pf != "" {
		// Profiling hook for docs/benchmarks.md; not a user feature.
		if f, err := os.Create(pf); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	execTmp, err := tmpdirs.Make("exec", 0o700)
	if err != nil {
		return ExitFailure, fmt.Errorf("creating the exec directory: %w", err)
	}
	defer execTmp.Remove()
	llABI := landlock.ABI()
	var execRoots []string
	for _, m := range p.NS.Mounts() {
		execRoots = append(execRoots, m.Host)
		if m.Overlay != nil {
			execRoots = append(execRoots, m.Overlay.Lower)
		}
	}
	// kbox-init starts now, its exec beside the policy table, the filter
	// and the engine; it waits for its config (unotify.StartEarly).
	early := unotify.StartEarly(llABI, execRoots)
	defer early.Close()
	if llABI > 0 && !pol.Options().GuestDomain {
		// The launcher puts the guest in a Landlock domain of its own:
		// the rows the kernel then confines to it are served (Run
		// resolved for it already unless auto fell back from an
		// in-process tier).
		opts := pol.Options()
		opts.GuestDomain = true
		if pol, err = policy.Resolve(pol.Arch, opts); err != nil {
			return ExitFailure, err
		}
	}
	prog, err := seccomp.Compile(pol.Program())
	if err != nil {
		return ExitFailure, fmt.Errorf("compiling the seccomp filter: %w", err)
	}
	cfg := EngineConfig(p.NS, pol, p.Identity, p.WorkDir, execTmp.Path, p.Verbose, p.KeepCaps)
	cfg.NetUser = p.NetUser
	// No guest thread ever runs in this process: the helper threads
	// can start when first needed (many runs create no file and bind no
	// socket).
	cfg.ThreadsOnDemand = true
	eng, err := dispatch.New(cfg)
	if err != nil {
		return ExitFailure, err
	}
	defer eng.Close()
	if obs != nil {
		p.Trace.Live = true
	}
	if p.Trace.Enabled() {
		tr, err := trace.Open(p.Trace)
		if err != nil {
			return ExitFailure, err
		}
		tr.SetReason(p.Why)
		eng.SetTracer(tr)
		obs.seccomp(tr, p.Why)
	}
	eng.Verbosef("tier: seccomp (%s)", p.Why)
	eng.Verbosef("seccomp filter: %d instructions", len(prog))
	if llABI > 0 {
		eng.Verbosef("landlock ABI %d: exec confined to the guest's mounts (backstop)", llABI)
	} else {
		eng.Verbosef("landlock unavailable: execve from multi-threaded processes is refused")
	}
	res, err := unotify.Run(eng, unotify.Launch{Filter: prog, Path: p.Path, Argv: p.Argv, Env: p.Env, ExecDir: execTmp.Path,
		KeepCaps: p.KeepCaps, Landlock: llABI, ExecRoots: execRoots, Early: early})
	if err != nil {
		return ExitFailure, err
	}
	eng.Report()
	if res.Error != "" {
		return res.ExitCode, errors.New(res.Error)
	}
	return res.ExitCode, nil
}
