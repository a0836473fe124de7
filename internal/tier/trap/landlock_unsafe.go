//go:build cgo && linux && amd64

package trap

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The in-process tiers' Landlock backstop. The guest shares kbox's
// process: a hostile guest can jump to a `syscall` instruction in kbox's
// own code, which the interception filter lets through, and so make the
// kernel resolve a path it chose. The guest thread therefore restricts
// itself, before it first runs guest code, to the host directories of the
// guest's mounts (read-only mounts read-only), /proc (kbox reads its own
// maps and descriptors there and names the process in comm) and kbox's
// plan cache. kbox's other threads are not restricted; the code kbox runs
// on the guest thread for the guest (the resolver, the loader) stays
// inside those directories by construction.

// scopeSignal is LANDLOCK_SCOPE_SIGNAL (ABI 6).
const scopeSignal = 0x2

func landlockABI() int {
	v, _, en := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, 1)
	if en != 0 {
		return 0
	}
	return int(v)
}

// fsRights are the file-system rights Landlock ABI abi knows.
func fsRights(abi int) uint64 {
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

const readOnlyRights = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR

// landlockRuleset builds the ruleset (see the top of this file) and
// returns its descriptor, for the guest thread to restrict itself with;
// -1 and no error when the kernel has no Landlock.
func landlockRuleset(rules []Rule) (int, int, error) {
	abi := landlockABI()
	if abi <= 0 {
		return -1, 0, nil
	}
	all := fsRights(abi)
	attr := unix.LandlockRulesetAttr{Handled_access_fs: all}
	// Older kernels reject the larger struct: pass only the first field.
	size := unsafe.Sizeof(attr.Handled_access_fs)
	if abi >= 6 {
		// Signals from the guest thread reach only its own domain: a
		// guest calling kill through kbox's instructions cannot signal
		// the user's other processes (the seccomp tier confines signals
		// to guest processes).
		attr.Scoped = scopeSignal
		size = unsafe.Sizeof(attr)
	}
	fd, _, en := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if en != 0 {
		return -1, abi, fmt.Errorf("landlock_create_ruleset: %w", en)
	}
	for _, r := range rules {
		dir, err := unix.Open(r.Host, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // a rule for a directory that does not exist grants nothing
		}
		allowed := all
		if r.ReadOnly {
			allowed = readOnlyRights
		}
		var st unix.Stat_t
		if unix.Fstat(dir, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			// Rules on files may only grant file rights.
			allowed &= unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
				unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
		}
		pb := unix.LandlockPathBeneathAttr{Allowed_access: allowed, Parent_fd: int32(dir)}
		_, _, en := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, fd, unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&pb)), 0, 0, 0)
		unix.Close(dir)
		if en != 0 {
			unix.Close(int(fd))
			return -1, abi, fmt.Errorf("landlock_add_rule %s: %w", r.Host, en)
		}
	}
	return int(fd), abi, nil
}
