package landlock

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestFSRights(t *testing.T) {
	if FSRights(1)&unix.LANDLOCK_ACCESS_FS_REFER != 0 || FSRights(2)&unix.LANDLOCK_ACCESS_FS_REFER == 0 {
		t.Error("REFER is an ABI 2 right")
	}
	if FSRights(4)&unix.LANDLOCK_ACCESS_FS_IOCTL_DEV != 0 || FSRights(5)&unix.LANDLOCK_ACCESS_FS_IOCTL_DEV == 0 {
		t.Error("IOCTL_DEV is an ABI 5 right")
	}
}

// TestRuleset builds a ruleset (it is not applied) and checks that a rule
// for a missing path is an error.
func TestRuleset(t *testing.T) {
	abi := ABI()
	if abi == 0 {
		t.Skip("no Landlock in this kernel")
	}
	dir := t.TempDir()
	fd, err := Ruleset(abi, FSRights(abi), ScopeSignal, []Rule{{Path: dir, Access: FSRights(abi)}, {Path: "/proc", Access: unix.LANDLOCK_ACCESS_FS_READ_FILE}})
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if _, err := Ruleset(abi, FSRights(abi), 0, []Rule{{Path: dir + "/missing"}}); err == nil {
		t.Error("a rule for a missing path was accepted")
	}
}

// TestNoLandlockHook: the test hook makes ABI report no Landlock.
func TestNoLandlockHook(t *testing.T) {
	saved := testNoLandlock
	defer func() { testNoLandlock = saved }()
	testNoLandlock = true
	if v := ABI(); v != 0 {
		t.Errorf("with %s=1, ABI() = %d, want 0", TestHookEnv, v)
	}
}
