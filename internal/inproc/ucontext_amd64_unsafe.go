//go:build cgo && linux && amd64

package inproc

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
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

// guestBytes views guest memory [addr, addr+n) as a slice. Only the memory
// accessor and the loader use it, under SetPanicOnFault (see memory.go).
func guestBytes(addr uint64, n int) []byte {
	p := *(*unsafe.Pointer)(unsafe.Pointer(&addr))
	return unsafe.Slice((*byte)(p), n)
}

// bytesAt views the plain-data struct at p as bytes.
func bytesAt[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

// addrOf returns the address of a Go buffer for a raw syscall argument.
func addrOf(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&b[0])))
}

// keep keeps Go buffers passed to raw syscalls by address alive until the
// call has returned.
func keep(bufs ...[]byte) { runtime.KeepAlive(bufs) }

// setThreadName names the calling thread (prctl PR_SET_NAME).
func setThreadName(name string) {
	b := append([]byte(name), 0)
	unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
}
