// Package dispatch owns the handler table every interception tier shares:
// a tier turns a guest syscall into a Request, the Engine runs the handler
// for its number and returns a Result the tier applies. Handlers are grouped
// by family in small files (fs_*.go, identity.go, exec.go, net.go); they
// reach the guest only through the Request's Memory and Guest interfaces,
// never through a tier directly.
package dispatch

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/trace"
	"github.com/kbox-go/kbox/internal/vfs"
)

// Memory reads and writes the calling guest's memory. Implementations turn
// a bad guest pointer into EFAULT, never a crash, and (for a separate guest
// process) check after each read that the request is still alive.
type Memory interface {
	Read(addr uint64, p []byte) error
	Write(addr uint64, p []byte) error
	// ReadString reads a NUL-terminated string of at most max bytes
	// (excluding the NUL); ENAMETOOLONG when no NUL is found in max+1 bytes.
	ReadString(addr uint64, max int) (string, error)
}

// Guest gives handlers the calling guest's descriptors.
type Guest interface {
	// DupFD returns a host descriptor sharing the open file description of
	// guest descriptor fd; the caller closes it.
	DupFD(fd int) (int, error)
	// InjectFD installs a duplicate of host descriptor hostFD in the guest
	// and returns the guest's number. target < 0 lets the kernel pick the
	// lowest free number.
	InjectFD(hostFD int, cloexec bool, target int) (int, error)
	// StackPointer returns the calling thread's stack pointer, or an error
	// when the tier cannot know it.
	StackPointer() (uint64, error)
	// InstallsOPath reports whether InjectFD can install an O_PATH
	// descriptor (the in-process tiers' own table can; seccomp's ADDFD
	// refuses them, and fs_opath.go hands out a stand-in instead).
	InstallsOPath() bool
}

// Request is one intercepted syscall.
type Request struct {
	Nr   int
	Args [6]uint64
	Tid  int // calling thread (host tid)
	Tgid int // calling process (host pid)
	Mem  Memory
	FDs  Guest
	Proc *Process
	// ProcessAccess is the seccomp tier's reach into a guest process
	// beyond Memory (nil in the in-process tiers).
	ProcessAccess ProcessAccess
	// Blocking, when set, is called by a handler before a host operation
	// that may wait indefinitely (a FIFO open, a connect, a send on a full
	// socket): the tier makes sure other notifications are still received
	// meanwhile, and bounds how many such operations wait in the host
	// kernel at once (each holds an OS thread of kbox's). It may make the
	// handler wait for its turn; an error means the call is abandoned (the
	// guest task went away meanwhile).
	Blocking func() error
	// Waiting, when set, is called by a handler before it waits in Go (a
	// retry loop, no OS thread held): the tier makes sure other
	// notifications are still received meanwhile.
	Waiting func()
	// Pending, when set, reports whether the guest still waits for this
	// call's answer; a handler's retry loop stops when it does not.
	Pending func() bool

	// trace collects what a traced call's handler learned (the paths it
	// resolved, a refusal); nil when the call is not traced.
	trace *traceNote
}

// traceNote is what a traced request's handler reports to the tracer.
type traceNote struct {
	paths  []trace.PathInfo
	denied bool
	// call is the record waiting for the tier's result (TraceResult).
	call *trace.Call
}

// maxTracedPaths bounds the paths one record keeps.
const maxTracedPaths = 4

// noteResolved attaches a path the handler resolved to the trace record:
// the canonical guest path and the host path it reached.
func (r *Request) noteResolved(l *vfs.Lookup, err error) {
	if r.trace == nil || err != nil || l == nil || len(r.trace.paths) >= maxTracedPaths {
		return
	}
	p := trace.PathInfo{Guest: l.Path, Existed: l.Exists()}
	if l.Deferred && l.Parent != nil {
		// The last component was not looked up: ask the host, by one
		// component inside the resolved parent, without following it.
		var st unix.Stat_t
		p.Existed = unix.Fstatat(l.Parent.FD(), l.Name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
	}
	if m := l.Mount; m != nil {
		if rel, ok := strings.CutPrefix(l.Path, m.Guest); ok && (rel == "" || rel[0] == '/' || m.Guest == "/") {
			host := m.Host
			if m.Overlay != nil && !l.Upper() {
				host = m.Overlay.Lower // an overlay's lower object (docs/overlay.md)
			}
			p.Host = filepath.Join(host, rel)
		}
	}
	if n := len(r.trace.paths); n > 0 && r.trace.paths[n-1] == p {
		return
	}
	r.trace.paths = append(r.trace.paths, p)
}

// noteDenied marks a traced call as refused by kbox.
func (r *Request) noteDenied() {
	if r.trace != nil {
		r.trace.denied = true
	}
}

// MayBlock announces a host operation that may block indefinitely. An
// error means the call was abandoned while it waited for its turn.
func (r *Request) MayBlock() error {
	if r.Blocking != nil {
		return r.Blocking()
	}
	return nil
}

// MayWait announces a wait in a retry loop (see Waiting).
func (r *Request) MayWait() {
	if r.Waiting != nil {
		r.Waiting()
	}
}

// StillPending reports whether the guest still waits for the answer.
func (r *Request) StillPending() bool {
	return r.Pending == nil || r.Pending()
}

// Int returns argument i as a C int (the low 32 bits, sign-extended), as the
// kernel reads int arguments.
func (r *Request) Int(i int) int { return int(int32(uint32(r.Args[i]))) }

// Uint returns argument i truncated to 32 bits.
func (r *Request) Uint(i int) uint32 { return uint32(r.Args[i]) }

// Ptr returns argument i as a guest address.
func (r *Request) Ptr(i int) uint64 { return r.Args[i] }

// Path reads the NUL-terminated path at argument i.
func (r *Request) Path(i int) (string, error) {
	if r.Args[i] == 0 {
		return "", unix.EFAULT
	}
	return r.Mem.ReadString(r.Args[i], 4095)
}

// ResultKind says how a tier completes a request.
type ResultKind uint8

const (
	// Value returns Val to the guest.
	Value ResultKind = iota
	// Errno fails the call with Err.
	Errno
	// Continue lets the host kernel run the call as the guest issued it.
	// Only for calls whose arguments the kernel does not resolve as paths.
	Continue
	// Inject installs FD in the guest (honouring Cloexec) and returns the
	// guest's number, atomically with the reply where the tier can.
	Inject
)

// Result is a handler's answer.
type Result struct {
	Kind    ResultKind
	Val     int64
	Err     unix.Errno
	FD      int // Inject: host descriptor, closed by the tier afterwards
	Cloexec bool
	// After, when set, runs once the reply has been sent (the tier calls
	// it before receiving further notifications).
	After func()
}

// Ok returns a successful value.
func Ok(v int64) Result { return Result{Kind: Value, Val: v} }

// Fail returns the errno result of err (abi.Errno: a wrapped errno is
// kept, an error without one is EIO); a nil error or errno 0 is success.
func Fail(err error) Result {
	if e := abi.Errno(err, unix.EIO); e != 0 {
		return Result{Kind: Errno, Err: e}
	}
	return Ok(0)
}

// Cont lets the kernel run the call.
func Cont() Result { return Result{Kind: Continue} }

// InjectFD returns a descriptor to install in the guest.
func InjectFD(fd int, cloexec bool) Result { return Result{Kind: Inject, FD: fd, Cloexec: cloexec} }

// errOf converts a result of a host call into a Result.
func errOf(err error) Result {
	if err != nil {
		return Fail(err)
	}
	return Ok(0)
}
