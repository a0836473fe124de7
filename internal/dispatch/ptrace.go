package dispatch

import (
	"golang.org/x/sys/unix"
)

// ptrace is notified only in the seccomp tier with Landlock
// (policy.Options.GuestDomain): the launcher put the guest's processes in
// a Landlock domain of their own, and the kernel lets a process of a
// domain trace only processes of the same domain. So the guest can trace
// its own processes (LeakSanitizer stops its threads with ptrace,
// debuggers attach to their children) and the kernel refuses kbox, its
// reaper and every host process, whatever happens to a pid between this
// check and the call. The check here gives the clear answer (ESRCH and a
// -v line, as for a signal to a process outside the guest) before the
// kernel's EPERM.

func init() {
	register(sysPtrace, "ptrace")
}

func sysPtrace(e *Engine, r *Request) Result {
	req := r.Int(0)
	if req == unix.PTRACE_TRACEME {
		// The tracer is the caller's parent.
		ppid := ppidOf(r.Tgid)
		if e.guestTask(ppid) == nil {
			e.Verbosef("pid %d: ptrace(PTRACE_TRACEME) refused: its parent %d is not a guest process (EPERM)", r.Tgid, ppid)
			return Fail(unix.EPERM)
		}
		return Cont()
	}
	pid := r.Int(1)
	if pid != r.Tgid && e.guestTask(pid) == nil {
		return e.outside(r, "ptrace", pid)
	}
	return Cont()
}
