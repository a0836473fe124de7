package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// An interactive guest shell on a terminal, driven through tmux: kbox
// hands the terminal's foreground to the guest's process group, so Ctrl-C
// interrupts the guest's foreground command, and Ctrl-D ends the shell and
// kbox.

const termPrompt = "kbox-prompt>"

// tmuxSession is one tmux server (private socket) with one session.
type tmuxSession struct {
	t      *testing.T
	unpriv bool
	socket string
	name   string
}

// tmux runs a tmux client command against the session's server, as the
// variant's uid.
func (s *tmuxSession) tmux(args ...string) (string, error) {
	argv := append([]string{"tmux", "-f", "/dev/null", "-S", s.socket}, args...)
	if s.unpriv && isRoot() {
		argv = asUnprivileged(argv)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(baseEnv(), "SHELL=/bin/sh")
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *tmuxSession) capture() string {
	out, err := s.tmux("capture-pane", "-p", "-t", s.name)
	if err != nil {
		return fmt.Sprintf("<capture-pane failed: %v: %s>", err, out)
	}
	return out
}

func (s *tmuxSession) alive() bool {
	_, err := s.tmux("has-session", "-t", s.name)
	return err == nil
}

func (s *tmuxSession) send(keys ...string) {
	s.t.Helper()
	if out, err := s.tmux(append([]string{"send-keys", "-t", s.name}, keys...)...); err != nil {
		s.t.Fatalf("tmux send-keys %q: %v\n%s\npane:\n%s", keys, err, out, s.capture())
	}
}

// lastLine is the pane's last non-blank line, trailing blanks removed.
func lastLine(pane string) string {
	ls := lines(strings.TrimRight(pane, " \n"))
	for i := len(ls) - 1; i >= 0; i-- {
		if l := strings.TrimRight(ls[i], " "); l != "" {
			return l
		}
	}
	return ""
}

// waitFor polls the pane until cond holds or timeout passes; it returns
// how long that took, failing the test on timeout.
func (s *tmuxSession) waitFor(what string, timeout time.Duration, cond func(pane string) bool) time.Duration {
	s.t.Helper()
	start := time.Now()
	for {
		pane := s.capture()
		if cond(pane) {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			s.t.Fatalf("waiting for %s: not seen within %v; pane:\n%s", what, timeout, pane)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// hasLine reports whether the pane has a line equal to l (trailing blanks
// ignored).
func hasLine(pane, l string) bool {
	for _, p := range lines(pane) {
		if strings.TrimRight(p, " ") == l {
			return true
		}
	}
	return false
}

func countLines(pane, l string) int {
	n := 0
	for _, p := range lines(pane) {
		if strings.TrimRight(p, " ") == l {
			n++
		}
	}
	return n
}

// TestTerminalInteractiveShell runs "kbox -S ROOT -- /bin/sh -i" in a tmux
// pane: a command's output, Ctrl-C of a foreground command (the shell
// survives), and Ctrl-D ending the shell and kbox.
//
// Note: scripts/test.sh does not install tmux; the test skips without it.
func TestTerminalInteractiveShell(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not found (install the Debian package tmux): terminal tests skipped")
	}
	if _, err := exec.LookPath("pgrep"); err != nil {
		t.Skip("pgrep(1) not found (procps)")
	}
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := freshRoot(t, v.uid())
		sockDir := mkTempDir(t, "kbox-it-tmux-")
		chownTree(t, sockDir, v.uid())
		s := &tmuxSession{t: t, unpriv: v.unpriv, socket: filepath.Join(sockDir, "sock"), name: "kbox-term"}
		t.Cleanup(func() { s.tmux("kill-server") }) //nolint:errcheck

		// The pane runs kbox directly (more than one argument: tmux
		// execs it without a shell), with a known environment.
		cmd := []string{"env", "-i", "PATH=/bin:/usr/bin", "HOME=/", "TERM=screen", "PS1=" + termPrompt + " ",
			kboxBin, "-S", root, "--", "/bin/sh", "-i"}
		if out, err := s.tmux(append([]string{"new-session", "-d", "-s", s.name, "-x", "120", "-y", "30"}, cmd...)...); err != nil {
			t.Fatalf("tmux new-session: %v\n%s", err, out)
		}
		s.waitFor("the first prompt", 10*time.Second, func(p string) bool { return lastLine(p) == termPrompt })

		// A command and its output.
		s.send("echo hello-$((6*7))", "Enter")
		s.waitFor("hello-42 and a new prompt", 5*time.Second, func(p string) bool {
			return hasLine(p, "hello-42") && lastLine(p) == termPrompt
		})

		// Ctrl-C interrupts the foreground command, not the shell.
		marker := procMarker()
		s.send("sleep "+marker, "Enter")
		pattern := `^sleep ` + regexp.QuoteMeta(marker) + `$`
		start := time.Now()
		for len(hostPgrep(t, pattern)) == 0 {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("the guest's sleep %s did not start within 5 s; pane:\n%s", marker, s.capture())
			}
			time.Sleep(25 * time.Millisecond)
		}
		prompts := countLines(s.capture(), termPrompt)
		s.send("C-c")
		took := s.waitFor("the prompt after Ctrl-C", 2*time.Second, func(p string) bool {
			return lastLine(p) == termPrompt && countLines(p, termPrompt) > prompts
		})
		t.Logf("prompt back %v after Ctrl-C", took.Round(time.Millisecond))
		if left := hostPgrep(t, pattern); len(left) > 0 {
			t.Errorf("sleep %s still running after Ctrl-C (pids %v); pane:\n%s", marker, left, s.capture())
		}
		s.send("echo alive", "Enter")
		s.waitFor("alive and a new prompt", 5*time.Second, func(p string) bool {
			return hasLine(p, "alive") && lastLine(p) == termPrompt
		})

		// Ctrl-D at the prompt ends the shell, then kbox, then the
		// session.
		s.send("C-d")
		start = time.Now()
		for s.alive() {
			if time.Since(start) > 3*time.Second {
				t.Fatalf("the tmux session still exists 3 s after Ctrl-D; pane:\n%s", s.capture())
			}
			time.Sleep(25 * time.Millisecond)
		}
		// tmux ends the session when the pane's terminal closes, which
		// can be a moment before kbox's exit completes: allow 2 s.
		var left []int
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(25 * time.Millisecond) {
			if left = hostPgrep(t, regexp.QuoteMeta(root)); len(left) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(left) > 0 {
			t.Errorf("kbox (or a guest process) still running 2 s after the session ended: pids %v", left)
		}
	})
}
