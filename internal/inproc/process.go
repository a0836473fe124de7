//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/loader"
	"github.com/kbox-go/kbox/internal/policy"
)

// The guest's process: lifetime, thread state kbox virtualizes, and
// execve in place.

func init() {
	own(sysExit, "exit", "exit_group")
	own(sysNoProcesses, "clone", "clone3", "fork", "vfork")
	own(sysPrctl, "prctl")
	own(sysSetTidAddress, "set_tid_address")
	own(sysSetRobustList, "set_robust_list")
	own(sysGetRobustList, "get_robust_list")
	own(sysNoRseq, "rseq")
	own(sysGetpid, "getpid", "gettid")
	own(sysSetrlimit, "setrlimit")
	own(sysPrlimit, "prlimit64")
	ownNamed(sysExecve, "execve", "execveat")
	own(sysSetpgid, "setpgid")
}

// sysSetpgid serves setpgid: the process leads its own group from its
// start (internal/sandbox), so making it its own group's leader succeeds
// and every other form is refused (there is no other guest process, and
// no host group may be joined: the in-process filter denies setpgid).
func sysSetpgid(t *tier, c *call) int64 {
	pid, pgid := c.int(0), c.int(1)
	if (pid == 0 || pid == t.pid) && (pgid == 0 || pgid == t.pid) && unix.Getpgrp() == t.pid {
		return 0
	}
	if pid != 0 && pid != t.pid {
		return -int64(unix.ESRCH)
	}
	t.verboseOnce("setpgid", "pid %d: setpgid(%d, %d) denied (EPERM): an in-process guest keeps its own process group", t.pid, pid, pgid)
	return -int64(unix.EPERM)
}

func sysExit(t *tier, c *call) int64 {
	t.exit(c.int(0) & 0xff)
	return 0
}

func sysNoProcesses(t *tier, c *call) int64 {
	t.warnOnce("clone", "the guest called %s: --syscall-mode=%s runs single-process, single-threaded programs; use --syscall-mode=seccomp for programs that fork or start threads (answered ENOSYS)", t.name(c.nr), t.tierName())
	return -int64(unix.ENOSYS)
}

// sysPrctl allows the options that only concern the calling process's own
// bookkeeping. Options that would change how kbox's thread runs (a second
// seccomp filter, Syscall User Dispatch, speculation or shadow-stack
// control, memory-map rewrites) are refused.
func sysPrctl(t *tier, c *call) int64 {
	if t.pol.Expect(c.nr, c.args) == policy.Notify {
		return t.viaEngine(c) // capability options under a virtual identity
	}
	switch c.int(0) {
	case unix.PR_SET_NAME, unix.PR_GET_NAME, unix.PR_SET_PDEATHSIG, unix.PR_GET_PDEATHSIG,
		unix.PR_GET_DUMPABLE, unix.PR_SET_DUMPABLE, unix.PR_SET_NO_NEW_PRIVS, unix.PR_GET_NO_NEW_PRIVS,
		unix.PR_GET_SECCOMP, unix.PR_CAPBSET_READ, unix.PR_GET_KEEPCAPS, unix.PR_SET_KEEPCAPS,
		unix.PR_SET_VMA, unix.PR_SET_CHILD_SUBREAPER, unix.PR_GET_CHILD_SUBREAPER, unix.PR_GET_TIMERSLACK,
		unix.PR_SET_TIMERSLACK, unix.PR_GET_THP_DISABLE, unix.PR_SET_THP_DISABLE, unix.PR_GET_SECUREBITS,
		unix.PR_CAP_AMBIENT, unix.PR_GET_TIMING, unix.PR_MCE_KILL_GET:
		return rawSyscall(c.nr, c.args)
	}
	t.verboseOnce("prctl:"+strconv.Itoa(c.int(0)), "pid %d: prctl(%d) refused (EINVAL): not available in the trap tier", t.pid, c.int(0))
	return -int64(unix.EINVAL)
}

// The guest is one thread: its thread id is its process id. The kernel's
// clear-child-tid and robust-list machinery belong to kbox's thread
// (glibc registered them), so the guest's requests are only recorded.
type threadState struct {
	clearTid, robustHead, robustLen uint64
}

func sysSetTidAddress(t *tier, c *call) int64 {
	t.thread.clearTid = c.args[0]
	return int64(t.pid)
}

func sysSetRobustList(t *tier, c *call) int64 {
	if c.args[1] != 24 {
		return -int64(unix.EINVAL)
	}
	t.thread.robustHead, t.thread.robustLen = c.args[0], c.args[1]
	return 0
}

func sysGetRobustList(t *tier, c *call) int64 {
	if c.int(0) != 0 && c.int(0) != t.pid {
		return -int64(unix.ESRCH)
	}
	var b [8]byte
	m := memory{}
	binary.LittleEndian.PutUint64(b[:], t.thread.robustHead)
	if m.Write(c.args[1], b[:]) != nil {
		return -int64(unix.EFAULT)
	}
	binary.LittleEndian.PutUint64(b[:], 24)
	if m.Write(c.args[2], b[:]) != nil {
		return -int64(unix.EFAULT)
	}
	return 0
}

// rseq areas are per thread and kbox's thread already has glibc's; the
// guest's libc runs without (glibc and musl both fall back).
func sysNoRseq(t *tier, c *call) int64 { return -int64(unix.ENOSYS) }

func sysGetpid(t *tier, c *call) int64 { return int64(t.pid) }

// sysSetrlimit and sysPrlimit run on kbox's process (the guest's) and keep
// the descriptor table's limit in step with RLIMIT_NOFILE.
func sysSetrlimit(t *tier, c *call) int64 {
	r := rawSyscall(c.nr, c.args)
	if r == 0 && c.int(0) == unix.RLIMIT_NOFILE {
		t.syncFDLimit()
	}
	return r
}

func sysPrlimit(t *tier, c *call) int64 {
	if pid := c.int(0); pid != 0 && pid != t.pid {
		return t.viaEngine(c)
	}
	a := c.args
	a[0] = 0
	r := rawSyscall(c.nr, a)
	if r == 0 && c.args[2] != 0 && c.int(1) == unix.RLIMIT_NOFILE {
		t.syncFDLimit()
	}
	return r
}

func (t *tier) syncFDLimit() {
	if err := t.fds.SetLimit(fdLimit()); err != nil {
		t.eng.Verbosef("descriptor limit: %v", err)
	}
}

// sysExecve replaces the guest in place: the new program is opened and
// validated first (a failure returns to the caller), then the old guest's
// memory is unmapped, close-on-exec descriptors are closed, handled
// signals are reset, and the thread resumes at the new entry point.
func sysExecve(name string) rule {
	return func(t *tier, c *call) int64 { return execve(t, c, name == "execveat") }
}

func execve(t *tier, c *call, at bool) int64 {
	dirfd, pathArg, argvArg, envpArg, flags := unix.AT_FDCWD, 0, 1, 2, 0
	if at {
		dirfd, pathArg, argvArg, envpArg, flags = c.int(0), 1, 2, 3, c.int(4)
	}
	req := t.request(c)
	path, err := req.Path(pathArg)
	if err != nil {
		return errno(err)
	}
	argv, err := readStrings(c.args[argvArg])
	if err != nil {
		return errno(err)
	}
	envp, err := readStrings(c.args[envpArg])
	if err != nil {
		return errno(err)
	}
	if flags&^(unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW) != 0 {
		return -int64(unix.EINVAL)
	}
	if len(argv) == 0 {
		argv = []string{""} // as Linux 5.18+ does for an empty argv
	}
	if path == "" && flags&unix.AT_EMPTY_PATH != 0 {
		// fexecve: the kernel names the program /dev/fd/N.
		path = "/dev/fd/" + strconv.Itoa(dirfd)
		flags |= emptyPathFD
	}
	p, err := t.prepare(req, dirfd, path, flags, argv)
	if err != nil {
		if le, ok := errors.AsType[*loadError](err); ok {
			t.eng.Verbosef("pid %d: execve %s: %v (%s)", t.pid, path, err, unix.ErrnoName(le.errno))
			return -int64(le.errno)
		}
		if !loader.LookupMiss(err) {
			t.eng.Verbosef("pid %d: execve: %s", t.pid, loader.ExecFailure(path, err))
		}
		return errno(err)
	}
	// Point of no return.
	for _, s := range t.vm.r {
		unix.RawSyscall(unix.SYS_MUNMAP, uintptr(s.lo), uintptr(s.hi-s.lo), 0)
	}
	t.vm = vmRanges{}
	if t.rw != nil {
		t.rw.release()
	}
	t.fds.Exec()
	t.sig.exec()
	t.thread = threadState{}
	entry, sp, err := t.load(p, envp)
	if err != nil {
		t.eng.Warnf("execve %s: %v", path, err)
		t.exit(127)
	}
	t.execs++
	t.eng.ProgramStarted(req, p.exe, p.script)
	t.setComm(path)
	c.keepRegs = true
	c.uc.execReset(entry, sp)
	setGuestTP(0)
	return 0
}

// exec applies execve's signal rules: handled signals return to their
// default action, ignored ones stay ignored, the mask and pending set stay,
// the alternate stack is gone.
func (s *signalState) exec() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.actions {
		if s.actions[i].handler != sigIgn {
			s.actions[i] = guestAction{}
		}
	}
	s.altSP, s.altSize, s.altFlags = 0, 0, abi.SSDisable
}

// readStrings reads a NULL-terminated array of string pointers.
func readStrings(addr uint64) ([]string, error) {
	if addr == 0 {
		return nil, nil
	}
	m := memory{}
	var out []string
	total := 0
	for i := 0; ; i++ {
		var b [8]byte
		if err := m.Read(addr+uint64(8*i), b[:]); err != nil {
			return nil, err
		}
		p := binary.LittleEndian.Uint64(b[:])
		if p == 0 {
			return out, nil
		}
		s, err := m.ReadString(p, 128<<10)
		if err != nil {
			if err == unix.ENAMETOOLONG {
				return nil, unix.E2BIG
			}
			return nil, err
		}
		total += len(s) + 1 + 8
		if total > 2<<20 {
			return nil, unix.E2BIG
		}
		out = append(out, s)
	}
}

// setComm names the process after the program, as execve does (15
// bytes): the calling thread at once (the guest thread during an exec, or
// the main thread before the guest starts, which the guest thread then
// inherits), and the main thread, whose name is the process's, through
// Run's loop. PR_SET_NAME names only its caller; writing /proc/<pid>/comm
// instead is not possible: the process's /proc is read-only to it.
func (t *tier) setComm(path string) {
	name := path
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	if len(name) > 15 {
		name = name[:15]
	}
	setThreadName(name)
	t.comm.Store(name)
	select {
	case t.commKick <- struct{}{}:
	default:
	}
}
