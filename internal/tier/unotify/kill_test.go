package unotify

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestKillDescendants runs killDescendants in a child test process (it
// kills and reaps every child of its caller): it returns at once without
// children, and otherwise kills and reaps children and the grandchildren
// re-parented to it (a subreaper, as kbox is).
func TestKillDescendants(t *testing.T) {
	inSubreaperChild(t, killDescendantsHelper)
}

func killDescendantsHelper(fail func(string, ...any)) {
	start := time.Now()
	killDescendants()
	if d := time.Since(start); d > 500*time.Millisecond {
		fail("without children killDescendants took %v", d)
	}
	// A child whose own child outlives it: re-parented to this process.
	sh := exec.Command("sh", "-c", "sleep 60 & echo $!; exec sleep 60")
	stdout, err := sh.StdoutPipe()
	if err != nil {
		fail("pipe %v", err)
	}
	if err := sh.Start(); err != nil {
		fail("start %v", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	grandchild, _ := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || grandchild <= 0 {
		fail("no grandchild pid: %q %v", line, err)
	}
	killDescendants()
	if err := unix.Kill(sh.Process.Pid, 0); err != unix.ESRCH {
		fail("the child survived (or is unreaped): %v", err)
	}
	if err := unix.Kill(grandchild, 0); err != unix.ESRCH {
		fail("the grandchild survived (or is unreaped): %v", err)
	}
}
