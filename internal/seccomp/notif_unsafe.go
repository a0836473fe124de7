package seccomp

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The user-notification ABI (linux/seccomp.h). Invariant relied on here:
// these structs have the kernel's layout on every 64-bit little-endian
// architecture kbox supports; TestNotifLayout checks the sizes.

// Notif is struct seccomp_notif. Data has seccomp_data's layout.
type Notif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Data  Data
}

// NotifResp is struct seccomp_notif_resp.
type NotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// NotifAddFD is struct seccomp_notif_addfd.
type NotifAddFD struct {
	ID         uint64
	Flags      uint32
	SrcFD      uint32
	NewFD      uint32
	NewFDFlags uint32
}

func ioctlPtr(fd int, req uint, arg unsafe.Pointer) (uintptr, error) {
	r, _, en := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if en != 0 {
		return 0, en
	}
	return r, nil
}

// Recv receives one notification (blocking). ENOENT means the notifying
// task went away before it could be delivered: go on.
func Recv(listener int, n *Notif) error {
	*n = Notif{}
	_, err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(n))
	return err
}

// Send answers a notification. ENOENT means the task is gone: go on.
func Send(listener int, r *NotifResp) error {
	_, err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(r))
	return err
}

// IDValid reports (as a nil error) that notification id is still pending,
// i.e. the task has not been killed or interrupted since it was received.
func IDValid(listener int, id uint64) error {
	_, err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id))
	return err
}

// AddFD installs a descriptor in the notifying task; it returns the number
// the task got (with unix.SECCOMP_ADDFD_FLAG_SEND it is also the reply).
func AddFD(listener int, a *NotifAddFD) (int, error) {
	r, err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_ADDFD, unsafe.Pointer(a))
	return int(r), err
}

// SetSyncWakeup asks the kernel to wake the notifying task synchronously
// on the supervisor's CPU (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6).
func SetSyncWakeup(listener int) error {
	_, _, en := unix.Syscall(unix.SYS_IOCTL, uintptr(listener), uintptr(unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS), uintptr(unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP))
	if en != 0 {
		return en
	}
	return nil
}

// InstallFilter installs prog on the calling thread with seccomp(2) and
// returns what the kernel returns (the listener descriptor with
// SECCOMP_FILTER_FLAG_NEW_LISTENER). The caller must hold
// PR_SET_NO_NEW_PRIVS or CAP_SYS_ADMIN.
func InstallFilter(prog []unix.SockFilter, flags uint) (int, error) {
	if len(prog) == 0 {
		return -1, unix.EINVAL
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, en := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	if en != 0 {
		return -1, en
	}
	return int(r), nil
}

// Sizes of the ABI structs, for tests.
const (
	sizeofNotif      = unsafe.Sizeof(Notif{})
	sizeofNotifResp  = unsafe.Sizeof(NotifResp{})
	sizeofNotifAddFD = unsafe.Sizeof(NotifAddFD{})
)
