package dispatch

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/identity"
	"github.com/kbox-go/kbox/internal/netuser"
	"github.com/kbox-go/kbox/internal/trace"
	"github.com/kbox-go/kbox/internal/vfs"
)

// Handler serves one syscall.
type Handler func(e *Engine, r *Request) Result

// handlersByName is filled by the family files' init functions.
var handlersByName = map[string]Handler{}

func register(h Handler, names ...string) {
	for _, n := range names {
		if _, dup := handlersByName[n]; dup {
			panic("dispatch: handler registered twice: " + n)
		}
		handlersByName[n] = h
	}
}

// HandledNames returns the names of every syscall with a handler.
func HandledNames() []string {
	out := make([]string, 0, len(handlersByName))
	for n := range handlersByName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Config is what the engine needs to know about the run.
type Config struct {
	Arch     *abi.Arch
	NS       *vfs.Namespace
	Identity identity.Config
	// InitialCwd is the first guest process's working directory (canonical).
	InitialCwd string
	// ExecDir is the host directory holding the fd-number symlinks the exec
	// handler points the kernel at; every guest process's host cwd.
	ExecDir string
	Verbose bool
	Log     io.Writer
	// ExecBackstop: the kernel (Landlock) refuses to execute files outside
	// the guest's mounts, so a racing thread cannot redirect an exec.
	ExecBackstop bool
	// GuestCaps: the guest holds real capabilities (kbox started by root
	// with --keep-caps).
	GuestCaps bool
	// Denied are calls the filter sends to the engine only to refuse them
	// (the dangerous set under -v: policy.Options.NotifyDenied), by name,
	// with the reason: the engine answers EPERM and counts them.
	Denied map[string]string
	// NetRefused are calls the filter sends to the engine only to refuse
	// them with EAFNOSUPPORT (--net=none under -v:
	// policy.Resolved.NetRefused), by name, with the reason.
	NetRefused map[string]string
	// NetUser is --net=user's configuration (nil: another mode): the
	// seccomp tier translates every AF_INET address (net_user.go).
	NetUser *netuser.Config
	// ThreadsOnDemand: the engine's locked helper threads (the umask pool,
	// the bind thread) start at their first use instead of with the
	// engine. Only where no guest thread runs in kbox's process (the
	// seccomp tier): an in-process tier needs them started before its
	// guest thread exists, which a new thread could be cloned from.
	ThreadsOnDemand bool
}

// Engine is the dispatcher shared by all tiers.
type Engine struct {
	cfg      Config
	arch     *abi.Arch
	ns       *vfs.Namespace
	handlers []Handler
	Procs    *ProcTable
	exec     *execSupport
	// bindThread binds AF_UNIX sockets by bare name (see net.go).
	bindThread *bindThread
	names      *unixNames
	owners     *ownershipStore
	ipc        *ipcTable
	// fileBinds: directories whose listings show file binds' placeholders
	// (vfs.Namespace.FileBindTypes), for getdents.
	fileBinds map[[2]uint64]map[string]uint32
	// mountPoints: directories listing mount points they have no entry
	// for (vfs.Namespace.VirtualEntries), for getdents.
	mountPoints map[[2]uint64][]vfs.DirEntry

	logMu    sync.Mutex
	enosysMu sync.Mutex
	enosys   map[int]uint64
	// deniedCount counts refusals by "name (ERRNO)" for -v.
	deniedMu    sync.Mutex
	deniedCount map[string]uint64
	total       atomic.Uint64
	hostUID     uint32
	hostGID     uint32
	plainStat   func(PlainStat) // SetPlainStatHook
	mutations   atomic.Uint64
	// internalErrors counts handler panics recovered by Dispatch.
	internalErrors atomic.Uint64
	// fifoWriters counts FIFO opens for writing waiting for a reader.
	fifoWriters atomic.Int64
	// tracer, when set, records the calls the engine serves (SetTracer);
	// nil costs Dispatch one check.
	tracer *trace.Tracer

	// abstract tags the guest's abstract AF_UNIX names (net_abstract.go).
	abstract *abstractNS
	// nat is --net=user's address plan (nil: another mode).
	nat *netuser.NAT
}

// New builds an engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	if cfg.InitialCwd == "" {
		cfg.InitialCwd = "/"
	}
	e := &Engine{cfg: cfg, arch: cfg.Arch, ns: cfg.NS, enosys: map[int]uint64{}, deniedCount: map[string]uint64{},
		hostUID: uint32(os.Geteuid()), hostGID: uint32(os.Getegid())}
	e.handlers = make([]Handler, cfg.Arch.MaxNr()+1)
	for name, h := range handlersByName {
		if nr, ok := cfg.Arch.Nr(name); ok {
			e.handlers[nr] = h
		}
	}
	for name, why := range cfg.Denied {
		if nr, ok := cfg.Arch.Nr(name); ok && e.handlers[nr] == nil {
			e.handlers[nr] = func(e *Engine, r *Request) Result { return e.denied(r, unix.EPERM, why) }
		}
	}
	for name, why := range cfg.NetRefused {
		if nr, ok := cfg.Arch.Nr(name); ok && e.handlers[nr] == nil {
			e.handlers[nr] = func(e *Engine, r *Request) Result { return e.denied(r, unix.EAFNOSUPPORT, why) }
		}
	}
	e.Procs = newProcTable(e)
	x, err := newExecSupport(cfg.ExecDir)
	if err != nil {
		return nil, err
	}
	e.exec = x
	e.bindThread = newBindThread()
	if !cfg.ThreadsOnDemand {
		e.bindThread.start()
		startUmaskThreads()
	}
	e.names = newUnixNames()
	e.abstract = newAbstractNS()
	if cfg.NetUser != nil {
		e.nat = netuser.NewNAT(*cfg.NetUser)
		e.nat.Alive = inetAlive
		e.nat.Logf = e.Verbosef
	}
	e.owners = newOwnershipStore()
	e.ipc = newIPCTable()
	e.fileBinds = cfg.NS.FileBindTypes()
	e.mountPoints = cfg.NS.VirtualEntries()
	return e, nil
}

// Close releases engine resources and removes the IPC objects the guest
// left (RemoveIPC).
func (e *Engine) Close() {
	e.RemoveIPC()
	e.exec.close()
}

// Arch returns the engine's architecture.
func (e *Engine) Arch() *abi.Arch { return e.arch }

// SetTracer makes the engine record the calls it serves. Call it before
// the guest runs.
func (e *Engine) SetTracer(t *trace.Tracer) { e.tracer = t }

// Tracer returns the engine's tracer (nil when tracing is off).
func (e *Engine) Tracer() *trace.Tracer { return e.tracer }

// Dispatch runs the handler for r. A handler that panics (a kbox bug,
// whatever the guest passed) does not take kbox down: the call fails with
// EIO, a warning names it (the stack with -v), and kbox serves on.
func (e *Engine) Dispatch(r *Request) Result {
	if e.tracer != nil {
		return e.dispatchTraced(r)
	}
	return e.serve(r)
}

// dispatchTraced is Dispatch with the call recorded. A result the tier
// completes (a descriptor to install, a call the host runs) is recorded
// when the tier reports it (TraceResult).
func (e *Engine) dispatchTraced(r *Request) Result {
	t := e.tracer
	if !t.Wants(r.Nr) {
		return e.serve(r)
	}
	note := &traceNote{}
	r.trace = note
	c := &trace.Call{Nr: r.Nr, Args: r.Args, Pid: r.Tgid, Tid: r.Tid, Mem: r.Mem, FDName: e.fdNamer(r.Tgid), Disp: trace.Kbox}
	t.Entry(c)
	c.Start = time.Now()
	res := e.serve(r)
	c.Lat, c.Paths = time.Since(c.Start), note.paths
	switch res.Kind {
	case Value:
		c.Ret, c.Known = res.Val, true
	case Errno:
		c.Ret, c.Known = -int64(res.Err), true
		switch {
		case note.denied:
			c.Disp = trace.Denied
		case res.Err == unix.ENOSYS && (r.Nr < 0 || r.Nr >= len(e.handlers) || e.handlers[r.Nr] == nil):
			c.Disp = trace.Unsupported
		}
	case Continue:
		c.Disp = trace.Host
		note.call = c
		return res
	case Inject:
		note.call = c
		return res
	}
	t.Syscall(c)
	return res
}

// TraceResult records a traced call whose result the tier completed: the
// descriptor number it installed (or -errno), or, with known false, a
// call the host kernel runs after kbox answered. Without tracing, or for
// a call already recorded, it does nothing.
func (e *Engine) TraceResult(r *Request, ret int64, known bool) {
	if r.trace == nil || r.trace.call == nil {
		return
	}
	c := r.trace.call
	r.trace.call = nil
	c.Ret, c.Known, c.Lat = ret, known, time.Since(c.Start)
	e.tracer.Syscall(c)
}

// fdNamer names what a descriptor of process pid points to, for traces.
func (e *Engine) fdNamer(pid int) func(int) string {
	return func(fd int) string {
		h, ok := e.Procs.HostFD(pid, fd)
		if !ok {
			return ""
		}
		buf := make([]byte, 256)
		n, err := unix.Readlink("/proc/"+strconv.Itoa(pid)+"/fd/"+strconv.Itoa(h), buf)
		if err != nil {
			return ""
		}
		return string(buf[:n])
	}
}

// serve runs the handler for r (Dispatch without the tracer).
func (e *Engine) serve(r *Request) (res Result) {
	e.total.Add(1)
	defer func() {
		if p := recover(); p != nil {
			res = e.internalError(r, p, debug.Stack())
		}
	}()
	var h Handler
	if r.Nr >= 0 && r.Nr < len(e.handlers) {
		h = e.handlers[r.Nr]
	}
	if h == nil {
		e.enosysMu.Lock()
		e.enosys[r.Nr]++
		first := e.enosys[r.Nr] == 1
		e.enosysMu.Unlock()
		if first {
			e.Verbosef("pid %d: %s: unsupported, ENOSYS", r.Tgid, e.arch.SyscallName(r.Nr))
		}
		return Fail(unix.ENOSYS)
	}
	return h(e, r)
}

// internalErrorWarnMax bounds the warnings for recovered handler panics
// (each is counted; the -v summary gives the total).
const internalErrorWarnMax = 10

// internalError answers a call whose handler panicked: EIO, the errno of
// a failure the caller can do nothing about.
func (e *Engine) internalError(r *Request, p any, stack []byte) Result {
	n := e.internalErrors.Add(1)
	if n <= internalErrorWarnMax {
		e.warnf("internal error serving %s for pid %d (%v): the call fails with EIO; kbox goes on (please report this, with the -v output)",
			e.arch.SyscallName(r.Nr), r.Tgid, p)
	}
	if e.cfg.Verbose {
		e.Verbosef("stack of internal error %d:\n%s", n, stack)
	}
	return Fail(unix.EIO)
}

// InternalErrors returns how many calls failed with a recovered handler
// panic.
func (e *Engine) InternalErrors() uint64 { return e.internalErrors.Load() }

// Verbosef writes one -v line.
func (e *Engine) Verbosef(format string, args ...any) {
	if !e.cfg.Verbose {
		return
	}
	e.logMu.Lock()
	defer e.logMu.Unlock()
	fmt.Fprintf(e.cfg.Log, "kbox: "+format+"\n", args...)
}

// warnf writes a warning, with or without -v.
func (e *Engine) warnf(format string, args ...any) {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	fmt.Fprintf(e.cfg.Log, "kbox: warning: "+format+"\n", args...)
}

// denied records a refusal for -v.
func (e *Engine) denied(r *Request, err unix.Errno, why string) Result {
	r.noteDenied()
	if e.cfg.Verbose {
		name := e.arch.SyscallName(r.Nr) + " (" + unix.ErrnoName(err) + ")"
		e.deniedMu.Lock()
		e.deniedCount[name]++
		first := e.deniedCount[name] == 1
		e.deniedMu.Unlock()
		if first {
			e.Verbosef("pid %d: %s denied (%s): %s (further denials counted at exit)", r.Tgid, e.arch.SyscallName(r.Nr), unix.ErrnoName(err), why)
		}
	}
	return Fail(err)
}

// UnsupportedCounts returns calls answered with ENOSYS, by name.
func (e *Engine) UnsupportedCounts() map[string]uint64 {
	e.enosysMu.Lock()
	defer e.enosysMu.Unlock()
	out := map[string]uint64{}
	for nr, n := range e.enosys {
		out[e.arch.SyscallName(nr)] = n
	}
	return out
}

// Report writes the end-of-run summary for -v.
func (e *Engine) Report() {
	if !e.cfg.Verbose {
		return
	}
	counts := e.UnsupportedCounts()
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, " %s=%d", n, counts[n])
	}
	hits, misses := e.ns.CacheStats()
	e.Verbosef("%d notifications; dentry cache %d hits, %d misses; %d internal errors", e.total.Load(), hits, misses, e.internalErrors.Load())
	if len(names) == 0 {
		e.Verbosef("unsupported syscalls: none")
	} else {
		e.Verbosef("unsupported syscalls (ENOSYS):%s", b.String())
	}
	e.deniedMu.Lock()
	denied := make([]string, 0, len(e.deniedCount))
	for n, c := range e.deniedCount {
		denied = append(denied, fmt.Sprintf(" %s=%d", n, c))
	}
	e.deniedMu.Unlock()
	sort.Strings(denied)
	if len(denied) > 0 {
		e.Verbosef("denied syscalls:%s", strings.Join(denied, ""))
	}
}

// mutated is called after any guest operation that can change the tree.
func (e *Engine) mutated() {
	e.mutations.Add(1)
	e.ns.Invalidate()
}

// ctx builds the resolver context of a request.
func (e *Engine) ctx(r *Request) *vfs.Context {
	cwd, root := r.Proc.CwdRoot()
	return &vfs.Context{Tgid: r.Tgid, Tid: r.Tid, Cwd: cwd, Root: root, Procs: e.Procs}
}
