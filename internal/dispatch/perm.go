package dispatch

import (
	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

// Permission checks under a virtual identity.
//
// kbox performs every host operation with the invoking user's real
// credentials, so the host kernel's permission checks are those of that
// user. While the guest keeps the identity it started with (-0 or
// --change-id), that is exactly right: the user's own files appear owned by
// the guest identity and everyone else's keep their owners. Once a guest
// process changes its ids (a root guest dropping to an unprivileged user,
// as su, apt or a daemon does), kbox adds the checks the guest kernel would
// make for the new ids, on top of the host's: the owner/group/other bits of
// the object for the process's fsuid, fsgid and groups.

const (
	permRead  = 4
	permWrite = 2
	permExec  = 1
)

// emulatesPerms reports whether the process has left its initial identity.
func (e *Engine) emulatesPerms(c *identity.Creds) bool {
	id := e.cfg.Identity
	return id.Virtual && (c.FSUID != id.UID || c.FSGID != id.GID || c.EUID != id.UID)
}

// permitted checks mask (permRead|permWrite|permExec) on an object with
// status st for the calling process; real selects the real ids (access(2)
// without AT_EACCESS).
func (e *Engine) permitted(r *Request, st *unix.Stat_t, mask uint32, real bool) error {
	c := r.Proc.Creds()
	if !e.emulatesPerms(&c) {
		return nil
	}
	uid, gid := c.FSUID, c.FSGID
	if real {
		uid, gid = c.RUID, c.RGID
	}
	if uid == 0 {
		if mask&permExec != 0 && st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Mode&0o111 == 0 {
			return unix.EACCES
		}
		return nil
	}
	ouid, ogid := e.guestOwner(st.Uid, st.Gid)
	var bits uint32
	switch {
	case ouid == uid:
		bits = (st.Mode >> 6) & 7
	case ogid == gid || contains(c.Groups, ogid):
		bits = (st.Mode >> 3) & 7
	default:
		bits = st.Mode & 7
	}
	if mask&^bits != 0 {
		return unix.EACCES
	}
	return nil
}

// permittedFD checks mask on the object a host descriptor names.
func (e *Engine) permittedFD(r *Request, fd int, mask uint32) error {
	c := r.Proc.Creds()
	if !e.emulatesPerms(&c) {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	return e.permitted(r, &st, mask, false)
}

// openMask is the permission an open with flags needs.
func openMask(flags uint64) uint32 {
	var m uint32
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		m = permRead
	case unix.O_WRONLY:
		m = permWrite
	default:
		m = permRead | permWrite
	}
	if flags&unix.O_TRUNC != 0 {
		m |= permWrite
	}
	return m
}

func contains(list []uint32, v uint32) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
