//go:build cgo && linux && arm64

package inproc

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

// arm64's signal frames, in the kernel's layout (arch/arm64/kernel/signal.c):
// struct rt_sigframe (siginfo, then ucontext) at the new sp, and above it
// a frame record {x29, x30} that x29 points at. The handler gets x0 = sig,
// x1 = &info, x2 = &uc, and returns through x30: the guest's SA_RESTORER
// (musl sets one), or else a stub kbox maps for it (`mov x8, #139;
// svc #0`), where the kernel would use the vDSO's sigreturn trampoline —
// kbox's vDSO is kbox code to the interception filter, so a sigreturn from
// it would reach the host kernel, not the guest's rt_sigreturn.
//
// The sigcontext's __reserved area holds the FP/SIMD state as records;
// the guest's frame gets the records of the trap's own frame (the guest's
// state when it trapped), and rt_sigreturn puts the guest's records back
// into the frame the kernel restores from, when they have the same layout
// (else only the fpsimd_context's registers).

// sigreturnStub is the default restorer's address, mapped on first use
// (one guest per process; it outlives an in-place execve).
var sigreturnStub uint64

const (
	pstateBTYPE = 3 << 10 // the branch type, cleared at a handler's entry

	recFPSIMD = 0x46508001
	recExtra  = 0x45585401 // extra_context: points outside the frame
	// sizeofSigframe is struct rt_sigframe: siginfo and ucontext.
	sizeofSigframe = 128 + sizeofUcontext
)

type sigRecord struct{ off, magic, size uint32 }

// sigRecords walks the records of a __reserved area; ok is false for a
// malformed list (a record overrunning the area, a size not a multiple of
// 16, no terminator).
func sigRecords(b []byte) (recs []sigRecord, ok bool) {
	for off := 0; off+8 <= len(b); {
		magic, size := binary.LittleEndian.Uint32(b[off:]), binary.LittleEndian.Uint32(b[off+4:])
		if magic == 0 {
			return recs, size == 0
		}
		if size < 16 || size%16 != 0 || uint64(off)+uint64(size) > uint64(len(b)) {
			return nil, false
		}
		recs = append(recs, sigRecord{uint32(off), magic, size})
		off += int(size)
	}
	return nil, false
}

// frameRecords is the __reserved area of a guest frame built from the
// trap's: its records up to (not including) any extra_context, whose
// pointer names the trap's frame on kbox's stack.
func frameRecords(kernel *[4096]byte) [4096]byte {
	var out [4096]byte
	recs, _ := sigRecords(kernel[:])
	end := 0
	for _, r := range recs {
		if r.magic == recExtra {
			break
		}
		end = int(r.off + r.size)
	}
	copy(out[:end], kernel[:end])
	return out // the zero bytes after end are the terminator
}

// restoreRecords puts the FP/SIMD state of a guest frame's records into
// the trap's frame, which the kernel restores on the handler's return.
func restoreRecords(kernel, guest *[4096]byte) {
	kr, ok1 := sigRecords(kernel[:])
	gr, ok2 := sigRecords(guest[:])
	if !ok1 || !ok2 {
		return
	}
	// The guest's frame had the trap's records up to an extra_context
	// (frameRecords): the same list, unless the guest rewrote it.
	for i, r := range kr {
		if r.magic == recExtra {
			kr = kr[:i]
			break
		}
	}
	same := len(gr) > 0 && len(gr) == len(kr)
	for i, r := range gr {
		if i >= len(kr) || kr[i] != r {
			same = false
			break
		}
	}
	if same {
		end := gr[len(gr)-1].off + gr[len(gr)-1].size
		copy(kernel[:end], guest[:end])
		return
	}
	var kf, gf *sigRecord
	for i := range kr {
		if kr[i].magic == recFPSIMD {
			kf = &kr[i]
		}
	}
	for i := range gr {
		if gr[i].magic == recFPSIMD {
			gf = &gr[i]
		}
	}
	if kf != nil && gf != nil && kf.size == gf.size {
		// fpsr, fpcr and vregs follow the 8-byte header.
		copy(kernel[kf.off+8:kf.off+kf.size], guest[gf.off+8:gf.off+gf.size])
	}
}

// defaultRestorer returns the address of the default restorer, mapping it
// the first time: outside kbox's code ranges (mapped after the filter was
// built), so its svc traps as the guest's.
func defaultRestorer() (uint64, error) {
	if sigreturnStub != 0 {
		return sigreturnStub, nil
	}
	r, _, en := unix.RawSyscall6(unix.SYS_MMAP, 0, pageSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uintptr(0), 0)
	if en != 0 {
		return 0, en
	}
	code := guestBytes(uint64(r), 8)
	binary.LittleEndian.PutUint32(code[0:], 0xd2800008|uint32(unix.SYS_RT_SIGRETURN)<<5) // mov x8, #nr
	binary.LittleEndian.PutUint32(code[4:], 0xd4000001)                                  // svc #0
	if _, _, en := unix.RawSyscall(unix.SYS_MPROTECT, r, pageSize, unix.PROT_READ|unix.PROT_EXEC); en != 0 {
		unix.RawSyscall(unix.SYS_MUNMAP, r, pageSize, 0)
		return 0, en
	}
	syncICache(uint64(r), uint64(r)+8)
	sigreturnStub = uint64(r)
	return sigreturnStub, nil
}

// pushFrame builds a kernel-style rt_sigframe for sig on the guest's stack
// and points uc at the guest's handler.
func (t *tier) pushFrame(uc *ucontext, sig int, act guestAction, info []byte, oldMask uint64) bool {
	s := t.sig
	restorer := act.restorer
	if act.flags&abi.SARestorer == 0 || restorer == 0 {
		var err error
		if restorer, err = defaultRestorer(); err != nil {
			return false
		}
	}
	sp := uc.Sp
	onAlt := s.altFlags&abi.SSDisable == 0 && sp-s.altSP < s.altSize
	if act.flags&abi.SAOnstack != 0 && s.altFlags&abi.SSDisable == 0 && !onAlt {
		sp = s.altSP + s.altSize
	}
	record := (sp - 16) &^ 15
	sp = record - (sizeofSigframe+15)&^15
	infoAddr, ucAddr := sp, sp+128

	frame := *uc
	frame.Flags, frame.Link = 0, 0
	frame.Sigmask = oldMask
	frame.SsSp, frame.SsSize = s.altSP, s.altSize
	frame.SsFlags = s.altFlags
	if onAlt {
		frame.SsFlags = abi.SSOnstack
	}
	frame.Reserved = frameRecords(&uc.Reserved)
	var fr [16]byte
	binary.LittleEndian.PutUint64(fr[0:], uc.Regs[29])
	binary.LittleEndian.PutUint64(fr[8:], uc.Regs[30])
	m := memory{}
	if m.Write(record, fr[:]) != nil || m.Write(ucAddr, bytesAt(&frame)[:sizeofUcontext]) != nil || m.Write(infoAddr, info[:128]) != nil {
		return false
	}
	uc.Regs[0] = uint64(sig)
	uc.Regs[1] = infoAddr
	uc.Regs[2] = ucAddr
	uc.Regs[29] = record
	uc.Regs[30] = restorer
	uc.Sp = sp
	uc.Pc = act.handler
	uc.Pstate &^= pstateBTYPE
	return true
}

// sysRtSigreturn restores the context of the frame at the guest's sp (the
// kernel refuses a misaligned one with SIGSEGV, as here).
func sysRtSigreturn(t *tier, c *call) int64 {
	uc := c.uc
	addr := uc.Sp
	var frame ucontext
	if addr%16 != 0 || (memory{}).Read(addr+128, bytesAt(&frame)[:sizeofUcontext]) != nil {
		t.killedBy(int(unix.SIGSEGV))
	}
	c.keepRegs = true
	uc.Regs = frame.Regs
	uc.Sp = frame.Sp
	uc.Pc = frame.Pc
	uc.Pstate = uc.Pstate&^pstateNZCV | frame.Pstate&pstateNZCV
	restoreRecords(&uc.Reserved, &frame.Reserved)
	s := t.sig
	s.mu.Lock()
	s.mask = frame.Sigmask &^ unblockable
	s.mu.Unlock()
	return 0
}

// hostPause sleeps until a signal kicks the guest thread (arm64 has no
// pause(2): ppoll with no descriptors and no timeout).
func hostPause() { blockingSyscall(unix.SYS_PPOLL, [6]uint64{}) }
