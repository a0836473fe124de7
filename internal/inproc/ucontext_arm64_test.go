//go:build cgo && linux && arm64

package inproc

import (
	"encoding/binary"
	"testing"
	"unsafe"
)

func TestUcontextLayout(t *testing.T) {
	if got := unsafe.Sizeof(ucontext{}); got != sizeofUcontext {
		t.Fatalf("sizeof(ucontext) = %d, want %d", got, sizeofUcontext)
	}
	// Offsets the kernel's struct ucontext has on arm64.
	var u ucontext
	for _, c := range []struct {
		name string
		off  uintptr
		want uintptr
	}{
		{"uc_stack", unsafe.Offsetof(u.SsSp), 16},
		{"uc_sigmask", unsafe.Offsetof(u.Sigmask), 40},
		{"fault_address", unsafe.Offsetof(u.FaultAddress), 176},
		{"regs", unsafe.Offsetof(u.Regs), 184},
		{"sp", unsafe.Offsetof(u.Sp), 432},
		{"pc", unsafe.Offsetof(u.Pc), 440},
		{"pstate", unsafe.Offsetof(u.Pstate), 448},
		{"__reserved", unsafe.Offsetof(u.Reserved), 464},
	} {
		if c.off != c.want {
			t.Errorf("offset of %s = %d, want %d", c.name, c.off, c.want)
		}
	}
}

// TestDirectFrame: direct entry's frame is a kernel rt_sigframe (the
// ucontext after the 128-byte siginfo, 16-byte aligned for rt_sigreturn's
// sp) whose records are the one list the kernel's sigreturn accepts
// without SVE: the FP/SIMD record (its exact size) and the empty record.
func TestDirectFrame(t *testing.T) {
	if en := directInit(); en != 0 {
		t.Fatalf("kbox_direct_init: errno %d", en)
	}
	frame, ucp := directFrame()
	if uintptr(frame)%16 != 0 {
		t.Errorf("frame at %p: not 16-byte aligned", frame)
	}
	if d := uintptr(ucp) - uintptr(frame); d != sizeofSigframe-sizeofUcontext {
		t.Errorf("ucontext at +%d in the frame, want +%d", d, sizeofSigframe-sizeofUcontext)
	}
	uc := ucontextAt(ucp)
	recs, ok := sigRecords(uc.Reserved[:])
	if !ok || len(recs) != 1 || recs[0] != (sigRecord{0, recFPSIMD, 528}) {
		t.Errorf("frame records %v (well-formed %v), want one FP/SIMD record of 528 bytes", recs, ok)
	}
	if got := frameRecords(&uc.Reserved); got != uc.Reserved {
		t.Errorf("a guest frame built from the direct frame differs in its records")
	}
}

// TestSigRecords: the guest's frame keeps the trap's records up to an
// extra_context; rt_sigreturn copies back a same-layout list whole, and
// only the fpsimd registers of a different one.
func TestSigRecords(t *testing.T) {
	rec := func(b []byte, off int, magic, size uint32, fill byte) int {
		binary.LittleEndian.PutUint32(b[off:], magic)
		binary.LittleEndian.PutUint32(b[off+4:], size)
		for i := off + 8; i < off+int(size); i++ {
			b[i] = fill
		}
		return off + int(size)
	}
	var k [4096]byte
	off := rec(k[:], 0, recFPSIMD, 528, 1)
	off = rec(k[:], off, 0x45535201, 16, 2) // esr
	rec(k[:], off, recExtra, 32, 3)
	g := frameRecords(&k)
	recs, ok := sigRecords(g[:])
	if !ok || len(recs) != 2 || recs[0].magic != recFPSIMD || recs[1].size != 16 {
		t.Fatalf("frame records: %v %v", recs, ok)
	}
	if g[544] != 0 {
		t.Errorf("extra_context copied into the guest frame")
	}
	// Same layout: copied whole.
	g[100], g[540] = 9, 8 // in fpsimd's registers and esr's body
	restoreRecords(&k, &g)
	if k[100] != 9 || k[540] != 8 {
		t.Errorf("same-layout records not restored")
	}
	// Different layout: fpsimd registers only.
	var g2 [4096]byte
	rec(g2[:], 0, recFPSIMD, 528, 7)
	restoreRecords(&k, &g2)
	if k[100] != 7 || k[540] != 8 || binary.LittleEndian.Uint32(k[528:]) != 0x45535201 {
		t.Errorf("fpsimd-only restore: %d %d", k[100], k[540])
	}
	// Malformed guest records change nothing.
	var bad [4096]byte
	binary.LittleEndian.PutUint32(bad[0:], recFPSIMD)
	binary.LittleEndian.PutUint32(bad[4:], 5008) // overruns the area
	restoreRecords(&k, &bad)
	if k[100] != 7 {
		t.Errorf("malformed records restored")
	}
}

// otherArchRules are the own rules only the other architecture's build
// has (TestRulesMatchTable).
var otherArchRules = []string{"arch_prctl"}
