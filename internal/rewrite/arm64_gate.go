package rewrite

import "encoding/binary"

// The cancel-wrapper promotion's gate (docs/cancel-wrapper.md) needs the
// syscall numbers a program's code can issue through wrappers: promoting
// musl's cancellation calls is sound only when no thread can exist to
// cancel them, so a program with a clone site keeps its cancellation
// points.

// ForkNumbers are arm64's fork-family syscalls: clone and clone3 (arm64
// has no fork or vfork; libc's fork is clone).
var ForkNumbers = []uint16{220, 435}

// wrapperWindow is how many instructions before an svc a movz x8 may be.
const wrapperWindow = 4

// movzX8 decodes movz x8|w8, #imm (no shift).
func movzX8(insn uint32) (uint16, bool) {
	if insn&0x7fe0001f != 0x52800008 {
		return 0, false
	}
	return uint16(insn >> 5), true
}

// WrapperNumbers lists the syscall numbers code issues through wrappers:
// every svc #0 whose x8 a movz set among the instructions just before it
// (none of them a branch or another write of x8), and every cancellation
// wrapper call PlanCancel finds. unknown counts the svc whose number is
// not such a constant (libc's syscall(), hand-written assembly).
func (a arm64) WrapperNumbers(code []byte) (nrs []uint16, unknown int) {
	for off := 0; off+4 <= len(code); off += 4 {
		if binary.LittleEndian.Uint32(code[off:]) != a64SVC0 {
			continue
		}
		found := false
		for k := 1; k <= wrapperWindow && off-4*k >= 0; k++ {
			insn := binary.LittleEndian.Uint32(code[off-4*k:])
			if nr, ok := movzX8(insn); ok {
				nrs = append(nrs, nr)
				found = true
				break
			}
			if isBranchClass(insn) || insn&31 == 8 {
				break // a branch, or something else writing x8 (or w8)
			}
		}
		if !found {
			unknown++
		}
	}
	for _, s := range a.PlanCancel(code) {
		nrs = append(nrs, s.Nr)
	}
	return nrs, unknown
}

// HasForkSite reports whether code has a wrapper for a fork-family call.
func (a arm64) HasForkSite(code []byte) bool {
	nrs, _ := a.WrapperNumbers(code)
	for _, nr := range nrs {
		for _, f := range ForkNumbers {
			if nr == f {
				return true
			}
		}
	}
	return false
}
