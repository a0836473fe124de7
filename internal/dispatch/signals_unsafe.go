package dispatch

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// siginfoSize is sizeof(siginfo_t).
const siginfoSize = 128

// pidfdSendSignal is pidfd_send_signal(fd, sig, info, flags) with info a
// raw siginfo_t (nil: the kernel's own for a kill or tkill).
func pidfdSendSignal(fd, sig int, info *[siginfoSize]byte, flags int) error {
	var p unsafe.Pointer
	if info != nil {
		p = unsafe.Pointer(&info[0])
	}
	_, _, en := unix.Syscall6(unix.SYS_PIDFD_SEND_SIGNAL, uintptr(fd), uintptr(sig), uintptr(p), uintptr(flags), 0, 0)
	if en != 0 {
		return en
	}
	return nil
}
