package dispatch

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctlBuf is ioctl(fd, req, buf) for requests taking a pointer to a
// struct kbox holds as bytes.
func ioctlBuf(fd int, req uint, buf []byte) error {
	_, _, en := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&buf[0])))
	if en != 0 {
		return en
	}
	return nil
}
