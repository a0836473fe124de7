package unotify

import (
	"os"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// kbox's threads in the seccomp tier.
//
// Most calls are answered by one leader goroutine; a call that may wait in
// the host kernel (a FIFO open, a connect, a send on a full socket) is
// served on a goroutine of its own, and that goroutine holds an OS thread
// for as long as the host call blocks. A guest with thousands of threads
// blocked so would make the Go runtime create thousands of threads: past
// its limit (debug.SetMaxThreads) the process dies ("thread exhaustion"),
// and every thread also counts against the invoking user's RLIMIT_NPROC,
// which kbox shares with the guest's processes: when pthread_create fails,
// the Go runtime aborts. Three things keep kbox alive:
//
//  1. At most `slots` such calls wait in the host kernel at once; the
//     others wait for a slot in a parked goroutine (no thread). The leader
//     keeps answering every other call meanwhile.
//  2. The guest's RLIMIT_NPROC is set (soft and hard, in the launcher
//     child) below kbox's by a reserve that covers kbox's own threads:
//     guest processes can only bring the user's task count to
//     limit-reserve, and kbox can still create the threads it needs. The
//     kernel does not apply RLIMIT_NPROC to the real root, so there is
//     no reserve then: a root guest bounded by nothing but the kernel's
//     threads-max and pid_max can exhaust them for the whole host, kbox
//     included (docs/security.md).
//  3. debug.SetMaxThreads is set explicitly, far above what 1 and the
//     runtime's own threads can reach.

const (
	// defaultSlots is how many host calls may block at once. Each holds a
	// thread, and a blocking send also the copy of its data (up to 1 MiB,
	// dispatch's sendChunkMax): 256 bound that to 256 MiB.
	defaultSlots = 256
	// ownThreads is kbox's thread need besides the blocking calls and
	// GOMAXPROCS: the leader, the wait loop, the process reaper, the bind
	// thread, sysmon, the template thread and a margin for short syscalls
	// in flight.
	ownThreads = 32
	// maxThreads is kbox's limit on OS threads (debug.SetMaxThreads):
	// defaultSlots + ownThreads + GOMAXPROCS stays far below it.
	maxThreads = 10000
	// slotsEnv and maxThreadsEnv are test hooks: fewer slots, a lower
	// thread limit (never more than the defaults), so that a test proves
	// with a few hundred guest threads what thousands would show.
	slotsEnv      = "KBOX_TEST_BLOCKING_SLOTS"
	maxThreadsEnv = "KBOX_TEST_MAX_THREADS"
)

// threadPlan is how the seccomp tier divides the user's task budget.
type threadPlan struct {
	slots int
	// guestNproc is the guest's RLIMIT_NPROC (soft and hard); 0 leaves
	// the limit as it is.
	guestNproc uint64
}

// planThreads decides the slots and the guest's RLIMIT_NPROC from kbox's
// own limit nproc, the real uid and GOMAXPROCS; want is the number of
// slots asked for.
func planThreads(nproc unix.Rlimit, uid, procs, want int) threadPlan {
	p := threadPlan{slots: want}
	if uid == 0 || nproc.Cur == unix.RLIM_INFINITY {
		return p
	}
	own := uint64(ownThreads + procs)
	reserve := min(uint64(want)+own, nproc.Cur/2)
	if reserve > own {
		p.slots = min(want, int(reserve-own))
	} else {
		p.slots = 1
	}
	p.guestNproc = nproc.Cur - reserve
	return p
}

// wantedSlots returns defaultSlots, or the test hook's smaller number.
func wantedSlots() int { return envBelow(slotsEnv, defaultSlots) }

// threadLimit returns maxThreads, or the test hook's smaller number.
func threadLimit() int { return envBelow(maxThreadsEnv, maxThreads) }

func envBelow(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 && v < def {
		return v
	}
	return def
}

// currentPlan plans for this process.
func currentPlan() threadPlan {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NPROC, &rl) != nil {
		rl.Cur = unix.RLIM_INFINITY
	}
	return planThreads(rl, os.Getuid(), runtime.GOMAXPROCS(0), wantedSlots())
}

// slotPool is a counting semaphore that serves waiters in arrival order.
// A waiter whose call was abandoned meanwhile (the guest task was killed)
// finds out when its turn comes and passes the slot on. It is not looked
// for earlier: every seccomp ioctl walks the kernel's list of pending
// notifications, so checking thousands of waiters periodically would cost
// kbox more than the waiters do.
type slotPool struct {
	mu    sync.Mutex
	free  int
	queue []chan struct{}
}

func newSlotPool(n int) *slotPool { return &slotPool{free: n} }

// acquire takes a slot, waiting for one; ENOENT when the call turns out
// to be abandoned (pending() false) once it has one.
func (p *slotPool) acquire(pending func() bool) error {
	p.mu.Lock()
	if p.free > 0 && len(p.queue) == 0 {
		p.free--
		p.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	p.queue = append(p.queue, ch)
	p.mu.Unlock()
	<-ch
	if !pending() {
		p.release()
		return unix.ENOENT
	}
	return nil
}

// release returns a slot: to the first waiter, or to the pool.
func (p *slotPool) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) > 0 {
		ch := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		close(ch)
		return
	}
	p.free++
}
