//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

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
