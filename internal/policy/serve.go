package policy

import (
	"fmt"
	"sort"

	"golang.org/x/sys/unix"
)

// The table's in-process facet: how the trap and rewrite tiers serve each
// call once it reaches them. The disposition says what the seccomp filter
// does; these columns say which of the in-process core's paths answers the
// call, how it runs on the host when it runs natively, whether SA_RESTART
// restarts it, and whether the rewrite tier's fast path issues it. They are
// written by name, like the dispositions, and every name must be a row of
// Table (Check fails otherwise), so a call cannot be known to one tier and
// unknown to the table.

// InProc says which path of an in-process tier answers a call.
type InProc uint8

const (
	// ByDisposition: the row's disposition decides. Denied and unsupported
	// forms fail; allowed forms run on the host (Entry.Native); notified
	// forms go to the dispatch engine.
	ByDisposition InProc = iota
	// OwnRule: the in-process core answers it itself, because it owns the
	// state the call acts on in that process (the descriptor table,
	// signals, memory, the process's lifetime).
	OwnRule
	// NotInProcess: ENOSYS, with a note that the seccomp tier runs it.
	NotInProcess
)

func (s InProc) String() string {
	switch s {
	case ByDisposition:
		return "by disposition"
	case OwnRule:
		return "own rule"
	case NotInProcess:
		return "ENOSYS (seccomp tier only)"
	}
	return fmt.Sprintf("inproc(%d)", s)
}

// NativeSpec says how an in-process tier runs a call on the host for the
// guest: which arguments are guest descriptors to translate, whether it
// returns a new descriptor, and whether it may sleep.
type NativeSpec struct {
	// FDArgs: bit i set when argument i is a guest descriptor.
	FDArgs uint8
	// NewFD: the result is a new host descriptor for the guest; its
	// close-on-exec flag is bit CloexecBit of argument CloexecArg
	// (CloexecArg < 0: never set).
	NewFD      bool
	CloexecArg int
	CloexecBit uint64
	// Blocking: the call may sleep; it runs interruptibly unless every
	// descriptor argument is a regular file or directory.
	Blocking bool
	// EPIPE: the call writes to a descriptor and can raise SIGPIPE;
	// SendFlags, when nonzero, is the index of its MSG_* flags argument
	// (MSG_NOSIGNAL suppresses the signal).
	EPIPE     bool
	SendFlags int
	// SigmaskArg, when nonzero, is the index of a signal mask the call
	// installs for its duration (its size follows it). The guest's masks
	// are kbox's virtual ones: the host call gets none, so a guest can
	// never block kbox's kick or SIGSYS, nor unblock kbox's own signals,
	// on its thread (ppoll and pselect6, served by their own rules, do
	// the same).
	SigmaskArg int
}

// FastKind is what the rewrite tier's fast path does with a call issued
// from a patched site (internal/inproc's fastpath_amd64.c reads it as a
// byte per syscall number; the interception filter allows the fast path's
// descriptor syscall only for the FastFD and FastFstat rows).
type FastKind uint8

const (
	// FastNone: the call traps like any guest syscall.
	FastNone FastKind = iota
	// FastFD: a descriptor call (descriptor in the first argument) on a
	// regular file or directory runs on the host descriptor directly.
	FastFD
	// FastFstat: as FastFD when fstat needs no owner translation.
	FastFstat
	// FastPid: answered with the guest's pid (the guest is one thread).
	FastPid
	// FastNative: runs on the host unchanged (no descriptor, no path).
	FastNative
	// FastStat: a stat of a path by AT_FDCWD, answered from the
	// in-process stat cache when the path is in it (statcache.c).
	FastStat
)

func fdArgs(idx ...int) uint8 {
	var m uint8
	for _, i := range idx {
		m |= 1 << i
	}
	return m
}

// nativeSpecs: the calls an in-process tier may run on the host, when the
// disposition or the engine lets them run.
func nativeSpecs() map[string]NativeSpec {
	m := make(map[string]NativeSpec, 160)
	set := func(s NativeSpec, names ...string) {
		for _, n := range names {
			m[n] = s
		}
	}
	fd0 := NativeSpec{FDArgs: fdArgs(0)}
	set(fd0, "lseek", "fsync", "fdatasync", "ftruncate", "fallocate", "fadvise64", "readahead",
		"sync_file_range", "syncfs", "fstatfs", "fgetxattr", "fsetxattr", "flistxattr", "fremovexattr",
		"inotify_rm_watch", "listen", "getsockopt", "setsockopt", "shutdown", "timerfd_settime",
		"timerfd_gettime", "fstat", "fchown", "fchmod", "getdents", "getdents64", "cachestat",
		"getsockname", "getpeername", "bind", "connect", "ioctl", "fcntl", "vmsplice")
	set(NativeSpec{FDArgs: fdArgs(0), Blocking: true}, "read", "readv", "pread64", "preadv", "preadv2",
		"recvfrom", "epoll_wait", "flock")
	set(NativeSpec{FDArgs: fdArgs(0), Blocking: true, SigmaskArg: 4}, "epoll_pwait", "epoll_pwait2")
	set(NativeSpec{FDArgs: fdArgs(0), Blocking: true, EPIPE: true}, "write", "writev", "pwrite64", "pwritev",
		"pwritev2")
	set(NativeSpec{FDArgs: fdArgs(0), Blocking: true, EPIPE: true, SendFlags: 3}, "sendto", "sendmmsg")
	set(NativeSpec{FDArgs: fdArgs(0), Blocking: true, EPIPE: true, SendFlags: 2}, "sendmsg")
	set(NativeSpec{FDArgs: fdArgs(0, 1), Blocking: true, EPIPE: true}, "sendfile", "tee")
	set(NativeSpec{FDArgs: fdArgs(0, 2), Blocking: true, EPIPE: true}, "splice", "copy_file_range")
	set(NativeSpec{FDArgs: fdArgs(0, 2)}, "epoll_ctl")
	set(NativeSpec{NewFD: true, CloexecArg: 1, CloexecBit: unix.SOCK_CLOEXEC}, "socket")
	set(NativeSpec{NewFD: true, CloexecArg: 1, CloexecBit: unix.EFD_CLOEXEC}, "eventfd2")
	set(NativeSpec{NewFD: true, CloexecArg: -1}, "eventfd", "epoll_create", "inotify_init")
	set(NativeSpec{NewFD: true, CloexecArg: 0, CloexecBit: unix.EPOLL_CLOEXEC}, "epoll_create1")
	set(NativeSpec{NewFD: true, CloexecArg: 1, CloexecBit: unix.TFD_CLOEXEC}, "timerfd_create")
	set(NativeSpec{NewFD: true, CloexecArg: 0, CloexecBit: unix.IN_CLOEXEC}, "inotify_init1")
	set(NativeSpec{NewFD: true, CloexecArg: 1, CloexecBit: unix.MFD_CLOEXEC}, "memfd_create")
	set(NativeSpec{FDArgs: fdArgs(0), NewFD: true, CloexecArg: -1, Blocking: true}, "accept")
	set(NativeSpec{FDArgs: fdArgs(0), NewFD: true, CloexecArg: 3, CloexecBit: unix.SOCK_CLOEXEC, Blocking: true}, "accept4")
	// No descriptors, no paths, nothing shared with kbox beyond what a
	// process owns anyway.
	set(NativeSpec{}, "sync", "getppid", "getpgid", "getpgrp", "getsid", "setsid",
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
	set(NativeSpec{Blocking: true}, "nanosleep", "clock_nanosleep", "futex", "futex_wait", "futex_waitv",
		"wait4", "waitid")
	return m
}

// ownRuleNames are the calls the in-process core answers itself: its
// descriptor table (close, dup, pipes, poll: descriptors are translated),
// memory (the guest's own regions, W^X, brk), signals (virtual), and the
// process (lifetime, thread state, exec in place, no new processes).
var ownRuleNames = []string{
	"close", "close_range", "dup", "dup2", "dup3", "fcntl", "ioctl", "pipe", "pipe2", "socketpair",
	"poll", "ppoll", "select", "pselect6", "recvmsg",
	"mmap", "munmap", "mprotect", "pkey_mprotect", "mremap", "madvise", "mseal", "brk", "map_shadow_stack",
	"exit", "exit_group", "clone", "clone3", "fork", "vfork", "arch_prctl", "prctl", "set_tid_address",
	"set_robust_list", "get_robust_list", "rseq", "getpid", "gettid", "setrlimit", "prlimit64",
	"execve", "execveat", "setpgid",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigsuspend", "rt_sigtimedwait",
	"sigaltstack", "pause", "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
}

// notInProcessNames are the calls the in-process tiers do not serve:
// signalfd would need the virtual signal state as a descriptor, recvmmsg
// the descriptor translation of SCM_RIGHTS for many messages, and SysV IPC
// objects are host-wide (the process hosting an in-process guest cannot
// reach them at all: InProcess). restart_syscall: an in-process guest's
// calls never return to it through the kernel's restart block; the core
// restarts interrupted calls itself.
var notInProcessNames = []string{"signalfd", "signalfd4", "recvmmsg", "restart_syscall",
	"shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
	"msgget", "msgsnd", "msgrcv", "msgctl"}

// restartableNames are the calls a handler installed with SA_RESTART
// restarts (signal(7)); the others (poll, select, epoll_wait, nanosleep,
// pause, sigsuspend, SysV IPC, ...) fail with EINTR whatever the flag.
var restartableNames = []string{"read", "readv", "write", "writev", "pread64", "pwrite64", "preadv", "pwritev",
	"preadv2", "pwritev2", "recvfrom", "recvmsg", "sendto", "sendmsg", "sendmmsg", "accept", "accept4",
	"connect", "flock", "fcntl", "wait4", "waitid", "futex", "splice", "tee", "sendfile", "copy_file_range",
	"ioctl", "open", "openat", "openat2"}

// fastKinds are the calls the rewrite tier's fast path serves without a
// signal. getpid and gettid are answered (the in-process guest is one
// thread); getppid runs natively.
var fastKinds = map[string]FastKind{
	"read": FastFD, "write": FastFD, "lseek": FastFD, "pread64": FastFD, "pwrite64": FastFD,
	"readv": FastFD, "writev": FastFD, "fstat": FastFstat,
	"getpid": FastPid, "gettid": FastPid, "getppid": FastNative,
	"stat": FastStat, "lstat": FastStat, "newfstatat": FastStat,
}

// pathStableNames are the calls after which the in-process stat cache's
// entries still hold: they change no name, no cwd or root, no mount and no
// recorded owner (a file's own contents, size and times may change: the
// cache reads the object's status live). Every other call the engine
// serves starts a new generation of the cache. open and openat keep it
// only when read-only, without O_CREAT and O_TRUNC (checked in C).
var pathStableNames = []string{
	"read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2", "pwritev2",
	"lseek", "close", "fstat", "stat", "lstat", "newfstatat", "statx", "access", "faccessat", "faccessat2",
	"readlink", "readlinkat", "getdents", "getdents64", "getcwd", "statfs", "fstatfs", "open", "openat",
	"getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr",
	"fsync", "fdatasync", "ftruncate", "fallocate", "fadvise64", "ioctl", "fcntl", "dup", "dup2", "dup3",
	"pipe", "pipe2", "poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait",
	"epoll_pwait", "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getresuid",
	"getresgid", "getgroups", "brk", "mmap", "munmap", "mprotect", "madvise", "mremap", "futex",
	"rt_sigaction", "rt_sigprocmask", "sigaltstack", "clock_gettime", "clock_getres", "gettimeofday",
	"time", "nanosleep", "clock_nanosleep", "uname", "sysinfo", "getrandom", "sched_yield",
	"getrlimit", "prlimit64", "set_tid_address", "set_robust_list", "rseq", "exit", "exit_group",
	"socket", "connect", "sendto", "recvfrom", "sendmsg", "recvmsg", "getsockopt", "setsockopt",
	"getsockname", "getpeername", "shutdown", "umask", "wait4",
}

// annotate fills the in-process columns of the table's rows; a name that
// is not a row is a table error (tableErrors, reported by Check).
func annotate(t []Entry) []string {
	idx := make(map[string]int, len(t))
	for i, e := range t {
		idx[e.Name] = i
	}
	var errs []string
	row := func(column, name string) *Entry {
		i, ok := idx[name]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: %s is not a row of the table", column, name))
			return nil
		}
		return &t[i]
	}
	specs := nativeSpecs()
	names := make([]string, 0, len(specs))
	for n := range specs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if e := row("native", n); e != nil {
			s := specs[n]
			e.Native = &s
		}
	}
	for _, n := range ownRuleNames {
		if e := row("own rule", n); e != nil {
			if e.InProc != ByDisposition {
				errs = append(errs, fmt.Sprintf("%s listed twice for the in-process tiers", n))
			}
			e.InProc = OwnRule
		}
	}
	for _, n := range notInProcessNames {
		if e := row("not in process", n); e != nil {
			if e.InProc != ByDisposition {
				errs = append(errs, fmt.Sprintf("%s listed twice for the in-process tiers", n))
			}
			e.InProc = NotInProcess
		}
	}
	for _, n := range restartableNames {
		if e := row("restartable", n); e != nil {
			e.Restartable = true
		}
	}
	for _, n := range pathStableNames {
		if e := row("path-stable", n); e != nil {
			e.PathStable = true
		}
	}
	for n, k := range fastKinds {
		if e := row("fast path", n); e != nil {
			e.Fast = k
			if (k == FastFD || k == FastFstat) && (e.Native == nil || e.Native.FDArgs != fdArgs(0)) {
				errs = append(errs, fmt.Sprintf("fast path: %s is not a call on the descriptor in its first argument", n))
			}
		}
	}
	sort.Strings(errs)
	return errs
}

// Check reports whether the table is consistent: every name in every
// column is a row, no call is given two in-process services, and every
// form the filter lets run on the host can be run natively by the
// in-process tiers or is served by them otherwise.
func Check() error {
	errs := append([]string(nil), tableErrors...)
	for _, e := range Table {
		if e.InProc != ByDisposition {
			continue
		}
		allows := e.Disp == Allow || e.Disp == Identity || e.Disp == Ownership
		for _, c := range e.Conds {
			allows = allows || c.Disp == Allow
		}
		if allows && e.Native == nil {
			errs = append(errs, fmt.Sprintf("%s: allowed, but the in-process tiers have neither a native spec nor a rule for it", e.Name))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("policy table: %d inconsistencies, first: %s", len(errs), errs[0])
}

// FastPathCalls returns the numbers the fast path issues from its
// descriptor syscall instruction on arch (FastFD and FastFstat rows): the
// interception filter allows exactly these from there.
func (r *Resolved) FastPathCalls() []int {
	var nrs []int
	for nr, e := range r.ByNr {
		if e.Fast == FastFD || e.Fast == FastFstat {
			nrs = append(nrs, nr)
		}
	}
	sort.Ints(nrs)
	return nrs
}
