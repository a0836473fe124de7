// Package landlock owns kbox's use of the kernel's Landlock LSM: the ABI
// probe, the file-system rights each ABI knows, and building rulesets of
// path-beneath rules. The tiers decide what to restrict (the seccomp tier:
// execution, for the guest's processes; the in-process tiers: all file
// access, for the guest thread) and which thread restricts itself.
package landlock

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Landlock scopes (ABI 6).
const (
	// ScopeAbstractUnixSocket is LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET:
	// abstract AF_UNIX sockets reach only listeners of the domain.
	ScopeAbstractUnixSocket = 0x1
	// ScopeSignal is LANDLOCK_SCOPE_SIGNAL: signals reach only processes
	// of the restricted domain.
	ScopeSignal = 0x2
)

// TestHookEnv names the test hook that makes kbox behave as on a kernel
// without Landlock: with KBOX_TEST_NO_LANDLOCK=1 in kbox's environment
// when it starts, ABI reports 0, so neither tier applies a Landlock
// ruleset and kbox relies on its own checks alone (the exec race checks,
// process-group confinement). The integration tests use it to prove those
// checks on kernels that have Landlock. It only ever weakens kbox, and it
// is read once, from kbox's own environment, which a guest cannot set.
const TestHookEnv = "KBOX_TEST_NO_LANDLOCK"

// testNoLandlock is TestHookEnv, read when kbox starts.
var testNoLandlock = os.Getenv(TestHookEnv) == "1"

// ABI returns the kernel's Landlock ABI version, 0 when Landlock is
// unavailable (or disabled by the TestHookEnv test hook).
func ABI() int {
	if testNoLandlock {
		return 0
	}
	v, _, en := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, 1) // LANDLOCK_CREATE_RULESET_VERSION
	if en != 0 {
		return 0
	}
	return int(v)
}

// FSRights are the file-system rights ABI abi knows.
func FSRights(abi int) uint64 {
	r := uint64(unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_READ_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
		unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM)
	if abi >= 2 {
		r |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		r |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 5 {
		r |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	return r
}

// fileRights are the rights a rule on a file (not a directory) may grant.
const fileRights = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
	unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV

// Rule allows Access beneath the host path Path.
type Rule struct {
	Path   string
	Access uint64
}

// Ruleset creates a ruleset handling handledFS (and, with abi >= 6,
// scoping the given scopes) with rules, and returns its descriptor, for
// the thread that restricts itself (RestrictSelf, or the in-process tiers'
// C thread). Every rule's path must exist; on a file, only file rights are
// granted.
func Ruleset(abi int, handledFS, scoped uint64, rules []Rule) (int, error) {
	attr := unix.LandlockRulesetAttr{Handled_access_fs: handledFS}
	// Older kernels reject the larger struct: pass only the first field.
	size := unsafe.Sizeof(attr.Handled_access_fs)
	if abi >= 6 && scoped != 0 {
		attr.Scoped = scoped
		size = unsafe.Sizeof(attr)
	}
	fd, _, en := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if en != 0 {
		return -1, fmt.Errorf("landlock_create_ruleset: %w", en)
	}
	for _, r := range rules {
		dir, err := unix.Open(r.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			unix.Close(int(fd))
			return -1, fmt.Errorf("landlock rule for %s: %w", r.Path, err)
		}
		access := r.Access & handledFS
		var st unix.Stat_t
		if unix.Fstat(dir, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			access &= fileRights
		}
		pb := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(dir)}
		_, _, en := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, fd, unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&pb)), 0, 0, 0)
		unix.Close(dir)
		if en != 0 {
			unix.Close(int(fd))
			return -1, fmt.Errorf("landlock_add_rule %s: %w", r.Path, en)
		}
	}
	return int(fd), nil
}

// RestrictSelf restricts the calling thread (and the processes and
// threads it creates afterwards) with ruleset fd.
func RestrictSelf(fd int) error {
	if _, _, en := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(fd), 0, 0); en != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", en)
	}
	return nil
}
