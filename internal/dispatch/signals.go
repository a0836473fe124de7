package dispatch

import (
	"encoding/binary"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

// Calls that reach other processes — signals, process groups, priorities,
// scheduling, resource limits, SIGIO ownership — reach only the guest's
// own processes. Guest processes keep their real pids, so a permitted call
// continues in the kernel unchanged (the kernel then fills in the real
// sender); a pid outside the guest answers ESRCH, as if it did not exist.
// The guest's first process gets a process group of its own, and setpgid
// only joins guest groups, so a process group that contains a guest
// process contains only guest processes.

func init() {
	register(sysKill, "kill")
	register(targetArg0, "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")
	register(sysPidfdSendSignal, "pidfd_send_signal")
	register(sysSetpgid, "setpgid")
	register(pidArg0, "prlimit64", "sched_setaffinity", "sched_setparam", "sched_setscheduler",
		"sched_setattr", "migrate_pages", "move_pages")
	register(sysSetpriority, "setpriority")
	register(sysIoprioSet, "ioprio_set")
	register(sysFcntlOwner, "fcntl")
	register(sysIoctlOwner, "ioctl")
}

const maxSignal = 64

// outside answers a call aimed at a process outside the guest.
func (e *Engine) outside(r *Request, what string, pid int) Result {
	e.Verbosef("pid %d: %s of pid %d refused: not a guest process (ESRCH)", r.Tgid, what, pid)
	return Fail(unix.ESRCH)
}

// isGuestTask reports whether a thread or process id belongs to the guest.
func (e *Engine) isGuestTask(id int) bool { return id > 0 && e.Procs.IsGuest(id) }

// pgidOf reads a process's group from /proc/<pid>/stat.
func pgidOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return -1
	}
	g, _ := strconv.Atoi(f[2])
	return g
}

// isGuestPgrp reports whether pgid names a process group of the guest: its
// leader is a guest process, or a known guest process belongs to it.
func (e *Engine) isGuestPgrp(pgid int) bool {
	if pgid <= 0 {
		return false
	}
	if e.isGuestTask(pgid) {
		return true
	}
	for _, p := range e.Procs.live() {
		if pgidOf(p.Tgid) == pgid && e.Procs.alive(p) {
			return true
		}
	}
	return false
}

func validSignal(sig int) bool { return sig >= 0 && sig <= maxSignal }

func sysKill(e *Engine, r *Request) Result {
	pid, sig := r.Int(0), r.Int(1)
	if !validSignal(sig) {
		return Fail(unix.EINVAL)
	}
	switch {
	case pid > 0:
		if !e.isGuestTask(pid) {
			return e.outside(r, "kill", pid)
		}
		return Cont()
	case pid == 0:
		return Cont() // the caller's own group: guest processes only
	case pid == -1:
		// Every process the caller may signal: the guest's, not the host's.
		sent := false
		for tgid := range e.Procs.guestSet() {
			if tgid == r.Tgid {
				continue
			}
			if unix.Kill(tgid, unix.Signal(sig)) == nil {
				sent = true
			}
		}
		if !sent {
			return Fail(unix.ESRCH)
		}
		return Ok(0)
	default:
		if !e.isGuestPgrp(-pid) {
			return e.outside(r, "kill of process group", -pid)
		}
		return Cont()
	}
}

// targetArg0 serves the thread- and process-directed signal calls whose
// first argument is the target (tkill, tgkill, rt_sigqueueinfo,
// rt_tgsigqueueinfo).
func targetArg0(e *Engine, r *Request) Result {
	if !e.isGuestTask(r.Int(0)) {
		return e.outside(r, e.arch.SyscallName(r.Nr), r.Int(0))
	}
	return Cont()
}

// pidfdTarget reads which process a pidfd refers to.
func pidfdTarget(fd int) int {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pid:"); ok {
			p, _ := strconv.Atoi(strings.TrimSpace(v))
			return p
		}
	}
	return -1
}

func sysPidfdSendSignal(e *Engine, r *Request) Result {
	h, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Fail(err)
	}
	target := pidfdTarget(h)
	unix.Close(h)
	if target <= 0 {
		return Fail(unix.EBADF)
	}
	if !e.isGuestTask(target) {
		return e.outside(r, "pidfd_send_signal", target)
	}
	return Cont()
}

func sysSetpgid(e *Engine, r *Request) Result {
	pid, pgid := r.Int(0), r.Int(1)
	if pid < 0 || pgid < 0 {
		return Fail(unix.EINVAL)
	}
	target := pid
	if target == 0 {
		target = r.Tgid
	}
	if !e.isGuestTask(target) {
		return e.outside(r, "setpgid", target)
	}
	if pgid != 0 && pgid != target && !e.isGuestPgrp(pgid) {
		e.Verbosef("pid %d: setpgid into process group %d refused: not a guest group", r.Tgid, pgid)
		return Fail(unix.EPERM)
	}
	return Cont()
}

// pidArg0 serves calls whose first argument is a target pid (pid 0 never
// reaches the supervisor: the filter allows it).
func pidArg0(e *Engine, r *Request) Result {
	pid := r.Int(0)
	if pid < 0 {
		return Fail(unix.EINVAL)
	}
	if pid != 0 && !e.isGuestTask(pid) {
		return e.outside(r, e.arch.SyscallName(r.Nr), pid)
	}
	return Cont()
}

// whoTarget checks a (which, who) pair of setpriority or ioprio_set.
func (e *Engine) whoTarget(r *Request, kind string, who int) Result {
	switch kind {
	case "process":
		if who != 0 && !e.isGuestTask(who) {
			return e.outside(r, e.arch.SyscallName(r.Nr), who)
		}
	case "pgrp":
		if who != 0 && !e.isGuestPgrp(who) {
			return e.outside(r, e.arch.SyscallName(r.Nr)+" of process group", who)
		}
	default:
		// A user's processes include host processes.
		return e.denied(r, unix.EPERM, "priorities of every process of a user reach the host")
	}
	return Cont()
}

func sysSetpriority(e *Engine, r *Request) Result {
	kinds := map[int]string{unix.PRIO_PROCESS: "process", unix.PRIO_PGRP: "pgrp", unix.PRIO_USER: "user"}
	k, ok := kinds[r.Int(0)]
	if !ok {
		return Fail(unix.EINVAL)
	}
	return e.whoTarget(r, k, r.Int(1))
}

func sysIoprioSet(e *Engine, r *Request) Result {
	// IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER.
	kinds := map[int]string{1: "process", 2: "pgrp", 3: "user"}
	k, ok := kinds[r.Int(0)]
	if !ok {
		return Fail(unix.EINVAL)
	}
	return e.whoTarget(r, k, r.Int(1))
}

// ownerOK checks a SIGIO owner: a pid (> 0), a process group (< 0) or none.
func (e *Engine) ownerOK(owner int) bool {
	switch {
	case owner == 0:
		return true
	case owner > 0:
		return e.isGuestTask(owner)
	default:
		return e.isGuestPgrp(-owner)
	}
}

// fOwnerEx is struct f_owner_ex.
type fOwnerEx struct {
	Type int32
	Pid  int32
}

// sysFcntlOwner sees only F_SETOWN and F_SETOWN_EX (the filter allows the
// other commands).
func sysFcntlOwner(e *Engine, r *Request) Result {
	switch r.Int(1) {
	case unix.F_SETOWN:
		if !e.ownerOK(r.Int(2)) {
			return e.outside(r, "fcntl(F_SETOWN)", r.Int(2))
		}
		return Cont()
	case unix.F_SETOWN_EX:
		var b [8]byte
		if err := r.Mem.Read(r.Ptr(2), b[:]); err != nil {
			return Fail(err)
		}
		ex := fOwnerEx{Type: int32(binary.LittleEndian.Uint32(b[:])), Pid: int32(binary.LittleEndian.Uint32(b[4:]))}
		ok := false
		switch ex.Type {
		case abi.FOwnerTID, abi.FOwnerPID:
			ok = ex.Pid == 0 || e.isGuestTask(int(ex.Pid))
		case abi.FOwnerPGRP:
			ok = ex.Pid == 0 || e.isGuestPgrp(int(ex.Pid))
		default:
			return Fail(unix.EINVAL)
		}
		if !ok {
			return e.outside(r, "fcntl(F_SETOWN_EX)", int(ex.Pid))
		}
		// Applied from kbox's copy: the struct in guest memory could change.
		h, err := r.FDs.DupFD(r.Int(0))
		if err != nil {
			return Fail(err)
		}
		defer unix.Close(h)
		return errOf(fcntlSetOwnerEx(h, &ex))
	}
	return Cont()
}

// sysIoctlOwner sees only FIOSETOWN and SIOCSPGRP.
func sysIoctlOwner(e *Engine, r *Request) Result {
	req := r.Uint(1)
	if req != abi.FIOSETOWN && req != abi.SIOCSPGRP {
		return Cont()
	}
	var b [4]byte
	if err := r.Mem.Read(r.Ptr(2), b[:]); err != nil {
		return Fail(err)
	}
	owner := int32(binary.LittleEndian.Uint32(b[:]))
	if !e.ownerOK(int(owner)) {
		return e.outside(r, "ioctl(FIOSETOWN)", int(owner))
	}
	h, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(h)
	return errOf(ioctlIntPtr(h, uint(req), &owner))
}
