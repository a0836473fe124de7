package unotify

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/dispatch"
	"github.com/kbox-go/kbox/internal/seccomp"
	"github.com/kbox-go/kbox/internal/supervise"
	"github.com/kbox-go/kbox/internal/trace"
)

// Result is how the guest ended.
type Result struct {
	ExitCode int    // the first guest process's status: code, or 128+signal
	Signal   int    // the signal that killed it, 0 if it exited
	Error    string // launch failure before the guest ran
}

// Run starts the guest described by l and serves it until its first
// process exits. Guest processes still running then are killed (kbox is
// their subreaper): the guest's lifetime is its first process's, as a
// container's is its init's.
func Run(e *dispatch.Engine, l Launch) (Result, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return Result{}, fmt.Errorf("PR_SET_CHILD_SUBREAPER: %w", err)
	}
	// Signals sent to kbox itself are passed to the guest's first process
	// (those a terminal sends reach the guest's foreground group directly,
	// kbox being in another group); kbox must outlive them to report the
	// guest's status.
	var target atomic.Int64
	defer supervise.ForwardSignals(func(sig syscall.Signal) {
		if pid := target.Load(); pid > 0 {
			unix.Kill(int(pid), sig)
		}
	}, false)()
	// The launcher confines the guest's signals to its Landlock domain
	// from ABI 6 on (landlock.go): signals between guest processes may then
	// continue in the kernel (dispatch/signals.go).
	e.Procs.SetSignalScope(l.Landlock >= 6)
	// A trace sees only the notified calls: its header says so.
	e.Tracer().SetTier("seccomp", trace.SeccompUnseen, false)

	plan := currentPlan()
	debug.SetMaxThreads(threadLimit())
	l.GuestNproc = plan.guestNproc
	if plan.guestNproc > 0 {
		e.Verbosef("tier seccomp: at most %d blocking host calls at once; the guest's RLIMIT_NPROC is %d, below kbox's, so kbox keeps threads of its own", plan.slots, plan.guestNproc)
	} else {
		e.Verbosef("tier seccomp: at most %d blocking host calls at once", plan.slots)
	}
	hadTTY := supervise.ForegroundTTY(os.Stdin)
	s, err := start(l, os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		return Result{}, err
	}
	defer supervise.ReclaimTTY(os.Stdin, hadTTY)
	// Orphaned guest processes are re-parented to the reaper, not to kbox.
	e.Procs.SetSubreaper(s.reaper.pid)
	// kbox is now a background group on the terminal: its -v lines must
	// not stop it (TOSTOP).
	signal.Ignore(syscall.SIGTTOU, syscall.SIGTTIN)
	if s.via != "" {
		e.Verbosef("tier seccomp: guest started by %s", s.via)
	}
	if s.listener >= 0 {
		e.Procs.AddInitial(s.pid)
		if err := seccomp.SetSyncWakeup(s.listener); err != nil {
			e.Verbosef("SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP unavailable (%v): round trips wake across CPUs", err)
		} else {
			e.Verbosef("tier seccomp: listener with synchronous wake-up")
		}
		srv := &server{e: e, listener: s.listener, pool: newSlotPool(plan.slots)}
		go srv.lead()
	}
	target.Store(int64(s.pid))

	// The reaper reports the first guest process's status once it has
	// killed what remained of the guest. Should it die first, the guest's
	// processes are re-parented to kbox (a subreaper too), which kills them.
	ws, err := s.reaper.wait()
	if err != nil {
		killDescendants()
		return Result{}, err
	}
	var res Result
	switch {
	case ws.Exited():
		res.ExitCode = ws.ExitStatus()
	case ws.Signaled():
		res.Signal = int(ws.Signal())
		res.ExitCode = 128 + res.Signal
	}
	if s.listener < 0 {
		res.Error = strings.TrimSpace(s.readLaunchError())
	}
	killDescendants()
	// Every guest process is reaped now: the summary's CPU times and peak
	// RSS (RUSAGE_CHILDREN) include them all.
	if err := e.Tracer().Finish(trace.Exit{Code: res.ExitCode, Signal: res.Signal}); err != nil {
		e.Warnf("trace summary: %v", err)
	}
	return res, nil
}

// killDescendants SIGKILLs every process below this one (kbox, or its
// reaper: both child subreapers) and reaps them. It signals only its own
// children, whose pids cannot name another process before it reaps them;
// their children are re-parented to it as they die, and the next round
// kills those. (A pid read from a process that is not its own could, by
// the time of the kill, be reaped and reused by a host process.)
func killDescendants() {
	// The common end: the reaper, reaped, was the only child. A process
	// without children has no descendants (an orphan is re-parented to
	// the nearest subreaper, kbox at the furthest, with SIGCHLD as its
	// exit signal), and one wait4 says so where listing this process's
	// threads' children files costs a dozen /proc reads.
	var ws unix.WaitStatus
	if _, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil); err == unix.ECHILD {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		kids := dispatch.ChildrenOf(os.Getpid())
		for _, k := range kids {
			unix.Kill(k, unix.SIGKILL)
		}
		reaped := false
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.ECHILD {
				return // no child left, running or zombie
			}
			if pid <= 0 || err != nil {
				break
			}
			reaped = true
		}
		if !reaped {
			time.Sleep(time.Millisecond) // killed ones still dying
		}
	}
}

// yieldEvery: the leader passes through Go's scheduler once per this
// many notifications. A goroutine that answers a busy guest never blocks
// in Go, so the runtime's monitor saw it running for more than 10 ms and
// preempted it with SIGURG (interrupting the RECV ioctl), then, having
// intervened, polled every 20 us for the next millisecond or so. A
// notification costs 15-40 us here, so 128 of them stay under 10 ms. The
// yield itself wakes an idle thread (Gosched's wakep): about 3 futex
// calls per yield. Measured over 50000 guest stats (perf stat): nanosleep
// 4000-7600 -> 250-650, tgkill (the preemption signals) 100-160 -> 9-16,
// futex 540-750 -> 1170-1220.
const yieldEvery = 128

// server answers the notifications of one listener.
type server struct {
	e        *dispatch.Engine
	listener int
	pool     *slotPool
}

// lead receives and answers notifications (leader/followers): exactly one
// goroutine waits in SECCOMP_IOCTL_NOTIF_RECV at any time, because the
// kernel wakes every waiter for each notification (measured here: a round
// trip of 8.7 µs with one waiter, 12 µs with two, 27 µs with four). When a
// handler announces that it may wait (Request.Blocking, Request.Waiting), a
// new leader is started and the current goroutine ends after answering, so
// a FIFO open or a slow connect never stops the guest's other processes.
// Handlers that wait in the host kernel hold an OS thread each, so they
// first take a slot of s.pool: when every slot is taken, the call waits (in
// a parked goroutine, no thread) for one to free, as it would wait for the
// host call itself; the leader meanwhile goes on answering everything else.
func (s *server) lead() {
	var n seccomp.Notif
	for served := 1; ; served++ {
		if served%yieldEvery == 0 {
			// See yieldEvery.
			runtime.Gosched()
		}
		err := seccomp.Recv(s.listener, &n)
		switch err {
		case nil:
		case unix.EINTR:
			continue
		case unix.ENOENT:
			// A notification vanished (its task was interrupted), or no
			// task uses the filter any more: then RECV fails at once
			// forever, and poll reports POLLHUP.
			fds := []unix.PollFd{{Fd: int32(s.listener), Events: unix.POLLIN}}
			if k, _ := unix.Poll(fds, -1); k > 0 && fds[0].Revents&unix.POLLHUP != 0 {
				return
			}
			continue
		default:
			return
		}
		c := &call{s: s, id: n.ID}
		s.answer(&n, c)
		c.finish()
		if c.promoted {
			return
		}
	}
}

// call is the tier's side of one notification being answered.
type call struct {
	s  *server
	id uint64
	// promoted: a new leader was started for this call's wait; the
	// goroutine ends once it has answered.
	promoted bool
	slot     bool // holds a slot of s.pool
}

// waiting hands the receiving on to a new leader (once).
func (c *call) waiting() {
	if !c.promoted {
		c.promoted = true
		go c.s.lead()
	}
}

// blocking is Request.Blocking: hand the receiving on, then take a slot
// for the host call.
func (c *call) blocking() error {
	c.waiting()
	if c.slot {
		return nil
	}
	if err := c.s.pool.acquire(c.pending); err != nil {
		return err
	}
	c.slot = true
	return nil
}

func (c *call) pending() bool { return seccomp.IDValid(c.s.listener, c.id) == nil }

// finish returns the call's slot.
func (c *call) finish() {
	if c.slot {
		c.slot = false
		c.s.pool.release()
	}
}

func (s *server) answer(n *seccomp.Notif, c *call) {
	sent := false
	defer func() {
		// The engine recovers its handlers' panics; this catches the
		// tier's own (and an After function's), so the guest is answered
		// and kbox serves on.
		if p := recover(); p != nil {
			s.e.Warnf("internal error in the seccomp tier answering %s (%v): the call fails with EIO\n%s",
				s.e.Arch().SyscallName(int(n.Data.Nr)), p, debug.Stack())
			if !sent {
				_ = seccomp.Send(s.listener, &seccomp.NotifResp{ID: n.ID, Error: -int32(unix.EIO)})
			}
		}
	}()
	listener := s.listener
	tid := int(n.Pid)
	proc, tgid, err := s.e.Procs.Lookup(tid, func() bool { return seccomp.IDValid(listener, n.ID) == nil })
	if err != nil {
		// The task died meanwhile (ESRCH), or kbox cannot hold its process
		// (EAGAIN, see Lookup).
		_ = seccomp.Send(listener, &seccomp.NotifResp{ID: n.ID, Error: -int32(abi.Errno(err, unix.ESRCH))})
		return
	}
	mem := &memory{tid: tid, id: n.ID, listener: listener, proc: proc}
	req := &dispatch.Request{
		Nr:   int(n.Data.Nr),
		Args: n.Data.Args,
		Tid:  tid,
		Tgid: tgid,
		Mem:  mem,
		FDs:  &guestFDs{tid: tid, proc: proc, id: n.ID, listener: listener},
		Proc: proc,

		ProcessAccess: mem,

		Blocking: c.blocking,
		Waiting:  c.waiting,
		Pending:  c.pending,
	}
	res := s.e.Dispatch(req)
	resp := seccomp.NotifResp{ID: n.ID}
	switch res.Kind {
	case dispatch.Value:
		resp.Val = res.Val
	case dispatch.Errno:
		resp.Error = -int32(res.Err)
	case dispatch.Continue:
		resp.Flags = unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE
		s.e.TraceResult(req, 0, false) // the kernel runs it: its result is not kbox's to see
	case dispatch.Inject:
		// ADDFD then SEND, not ADDFD with SECCOMP_ADDFD_FLAG_SEND: a
		// FLAG_SEND ioctl interrupted by a signal (kbox, the guest's
		// subreaper, gets SIGCHLD whenever a guest process exits) marks the
		// notification answered without installing the descriptor, and the
		// guest's call returns 0 — a Go guest's open() intermittently
		// returned its stdin (4 of 160 stress runs). Without FLAG_SEND the
		// ioctl changes nothing until the descriptor is installed, so the
		// kernel's restart after a signal is safe. Blocking signals on the
		// receiving thread instead needs LockOSThread, which made every
		// open+close cost 2.3x (108 vs 47 us here).
		a := seccomp.NotifAddFD{ID: n.ID, SrcFD: uint32(res.FD)}
		if res.Cloexec {
			a.NewFDFlags = unix.O_CLOEXEC
		}
		fd, err := seccomp.AddFD(listener, &a)
		unix.Close(res.FD)
		if err == unix.ENOENT {
			s.e.TraceResult(req, 0, false)
			return
		}
		if err != nil {
			// The descriptor could not be installed (EMFILE in the guest...).
			resp.Error = -int32(abi.Errno(err, unix.EMFILE))
			s.e.TraceResult(req, int64(resp.Error), true)
		} else {
			resp.Val = int64(fd)
			s.e.TraceResult(req, resp.Val, true)
		}
	}
	// ENOENT: the task went away meanwhile. Nothing else to do either way.
	sent = true
	_ = seccomp.Send(listener, &resp)
	if res.After != nil {
		res.After()
	}
}
