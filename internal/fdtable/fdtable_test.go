package fdtable

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func newTest(t *testing.T, limit int) (*Table, *closeCounter) {
	t.Helper()
	c := newCloseCounter()
	tb := New(limit, c.close)
	t.Cleanup(func() {
		if err := tb.verify(); err != nil {
			t.Errorf("invariants at end: %v", err)
		}
		if err := tb.verifyFreeSlots(); err != nil {
			t.Errorf("at end: %v", err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range c.bad {
			t.Errorf("closer: %s", s)
		}
	})
	return tb, c
}

func mustOpen(t *testing.T, tb *Table, host int, cloexec bool) int {
	t.Helper()
	g, err := tb.Open(host, KindFile, "/f", cloexec)
	if err != nil {
		t.Fatalf("Open(%d): %v", host, err)
	}
	return g
}

func mustVerify(t *testing.T, tb *Table) {
	t.Helper()
	if err := tb.verify(); err != nil {
		t.Fatal(err)
	}
	if err := tb.verifyFreeSlots(); err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func TestEntrySizes(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes stated for 64-bit platforms")
	}
	if s := unsafe.Sizeof(slot{}); s != 24 {
		t.Errorf("slot is %d bytes, docs say 24", s)
	}
	if s := unsafe.Sizeof(hostRec{}); s != 8 {
		t.Errorf("hostRec is %d bytes, docs say 8", s)
	}
	var tb Table
	if s := unsafe.Sizeof(tb.used) + unsafe.Sizeof(tb.full); s != 8192+128 {
		t.Errorf("bitmaps are %d bytes, docs say 8320", s)
	}
}

func TestOpenGetClose(t *testing.T) {
	tb, c := newTest(t, 0)
	g, err := tb.Open(10, KindDir, "/etc", true)
	if err != nil || g != 0 {
		t.Fatalf("Open = %d, %v; want 0", g, err)
	}
	e, ok := tb.Get(0)
	want := Entry{HostFD: 10, Cloexec: true, Kind: KindDir, Path: "/etc"}
	if !ok || e != want {
		t.Fatalf("Get(0) = %+v, %v; want %+v", e, ok, want)
	}
	if tb.Len() != 1 {
		t.Fatalf("Len = %d", tb.Len())
	}
	closed, err := tb.Close(0)
	if !closed || err != nil || c.count(10) != 1 {
		t.Fatalf("Close(0) = %v, %v; closes of 10: %d", closed, err, c.count(10))
	}
	if _, ok := tb.Get(0); ok {
		t.Fatal("Get after Close found the entry")
	}
	if _, ok := tb.FindByHost(10); ok {
		t.Fatal("FindByHost after Close found a holder")
	}
}

func TestBadNumbers(t *testing.T) {
	tb, c := newTest(t, 0)
	mustOpen(t, tb, 5, false)
	for _, fd := range []int{-1, 1, 1000, FlatSize, FlatSize + 1, 1 << 40} {
		if _, ok := tb.Get(fd); ok {
			t.Errorf("Get(%d) found an entry", fd)
		}
		_, err := tb.Close(fd)
		wantErr(t, "Close", err, unix.EBADF)
		_, err = tb.Dup(fd)
		wantErr(t, "Dup", err, unix.EBADF)
		_, err = tb.DupFrom(fd, 0, false)
		wantErr(t, "DupFrom", err, unix.EBADF)
		_, err = tb.Dup2(fd, fd)
		wantErr(t, "Dup2 same", err, unix.EBADF)
		_, err = tb.Dup2(fd, 3)
		wantErr(t, "Dup2", err, unix.EBADF)
		wantErr(t, "SetCloexec", tb.SetCloexec(fd, true), unix.EBADF)
		_, err = tb.Cloexec(fd)
		wantErr(t, "Cloexec", err, unix.EBADF)
	}
	_, err := tb.Open(-1, KindFile, "", false)
	wantErr(t, "Open(-1)", err, unix.EBADF)
	for _, h := range []int{-1, 0, 4, 6, FlatSize, 1 << 40} {
		if g, ok := tb.FindByHost(h); ok {
			t.Errorf("FindByHost(%d) = %d", h, g)
		}
	}
	if c.total() != 0 {
		t.Fatalf("%d closes, want none", c.total())
	}
	wantErr(t, "SetLimit(-1)", tb.SetLimit(-1), unix.EINVAL)
	wantErr(t, "SetLimit(huge)", tb.SetLimit(MaxLimit+1), unix.EINVAL)
}

func TestCloserError(t *testing.T) {
	boom := errors.New("boom")
	tb := New(0, func(int) error { return boom })
	g, _ := tb.Open(3, KindFile, "", false)
	closed, err := tb.Close(g)
	if !closed || err != boom {
		t.Fatalf("Close = %v, %v; want true, boom", closed, err)
	}
	if _, ok := tb.Get(g); ok {
		t.Fatal("guest number kept after a failed host close")
	}
}

func TestLowestFreeAfterClosesInTheMiddle(t *testing.T) {
	tb, _ := newTest(t, 10000)
	for i := range 5000 {
		if g := mustOpen(t, tb, 100+i, false); g != i {
			t.Fatalf("open %d got %d", i, g)
		}
	}
	// Holes in the first word, in a later word, across the first summary
	// word (4096 numbers).
	holes := []int{4500, 3, 4095, 700, 64, 63}
	for _, g := range holes {
		if _, err := tb.Close(g); err != nil {
			t.Fatal(err)
		}
	}
	mustVerify(t, tb)
	for _, want := range []int{3, 63, 64, 700, 4095, 4500, 5000, 5001} {
		if g := mustOpen(t, tb, 20000+want, false); g != want {
			t.Fatalf("open got %d, want %d", g, want)
		}
	}
	mustVerify(t, tb)
}

// TestLowestFreeFlatAgainstNaive fills the bitmap at random densities and
// compares the two-level search with a linear one from random starts.
func TestLowestFreeFlatAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		tb := New(FlatSize, func(int) error { return nil })
		density := r.Float64()
		if round%4 == 0 {
			density = 1 - density/1000 // nearly full
		}
		for w := range tb.used {
			for b := range 64 {
				if r.Float64() < density {
					tb.used[w] |= 1 << b
				}
			}
			if tb.used[w] == allOnes {
				tb.full[w>>6] |= 1 << (w & 63)
			}
		}
		for range 50 {
			from := r.IntN(FlatSize)
			want := -1
			for g := from; g < FlatSize; g++ {
				if !tb.isUsed(g) {
					want = g
					break
				}
			}
			if got := tb.lowestFreeFlat(from); got != want {
				t.Fatalf("round %d from %d: got %d want %d", round, from, got, want)
			}
		}
	}
}

func TestDuplicateHolders(t *testing.T) {
	tb, c := newTest(t, 0)
	a := mustOpen(t, tb, 40, false)
	if g, ok := tb.FindByHost(40); !ok || g != a {
		t.Fatalf("FindByHost single = %d, %v", g, ok)
	}
	b, err := tb.Dup(a)
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, tb)
	// Either holder is a valid answer.
	if g, ok := tb.FindByHost(40); !ok || (g != a && g != b) {
		t.Fatalf("FindByHost with holders %d, %d = %d, %v", a, b, g, ok)
	}
	if r := tb.hostRecOf(40); r.holder != revMulti || r.refs != 2 {
		t.Fatalf("record %+v, want MULTI with 2 refs", r)
	}
	// A third holder far away, then drop the first two.
	far, err := tb.Dup2(a, 900)
	if err != nil || far != 900 {
		t.Fatal(far, err)
	}
	for _, g := range []int{a, b} {
		if closed, err := tb.Close(g); closed || err != nil {
			t.Fatalf("Close(%d) = %v, %v; host closed with a holder left", g, closed, err)
		}
		mustVerify(t, tb)
	}
	// One holder left; the record is still MULTI until a lookup scans.
	if g, ok := tb.FindByHost(40); !ok || g != far {
		t.Fatalf("FindByHost = %d, %v; want %d", g, ok, far)
	}
	if r := tb.hostRecOf(40); r.holder != int32(far)+1 || r.refs != 1 {
		t.Fatalf("record %+v after scan, want single holder %d", r, far)
	}
	if closed, _ := tb.Close(far); !closed || c.count(40) != 1 {
		t.Fatalf("last Close closed=%v, closes %d", closed, c.count(40))
	}
	if _, ok := tb.FindByHost(40); ok {
		t.Fatal("found after the last holder went")
	}
	mustVerify(t, tb)
}

// TestSetterInvariant shows, through a test-only hook, that a write to the
// slot arrays which bypasses setHost is not findable by FindByHost: a NONE
// record is authoritative and never double-checked by a scan. This is by
// design; the only protection is that setHost is the single setter.
func TestSetterInvariant(t *testing.T) {
	tb, c := newTest(t, 0)
	a := mustOpen(t, tb, 50, false)

	tb.rawSetSlotForTest(7, 60) // a host descriptor the table never saw
	tb.rawSetSlotForTest(8, 50) // a second, uncounted holder of 50

	if e, ok := tb.Get(7); !ok || e.HostFD != 60 {
		t.Fatalf("Get(7) = %+v, %v: the raw write is in the entry array", e, ok)
	}
	if g, ok := tb.FindByHost(60); ok {
		t.Fatalf("FindByHost(60) = %d: a raw write must not be findable", g)
	}
	if g, ok := tb.FindByHost(50); !ok || g != a {
		t.Fatalf("FindByHost(50) = %d, %v: want only the setter's holder %d", g, ok, a)
	}
	if r := tb.hostRecOf(50); r.refs != 1 {
		t.Fatalf("raw write was counted: %+v", r)
	}
	if err := tb.verify(); err == nil {
		t.Fatal("verify accepted a table with writes that bypassed setHost")
	}
	// The same two assignments through the setter are findable and counted.
	tb2, _ := newTest(t, 0)
	a2 := mustOpen(t, tb2, 50, false)
	if _, err := tb2.Dup2(a2, 8); err != nil {
		t.Fatal(err)
	}
	g60 := mustOpen(t, tb2, 60, false)
	if g, ok := tb2.FindByHost(60); !ok || g != g60 {
		t.Fatalf("FindByHost(60) through the setter = %d, %v", g, ok)
	}
	if r := tb2.hostRecOf(50); r.refs != 2 || r.holder != revMulti {
		t.Fatalf("record %+v, want MULTI with 2 refs", r)
	}
	// Undo the raw writes so the cleanup's invariant check passes.
	tb.mu.Lock()
	tb.slots[7], tb.slots[8] = slot{}, slot{}
	tb.used[0] &^= 1<<7 | 1<<8
	tb.n -= 2
	tb.mu.Unlock()
	if c.total() != 0 {
		t.Fatal("closes happened")
	}
}

func TestRefcountsThroughDupCloseExec(t *testing.T) {
	tb, c := newTest(t, 0)
	a := mustOpen(t, tb, 70, false)
	b, _ := tb.Dup(a)
	d, _ := tb.DupFrom(a, 20, true) // F_DUPFD_CLOEXEC
	e, _ := tb.Dup3(a, 30, unix.O_CLOEXEC)
	if d != 20 || e != 30 {
		t.Fatalf("DupFrom=%d Dup3=%d", d, e)
	}
	for fd, want := range map[int]bool{a: false, b: false, d: true, e: true} {
		if got, err := tb.Cloexec(fd); err != nil || got != want {
			t.Fatalf("Cloexec(%d) = %v, %v; want %v", fd, got, err, want)
		}
	}
	if closed, _ := tb.Close(a); closed {
		t.Fatal("closed with three holders left")
	}
	if n := tb.Exec(); n != 0 {
		t.Fatalf("Exec closed %d host descriptors, b still holds 70", n)
	}
	if _, ok := tb.Get(d); ok {
		t.Fatal("cloexec duplicate survived Exec")
	}
	if c.count(70) != 0 {
		t.Fatal("host closed early")
	}
	if err := tb.SetCloexec(b, true); err != nil {
		t.Fatal(err)
	}
	if n := tb.Exec(); n != 1 || c.count(70) != 1 {
		t.Fatalf("Exec closed %d, closes of 70: %d; want 1, 1", n, c.count(70))
	}
	if tb.Len() != 0 {
		t.Fatalf("Len = %d after Exec", tb.Len())
	}
}

func TestEMFILEAtLimit(t *testing.T) {
	tb, c := newTest(t, 4)
	for i := range 4 {
		mustOpen(t, tb, 100+i, false)
	}
	_, err := tb.Open(200, KindFile, "", false)
	wantErr(t, "Open at limit", err, unix.EMFILE)
	if c.count(200) != 0 {
		t.Fatal("a failed Open closed the caller's descriptor")
	}
	_, err = tb.Dup(0)
	wantErr(t, "Dup at limit", err, unix.EMFILE)
	_, err = tb.DupFrom(0, 2, false)
	wantErr(t, "DupFrom at limit", err, unix.EMFILE)
	_, err = tb.DupFrom(0, 4, false)
	wantErr(t, "DupFrom min=limit", err, unix.EINVAL)
	_, err = tb.DupFrom(0, -1, false)
	wantErr(t, "DupFrom min<0", err, unix.EINVAL)
	_, err = tb.Dup2(0, 4)
	wantErr(t, "Dup2 newfd=limit", err, unix.EBADF)
	_, err = tb.Dup2(0, -1)
	wantErr(t, "Dup2 newfd<0", err, unix.EBADF)
	// Dup2 onto an open number below the limit works when full.
	if g, err := tb.Dup2(0, 3); err != nil || g != 3 || c.count(103) != 1 {
		t.Fatalf("Dup2(0,3) = %d, %v; closes of 103: %d", g, err, c.count(103))
	}
	tb.Close(2)
	if g := mustOpen(t, tb, 300, false); g != 2 {
		t.Fatalf("open after close got %d", g)
	}
	// Lowering the limit keeps open numbers, refuses new ones.
	if err := tb.SetLimit(2); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.Get(3); !ok {
		t.Fatal("lowering the limit closed a descriptor")
	}
	tb.Close(3)
	_, err = tb.Open(301, KindFile, "", false)
	wantErr(t, "Open over lowered limit", err, unix.EMFILE)
	if tb.Limit() != 2 {
		t.Fatal(tb.Limit())
	}
	// Limit 0: nothing can be opened.
	tb0, _ := newTest(t, 1)
	tb0.SetLimit(0)
	_, err = tb0.Open(1, KindFile, "", false)
	wantErr(t, "Open with limit 0", err, unix.EMFILE)
}

func TestDup2OverOpen(t *testing.T) {
	tb, c := newTest(t, 0)
	a := mustOpen(t, tb, 10, true)
	b := mustOpen(t, tb, 11, true)

	// dup2(x, x) returns x, changes nothing (not even cloexec).
	if g, err := tb.Dup2(a, a); err != nil || g != a {
		t.Fatalf("Dup2(a,a) = %d, %v", g, err)
	}
	if ce, _ := tb.Cloexec(a); !ce {
		t.Fatal("Dup2(a,a) cleared cloexec")
	}
	_, err := tb.Dup3(a, a, 0)
	wantErr(t, "Dup3(a,a)", err, unix.EINVAL)
	_, err = tb.Dup3(a, 5, unix.O_NONBLOCK)
	wantErr(t, "Dup3 bad flags", err, unix.EINVAL)

	// Replacing b closes host 11, its only holder.
	if g, err := tb.Dup2(a, b); err != nil || g != b {
		t.Fatalf("Dup2(a,b) = %d, %v", g, err)
	}
	if c.count(11) != 1 {
		t.Fatalf("closes of 11: %d", c.count(11))
	}
	e, _ := tb.Get(b)
	if e.HostFD != 10 || e.Cloexec || e.Path != "/f" {
		t.Fatalf("Get(b) = %+v: want host 10, cloexec clear, path copied", e)
	}

	// Replacing a number whose host has another holder closes nothing.
	x := mustOpen(t, tb, 12, false)
	y, _ := tb.Dup(x)
	if _, err := tb.Dup2(a, y); err != nil || c.count(12) != 0 {
		t.Fatalf("Dup2 over a shared host: %v, closes of 12: %d", err, c.count(12))
	}
	if closed, _ := tb.Close(x); !closed || c.count(12) != 1 {
		t.Fatal("host 12 not closed with its last holder")
	}

	// Replacing a number that already holds the same host closes nothing.
	if _, err := tb.Dup2(a, b); err != nil || c.count(10) != 0 {
		t.Fatalf("Dup2 onto a duplicate of itself: %v, closes of 10: %d", err, c.count(10))
	}

	// Dup3 with O_CLOEXEC over an open number.
	z := mustOpen(t, tb, 13, false)
	if _, err := tb.Dup3(a, z, unix.O_CLOEXEC); err != nil || c.count(13) != 1 {
		t.Fatalf("Dup3 over open: %v, closes of 13: %d", err, c.count(13))
	}
	if ce, _ := tb.Cloexec(z); !ce {
		t.Fatal("Dup3 O_CLOEXEC did not set cloexec")
	}
	mustVerify(t, tb)
	if n := tb.CloseAll(); n != 1 || c.count(10) != 1 {
		t.Fatalf("CloseAll closed %d; closes of 10: %d", n, c.count(10))
	}
}

func TestExecMixedCloexec(t *testing.T) {
	tb, c := newTest(t, 0)
	keep := map[int]int{}  // guest → host expected after exec
	gone := map[int]bool{} // hosts expected closed
	for i := range 300 {
		host := 1000 + i
		ce := i%3 == 0
		g := mustOpen(t, tb, host, ce)
		switch i % 5 {
		case 1: // a cloexec duplicate of a kept number: host survives
			if _, err := tb.DupFrom(g, 0, true); err != nil {
				t.Fatal(err)
			}
		case 2: // a kept duplicate of a cloexec number: host survives
			d, err := tb.Dup(g)
			if err != nil {
				t.Fatal(err)
			}
			keep[d] = host
		}
		if !ce {
			keep[g] = host
		} else if i%5 != 2 {
			gone[host] = true
		}
	}
	// Some in the overflow range too.
	if err := tb.SetLimit(FlatSize + 10); err != nil {
		t.Fatal(err)
	}
	g1 := mustOpen(t, tb, 5000, false)
	if _, err := tb.Dup3(g1, FlatSize+1, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Dup3(g1, FlatSize+2, 0); err != nil {
		t.Fatal(err)
	}
	keep[g1], keep[FlatSize+2] = 5000, 5000
	g2 := mustOpen(t, tb, 5001, false)
	tb.Dup3(g2, FlatSize+3, unix.O_CLOEXEC)
	tb.Close(g2)
	gone[5001] = true

	n := tb.Exec()
	mustVerify(t, tb)
	if n != len(gone) {
		t.Fatalf("Exec closed %d, want %d", n, len(gone))
	}
	for h := range gone {
		if c.count(h) != 1 {
			t.Errorf("host %d closed %d times, want 1", h, c.count(h))
		}
	}
	if tb.Len() != len(keep) {
		t.Fatalf("Len %d after Exec, want %d", tb.Len(), len(keep))
	}
	for g, h := range keep {
		e, ok := tb.Get(g)
		if !ok || e.HostFD != h || e.Cloexec {
			t.Errorf("Get(%d) = %+v, %v; want host %d without cloexec", g, e, ok, h)
		}
		if c.count(h) != 0 {
			t.Errorf("kept host %d was closed", h)
		}
	}
}

func TestLargeNumbers(t *testing.T) {
	tb, c := newTest(t, FlatSize+3)
	// Fill the whole flat range: the next numbers come from the map.
	for i := range FlatSize {
		mustOpen(t, tb, 10+i, false)
	}
	big := 1<<20 + 5 // a host descriptor beyond the flat host range
	g := mustOpen(t, tb, big, true)
	if g != FlatSize {
		t.Fatalf("first overflow number %d", g)
	}
	if h, ok := tb.FindByHost(big); !ok || h != g {
		t.Fatalf("FindByHost(big) = %d, %v", h, ok)
	}
	if d, err := tb.Dup2(g, FlatSize+2); err != nil || d != FlatSize+2 {
		t.Fatal(d, err)
	}
	if d, err := tb.DupFrom(g, FlatSize, false); err != nil || d != FlatSize+1 {
		t.Fatalf("DupFrom into the map = %d, %v", d, err)
	}
	_, err := tb.Dup(0)
	wantErr(t, "Dup when everything is full", err, unix.EMFILE)
	mustVerify(t, tb)
	if h, ok := tb.FindByHost(big); !ok || h < FlatSize {
		t.Fatalf("FindByHost(big) with three holders = %d, %v", h, ok)
	}
	e, ok := tb.Get(FlatSize + 1)
	if !ok || e.HostFD != big || e.Cloexec {
		t.Fatalf("Get(FlatSize+1) = %+v, %v", e, ok)
	}
	// A hole in the middle of the flat range is found before the map.
	tb.Close(40000)
	if g := mustOpen(t, tb, 7, false); g != 40000 {
		t.Fatalf("got %d, want the hole at 40000", g)
	}
	// Close the map holders one by one; the big host closes with the last.
	for _, g := range []int{FlatSize, FlatSize + 2} {
		if closed, _ := tb.Close(g); closed {
			t.Fatalf("Close(%d) closed the shared host", g)
		}
	}
	if h, ok := tb.FindByHost(big); !ok || h != FlatSize+1 {
		t.Fatalf("FindByHost(big) = %d, %v", h, ok)
	}
	if closed, _ := tb.Close(FlatSize + 1); !closed || c.count(big) != 1 {
		t.Fatal("big host not closed with its last holder")
	}
	if _, ok := tb.hostsOver[big]; ok {
		t.Fatal("overflow host record kept after its last holder")
	}
	if n := tb.CloseAll(); n != FlatSize {
		t.Fatalf("CloseAll closed %d", n)
	}
	if c.total() != FlatSize+2 {
		t.Fatalf("%d closes, want %d", c.total(), FlatSize+2)
	}
}

func TestKindString(t *testing.T) {
	if KindSocket.String() != "socket" || Kind(200).String() != "kind(200)" {
		t.Fatal(KindSocket.String(), Kind(200).String())
	}
}

// TestConcurrent runs lookups against mutations; meant for -race.
func TestConcurrent(t *testing.T) {
	c := newCloseCounter()
	tb := New(4096, c.close)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				host := (w+1)*100000 + i
				g, err := tb.Open(host, KindFile, "", i%2 == 0)
				if err != nil {
					t.Error(err)
					return
				}
				d, err := tb.Dup(g)
				if err != nil {
					t.Error(err)
					return
				}
				if e, ok := tb.Get(d); !ok || e.HostFD != host {
					t.Errorf("Get(%d) = %+v, %v; want host %d", d, e, ok, host)
				}
				if h, ok := tb.FindByHost(host); !ok || (h != g && h != d) {
					t.Errorf("FindByHost(%d) = %d, %v", host, h, ok)
				}
				tb.Close(g)
				tb.Close(d)
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20000 {
				tb.Get(i % 64)
				tb.FindByHost(100000 + i%2000)
			}
		}()
	}
	wg.Wait()
	if err := tb.verify(); err != nil {
		t.Fatal(err)
	}
	if tb.Len() != 0 || c.total() != 8000 || len(c.bad) != 0 {
		t.Fatalf("Len %d, closes %d, bad %v", tb.Len(), c.total(), c.bad)
	}
}
