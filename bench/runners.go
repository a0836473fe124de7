package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Runner kinds.
const (
	kindNative = "native"
	kindKbox   = "kbox"
	kindPeer   = "peer"
)

// guestStamp exists only in the guest root (mkroot.sh writes it): a runner
// that finds it is really resolving paths in the root.
const guestStamp = "/.kbox-fixture-stamp"

// runner is one column of the tables: native, a kbox tier or a peer.
type runner struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Prog    string `json:"bench_program"`          // guest path of the per-call program
	Skip    string `json:"skip,omitempty"`         // why it measured nothing
	CmdSkip string `json:"command_skip,omitempty"` // why whole-command rows were not measured
	Note    string `json:"note,omitempty"`
	// NoFork says why the runner cannot run commands that fork (their
	// whole-command rows are shown as n/a); empty when it can.
	NoFork string `json:"no_fork,omitempty"`

	// wrap turns a guest command line into the host one; dev asks for a
	// /dev with /dev/null in the guest.
	wrap func(argv []string, dev bool) []string
	// native: how the baseline starts processes (see native.go).
	native *nativeRunner
}

// usable reports whether the runner measures per-call rows.
func (r *runner) usable() bool { return r.Skip == "" }

// cmdUsable reports whether the runner measures whole-command rows.
func (r *runner) cmdUsable() bool { return r.Skip == "" && r.CmdSkip == "" }

// benchProc returns the process running one per-call test.
func (r *runner) benchProc(e *env, test string, n int64) proc {
	args := []string{"-n", itoa(n)}
	if r.native != nil {
		args = append(args, "-f", filepath.Join(e.root, "etc/hostname"), "-w", filepath.Join(e.work, "kbox-bench-w"), test)
		return proc{argv: append([]string{filepath.Join(e.root, "bin", filepath.Base(r.Prog))}, args...), timeout: 2 * time.Minute}
	}
	args = append(args, "-f", "/etc/hostname", "-w", "/tmp/kbox-bench-w", test)
	return proc{argv: r.wrap(append([]string{r.Prog}, args...), false), timeout: 2 * time.Minute}
}

// runCommand runs a whole-command row's guest command line.
func (r *runner) runCommand(argv []string, dev bool, timeout time.Duration) outcome {
	if r.native != nil {
		return r.native.run(argv, timeout)
	}
	return run(proc{argv: r.wrap(argv, dev), timeout: timeout})
}

// probe checks that per-call and whole-command runs work and are confined
// to the root, setting Skip / CmdSkip with the reason when not.
func (r *runner) probe(e *env) {
	o := run(r.benchProc(e, "stat", 1))
	if o.err != nil {
		r.Skip = "cannot run " + r.Prog + ": " + reason(o)
		return
	}
	if r.native == nil {
		p := proc{argv: r.wrap([]string{r.Prog, "-n", "1", "-f", guestStamp, "-w", "/tmp/kbox-bench-w", "stat"}, false), timeout: time.Minute}
		if o := run(p); o.err != nil {
			r.Skip = "not confined: " + r.Prog + " could not stat " + guestStamp + ", which exists only in the guest root (" + reason(o) + ")"
			return
		}
	}
	o = r.runCommand([]string{"/bin/sh", "-c", "test -e " + guestStamp}, false, time.Minute)
	if o.err != nil {
		r.CmdSkip = "not confined: the guest's /bin/sh does not see the guest root (sh -c 'test -e " + guestStamp + "': " + reason(o) + ")"
	}
}

// reason is the most useful short explanation of a failed outcome: the
// first stderr line, else the exit status or error.
func reason(o outcome) string {
	if l := firstLine(o.stderr); l != "" {
		return l
	}
	if c := exitCode(o.err); c >= 0 {
		return fmt.Sprintf("exit status %d", c)
	}
	if o.err != nil {
		return o.err.Error()
	}
	return "no error"
}

// kboxTiers are the interception tiers kbox may offer.
var kboxTiers = []string{"seccomp", "trap", "rewrite"}

// tierStatus records what discovery found for one tier.
type tierStatus struct {
	Tier      string `json:"tier"`
	Available bool   `json:"available"`
	Message   string `json:"message,omitempty"`
}

// discoverTiers runs `kbox --syscall-mode=X -r ROOT -- /bin/true` for each
// tier: exit 0 is available; exit 125 with "not available" is skipped.
func discoverTiers(e *env) ([]*runner, []tierStatus) {
	var runners []*runner
	var status []tierStatus
	for _, tier := range kboxTiers {
		o := run(proc{argv: []string{e.kbox, "--syscall-mode=" + tier, "-r", e.root, "--", "/bin/true"}, timeout: time.Minute})
		st := tierStatus{Tier: tier, Available: o.err == nil}
		switch {
		case o.err == nil:
		case exitCode(o.err) == 125 && strings.Contains(o.stderr, "not available"):
			st.Message = firstLine(o.stderr)
		default:
			st.Message = "failed: " + reason(o)
		}
		status = append(status, st)
		if !st.Available {
			continue
		}
		mode := "--syscall-mode=" + tier
		r := &runner{
			Name: "kbox-" + tier, Kind: kindKbox, Prog: "/bin/bench",
			wrap: func(argv []string, dev bool) []string {
				rootFlag := "-r"
				if dev {
					rootFlag = "-R" // host /proc, /sys, /dev and a private /tmp
				}
				return append([]string{e.kbox, mode, rootFlag, e.root, "--"}, argv...)
			},
		}
		if tier == "trap" || tier == "rewrite" {
			r.NoFork = "the guest runs in kbox's process, single-process and single-threaded (clone answers ENOSYS)"
		}
		runners = append(runners, r)
		if tier == "seccomp" {
			// The same with the root as an overlay's lower layer and a
			// temporary upper directory (docs/overlay.md): its cost.
			runners = append(runners, &runner{
				Name: "kbox-overlay", Kind: kindKbox, Prog: "/bin/bench",
				wrap: func(argv []string, dev bool) []string {
					rootFlag := "-r"
					if dev {
						rootFlag = "-R"
					}
					return append([]string{e.kbox, mode, "--overlay", rootFlag, e.root, "--"}, argv...)
				},
			})
		}
	}
	return runners, status
}

// baselineRunner is the column of --baseline's binary.
const baselineRunner = "kbox-base"

// baselineRunnerFor is the seccomp tier of another kbox binary (one built
// from main, say), so that a change is compared with it in the same run,
// under the same load.
func baselineRunnerFor(e *env, bin string) (*runner, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	o := run(proc{argv: []string{abs, "--version"}, timeout: 10 * time.Second})
	if o.err != nil {
		return nil, fmt.Errorf("--baseline %s: %s", bin, reason(o))
	}
	return &runner{
		Name: baselineRunner, Kind: kindKbox, Prog: "/bin/bench",
		Note: "--baseline " + abs + ": " + strings.TrimSpace(o.stdout) + ", --syscall-mode=seccomp",
		wrap: func(argv []string, dev bool) []string {
			rootFlag := "-r"
			if dev {
				rootFlag = "-R"
			}
			return append([]string{abs, "--syscall-mode=seccomp", rootFlag, e.root, "--"}, argv...)
		},
	}, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
