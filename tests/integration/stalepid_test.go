package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kbox-go/kbox/internal/testpid"
)

// stalepidRun is one kbox running tests/guest/stalepid: its children's
// pids, and pipes to send it commands and read its answers.
type stalepidRun struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Scanner
	stderr *bytes.Buffer
	pids   []int
	usec   int
	argv   []string
}

// startStalepid starts kbox -v MODE ROOT -- /bin/stalepid n and reads the
// children's pids.
func startStalepid(t *testing.T, mode, root string, v variant, n int) *stalepidRun {
	t.Helper()
	argv := []string{kboxBin, "-v", mode, root, "--", "/bin/stalepid", strconv.Itoa(n)}
	if v.unpriv && isRoot() {
		argv = asUnprivileged(argv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*runTimeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = baseEnv()
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	run := &stalepidRun{cmd: cmd, stderr: &bytes.Buffer{}, argv: argv}
	cmd.Stderr = run.stderr
	var err error
	if run.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		run.stdin.Close()
		cmd.Wait() //nolint:errcheck
	})
	run.out = bufio.NewScanner(stdout)
	for run.out.Scan() {
		line := run.out.Text()
		if p, ok := strings.CutPrefix(line, "pid "); ok {
			pid, _ := strconv.Atoi(p)
			run.pids = append(run.pids, pid)
			continue
		}
		var got int
		if _, err := fmt.Sscanf(line, "spawned %d usec %d", &got, &run.usec); err == nil && got == n && len(run.pids) == n {
			return run
		}
		t.Fatalf("%s: unexpected output %q", shellQuote(argv), line)
	}
	cmd.Wait() //nolint:errcheck
	t.Fatalf("%s: no \"spawned\" line\nstderr:\n%s", shellQuote(argv), run.stderr)
	return nil
}

// ask sends a command and returns the answer line.
func (r *stalepidRun) ask(t *testing.T, command string) string {
	t.Helper()
	if _, err := io.WriteString(r.stdin, command+"\n"); err != nil {
		t.Fatalf("%s: writing %q: %v", shellQuote(r.argv), command, err)
	}
	if !r.out.Scan() {
		r.stdin.Close()
		r.cmd.Wait() //nolint:errcheck
		t.Fatalf("%s: no answer to %q\nstderr:\n%s", shellQuote(r.argv), command, r.stderr)
	}
	return r.out.Text()
}

// finish ends the guest and returns kbox's exit status.
func (r *stalepidRun) finish(t *testing.T) int {
	t.Helper()
	r.stdin.Close()
	err := r.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		t.Errorf("%s: %v", shellQuote(r.argv), err)
		return -1
	}
	return 0
}

// TestStalePids: a guest's short-lived children (each makes one call kbox
// serves, exits and is reaped at once) leave no trace in kbox's process
// table. Host processes that then get their pids (as root: chosen with
// ns_last_pid, running as the same uid as kbox, with a secret in their
// environment) cannot be signalled, listed, or reached through
// /proc/<pid>/environ, mem or cwd; neither can the dead pids nobody reused.
// Under -R and -S, as root and unprivileged.
func TestStalePids(t *testing.T) {
	t.Parallel()
	const children = 200
	for _, mode := range []string{"-R", "-S"} {
		forEachVariant(t, mode+"/", func(t *testing.T, v variant) {
			root := freshRoot(t, v.uid())
			run := startStalepid(t, mode, root, v, children)
			secret := "KBOX_STALE_SECRET=" + strconv.Itoa(os.Getpid())
			var reused []int
			hosts := map[int]*exec.Cmd{}
			if testpid.Available() {
				for _, pid := range run.pids {
					cmd, err := testpid.Start(pid, func() *exec.Cmd {
						c := exec.Command("sleep", "60")
						c.Env = []string{secret}
						if v.uid() != os.Getuid() {
							c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(v.uid()), Gid: uint32(v.gid())}}
						}
						return c
					})
					if err != nil {
						continue
					}
					t.Cleanup(func() {
						cmd.Process.Kill() //nolint:errcheck
						cmd.Wait()         //nolint:errcheck
					})
					hosts[pid] = cmd
					reused = append(reused, pid)
				}
				if len(reused) == 0 {
					t.Fatalf("no host process could take any of the %d dead pids", children)
				}
			} else {
				t.Log("not root: only dead pids are probed (reusing them needs ns_last_pid)")
			}
			probed := append([]int(nil), reused...)
			for _, pid := range run.pids {
				if hosts[pid] == nil && len(probed) < len(reused)+10 {
					probed = append(probed, pid)
				}
			}
			for _, pid := range probed {
				got := run.ask(t, "probe "+strconv.Itoa(pid))
				want := fmt.Sprintf("probe %d kill=ESRCH environ=ENOENT mem=ENOENT cwd=ENOENT listed=0", pid)
				if got != want {
					what := "dead pid"
					if hosts[pid] != nil {
						what = "host process"
					}
					t.Errorf("%s %d: got %q, want %q", what, pid, got, want)
				}
			}
			if got, want := run.ask(t, "check"), fmt.Sprintf("check %d esrch=%d", children, children); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
			if code := run.finish(t); code != 0 {
				t.Errorf("%s: exit %d\nstderr:\n%s", shellQuote(run.argv), code, run.stderr)
			}
			for pid, cmd := range hosts {
				if !hostAlive(pid) || cmd.Process.Pid != pid {
					t.Errorf("host process %d did not survive the guest", pid)
				}
			}
			// Every kill was refused by kbox itself, none passed on.
			for _, pid := range probed {
				if !strings.Contains(run.stderr.String(), fmt.Sprintf("kill of pid %d refused", pid)) {
					t.Errorf("no -v line refusing kill of pid %d", pid)
				}
			}
			t.Logf("%s: %d children in %d us; %d pids reused by host processes", strings.Join(run.argv, " "), children, run.usec, len(reused))
		})
	}
}

// TestStalePidsStress: after 3000 short-lived children, kbox refuses
// kill(pid, 0) of every one of them itself (-v): no dead pid is still
// taken for a guest's. (Before pidfds were held from registration, 4% of
// such pids stayed in the table for good.)
func TestStalePidsStress(t *testing.T) {
	t.Parallel()
	const children = 3000
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := freshRoot(t, v.uid())
		run := startStalepid(t, "-R", root, v, children)
		if got, want := run.ask(t, "check"), fmt.Sprintf("check %d esrch=%d", children, children); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		if code := run.finish(t); code != 0 {
			t.Errorf("%s: exit %d\nstderr:\n%s", shellQuote(run.argv), code, run.stderr)
		}
		refused := map[int]bool{}
		for _, line := range strings.Split(run.stderr.String(), "\n") {
			var caller, pid int
			if _, err := fmt.Sscanf(line, "kbox: pid %d: kill of pid %d refused", &caller, &pid); err == nil {
				refused[pid] = true
			}
		}
		missing := 0
		for _, pid := range run.pids {
			if !refused[pid] {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%d of %d dead children's pids were still taken for guest processes (kill not refused by kbox)", missing, children)
		}
		t.Logf("%s: %d children in %d us (%.0f us each)", strings.Join(run.argv, " "), children, run.usec, float64(run.usec)/children)
	})
}
