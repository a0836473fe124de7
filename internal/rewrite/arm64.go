package rewrite

import (
	"debug/elf"
	"encoding/binary"
)

// arm64 is the AArch64 planner and encoder. Instructions are 4 bytes and
// aligned, so a site displaces nothing: the `svc #0` itself becomes a
// branch to its trampoline.
//
//	site:  svc #0                  =>  b slot   (or b veneer, beyond ±128 MiB)
//	slot:  ldr x16, fast           ; the fast path's entry
//	       adr x17, trap           ; where the fast path falls back
//	       br  x16
//	trap:  svc #0                  ; the fast path's fallback: traps
//	       ldr x16, back           ; back = site + 4
//	       br  x16
//	       nop; nop
//	fast:  .quad fast path
//	back:  .quad site + 4
//
// The slot clobbers x16 and x17 (IP0 and IP1, the registers AAPCS64 lets
// any branch veneer clobber), so only sites after which both are dead are
// planned: the syscall's result goes straight back to the caller (WRAPPER:
// `ret`, or a few straight-line instructions that name neither register
// and then `ret`, on every path of a following b.cond), or to a call
// (`bl`, which may clobber both). Every other site
// (COMPLEX) keeps its svc and traps. The kernel preserves every register
// but x0 across svc; the fast path must as well, x16 and x17 aside.
//
// musl's cancellation wrappers (open, read, close, ... call
// __syscall_cancel(a, b, c, d, e, f, nr) instead of issuing svc) are
// planned separately (PlanCancel): their `bl` becomes a branch to a slot
// that takes the number from x6 instead. At a call x8, x16 and x17 are all
// caller-saved, so that slot may clobber them.
type arm64 struct{}

// ARM64 plans and encodes AArch64 code; beyond ISA it has Veneer and
// the cancel-wrapper planner.
var ARM64 = arm64{}

var _ ISA = ARM64

const (
	a64SVC0 = 0xd4000001
	a64RET  = 0xd65f03c0
	a64NOP  = 0xd503201f
	// a64BRX16 is br x16.
	a64BRX16 = 0xd61f0200
	// a64MovX8X6 is mov x8, x6 (orr x8, xzr, x6).
	a64MovX8X6 = 0xaa0603e8
	// a64Reach is a b or bl's reach: imm26 words either way.
	a64Reach = 128 << 20
	// a64MaxWrapperTail is how many instructions may follow an svc
	// before the ret of a WRAPPER site.
	a64MaxWrapperTail = 4
	// a64MaxJumpedTail is how many instructions the code an
	// unconditional b leads to may run before its ret (glibc's
	// __syscall_error: 8), and a64MaxJumps how many such b are followed.
	a64MaxJumpedTail = 16
	a64MaxJumps      = 2
)

func (arm64) Machine() elf.Machine { return elf.EM_AARCH64 }

func insnAt(code []byte, off int) (uint32, bool) {
	if off < 0 || off+4 > len(code) || off%4 != 0 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(code[off:]), true
}

// isBranchClass reports whether insn is in the branch, exception and
// system group (b, bl, b.cond, cb*, tb*, br, blr, ret, svc, msr, ...):
// anything that is not straight-line arithmetic or memory access. Hints
// (nop, bti, paciasp, autiasp) are straight-line.
func isBranchClass(insn uint32) bool {
	return insn&0x1c000000 == 0x14000000 && insn&0xfffff01f != 0xd503201f
}

// namesIP reports whether any register field of insn could be x16 or x17
// (conservatively: an immediate that happens to look like one counts).
func namesIP(insn uint32) bool {
	for _, shift := range []uint{0, 5, 10, 16} {
		if r := insn >> shift & 31; r == 16 || r == 17 {
			return true
		}
	}
	return false
}

// bcondTarget decodes b.cond: the target offset, relative to the insn.
func bcondTarget(insn uint32) (int, bool) {
	if insn&0xff000010 != 0x54000000 {
		return 0, false
	}
	imm19 := int32(insn<<8) >> 13 // sign-extend bits 5..23
	return int(imm19) * 4, true
}

// reachesRet reports whether straight-line code from off (following at
// most a64MaxJumps unconditional b) reaches a ret or a bl within n
// instructions (a64MaxJumpedTail after a b) without naming x16 or x17. A bl ends
// their lives as a ret does: AAPCS64 lets the callee, or a linker veneer
// on the way to it, clobber both, so no caller relies on them across a
// call (musl's syscall(): `svc #0; bl __syscall_ret`).
func reachesRet(code []byte, off, n int) bool {
	jumps := 0
	for i := 0; i < n; i++ {
		insn, ok := insnAt(code, off)
		if !ok {
			return false
		}
		if insn == a64RET {
			return true
		}
		if _, ok := blTarget(insn); ok {
			return true
		}
		if rel, ok := bTarget(insn); ok && jumps < a64MaxJumps {
			// The path goes on at the target, whatever it is (glibc's
			// syscall(): b.cs to `b __syscall_error`): follow it.
			jumps++
			off += rel
			i, n = -1, a64MaxJumpedTail
			continue
		}
		if (isBranchClass(insn) && !isMRS(insn)) || namesIP(insn) {
			return false
		}
		off += 4
	}
	return false
}

// bTarget decodes b (not bl): the target offset relative to the insn.
func bTarget(insn uint32) (int, bool) {
	if insn&0xfc000000 != 0x14000000 {
		return 0, false
	}
	return int(int32(insn<<6)>>6) * 4, true
}

// isMRS reports mrs Xt, <sysreg>: a read into Xt (of TPIDR_EL0 for a
// thread's errno, say), straight-line for the ret search.
func isMRS(insn uint32) bool { return insn&0xfff00000 == 0xd5300000 }

// wrapper reports whether x16 and x17 are dead after the svc at off: its
// result goes back to the caller along every path.
func wrapper(code []byte, off int) bool {
	if reachesRet(code, off+4, a64MaxWrapperTail) {
		return true
	}
	// cmn x0|w0, #imm; b.cond err: both ways must reach a ret.
	cmn, ok1 := insnAt(code, off+4)
	bc, ok2 := insnAt(code, off+8)
	if !ok1 || !ok2 || cmn&0x7f8003ff != 0x3100001f {
		return false
	}
	rel, ok := bcondTarget(bc)
	return ok && reachesRet(code, off+12, a64MaxWrapperTail) && reachesRet(code, off+8+rel, a64MaxWrapperTail)
}

// Plan finds every aligned svc #0; the WRAPPER ones are planned.
func (arm64) Plan(code []byte) ([]Site, int) {
	var plan []Site
	found := 0
	for off := 0; off+4 <= len(code); off += 4 {
		if binary.LittleEndian.Uint32(code[off:]) != a64SVC0 {
			continue
		}
		found++
		if wrapper(code, off) {
			plan = append(plan, Site{uint32(off), uint32(off)})
		}
	}
	return plan, found
}

// Valid re-checks a plan: each site is an aligned svc #0 of a WRAPPER.
func (a arm64) Valid(code []byte, plan []Site) bool {
	for _, p := range plan {
		if p.Start != p.Sys {
			return false
		}
		if insn, ok := insnAt(code, int(p.Sys)); !ok || insn != a64SVC0 || !wrapper(code, int(p.Sys)) {
			return false
		}
	}
	return true
}

// branch encodes b (link false) or bl from pc to target; ok is false
// beyond ±128 MiB or for a misaligned target.
func branch(pc, target uint64, link bool) (uint32, bool) {
	d := int64(target - pc)
	if d%4 != 0 || d < -a64Reach || d >= a64Reach {
		return 0, false
	}
	op := uint32(0x14000000)
	if link {
		op = 0x94000000
	}
	return op | uint32(d/4)&0x3ffffff, true
}

// SitePatch is `b tramp` over the svc (end is site+4). It returns nil when
// the trampoline is out of the branch's reach: the caller then places a
// Veneer within reach and patches a branch to it.
func (arm64) SitePatch(site, end, tramp uint64) []byte {
	insn, ok := branch(site, tramp, false)
	if !ok || end != site+4 {
		return nil
	}
	return binary.LittleEndian.AppendUint32(nil, insn)
}

// Veneer is a 16-byte stub that jumps anywhere: ldr x16, #8; br x16;
// .quad target. It clobbers x16, which every planned site allows.
func (arm64) Veneer(target uint64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, ldrLiteral(16, 8))
	b = binary.LittleEndian.AppendUint32(b, a64BRX16)
	return binary.LittleEndian.AppendUint64(b, target)
}

// ldrLiteral encodes ldr Xt, [pc + off].
func ldrLiteral(rt uint32, off int) uint32 {
	return 0x58000000 | uint32(off/4)&0x7ffff<<5 | rt
}

// adr encodes adr Xd, pc + off.
func adr(rd uint32, off int) uint32 {
	imm := uint32(off) & 0x1fffff
	return 0x10000000 | (imm&3)<<29 | (imm>>2)<<5 | rd
}

// slot encodes an svc slot (cancel: a cancel slot, whose number is in x6)
// at addr that resumes at back.
func slot(cancel bool, back, fast uint64) []byte {
	var w []uint32
	if cancel {
		w = append(w, a64MovX8X6)
	}
	base := 4 * len(w)
	// ldr x16, fast; adr x17, trap; br x16; trap: svc; ldr x16, back; br x16
	w = append(w, ldrLiteral(16, 32-base), adr(17, 8), a64BRX16, a64SVC0, ldrLiteral(16, 40-(base+16)), a64BRX16)
	for 4*len(w) < 32 {
		w = append(w, a64NOP)
	}
	var b []byte
	for _, x := range w {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	b = binary.LittleEndian.AppendUint64(b, fast)
	return binary.LittleEndian.AppendUint64(b, back)
}

// Trampoline encodes the svc slot at addr for the site ending at siteEnd
// (nothing is displaced on arm64).
func (arm64) Trampoline(displaced []byte, origin, addr, siteEnd, fast uint64) []byte {
	return slot(false, siteEnd, fast)
}

// TrapAddr is the address after the slot's svc.
func (arm64) TrapAddr(b []byte, addr uint64) uint64 {
	if binary.LittleEndian.Uint32(b) == a64MovX8X6 {
		return addr + 20
	}
	return addr + 16
}

// SyscallReturns: every planned arm64 site is a WRAPPER.
func (arm64) SyscallReturns(code []byte, sys uint32) bool { return wrapper(code, int(sys)) }

// CancelSite is a musl cancellation wrapper call: `movz x6, #Nr` and, at
// BL, the `bl __syscall_cancel` a cancel slot replaces.
type CancelSite struct {
	Movz, BL uint32
	Nr       uint16
}

// The cancel detector's bounds (the reference's, docs/rewrite.md).
const (
	cancelWindow   = 32  // bytes from the movz to the bl
	cancelDepth    = 2   // bl hops followed from the call's target
	cancelFuncMax  = 128 // instructions scanned per function
	cancelShuffles = 4   // mov Xd, Xm right before the svc
)

// movzX6 decodes movz x6|w6, #imm (no shift).
func movzX6(insn uint32) (uint16, bool) {
	if insn&0x7fe0001f != 0x52800006 {
		return 0, false
	}
	return uint16(insn >> 5), true
}

// blTarget decodes bl: the target offset relative to the insn.
func blTarget(insn uint32) (int, bool) {
	if insn&0xfc000000 != 0x94000000 {
		return 0, false
	}
	return int(int32(insn<<6)>>6) * 4, true
}

// isMovReg reports whether insn is mov Xd, Xm (orr Xd, xzr, Xm).
func isMovReg(insn uint32) bool { return insn&0xffe0ffe0 == 0xaa0003e0 }

// a64MovX8X0 is mov x8, x0: the number taken from the first argument.
const a64MovX8X0 = 0xaa0003e8

// cancelTarget reports whether the function at off (in code) reaches, by
// following its first bl at most depth times, an svc #0 right after at
// least cancelShuffles argument moves: the __syscall_cancel chain. A
// shuffle that takes the number from x0 (`mov x8, x0`) is musl 1.2's
// __syscall_cp(nr, a, b, c, d, e, f), whose x6 is the sixth argument,
// not the number: a `movz x6, #0; bl __syscall_cp` there must not match.
func cancelTarget(code []byte, off, depth int) bool {
	moves := 0
	fromX0 := false
	for i := 0; i < cancelFuncMax; i++ {
		insn, ok := insnAt(code, off+4*i)
		if !ok || insn == a64RET {
			return false
		}
		if insn == a64SVC0 {
			return moves >= cancelShuffles && !fromX0
		}
		if isMovReg(insn) {
			moves++
			fromX0 = fromX0 || insn == a64MovX8X0
			continue
		}
		moves, fromX0 = 0, false
		if rel, ok := blTarget(insn); ok {
			return depth > 0 && cancelTarget(code, off+4*i+rel, depth-1)
		}
	}
	return false
}

// PlanCancel finds musl's cancellation wrapper calls in code: a movz x6
// followed within 32 bytes by a bl (never a b: a tail call's return is
// not ours to take) with no svc between, whose target in the same code
// reaches the argument-shuffling svc of __syscall_cancel within two
// further calls. Whether to promote them is the caller's (a static
// program that cannot start threads: no cancellation can be pending).
func (arm64) PlanCancel(code []byte) []CancelSite {
	var out []CancelSite
	for off := 0; off+4 <= len(code); off += 4 {
		nr, ok := movzX6(binary.LittleEndian.Uint32(code[off:]))
		if !ok {
			continue
		}
		for k := 4; k <= cancelWindow && off+k+4 <= len(code); k += 4 {
			insn := binary.LittleEndian.Uint32(code[off+k:])
			if insn == a64SVC0 {
				break
			}
			if _, isMovz := movzX6(insn); isMovz {
				break // x6 set again: the later movz starts its own match
			}
			rel, ok := blTarget(insn)
			if !ok {
				continue
			}
			if t := off + k + rel; t >= 0 && t < len(code) && cancelTarget(code, t, cancelDepth) {
				out = append(out, CancelSite{Movz: uint32(off), BL: uint32(off + k), Nr: nr})
			}
			break
		}
	}
	return out
}

// CancelTrampoline encodes the cancel slot at addr for a cancel site whose
// bl is at blAddr: it resumes at blAddr+4 with the raw result in x0, as
// __syscall_cancel returns it.
func (arm64) CancelTrampoline(blAddr, addr, fast uint64) []byte {
	return slot(true, blAddr+4, fast)
}
