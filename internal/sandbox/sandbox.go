// Package sandbox owns the process model of the in-process tiers (trap and
// rewrite): kbox's supervisor stays outside, unconfined and small, and
// re-executes kbox as a child that confines itself *before the Go runtime
// starts* (an ELF constructor, confine_linux.c) and then hosts the guest.
//
// The guest shares the child's address space, so it can make any thread of
// the child run code of its choosing. Everything the child may do is
// therefore what the guest may do, and it is enforced by the kernel on
// every thread: NO_NEW_PRIVS, no capabilities when started by root, a
// Landlock domain reaching only the guest's mounts (read-only ones
// read-only) and /proc read-only, and the in-process filter
// (policy.InProcess): the dangerous set, no process creation, no exec, no
// SysV IPC, and signals, priorities and limits only for the child itself.
// The child dies with its supervisor (PR_SET_PDEATHSIG, which the filter
// keeps the guest from clearing), and since it can create no process,
// nothing outlives it.
//
// What the parent sends: the Landlock ruleset and the filter as
// descriptors named in argv (the constructor reads argv before Go runs),
// and the launch spec (opaque JSON for the caller) on a descriptor Go
// reads afterwards.
package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/landlock"
	"github.com/kbox-go/kbox/internal/seccomp"
)

// Marker is os.Args[1] of the confined child (KBOX_CONFINE_MARKER).
const Marker = "__kbox_inproc__"

// Descriptors of the child (fixed by Spawn).
const (
	specFD    = 3
	statusFD  = 4
	rulesetFD = 5
	filterFD  = 6
	// ExtraFD is the first descriptor of Plan.Extra in the child.
	ExtraFD = 7
)

// flagDropCaps is KBOX_CONFINE_DROP_CAPS.
const flagDropCaps = 1

// Plan is what the child is confined to.
type Plan struct {
	// LandlockABI is the kernel's Landlock ABI (0: none; the child then
	// has no file-system confinement beyond kbox's resolver).
	LandlockABI int
	// Rules are the host paths the child may reach, with their rights.
	Rules []landlock.Rule
	// Scopes are Landlock scopes (ABI 6+), e.g. landlock.ScopeSignal.
	Scopes uint64
	// Filter is the compiled in-process filter (policy.InProcess), with
	// seccomp.SelfPID placeholders for the child's pid.
	Filter []unix.SockFilter
	// DropCaps leaves kbox started by root only the capabilities over file
	// permissions and ownership (KBOX_FILE_CAPS: what the seccomp tier's
	// supervisor uses for a root guest, inside the guest's mounts), in
	// every set, the bounding set included.
	DropCaps bool
	// Extra descriptors passed to the child from ExtraFD on.
	Extra []*os.File
}

// Child is a started confined child.
type Child struct {
	Pid    int
	status *os.File
}

// Spawn starts /proc/self/exe confined by p, with spec readable by the
// child through ReadSpec. The child leads a process group of its own; on a
// terminal where kbox is in the foreground, that group takes the
// foreground (the caller gives the terminal back after the child ends).
// The calling goroutine must stay locked to its OS thread until the child
// is reaped: the child's death signal is tied to the thread that forked it.
func Spawn(p Plan, spec []byte, env []string, stdio [3]*os.File, foreground bool) (*Child, error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	if len(p.Filter) == 0 || len(p.Filter) > 4096 {
		return nil, fmt.Errorf("sandbox: filter of %d instructions", len(p.Filter))
	}
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	specFile, err := memfd("kbox-spec", spec)
	if err != nil {
		return nil, err
	}
	closers = append(closers, specFile)
	filterFile, err := memfd("kbox-filter", seccomp.Bytes(p.Filter))
	if err != nil {
		return nil, err
	}
	closers = append(closers, filterFile)
	var rulesetFile *os.File
	ruleset := -1
	if p.LandlockABI > 0 {
		fd, err := landlock.Ruleset(p.LandlockABI, landlock.FSRights(p.LandlockABI), p.Scopes, p.Rules)
		if err != nil {
			return nil, fmt.Errorf("building the Landlock ruleset: %w", err)
		}
		rulesetFile = os.NewFile(uintptr(fd), "landlock-ruleset")
		closers = append(closers, rulesetFile)
		ruleset = rulesetFD
	}
	stR, stW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	closers = append(closers, stW)
	flags := 0
	if p.DropCaps {
		flags |= flagDropCaps
	}
	arg := fmt.Sprintf("ruleset=%d,filter=%d,flags=%d,parent=%d", ruleset, filterFD, flags, os.Getpid())
	files := []*os.File{stdio[0], stdio[1], stdio[2], specFile, stW, rulesetFile, filterFile}
	files = append(files, p.Extra...)
	self, err := os.Executable()
	if err != nil {
		stR.Close()
		return nil, fmt.Errorf("finding the kbox binary: %w", err)
	}
	sys := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if foreground {
		sys.Foreground, sys.Ctty = true, 0
	}
	proc, err := os.StartProcess(self, []string{"kbox", Marker, arg}, &os.ProcAttr{Env: env, Files: files, Sys: sys})
	if err != nil {
		stR.Close()
		return nil, fmt.Errorf("starting the confined child: %w", err)
	}
	pid := proc.Pid
	proc.Release() // the caller waits with wait4 (Release also forgets Pid)
	return &Child{Pid: pid, status: stR}, nil
}

func memfd(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	// Sealed: the child reads exactly what the parent wrote.
	unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_GROW|unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL)
	return f, nil
}

// Started waits for the child's report that the guest runs (nil) or that
// it failed before the guest started: then the error carries the exit code
// the child used (ExitCode) and its message. A child that died without a
// report gives io.ErrUnexpectedEOF.
func (c *Child) Started() error {
	defer func() { c.status.Close(); c.status = nil }()
	b, err := io.ReadAll(io.LimitReader(c.status, 4096))
	if err != nil {
		return err
	}
	s := string(b)
	switch {
	case s == "S":
		return nil
	case strings.HasPrefix(s, "E"):
		code, msg, _ := strings.Cut(s[1:], " ")
		n, _ := strconv.Atoi(code)
		return &StartError{Code: n, Msg: msg}
	}
	return io.ErrUnexpectedEOF
}

// StartError is a child's failure before the guest ran.
type StartError struct {
	Code int
	Msg  string
}

func (e *StartError) Error() string { return e.Msg }

// Child side.

// ErrNotConfined is returned by ReadSpec in a child the constructor did
// not confine (a build without it, or a marker given by hand).
var ErrNotConfined = errors.New("sandbox: this process was not confined before Go started")

// ReadSpec returns the launch spec in the confined child.
func ReadSpec() ([]byte, error) {
	if !Confined() {
		return nil, ErrNotConfined
	}
	f := os.NewFile(specFD, "spec")
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<20))
}

// ReportStarted tells the parent the guest runs.
func ReportStarted() {
	f := os.NewFile(statusFD, "status")
	f.Write([]byte("S"))
	f.Close()
}

// ReportFailed tells the parent the guest could not start, with the exit
// code the child is about to use.
func ReportFailed(code int, msg string) {
	f := os.NewFile(statusFD, "status")
	fmt.Fprintf(f, "E%d %s", code, msg)
	f.Close()
}

// DroppedCaps reports whether the child's capabilities were dropped.
func DroppedCaps() bool { return droppedCaps() }
