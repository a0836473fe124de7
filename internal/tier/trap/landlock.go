//go:build cgo && linux && amd64

package trap

import (
	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/landlock"
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

// landlockRuleset builds the ruleset (see the top of this file) and
// returns its descriptor, for the guest thread to restrict itself with;
// -1 and no error when the kernel has no Landlock.
func landlockRuleset(rules []Rule) (int, int, error) {
	abi := landlock.ABI()
	if abi <= 0 {
		return -1, 0, nil
	}
	all := landlock.FSRights(abi)
	var lr []landlock.Rule
	for _, r := range rules {
		access := all
		if r.ReadOnly {
			access = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
		}
		lr = append(lr, landlock.Rule{Path: r.Host, Access: access})
	}
	// Signals from the guest thread reach only its own domain (ABI 6+): a
	// guest calling kill through kbox's instructions cannot signal the
	// user's other processes (the seccomp tier confines signals to guest
	// processes).
	fd, err := landlock.Ruleset(abi, all, landlock.ScopeSignal, lr)
	return fd, abi, err
}
