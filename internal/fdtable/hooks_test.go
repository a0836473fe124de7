package fdtable

import (
	"fmt"
	"math/bits"
	"sync"
)

// rawSetSlotForTest writes an entry straight into the slot arrays, bypassing
// setHost: the kind of write the single-setter rule forbids. It exists only
// to show that such a write is invisible to FindByHost and to the reference
// counts, by design. Caller must not Close the slot afterwards (its host
// was never counted).
func (t *Table) rawSetSlotForTest(g, host int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := slot{host: int32(host), kind: KindFile, path: "/raw"}
	if g < FlatSize {
		if g >= len(t.slots) {
			t.slots = growTo(t.slots, g)
		}
		t.slots[g] = s
		t.used[g>>6] |= 1 << (g & 63)
	} else {
		t.over[g] = s
	}
	t.n++
}

// verify checks every invariant the table relies on, returning the first
// violation.
func (t *Table) verify() error {
	t.mu.RLock()
	defer t.mu.RUnlock()

	holders := map[int][]int{}
	n := 0
	for w := range t.used {
		full := t.full[w>>6]&(1<<(w&63)) != 0
		if full != (t.used[w] == allOnes) {
			return fmt.Errorf("summary bit of word %d is %v, word is %#x", w, full, t.used[w])
		}
		for b := t.used[w]; b != 0; b &= b - 1 {
			g := w<<6 | bits.TrailingZeros64(b)
			if g >= len(t.slots) {
				return fmt.Errorf("guest %d used but slots has length %d", g, len(t.slots))
			}
			holders[int(t.slots[g].host)] = append(holders[int(t.slots[g].host)], g)
			n++
		}
	}
	for g, s := range t.over {
		if g < FlatSize {
			return fmt.Errorf("guest %d in the overflow map", g)
		}
		holders[int(s.host)] = append(holders[int(s.host)], g)
		n++
	}
	// The allocation hint: no number below next is free.
	for g := 0; g < t.next && g < FlatSize; {
		if g&63 == 0 && g+64 <= t.next && t.used[g>>6] == allOnes {
			g += 64
			continue
		}
		if !t.isUsed(g) {
			return fmt.Errorf("guest %d free below the hint %d", g, t.next)
		}
		g++
	}
	for g := FlatSize; g < t.next; g++ {
		if _, ok := t.over[g]; !ok {
			return fmt.Errorf("guest %d free below the hint %d", g, t.next)
		}
	}
	if n != t.n {
		return fmt.Errorf("count %d, %d guest numbers in use", t.n, n)
	}
	for h, gs := range holders {
		r := t.hostRecOf(h)
		if int(r.refs) != len(gs) {
			return fmt.Errorf("host %d: refs %d, held by %v", h, r.refs, gs)
		}
		switch {
		case r.holder == revNone:
			return fmt.Errorf("host %d held by %v but its record is NONE", h, gs)
		case r.holder > 0:
			if len(gs) != 1 || gs[0] != int(r.holder-1) {
				return fmt.Errorf("host %d: single holder %d, held by %v", h, r.holder-1, gs)
			}
		}
	}
	check := func(h int, r hostRec) error {
		if len(holders[h]) == 0 && (r.refs != 0 || r.holder != revNone) {
			return fmt.Errorf("host %d held by nobody, record %+v", h, r)
		}
		return nil
	}
	for h, r := range t.hosts {
		if err := check(h, r); err != nil {
			return err
		}
	}
	for h, r := range t.hostsOver {
		if h < FlatSize {
			return fmt.Errorf("host %d in the overflow map", h)
		}
		if r.refs == 0 {
			return fmt.Errorf("host %d: zero record kept in the overflow map", h)
		}
		if err := check(h, r); err != nil {
			return err
		}
	}
	return nil
}

// verifyFreeSlots checks that every free flat slot is zeroed (so a closed
// number keeps no path alive). Separate from verify because it reads the
// whole slot slice.
func (t *Table) verifyFreeSlots() error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for g := range t.slots {
		if !t.isUsed(g) && t.slots[g] != (slot{}) {
			return fmt.Errorf("free guest %d has a non-zero slot %+v", g, t.slots[g])
		}
	}
	return nil
}

// closeCounter is an injectable closer that records closes instead of
// closing anything. A close of a descriptor it was not told is open is an
// error (a double close).
type closeCounter struct {
	mu     sync.Mutex
	counts map[int]int
	live   map[int]bool // nil: any descriptor may be closed once
	bad    []string
}

func newCloseCounter() *closeCounter { return &closeCounter{counts: map[int]int{}} }

func (c *closeCounter) close(fd int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[fd]++
	if c.live != nil {
		if !c.live[fd] {
			c.bad = append(c.bad, fmt.Sprintf("close of %d, not open", fd))
		}
		delete(c.live, fd)
	} else if c.counts[fd] > 1 {
		c.bad = append(c.bad, fmt.Sprintf("close of %d number %d", fd, c.counts[fd]))
	}
	return nil
}

func (c *closeCounter) count(fd int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[fd]
}

func (c *closeCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.counts {
		n += v
	}
	return n
}
