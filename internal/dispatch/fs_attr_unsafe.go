package dispatch

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// utimensatRaw calls utimensat allowing a NULL times pointer and a NULL path.
func utimensatRaw(dirfd int, path string, ts []unix.Timespec, flags int) error {
	var pathPtr unsafe.Pointer
	if path != "" {
		b, err := unix.BytePtrFromString(path)
		if err != nil {
			return err
		}
		pathPtr = unsafe.Pointer(b)
	}
	var tsPtr unsafe.Pointer
	if ts != nil {
		tsPtr = unsafe.Pointer(&ts[0])
	}
	_, _, en := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(dirfd), uintptr(pathPtr), uintptr(tsPtr), uintptr(flags), 0, 0)
	if en != 0 {
		return en
	}
	return nil
}
