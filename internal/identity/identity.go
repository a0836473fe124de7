// Package identity owns the guest's virtual credentials: the uid/gid sets a
// guest process believes it has (with -0/--root-id or --change-id) and the
// POSIX rules by which set*id calls change them. It is pure logic: the host
// process's real credentials are never changed.
package identity

import (
	"sort"

	"golang.org/x/sys/unix"
)

// Config is the run's identity choice.
type Config struct {
	// Virtual is false when the guest runs with the host user's real ids
	// (identity calls then go straight to the kernel).
	Virtual bool
	UID     uint32
	GID     uint32
}

// Keep is the "leave unchanged" argument of setres*id and setre*id.
const Keep = ^uint32(0)

// Creds is one guest process's credential set.
type Creds struct {
	RUID, EUID, SUID, FSUID uint32
	RGID, EGID, SGID, FSGID uint32
	Groups                  []uint32
	Caps                    Caps
}

// Initial returns the credentials of the first guest process.
func (c Config) Initial() Creds {
	cr := Creds{RUID: c.UID, EUID: c.UID, SUID: c.UID, FSUID: c.UID,
		RGID: c.GID, EGID: c.GID, SGID: c.GID, FSGID: c.GID}
	cr.Caps.Bnd = AllCaps()
	if c.UID == 0 {
		cr.Groups = []uint32{0}
		cr.Caps.Prm, cr.Caps.Eff = AllCaps(), AllCaps()
	}
	return cr
}

// Clone returns an independent copy.
func (c Creds) Clone() Creds {
	c.Groups = append([]uint32(nil), c.Groups...)
	return c
}

// privileged: CAP_SETUID in the guest's eyes (euid 0 unless the process
// shed it); privilegedGID: CAP_SETGID.
func (c *Creds) privileged() bool    { return c.Has(CapSetuid) }
func (c *Creds) privilegedGID() bool { return c.Has(CapSetgid) }

// uidChange runs a set*uid change and applies its capability rules.
func (c *Creds) uidChange(f func() error) error {
	old := *c
	if err := f(); err != nil {
		*c = old
		return err
	}
	c.fixupSetuid(&old)
	return nil
}

func oneOf(v uint32, set ...uint32) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// SetUID implements setuid(2).
func (c *Creds) SetUID(u uint32) error {
	return c.uidChange(func() error { return c.setuid(u) })
}

func (c *Creds) setuid(u uint32) error {
	if u == Keep {
		return unix.EINVAL
	}
	if c.privileged() {
		c.RUID, c.EUID, c.SUID, c.FSUID = u, u, u, u
		return nil
	}
	if !oneOf(u, c.RUID, c.SUID) {
		return unix.EPERM
	}
	c.EUID, c.FSUID = u, u
	return nil
}

// SetGID implements setgid(2).
func (c *Creds) SetGID(g uint32) error {
	if g == Keep {
		return unix.EINVAL
	}
	if c.privilegedGID() {
		c.RGID, c.EGID, c.SGID, c.FSGID = g, g, g, g
		return nil
	}
	if !oneOf(g, c.RGID, c.SGID) {
		return unix.EPERM
	}
	c.EGID, c.FSGID = g, g
	return nil
}

// SetREUID implements setreuid(2).
func (c *Creds) SetREUID(r, e uint32) error {
	return c.uidChange(func() error { return c.setreuid(r, e) })
}

func (c *Creds) setreuid(r, e uint32) error {
	if !c.privileged() {
		if r != Keep && !oneOf(r, c.RUID, c.EUID) {
			return unix.EPERM
		}
		if e != Keep && !oneOf(e, c.RUID, c.EUID, c.SUID) {
			return unix.EPERM
		}
	}
	oldR := c.RUID
	if r != Keep {
		c.RUID = r
	}
	if e != Keep {
		c.EUID = e
	}
	if r != Keep || (e != Keep && e != oldR) {
		c.SUID = c.EUID
	}
	c.FSUID = c.EUID
	return nil
}

// SetREGID implements setregid(2).
func (c *Creds) SetREGID(r, e uint32) error {
	if !c.privilegedGID() {
		if r != Keep && !oneOf(r, c.RGID, c.EGID) {
			return unix.EPERM
		}
		if e != Keep && !oneOf(e, c.RGID, c.EGID, c.SGID) {
			return unix.EPERM
		}
	}
	oldR := c.RGID
	if r != Keep {
		c.RGID = r
	}
	if e != Keep {
		c.EGID = e
	}
	if r != Keep || (e != Keep && e != oldR) {
		c.SGID = c.EGID
	}
	c.FSGID = c.EGID
	return nil
}

// SetRESUID implements setresuid(2).
func (c *Creds) SetRESUID(r, e, s uint32) error {
	return c.uidChange(func() error { return c.setresuid(r, e, s) })
}

func (c *Creds) setresuid(r, e, s uint32) error {
	if !c.privileged() {
		for _, v := range []uint32{r, e, s} {
			if v != Keep && !oneOf(v, c.RUID, c.EUID, c.SUID) {
				return unix.EPERM
			}
		}
	}
	if r != Keep {
		c.RUID = r
	}
	if e != Keep {
		c.EUID = e
	}
	if s != Keep {
		c.SUID = s
	}
	c.FSUID = c.EUID
	return nil
}

// SetRESGID implements setresgid(2).
func (c *Creds) SetRESGID(r, e, s uint32) error {
	if !c.privilegedGID() {
		for _, v := range []uint32{r, e, s} {
			if v != Keep && !oneOf(v, c.RGID, c.EGID, c.SGID) {
				return unix.EPERM
			}
		}
	}
	if r != Keep {
		c.RGID = r
	}
	if e != Keep {
		c.EGID = e
	}
	if s != Keep {
		c.SGID = s
	}
	c.FSGID = c.EGID
	return nil
}

// SetFSUID implements setfsuid(2): it returns the previous fsuid and changes
// it only when allowed (the call never fails).
func (c *Creds) SetFSUID(u uint32) uint32 {
	old := c.FSUID
	if u != Keep && (c.privileged() || oneOf(u, c.RUID, c.EUID, c.SUID, c.FSUID)) {
		c.FSUID = u
		c.fixupFS(old)
	}
	return old
}

// SetFSGID implements setfsgid(2).
func (c *Creds) SetFSGID(g uint32) uint32 {
	old := c.FSGID
	if g != Keep && (c.privilegedGID() || oneOf(g, c.RGID, c.EGID, c.SGID, c.FSGID)) {
		c.FSGID = g
	}
	return old
}

// SetGroups implements setgroups(2).
func (c *Creds) SetGroups(g []uint32) error {
	if !c.privilegedGID() {
		return unix.EPERM
	}
	c.Groups = append([]uint32(nil), g...)
	// The kernel keeps supplementary groups sorted (groups_sort).
	sort.Slice(c.Groups, func(i, j int) bool { return c.Groups[i] < c.Groups[j] })
	return nil
}

// Exec applies execve's credential rules (no set-id bits take effect:
// NO_NEW_PRIVS is set): the saved and filesystem ids follow the effective
// ones.
func (c *Creds) Exec() {
	c.SUID, c.FSUID = c.EUID, c.EUID
	c.SGID, c.FSGID = c.EGID, c.EGID
	c.execCaps()
}

// MaxGroups is NGROUPS_MAX.
const MaxGroups = 65536
