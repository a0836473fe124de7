package unotify

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestPlanThreads(t *testing.T) {
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	for _, c := range []struct {
		name      string
		rl        unix.Rlimit
		uid       int
		wantSlots int
		wantGuest uint64
	}{
		{"unlimited", inf, 1000, defaultSlots, 0},
		{"root: the kernel does not apply RLIMIT_NPROC", unix.Rlimit{Cur: 100, Max: 100}, 0, defaultSlots, 0},
		// A usual limit: the reserve is the slots plus kbox's own.
		{"63k", unix.Rlimit{Cur: 63000, Max: 63000}, 1000, defaultSlots, 63000 - (defaultSlots + ownThreads + 2)},
		// A small one: half for kbox, and fewer slots.
		{"400", unix.Rlimit{Cur: 400, Max: 1000}, 1000, 200 - ownThreads - 2, 200},
		{"tiny", unix.Rlimit{Cur: 40, Max: 40}, 1000, 1, 20},
	} {
		p := planThreads(c.rl, c.uid, 2, defaultSlots)
		if p.slots != c.wantSlots || p.guestNproc != c.wantGuest {
			t.Errorf("%s: slots %d guest %d, want %d %d", c.name, p.slots, p.guestNproc, c.wantSlots, c.wantGuest)
		}
		if c.rl.Cur != unix.RLIM_INFINITY && c.uid != 0 {
			// Whatever the guest does, kbox keeps room for its
			// threads (unless the limit is too small for kbox itself).
			if need := uint64(p.slots + ownThreads + 2); c.rl.Cur-p.guestNproc < need && p.slots > 1 {
				t.Errorf("%s: guest limit %d leaves no room for %d threads under %d", c.name, p.guestNproc, need, c.rl.Cur)
			}
		}
	}
}

// TestSlotPool: never more holders than slots, waiters served in arrival
// order, an abandoned waiter leaves the queue.
func TestSlotPool(t *testing.T) {
	p := newSlotPool(3)
	always := func() bool { return true }
	var held, maxHeld atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.acquire(always); err != nil {
				t.Error(err)
				return
			}
			n := held.Add(1)
			for {
				m := maxHeld.Load()
				if n <= m || maxHeld.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			held.Add(-1)
			p.release()
		}()
	}
	wg.Wait()
	if m := maxHeld.Load(); m != 3 {
		t.Errorf("at most %d slots held at once, want 3", m)
	}

	// Order: with the only slot taken, waiters get it first come first
	// served.
	p = newSlotPool(1)
	if err := p.acquire(always); err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 3)
	for i := 0; i < 3; i++ {
		// p is passed: the last waiter releases after the test has
		// read its number and moved on to a new pool.
		go func(p *slotPool) {
			if p.acquire(always) == nil {
				order <- i
				p.release()
			}
		}(p)
		waitQueue(p, i+1)
	}
	p.release()
	for i := 0; i < 3; i++ {
		if got := <-order; got != i {
			t.Fatalf("waiter %d served %dth", got, i)
		}
	}

	// An abandoned waiter gives up with ENOENT when its turn comes and
	// passes the slot on.
	p = newSlotPool(1)
	if err := p.acquire(always); err != nil {
		t.Fatal(err)
	}
	var gone atomic.Bool
	done := make(chan error)
	go func() { done <- p.acquire(func() bool { return !gone.Load() }) }()
	next := make(chan error)
	waitQueue(p, 1)
	go func() { next <- p.acquire(always) }()
	waitQueue(p, 2)
	gone.Store(true)
	p.release()
	if err := <-done; err != unix.ENOENT {
		t.Errorf("abandoned waiter: %v, want ENOENT", err)
	}
	if err := <-next; err != nil {
		t.Errorf("the waiter after the abandoned one: %v", err)
	}
}

// waitQueue waits until n calls wait for a slot of p.
func waitQueue(p *slotPool, n int) {
	for {
		p.mu.Lock()
		k := len(p.queue)
		p.mu.Unlock()
		if k == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestParseSyscallSP: the stack pointer of /proc/<tid>/syscall, and the
// transient "running" a thread shows before it sleeps in the notification.
func TestParseSyscallSP(t *testing.T) {
	for _, c := range []struct {
		in          string
		sp          uint64
		running, ok bool
	}{
		{"59 0x7ffd1000 0x7ffd2000 0x7ffd3000 0x0 0x0 0x0 0x7ffc0000 0x7f0012345678\n", 0x7ffc0000, false, true},
		{"running\n", 0, true, false},
		{"-1 0x7ffc0000 0x7f0012345678\n", 0, false, false}, // blocked, not in a syscall
		{"59 0x1 0x2 0x3 0x4 0x5 0x6 zz 0x7\n", 0, false, false},
	} {
		sp, running, ok := parseSyscallSP(c.in)
		if sp != c.sp || running != c.running || ok != c.ok {
			t.Errorf("parseSyscallSP(%q) = %#x, %v, %v; want %#x, %v, %v", c.in, sp, running, ok, c.sp, c.running, c.ok)
		}
	}
}
