//go:build cgo && linux && amd64

package trap

import (
	"math/rand"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/seccomp"
)

func TestUcontextLayout(t *testing.T) {
	if got := unsafe.Sizeof(ucontext{}); got != sizeofUcontext {
		t.Fatalf("sizeof(ucontext) = %d, want %d", got, sizeofUcontext)
	}
	// Offsets the kernel's struct ucontext has on x86-64.
	var u ucontext
	for _, c := range []struct {
		name string
		off  uintptr
		want uintptr
	}{
		{"uc_stack", unsafe.Offsetof(u.SsSp), 16},
		{"gregs", unsafe.Offsetof(u.Gregs), 40},
		{"fpregs", unsafe.Offsetof(u.Fpregs), 224},
		{"uc_sigmask", unsafe.Offsetof(u.Sigmask), 296},
	} {
		if c.off != c.want {
			t.Errorf("offset of %s = %d, want %d", c.name, c.off, c.want)
		}
	}
}

// TestVMRanges checks the guest range set against a page bitmap.
func TestVMRanges(t *testing.T) {
	const pages = 256
	rng := rand.New(rand.NewSource(1))
	var v vmRanges
	var model [pages]bool
	for i := 0; i < 5000; i++ {
		a, b := uint64(rng.Intn(pages)), uint64(rng.Intn(pages))
		if a > b {
			a, b = b, a
		}
		if rng.Intn(2) == 0 {
			v.add(a*pageSize, b*pageSize)
			for p := a; p < b; p++ {
				model[p] = true
			}
		} else {
			v.remove(a*pageSize, b*pageSize)
			for p := a; p < b; p++ {
				model[p] = false
			}
		}
		for j := 1; j < len(v.r); j++ {
			if v.r[j-1].hi >= v.r[j].lo {
				t.Fatalf("step %d: spans not sorted and disjoint: %v", i, v.r)
			}
		}
		x, y := uint64(rng.Intn(pages)), uint64(rng.Intn(pages))
		if x > y {
			x, y = y, x
		}
		want := true
		var gapPages int
		for p := x; p < y; p++ {
			if !model[p] {
				want = false
				gapPages++
			}
		}
		if got := v.contains(x*pageSize, y*pageSize); got != want {
			t.Fatalf("step %d: contains(%d,%d) = %v, want %v", i, x, y, got, want)
		}
		var got int
		for _, g := range v.gaps(x*pageSize, y*pageSize) {
			got += int((g.hi - g.lo) / pageSize)
		}
		if got != gapPages {
			t.Fatalf("step %d: gaps cover %d pages, want %d", i, got, gapPages)
		}
	}
}

func TestFilterBytes(t *testing.T) {
	p := []unix.SockFilter{{Code: 0x20, Jt: 1, Jf: 2, K: 0x01020304}}
	b := seccomp.Bytes(p)
	want := []byte{0x20, 0, 1, 2, 4, 3, 2, 1}
	if string(b) != string(want) {
		t.Fatalf("filterBytes = %x, want %x", b, want)
	}
}

// TestMemoryFaults checks that the in-process accessor turns bad guest
// addresses into EFAULT under SetPanicOnFault, as the trap entry points
// run it.
func TestMemoryFaults(t *testing.T) {
	defer setPanicOnFault()()
	m := memory{}
	buf := make([]byte, 8)
	if err := m.Read(0x10, buf); err != unix.EFAULT {
		t.Errorf("read at 0x10: %v, want EFAULT", err)
	}
	if err := m.Write(0x10, buf); err != unix.EFAULT {
		t.Errorf("write at 0x10: %v, want EFAULT", err)
	}
	if _, err := m.ReadString(0x10, 100); err != unix.EFAULT {
		t.Errorf("string at 0x10: %v, want EFAULT", err)
	}
	// A string ending right before an unmapped page reads fine.
	mem, err := unix.Mmap(-1, 0, 2*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := unix.Mprotect(mem[pageSize:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	copy(mem[pageSize-4:], "abc\x00")
	addr := addrOf(mem)
	if s, err := m.ReadString(addr+pageSize-4, 4095); err != nil || s != "abc" {
		t.Errorf("string at a page end: %q, %v", s, err)
	}
	copy(mem[pageSize-3:], "xyz")
	if _, err := m.ReadString(addr+pageSize-3, 4095); err != unix.EFAULT {
		t.Errorf("unterminated string into PROT_NONE: %v, want EFAULT", err)
	}
	copy(mem[pageSize-8:], "wxyz")
	if s, err := m.ReadString(addr+pageSize-8, 2); err != unix.ENAMETOOLONG || s != "" {
		t.Errorf("string longer than max: %q, %v", s, err)
	}
}
