package unotify

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestEarlyClose: a kbox-init started early and then not used (kbox
// failed before the launch) ends with everything it started, and Close
// returns once it has (run in a child test process, a subreaper as kbox
// is, so that a launcher left behind would be re-parented to it).
func TestEarlyClose(t *testing.T) {
	if _, err := initProgramPath(); err != nil {
		t.Skipf("no kbox-init here: %v", err)
	}
	inSubreaperChild(t, earlyCloseHelper)
}

func earlyCloseHelper(fail func(string, ...any)) {
	e := StartEarly(0, nil)
	if e.err != nil {
		fail("StartEarly: %v", e.err)
	}
	pid := e.rp.pid
	// kbox-init waits for its config meanwhile.
	time.Sleep(50 * time.Millisecond)
	if err := unix.Kill(pid, 0); err != nil {
		fail("kbox-init %d is not running before Close: %v", pid, err)
	}
	e.Close()
	e.Close() // a second Close does nothing
	if err := unix.Kill(pid, 0); err != unix.ESRCH {
		fail("kbox-init %d survived Close (or is unreaped): %v", pid, err)
	}
	// Anything it started was re-parented here and must end too.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ws unix.WaitStatus
		p, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.ECHILD {
			break
		}
		if p == 0 && time.Now().After(deadline) {
			fail("a process kbox-init started outlived it")
		}
		if p == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
}
