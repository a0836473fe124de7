package identity

import (
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Virtual capabilities. A guest that believes it is root believes it has
// root's capabilities, and programs that drop privileges (setpriv, su,
// daemons) read, keep and shed them with capget, capset and prctl. kbox
// keeps, per guest process, the five capability sets and the securebits
// a process would have in a user namespace of its own, and changes them by
// the rules of capabilities(7): set*id transitions, execve, capset,
// PR_SET_KEEPCAPS, PR_CAPBSET_DROP, PR_CAP_AMBIENT. They decide what the
// guest may do in kbox's emulation (set*id, chown, DAC overrides); the
// host process itself never holds any of them.

// Capability numbers kbox's emulation consults (linux/capability.h).
const (
	CapChown          = 0
	CapDacOverride    = 1
	CapDacReadSearch  = 2
	CapFowner         = 3
	CapFsetid         = 4
	CapSetgid         = 6
	CapSetuid         = 7
	CapSetpcap        = 8
	CapLinuxImmutable = 9
	CapMknod          = 27
	CapMacOverride    = 32
)

// Securebits (linux/securebits.h).
const (
	SecbitNoroot              = 1 << 0
	SecbitNorootLocked        = 1 << 1
	SecbitNoSetuidFixup       = 1 << 2
	SecbitNoSetuidFixupLocked = 1 << 3
	SecbitKeepCaps            = 1 << 4
	SecbitKeepCapsLocked      = 1 << 5
	SecbitNoCapAmbientRaise   = 1 << 6
	SecbitNoCapAmbientLocked  = 1 << 7
	secbitsValid              = 0xff
)

// fsCapMask is the set a change of fsuid to or from 0 raises or drops
// (CAP_FS_MASK).
const fsCapMask = 1<<CapChown | 1<<CapDacOverride | 1<<CapDacReadSearch | 1<<CapFowner |
	1<<CapFsetid | 1<<CapLinuxImmutable | 1<<CapMknod | 1<<CapMacOverride

var lastCap = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 && n < 64 {
			return n
		}
	}
	return 40 // CAP_CHECKPOINT_RESTORE, Linux 5.9 and later
})

// LastCap is the highest capability number the host kernel knows.
func LastCap() int { return lastCap() }

// AllCaps is the full set on this kernel.
func AllCaps() uint64 { return 1<<(uint(LastCap())+1) - 1 }

// Caps is one process's capability state.
type Caps struct {
	Eff, Prm, Inh, Bnd, Amb uint64
	Securebits              uint32
}

// Has reports whether cap is in the effective set.
func (c *Creds) Has(cp int) bool { return c.Caps.Eff&(1<<uint(cp)) != 0 }

// ValidCap reports whether cp names a capability of this kernel.
func ValidCap(cp uint64) bool { return cp <= uint64(LastCap()) }

func (c *Creds) secure(bit uint32) bool { return c.Caps.Securebits&bit != 0 }

// fixupSetuid applies the capability changes of a set*uid call from old
// (cap_emulate_setxuid).
func (c *Creds) fixupSetuid(old *Creds) {
	if c.secure(SecbitNoSetuidFixup) {
		return
	}
	if (old.RUID == 0 || old.EUID == 0 || old.SUID == 0) && c.RUID != 0 && c.EUID != 0 && c.SUID != 0 {
		if !c.secure(SecbitKeepCaps) {
			c.Caps.Prm, c.Caps.Eff = 0, 0
		}
		c.Caps.Amb = 0
	}
	if old.EUID == 0 && c.EUID != 0 {
		c.Caps.Eff = 0
	}
	if old.EUID != 0 && c.EUID == 0 {
		c.Caps.Eff = c.Caps.Prm
	}
}

// fixupFS applies the change of fsuid from oldFS to c.FSUID: leaving 0
// drops the filesystem capabilities from the effective set, coming back
// raises those that are permitted.
func (c *Creds) fixupFS(oldFS uint32) {
	if c.secure(SecbitNoSetuidFixup) {
		return
	}
	switch {
	case oldFS == 0 && c.FSUID != 0:
		c.Caps.Eff &^= fsCapMask
	case oldFS != 0 && c.FSUID == 0:
		c.Caps.Eff |= c.Caps.Prm & fsCapMask
	}
}

// execCaps applies execve's capability rules for a program without file
// capabilities (NO_NEW_PRIVS: set-id bits do not take effect): a root
// process (real or effective uid 0, unless SECBIT_NOROOT) gains its
// bounding set, others keep only the ambient set; KEEPCAPS is cleared.
func (c *Creds) execCaps() {
	k := &c.Caps
	if !c.secure(SecbitNoroot) && (c.RUID == 0 || c.EUID == 0) {
		k.Prm = (k.Inh | k.Bnd)
		k.Amb = 0
		if c.EUID == 0 {
			k.Eff = k.Prm
		} else {
			k.Eff = 0
		}
	} else {
		k.Prm = k.Amb
		k.Eff = k.Amb
	}
	k.Securebits &^= SecbitKeepCaps
}

// CapSet implements capset(2) on the process's own sets.
func (c *Creds) CapSet(eff, prm, inh uint64) error {
	k := &c.Caps
	all := AllCaps()
	if eff&^all != 0 || prm&^all != 0 || inh&^all != 0 {
		// Bits the kernel does not know are ignored (truncated) by capset.
		eff, prm, inh = eff&all, prm&all, inh&all
	}
	if !c.Has(CapSetpcap) && inh&^(k.Inh|k.Prm) != 0 {
		return unix.EPERM
	}
	if inh&^(k.Inh|k.Bnd) != 0 || prm&^k.Prm != 0 || eff&^prm != 0 {
		return unix.EPERM
	}
	k.Eff, k.Prm, k.Inh = eff, prm, inh
	k.Amb &= prm & inh
	return nil
}

// SetKeepCaps implements PR_SET_KEEPCAPS.
func (c *Creds) SetKeepCaps(v uint64) error {
	if v > 1 {
		return unix.EINVAL
	}
	if c.secure(SecbitKeepCapsLocked) {
		return unix.EPERM
	}
	if v == 1 {
		c.Caps.Securebits |= SecbitKeepCaps
	} else {
		c.Caps.Securebits &^= SecbitKeepCaps
	}
	return nil
}

// SetSecurebits implements PR_SET_SECUREBITS.
func (c *Creds) SetSecurebits(v uint64) error {
	old := uint64(c.Caps.Securebits)
	// A locked bit may not change, and a lock may not be released.
	locked := (old & (SecbitNorootLocked | SecbitNoSetuidFixupLocked | SecbitKeepCapsLocked | SecbitNoCapAmbientLocked)) >> 1
	if v&^secbitsValid != 0 || (v^old)&locked != 0 || old&^v&(locked<<1) != 0 {
		return unix.EPERM
	}
	if !c.Has(CapSetpcap) {
		return unix.EPERM
	}
	c.Caps.Securebits = uint32(v)
	return nil
}

// DropBound implements PR_CAPBSET_DROP.
func (c *Creds) DropBound(cp uint64) error {
	if !ValidCap(cp) {
		return unix.EINVAL
	}
	if !c.Has(CapSetpcap) {
		return unix.EPERM
	}
	c.Caps.Bnd &^= 1 << cp
	return nil
}

// Ambient implements PR_CAP_AMBIENT (op and cap are arguments 2 and 3).
func (c *Creds) Ambient(op, cp, a4, a5 uint64) (int64, error) {
	const (
		isSet    = 1
		raise    = 2
		lower    = 3
		clearAll = 4
	)
	if a4 != 0 || a5 != 0 {
		return 0, unix.EINVAL
	}
	k := &c.Caps
	if op == clearAll {
		if cp != 0 {
			return 0, unix.EINVAL
		}
		k.Amb = 0
		return 0, nil
	}
	if !ValidCap(cp) {
		return 0, unix.EINVAL
	}
	bit := uint64(1) << cp
	switch op {
	case isSet:
		if k.Amb&bit != 0 {
			return 1, nil
		}
		return 0, nil
	case raise:
		if k.Prm&bit == 0 || k.Inh&bit == 0 || c.secure(SecbitNoCapAmbientRaise) {
			return 0, unix.EPERM
		}
		k.Amb |= bit
		return 0, nil
	case lower:
		k.Amb &^= bit
		return 0, nil
	}
	return 0, unix.EINVAL
}
