//go:build cgo && linux && amd64

package inproc

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

// x86-64's signal frames: the kernel's rt_sigframe layout
// (arch/x86/kernel/signal.c), built on the guest's stack and read back by
// rt_sigreturn.

// fpstateSize is the size of the FPU state the kernel saved at p: the
// extended size from the software-reserved bytes when present, else the
// 512-byte legacy area.
func fpstateSize(p uint64) uint64 {
	var sw [16]byte
	if (memory{}).Read(p+abi.X86FPStateSWReserved, sw[:]) != nil {
		return abi.X86FPStateLegacySize
	}
	if binary.LittleEndian.Uint32(sw[0:]) == abi.X86FPXStateMagic1 {
		n := uint64(binary.LittleEndian.Uint32(sw[4:]))
		if n >= abi.X86FPStateLegacySize && n <= 1<<16 {
			return n
		}
	}
	return abi.X86FPStateLegacySize
}

// pushFrame builds a kernel-style rt_sigframe for sig on the guest's stack
// and points uc at the guest's handler.
func (t *tier) pushFrame(uc *ucontext, sig int, act guestAction, info []byte, oldMask uint64) bool {
	s := t.sig
	if act.flags&abi.SARestorer == 0 || act.restorer == 0 {
		return false // x86-64 requires a restorer, as the kernel does
	}
	sp := uc.Gregs[regRSP]
	onAlt := s.altFlags&abi.SSDisable == 0 && sp-s.altSP < s.altSize
	if act.flags&abi.SAOnstack != 0 && s.altFlags&abi.SSDisable == 0 && !onAlt {
		sp = s.altSP + s.altSize
	} else {
		sp -= 128 // red zone
	}
	fpsz := uint64(0)
	if uc.Fpregs != 0 {
		fpsz = fpstateSize(uc.Fpregs)
	}
	sp = (sp - fpsz) &^ 63
	fpAddr := sp
	const frameSize = 8 + sizeofUcontext + 128
	sp = ((sp - frameSize) &^ 15) - 8
	ucAddr, infoAddr := sp+8, sp+8+sizeofUcontext

	frame := *uc
	frame.Sigmask = oldMask
	frame.SsSp, frame.SsSize = s.altSP, s.altSize
	frame.SsFlags = s.altFlags
	if onAlt {
		frame.SsFlags = abi.SSOnstack
	}
	if fpsz > 0 {
		fp := make([]byte, fpsz)
		if (memory{}).Read(uc.Fpregs, fp) != nil || (memory{}).Write(fpAddr, fp) != nil {
			return false
		}
		frame.Fpregs = fpAddr
	}
	var ret [8]byte
	binary.LittleEndian.PutUint64(ret[:], act.restorer)
	m := memory{}
	if m.Write(sp, ret[:]) != nil || m.Write(ucAddr, bytesAt(&frame)[:sizeofUcontext]) != nil || m.Write(infoAddr, info[:128]) != nil {
		return false
	}
	g := &uc.Gregs
	g[regRIP] = act.handler
	g[regRSP] = sp
	g[regRDI] = uint64(sig)
	g[regRSI] = infoAddr
	g[regRDX] = ucAddr
	g[regRAX] = 0
	g[regEFL] &^= 1<<10 | 1<<8 | 1<<16 // DF, TF, RF: as the kernel clears them
	return true
}

// flagsUserMask are the RFLAGS bits a sigreturn may set (the kernel's
// FIX_EFLAGS: AC, OF, DF, TF, SF, ZF, AF, PF, CF, RF).
const flagsUserMask = 0x40000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000

func sysRtSigreturn(t *tier, c *call) int64 {
	uc := c.uc
	ucAddr := uc.Gregs[regRSP]
	var frame ucontext
	if (memory{}).Read(ucAddr, bytesAt(&frame)[:sizeofUcontext]) != nil {
		t.killedBy(int(unix.SIGSEGV))
	}
	c.keepRegs = true
	for i := 0; i < nGregs; i++ {
		switch i {
		case regCSGSFS, regERR, regTRAPNO, regOLDMASK, regCR2:
			continue
		case regEFL:
			uc.Gregs[i] = uc.Gregs[i]&^flagsUserMask | frame.Gregs[i]&flagsUserMask
		default:
			uc.Gregs[i] = frame.Gregs[i]
		}
	}
	if frame.Fpregs != 0 && uc.Fpregs != 0 {
		n := fpstateSize(uc.Fpregs)
		if fpstateSize(frame.Fpregs) != n {
			n = 512
		}
		fp := make([]byte, n)
		if (memory{}).Read(frame.Fpregs, fp) == nil {
			(memory{}).Write(uc.Fpregs, fp)
		}
	}
	s := t.sig
	s.mu.Lock()
	s.mask = frame.Sigmask &^ unblockable
	s.mu.Unlock()
	return 0
}

// hostPause sleeps until a signal kicks the guest thread.
func hostPause() { blockingSyscall(unix.SYS_PAUSE, [6]uint64{}) }
