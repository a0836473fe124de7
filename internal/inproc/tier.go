//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/dispatch"
	"github.com/kbox-go/kbox/internal/fdtable"
	"github.com/kbox-go/kbox/internal/loader"
	"github.com/kbox-go/kbox/internal/policy"
	"github.com/kbox-go/kbox/internal/trace"
)

// tier is the state of the one guest. Only the guest thread changes it,
// except the signal state, which the host-signal forwarder also writes
// (under its lock).
type tier struct {
	eng  *dispatch.Engine
	pol  *policy.Resolved
	log  io.Writer
	pid  int
	tid  int
	proc *dispatch.Process
	fds  *fdtable.Table
	vm   vmRanges
	brk  brkState
	sig  *signalState
	ruleSet
	auxv hostAuxv
	// regular[h] records that host descriptor h is a regular file or a
	// directory, so reads and writes on it cannot sleep.
	regular []bool
	// uc is the context of the call being served (for StackPointer).
	uc      *ucontext
	started chan int
	// onStart runs on the guest thread just before it first enters guest
	// code (Config.OnStart).
	onStart func()
	execs   int
	// comm is the name the main thread takes next (setComm); commKick
	// wakes Run's loop, which runs on the main thread.
	comm     atomic.Value
	commKick chan struct{}
	atExit   func()
	rw       *rewriter  // nil in the trap tier
	sc       *statCache // nil when off (tracing)
	thread   threadState

	trapped, native, engine atomic.Uint64
	warned                  map[string]bool

	// tr is the engine's tracer (nil: tracing off); tracing is the call
	// being served, recorded by exit when the call ends the process.
	tr      *trace.Tracer
	tracing *trace.Call
}

// current is the process's one guest: set by Run before the guest starts,
// read by the cgo callbacks from the signal handlers, which carry no
// context of their own.
var current *tier

// Run loads the guest program and runs it; it returns only on a failure
// before the guest started. The guest's exit ends the process.
func Run(cfg Config) (int, error) {
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	t := &tier{eng: cfg.Engine, pol: cfg.Policy, log: cfg.Log, pid: os.Getpid(), started: make(chan int, 1), commKick: make(chan struct{}, 1),
		warned: map[string]bool{}, atExit: cfg.AtExit}
	current = t
	t.sig = newSignalState()
	t.proc = t.eng.Procs.AddInitial(t.pid)
	var err error
	if t.auxv, err = readHostAuxv(); err != nil {
		return 125, err
	}
	t.fds = fdtable.New(fdLimit(), func(h int) error { return unix.Close(h) })
	if cfg.Rewrite {
		t.rw = newRewriter(cfg.PlanCacheReadOnly)
		t.fds.SetObserver(func(g, h int) {
			// Only calls on regular files and directories take the fast
			// path: they cannot sleep, so no signal needs to interrupt them.
			if h >= 0 && t.isRegular(h) {
				setFastFD(g, h)
			} else {
				setFastFD(g, -1)
			}
		})
	}
	for g := 0; g <= 2; g++ {
		// The guest's stdio are kbox's; kbox keeps its own duplicates for
		// its messages, so a guest that closes stderr does not silence
		// kbox's -v report.
		var st unix.Stat_t
		if unix.Fstat(g, &st) != nil {
			continue
		}
		h, err := unix.FcntlInt(uintptr(g), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			return 125, fmt.Errorf("duplicating descriptor %d: %w", g, err)
		}
		t.noteRegular(h, &st)
		if _, err := t.fds.Open(h, kindOf(&st), "", false); err != nil {
			return 125, err
		}
	}
	rs, err := buildRules(t.pol, ownRules)
	if err != nil {
		return 125, err
	}
	t.ruleSet = rs
	// --trace-fast: the fast path is left off, so that the calls it
	// would serve trap and are traced like any other (at a trap's cost).
	traceFast := false
	if t.tr = t.eng.Tracer(); t.tr != nil {
		unseen := ""
		if t.rw != nil {
			unseen = "calls the rewrite tier's fast path serves (descriptor calls on regular files and directories from patched sites) are counted, not traced"
			if traceFast = t.tr.RecordFast(); traceFast {
				unseen = ""
				t.eng.Verbosef("rewrite tier: --trace-fast: the fast path is off, every call traps and is traced")
			}
			t.tr.SetFastCounts(fastCounts)
		}
		t.tr.SetTier(t.tierName(), unseen, true)
	}
	if t.rw != nil && !traceFast {
		if err := setFastKinds(t.pol); err != nil {
			return 125, err
		}
		// fstat takes the fast path only when no owner needs translating.
		nr, _ := t.eng.Arch().Nr("fstat")
		setFastIdentity(t.pid, t.pol.Disposition(nr) == policy.Allow)
		if err := enableDirect(); err != nil {
			t.eng.Verbosef("rewrite: direct entry unavailable (%v): calls the fast path does not serve trap", err)
		}
	}
	// The stat cache answers stats without the engine, so it stays off
	// while calls are traced.
	if t.tr == nil {
		translate, hostUID, hostGID, guestUID, guestGID := t.eng.OwnerView()
		if err := setStatCache(t.pol, true, translate, hostUID, hostGID, guestUID, guestGID); err != nil {
			return 125, err
		}
		t.sc = newStatCache()
		t.eng.SetPlainStatHook(t.sc.note)
	}
	t.eng.Procs.SetFDView(guestFDView{t})

	sigs := t.sig.catch()
	code, err := t.start(cfg)
	if err != nil {
		signal.Stop(sigs)
		return code, err
	}
	// The guest runs on its own thread and ends the process; a goroutine
	// forwards host signals meanwhile, and this one (on the main thread,
	// when the caller locked it there) names the process after the
	// guest's program.
	go t.sig.forward(t, sigs)
	for range t.commKick {
		if name, ok := t.comm.Load().(string); ok {
			setThreadName(name)
		}
	}
	select {}
}

func fdLimit() int {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil || rl.Cur > fdtable.MaxLimit {
		return fdtable.DefaultLimit
	}
	return int(rl.Cur)
}

func (t *tier) start(cfg Config) (int, error) {
	req := t.request(&call{})
	img, err := t.prepare(req, unix.AT_FDCWD, cfg.Path, 0, cfg.Argv)
	if err != nil {
		return loader.ExecExitCode(err), errors.New(loader.ExecFailure(cfg.Path, err))
	}
	if err := installHandlers(); err != nil {
		return 125, fmt.Errorf("installing signal handlers: %w", err)
	}
	filters, err := t.filters()
	if err != nil {
		return 125, err
	}
	entry, sp, err := t.load(img, cfg.Env)
	if err != nil {
		return 126, err
	}
	t.eng.ProgramStarted(req, img.exe, img.script)
	// Named before the guest thread exists, which inherits the name.
	t.setComm(img.execfn)
	t.onStart = cfg.OnStart
	// The process is already confined (internal/sandbox): every thread of
	// it, not only the guest's, is limited to the guest's mounts.
	if err := startGuest(entry, sp, t.auxv.hwcap2, filters, -1); err != nil {
		return 125, fmt.Errorf("starting the guest thread: %w", err)
	}
	if en := <-t.started; en != 0 {
		return 125, fmt.Errorf("setting up the guest thread: %v", unix.Errno(en))
	}
	t.tid = guestTid()
	t.eng.Verbosef("tier %s: guest thread %d, entry %#x", t.tierName(), t.tid, entry)
	return 0, nil
}

// call is one guest syscall being served.
type call struct {
	nr   int
	args [6]uint64
	uc   *ucontext
	// keepRegs: the handler set the registers itself (rt_sigreturn,
	// execve); the result is not written to rax.
	keepRegs bool
}

func (c *call) int(i int) int { return int(int32(uint32(c.args[i]))) }

// syscallRecovering is syscall for the SIGSYS path: a panic in one of the
// tier's own rules (the engine recovers its handlers') must not unwind
// through the cgo callback, which is fatal: the call fails with EIO, a
// warning names it, and the guest goes on.
func (t *tier) syscallRecovering(uc *ucontext, nr int) {
	defer func() {
		if p := recover(); p != nil {
			t.eng.Warnf("internal error in the %s tier serving %s (%v): the call fails with EIO\n%s",
				t.tierName(), t.name(nr), p, debug.Stack())
			uc.setResult(-int64(unix.EIO))
		}
	}()
	t.syscall(uc, nr)
}

// syscall serves one trapped guest syscall and writes its result.
func (t *tier) syscall(uc *ucontext, nr int) {
	if t.tr != nil {
		t.syscallTraced(uc, nr)
		return
	}
	t.serve(uc, nr)
}

// syscallTraced is syscall with the call recorded. Calls the dispatch
// engine serves are recorded by the engine (with the paths its handlers
// resolved); the others here, with the disposition the policy table gives
// them in this tier.
func (t *tier) syscallTraced(uc *ucontext, nr int) {
	if !t.tr.Wants(nr) {
		t.serve(uc, nr)
		return
	}
	// The guest is one thread, which knows itself by the process's id
	// (as the engine's requests name it).
	c := &trace.Call{Nr: nr, Args: uc.args(), Pid: t.pid, Tid: t.pid, Mem: memory{}, FDName: t.fdName, Start: time.Now()}
	c.Disp = t.traceDisposition(nr, c.Args)
	t.tr.Entry(c)
	engine := t.engine.Load()
	t.tracing = c
	ret, known := t.serve(uc, nr)
	t.tracing = nil
	if t.engine.Load() != engine {
		return // the engine recorded it
	}
	c.Ret, c.Known, c.Lat = ret, known, time.Since(c.Start)
	t.tr.Syscall(c)
}

// traceDisposition is who answers nr with args in this tier, for traces
// (the engine's calls are recorded by the engine).
func (t *tier) traceDisposition(nr int, args [6]uint64) trace.Disposition {
	e, ok := t.pol.ByNr[nr]
	if !ok {
		return trace.Unsupported
	}
	switch t.pol.Expect(nr, args) {
	case policy.Deny:
		return trace.Denied
	case policy.Unsupported:
		return trace.Unsupported
	}
	switch e.InProc {
	case policy.OwnRule:
		return trace.Emulated
	case policy.NotInProcess:
		return trace.Unsupported
	}
	if e.Native == nil {
		return trace.Unsupported
	}
	return trace.Host
}

// fdName names what guest descriptor fd points to, for traces.
func (t *tier) fdName(fd int) string {
	e, ok := t.fds.Get(fd)
	if !ok {
		return ""
	}
	buf := make([]byte, 256)
	n, err := unix.Readlink("/proc/self/fd/"+strconv.Itoa(e.HostFD), buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// serve serves one trapped guest syscall and writes its result; it
// returns the result and whether it is the call's (not for a call that
// set the registers itself or is restarted).
func (t *tier) serve(uc *ucontext, nr int) (int64, bool) {
	t.trapped.Add(1)
	t.uc = uc
	if t.rw != nil && t.rw.inArena(uc.pc()) && !t.rw.origins.contains(uc.pc()) {
		// Only a trampoline's own syscall may trap from an arena.
		t.eng.Warnf("syscall %d from %#x, inside a trampoline arena but from no trampoline: the guest is killed", nr, uc.pc())
		t.exit(128 + int(unix.SIGSYS))
	}
	c := call{nr: nr, args: uc.args(), uc: uc}
	var r int64
	if nr >= 0 && nr < len(t.rules) && t.rules[nr] != nil {
		r = t.rules[nr](t, &c)
	} else {
		r = t.viaEngine(&c)
	}
	if r == errRestart {
		r = -int64(unix.EINTR)
		if t.sig.restarts() {
			// Run the call again when the handler returns, as the
			// kernel does for ERESTARTSYS.
			uc.restart(nr)
			return 0, false
		}
	}
	if !c.keepRegs {
		uc.setResult(r)
	}
	return r, !c.keepRegs
}

// errRestart is returned by a restartable call interrupted for a guest
// signal (the kernel's ERESTARTSYS); syscall turns it into EINTR or a
// restart.
const errRestart = -512

func errno(err error) int64 { return -int64(abi.Errno(err, unix.EIO)) }

func errnoErr(en int) error { return unix.Errno(en) }

func (t *tier) request(c *call) *dispatch.Request {
	return &dispatch.Request{Nr: c.nr, Args: c.args, Tid: t.pid, Tgid: t.pid,
		Mem: memory{}, FDs: t, Proc: t.proc}
}

// viaEngine hands the call to the dispatch engine and applies its answer.
func (t *tier) viaEngine(c *call) int64 {
	t.engine.Add(1)
	req := t.request(c)
	res := t.eng.Dispatch(req)
	var r int64
	switch res.Kind {
	case dispatch.Value:
		r = res.Val
	case dispatch.Errno:
		r = -int64(res.Err)
	case dispatch.Continue:
		spec := t.natives[c.nr]
		if spec == nil {
			t.warnOnce(t.name(c.nr), "%s: the engine let it through but the trap tier has no rule to run it; ENOSYS", t.name(c.nr))
			r = -int64(unix.ENOSYS)
		} else {
			r = t.runNative(c, spec)
		}
	case dispatch.Inject:
		g, err := t.install(res.FD, res.Cloexec, "")
		if err != nil {
			unix.Close(res.FD)
			r = errno(err)
		} else {
			r = int64(g)
		}
	}
	if res.Kind == dispatch.Continue || res.Kind == dispatch.Inject {
		t.eng.TraceResult(req, r, r != errRestart)
	}
	if res.After != nil {
		res.After()
	}
	return r
}

// tierName is "rewrite" with patched sites, else "trap".
func (t *tier) tierName() string {
	if t.rw != nil {
		return "rewrite"
	}
	return "trap"
}

func (t *tier) name(nr int) string { return t.eng.Arch().SyscallName(nr) }

func (t *tier) warnOnce(key, format string, args ...any) {
	if t.warned[key] {
		return
	}
	t.warned[key] = true
	t.eng.Warnf(format, args...)
}

func (t *tier) verboseOnce(key, format string, args ...any) {
	if t.warned["v:"+key] {
		return
	}
	t.warned["v:"+key] = true
	t.eng.Verbosef(format, args...)
}

// exit ends kbox with the guest's status.
func (t *tier) exit(code int) {
	if t.eng.Verbose() {
		if t.rw != nil {
			hits, misses := fastCounts()
			direct := directCalls()
			t.eng.Verbosef("rewrite tier: %d syscall sites patched in %d mappings (%d WRAPPER: syscall then ret; %d COMPLEX); from patched sites %d calls took the fast path, %d direct entry into kbox, %d a trap",
				t.rw.sites, t.rw.mappings, t.rw.wrappers, t.rw.sites-t.rw.wrappers, hits, direct, misses-direct)
			t.rw.report(t)
		}
		t.eng.Verbosef("trap tier: %d syscalls trapped (%d served by the engine, %d run natively)",
			t.trapped.Load(), t.engine.Load(), t.native.Load())
		if t.sc != nil {
			hits, misses := statCacheCounts()
			t.eng.Verbosef("stat cache: %d stats answered without the engine, %d not (%d entries made, generation %d)",
				hits, misses, t.sc.inserted, statCacheGen())
		}
		t.eng.Report()
	}
	if t.tr != nil {
		// The call that ends the process (exit_group, a fatal signal's
		// delivery) has no result.
		if c := t.tracing; c != nil {
			t.tracing = nil
			c.Lat = time.Since(c.Start)
			t.tr.Syscall(c)
		}
		if err := t.tr.Finish(trace.Exit{Code: code}); err != nil {
			t.eng.Warnf("trace summary: %v", err)
		}
	}
	if t.atExit != nil {
		t.atExit()
	}
	unix.Exit(code)
}

// Guest interface for the engine's handlers.

// DupFD returns a duplicate of the host descriptor behind guest fd.
func (t *tier) DupFD(fd int) (int, error) {
	e, ok := t.fds.Get(fd)
	if !ok {
		return -1, unix.EBADF
	}
	return unix.FcntlInt(uintptr(e.HostFD), unix.F_DUPFD_CLOEXEC, 3)
}

// InjectFD installs a duplicate of hostFD in the guest's table.
func (t *tier) InjectFD(hostFD int, cloexec bool, target int) (int, error) {
	h, err := unix.FcntlInt(uintptr(hostFD), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return -1, err
	}
	g, err := t.install(h, cloexec, "")
	if err != nil {
		unix.Close(h)
		return -1, err
	}
	if target >= 0 && target != g {
		if _, err := t.fds.Dup2(g, target); err != nil {
			t.fds.Close(g)
			return -1, err
		}
		if cloexec {
			t.fds.SetCloexec(target, true)
		}
		t.fds.Close(g)
		g = target
	}
	return g, nil
}

// StackPointer returns the guest's stack pointer at the call.
// guestFDView is the guest's descriptor table for /proc/<pid>/fd
// (dispatch.FDView).
type guestFDView struct{ t *tier }

func (v guestFDView) HostFD(pid, fd int) (int, bool) {
	if pid != v.t.pid {
		return -1, false
	}
	e, ok := v.t.fds.Get(fd)
	return e.HostFD, ok
}

func (v guestFDView) GuestFDs(pid int) []int {
	var out []int
	if pid != v.t.pid {
		return nil
	}
	for fd, n := 0, v.t.fds.Len(); n > 0 && fd < v.t.fds.Limit(); fd++ {
		if _, ok := v.t.fds.Get(fd); ok {
			out = append(out, fd)
			n--
		}
	}
	return out
}

// InstallsOPath: the guest's descriptor table is kbox's own.
func (t *tier) InstallsOPath() bool { return true }

func (t *tier) StackPointer() (uint64, error) {
	if t.uc == nil {
		return 0, unix.EFAULT
	}
	return t.uc.sp(), nil
}

// install records a new host descriptor (owned by the table from now on)
// under the lowest free guest number.
func (t *tier) install(h int, cloexec bool, path string) (int, error) {
	var st unix.Stat_t
	kind := fdtable.KindUnknown
	if unix.Fstat(h, &st) == nil {
		kind = kindOf(&st)
		t.noteRegular(h, &st)
	}
	return t.fds.Open(h, kind, path, cloexec)
}

func (t *tier) noteRegular(h int, st *unix.Stat_t) {
	if h < 0 || h > 1<<20 {
		return
	}
	for len(t.regular) <= h {
		t.regular = append(t.regular, make([]bool, len(t.regular)+64)...)
	}
	m := st.Mode & unix.S_IFMT
	t.regular[h] = m == unix.S_IFREG || m == unix.S_IFDIR
}

func (t *tier) isRegular(h int) bool { return h >= 0 && h < len(t.regular) && t.regular[h] }

func kindOf(st *unix.Stat_t) fdtable.Kind {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFCHR, unix.S_IFBLK:
		return fdtable.KindFile
	case unix.S_IFDIR:
		return fdtable.KindDir
	case unix.S_IFIFO:
		return fdtable.KindPipe
	case unix.S_IFSOCK:
		return fdtable.KindSocket
	}
	return fdtable.KindUnknown
}
