//go:build cgo && linux && arm64

package inproc

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/dispatch"
	"github.com/kbox-go/kbox/internal/policy"
)

// arm64 encodings the round-trip tests assemble.
const (
	aSVC    = 0xd4000001
	aRET    = 0xd65f03c0
	aNOP    = 0xd503201f
	aStpFP  = 0xa9bf7bfd // stp x29, x30, [sp, #-16]!
	aLdpFP  = 0xa8c17bfd // ldp x29, x30, [sp], #16
	aMovX86 = 0xaa0603e8 // mov x8, x6
)

func aMovz(rd, imm uint32) uint32 { return 0xd2800000 | imm<<5 | rd }
func aMov(d, m uint32) uint32     { return 0xaa0003e0 | m<<16 | d }
func aBL(from, to int) uint32     { return 0x94000000 | uint32((to-from)/4)&0x3ffffff }

// lowCode maps code read+exec at a hint in the low address space, away
// from the top of it, where the kernel packs kbox's libraries, thread
// stacks and the Go runtime's reservations so densely that no arena may
// fit within a b's reach (a dynamic guest's libraries then reach theirs
// through veneers: TestVeneerARM64).
func lowCode(t *testing.T, code []byte) uint64 {
	t.Helper()
	lowCodeNext += 64 << 20
	r, _, en := unix.RawSyscall6(unix.SYS_MMAP, uintptr(lowCodeNext), pageSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uintptr(0), 0)
	if en != 0 {
		t.Fatal(en)
	}
	t.Cleanup(func() { unix.RawSyscall(unix.SYS_MUNMAP, r, pageSize, 0) })
	copy(guestBytes(uint64(r), len(code)), code)
	if err := rawMprotect(uint64(r), pageSize, unix.PROT_READ|unix.PROT_EXEC); err != nil {
		t.Fatal(err)
	}
	return uint64(r)
}

var lowCodeNext uint64 = 0x2000000000

func words(w ...uint32) []byte {
	var b []byte
	for _, x := range w {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	return b
}

// TestPatchAndRunARM64 patches real arm64 code in memory and runs it:
// getpid answered by the fast path, read on a mapped descriptor run on its
// host descriptor, an unmapped descriptor and another call falling back
// to the slot's own svc (no filter here: it simply runs), code that ran
// before it was patched (the instruction cache must be synchronized).
func TestPatchAndRunARM64(t *testing.T) {
	defer setPanicOnFault()()
	rw := newRewriter(false)
	defer rw.release()
	tr := &tier{warned: map[string]bool{}, eng: &dispatch.Engine{}}
	const exec = unix.PROT_READ | unix.PROT_EXEC
	patch := func(code []byte, want int) uint64 {
		addr := lowCode(t, code)
		if done, left, err := rw.patchCode(tr, addr, addr+uint64(len(code)), addr, addr+pageSize, exec, ""); done != want || left != 0 || err != nil {
			t.Fatalf("patchCode(% x): %d patched, %d left, %v; want %d, 0", code, done, left, err, want)
		}
		return addr
	}
	pol, err := policy.Resolve(abi.ARM64, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := setFastKinds(pol); err != nil {
		t.Fatal(err)
	}
	setFastIdentity(424242, false)

	// Run unpatched first, so that stale instructions could be cached.
	code := words(aMovz(8, unix.SYS_GETPID), aSVC, aRET)
	addr := lowCode(t, code)
	if got := callCode(addr, 0, 0, 0); got != int64(os.Getpid()) {
		t.Fatalf("unpatched getpid = %d, want %d", got, os.Getpid())
	}
	hits, _ := fastCounts()
	if done, _, err := rw.patchCode(tr, addr, addr+uint64(len(code)), addr, addr+pageSize, exec, ""); done != 1 || err != nil {
		t.Fatalf("patching getpid: %d, %v", done, err)
	}
	if insn := binary.LittleEndian.Uint32(guestBytes(addr+4, 4)); insn>>26 != 0x05 {
		t.Fatalf("the svc became %#08x, want a b", insn)
	}
	if got := callCode(addr, 0, 0, 0); got != 424242 {
		t.Errorf("patched getpid = %d, want the fast path's 424242", got)
	}
	if h, _ := fastCounts(); h != hits+1 {
		t.Errorf("fast path hits %d -> %d, want one more", hits, h)
	}

	f, err := os.CreateTemp(t.TempDir(), "fast")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("fastpath")
	f.Seek(0, 0)
	setFastFD(77, int(f.Fd()))
	defer setFastFD(77, -1)
	read := patch(words(aMovz(8, unix.SYS_READ), aSVC, aRET), 1)
	buf := make([]byte, 8)
	if n := callCode(read, 77, int64(addrOf(buf)), 8); n != 8 || string(buf) != "fastpath" {
		t.Errorf("patched read(77) = %d %q, want 8 \"fastpath\"", n, buf)
	}
	_, m0 := fastCounts()
	if n := callCode(read, 78, int64(addrOf(buf)), 8); n != -int64(unix.EBADF) {
		t.Errorf("patched read(78) = %d, want -EBADF from the fallback svc", n)
	}
	if _, m := fastCounts(); m != m0+1 {
		t.Errorf("read(78) did not count as a miss")
	}
	getppid := patch(words(aMovz(8, unix.SYS_GETPPID), aSVC, aRET), 1)
	h0, _ := fastCounts()
	if got := callCode(getppid, 0, 0, 0); got != int64(os.Getppid()) {
		t.Errorf("patched getppid = %d, want %d", got, os.Getppid())
	}
	if h, _ := fastCounts(); h != h0+1 {
		t.Errorf("getppid did not take the fast path")
	}
	getuid := patch(words(aMovz(8, unix.SYS_GETUID), aSVC, aRET), 1)
	if got := callCode(getuid, 0, 0, 0); got != int64(os.Getuid()) {
		t.Errorf("patched getuid = %d, want %d (fallback)", got, os.Getuid())
	}
	// A COMPLEX site (the result used before the return) keeps its svc.
	complexCode := words(aMovz(8, unix.SYS_GETPID), aSVC, aMov(1, 0), aMov(0, 1), aNOP, aNOP, aRET)
	caddr := lowCode(t, complexCode)
	if done, left, _ := rw.patchCode(tr, caddr, caddr+uint64(len(complexCode)), caddr, caddr+pageSize, exec, ""); done != 0 || left != 1 {
		t.Errorf("COMPLEX site: %d patched, %d left; want 0, 1", done, left)
	}
	if got := callCode(caddr, 0, 0, 0); got != int64(os.Getpid()) {
		t.Errorf("unpatched COMPLEX getpid = %d", got)
	}
	keep(buf)
}

// cancelCaller is musl's cancellation wrapper shape: the caller at 0
// saves its frame, loads the number into x6 and calls the function at
// 0x40, whose svc follows the argument shuffle.
func cancelCaller(nr uint32) []byte {
	w := make([]uint32, 0x80/4)
	for i := range w {
		w[i] = aNOP
	}
	copy(w, []uint32{aStpFP, aMovz(6, nr), aBL(8, 0x40), aLdpFP, aRET})
	copy(w[0x40/4:], []uint32{aMovX86, aMov(0, 0), aMov(1, 1), aMov(2, 2), aMov(3, 3), aSVC, aRET})
	return words(w...)
}

// TestCancelPromotionARM64: with the gate on, the bl of a cancellation
// call becomes a b to a cancel slot that takes the number from x6, enters
// the fast path (counted) and resumes after the bl with the result in x0;
// with the gate off the call stays a call.
func TestCancelPromotionARM64(t *testing.T) {
	defer setPanicOnFault()()
	pol, err := policy.Resolve(abi.ARM64, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := setFastKinds(pol); err != nil {
		t.Fatal(err)
	}
	setFastIdentity(434343, false)
	tr := &tier{warned: map[string]bool{}, eng: &dispatch.Engine{}}
	const exec = unix.PROT_READ | unix.PROT_EXEC
	for _, on := range []bool{false, true} {
		rw := newRewriter(false)
		rw.cancel.on = on
		rw.cancel.entry = fastCancelAddr()
		code := cancelCaller(unix.SYS_GETPID)
		addr := lowCode(t, code)
		before := fastCancelEntries()
		done, left, err := rw.patchCode(tr, addr, addr+uint64(len(code)), addr, addr+pageSize, exec, "")
		if err != nil || done != 1 || left != 0 {
			t.Fatalf("gate %v: %d patched, %d left, %v; want the svc site", on, done, left, err)
		}
		bl := binary.LittleEndian.Uint32(guestBytes(addr+8, 4))
		if got := callCode(addr, 0, 0, 0); got != 434343 {
			t.Errorf("gate %v: getpid through the cancel wrapper = %d, want the fast path's 434343", on, got)
		}
		if on {
			if rw.cancel.sites != 1 || bl>>26 != 0x05 {
				t.Errorf("gate on: %d sites promoted, bl is now %#08x; want 1 and a b", rw.cancel.sites, bl)
			}
			if fastCancelEntries() != before+1 {
				t.Errorf("gate on: the cancel slot was not entered")
			}
		} else {
			if rw.cancel.sites != 0 || bl>>26 != 0x25 {
				t.Errorf("gate off: %d sites promoted, bl is now %#08x; want the bl kept", rw.cancel.sites, bl)
			}
			if fastCancelEntries() != before {
				t.Errorf("gate off: a cancel slot was entered")
			}
		}
		// A call the fast path does not serve falls back to the slot's
		// svc, with the number moved from x6.
		code = cancelCaller(unix.SYS_GETUID)
		addr = lowCode(t, code)
		rw.patchCode(tr, addr, addr+uint64(len(code)), addr, addr+pageSize, exec, "")
		if got := callCode(addr, 0, 0, 0); got != int64(os.Getuid()) {
			t.Errorf("gate %v: getuid through the cancel wrapper = %d, want %d", on, got, os.Getuid())
		}
		rw.release()
	}
}

// TestPatchReportsUnsealedCode: when patched code cannot be given back its
// protection, patchCode says so instead of letting the guest run on
// writable code.
func TestPatchReportsUnsealedCodeARM64(t *testing.T) {
	defer setPanicOnFault()()
	rw := newRewriter(false)
	defer rw.release()
	calls := 0
	rw.mprotect = func(addr, n uint64, prot int) error {
		calls++
		if prot&unix.PROT_EXEC != 0 && calls > 2 {
			return unix.ENOMEM
		}
		return rawMprotect(addr, n, prot)
	}
	tr := &tier{warned: map[string]bool{}, eng: &dispatch.Engine{}}
	code := words(aMovz(8, unix.SYS_GETPID), aSVC, aRET)
	addr := lowCode(t, code)
	_, _, err := rw.patchCode(tr, addr, addr+uint64(len(code)), addr, addr+pageSize, unix.PROT_READ|unix.PROT_EXEC, "")
	if err == nil || !errors.Is(err, unix.ENOMEM) {
		t.Fatalf("patchCode with a failing restore: err = %v, want ENOMEM reported", err)
	}
	rawMprotect(addr, pageSize, unix.PROT_READ|unix.PROT_EXEC)
}

// TestVeneerARM64: a site with no free space for an arena within a b's
// reach (here a 512 MiB reservation around it) reaches a trampoline
// anywhere through a veneer in its segment's slack, and runs; without
// slack it keeps its svc.
func TestVeneerARM64(t *testing.T) {
	defer setPanicOnFault()()
	const resSize = 512 << 20
	res, _, en := unix.RawSyscall6(unix.SYS_MMAP, 0, resSize, unix.PROT_NONE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE, ^uintptr(0), 0)
	if en != 0 {
		t.Fatal(en)
	}
	defer unix.RawSyscall(unix.SYS_MUNMAP, res, resSize, 0)
	pol, err := policy.Resolve(abi.ARM64, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := setFastKinds(pol); err != nil {
		t.Fatal(err)
	}
	setFastIdentity(454545, false)
	tr := &tier{warned: map[string]bool{}, eng: &dispatch.Engine{}}
	const exec = unix.PROT_READ | unix.PROT_EXEC
	code := words(aMovz(8, unix.SYS_GETPID), aSVC, aRET)
	for i, slack := range []bool{true, false} {
		addr := uint64(res) + resSize/2 + uint64(i)*pageSize
		if _, _, en := unix.RawSyscall6(unix.SYS_MMAP, uintptr(addr), pageSize, unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED, ^uintptr(0), 0); en != 0 {
			t.Fatal(en)
		}
		copy(guestBytes(addr, len(code)), code)
		rawMprotect(addr, pageSize, exec)
		rw := newRewriter(false)
		if slack {
			rw.slack, rw.bridges.prot = span{addr + 64, addr + pageSize}, exec
		}
		done, left, err := rw.patchCode(tr, addr, addr+uint64(len(code)), addr, addr+pageSize, exec, "")
		if err != nil {
			t.Fatal(err)
		}
		if !slack {
			if done != 0 || left != 1 {
				t.Errorf("no slack: %d patched, %d left; want 0, 1", done, left)
			}
			if got := callCode(addr, 0, 0, 0); got != int64(os.Getpid()) {
				t.Errorf("unpatched getpid = %d", got)
			}
			rw.release()
			continue
		}
		if done != 1 || rw.veneers != 1 || len(rw.arenas) != 1 || dist(rw.arenas[0].base, addr) < 128<<20 {
			t.Fatalf("slack: %d patched, %d veneers, arenas %v; want 1 site through a veneer to a far arena", done, rw.veneers, rw.arenas)
		}
		if got := callCode(addr, 0, 0, 0); got != 454545 {
			t.Errorf("getpid through a veneer = %d, want the fast path's 454545", got)
		}
		if insn := binary.LittleEndian.Uint32(guestBytes(addr+64, 4)); insn != 0x58000050 {
			t.Errorf("veneer starts with %#08x, want ldr x16, #8", insn)
		}
		rw.release()
	}
}
