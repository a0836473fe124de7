//go:build cgo && linux && amd64

package inproc

import (
	"unsafe"

	"github.com/kbox-go/kbox/internal/abi"
)

// The kernel's signal frame on x86-64 (arch/x86/include/uapi/asm/ucontext.h,
// sigcontext.h): the handler's third argument points at a struct ucontext
// whose mcontext holds the interrupted registers in this order.
const (
	regR8 = iota
	regR9
	regR10
	regR11
	regR12
	regR13
	regR14
	regR15
	regRDI
	regRSI
	regRBP
	regRBX
	regRDX
	regRAX
	regRCX
	regRSP
	regRIP
	regEFL
	regCSGSFS
	regERR
	regTRAPNO
	regOLDMASK
	regCR2
	nGregs
)

// ucontext is struct ucontext as the kernel writes it (uc_sigmask is the
// kernel's 8-byte sigset; glibc's larger ucontext_t only extends it).
type ucontext struct {
	Flags   uint64
	Link    uint64
	SsSp    uint64
	SsFlags uint64 // int plus padding
	SsSize  uint64
	Gregs   [nGregs]uint64
	Fpregs  uint64 // address of the saved FPU state (struct _fpstate)
	_       [8]uint64
	Sigmask uint64
}

// Size of the kernel's struct ucontext, checked by a test.
const sizeofUcontext = 304

func ucontextAt(p unsafe.Pointer) *ucontext { return (*ucontext)(p) }

// The argument registers of the x86-64 syscall ABI.
func (u *ucontext) args() [6]uint64 {
	g := &u.Gregs
	return [6]uint64{g[regRDI], g[regRSI], g[regRDX], g[regR10], g[regR8], g[regR9]}
}

// The registers the architecture-neutral code reads and writes: the
// instruction pointer (after the syscall instruction at a trap), the stack
// pointer, and the syscall result.
func (u *ucontext) pc() uint64        { return u.Gregs[regRIP] }
func (u *ucontext) sp() uint64        { return u.Gregs[regRSP] }
func (u *ucontext) setResult(r int64) { u.Gregs[regRAX] = uint64(r) }

// restart makes the trapped syscall nr run again when the context
// resumes, as the kernel does for ERESTARTSYS: back to the syscall
// instruction with the number in rax (the argument registers are intact).
func (u *ucontext) restart(nr int) {
	u.Gregs[regRIP] -= syscallInsnLen
	u.Gregs[regRAX] = uint64(nr)
}

// syscallInsnLen is the length of the syscall instruction.
const syscallInsnLen = 2

// execReset starts a new program in the context: every register zero but
// the instruction and stack pointers, as the kernel starts a process.
func (u *ucontext) execReset(entry, sp uint64) {
	for i := range u.Gregs {
		switch i {
		case regCSGSFS, regERR, regTRAPNO, regOLDMASK, regCR2:
		default:
			u.Gregs[i] = 0
		}
	}
	u.Gregs[regRIP] = entry
	u.Gregs[regRSP] = sp
	u.Gregs[regEFL] = 0x202
}

// platform is AT_PLATFORM, as the kernel gives it.
const platform = "x86_64"

// minSigstksz is the smallest alternate signal stack sigaltstack accepts
// (MINSIGSTKSZ).
const minSigstksz = abi.MinSigstksz
