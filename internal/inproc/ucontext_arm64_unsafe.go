//go:build cgo && linux && arm64

package inproc

import "unsafe"

// The kernel's signal frame on arm64 (arch/arm64/include/uapi/asm/ucontext.h,
// sigcontext.h): struct ucontext with a 1024-bit sigset area, then the
// 16-byte aligned struct sigcontext (fault address, x0..x30, sp, pc,
// pstate) and its 4096-byte __reserved area of records (fpsimd_context,
// esr_context, sve_context, ...; a zero magic ends them).
type ucontext struct {
	Flags        uint64
	Link         uint64
	SsSp         uint64
	SsFlags      uint64 // int plus padding
	SsSize       uint64
	Sigmask      uint64
	_            [15]uint64 // the rest of the kernel's 128-byte sigset area
	_            uint64     // alignment of uc_mcontext
	FaultAddress uint64
	Regs         [31]uint64
	Sp           uint64
	Pc           uint64
	Pstate       uint64
	_            uint64 // alignment of __reserved
	Reserved     [4096]byte
}

// Size of the kernel's struct ucontext, checked by a test.
const sizeofUcontext = 4560

func ucontextAt(p unsafe.Pointer) *ucontext { return (*ucontext)(p) }

// The argument registers of the arm64 syscall ABI (the number is in x8).
func (u *ucontext) args() [6]uint64 {
	r := &u.Regs
	return [6]uint64{r[0], r[1], r[2], r[3], r[4], r[5]}
}

// The registers the architecture-neutral code reads and writes: the
// instruction pointer (after the svc at a trap), the stack pointer, and
// the syscall result (x0).
func (u *ucontext) pc() uint64        { return u.Pc }
func (u *ucontext) sp() uint64        { return u.Sp }
func (u *ucontext) setResult(r int64) { u.Regs[0] = uint64(r) }

// restart makes the trapped syscall run again when the context resumes,
// as the kernel does for ERESTARTSYS: back to the svc. The kernel shows a
// SECCOMP_RET_TRAP handler the original registers (x0 is still the first
// argument, x8 the number) and no result has been written.
func (u *ucontext) restart(nr int) {
	u.Pc -= syscallInsnLen
	u.Regs[8] = uint64(nr)
}

// syscallInsnLen is the length of svc #0.
const syscallInsnLen = 4

// pstateNZCV are the condition flags, the PSTATE bits user code owns.
const pstateNZCV = 0xf0000000

// execReset starts a new program in the context: every register zero but
// the instruction and stack pointers, as the kernel starts a process.
func (u *ucontext) execReset(entry, sp uint64) {
	u.Regs = [31]uint64{}
	u.Pc = entry
	u.Sp = sp
	u.Pstate &^= pstateNZCV | pstateBTYPE
}

// platform is AT_PLATFORM, as the kernel gives it.
const platform = "aarch64"

// minSigstksz is the smallest alternate signal stack sigaltstack accepts
// (arm64's MINSIGSTKSZ: its frames carry the FP/SIMD records).
const minSigstksz = 5120
