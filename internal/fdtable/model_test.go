package fdtable

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// model is the obviously correct reference: a map from guest number to
// entry, lowest-free by linear probing, reference counts by counting.
type model struct {
	limit   int
	entries map[int]Entry
}

func (m *model) lowestFree(min int) int {
	for g := min; g < m.limit; g++ {
		if _, ok := m.entries[g]; !ok {
			return g
		}
	}
	return -1
}

func (m *model) holders(host int) []int {
	var gs []int
	for g, e := range m.entries {
		if e.HostFD == host {
			gs = append(gs, g)
		}
	}
	return gs
}

// release removes g and reports the host descriptor to close, if g was its
// last holder.
func (m *model) release(g int) (int, bool) {
	e := m.entries[g]
	delete(m.entries, g)
	return e.HostFD, len(m.holders(e.HostFD)) == 0
}

// fakeKernel hands out host descriptor numbers (lowest free from a base, so
// numbers are reused after close) and checks that the table closes each
// one exactly once and only while it is open.
type fakeKernel struct {
	live map[int]bool
	err  []string
}

func (k *fakeKernel) open(base int) int {
	for h := base; ; h++ {
		if !k.live[h] {
			k.live[h] = true
			return h
		}
	}
}

func (k *fakeKernel) close(h int) error {
	if !k.live[h] {
		k.err = append(k.err, fmt.Sprintf("close of host %d, not open", h))
		return unix.EBADF
	}
	delete(k.live, h)
	return nil
}

func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if err == nil {
		return 0
	}
	if errors.As(err, &e) {
		return e
	}
	return unix.Errno(1 << 20)
}

func TestRandomAgainstModel(t *testing.T) {
	for _, cfg := range []struct {
		name  string
		limit int
		seed  uint64
	}{
		{"limit=48", 48, 1},
		{"limit=FlatSize+64", FlatSize + 64, 2},
	} {
		t.Run(cfg.name, func(t *testing.T) { runModel(t, cfg.limit, cfg.seed, 10000) })
	}
}

func runModel(t *testing.T, limit int, seed uint64, ops int) {
	r := rand.New(rand.NewPCG(seed, 0x6b626f78))
	k := &fakeKernel{live: map[int]bool{}}
	tb := New(limit, k.close)
	m := &model{limit: limit, entries: map[int]Entry{}}
	expectClosed := map[int]bool{} // hosts the current op must close

	// pick returns a guest number: usually one near the bottom, sometimes
	// one near the flat range's end or the limit, sometimes out of range.
	pick := func() int {
		switch x := r.IntN(20); {
		case x < 12:
			return r.IntN(min(limit, 80))
		case x < 16:
			return FlatSize - 4 + r.IntN(80)
		case x < 18:
			return limit - 4 + r.IntN(8)
		case x < 19:
			return -1 - r.IntN(3)
		default:
			if len(m.entries) == 0 {
				return 0
			}
			return randomKey(r, m.entries)
		}
	}
	openFD := func() int {
		if len(m.entries) > 0 && r.IntN(10) < 9 {
			return randomKey(r, m.entries)
		}
		return pick()
	}
	hostBase := func() int {
		if r.IntN(4) == 0 {
			return FlatSize + 1000 // host numbers beyond the flat host range
		}
		return 3
	}
	kinds := []Kind{KindFile, KindDir, KindSocket, KindPipe}

	errs := map[unix.Errno]int{}
	check := func(op string, got int, gotErr error, want int, wantErr unix.Errno) {
		t.Helper()
		errs[wantErr]++
		if errnoOf(gotErr) != wantErr || (wantErr == 0 && got != want) {
			t.Fatalf("%s: got %d, %v; want %d, %v", op, got, gotErr, want, wantErr)
		}
	}
	var opCounts [11]int

	for i := range ops {
		for h := range expectClosed {
			delete(expectClosed, h)
		}
		op := r.IntN(100)
		var desc string
		switch {
		case op < 25: // Open
			opCounts[0]++
			host := k.open(hostBase())
			kind := kinds[r.IntN(len(kinds))]
			path := fmt.Sprintf("/p%d", i)
			ce := r.IntN(2) == 0
			desc = fmt.Sprintf("Open(%d)", host)
			g, err := tb.Open(host, kind, path, ce)
			want := m.lowestFree(0)
			if want < 0 {
				check(desc, g, err, 0, unix.EMFILE)
				k.close(host) // the caller still owns it
				break
			}
			check(desc, g, err, want, 0)
			m.entries[want] = Entry{HostFD: host, Cloexec: ce, Kind: kind, Path: path}

		case op < 50: // Close
			opCounts[1]++
			fd := openFD()
			desc = fmt.Sprintf("Close(%d)", fd)
			closed, err := tb.Close(fd)
			if _, ok := m.entries[fd]; !ok {
				check(desc, 0, err, 0, unix.EBADF)
				break
			}
			host, last := m.release(fd)
			if last {
				expectClosed[host] = true
			}
			if err != nil || closed != last {
				t.Fatalf("%s = %v, %v; want closed=%v", desc, closed, err, last)
			}

		case op < 60: // Dup
			opCounts[2]++
			fd := openFD()
			desc = fmt.Sprintf("Dup(%d)", fd)
			g, err := tb.Dup(fd)
			e, ok := m.entries[fd]
			switch want := m.lowestFree(0); {
			case !ok:
				check(desc, g, err, 0, unix.EBADF)
			case want < 0:
				check(desc, g, err, 0, unix.EMFILE)
			default:
				check(desc, g, err, want, 0)
				e.Cloexec = false
				m.entries[want] = e
			}

		case op < 72: // Dup2 / Dup3
			opCounts[3]++
			oldfd, newfd := openFD(), pick()
			if r.IntN(10) == 0 {
				newfd = oldfd
			}
			flags, useDup3 := 0, r.IntN(3) == 0
			if useDup3 {
				flags = []int{0, unix.O_CLOEXEC, unix.O_CLOEXEC, unix.O_NONBLOCK}[r.IntN(4)]
			}
			var (
				g   int
				err error
			)
			if useDup3 {
				desc = fmt.Sprintf("Dup3(%d, %d, %#x)", oldfd, newfd, flags)
				g, err = tb.Dup3(oldfd, newfd, flags)
			} else {
				desc = fmt.Sprintf("Dup2(%d, %d)", oldfd, newfd)
				g, err = tb.Dup2(oldfd, newfd)
			}
			e, ok := m.entries[oldfd]
			switch {
			case useDup3 && (flags&^unix.O_CLOEXEC != 0 || oldfd == newfd):
				check(desc, g, err, 0, unix.EINVAL)
			case !useDup3 && oldfd == newfd:
				if !ok {
					check(desc, g, err, 0, unix.EBADF)
				} else {
					check(desc, g, err, newfd, 0)
				}
			case newfd < 0 || newfd >= limit || !ok:
				check(desc, g, err, 0, unix.EBADF)
			default:
				check(desc, g, err, newfd, 0)
				e.Cloexec = flags&unix.O_CLOEXEC != 0
				if _, open := m.entries[newfd]; open {
					old := m.entries[newfd].HostFD
					delete(m.entries, newfd)
					if old != e.HostFD && len(m.holders(old)) == 0 {
						expectClosed[old] = true
					}
				}
				m.entries[newfd] = e
			}

		case op < 82: // DupFrom
			opCounts[4]++
			fd, from := openFD(), pick()
			ce := r.IntN(2) == 0
			desc = fmt.Sprintf("DupFrom(%d, %d, %v)", fd, from, ce)
			g, err := tb.DupFrom(fd, from, ce)
			e, ok := m.entries[fd]
			switch {
			case !ok:
				check(desc, g, err, 0, unix.EBADF)
			case from < 0 || from >= limit:
				check(desc, g, err, 0, unix.EINVAL)
			default:
				want := m.lowestFree(from)
				if want < 0 {
					check(desc, g, err, 0, unix.EMFILE)
					break
				}
				check(desc, g, err, want, 0)
				e.Cloexec = ce
				m.entries[want] = e
			}

		case op < 90: // SetCloexec
			opCounts[5]++
			fd, on := openFD(), r.IntN(2) == 0
			desc = fmt.Sprintf("SetCloexec(%d, %v)", fd, on)
			err := tb.SetCloexec(fd, on)
			e, ok := m.entries[fd]
			if !ok {
				check(desc, 0, err, 0, unix.EBADF)
				break
			}
			check(desc, 0, err, 0, 0)
			e.Cloexec = on
			m.entries[fd] = e

		case op < 91: // Exec
			opCounts[6]++
			desc = "Exec()"
			n := tb.Exec()
			for g, e := range m.entries {
				if e.Cloexec {
					if host, last := m.release(g); last {
						expectClosed[host] = true
					}
				}
			}
			if n != len(expectClosed) {
				t.Fatalf("op %d %s closed %d, want %d", i, desc, n, len(expectClosed))
			}

		case op < 96: // FindByHost
			opCounts[7]++
			host := r.IntN(40)
			if len(m.entries) > 0 && r.IntN(4) != 0 {
				host = m.entries[randomKey(r, m.entries)].HostFD
			}
			desc = fmt.Sprintf("FindByHost(%d)", host)
			g, ok := tb.FindByHost(host)
			hs := m.holders(host)
			if ok != (len(hs) > 0) || (ok && m.entries[g].HostFD != host) {
				t.Fatalf("op %d %s = %d, %v; holders %v", i, desc, g, ok, hs)
			}

		case op < 98: // Cloexec
			opCounts[8]++
			fd := openFD()
			desc = fmt.Sprintf("Cloexec(%d)", fd)
			ce, err := tb.Cloexec(fd)
			e, ok := m.entries[fd]
			if !ok {
				check(desc, 0, err, 0, unix.EBADF)
			} else if err != nil || ce != e.Cloexec {
				t.Fatalf("%s = %v, %v; want %v", desc, ce, err, e.Cloexec)
			}

		default: // Get
			opCounts[9]++
			fd := openFD()
			desc = fmt.Sprintf("Get(%d)", fd)
			e, ok := tb.Get(fd)
			me, mok := m.entries[fd]
			if ok != mok || e != me {
				t.Fatalf("%s = %+v, %v; want %+v, %v", desc, e, ok, me, mok)
			}
		}

		// After every operation: the table's invariants hold, it agrees with
		// the model entry by entry, every host descriptor the model holds is
		// still open, and every one it dropped was closed exactly once.
		if err := tb.verify(); err != nil {
			t.Fatalf("op %d %s: %v", i, desc, err)
		}
		if i%256 == 0 || i == ops-1 {
			if err := tb.verifyFreeSlots(); err != nil {
				t.Fatalf("op %d %s: %v", i, desc, err)
			}
		}
		if len(k.err) > 0 {
			t.Fatalf("op %d %s: %v", i, desc, k.err)
		}
		if tb.Len() != len(m.entries) {
			t.Fatalf("op %d %s: Len %d, model %d", i, desc, tb.Len(), len(m.entries))
		}
		held := map[int]bool{}
		for g, me := range m.entries {
			held[me.HostFD] = true
			if e, ok := tb.Get(g); !ok || e != me {
				t.Fatalf("op %d %s: Get(%d) = %+v, %v; model %+v", i, desc, g, e, ok, me)
			}
		}
		for h := range k.live {
			if !held[h] {
				t.Fatalf("op %d %s: host %d open but held by no guest number (leak)", i, desc, h)
			}
		}
		for h := range expectClosed {
			if k.live[h] {
				t.Fatalf("op %d %s: host %d should have been closed", i, desc, h)
			}
		}
		if len(k.live) != len(held) {
			t.Fatalf("op %d %s: %d hosts open, model holds %d", i, desc, len(k.live), len(held))
		}
		if m.lowestFree(0) == -1 {
			opCounts[10]++
		}
	}

	n := tb.CloseAll()
	if len(k.live) != 0 || len(k.err) != 0 || tb.Len() != 0 {
		t.Fatalf("after CloseAll (%d closed): live %v, errors %v, Len %d", n, k.live, k.err, tb.Len())
	}
	t.Logf("ops: open %d close %d dup %d dup2/3 %d dupfrom %d setcloexec %d exec %d findbyhost %d cloexec %d get %d; ops at a full table %d",
		opCounts[0], opCounts[1], opCounts[2], opCounts[3], opCounts[4], opCounts[5], opCounts[6], opCounts[7], opCounts[8], opCounts[9], opCounts[10])
	t.Logf("results: ok %d, EBADF %d, EINVAL %d, EMFILE %d", errs[0], errs[unix.EBADF], errs[unix.EINVAL], errs[unix.EMFILE])
}

func randomKey(r *rand.Rand, m map[int]Entry) int {
	// Deterministic for a fixed seed: pick by rank among sorted keys.
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys[r.IntN(len(keys))]
}
