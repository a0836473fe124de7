package dispatch

import (
	"encoding/binary"
	"math"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

// Calls that reach other processes — signals, process groups, priorities,
// scheduling, resource limits, SIGIO ownership — reach only the guest's
// own processes; a pid outside the guest answers ESRCH, as if it did not
// exist. The guest's first process gets a process group of its own, and
// setpgid (always notified) only joins groups of guest processes, so a
// process group that contains a guest process contains only guest
// processes. kbox does not rely on that alone: a process group is the
// guest's only when every member is a guest process (isGuestPgrp), for
// every call that names one — kill(0) and kill(-pgid), setpgid,
// setpriority and ioprio_set, SIGIO owners, the terminal's foreground
// group.
//
// The check and the act must concern one process, not one number: a
// target is judged through the process table, which holds a pidfd per
// guest process (procs.go), immediately before kbox answers, and
//   - signal 0 is answered by kbox from that check;
//   - a target in the caller's own thread group continues in the kernel
//     (it cannot be reaped while the caller lives);
//   - a signal to another guest process or group continues when the
//     kernel confines the guest's signals to its Landlock domain
//     (LANDLOCK_SCOPE_SIGNAL, Landlock ABI 6): should the target be
//     reaped and its pid reused by a host process between the check and
//     the delivery, the kernel refuses it. Without that scope kbox sends
//     the signal itself, through the target's pidfd (or, thread-directed,
//     a thread pidfd, Linux 6.9+), which names nothing else; the receiver
//     then sees kbox as the sender (si_pid). Process-group signals, and
//     thread-directed ones before Linux 6.9, continue after the check;
//   - the calls that hand the kernel a bare pid and have no pidfd form
//     (priorities, scheduling, rlimits, page migration) continue after the
//     check; kbox does not perform them itself because its own privileges
//     (root, CAP_SYS_NICE, CAP_SYS_RESOURCE) would replace the guest's;
//   - SIGIO owners are set by kbox on its duplicate of the descriptor and
//     judged again afterwards: the kernel took the target when it was set,
//     and an owner that is no longer the judged guest is reset.
// What remains is a window of microseconds in which a target that was
// judged must exit, be reaped and have its pid taken by a host process
// before the kernel looks the number up: docs/security.md.

func init() {
	register(sysKill, "kill")
	register(sysTkill, "tkill")
	register(sysTgkill, "tgkill")
	register(sysRtSigqueueinfo, "rt_sigqueueinfo")
	register(sysRtTgsigqueueinfo, "rt_tgsigqueueinfo")
	register(sysPidfdSendSignal, "pidfd_send_signal")
	register(sysSetpgid, "setpgid")
	register(pidArg0, "prlimit64", "sched_setaffinity", "sched_setparam", "sched_setscheduler",
		"sched_setattr", "migrate_pages", "move_pages")
	register(sysSetpriority, "setpriority")
	register(sysIoprioSet, "ioprio_set")
	register(sysFcntlOwner, "fcntl")
}

const maxSignal = 64

// outside answers a call aimed at a process outside the guest.
func (e *Engine) outside(r *Request, what string, pid int) Result {
	e.Verbosef("pid %d: %s of pid %d refused: not a guest process (ESRCH)", r.Tgid, what, pid)
	return Fail(unix.ESRCH)
}

// guestTask returns the guest process that thread or process id belongs
// to, judged now (nil: not a live guest task).
func (e *Engine) guestTask(id int) *Process {
	if id <= 0 {
		return nil
	}
	return e.Procs.judge(id, 0)
}

// isGuestTask reports whether a thread or process id belongs to the guest.
func (e *Engine) isGuestTask(id int) bool { return e.guestTask(id) != nil }

// pgidOf reads a process's group from /proc/<pid>/stat (of whatever
// process holds pid: callers check afterwards).
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

// isGuestPgrp reports whether pgid names a process group of the guest:
// it has members, and every one is a guest process. The members are found
// in /proc; a group kbox cannot see a member of (a /proc of another pid
// namespace) is never the guest's.
func (e *Engine) isGuestPgrp(pgid int) bool {
	if pgid <= 0 {
		return false
	}
	d, err := os.Open("/proc")
	if err != nil {
		return false
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return false
	}
	members := 0
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || pgidOf(pid) != pgid {
			continue
		}
		if !e.isGuestTask(pid) {
			return false
		}
		members++
	}
	return members > 0
}

func validSignal(sig int) bool { return sig >= 0 && sig <= maxSignal }

func sysKill(e *Engine, r *Request) Result {
	pid, sig := r.Int(0), r.Int(1)
	if !validSignal(sig) {
		return Fail(unix.EINVAL)
	}
	switch {
	case pid == r.Tgid:
		return Cont() // the caller's own process lives while it calls
	case pid > 0:
		p := e.guestTask(pid)
		if p == nil {
			return e.outside(r, "kill", pid)
		}
		return e.signalProcess(r, p, sig, nil)
	case pid == 0:
		// The caller's own group: guest processes only, unless a host
		// process joined it.
		if g := pgidOf(r.Tgid); !e.isGuestPgrp(g) {
			return e.outside(r, "kill of the caller's process group", g)
		}
		return Cont()
	case pid == -1:
		// Every process the caller may signal: the guest's, not the
		// host's (none: ESRCH). Within the Landlock scope the kernel
		// refuses the host's (kill(-1) ignores those refusals) and the
		// call continues.
		e.Procs.guestSet()
		var others []*Process
		for _, p := range e.Procs.live() {
			if p.Tgid != r.Tgid {
				others = append(others, p)
			}
		}
		if len(others) > 0 && e.Procs.scoped() {
			return Cont()
		}
		sent := false
		for _, p := range others {
			if p.UsePidfd(func(fd int) error { return unix.PidfdSendSignal(fd, unix.Signal(sig), nil, 0) }) == nil {
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
		if sig == 0 {
			return Ok(0)
		}
		return Cont()
	}
}

// signalProcess delivers a process-directed signal (info: a siginfo for
// rt_sigqueueinfo, nil otherwise) to guest process p, judged just now by
// a number other than the caller's own pid (which continues before).
func (e *Engine) signalProcess(r *Request, p *Process, sig int, info *[siginfoSize]byte) Result {
	if sig == 0 {
		return Ok(0)
	}
	if e.Procs.scoped() {
		return Cont()
	}
	return errOf(p.UsePidfd(func(fd int) error { return pidfdSendSignal(fd, sig, info, 0) }))
}

// signalThread delivers a thread-directed signal to thread tid of guest
// process g (judged just now). Calls that name the caller's own process
// (tgkill, rt_tgsigqueueinfo) continue before: the kernel then delivers
// only within that thread group.
func (e *Engine) signalThread(r *Request, g *Process, tid, sig int, info *[siginfoSize]byte) Result {
	if sig == 0 {
		return Ok(0)
	}
	if e.Procs.scoped() {
		return Cont()
	}
	tfd, err := unix.PidfdOpen(tid, unix.PIDFD_THREAD)
	if err == unix.EINVAL {
		// No thread pidfds (before Linux 6.9): checked just before.
		if !e.Procs.holdsThread(g, tid) {
			return e.outside(r, e.arch.SyscallName(r.Nr), tid)
		}
		return Cont()
	}
	if err != nil {
		return e.outside(r, e.arch.SyscallName(r.Nr), tid)
	}
	defer unix.Close(tfd)
	// tfd names the thread that had number tid when it was opened; g finds
	// tid among its threads after that, and that thread still lives: they
	// are one thread.
	if !e.Procs.holdsThread(g, tid) || !pidfdAlive(tfd) {
		return e.outside(r, e.arch.SyscallName(r.Nr), tid)
	}
	return errOf(pidfdSendSignal(tfd, sig, info, unix.PIDFD_SIGNAL_THREAD))
}

// threadTarget judges thread tid, which must belong to process tgid when
// tgid > 0 (tgkill): nil when it is not a live guest thread.
func (e *Engine) threadTarget(tgid, tid int) *Process {
	g := e.guestTask(tid)
	if g == nil || (tgid > 0 && g.Tgid != tgid) {
		return nil
	}
	return g
}

func sysTkill(e *Engine, r *Request) Result {
	tid, sig := r.Int(0), r.Int(1)
	if tid <= 0 || !validSignal(sig) {
		return Fail(unix.EINVAL)
	}
	if tid == r.Tid {
		return Cont()
	}
	g := e.threadTarget(0, tid)
	if g == nil {
		return e.outside(r, "tkill", tid)
	}
	return e.signalThread(r, g, tid, sig, nil)
}

func sysTgkill(e *Engine, r *Request) Result { return tgSignal(e, r, "tgkill", -1) }

// readSiginfo reads the guest's siginfo for sig (the kernel takes the
// signal number from the argument).
func readSiginfo(r *Request, addr uint64, sig int) (*[siginfoSize]byte, error) {
	var info [siginfoSize]byte
	if err := r.Mem.Read(addr, info[:]); err != nil {
		return nil, unix.EFAULT
	}
	binary.LittleEndian.PutUint32(info[0:], uint32(sig))
	return &info, nil
}

func sysRtSigqueueinfo(e *Engine, r *Request) Result {
	pid, sig := r.Int(0), r.Int(1)
	if !validSignal(sig) {
		return Fail(unix.EINVAL)
	}
	if pid == r.Tgid {
		return Cont()
	}
	p := e.guestTask(pid)
	if p == nil {
		return e.outside(r, "rt_sigqueueinfo", pid)
	}
	if sig == 0 || e.Procs.scoped() {
		return e.signalProcess(r, p, sig, nil)
	}
	info, err := readSiginfo(r, r.Ptr(2), sig)
	if err != nil {
		return Fail(err)
	}
	return e.signalProcess(r, p, sig, info)
}

func sysRtTgsigqueueinfo(e *Engine, r *Request) Result { return tgSignal(e, r, "rt_tgsigqueueinfo", 3) }

// tgSignal serves the thread-directed calls that name a thread group
// (tgkill, rt_tgsigqueueinfo): the guest's siginfo is argument infoArg
// (-1: none, the kernel fills it in).
func tgSignal(e *Engine, r *Request, name string, infoArg int) Result {
	tgid, tid, sig := r.Int(0), r.Int(1), r.Int(2)
	if tgid <= 0 || tid <= 0 || !validSignal(sig) {
		return Fail(unix.EINVAL)
	}
	if tgid == r.Tgid {
		return Cont()
	}
	g := e.threadTarget(tgid, tid)
	if g == nil {
		return e.outside(r, name, tid)
	}
	if infoArg < 0 || sig == 0 || e.Procs.scoped() {
		return e.signalThread(r, g, tid, sig, nil)
	}
	info, err := readSiginfo(r, r.Ptr(infoArg), sig)
	if err != nil {
		return Fail(err)
	}
	return e.signalThread(r, g, tid, sig, info)
}

// pidfdTarget reads which process a pidfd refers to: its pid, -1 once it
// has exited, 0 in another pid namespace; -2 when fd is no pidfd.
func pidfdTarget(fd int) int {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return -2
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pid:"); ok {
			p, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return -2
			}
			return p
		}
	}
	return -2
}

// sysPidfdSendSignal: the kernel signals the process the descriptor holds,
// never a number, so a check that its pid is a guest's after reading that
// pid is exact: a process that exits meanwhile only makes the call ESRCH.
func sysPidfdSendSignal(e *Engine, r *Request) Result {
	h, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Fail(err)
	}
	target := pidfdTarget(h)
	unix.Close(h)
	switch {
	case target == -1:
		return Fail(unix.ESRCH)
	case target < 0:
		return Fail(unix.EBADF)
	}
	if !e.isGuestTask(target) {
		return e.outside(r, "pidfd_send_signal", target)
	}
	return Cont()
}

// sysSetpgid confines setpgid (notified whatever its arguments): the
// target is a guest process, and the group it joins is its own new one,
// the one it is in, or a group of guest processes only. setpgid(0, X)
// joining a host group would otherwise let kill(0) reach host processes.
func sysSetpgid(e *Engine, r *Request) Result {
	pid, pgid := r.Int(0), r.Int(1)
	if pid < 0 || pgid < 0 {
		return Fail(unix.EINVAL)
	}
	target := pid
	if target == 0 {
		target = r.Tgid
	}
	if pid != 0 && !e.isGuestTask(target) {
		return e.outside(r, "setpgid", target)
	}
	if pgid == 0 || pgid == target || pgid == pgidOf(target) {
		return Cont()
	}
	if !e.isGuestPgrp(pgid) {
		return e.denied(r, unix.EPERM, "setpgid into process group "+strconv.Itoa(pgid)+": not a group of guest processes only")
	}
	return Cont()
}

// sysTiocspgrp confines TIOCSPGRP (tcsetpgrp): the terminal's foreground
// becomes the caller's own group or a group of guest processes only, so
// a host process group never receives what the user types for the guest.
// The request continues in the kernel, which reads the group again from
// guest memory: a guest racing that read can still choose another group
// of its session, which gives it no signal of its own to send (only the
// user's Ctrl-C/Ctrl-Z go to the foreground group); kbox cannot issue the
// request itself, as the terminal's checks are made against the caller.
func sysTiocspgrp(e *Engine, r *Request) Result {
	var b [4]byte
	if err := r.Mem.Read(r.Ptr(2), b[:]); err != nil {
		return Fail(err)
	}
	pgid := int(int32(binary.LittleEndian.Uint32(b[:])))
	if pgid < 0 {
		return Fail(unix.EINVAL)
	}
	if pgid != pgidOf(r.Tgid) && !e.isGuestPgrp(pgid) {
		return e.denied(r, unix.EPERM, "TIOCSPGRP to process group "+strconv.Itoa(pgid)+": not a group of guest processes only")
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

// ownerTarget judges a SIGIO owner: a pid (> 0), a process group (< 0) or
// none. recheck, called after the owner was set, reports whether it was
// still that guest target when the kernel took it.
func (e *Engine) ownerTarget(kind int32, owner int) (ok bool, recheck func() bool) {
	none := func() bool { return true }
	switch {
	case owner == 0:
		return true, none
	case kind == abi.FOwnerPGRP:
		return e.isGuestPgrp(owner), func() bool { return e.isGuestPgrp(owner) }
	case kind == abi.FOwnerTID:
		g := e.guestTask(owner)
		return g != nil, func() bool { return g != nil && e.Procs.holdsThread(g, owner) }
	default:
		// The process judged was in the table before the owner was set;
		// found alive after, it held the pid when the kernel looked it up.
		g := e.guestTask(owner)
		return g != nil, func() bool { return g != nil && e.Procs.alive(g) }
	}
}

// fOwnerEx is struct f_owner_ex.
type fOwnerEx struct {
	Type int32
	Pid  int32
}

// setOwner sets a SIGIO owner on kbox's duplicate of guest descriptor fd
// (the same open file description) and judges the target again; an
// owner that no longer checks is reset.
func (e *Engine) setOwner(r *Request, what string, fd int, ex fOwnerEx, set func(h int, ex *fOwnerEx) error) Result {
	ok, recheck := e.ownerTarget(ex.Type, int(ex.Pid))
	if !ok {
		return e.outside(r, what, int(ex.Pid))
	}
	h, err := r.FDs.DupFD(fd)
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(h)
	if err := set(h, &ex); err != nil {
		return Fail(err)
	}
	if !recheck() {
		set(h, &fOwnerEx{Type: abi.FOwnerPID})
		return e.outside(r, what, int(ex.Pid))
	}
	return Ok(0)
}

// sysFcntlOwner sees only F_SETOWN and F_SETOWN_EX (the filter allows the
// other commands).
func sysFcntlOwner(e *Engine, r *Request) Result {
	switch r.Int(1) {
	case unix.F_SETOWN:
		// Negative: a process group.
		owner := r.Int(2)
		if owner == math.MinInt32 {
			return Fail(unix.EINVAL)
		}
		ex := fOwnerEx{Type: abi.FOwnerPID, Pid: int32(owner)}
		if owner < 0 {
			ex = fOwnerEx{Type: abi.FOwnerPGRP, Pid: int32(-owner)}
		}
		return e.setOwner(r, "fcntl(F_SETOWN)", r.Int(0), ex, func(h int, ex *fOwnerEx) error {
			v := int(ex.Pid)
			if ex.Type == abi.FOwnerPGRP {
				v = -v
			}
			_, err := unix.FcntlInt(uintptr(h), unix.F_SETOWN, v)
			return err
		})
	case unix.F_SETOWN_EX:
		var b [8]byte
		if err := r.Mem.Read(r.Ptr(2), b[:]); err != nil {
			return Fail(err)
		}
		// Applied from kbox's copy: the struct in guest memory could change.
		ex := fOwnerEx{Type: int32(binary.LittleEndian.Uint32(b[:])), Pid: int32(binary.LittleEndian.Uint32(b[4:]))}
		switch ex.Type {
		case abi.FOwnerTID, abi.FOwnerPID, abi.FOwnerPGRP:
		default:
			return Fail(unix.EINVAL)
		}
		return e.setOwner(r, "fcntl(F_SETOWN_EX)", r.Int(0), ex, fcntlSetOwnerEx)
	}
	return Cont()
}

// sysIoctlOwner serves FIOSETOWN and SIOCSPGRP (from sysIoctl, fs_ioctl.go).
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
	if owner == math.MinInt32 {
		return Fail(unix.EINVAL)
	}
	ex := fOwnerEx{Type: abi.FOwnerPID, Pid: owner}
	if owner < 0 {
		ex = fOwnerEx{Type: abi.FOwnerPGRP, Pid: -owner}
	}
	return e.setOwner(r, "ioctl(FIOSETOWN)", r.Int(0), ex, func(h int, ex *fOwnerEx) error {
		v := ex.Pid
		if ex.Type == abi.FOwnerPGRP {
			v = -v
		}
		return ioctlIntPtr(h, uint(req), &v)
	})
}
