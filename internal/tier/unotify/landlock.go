package unotify

import (
	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/landlock"
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

// execRuleset builds the ruleset: execute only beneath roots, signals
// scoped. kbox-init's launcher gets it as a descriptor (initprog.go).
func execRuleset(roots []string, abi int) (int, error) {
	rules := make([]landlock.Rule, len(roots))
	for i, root := range roots {
		rules[i] = landlock.Rule{Path: root, Access: unix.LANDLOCK_ACCESS_FS_EXECUTE}
	}
	return landlock.Ruleset(abi, unix.LANDLOCK_ACCESS_FS_EXECUTE, landlock.ScopeSignal, rules)
}

// restrictExec applies the ruleset to the calling process.
func restrictExec(roots []string, abi int) error {
	fd, err := execRuleset(roots, abi)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return landlock.RestrictSelf(fd)
}
