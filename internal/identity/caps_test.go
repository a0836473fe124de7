package identity

import (
	"testing"

	"golang.org/x/sys/unix"
)

func rootCreds() Creds { return Config{Virtual: true, UID: 0, GID: 0}.Initial() }

func TestRootStartsWithAllCaps(t *testing.T) {
	c := rootCreds()
	all := AllCaps()
	if c.Caps.Eff != all || c.Caps.Prm != all || c.Caps.Bnd != all || c.Caps.Inh != 0 || c.Caps.Amb != 0 {
		t.Fatalf("root caps %+v, want eff=prm=bnd=%#x", c.Caps, all)
	}
	u := Config{Virtual: true, UID: 1000, GID: 1000}.Initial()
	if u.Caps.Eff != 0 || u.Caps.Prm != 0 || u.Caps.Bnd != all {
		t.Fatalf("user caps %+v", u.Caps)
	}
}

func TestFullDropClearsUnlessKeepCaps(t *testing.T) {
	c := rootCreds()
	if err := c.SetRESUID(1000, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if c.Caps.Prm != 0 || c.Caps.Eff != 0 {
		t.Fatalf("after full drop: %+v", c.Caps)
	}
	k := rootCreds()
	if err := k.SetKeepCaps(1); err != nil {
		t.Fatal(err)
	}
	if err := k.SetRESUID(1000, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if k.Caps.Prm != AllCaps() || k.Caps.Eff != 0 {
		t.Fatalf("KEEPCAPS drop: %+v, want prm kept, eff cleared", k.Caps)
	}
	// capset may raise effective within permitted; exec clears KEEPCAPS
	// and, for a non-root process, keeps only the ambient set.
	if err := k.CapSet(1<<CapSetuid, 1<<CapSetuid, 0); err != nil {
		t.Fatal(err)
	}
	if err := k.SetUID(0); err != nil {
		t.Fatalf("setuid(0) with CAP_SETUID: %v", err)
	}
	if k.EUID != 0 || k.RUID != 0 {
		t.Fatalf("setuid(0): %+v", k)
	}
}

func TestTemporaryDropRestoresEffective(t *testing.T) {
	c := rootCreds()
	if err := c.SetRESUID(Keep, 1000, Keep); err != nil {
		t.Fatal(err)
	}
	if c.Caps.Eff != 0 || c.Caps.Prm != AllCaps() {
		t.Fatalf("euid 1000: %+v", c.Caps)
	}
	if err := c.SetRESUID(Keep, 0, Keep); err != nil {
		t.Fatal(err)
	}
	if c.Caps.Eff != AllCaps() {
		t.Fatalf("euid back to 0: %+v", c.Caps)
	}
}

func TestFsuidDropsFsCaps(t *testing.T) {
	c := rootCreds()
	c.SetFSUID(1000)
	if c.Has(CapDacOverride) || c.Has(CapChown) || !c.Has(CapSetuid) {
		t.Fatalf("fsuid 1000: %+v", c.Caps)
	}
	c.SetFSUID(0)
	if !c.Has(CapDacOverride) {
		t.Fatalf("fsuid back to 0: %+v", c.Caps)
	}
}

func TestCapSetRules(t *testing.T) {
	c := rootCreds()
	if err := c.CapSet(1, 0, 0); err != unix.EPERM {
		t.Fatalf("effective beyond permitted: %v", err)
	}
	if err := c.CapSet(0, 1<<CapChown, 1<<CapChown); err != nil {
		t.Fatal(err)
	}
	if err := c.CapSet(0, 1<<CapChown|1<<CapFowner, 0); err != unix.EPERM {
		t.Fatalf("regaining a permitted capability: %v", err)
	}
	// Without CAP_SETPCAP the inheritable set stays within inh|prm.
	if err := c.CapSet(0, 1<<CapChown, 1<<CapFowner); err != unix.EPERM {
		t.Fatalf("inheritable beyond permitted: %v", err)
	}
}

func TestExecCaps(t *testing.T) {
	c := rootCreds()
	c.Exec()
	if c.Caps.Prm != AllCaps() || c.Caps.Eff != AllCaps() {
		t.Fatalf("root exec: %+v", c.Caps)
	}
	u := rootCreds()
	if err := u.SetKeepCaps(1); err != nil {
		t.Fatal(err)
	}
	if err := u.SetRESUID(1000, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	bit := uint64(1) << 10
	if err := u.CapSet(bit, bit, bit); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Ambient(2, 10, 0, 0); err != nil {
		t.Fatal(err)
	}
	u.Exec()
	if u.Caps.Prm != bit || u.Caps.Eff != bit || u.Caps.Amb != bit || u.Caps.Securebits&SecbitKeepCaps != 0 {
		t.Fatalf("non-root exec keeps only ambient: %+v", u.Caps)
	}
}

func TestAmbientAndBounding(t *testing.T) {
	c := rootCreds()
	if _, err := c.Ambient(2, 10, 0, 0); err != unix.EPERM {
		t.Fatalf("raise without inheritable: %v", err)
	}
	if _, err := c.Ambient(2, 10, 1, 0); err != unix.EINVAL {
		t.Fatalf("nonzero arg4: %v", err)
	}
	if _, err := c.Ambient(1, 99, 0, 0); err != unix.EINVAL {
		t.Fatalf("bad cap: %v", err)
	}
	if err := c.DropBound(10); err != nil {
		t.Fatal(err)
	}
	if c.Caps.Bnd&(1<<10) != 0 {
		t.Fatal("bounding bit still set")
	}
	if err := c.SetSecurebits(SecbitKeepCaps | SecbitKeepCapsLocked); err != nil {
		t.Fatal(err)
	}
	if err := c.SetKeepCaps(0); err != unix.EPERM {
		t.Fatalf("locked KEEPCAPS: %v", err)
	}
	if err := c.SetSecurebits(0); err != unix.EPERM {
		t.Fatalf("unlocking: %v", err)
	}
}
