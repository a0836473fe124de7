// Package unotify owns the seccomp user-notification tier: it starts the
// guest as a child process under a notifying filter and answers the
// notifications through the dispatch engine.
//
// Go cannot run code between fork and exec, so the guest's first process is
// kbox itself, re-executed with InitArg: it locks its thread, sets
// NO_NEW_PRIVS, installs the filter on that thread and execs the guest at
// once. The parent takes the listener with pidfd_getfd; the child's execve
// is the first notification and is served like any guest exec.
package unotify

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/loader"
	"github.com/kbox-go/kbox/internal/seccomp"
	"github.com/kbox-go/kbox/internal/supervise"
)

// InitArg marks the re-executed launcher (os.Args[1]).
const InitArg = "__kbox_unotify_init__"

// Launch is what the launcher child needs.
type Launch struct {
	Filter  []unix.SockFilter
	Path    string // guest path of the program
	Argv    []string
	Env     []string
	ExecDir string // host directory: the child's cwd (see dispatch/exec.go)
	// KeepCaps leaves a root-started guest its capabilities (--keep-caps).
	KeepCaps bool
	// Landlock is the kernel's Landlock ABI (0: none); ExecRoots are the
	// host directories of the guest's mounts, beneath which the kernel may
	// execute files (see landlock.go).
	Landlock  int
	ExecRoots []string
	// GuestNproc, when not 0, is the guest's RLIMIT_NPROC (soft and
	// hard), set by Run below kbox's own (see threads.go).
	GuestNproc uint64
	// Early, when not nil, is kbox-init already started for this launch,
	// or why it could not be (StartEarly, with the same Landlock ABI and
	// exec roots, on kbox's stdio): start writes it the config instead of
	// starting one.
	Early *Early
}

// Exit codes of the launcher child when it fails before the guest runs.
const (
	ExitLaunchFailed = 125
)

// ChildMain is the launcher child's main; it never returns.
func ChildMain() {
	runtime.LockOSThread()
	status := os.NewFile(4, "status")
	fail := func(code int, format string, args ...any) {
		fmt.Fprintf(status, "E"+format, args...)
		os.Exit(code)
	}
	cfgFile := os.NewFile(3, "config")
	var l Launch
	if err := json.NewDecoder(cfgFile).Decode(&l); err != nil {
		fail(ExitLaunchFailed, "reading launch config: %v", err)
	}
	cfgFile.Close()
	if err := unix.Chdir(l.ExecDir); err != nil {
		fail(ExitLaunchFailed, "chdir %s: %v", l.ExecDir, err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fail(ExitLaunchFailed, "PR_SET_NO_NEW_PRIVS: %v", err)
	}
	if !l.KeepCaps {
		if err := dropCapabilities(); err != nil {
			fail(ExitLaunchFailed, "dropping capabilities: %v", err)
		}
	}
	// Scheduling calls run natively: a guest must not be able to take a
	// real-time priority and starve the host (the supervisor included).
	if err := unix.Setrlimit(unix.RLIMIT_RTPRIO, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		fail(ExitLaunchFailed, "lowering RLIMIT_RTPRIO to 0: %v", err)
	}
	// No descriptor of kbox's may reach the guest: everything above stdio
	// becomes close-on-exec (closing the Go runtime's own descriptors under
	// it would not be safe).
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		for fd := 3; fd < 1024; fd++ {
			unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
	if l.Landlock > 0 {
		if err := restrictExec(l.ExecRoots, l.Landlock); err != nil {
			fail(ExitLaunchFailed, "landlock: %v", err)
		}
	}
	if l.GuestNproc > 0 {
		// Last before the filter and the exec: the Go runtime of this
		// child may still need a thread until then.
		if err := unix.Setrlimit(unix.RLIMIT_NPROC, &unix.Rlimit{Cur: l.GuestNproc, Max: l.GuestNproc}); err != nil {
			fail(ExitLaunchFailed, "setting the guest's RLIMIT_NPROC: %v", err)
		}
	}
	flags := uint(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	listener, err := seccomp.InstallFilter(l.Filter, flags)
	if err == unix.EINVAL {
		// Kernels before 5.19 lack WAIT_KILLABLE_RECV.
		listener, err = seccomp.InstallFilter(l.Filter, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
	}
	if err != nil {
		fail(ExitLaunchFailed, "installing the seccomp filter: %v", err)
	}
	var b [4]byte
	b[0], b[1], b[2], b[3] = byte(listener), byte(listener>>8), byte(listener>>16), byte(listener>>24)
	if _, err := status.Write(b[:]); err != nil {
		os.Exit(ExitLaunchFailed)
	}
	err = syscall.Exec(l.Path, l.Argv, l.Env)
	// The supervisor has said why (dispatch's execFailed); the status is
	// a shell's: 127 not found (the program or its interpreter), 126
	// found but not executable.
	fail(loader.ExecExitCode(err), "exec %s: %v", l.Path, err)
}

// started is a launched child whose listener the parent holds.
type started struct {
	pid       int
	listener  int
	status    *os.File // remaining status messages (launch errors)
	launchErr string
	reaper    *reaper
	via       string // what started it: kbox-init, or kbox re-executed and why
}

// start launches the child and takes its listener.
func start(l Launch, stdin, stdout, stderr *os.File) (*started, error) {
	stdio := [3]*os.File{stdin, stdout, stderr}
	via := "kbox-init, started early"
	e := l.Early
	if e == nil {
		via = "kbox-init"
		e = startInit(l.Landlock, l.ExecRoots, stdio)
	}
	rp, pid, stR, why := e.launch(l)
	if why == nil {
		return takeListener(rp, pid, stR, via)
	}
	// Where kbox-init cannot run, kbox re-executed does the same, and
	// says why if it fails too.
	stR, stW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	rp, pid, err = startSelf(l, stdio, stW, supervise.ForegroundTTY(stdin))
	stW.Close()
	if err != nil {
		stR.Close()
		return nil, fmt.Errorf("starting the launcher: %w", err)
	}
	return takeListener(rp, pid, stR, fmt.Sprintf("kbox re-executed (kbox-init: %v)", why))
}

// takeListener reads the launcher's status from stR: its seccomp
// listener's number, taken with pidfd_getfd, or the error it reports.
func takeListener(rp *reaper, pid int, stR *os.File, via string) (*started, error) {
	var b [4]byte
	if _, err := io.ReadFull(stR, b[:1]); err != nil {
		stR.Close()
		return &started{pid: pid, listener: -1, reaper: rp}, nil
	}
	if b[0] == 'E' {
		// The child failed before installing the filter; the message
		// follows and the child exits.
		msg, _ := io.ReadAll(io.LimitReader(stR, 4096))
		stR.Close()
		return &started{pid: pid, listener: -1, launchErr: string(msg), reaper: rp}, nil
	}
	if _, err := io.ReadFull(stR, b[1:]); err != nil {
		stR.Close()
		return &started{pid: pid, listener: -1, reaper: rp}, nil
	}
	childFD := int(b[0]) | int(b[1])<<8 | int(b[2])<<16 | int(b[3])<<24
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		rp.close()
		return nil, fmt.Errorf("pidfd_open of the launcher: %w", err)
	}
	defer unix.Close(pidfd)
	listener, err := unix.PidfdGetfd(pidfd, childFD, 0)
	if err != nil {
		rp.close()
		return nil, fmt.Errorf("taking the seccomp listener (pidfd_getfd): %w", err)
	}
	return &started{pid: pid, listener: listener, status: stR, reaper: rp, via: via}, nil
}

// startSelf starts kbox re-executed as the reaper, which re-executes it as
// the launcher, and writes the launch config.
func startSelf(l Launch, stdio [3]*os.File, stW *os.File, fg bool) (*reaper, int, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, 0, fmt.Errorf("finding the kbox binary: %w", err)
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, 0, err
	}
	rp, pid, err := startReaper(self, stdio, cfgR, stW, fg)
	cfgR.Close()
	if err != nil {
		cfgW.Close()
		return nil, 0, err
	}
	err = json.NewEncoder(cfgW).Encode(l)
	cfgW.Close()
	if err != nil {
		rp.close()
		return nil, 0, err
	}
	return rp, pid, nil
}

// readLaunchError returns the launcher's error message, if it sent one.
func (s *started) readLaunchError() string {
	if s.status == nil {
		return s.launchErr
	}
	b, _ := io.ReadAll(io.LimitReader(s.status, 4096))
	s.status.Close()
	s.status = nil
	if len(b) > 0 && b[0] == 'E' {
		b = b[1:]
	}
	return string(b)
}

// Securebits (linux/securebits.h): with NOROOT, uid 0 gains no
// capabilities at exec; the LOCKED bits make that permanent.
const (
	secbitNoroot            = 1 << 0
	secbitNorootLocked      = 1 << 1
	secbitNoSetuidFixup     = 1 << 2
	secbitNoSetuidFixupLock = 1 << 3
	secbitKeepCapsLocked    = 1 << 5
)

// dropCapabilities leaves the guest no capabilities even when kbox runs as
// real root: securebits stop uid 0 from regaining them at exec, the
// bounding and ambient sets are emptied, then the process's own sets.
// Without capabilities (the unprivileged case) it does nothing.
func dropCapabilities() error {
	if priv, err := supervise.Privileged(); err != nil || !priv {
		return err
	}
	bits := secbitNoroot | secbitNorootLocked | secbitNoSetuidFixup | secbitNoSetuidFixupLock | secbitKeepCapsLocked
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, uintptr(bits), 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_SECUREBITS: %w", err)
	}
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("PR_CAPBSET_DROP %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("PR_CAP_AMBIENT_CLEAR_ALL: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	return unix.Capset(&hdr, &data[0])
}
