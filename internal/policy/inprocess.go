package policy

import (
	"sort"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/seccomp"
)

// The filter every thread of a process that hosts an in-process guest
// (trap and rewrite tiers) runs, installed before the Go runtime starts
// (internal/sandbox). The guest shares that process's memory: a hostile
// guest can make any of kbox's threads run code of its choosing (by
// rewriting the vDSO or kbox's own text), so whatever a kbox thread may do,
// the guest may do. This filter is therefore the guest's limit, not only
// kbox's: the dangerous set, plus everything kbox never needs in that
// process and that would reach beyond it.
//
// Calls that name another process are allowed only when they name this
// process (seccomp.SelfPID, patched to the real pid by the constructor)
// or the caller itself (0): the kernel then confines signals, priorities
// and limits to the sandbox on every kernel, Landlock's signal scoping
// (ABI 6) or not.

// inProcessRow is one refinement of the backstop for in-process hosts.
type inProcessRow struct {
	names []string
	// conds, tried in order (first match wins); action applies when none
	// matches.
	conds  []seccomp.ArgCond
	action seccomp.Action
	why    string
}

var (
	actEPERM  = seccomp.Action{Kind: seccomp.ActErrno, Errno: uint16(unix.EPERM)}
	actENOSYS = seccomp.Action{Kind: seccomp.ActErrno, Errno: uint16(unix.ENOSYS)}
	actAllow  = seccomp.Action{Kind: seccomp.ActAllow}
)

// pidIs matches an int (pid) argument equal to v.
func pidIs(arg int, v uint32) seccomp.ArgCond {
	return seccomp.ArgCond{Arg: arg, Mask: 0xffffffff, Value: uint64(v), Width32: true, Action: actAllow}
}

// selfOrZero allows the call when argument arg is 0 or this process's pid.
func selfOrZero(arg int) []seccomp.ArgCond {
	return []seccomp.ArgCond{pidIs(arg, 0), pidIs(arg, seccomp.SelfPID)}
}

func inProcessRows() []inProcessRow {
	var cloneConds []seccomp.ArgCond
	for bit := uint64(1); bit != 0; bit <<= 1 {
		if cloneNewMask&bit != 0 {
			cloneConds = append(cloneConds, seccomp.ArgCond{Arg: 0, Mask: bit, Value: bit, Action: actEPERM})
		}
	}
	// A clone without CLONE_THREAD creates a process.
	cloneConds = append(cloneConds, seccomp.ArgCond{Arg: 0, Mask: unix.CLONE_THREAD, Value: 0, Action: actEPERM})
	prio := append([]seccomp.ArgCond{{Arg: 0, Mask: 0xffffffff, Value: unix.PRIO_USER, Width32: true, Action: actEPERM}},
		selfOrZero(1)...)
	return []inProcessRow{
		{names: []string{"fork", "vfork"}, action: actEPERM,
			why: "no process is created in-process: one made through kbox's code would escape the tier and outlive kbox"},
		{names: []string{"clone"}, conds: cloneConds, action: actAllow,
			why: "threads only (CLONE_THREAD), no namespaces"},
		{names: []string{"clone3"}, action: actENOSYS,
			why: "its flags are in memory, where BPF cannot check them; libcs fall back to clone"},
		{names: []string{"execve", "execveat"}, action: actEPERM,
			why: "the guest's exec is emulated in-process; kbox never asks the host kernel to exec"},
		{names: []string{"shmget", "shmat", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget",
			"msgsnd", "msgrcv", "msgctl"}, action: actENOSYS,
			why: "SysV IPC objects are host-wide; only the seccomp tier confines them to the guest's own"},
		{names: []string{"prctl"}, action: actAllow,
			conds: []seccomp.ArgCond{{Arg: 0, Mask: 0xffffffff, Value: unix.PR_SET_PDEATHSIG, Width32: true, Action: actEPERM}},
			why:   "the process must die with its supervisor"},
		{names: []string{"kill"}, action: actEPERM,
			conds: append(selfOrZero(0), pidIs(0, seccomp.SelfNegPID)),
			why:   "signals reach only this process (its process group is its own)"},
		{names: []string{"tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"}, action: actEPERM,
			conds: []seccomp.ArgCond{pidIs(0, seccomp.SelfPID)}, why: "signals reach only this process"},
		{names: []string{"tkill", "pidfd_send_signal"}, action: actEPERM,
			why: "their target (a bare tid, or a /proc/<pid> descriptor) cannot be checked in BPF"},
		{names: []string{"seccomp"}, action: actEPERM,
			conds: []seccomp.ArgCond{{Arg: 0, Mask: 0xffffffff, Value: unix.SECCOMP_SET_MODE_FILTER, Width32: true, Action: actAllow}},
			why:   "kbox installs the guest thread's interception filter after this one; a filter can only restrict further"},
		{names: []string{"unshare"}, action: actEPERM,
			conds: []seccomp.ArgCond{{Arg: 0, Mask: ^uint64(unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SYSVSEM), Value: 0, Action: actAllow}},
			why:   "a thread's own cwd and descriptor table only (kbox binds sockets by name on a thread of its own); no namespaces"},
		{names: []string{"setpgid"}, action: actEPERM,
			why: "the process leads its own group from its start; the trap tier answers the guest's setpgid itself"},
		{names: []string{"prlimit64", "sched_setaffinity", "sched_setparam", "sched_setscheduler",
			"sched_setattr", "migrate_pages", "move_pages"}, action: actEPERM, conds: selfOrZero(0),
			why: "only this process"},
		{names: []string{"setpriority", "ioprio_set"}, action: actEPERM, conds: prio,
			why: "only this process (not every process of the user)"},
	}
}

// InProcess compiles the filter of a process that hosts an in-process
// guest: the backstop (the dangerous set) refined by inProcessRows. It is
// the limit of every thread of that process, the guest's and kbox's alike.
func (r *Resolved) InProcess() seccomp.Program {
	p := r.Backstop()
	byNr := map[int]int{}
	for i, rule := range p.Rules {
		byNr[rule.Nr] = i
	}
	for _, row := range inProcessRows() {
		for _, name := range row.names {
			nr, ok := r.Arch.Nr(name)
			if !ok {
				continue
			}
			rule := seccomp.Rule{Nr: nr, Action: row.action, Conds: row.conds}
			if i, dup := byNr[nr]; dup {
				// A backstop denial (a dangerous argument form) stays
				// first: it can only be stricter.
				rule.Conds = append(append([]seccomp.ArgCond{}, p.Rules[i].Conds...), rule.Conds...)
				if p.Rules[i].Action != actAllow {
					rule.Action = p.Rules[i].Action
				}
				p.Rules[i] = rule
				continue
			}
			byNr[nr] = len(p.Rules)
			p.Rules = append(p.Rules, rule)
		}
	}
	sort.Slice(p.Rules, func(i, j int) bool { return p.Rules[i].Nr < p.Rules[j].Nr })
	return p
}
