// Package policy owns the syscall disposition table: for every syscall kbox
// knows, whether the seccomp filter allows it, answers it, denies it, or
// notifies the supervisor. The BPF program, the handler table checks and the
// docs' syscall list are all derived from this one table.
//
// The table is written by name so one list serves every architecture; names
// an architecture lacks (the legacy x86_64 calls on arm64) are skipped.
package policy

import (
	"fmt"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/seccomp"
)

// Disposition is what happens to a syscall.
type Disposition uint8

const (
	// Notify sends the call to the supervisor (the default for unknown calls,
	// which the dispatcher answers with ENOSYS and counts).
	Notify Disposition = iota
	// Allow lets the host kernel run it without a round trip: calls that act
	// only on the caller's memory, its own descriptors or its own process.
	Allow
	// Deny fails it in BPF with EPERM: the dangerous set.
	Deny
	// Unsupported fails it in BPF with ENOSYS (callers have a fallback).
	Unsupported
	// Identity calls are allowed when the guest identity is the host's,
	// notified when kbox virtualizes it.
	Identity
	// Ownership calls (fstat) are allowed unless stat results need their
	// owner translated.
	Ownership
	// NoNetwork fails the call with EAFNOSUPPORT in BPF: a socket family
	// --net=none takes away (Options.NetNone, NetNoneFamilies).
	NoNetwork
)

func (d Disposition) String() string {
	switch d {
	case Notify:
		return "notify"
	case Allow:
		return "allow"
	case Deny:
		return "deny(EPERM)"
	case Unsupported:
		return "unsupported(ENOSYS)"
	case Identity:
		return "identity"
	case Ownership:
		return "ownership"
	case NoNetwork:
		return "refuse(EAFNOSUPPORT)"
	}
	return fmt.Sprintf("disposition(%d)", d)
}

// Entry is one row of the table.
type Entry struct {
	Name   string
	Disp   Disposition
	Family string // for -v, traces and docs
	Why    string // reason, for Deny/Unsupported rows and notable allows
	// Conds refine Disp by argument (first match wins), so that the common
	// harmless form of a call stays in BPF.
	Conds []Cond
	// InDomain: a denied row that is notified and served instead when the
	// kernel confines the guest's processes to a Landlock domain of their
	// own (Options.GuestDomain): ptrace, which Landlock limits to
	// processes of the same domain, so the guest can trace its own
	// processes (LeakSanitizer, debuggers) and never another.
	InDomain bool
	// UserNet: an allowed row that is notified and served under
	// --net=user (Options.NetUser): listen, so that kbox binds an
	// unbound AF_INET socket inside the guest's network first (the
	// kernel would bind it to every host address).
	UserNet bool

	// The in-process columns (serve.go).
	InProc      InProc
	Native      *NativeSpec // how an in-process tier runs it on the host; nil: it cannot
	Restartable bool        // SA_RESTART restarts it after a signal
	Fast        FastKind    // the rewrite tier's fast path
	// PathStable: the call cannot change what a guest path names, the
	// cwd, the root, a mount or a recorded owner, so the in-process stat
	// cache survives it (read-only open and openat only: the cache
	// checks their flags itself).
	PathStable bool
}

// Cond: when argument Arg masked with Mask equals Value, the call gets
// Disp instead of the row's. Int compares only the low 32 bits, as the
// kernel reads an int argument.
type Cond struct {
	Arg         int
	Mask, Value uint64
	Int         bool
	Disp        Disposition
}

// whenZero allows the call in BPF when argument arg (a pid) is 0, i.e. the
// caller itself.
func whenZero(arg int) []Cond {
	return []Cond{{Arg: arg, Mask: 0xffffffff, Value: 0, Int: true, Disp: Allow}}
}

// notifyWhen notifies the call when argument arg equals one of vals.
func notifyWhen(arg int, vals ...uint64) []Cond {
	var c []Cond
	for _, v := range vals {
		c = append(c, Cond{Arg: arg, Mask: 0xffffffff, Value: v, Int: true, Disp: Notify})
	}
	return c
}

// IoctlFamilies are the ioctl request type bytes (_IOC_TYPE) of the
// file-system requests the filter notifies (dispatch/fs_ioctl.go serves
// them): 'f' (generic and ext4, fscrypt, fs-verity), 'v' (inode
// versions), 'X' (fsxattr, freeze, xfs), 0x94 (clone and dedupe,
// file-system labels, btrfs), 0xf5 (f2fs).
var IoctlFamilies = []uint32{'f', 'v', 'X', 0x94, 0xf5}

// cloneNewMask is every namespace-creating clone flag clone(2) accepts
// (CLONE_NEWTIME shares its bit with the exit signal there; clone3 only).
const cloneNewMask = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

func rows(disp Disposition, family, why string, names ...string) []Entry {
	out := make([]Entry, len(names))
	for i, n := range names {
		out[i] = Entry{Name: n, Disp: disp, Family: family, Why: why}
	}
	return out
}

// Table is the disposition table, by name, with its in-process columns.
var Table, tableErrors = func() ([]Entry, []string) {
	t := buildTable()
	return t, annotate(t)
}()

func buildTable() []Entry {
	// About the table's length (it grows past this by doubling): built at
	// every start, by appends.
	t := make([]Entry, 0, 384)
	add := func(e []Entry) { t = append(t, e...) }

	// Descriptor-local I/O: the guest's descriptors are real host
	// descriptors, so these need no supervisor.
	// fcntl F_SETOWN/F_SETOWN_EX and ioctl FIOSETOWN/SIOCSPGRP choose who
	// receives SIGIO/SIGURG: checked like kill.
	// TIOCSTI and TIOCLINUX push input into a terminal: a guest could type
	// commands into the user's shell after kbox exits. Denied in BPF.
	// TIOCSPGRP makes a process group the terminal's foreground: checked
	// like kill. The file-system request families (chattr's flags, fsxattr,
	// inode versions, clone/dedupe ranges, btrfs, xfs, f2fs, fscrypt) change
	// inodes through a descriptor opened for reading: checked against the
	// descriptor's mount; every other request stays in BPF.
	ioctlConds := []Cond{{Arg: 1, Mask: 0xffffffff, Value: unix.TIOCSTI, Int: true, Disp: Deny},
		{Arg: 1, Mask: 0xffffffff, Value: unix.TIOCLINUX, Int: true, Disp: Deny}}
	ioctlConds = append(ioctlConds, notifyWhen(1, abi.FIOSETOWN, abi.SIOCSPGRP, unix.TIOCSPGRP)...)
	for _, typ := range IoctlFamilies {
		ioctlConds = append(ioctlConds, Cond{Arg: 1, Mask: 0xff00, Value: uint64(typ) << 8, Int: true, Disp: Notify})
	}
	t = append(t, Entry{Name: "fcntl", Disp: Allow, Family: "fd_io", Conds: notifyWhen(1, unix.F_SETOWN, unix.F_SETOWN_EX)},
		Entry{Name: "ioctl", Disp: Allow, Family: "fd_io", Why: "SIGIO owners, the terminal's foreground group and file-system requests are checked",
			Conds: ioctlConds})
	add(rows(Allow, "fd_io", "", "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
		"preadv2", "pwritev2", "lseek", "close", "close_range", "dup", "dup2", "dup3",
		"fsync", "fdatasync", "ftruncate", "fallocate", "flock", "fadvise64",
		"readahead", "sendfile", "splice", "tee", "vmsplice", "copy_file_range", "sync", "syncfs",
		"sync_file_range", "fstatfs", "inotify_rm_watch"))
	add(rows(Ownership, "fd_io", "owner translated when the guest identity differs", "fstat"))
	// Changes through a descriptor need no write access to it, only
	// ownership of the file: the descriptor's mount decides (read-only
	// binds, the read-only default root). kbox's ownership record
	// (user.containers.override_stat) is hidden from the xattr reads.
	add(rows(Notify, "fd_meta", "a descriptor of a read-only mount stays read-only; chown and set-id bits recorded when the guest identity differs",
		"fchown", "fchmod", "fsetxattr", "fremovexattr", "fgetxattr", "flistxattr"))
	// Descriptor creation without a path.
	add(rows(Allow, "fd_new", "", "pipe", "pipe2", "eventfd", "eventfd2", "epoll_create", "epoll_create1",
		"epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "timerfd_create", "timerfd_settime",
		"timerfd_gettime", "signalfd", "signalfd4", "inotify_init", "inotify_init1", "memfd_create",
		"poll", "ppoll", "select", "pselect6"))
	// Networking: sockets without path addresses.
	add(rows(Allow, "net", "", "socket", "socketpair", "getsockopt", "shutdown", "recvmmsg"))
	t = append(t, Entry{Name: "listen", Disp: Allow, Family: "net", UserNet: true,
		Why: "under --net=user an unbound AF_INET socket is bound inside the guest's network first"})
	// SO_PASSCRED and SO_PASSPIDFD make the kernel bind a socket when it
	// next sends: on a connected AF_UNIX socket kbox binds it first,
	// inside the sandbox's abstract namespace (dispatch/net_abstract.go).
	t = append(t, Entry{Name: "setsockopt", Disp: Allow, Family: "net", Why: "credential passing binds AF_UNIX sockets in the sandbox's abstract namespace",
		Conds: notifyWhen(2, unix.SO_PASSCRED, unix.SO_PASSPIDFD)})
	// The calls that report a peer's address: an AF_UNIX peer's name is
	// given back as the guest knows it (abstract names without the run's
	// tag); for other families kbox lets the kernel run them. Without an
	// address buffer they stay in BPF.
	for _, c := range []struct {
		name string
		arg  int
	}{{"recvfrom", 4}, {"accept", 1}, {"accept4", 1}} {
		t = append(t, Entry{Name: c.name, Disp: Notify, Family: "net", Why: "AF_UNIX peer names are reported as the guest knows them",
			Conds: []Cond{{Arg: c.arg, Mask: ^uint64(0), Value: 0, Disp: Allow}}})
	}
	add(rows(Notify, "net", "AF_UNIX peer names are reported as the guest knows them", "recvmsg"))
	add(rows(Notify, "net", "AF_UNIX path addresses are resolved in the guest", "bind", "connect",
		"sendmsg", "sendmmsg", "getsockname", "getpeername"))
	// Without a destination address sendto resolves nothing.
	t = append(t, Entry{Name: "sendto", Disp: Notify, Family: "net", Why: "AF_UNIX path addresses are resolved in the guest",
		Conds: []Cond{{Arg: 4, Mask: ^uint64(0), Value: 0, Disp: Allow}}})
	// Memory.
	add(rows(Allow, "memory", "", "mmap", "munmap", "mprotect", "mremap", "madvise", "msync", "mincore",
		"mlock", "mlock2", "munlock", "mlockall", "munlockall", "brk", "membarrier",
		"pkey_alloc", "pkey_free", "pkey_mprotect", "map_shadow_stack", "mseal", "get_mempolicy",
		"set_mempolicy", "mbind", "set_mempolicy_home_node", "cachestat"))
	// The caller's own process, threads, signals, scheduling and time.
	add(rows(Allow, "process", "", "exit", "exit_group", "wait4", "waitid", "fork", "vfork",
		"set_tid_address", "set_robust_list", "get_robust_list", "futex", "futex_waitv", "futex_wake",
		"futex_wait", "futex_requeue", "rseq", "getpid", "getppid", "gettid", "getpgid", "getpgrp",
		"getsid", "setsid", "getrlimit", "setrlimit", "getrusage", "times", "getpriority",
		"arch_prctl", "umask", "getcpu", "uname", "sysinfo", "syslog",
		"restart_syscall", "sched_getaffinity"))
	// setpgid(0, pgid) moves the caller into another group: every form is
	// checked (a guest joining a host group would reach it with kill(0)).
	add(rows(Notify, "process", "only groups of guest processes may be joined", "setpgid"))
	// Calls that reach another process: confined to the guest's process
	// tree by the supervisor; the caller itself (pid 0) stays in BPF.
	for _, c := range []struct {
		name string
		arg  int
	}{{"prlimit64", 0}, {"sched_setaffinity", 0}, {"sched_setparam", 0},
		{"sched_setscheduler", 0}, {"sched_setattr", 0}, {"migrate_pages", 0}, {"move_pages", 0}} {
		t = append(t, Entry{Name: c.name, Disp: Notify, Family: "process", Why: "target must be a guest process", Conds: whenZero(c.arg)})
	}
	add(rows(Notify, "signals", "signals reach only guest processes", "kill", "tkill", "tgkill",
		"rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal", "setpriority", "ioprio_set"))
	add(rows(Allow, "signals", "", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
		"rt_sigtimedwait", "rt_sigsuspend", "sigaltstack", "pause", "alarm", "setitimer", "getitimer"))
	add(rows(Allow, "sched", "", "sched_yield", "sched_getparam",
		"sched_getscheduler", "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
		"sched_getattr", "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres",
		"gettimeofday", "time", "getrandom", "timer_create", "timer_settime", "timer_gettime",
		"timer_getoverrun", "timer_delete", "ioprio_get"))
	// SysV IPC objects are host objects shared by key: the guest sees only
	// those it created (internal/dispatch/ipc.go). shmdt acts on the
	// caller's own mapping. POSIX message queues, named in a host-wide
	// namespace, are denied below.
	add(rows(Notify, "ipc", "the guest sees only the IPC objects it created", "shmget", "shmat", "shmctl",
		"semget", "semop", "semctl", "semtimedop", "msgget", "msgsnd", "msgrcv", "msgctl"))
	add(rows(Allow, "ipc", "", "shmdt"))
	var cloneConds []Cond
	for bit := uint64(1); bit != 0; bit <<= 1 {
		if cloneNewMask&bit != 0 {
			cloneConds = append(cloneConds, Cond{Arg: 0, Mask: bit, Value: bit, Disp: Deny})
		}
	}
	// Clones after which another task may run with the caller's memory or
	// descriptor table are notified — CLONE_VM without CLONE_VFORK outside
	// a thread, CLONE_FILES outside a thread, a thread without CLONE_FILES
	// — so that the exec path check knows whether one happened
	// (dispatch/exec_race.go). Threads, fork and vfork/posix_spawn stay in
	// BPF.
	cloneConds = append(cloneConds,
		Cond{Arg: 0, Mask: unix.CLONE_VM | unix.CLONE_VFORK | unix.CLONE_THREAD, Value: unix.CLONE_VM, Disp: Notify},
		Cond{Arg: 0, Mask: unix.CLONE_FILES | unix.CLONE_THREAD, Value: unix.CLONE_FILES, Disp: Notify},
		Cond{Arg: 0, Mask: unix.CLONE_FILES | unix.CLONE_THREAD, Value: unix.CLONE_THREAD, Disp: Notify})
	t = append(t, Entry{Name: "clone", Disp: Allow, Family: "process",
		Why: "clone with CLONE_NEW* flags is EPERM in BPF; clones sharing memory or descriptors with a concurrently running task are noted", Conds: cloneConds})
	add(rows(Unsupported, "process", "clone3 arguments live in guest memory and cannot be checked without a race; libcs fall back to clone", "clone3"))
	// Identity.
	add(rows(Identity, "identity", "", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
		"getgroups", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
		"setfsgid", "setgroups", "capget"))
	// Virtual capabilities (dispatch/caps.go): capset changes only the
	// virtual sets and is refused without a virtual identity. The row
	// stays in the dangerous set (the in-process backstop denies it from
	// kbox's own code); the always-true condition notifies every call.
	t = append(t, Entry{Name: "capset", Disp: Deny, Family: "identity", Why: "changes the guest's virtual capabilities only",
		Conds: []Cond{{Arg: 0, Mask: 0, Value: 0, Disp: Notify}}})
	var prctlConds []Cond
	for _, op := range []uint64{unix.PR_GET_KEEPCAPS, unix.PR_SET_KEEPCAPS, unix.PR_CAPBSET_READ, unix.PR_CAPBSET_DROP,
		unix.PR_GET_SECUREBITS, unix.PR_SET_SECUREBITS, unix.PR_CAP_AMBIENT} {
		prctlConds = append(prctlConds, Cond{Arg: 0, Mask: 0xffffffff, Value: op, Int: true, Disp: Identity})
	}
	t = append(t, Entry{Name: "prctl", Disp: Allow, Family: "process", Why: "capability options act on the virtual capabilities", Conds: prctlConds})
	// Everything that names a path, and the process's file-namespace state.
	add(rows(Notify, "path", "", "open", "openat", "openat2", "creat", "stat", "lstat", "newfstatat", "statx",
		"access", "faccessat", "faccessat2", "readlink", "readlinkat", "mkdir", "mkdirat", "mknod", "mknodat",
		"unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2", "link", "linkat", "symlink",
		"symlinkat", "chmod", "fchmodat", "fchmodat2", "chown", "lchown", "fchownat", "utime", "utimes",
		"futimesat", "utimensat", "truncate", "statfs", "getxattr", "lgetxattr", "setxattr", "lsetxattr",
		"listxattr", "llistxattr", "removexattr", "lremovexattr", "inotify_add_watch"))
	add(rows(Notify, "cwd", "", "chdir", "fchdir", "getcwd", "chroot"))
	add(rows(Notify, "dir", "a procfs root lists only the guest's processes, a devpts root only its terminals", "getdents", "getdents64"))
	add(rows(Notify, "exec", "", "execve", "execveat"))
	// ptrace is in the dangerous set, but served, within the guest's own
	// processes, where the kernel confines it to the guest's Landlock
	// domain (the seccomp tier with Landlock).
	add([]Entry{{Name: "ptrace", Disp: Deny, Family: "denied", InDomain: true,
		Why: "would let the guest leave or alter the sandbox or the host; served between the guest's own processes when Landlock confines them to their domain"}})
	// The dangerous set.
	add(rows(Deny, "denied", "would let the guest leave or alter the sandbox or the host",
		"seccomp", "process_vm_readv", "process_vm_writev", "process_madvise", "process_mrelease",
		"bpf", "perf_event_open", "kexec_load", "kexec_file_load", "init_module", "finit_module",
		"delete_module", "reboot", "swapon", "swapoff", "acct", "sethostname", "setdomainname", "unshare",
		"setns", "keyctl", "add_key", "request_key", "io_uring_setup", "io_uring_enter", "io_uring_register",
		"io_setup", "io_submit", "io_getevents", "io_pgetevents", "io_cancel", "io_destroy", "userfaultfd",
		"pidfd_getfd", "pidfd_open", "memfd_secret", "open_by_handle_at", "name_to_handle_at", "fanotify_init",
		"fanotify_mark", "open_tree", "open_tree_attr", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
		"mount_setattr", "statmount", "listmount", "pivot_root", "iopl", "ioperm", "modify_ldt",
		"clock_settime", "settimeofday", "adjtimex", "clock_adjtime", "quotactl", "quotactl_fd",
		"personality", "kcmp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
		"vhangup", "mount", "umount2", "uselib", "lookup_dcookie", "nfsservctl", "_sysctl",
		"lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules", "mq_open", "mq_unlink",
		"mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr"))
	return t
}

// Options are the run-time choices that change dispositions.
type Options struct {
	// VirtualIdentity: the guest's uid/gid differ from the host user's, so
	// identity calls and fstat are notified.
	VirtualIdentity bool
	// NotifyDenied (-v): the dangerous set's rows are notified instead of
	// failed in BPF, so that the supervisor can name and count each
	// refusal; it answers them EPERM (dispatch.Config.Denied, Denied).
	// Argument forms denied in BPF (namespace clones, TIOCSTI) stay there.
	NotifyDenied bool
	// GuestDomain: the seccomp tier's guest runs in a Landlock domain of
	// its own (the launcher's ruleset), so the InDomain rows are served.
	// Never set for the in-process tiers, whose guest shares kbox's
	// process.
	GuestDomain bool
	// NetNone (--net=none): socket and socketpair create only the
	// NetNoneFamilies; every other family fails with EAFNOSUPPORT.
	NetNone bool
	// NetUser (--net=user): socket and socketpair create only the
	// NetUserFamilies (AF_INET sockets are real host sockets whose
	// addresses kbox translates: dispatch/net_user.go); every other
	// family fails with EAFNOSUPPORT, as under NetNone.
	NetUser bool
}

// NetUserFamilies are the socket families --net=user leaves the guest:
// AF_UNIX, and AF_INET, whose every address kbox serves. AF_INET6 is
// refused (programs fall back to IPv4 on EAFNOSUPPORT), and so is
// netlink: its answers would describe the host's interfaces.
var NetUserFamilies = []uint64{unix.AF_UNIX, unix.AF_INET}

// netFamilies returns the families socket may create under opts (nil:
// every family).
func (o Options) netFamilies() []uint64 {
	switch {
	case o.NetNone:
		return NetNoneFamilies
	case o.NetUser:
		return NetUserFamilies
	}
	return nil
}

// NetNoneFamilies are the socket families --net=none leaves the guest:
// AF_UNIX (its paths are resolved in the guest's namespace and its
// abstract names are the sandbox's own). Every other family (AF_INET,
// AF_INET6, AF_NETLINK, AF_PACKET, AF_VSOCK, ...) fails as it does in a
// kernel built without it: EAFNOSUPPORT.
var NetNoneFamilies = []uint64{unix.AF_UNIX}

// netNoneCalls are the calls whose first argument is the family.
var netNoneCalls = []string{"socket", "socketpair"}

// netNone turns row e into its --net=none form: the NetNoneFamilies as
// the row allowed them, the rest refused.
func netNone(e Entry, families []uint64) Entry {
	e.Disp = NoNetwork
	e.Conds = nil
	for _, f := range families {
		e.Conds = append(e.Conds, Cond{Arg: 0, Mask: 0xffffffff, Value: f, Int: true, Disp: Allow})
	}
	return e
}

// Resolved is the table applied to one architecture and run.
type Resolved struct {
	Arch    *abi.Arch
	ByNr    map[int]Entry
	Effect  map[int]Disposition // Identity/Ownership collapsed into Allow or Notify
	Default Disposition
	opts    Options
}

// servedInDomain reports whether e, a denied row, is served in this
// resolution because the guest runs in a Landlock domain of its own.
func (r *Resolved) servedInDomain(e Entry) bool { return e.InDomain && r.opts.GuestDomain }

// Options returns the options r was resolved with.
func (r *Resolved) Options() Options { return r.opts }

// Resolve applies the table to arch with opts.
func Resolve(arch *abi.Arch, opts Options) (*Resolved, error) {
	// Sized up front: growing these maps was most of a resolve, which
	// every kbox start makes once or twice.
	r := &Resolved{Arch: arch, ByNr: make(map[int]Entry, len(Table)), Effect: make(map[int]Disposition, len(Table)), Default: Notify, opts: opts}
	for _, e := range Table {
		nr, ok := arch.Nr(e.Name)
		if !ok {
			continue
		}
		if prev, dup := r.ByNr[nr]; dup {
			return nil, fmt.Errorf("policy: %s listed twice (%s, %s)", e.Name, prev.Disp, e.Disp)
		}
		r.ByNr[nr] = e
		r.Effect[nr] = r.effect(e.Disp)
		if r.servedInDomain(e) {
			r.Effect[nr] = Notify
		}
	}
	if opts.NetUser {
		for nr, e := range r.ByNr {
			if e.UserNet {
				e.Disp = Notify
				r.ByNr[nr] = e
				r.Effect[nr] = r.effect(Notify)
			}
		}
	}
	if fams := opts.netFamilies(); fams != nil {
		for _, name := range netNoneCalls {
			if nr, ok := arch.Nr(name); ok {
				if e, listed := r.ByNr[nr]; listed {
					r.ByNr[nr] = netNone(e, fams)
					r.Effect[nr] = r.effect(NoNetwork)
				}
			}
		}
	}
	return r, nil
}

// NoNetworkFor reports whether --net=none refuses nr with these
// arguments (whatever -v makes of the refusal: the in-process tiers
// refuse it themselves, naming it).
func (r *Resolved) NoNetworkFor(nr int, args [6]uint64) bool {
	e, ok := r.ByNr[nr]
	if !ok || e.Disp != NoNetwork {
		return false
	}
	for _, c := range e.Conds {
		if args[c.Arg]&c.Mask&0xffffffff == c.Value&0xffffffff {
			return false
		}
	}
	return true
}

// Expect is the table's answer for a call with these arguments, evaluated
// directly (the reference the compiled filter is tested against).
func (r *Resolved) Expect(nr int, args [6]uint64) Disposition {
	e, ok := r.ByNr[nr]
	if !ok {
		return r.Default
	}
	for _, c := range e.Conds {
		a, m, v := args[c.Arg], c.Mask, c.Value
		if c.Int {
			a, m, v = a&0xffffffff, m&0xffffffff, v&0xffffffff
		}
		if a&m == v {
			return r.condEffect(c.Disp)
		}
	}
	return r.Effect[nr]
}

// Notified reports whether the row can reach the supervisor.
func (e Entry) Notified() bool {
	if e.InDomain || e.UserNet {
		return true
	}
	switch e.Disp {
	case Notify, Identity, Ownership:
		return true
	}
	for _, c := range e.Conds {
		if c.Disp == Notify || c.Disp == Identity || c.Disp == Ownership {
			return true
		}
	}
	return false
}

// Disposition returns the effective disposition of nr.
func (r *Resolved) Disposition(nr int) Disposition {
	if d, ok := r.Effect[nr]; ok {
		return d
	}
	return r.Default
}

// condEffect is effect for an argument form: a form denied in BPF stays
// denied there under NotifyDenied (the engine's refusal handler is per
// call, and these calls' other forms are served).
func (r *Resolved) condEffect(d Disposition) Disposition {
	if d == Deny {
		return Deny
	}
	return r.effect(d)
}

func (r *Resolved) effect(d Disposition) Disposition {
	switch d {
	case Deny:
		if r.opts.NotifyDenied {
			return Notify
		}
		return Deny
	case Identity, Ownership:
		if r.opts.VirtualIdentity {
			return Notify
		}
		return Allow
	case NoNetwork:
		if r.opts.NotifyDenied {
			return Notify
		}
	}
	return d
}

func (r *Resolved) action(d Disposition) seccomp.Action {
	switch d {
	case Allow:
		return seccomp.Action{Kind: seccomp.ActAllow}
	case Deny:
		return seccomp.Action{Kind: seccomp.ActErrno, Errno: uint16(unix.EPERM)}
	case Unsupported:
		return seccomp.Action{Kind: seccomp.ActErrno, Errno: uint16(unix.ENOSYS)}
	case NoNetwork:
		return seccomp.Action{Kind: seccomp.ActErrno, Errno: uint16(unix.EAFNOSUPPORT)}
	}
	return seccomp.Action{Kind: seccomp.ActNotify}
}

// Program compiles the resolved table into a seccomp program for the
// supervisor (notifying) tier.
func (r *Resolved) Program() seccomp.Program {
	p := seccomp.Program{
		AuditArch: r.Arch.AuditArch,
		BadArch:   seccomp.Action{Kind: seccomp.ActKillProcess},
		Default:   seccomp.Action{Kind: seccomp.ActNotify},
	}
	nrs := make([]int, 0, len(r.Effect))
	for nr := range r.Effect {
		nrs = append(nrs, nr)
	}
	sort.Ints(nrs)
	for _, nr := range nrs {
		rule := seccomp.Rule{Nr: nr, Action: r.action(r.Effect[nr])}
		for _, c := range r.ByNr[nr].Conds {
			rule.Conds = append(rule.Conds, seccomp.ArgCond{Arg: c.Arg, Mask: c.Mask, Value: c.Value, Width32: c.Int,
				Action: r.action(r.condEffect(c.Disp))})
		}
		p.Rules = append(p.Rules, rule)
	}
	return p
}

// Denied returns the rows this resolution notifies only to refuse them
// (NotifyDenied), by name with the reason, for dispatch.Config.Denied.
func (r *Resolved) Denied() map[string]string {
	if !r.opts.NotifyDenied {
		return nil
	}
	out := map[string]string{}
	for _, e := range r.ByNr {
		if e.Disp == Deny && !r.servedInDomain(e) {
			out[e.Name] = "in the dangerous set: " + e.Why
		}
	}
	return out
}

// NetRefused returns the rows whose refused families (--net=none) this
// resolution notifies so that the engine names and counts each refusal
// (-v), by name with the reason, for dispatch.Config.NetRefused: the
// engine answers EAFNOSUPPORT.
func (r *Resolved) NetRefused() map[string]string {
	if r.opts.netFamilies() == nil || !r.opts.NotifyDenied {
		return nil
	}
	why := "--net=none: only AF_UNIX sockets"
	if r.opts.NetUser {
		why = "--net=user: only AF_UNIX and AF_INET sockets"
	}
	out := map[string]string{}
	for _, e := range r.ByNr {
		if e.Disp == NoNetwork {
			out[e.Name] = why
		}
	}
	return out
}

// Backstop compiles the in-process tiers' second filter: the dangerous set
// (and the dangerous argument forms: namespace clones, TIOCSTI) fails with
// EPERM whoever issues it; everything else is allowed. It catches a guest
// that reaches a syscall instruction in kbox's own code, where the
// interception filter lets calls through.
func (r *Resolved) Backstop() seccomp.Program {
	p := seccomp.Program{
		AuditArch: r.Arch.AuditArch,
		BadArch:   seccomp.Action{Kind: seccomp.ActKillProcess},
		Default:   seccomp.Action{Kind: seccomp.ActAllow},
	}
	deny := seccomp.Action{Kind: seccomp.ActErrno, Errno: uint16(unix.EPERM)}
	allow := seccomp.Action{Kind: seccomp.ActAllow}
	nrs := make([]int, 0, len(r.ByNr))
	for nr := range r.ByNr {
		nrs = append(nrs, nr)
	}
	sort.Ints(nrs)
	for _, nr := range nrs {
		e := r.ByNr[nr]
		if e.Disp == Deny {
			p.Rules = append(p.Rules, seccomp.Rule{Nr: nr, Action: deny})
			continue
		}
		if e.Disp == NoNetwork {
			// --net=none holds for kbox's own code in that process too.
			rule := seccomp.Rule{Nr: nr, Action: r.action(NoNetwork)}
			for _, c := range e.Conds {
				rule.Conds = append(rule.Conds, seccomp.ArgCond{Arg: c.Arg, Mask: c.Mask, Value: c.Value, Width32: c.Int, Action: allow})
			}
			p.Rules = append(p.Rules, rule)
			continue
		}
		var conds []seccomp.ArgCond
		for _, c := range e.Conds {
			if c.Disp == Deny {
				conds = append(conds, seccomp.ArgCond{Arg: c.Arg, Mask: c.Mask, Value: c.Value, Width32: c.Int, Action: deny})
			}
		}
		if len(conds) > 0 {
			p.Rules = append(p.Rules, seccomp.Rule{Nr: nr, Conds: conds, Action: allow})
		}
	}
	return p
}
