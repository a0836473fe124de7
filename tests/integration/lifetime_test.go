package integration

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pidsWhere lists the pids of /proc for which keep holds (dir is their
// /proc directory).
func pidsWhere(keep func(pid int, dir string) bool) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && keep(pid, "/proc/"+e.Name()) {
			out = append(out, pid)
		}
	}
	return out
}

// processesMatching lists the live (not zombie) processes whose command
// line contains marker.
func processesMatching(marker string) []int {
	return pidsWhere(func(_ int, dir string) bool {
		b, err := os.ReadFile(dir + "/cmdline")
		if err != nil || !strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), marker) {
			return false
		}
		st, err := os.ReadFile(dir + "/stat")
		return err == nil && !strings.Contains(string(st), ") Z ")
	})
}

// TestNoSurvivorAfterKboxKilled: however kbox ends (here SIGKILL, which it
// cannot handle), no guest process outlives it: not the first one, not a
// background child, not a daemon that left its session and its death
// signal behind. In-process, the process hosting the guest dies too.
func TestNoSurvivorAfterKboxKilled(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := freshRoot(t, v.uid())
		for _, tier := range testedTiers(t, allTiers) {
			marker := "9" + randomDigits(t, 8)
			var args []string
			ready := "ready"
			if tier == "seccomp" {
				args = []string{"--syscall-mode=seccomp", "-R", root, "--", "/bin/sh", "-c",
					"sleep " + marker + "1 & (setsid sleep " + marker + "2 &); sleep 0.2; echo ready; sleep " + marker + "3"}
			} else {
				args = []string{"--syscall-mode=" + tier, "-r", root, "--", "/bin/trapsig", "pause"}
				ready = "pause: ready"
			}
			ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
			cmd, stdout := startKbox(t, ctx, v.unpriv, args)
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			if strings.TrimSpace(line) != ready {
				cancel()
				cmd.Wait() //nolint:errcheck
				t.Fatalf("%s: first line %q, want %q", tier, line, ready)
			}
			kbox := cmd.Process.Pid
			watch := marker
			if tier != "seccomp" {
				watch = "parent=" + strconv.Itoa(kbox)
			}
			if len(processesMatching(watch)) == 0 {
				t.Errorf("%s: no guest process found before the kill (marker %q)", tier, watch)
			}
			syscall.Kill(kbox, syscall.SIGKILL)
			cmd.Wait() //nolint:errcheck
			cancel()
			deadline := time.Now().Add(5 * time.Second)
			for len(processesMatching(watch)) > 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if left := processesMatching(watch); len(left) > 0 {
				for _, pid := range left {
					syscall.Kill(pid, syscall.SIGKILL)
				}
				t.Errorf("%s: guest processes %v outlived kbox (SIGKILL)", tier, left)
			}
		}
	})
}

// TestLeftoversRemovedByNextRun: the private /tmp and /dev a kbox makes
// stay behind when it is killed; the next run removes them (and not the
// directories of a kbox still running).
func TestLeftoversRemovedByNextRun(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := freshRoot(t, v.uid())
		tmp := mkTempDir(t, "kbox-it-tmpdir-")
		chownTree(t, tmp, v.uid())
		env := []string{"TMPDIR=" + tmp}
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		cmd, stdout := startKboxEnv(t, ctx, v.unpriv, env, []string{"-R", root, "--", "/bin/sh", "-c", "echo ready; sleep 60"})
		if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
			t.Fatalf("first line %q", line)
		}
		// A second kbox, still running, keeps its directories.
		cmd2, stdout2 := startKboxEnv(t, ctx, v.unpriv, env, []string{"-R", root, "--", "/bin/sh", "-c", "echo ready; sleep 60"})
		if line, _ := bufio.NewReader(stdout2).ReadString('\n'); line != "ready\n" {
			t.Fatalf("second kbox: first line %q", line)
		}
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait() //nolint:errcheck
		left, _ := filepath.Glob(filepath.Join(tmp, "kbox-run-*"))
		if len(left) < 4 {
			t.Fatalf("after SIGKILL, %d run directories in %s (%v), want those of both kboxes", len(left), tmp, left)
		}
		_, errOut, code := runKbox(t, runOpts{Unpriv: v.unpriv, Env: env, Args: []string{"-v", "-r", root, "--", "/bin/true"}})
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, errOut)
		}
		after, _ := filepath.Glob(filepath.Join(tmp, "kbox-run-*"))
		if len(after) != len(left)/2 || strings.Count(errOut, "left behind by a kbox that did not end normally") != len(left)/2 {
			t.Errorf("before %v\nafter %v\nstderr:\n%s", left, after, errOut)
		}
		syscall.Kill(cmd2.Process.Pid, syscall.SIGTERM)
		cmd2.Wait() //nolint:errcheck
		if rest, _ := filepath.Glob(filepath.Join(tmp, "kbox-run-*")); len(rest) != 0 {
			t.Errorf("after the second kbox ended: %v", rest)
		}
	})
}

func randomDigits(t *testing.T, n int) string {
	h := randomHex(t, n)
	var b strings.Builder
	for _, c := range h[:n] {
		b.WriteByte('0' + byte(c)%10)
	}
	return b.String()
}
