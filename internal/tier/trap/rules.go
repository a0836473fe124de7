//go:build cgo && linux && amd64

package trap

import (
	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/fdtable"
	"github.com/kbox-go/kbox/internal/policy"
)

// rule serves one syscall in the trap tier and returns its raw result
// (-errno on failure).
type rule func(t *tier, c *call) int64

// nativeSpec says how a call the host kernel may run for the guest is run
// from kbox's process: which arguments are guest descriptors to translate,
// whether it returns a new descriptor, and whether it may sleep.
type nativeSpec struct {
	fdArgs uint8 // bit i: argument i is a guest descriptor
	// newFD: the result is a new host descriptor for the guest; its
	// close-on-exec flag is bit cloexecBit of argument cloexecArg
	// (cloexecArg < 0: never set).
	newFD      bool
	cloexecArg int
	cloexecBit uint64
	// blocking: the call may sleep; it runs interruptibly unless every
	// descriptor argument is a regular file or directory.
	blocking bool
	// epipe: the call writes to a descriptor and can raise SIGPIPE;
	// sendFlags, when nonzero, is the index of its MSG_* flags argument
	// (MSG_NOSIGNAL suppresses the signal).
	epipe     bool
	sendFlags int
}

func fdArg(idx ...int) uint8 {
	var m uint8
	for _, i := range idx {
		m |= 1 << i
	}
	return m
}

// nativeSpecs is the table of calls the trap tier runs natively, by number
// (filled from nativeByName for the host architecture). Calls not here are
// served by a rule of their own or by the engine.
var nativeSpecs = map[int]nativeSpec{}

var nativeByName = func() map[string]nativeSpec {
	m := map[string]nativeSpec{}
	set := func(s nativeSpec, names ...string) {
		for _, n := range names {
			m[n] = s
		}
	}
	fd0 := nativeSpec{fdArgs: fdArg(0)}
	set(fd0, "lseek", "fsync", "fdatasync", "ftruncate", "fallocate", "fadvise64", "readahead",
		"sync_file_range", "syncfs", "fstatfs", "fgetxattr", "fsetxattr", "flistxattr", "fremovexattr",
		"inotify_rm_watch", "listen", "getsockopt", "setsockopt", "shutdown", "timerfd_settime",
		"timerfd_gettime", "fstat", "fchown", "fchmod", "getdents", "getdents64", "cachestat",
		"getsockname", "getpeername", "bind", "connect", "ioctl", "fcntl", "vmsplice")
	set(nativeSpec{fdArgs: fdArg(0), blocking: true}, "read", "readv", "pread64", "preadv", "preadv2",
		"recvfrom", "epoll_wait", "epoll_pwait", "epoll_pwait2", "flock")
	set(nativeSpec{fdArgs: fdArg(0), blocking: true, epipe: true}, "write", "writev", "pwrite64", "pwritev",
		"pwritev2")
	set(nativeSpec{fdArgs: fdArg(0), blocking: true, epipe: true, sendFlags: 3}, "sendto", "sendmmsg")
	set(nativeSpec{fdArgs: fdArg(0), blocking: true, epipe: true, sendFlags: 2}, "sendmsg")
	set(nativeSpec{fdArgs: fdArg(0, 1), blocking: true, epipe: true}, "sendfile", "tee")
	set(nativeSpec{fdArgs: fdArg(0, 2), blocking: true, epipe: true}, "splice", "copy_file_range")
	set(nativeSpec{fdArgs: fdArg(0, 2)}, "epoll_ctl")
	set(nativeSpec{newFD: true, cloexecArg: 1, cloexecBit: unix.SOCK_CLOEXEC}, "socket")
	set(nativeSpec{newFD: true, cloexecArg: 1, cloexecBit: unix.EFD_CLOEXEC}, "eventfd2")
	set(nativeSpec{newFD: true, cloexecArg: -1}, "eventfd", "epoll_create", "inotify_init")
	set(nativeSpec{newFD: true, cloexecArg: 0, cloexecBit: unix.EPOLL_CLOEXEC}, "epoll_create1")
	set(nativeSpec{newFD: true, cloexecArg: 1, cloexecBit: unix.TFD_CLOEXEC}, "timerfd_create")
	set(nativeSpec{newFD: true, cloexecArg: 0, cloexecBit: unix.IN_CLOEXEC}, "inotify_init1")
	set(nativeSpec{newFD: true, cloexecArg: 1, cloexecBit: unix.MFD_CLOEXEC}, "memfd_create")
	set(nativeSpec{fdArgs: fdArg(0), newFD: true, cloexecArg: -1, blocking: true}, "accept")
	set(nativeSpec{fdArgs: fdArg(0), newFD: true, cloexecArg: 3, cloexecBit: unix.SOCK_CLOEXEC, blocking: true}, "accept4")
	// No descriptors, no paths, nothing shared with kbox beyond what a
	// process owns anyway.
	set(nativeSpec{}, "sync", "getppid", "getpgid", "getpgrp", "getsid", "setsid",
		"getrlimit", "getrusage", "times", "getpriority", "setpriority", "umask", "getcpu", "uname", "sysinfo",
		"syslog", "sched_getaffinity", "sched_setaffinity", "sched_yield", "sched_getparam", "sched_setparam",
		"sched_getscheduler", "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
		"sched_rr_get_interval", "sched_getattr", "sched_setattr", "clock_gettime", "clock_getres",
		"gettimeofday", "time", "getrandom", "timer_create", "timer_settime", "timer_gettime",
		"timer_getoverrun", "timer_delete", "ioprio_get", "ioprio_set", "capget", "alarm", "setitimer",
		"getitimer", "membarrier", "msync", "mincore", "mlock", "mlock2", "munlock", "mlockall",
		"munlockall", "get_mempolicy", "set_mempolicy", "mbind", "set_mempolicy_home_node",
		"pkey_alloc", "pkey_free",
		"getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "setuid", "setgid",
		"setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid", "setgroups",
		"futex_wake", "futex_requeue", "migrate_pages", "move_pages", "prlimit64")
	set(nativeSpec{blocking: true}, "nanosleep", "clock_nanosleep", "futex", "futex_wait", "futex_waitv",
		"wait4", "waitid")
	return m
}()

// buildRules fills the per-number rule table from the policy table, the
// native specs and the trap tier's own rules.
func (t *tier) buildRules() {
	arch := t.eng.Arch()
	t.rules = make([]rule, arch.MaxNr()+1)
	for name, spec := range nativeByName {
		if nr, ok := arch.Nr(name); ok {
			nativeSpecs[nr] = spec
		}
	}
	for _, name := range restartableNames {
		if nr, ok := arch.Nr(name); ok {
			restartable[nr] = true
		}
	}
	for nr := range t.rules {
		t.rules[nr] = t.policyRule(nr)
	}
	for name, r := range ownRules {
		if nr, ok := arch.Nr(name); ok {
			t.rules[nr] = guarded(t.pol, nr, r)
		}
	}
}

// policyRule applies the disposition table: denied and unsupported calls
// fail, allowed ones run natively, notified ones go to the engine.
func (t *tier) policyRule(nr int) rule {
	e, listed := t.pol.ByNr[nr]
	if !listed {
		return nil // the engine answers ENOSYS and counts it
	}
	spec, native := nativeSpecs[nr]
	runAllowed := func(t *tier, c *call) int64 {
		if !native {
			return notInProcess(t, c)
		}
		return t.runNative(c, spec)
	}
	if len(e.Conds) == 0 {
		switch t.pol.Disposition(nr) {
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
func (t *tier) runNative(c *call, spec nativeSpec) int64 {
	t.native.Add(1)
	a := c.args
	sleepy := spec.blocking
	for i := 0; i < 6; i++ {
		if spec.fdArgs&(1<<i) == 0 {
			continue
		}
		e, ok := t.fds.Get(c.int(i))
		if !ok {
			return -int64(unix.EBADF)
		}
		a[i] = uint64(e.HostFD)
		if spec.blocking && t.isRegular(e.HostFD) {
			sleepy = false
		}
	}
	var r int64
	if sleepy {
		r = t.blocking(c, a)
	} else {
		r = rawSyscall(c.nr, a)
	}
	if r == -int64(unix.EPIPE) && spec.epipe && (spec.sendFlags == 0 || c.args[spec.sendFlags]&unix.MSG_NOSIGNAL == 0) {
		t.sig.raise(int(unix.SIGPIPE), nil)
	}
	if spec.newFD && r >= 0 {
		cloexec := spec.cloexecArg >= 0 && c.args[spec.cloexecArg]&spec.cloexecBit != 0
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
		if restartable[c.nr] {
			return errRestart
		}
		return r
	}
}

// restartable holds the calls a handler installed with SA_RESTART restarts
// (signal(7)); the others (poll, select, epoll_wait, nanosleep, pause,
// sigsuspend, SysV IPC, ...) fail with EINTR whatever the flag.
var restartable = map[int]bool{}

var restartableNames = []string{"read", "readv", "write", "writev", "pread64", "pwrite64", "preadv", "pwritev",
	"preadv2", "pwritev2", "recvfrom", "recvmsg", "sendto", "sendmsg", "sendmmsg", "accept", "accept4",
	"connect", "flock", "fcntl", "wait4", "waitid", "futex", "splice", "tee", "sendfile", "copy_file_range",
	"ioctl", "open", "openat", "openat2"}

func rawSyscall(nr int, a [6]uint64) int64 {
	r, _, en := unix.RawSyscall6(uintptr(nr), uintptr(a[0]), uintptr(a[1]), uintptr(a[2]), uintptr(a[3]), uintptr(a[4]), uintptr(a[5]))
	if en != 0 {
		return -int64(en)
	}
	return int64(r)
}

// ownRules are the calls the trap tier serves itself, by name: descriptor
// management, memory, signals, process lifetime.
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

var _ = fdtable.KindUnknown
