//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/policy"
)

// rule serves one syscall in the trap tier and returns its raw result
// (-errno on failure).
type rule func(t *tier, c *call) int64

// ruleSet is the in-process core's view of the policy table, by number.
type ruleSet struct {
	rules []rule
	// natives and restartable: the table's in-process columns.
	natives     []*policy.NativeSpec
	restartable []bool
}

// buildRules makes the rule table from the policy table: its
// dispositions, its in-process columns (policy/serve.go), and own, the
// rules the in-process core registers for the calls the table marks
// OwnRule. A rule registered for a call the table does not mark, or a
// marked call without a rule, is an error: the two cannot drift apart.
func buildRules(pol *policy.Resolved, own map[string]rule) (ruleSet, error) {
	n := pol.Arch.MaxNr() + 1
	rs := ruleSet{rules: make([]rule, n), natives: make([]*policy.NativeSpec, n), restartable: make([]bool, n)}
	for nr, e := range pol.ByNr {
		rs.natives[nr] = e.Native
		rs.restartable[nr] = e.Restartable
		rs.rules[nr] = policyRule(pol, nr)
	}
	for name := range own {
		if nr, ok := pol.Arch.Nr(name); ok && pol.ByNr[nr].InProc != policy.OwnRule {
			return ruleSet{}, fmt.Errorf("trap: a rule for %s, which the policy table does not give to the in-process core", name)
		}
	}
	for nr, e := range pol.ByNr {
		switch e.InProc {
		case policy.OwnRule:
			r, ok := own[e.Name]
			if !ok {
				return ruleSet{}, fmt.Errorf("trap: the policy table gives %s to the in-process core, which has no rule for it", e.Name)
			}
			rs.rules[nr] = guarded(pol, nr, r)
		case policy.NotInProcess:
			rs.rules[nr] = guarded(pol, nr, notInProcess)
		}
	}
	return rs, nil
}

// policyRule applies the disposition table: denied and unsupported calls
// fail, allowed ones run natively, notified ones go to the engine (a nil
// rule).
func policyRule(pol *policy.Resolved, nr int) rule {
	e := pol.ByNr[nr]
	spec := e.Native
	runAllowed := func(t *tier, c *call) int64 {
		if spec == nil {
			return notInProcess(t, c)
		}
		return t.runNative(c, spec)
	}
	if len(e.Conds) == 0 {
		switch pol.Disposition(nr) {
		case policy.Deny:
			return denyRule
		case policy.Unsupported:
			return unsupportedRule
		case policy.Allow:
			return runAllowed
		}
		return nil
	}
	return byArguments(runAllowed, (*tier).viaEngine)
}

// byArguments evaluates the table's argument conditions for each call:
// denied and unsupported forms fail, allowed ones run allowed, the rest
// run other.
func byArguments(allowed, other rule) rule {
	return func(t *tier, c *call) int64 {
		if t.pol.NoNetworkFor(c.nr, c.args) {
			return noNetworkRule(t, c)
		}
		switch t.pol.Expect(c.nr, c.args) {
		case policy.Deny:
			return denyRule(t, c)
		case policy.Unsupported:
			return unsupportedRule(t, c)
		case policy.Allow:
			return allowed(t, c)
		}
		return other(t, c)
	}
}

// guarded runs the trap tier's own rule r unless the policy table denies
// the call with these arguments.
func guarded(pol *policy.Resolved, nr int, r rule) rule {
	e, listed := pol.ByNr[nr]
	if !listed || (e.Disp != policy.Deny && e.Disp != policy.Unsupported && len(e.Conds) == 0) {
		return r
	}
	return byArguments(r, r)
}

func denyRule(t *tier, c *call) int64 {
	t.verboseOnce("deny:"+t.name(c.nr), "pid %d: %s denied (EPERM): in the dangerous set", t.pid, t.name(c.nr))
	return -int64(unix.EPERM)
}

// noNetworkRule refuses a socket family --net=none takes away.
func noNetworkRule(t *tier, c *call) int64 {
	t.verboseOnce("nonet:"+t.name(c.nr), "pid %d: %s denied (EAFNOSUPPORT): --net=none: only AF_UNIX sockets", t.pid, t.name(c.nr))
	return -int64(unix.EAFNOSUPPORT)
}

// notInProcess answers a call the in-process tiers do not serve: ENOSYS,
// counted by a warning naming the tier that does.
func notInProcess(t *tier, c *call) int64 {
	t.warnOnce(t.name(c.nr), "%s: not supported by the %s tier; ENOSYS (use --syscall-mode=seccomp)", t.name(c.nr), t.tierName())
	return -int64(unix.ENOSYS)
}

func unsupportedRule(t *tier, c *call) int64 {
	return -int64(unix.ENOSYS)
}

// runNative runs c on the host with its descriptor arguments translated.
func (t *tier) runNative(c *call, spec *policy.NativeSpec) int64 {
	t.native.Add(1)
	a := c.args
	if spec.SigmaskArg > 0 {
		a[spec.SigmaskArg], a[spec.SigmaskArg+1] = 0, 0
	}
	sleepy := spec.Blocking
	for i := 0; i < 6; i++ {
		if spec.FDArgs&(1<<i) == 0 {
			continue
		}
		e, ok := t.fds.Get(c.int(i))
		if !ok {
			return -int64(unix.EBADF)
		}
		a[i] = uint64(e.HostFD)
		if spec.Blocking && t.isRegular(e.HostFD) {
			sleepy = false
		}
	}
	var r int64
	if sleepy {
		r = t.blocking(c, a)
	} else {
		r = rawSyscall(c.nr, a)
	}
	if r == -int64(unix.EPIPE) && spec.EPIPE && (spec.SendFlags == 0 || c.args[spec.SendFlags]&unix.MSG_NOSIGNAL == 0) {
		t.sig.raise(int(unix.SIGPIPE), nil)
	}
	if spec.NewFD && r >= 0 {
		cloexec := spec.CloexecArg >= 0 && c.args[spec.CloexecArg]&spec.CloexecBit != 0
		g, err := t.install(int(r), cloexec, "")
		if err != nil {
			unix.Close(int(r))
			return errno(err)
		}
		return int64(g)
	}
	return r
}

// blocking runs a call that may sleep so that a guest signal can
// interrupt it: a host signal for the guest kicks the thread, the call
// returns EINTR, and it is restarted unless a guest signal is now
// deliverable.
func (t *tier) blocking(c *call, a [6]uint64) int64 {
	for {
		r := blockingSyscall(c.nr, a)
		if r != -int64(unix.EINTR) || !t.sig.deliverable() {
			if r == -int64(unix.EINTR) {
				continue // kicked for a signal the guest ignores
			}
			return r
		}
		if t.restartable[c.nr] {
			return errRestart
		}
		return r
	}
}

func rawSyscall(nr int, a [6]uint64) int64 {
	r, _, en := unix.RawSyscall6(uintptr(nr), uintptr(a[0]), uintptr(a[1]), uintptr(a[2]), uintptr(a[3]), uintptr(a[4]), uintptr(a[5]))
	if en != 0 {
		return -int64(en)
	}
	return int64(r)
}

// ownRules are the in-process core's own rules, by name, for the calls the
// policy table marks OwnRule (descriptor management, memory, signals,
// process lifetime); buildRules checks the two agree.
var ownRules = map[string]rule{}

func own(r rule, names ...string) {
	for _, n := range names {
		ownRules[n] = r
	}
}

// ownNamed registers, for each name, the rule f makes for it: rules that
// serve several calls learn which one once, not on every call.
func ownNamed(f func(name string) rule, names ...string) {
	for _, n := range names {
		ownRules[n] = f(n)
	}
}
