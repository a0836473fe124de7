//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"encoding/binary"
	"math/bits"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

// The guest's signals are virtual. Its handlers, mask and alternate stack
// live here; the guest thread itself blocks every asynchronous host signal
// while the guest runs (see guest_amd64.c), so process-directed signals
// reach Go's threads, never the guest thread with the guest's FS base.
// Host signals meant for the guest (SIGINT from the terminal, SIGALRM from
// alarm) are caught with os/signal and queued here, and the guest thread is
// kicked; signals the guest sends itself are queued directly. Delivery
// happens when the guest thread leaves kbox code: a frame like the
// kernel's is built on the guest's stack and the thread resumes in the
// guest's handler; the handler's rt_sigreturn restores the interrupted
// context from that frame.

const nsig = 64

type guestAction struct {
	handler, flags, restorer, mask uint64
}

const (
	sigDfl = 0
	sigIgn = 1
)

type signalState struct {
	// caught is the channel os/signal delivers forwarded host signals on;
	// ignoredAtStart holds those kbox was started with ignored, which it
	// catches only once the guest gives them another disposition.
	caught         chan os.Signal
	ignoredAtStart map[int]bool

	mu       sync.Mutex
	actions  [nsig + 1]guestAction
	mask     uint64 // bit sig-1: blocked
	pending  uint64
	info     [nsig + 1][128]byte
	altSP    uint64
	altSize  uint64
	altFlags uint64
}

func newSignalState() *signalState { return &signalState{altFlags: abi.SSDisable} }

func sigBit(sig int) uint64 { return 1 << (sig - 1) }

// lowestSig returns the lowest signal in a non-empty set.
func lowestSig(set uint64) int { return bits.TrailingZeros64(set) + 1 }

// enterHandler applies a handler's entry to the mask (its sa_mask, and the
// signal itself unless SA_NODEFER) and SA_RESETHAND. Caller holds mu.
func (s *signalState) enterHandler(sig int, act guestAction) {
	s.mask |= act.mask
	if act.flags&abi.SANodefer == 0 {
		s.mask |= sigBit(sig)
	}
	s.mask &^= unblockable
	if act.flags&abi.SAResethand != 0 {
		s.actions[sig] = guestAction{}
	}
}

const unblockable = 1<<(unix.SIGKILL-1) | 1<<(unix.SIGSTOP-1)

// raise queues sig for the guest; info is its siginfo (nil: a kill from
// the guest itself).
func (s *signalState) raise(sig int, info []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending&sigBit(sig) != 0 && sig < 32 {
		return // standard signals do not queue
	}
	s.pending |= sigBit(sig)
	if info == nil {
		info = senderInfo(sig, siUser)
	}
	s.info[sig] = [128]byte{}
	copy(s.info[sig][:], info)
}

// senderInfo is the siginfo of a signal the guest sent itself: si_code,
// si_pid and si_uid as the kernel fills them for kill (SI_USER) or
// tkill/tgkill (SI_TKILL).
func senderInfo(sig int, code int32) []byte {
	info := make([]byte, abi.SizeofSiginfo)
	binary.LittleEndian.PutUint32(info[abi.SiginfoSigno:], uint32(sig))
	binary.LittleEndian.PutUint32(info[abi.SiginfoCode:], uint32(code))
	binary.LittleEndian.PutUint32(info[abi.SiginfoPid:], uint32(os.Getpid()))
	binary.LittleEndian.PutUint32(info[abi.SiginfoUid:], uint32(os.Getuid()))
	return info
}

// deliverable reports whether a pending signal is not blocked.
func (s *signalState) deliverable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropIgnored()
	return s.pending&^s.mask != 0
}

// dropIgnored discards pending signals whose action is to do nothing, so
// that they neither interrupt a sleeping call nor count as deliverable.
func (s *signalState) dropIgnored() {
	for p := s.pending; p != 0; p &= p - 1 {
		sig := lowestSig(p)
		a := s.actions[sig]
		if a.handler == sigIgn || (a.handler == sigDfl && defaultIgnored(sig)) {
			s.pending &^= sigBit(sig)
		}
	}
}

// restarts reports whether the next signal to be delivered has a handler
// installed with SA_RESTART (an interrupted restartable call then runs
// again once the handler returns).
func (s *signalState) restarts() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropIgnored()
	ready := s.pending &^ s.mask
	if ready == 0 {
		return false
	}
	a := s.actions[lowestSig(ready)]
	return a.handler > sigIgn && a.flags&abi.SARestart != 0
}

// defaultIgnored lists the signals whose default action is to do nothing.
func defaultIgnored(sig int) bool {
	switch syscall.Signal(sig) {
	case unix.SIGCHLD, unix.SIGURG, unix.SIGWINCH, unix.SIGCONT:
		return true
	}
	return false
}

func defaultStops(sig int) bool {
	switch syscall.Signal(sig) {
	case unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGSTOP:
		return true
	}
	return false
}

// take removes the lowest deliverable signal.
func (s *signalState) take() (int, guestAction, [128]byte, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ready := s.pending &^ s.mask
	if ready == 0 {
		return 0, guestAction{}, [128]byte{}, 0
	}
	sig := lowestSig(ready)
	s.pending &^= sigBit(sig)
	act := s.actions[sig]
	old := s.mask
	if act.handler > sigIgn {
		s.enterHandler(sig, act)
	}
	return sig, act, s.info[sig], old
}

// deliverPending runs the guest's handler for the next deliverable signal
// (or applies the default action) by rewriting uc.
func (s *signalState) deliverPending(t *tier, uc *ucontext) {
	for {
		sig, act, info, oldMask := s.take()
		if sig == 0 {
			return
		}
		switch act.handler {
		case sigIgn:
			continue
		case sigDfl:
			switch {
			case defaultIgnored(sig):
				continue
			case defaultStops(sig):
				t.stopSelf()
				continue
			}
			t.killedBy(sig)
		}
		if !t.pushFrame(uc, sig, act, info[:], oldMask) {
			t.eng.Verbosef("pid %d: cannot write the signal frame for signal %d: killed by SIGSEGV", t.pid, sig)
			t.killedBy(int(unix.SIGSEGV))
		}
		return
	}
}

// killedBy ends kbox as the guest's death by sig: status 128+sig.
func (t *tier) killedBy(sig int) {
	t.eng.Verbosef("guest killed by signal %d", sig)
	t.exit(128 + sig)
}

func sysRtSigaction(t *tier, c *call) int64 {
	sig := c.int(0)
	if sig < 1 || sig > nsig || c.args[3] != 8 {
		return -int64(unix.EINVAL)
	}
	m := memory{}
	var nb [abi.SizeofKSigaction]byte
	if c.args[1] != 0 {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			return -int64(unix.EINVAL)
		}
		if m.Read(c.args[1], nb[:]) != nil {
			return -int64(unix.EFAULT)
		}
	}
	s := t.sig
	s.mu.Lock()
	old := s.actions[sig]
	if c.args[1] != 0 {
		ka := abi.DecodeKSigaction(nb[:])
		s.actions[sig] = guestAction{handler: ka.Handler, flags: ka.Flags, restorer: ka.Restorer, mask: ka.Mask &^ unblockable}
		if s.actions[sig].handler == sigIgn {
			s.pending &^= sigBit(sig)
		} else {
			s.unignore(sig)
		}
	}
	s.mu.Unlock()
	if c.args[2] != 0 {
		var ob [abi.SizeofKSigaction]byte
		abi.KSigaction{Handler: old.handler, Flags: old.flags, Restorer: old.restorer, Mask: old.mask}.Encode(ob[:])
		if m.Write(c.args[2], ob[:]) != nil {
			return -int64(unix.EFAULT)
		}
	}
	return 0
}

func sysRtSigprocmask(t *tier, c *call) int64 {
	how := c.int(0)
	if c.args[3] != 8 {
		return -int64(unix.EINVAL)
	}
	m := memory{}
	var set uint64
	if c.args[1] != 0 {
		var b [8]byte
		if m.Read(c.args[1], b[:]) != nil {
			return -int64(unix.EFAULT)
		}
		set = binary.LittleEndian.Uint64(b[:])
	}
	s := t.sig
	s.mu.Lock()
	old := s.mask
	if c.args[1] != 0 {
		switch how {
		case unix.SIG_BLOCK:
			s.mask |= set
		case unix.SIG_UNBLOCK:
			s.mask &^= set
		case unix.SIG_SETMASK:
			s.mask = set
		default:
			s.mu.Unlock()
			return -int64(unix.EINVAL)
		}
		s.mask &^= unblockable
	}
	s.mu.Unlock()
	if c.args[2] != 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], old)
		if m.Write(c.args[2], b[:]) != nil {
			return -int64(unix.EFAULT)
		}
	}
	return 0
}

func sysRtSigpending(t *tier, c *call) int64 {
	if c.args[1] > 8 {
		return -int64(unix.EINVAL)
	}
	s := t.sig
	s.mu.Lock()
	p := s.pending & s.mask
	s.mu.Unlock()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], p)
	if (memory{}).Write(c.args[0], b[:c.args[1]]) != nil {
		return -int64(unix.EFAULT)
	}
	return 0
}

func sysSigaltstack(t *tier, c *call) int64 {
	s := t.sig
	m := memory{}
	sp := c.uc.sp()
	onAlt := s.altFlags&abi.SSDisable == 0 && sp-s.altSP < s.altSize
	if c.args[1] != 0 {
		var b [abi.SizeofStackT]byte
		flags := s.altFlags
		if onAlt {
			flags = abi.SSOnstack
		}
		abi.StackT{SP: s.altSP, Flags: uint32(flags), Size: s.altSize}.Encode(b[:])
		if m.Write(c.args[1], b[:]) != nil {
			return -int64(unix.EFAULT)
		}
	}
	if c.args[0] != 0 {
		var b [abi.SizeofStackT]byte
		if m.Read(c.args[0], b[:]) != nil {
			return -int64(unix.EFAULT)
		}
		if onAlt {
			return -int64(unix.EPERM)
		}
		st := abi.DecodeStackT(b[:])
		nsp, flags, size := st.SP, uint64(st.Flags), st.Size
		switch {
		case flags&abi.SSDisable != 0:
			s.altSP, s.altSize, s.altFlags = 0, 0, abi.SSDisable
		case flags&^uint64(abi.SSOnstack|abi.SSAutodisarm) != 0:
			return -int64(unix.EINVAL)
		case size < minSigstksz:
			return -int64(unix.ENOMEM)
		default:
			s.altSP, s.altSize, s.altFlags = nsp, size, 0
		}
	}
	return 0
}

// sysSigsuspend waits, with the guest's mask temporarily replaced, until
// a signal is deliverable; the handler then runs with the old mask to
// restore on its return.
func sysRtSigsuspend(t *tier, c *call) int64 {
	if c.args[1] != 8 {
		return -int64(unix.EINVAL)
	}
	var b [8]byte
	if (memory{}).Read(c.args[0], b[:]) != nil {
		return -int64(unix.EFAULT)
	}
	s := t.sig
	s.mu.Lock()
	saved := s.mask
	s.mask = binary.LittleEndian.Uint64(b[:]) &^ unblockable
	s.mu.Unlock()
	for !s.deliverable() {
		hostPause()
	}
	// Deliver now, with the frame remembering the pre-suspend mask.
	sig, act, info, _ := s.take()
	s.mu.Lock()
	if act.handler <= sigIgn {
		s.mask = saved
	}
	s.mu.Unlock()
	c.uc.setResult(-int64(unix.EINTR))
	c.keepRegs = true
	switch {
	case sig == 0 || act.handler == sigIgn || (act.handler == sigDfl && defaultIgnored(sig)):
	case act.handler == sigDfl && defaultStops(sig):
		t.stopSelf()
	case act.handler == sigDfl:
		t.killedBy(sig)
	default:
		if !t.pushFrame(c.uc, sig, act, info[:], saved) {
			t.killedBy(int(unix.SIGSEGV))
		}
	}
	return 0
}

func sysPause(t *tier, c *call) int64 {
	for !t.sig.deliverable() {
		hostPause()
	}
	return -int64(unix.EINTR)
}

// sysRtSigtimedwait takes a pending signal from set, waiting up to the
// timeout for one.
func sysRtSigtimedwait(t *tier, c *call) int64 {
	if c.args[3] != 8 {
		return -int64(unix.EINVAL)
	}
	m := memory{}
	var b [8]byte
	if m.Read(c.args[0], b[:]) != nil {
		return -int64(unix.EFAULT)
	}
	set := binary.LittleEndian.Uint64(b[:]) &^ unblockable
	var deadline *unix.Timespec
	if c.args[2] != 0 {
		var ts unix.Timespec
		if m.Read(c.args[2], bytesAt(&ts)) != nil {
			return -int64(unix.EFAULT)
		}
		var now unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
		end := unix.NsecToTimespec(now.Nano() + ts.Nano())
		deadline = &end
	}
	s := t.sig
	for {
		s.mu.Lock()
		ready := s.pending & set
		if ready != 0 {
			sig := lowestSig(ready)
			s.pending &^= sigBit(sig)
			info := s.info[sig]
			s.mu.Unlock()
			if c.args[1] != 0 && m.Write(c.args[1], info[:]) != nil {
				return -int64(unix.EFAULT)
			}
			return int64(sig)
		}
		other := s.pending &^ s.mask &^ set
		s.mu.Unlock()
		if other != 0 {
			return -int64(unix.EINTR)
		}
		a := [6]uint64{}
		if deadline != nil {
			a = [6]uint64{unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, addrOf(bytesAt(deadline)), 0}
			r := blockingSyscall(unix.SYS_CLOCK_NANOSLEEP, a)
			if r == 0 {
				s.mu.Lock()
				hit := s.pending&set != 0
				s.mu.Unlock()
				if !hit {
					return -int64(unix.EAGAIN)
				}
			}
		} else {
			hostPause()
		}
	}
}

// sysKill serves kill, tkill, tgkill and the sigqueue calls: a signal to
// the guest itself is queued here; anything else goes to the engine, which
// confines it to guest processes (there are no others in this tier).
func sysKill(name string) rule {
	return func(t *tier, c *call) int64 { return kill(t, c, name) }
}

func kill(t *tier, c *call, name string) int64 {
	var target, sig int
	switch name {
	case "kill", "tkill", "rt_sigqueueinfo":
		target, sig = c.int(0), c.int(1)
		// kill(-1) signals every process but the caller: here, none
		// (the engine answers ESRCH).
		if name == "kill" && (target == 0 || target == -t.pid) {
			target = t.pid
		}
	case "tgkill", "rt_tgsigqueueinfo":
		if c.int(0) != t.pid {
			return t.viaEngine(c)
		}
		target, sig = c.int(1), c.int(2)
	}
	if target != t.pid {
		return t.viaEngine(c)
	}
	if sig < 0 || sig > nsig {
		return -int64(unix.EINVAL)
	}
	if sig == 0 {
		return 0
	}
	if sig == int(unix.SIGKILL) {
		t.killedBy(sig)
	}
	if sig == int(unix.SIGSTOP) {
		t.stopSelf()
		return 0
	}
	var info []byte
	if name == "rt_sigqueueinfo" || name == "rt_tgsigqueueinfo" {
		info = make([]byte, 128)
		addr := c.args[2]
		if name == "rt_tgsigqueueinfo" {
			addr = c.args[3]
		}
		if (memory{}).Read(addr, info) != nil {
			return -int64(unix.EFAULT)
		}
	}
	if info == nil && name != "kill" {
		info = senderInfo(sig, siTkill)
	}
	t.sig.raise(sig, info)
	return 0
}

// si_code values of signals sent by kill (SI_USER) and tkill/tgkill
// (SI_TKILL).
const (
	siUser  int32 = 0
	siTkill int32 = -6
)

func init() {
	own(sysRtSigaction, "rt_sigaction")
	own(sysRtSigprocmask, "rt_sigprocmask")
	own(sysRtSigreturn, "rt_sigreturn")
	own(sysRtSigpending, "rt_sigpending")
	own(sysRtSigsuspend, "rt_sigsuspend")
	own(sysRtSigtimedwait, "rt_sigtimedwait")
	own(sysSigaltstack, "sigaltstack")
	own(sysPause, "pause")
	ownNamed(sysKill, "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")
}

// forwarded are the host signals kbox catches for the guest.
// The synchronous ones (SIGABRT, SIGSEGV, ...) arrive here only when sent
// with kill: a fault of the guest is handled by the fault path, one of
// kbox's own is Go's to report. SIGSYS (the traps) and kickSignal are
// never caught.
var forwarded = []os.Signal{unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGHUP, unix.SIGALRM,
	unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH, unix.SIGVTALRM, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU,
	unix.SIGCONT, unix.SIGPIPE, unix.SIGXCPU, unix.SIGXFSZ, unix.SIGPWR, unix.SIGIO,
	unix.SIGABRT, unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGTRAP}

// catch starts catching the forwarded host signals. A signal kbox was
// started with ignored (nohup) stays ignored, and the guest starts with it
// ignored, as execve would leave it.
func (s *signalState) catch() chan os.Signal {
	ch := make(chan os.Signal, 16)
	s.caught, s.ignoredAtStart = ch, map[int]bool{}
	for _, sg := range forwarded {
		if signal.Ignored(sg) {
			sig := int(sg.(syscall.Signal))
			s.actions[sig].handler = sigIgn
			s.ignoredAtStart[sig] = true
			continue
		}
		signal.Notify(ch, sg)
	}
	return ch
}

// unignore starts catching sig on the host when the guest gives a signal
// kbox was started with ignored a handler or its default action (as the
// kernel would then deliver it). Caller holds mu.
func (s *signalState) unignore(sig int) {
	if s.ignoredAtStart[sig] && s.caught != nil {
		delete(s.ignoredAtStart, sig)
		signal.Notify(s.caught, syscall.Signal(sig))
	}
}

// forward queues host signals for the guest and kicks its thread; it runs
// on the goroutine that started the guest, for the rest of the run.
//
// catch must have been called before the guest starts: until Notify, Go's
// default action (death) applies to SIGINT and the like.
func (s *signalState) forward(t *tier, ch chan os.Signal) {
	for sg := range ch {
		sig := int(sg.(syscall.Signal))
		s.mu.Lock()
		act := s.actions[sig]
		s.mu.Unlock()
		switch {
		case act.handler == sigIgn:
			continue
		case act.handler == sigDfl && defaultIgnored(sig):
			continue
		case act.handler == sigDfl && defaultStops(sig):
			signal.Reset(sg)
			unix.Kill(t.pid, unix.SIGSTOP)
			signal.Notify(ch, sg)
			continue
		case act.handler == sigDfl:
			t.killedBy(sig)
		}
		s.raise(sig, nil)
		unix.Tgkill(t.pid, t.tid, kickSignal)
	}
}

// fault handles a synchronous signal raised by guest code: the guest's
// handler runs if it has one (and has not blocked the signal), otherwise
// the guest dies of it.
func (t *tier) fault(uc *ucontext, sig int, info []byte) {
	s := t.sig
	s.mu.Lock()
	act := s.actions[sig]
	blocked := s.mask&sigBit(sig) != 0
	s.mu.Unlock()
	if act.handler <= sigIgn || blocked {
		t.eng.Verbosef("guest fault: signal %d at %#x (address %#x)", sig, uc.pc(), binary.LittleEndian.Uint64(info[abi.SiginfoFaultIP:]))
		t.killedBy(sig)
	}
	s.mu.Lock()
	old := s.mask
	s.enterHandler(sig, act)
	s.mu.Unlock()
	if !t.pushFrame(uc, sig, act, info, old) {
		t.killedBy(sig)
	}
	t.sig.deliverPending(t, uc)
}

// stopSelf stops kbox (the guest's default action for a stop signal). It
// is sent from another thread: the guest thread's Landlock domain may not
// signal outside itself (signal scoping), and kbox's process is outside.
func (t *tier) stopSelf() {
	done := make(chan struct{})
	go func() {
		unix.Kill(t.pid, unix.SIGSTOP)
		close(done)
	}()
	<-done
}
