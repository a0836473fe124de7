package dispatch

import "golang.org/x/sys/unix"

// PlainStat describes a guest stat the engine served the plain way: one
// no-follow fstatat of Name in the resolved directory Parent of a plain
// mount (no procfs, no overlay, not a mount point), of an object that is
// not a symlink to follow, with no recorded owner. An in-process tier may
// answer the same call later without the engine (internal/inproc's stat
// cache), for as long as nothing the guest does could change what Path
// names.
type PlainStat struct {
	Dirfd  int    // the guest's directory argument (AT_FDCWD: -100)
	Path   string // the guest's path argument, as passed
	Follow bool   // a stat (true) or an lstat
	Parent int    // host descriptor of the resolved parent, valid during the call only
	Name   string
	Stat   *unix.Stat_t // the host's status of the object
}

// SetPlainStatHook makes the engine report every plain stat to f, on the
// thread that served it. Only the in-process tiers set it.
func (e *Engine) SetPlainStatHook(f func(PlainStat)) { e.plainStat = f }

// OwnerView says how the engine shows the invoking user's files: when
// translate is set, host owner hostUID:hostGID appears as
// guestUID:guestGID (guestOwner).
func (e *Engine) OwnerView() (translate bool, hostUID, hostGID, guestUID, guestGID uint32) {
	id := e.cfg.Identity
	return id.Virtual, e.hostUID, e.hostGID, id.UID, id.GID
}
