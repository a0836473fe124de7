package unotify

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// inSubreaperChild runs helper in a child test process that is a child
// subreaper, as kbox is: what helper's processes leave behind is
// re-parented to it, and helper may kill and reap every child of its
// process without touching the test binary's others. helper reports a
// failure with fail, which ends the child.
func inSubreaperChild(t *testing.T, helper func(fail func(format string, a ...any))) {
	t.Helper()
	const env = "KBOX_TEST_SUBREAPER_CHILD"
	if os.Getenv(env) == t.Name() {
		fail := func(format string, a ...any) {
			fmt.Printf("helper: "+format+"\n", a...)
			os.Exit(1)
		}
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			fail("subreaper %v", err)
		}
		helper(fail)
		os.Stdout.WriteString("helper: ok\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), env+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "helper: ok") {
		t.Fatalf("helper: %v\n%s", err, out)
	}
}
