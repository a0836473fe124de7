package identity

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestRootDropsAndCannotRegain(t *testing.T) {
	c := Config{Virtual: true, UID: 0, GID: 0}.Initial()
	if err := c.SetRESGID(100, 100, 100); err != nil {
		t.Fatal(err)
	}
	if err := c.SetUID(1000); err != nil {
		t.Fatal(err)
	}
	if c.RUID != 1000 || c.EUID != 1000 || c.SUID != 1000 || c.FSUID != 1000 {
		t.Fatalf("setuid as root must set all ids: %+v", c)
	}
	if err := c.SetUID(0); err != unix.EPERM {
		t.Fatalf("regaining root: got %v, want EPERM", err)
	}
	if err := c.SetGroups([]uint32{1}); err != unix.EPERM {
		t.Fatalf("setgroups unprivileged: got %v", err)
	}
}

func TestTemporaryDropKeepsSaved(t *testing.T) {
	c := Config{Virtual: true, UID: 0, GID: 0}.Initial()
	if err := c.SetRESUID(Keep, 1000, Keep); err != nil {
		t.Fatal(err)
	}
	if c.EUID != 1000 || c.SUID != 0 || c.RUID != 0 {
		t.Fatalf("got %+v", c)
	}
	// The saved root id lets the process come back.
	if err := c.SetRESUID(Keep, 0, Keep); err != nil {
		t.Fatalf("regain through saved id: %v", err)
	}
	if c.EUID != 0 {
		t.Fatalf("got %+v", c)
	}
}

func TestUnprivilegedRules(t *testing.T) {
	c := Config{Virtual: true, UID: 1000, GID: 1000}.Initial()
	cases := []struct {
		name string
		fn   func() error
		want error
	}{
		{"setuid other", func() error { return c.SetUID(0) }, unix.EPERM},
		{"setuid same", func() error { return c.SetUID(1000) }, nil},
		{"setreuid swap to other", func() error { return c.SetREUID(5, Keep) }, unix.EPERM},
		{"setresgid other", func() error { return c.SetRESGID(Keep, 7, Keep) }, unix.EPERM},
		{"setgid same", func() error { return c.SetGID(1000) }, nil},
		{"setuid -1", func() error { return c.SetUID(Keep) }, unix.EINVAL},
	}
	for _, tc := range cases {
		if err := tc.fn(); err != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if old := c.SetFSUID(0); old != 1000 || c.FSUID != 1000 {
		t.Fatalf("setfsuid unprivileged must not change: old %d now %d", old, c.FSUID)
	}
}

func TestSetREUIDSavedRule(t *testing.T) {
	c := Config{Virtual: true, UID: 0}.Initial()
	if err := c.SetREUID(Keep, 1000); err != nil {
		t.Fatal(err)
	}
	// e != old real: saved follows effective.
	if c.SUID != 1000 {
		t.Fatalf("saved uid: %+v", c)
	}
}
