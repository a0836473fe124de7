package rewrite

import (
	"debug/elf"
	"encoding/binary"

	"github.com/kbox-go/kbox/internal/x86len"
)

// x86 is the x86-64 instruction set's planner and encoder.
//
//	site:  <displaced instructions, >= 3 bytes> syscall   (>= 5 bytes)
//	  =>   jmp tramp; int3 ...
//	tramp: <displaced instructions>
//	       movabs $tail+2, %rcx    ; where the fast path returns
//	       movabs $fast, %r11
//	       jmp *%r11
//	tail:  syscall                 ; the fast path's fallback: traps
//	       jmp site_end
//
// The displaced instructions are the ones just before the syscall (for
// `mov $nr,%eax; syscall` the mov alone), moved only when they are
// position-independent (no RIP-relative operand) or direct jumps
// (re-encoded), and no direct branch lands on any of them but the first or
// on the syscall. A site that does not qualify keeps its syscall and
// traps. The fast path runs descriptor-local calls on regular files
// natively and jumps back to `tail` for everything else, so a call the
// fast path does not take costs one trap, as in the trap tier.
type x86 struct{}

// X86_64 plans and encodes x86-64 code.
var X86_64 ISA = x86{}

// MaxDisplace is the most bytes x86-64 displaces into a trampoline (jumps
// grow by up to 4 bytes when re-encoded).
const MaxDisplace = 20

func (x86) Machine() elf.Machine { return elf.EM_X86_64 }

// SyscallReturns reports whether the syscall at sys is followed by ret (a
// libc wrapper's tail).
func (x86) SyscallReturns(code []byte, sys uint32) bool {
	return int(sys)+2 < len(code) && code[sys+2] == 0xc3
}

// relocatable reports whether instruction b can run unchanged at another
// address: register or register-based memory moves, xor, test, and
// immediate loads. Anything else (RIP-relative operands, branches, stack
// pushes, prefixes other than REX) is left in place.
func relocatable(b []byte) bool {
	in, err := x86len.Decode(b)
	if err != nil || in.Len != len(b) || in.Legacy > 0 || in.VEX {
		return false
	}
	if in.REX != 0 && in.Op != 1 || in.REX == 0 && in.Op != 0 {
		return false // prefixes beyond one REX (void or repeated ones)
	}
	op := b[in.Op]
	switch {
	case op >= 0xb8 && op <= 0xbf: // mov $imm, reg
		return true
	case op == 0x89 || op == 0x8b || op == 0x31 || op == 0x33 || op == 0x85 || (op == 0xc7 && in.REX&8 != 0) || op == 0x8d:
		if in.ModRM < 0 {
			return false
		}
		if op == 0x8d && b[in.ModRM]>>6 == 3 {
			return false // lea needs a memory operand
		}
		return !in.RIPRelative(b)
	}
	return false
}

// Plan finds the sites of code that can be patched, and how many
// syscall instructions it has in all.
func (x86) Plan(code []byte) ([]Site, int) {
	starts, _ := x86len.Boundaries(code)
	targets := x86len.BranchTargetBits(code, starts)
	isTarget := func(off int) bool { return targets[off/64]&(1<<(off%64)) != 0 }
	var plan []Site
	found := 0
	for k, off := range starts {
		if off+2 > len(code) || code[off] != 0x0f || code[off+1] != 0x05 {
			continue
		}
		found++
		if isTarget(off) {
			continue
		}
		j, n := k, 0
		ok := false
		for j > 0 && n < 3 {
			j--
			insn := code[starts[j]:starts[j+1]]
			// The decoder skips undecodable bytes: the instruction must
			// fill the gap to the next boundary exactly.
			if l, err := x86len.Len(insn); err != nil || l != len(insn) {
				break
			}
			if !movable(insn) || (n > 0 && isTarget(starts[j+1])) {
				break
			}
			n += len(insn)
			if n >= 3 {
				ok = n <= MaxDisplace
			}
		}
		if ok {
			plan = append(plan, Site{uint32(starts[j]), uint32(off)})
		}
	}
	return plan, found
}

// Valid re-checks a cached plan against the code: each site's
// displaced bytes decode, instruction by instruction, into relocatable
// instructions ending exactly at a syscall.
func (x86) Valid(code []byte, plan []Site) bool {
	for _, p := range plan {
		if int(p.Sys)+2 > len(code) || p.Start >= p.Sys || p.Sys-p.Start < 3 || p.Sys-p.Start > MaxDisplace ||
			code[p.Sys] != 0x0f || code[p.Sys+1] != 0x05 {
			return false
		}
		for off := int(p.Start); off < int(p.Sys); {
			n, err := x86len.Len(code[off:])
			if err != nil || !movable(code[off:off+n]) {
				return false
			}
			off += n
			if off > int(p.Sys) {
				return false
			}
		}
	}
	return true
}

// SitePatch is what replaces [site, end): a jump to the trampoline, then
// int3s (never reached: no branch lands inside the patched bytes).
func (x86) SitePatch(site, end, tramp uint64) []byte {
	b := make([]byte, end-site)
	b[0] = 0xe9
	binary.LittleEndian.PutUint32(b[1:], uint32(int32(int64(tramp)-int64(site+5))))
	for i := 5; i < len(b); i++ {
		b[i] = 0xcc
	}
	return b
}

// directJump decodes a direct jmp or jcc (rel8 or rel32): cond is the
// condition code, or -1 for an unconditional jmp; rel is the displacement
// from the end of the instruction.
func directJump(insn []byte) (cond int, rel int64, ok bool) {
	switch {
	case len(insn) == 2 && insn[0] >= 0x70 && insn[0] <= 0x7f:
		return int(insn[0] - 0x70), int64(int8(insn[1])), true
	case len(insn) == 2 && insn[0] == 0xeb:
		return -1, int64(int8(insn[1])), true
	case len(insn) == 6 && insn[0] == 0x0f && insn[1] >= 0x80 && insn[1] <= 0x8f:
		return int(insn[1] - 0x80), int64(int32(binary.LittleEndian.Uint32(insn[2:]))), true
	case len(insn) == 5 && insn[0] == 0xe9:
		return -1, int64(int32(binary.LittleEndian.Uint32(insn[1:]))), true
	}
	return 0, 0, false
}

// movable reports whether an instruction may be displaced into a
// trampoline: position-independent ones unchanged, direct jumps
// re-encoded with a 32-bit displacement to the same target (so glibc's
// `cmpb $0,single_threaded(%rip); je slow; xor %eax,%eax; syscall` is
// covered: the cmp stays, the je and xor move).
func movable(insn []byte) bool {
	if relocatable(insn) {
		return true
	}
	_, _, ok := directJump(insn)
	return ok
}

// Trampoline encodes the trampoline for one site (see the package
// comment) placed at addr. displaced holds the instructions
// moved from origin (their address in the guest).
func (x86) Trampoline(displaced []byte, origin, addr, siteEnd, fast uint64) []byte {
	var b []byte
	for off := 0; off < len(displaced); {
		n, err := x86len.Len(displaced[off:])
		if err != nil || off+n > len(displaced) {
			n = len(displaced) - off // cannot happen: Plan decoded them
		}
		insn := displaced[off : off+n]
		if cond, rel, ok := directJump(insn); ok {
			target := int64(origin) + int64(off+n) + rel
			at := int64(addr) + int64(len(b))
			if cond < 0 {
				b = append(b, 0xe9)
				b = binary.LittleEndian.AppendUint32(b, uint32(int32(target-(at+5))))
			} else {
				b = append(b, 0x0f, byte(0x80+cond))
				b = binary.LittleEndian.AppendUint32(b, uint32(int32(target-(at+6))))
			}
		} else {
			b = append(b, insn...)
		}
		off += n
	}
	tail := addr + uint64(len(b)) + 23
	// rcx: where the fast path returns, the jump back after tail's
	// syscall; its fallback runs the syscall at rcx-2.
	b = append(b, 0x48, 0xb9) // movabs $tail+2, %rcx
	b = binary.LittleEndian.AppendUint64(b, tail+2)
	b = append(b, 0x49, 0xbb) // movabs $fast, %r11
	b = binary.LittleEndian.AppendUint64(b, fast)
	b = append(b, 0x41, 0xff, 0xe3) // jmp *%r11
	b = append(b, 0x0f, 0x05)       // tail: syscall
	b = append(b, 0xe9)             // jmp siteEnd
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(int64(siteEnd)-int64(addr+uint64(len(b))+4))))
	return b
}

// TrapAddr returns the address the trampoline's trapping syscall reports
// (the instruction after it) for a trampoline b placed at addr.
func (x86) TrapAddr(b []byte, addr uint64) uint64 { return addr + uint64(len(b)) - 5 }
