package dispatch

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bytesOf views a plain-data kernel struct (unix.Stat_t, unix.Statx_t,
// unix.Statfs_t, unix.OpenHow, ...) as the bytes the kernel ABI expects.
// Invariant: T has no pointers and its Go layout is the kernel's layout on
// this architecture (true for golang.org/x/sys/unix's generated types).
func bytesOf[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

// ptrOf returns the address of b's first byte for a raw syscall argument;
// callers keep b alive with keepAlive until the call returns.
func ptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }

func ptrOfMsghdr(h *unix.Msghdr) unsafe.Pointer { return unsafe.Pointer(h) }

// keepAlive keeps buffers reachable until after a raw syscall.
func keepAlive(bufs ...[]byte) { runtime.KeepAlive(bufs) }

func ptrOfU32(v *uint32) unsafe.Pointer { return unsafe.Pointer(v) }

// fcntlSetOwnerEx is fcntl(fd, F_SETOWN_EX, ex).
func fcntlSetOwnerEx(fd int, ex *fOwnerEx) error {
	_, _, en := unix.Syscall(unix.SYS_FCNTL, uintptr(fd), unix.F_SETOWN_EX, uintptr(unsafe.Pointer(ex)))
	if en != 0 {
		return en
	}
	return nil
}

// ioctlIntPtr is ioctl(fd, req, &v) for requests taking an int pointer.
func ioctlIntPtr(fd int, req uint, v *int32) error {
	_, _, en := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(v)))
	if en != 0 {
		return en
	}
	return nil
}

// rawGetdents reads directory entries in the getdents64 or the legacy
// getdents format.
func rawGetdents(fd int, buf []byte, is64 bool) (int, error) {
	nr := uintptr(unix.SYS_GETDENTS64)
	if !is64 {
		nr = legacyGetdentsNr
	}
	n, _, en := unix.Syscall(nr, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	if en != 0 {
		return 0, en
	}
	return int(n), nil
}
