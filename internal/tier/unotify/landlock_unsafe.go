package unotify

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Landlock is kbox's kernel-enforced backstop, applied by the launcher to
// itself (and so to every guest process) before the seccomp filter:
//
//   - execute: the kernel may execute only files beneath the host
//     directories of the guest's mounts (and memfds, which Landlock never
//     restricts). kbox rewrites the exec path in guest memory; if another
//     guest thread changed it before the kernel read it, the kernel would
//     resolve a guest-chosen path on the host. With this ruleset such an
//     exec, and the host interpreter of any binary, is refused.
//   - signals (ABI 6): signals reach only processes of the guest's domain.
//
// Invariant: the guest never makes the kernel resolve any other path (no
// path syscall is continued), so restricting execute is enough.

// abiVersion flag of landlock_create_ruleset.
const landlockCreateRulesetVersion = 1

// LandlockABI returns the kernel's Landlock ABI version, 0 when Landlock is
// unavailable.
func LandlockABI() int {
	v, _, en := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, landlockCreateRulesetVersion)
	if en != 0 {
		return 0
	}
	return int(v)
}

// scopeSignal is LANDLOCK_SCOPE_SIGNAL (ABI 6).
const scopeSignal = 0x2

// restrictExec applies the ruleset: execute only beneath roots.
func restrictExec(roots []string, abi int) error {
	attr := unix.LandlockRulesetAttr{Handled_access_fs: unix.LANDLOCK_ACCESS_FS_EXECUTE}
	size := unsafe.Sizeof(attr)
	if abi >= 6 {
		attr.Scoped = scopeSignal
	} else {
		// Older kernels reject the larger struct: pass only the first field.
		size = unsafe.Sizeof(attr.Handled_access_fs)
	}
	fd, _, en := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if en != 0 {
		return fmt.Errorf("landlock_create_ruleset: %w", en)
	}
	defer unix.Close(int(fd))
	for _, root := range roots {
		dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("landlock rule for %s: %w", root, err)
		}
		pb := unix.LandlockPathBeneathAttr{Allowed_access: unix.LANDLOCK_ACCESS_FS_EXECUTE, Parent_fd: int32(dir)}
		_, _, en := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, fd, unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&pb)), 0, 0, 0)
		unix.Close(dir)
		if en != 0 {
			return fmt.Errorf("landlock_add_rule %s: %w", root, en)
		}
	}
	if _, _, en := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); en != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", en)
	}
	return nil
}
