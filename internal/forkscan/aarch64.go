package forkscan

import (
	"encoding/binary"

	"github.com/kbox-go/kbox/internal/rewrite"
)

// AArch64 code: every instruction is 4 bytes, aligned, so there is no
// decoding to get wrong; a syscall is `svc #imm` (Linux ignores the
// immediate) with its number in x8. A wrapper sets x8 with `movz x8|w8,
// #nr` among the few instructions before its svc: glibc's and musl's
// clone, `mov x8, #220; svc #0` right away; a hand-written wrapper may
// move its arguments first. musl's and glibc's cancellation points call
// a shared `__syscall_cancel`, whose svc takes the number from a register:
// their numbers are the `movz x6, #nr` before each `bl`, which
// rewrite.ARM64.PlanCancel finds and validates (the rewrite tier's own
// detector, so the sites the cancel promotion patches and the sites this
// scan counts are one set).

// arm64Window is how many instructions before an svc a movz x8 may be.
const arm64Window = 4

const (
	a64SVCMask = 0xffe0001f
	a64SVC     = 0xd4000001
)

// movzX8 decodes movz x8|w8, #imm (no shift).
func movzX8(insn uint32) (uint32, bool) {
	if insn&0x7fe0001f != 0x52800008 {
		return 0, false
	}
	return insn >> 5 & 0xffff, true
}

// a64BranchOrSystem reports whether insn is in the branch, exception and
// system group (b, bl, b.cond, cb*, tb*, br, blr, ret, svc, msr, ...),
// hints (nop, bti, pac*) excepted: the trace back from an svc stops there.
func a64BranchOrSystem(insn uint32) bool {
	return insn&0x1c000000 == 0x14000000 && insn&0xfffff01f != 0xd503201f
}

// a64MayWriteX8 reports whether insn may write x8 (or w8), over-
// approximated: any instruction whose first register field is 8 (the
// destination of data processing and loads; a store's source counts too,
// harmlessly), and the second register of load/store pair and exclusive
// forms (ldp x7, x8; ldxp; casp).
func a64MayWriteX8(insn uint32) bool {
	if insn&31 == 8 {
		return true
	}
	pair := insn&0x3a000000 == 0x28000000 // load/store pair
	excl := insn&0x3f000000 == 0x08000000 // load/store exclusive, casp
	if pair || excl {
		for _, shift := range []uint{10, 16} {
			if r := insn >> shift & 31; r == 7 || r == 8 {
				return true
			}
		}
	}
	return false
}

// a64BranchTarget decodes the direct branches (b, bl, b.cond, cbz, cbnz,
// tbz, tbnz): the target's offset relative to the instruction.
func a64BranchTarget(insn uint32) (int, bool) {
	switch {
	case insn&0x7c000000 == 0x14000000: // b, bl: imm26
		return int(int32(insn<<6)>>6) * 4, true
	case insn&0xff000010 == 0x54000000, // b.cond: imm19
		insn&0x7e000000 == 0x34000000: // cbz, cbnz: imm19
		return int(int32(insn<<8)>>13) * 4, true
	case insn&0x7e000000 == 0x36000000: // tbz, tbnz: imm14
		return int(int32(insn<<13)>>16) * 4, true
	}
	return 0, false
}

// scanRegionARM64 reads one run of AArch64 code at file offset off and
// virtual address addr (see scanRegion).
func (r *Report) scanRegionARM64(code []byte, off int64, addr uint64) {
	r.CodeBytes += int64(len(code))
	// Instructions sit at 4-byte aligned addresses.
	skip := int((4 - addr%4) % 4)
	if skip > len(code) {
		skip = len(code)
	}
	r.Undecodable += skip + (len(code)-skip)%4
	code, off, addr = code[skip:], off+int64(skip), addr+uint64(skip)
	code = code[:len(code)&^3]
	insn := func(i int) uint32 { return binary.LittleEndian.Uint32(code[4*i:]) }
	n := len(code) / 4

	targets := make(bitset, (n+63)/64)
	for i := 0; i < n; i++ {
		if rel, ok := a64BranchTarget(insn(i)); ok {
			if t := i + rel/4; t >= 0 && t < n {
				targets[t/64] |= 1 << (t % 64)
			}
		}
	}
	add := func(from, sc int, nr uint32, kind SiteKind) {
		r.ForkSites = append(r.ForkSites, Site{
			Offset:  off + int64(4*from),
			Addr:    addr + uint64(4*from),
			Syscall: addr + uint64(4*sc),
			Nr:      nr,
			Kind:    kind,
			Machine: arm64Spec.machine,
		})
	}
	for i := 0; i < n; i++ {
		if insn(i)&a64SVCMask != a64SVC {
			continue
		}
		from, nr, found := -1, uint32(0), false
		for k := 1; k <= arm64Window && i-k >= 0; k++ {
			prev := insn(i - k)
			if v, ok := movzX8(prev); ok {
				from, nr, found = i-k, v, true
				break
			}
			if a64BranchOrSystem(prev) || a64MayWriteX8(prev) {
				break
			}
		}
		switch {
		case !found:
			r.UnknownSites++
		case arm64Spec.isFork(nr):
			// A branch into the window only adds paths.
			kind := Traced
			if from == i-1 {
				kind = Pair
			}
			add(from, i, nr, kind)
		case targets.hasIn(from+1, i):
			r.UnknownSites++ // another path may bring another number
		}
	}
	for _, s := range rewrite.ARM64.PlanCancel(code) {
		if arm64Spec.isFork(uint32(s.Nr)) {
			add(int(s.Movz/4), int(s.BL/4), uint32(s.Nr), Cancel)
		}
	}
}
