package integration

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestHostChangesWhileCached: what a guest sees of changes another host
// process makes to its root while it runs (docs/architecture.md,
// "Directory cache"). A file's status and contents are read afresh on each
// call, so a change to a file is seen at once, also in a directory the
// cache holds. A cached directory renamed away by the host and replaced
// is, as documented, not seen: its path keeps naming the directory kbox
// cached until the guest itself renames or removes something.
func TestHostChangesWhileCached(t *testing.T) {
	t.Parallel()
	for _, tier := range allTiers {
		forEachVariant(t, tier+"/", func(t *testing.T, v variant) {
			root, d := rootWithFile(t, v, "hostchange", "one")
			// sc, not a shell: the in-process tiers run one process.
			sc := startPausedSC(t, v, "--syscall-mode="+tier, "-r", root, "--", "/bin/sc",
				"stat", "/hostchange/f", ",", "read", "0", "3", ",", "stat", "/hostchange/f", ",", "readfile", "/hostchange/f", ",",
				"read", "0", "3", ",", "stat", "/hostchange/f", ",", "read", "0", "3", ",",
				"rename", "/hostchange/g", "/hostchange/h", ",", "stat", "/hostchange/f")
			next := sc.next
			next("0644 3")
			// The file changes on the host: seen.
			if err := os.WriteFile(filepath.Join(d, "f"), []byte("three"), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chmod(filepath.Join(d, "f"), 0o600)
			sc.resume()
			next("0600 5")
			next("readfile: ok three")
			// The directory is renamed away and replaced on the host: the
			// cached path still names the directory it named.
			os.WriteFile(filepath.Join(d, "g"), nil, 0o644)
			if err := os.Rename(d, d+".old"); err != nil {
				t.Fatal(err)
			}
			os.Mkdir(d, 0o755)
			os.WriteFile(filepath.Join(d, "f"), []byte("four"), 0o640)
			chownTree(t, d, v.uid())
			chownTree(t, d+".old", v.uid())
			sc.resume()
			next("0600 5")
			// The guest's own rename drops the cache: now it is seen.
			sc.resume()
			next("rename: ok 0")
			next("0640 4")
			sc.finish(false)
		})
	}
}

// rootWithFile makes a fresh root for variant v holding directory /dir
// with file f (0644) of the given contents, both owned by the variant's
// uid; it returns the root and the directory's host path.
func rootWithFile(t *testing.T, v variant, dir, contents string) (root, d string) {
	t.Helper()
	root = freshRoot(t, v.uid())
	d = filepath.Join(root, dir)
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "f"), []byte(contents), 0o644); err != nil {
		t.Fatal(err)
	}
	chownTree(t, d, v.uid())
	return root, d
}

// pausedSC is a kbox running /bin/sc whose script waits at each
// "read 0 3" for the test to change something on the host (resume).
type pausedSC struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Reader
	stderr lockedBuffer
	cancel context.CancelFunc
}

// startPausedSC starts kbox with args (as the unprivileged uid for an
// unprivileged variant), stdin piped for the script's pauses.
func startPausedSC(t *testing.T, v variant, args ...string) *pausedSC {
	t.Helper()
	argv := append([]string{kboxBin}, args...)
	if v.unpriv && isRoot() {
		argv = asUnprivileged(argv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	s := &pausedSC{t: t, cancel: cancel}
	s.cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	s.cmd.Env = baseEnv()
	s.cmd.Dir = "/"
	s.stdin, _ = s.cmd.StdinPipe()
	stdout, _ := s.cmd.StdoutPipe()
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	s.lines = bufio.NewReader(stdout)
	return s
}

// next reads the next output line, a successful stat shortened to its
// mode and size, and compares it with want.
func (s *pausedSC) next(want string) {
	s.t.Helper()
	line, err := s.lines.ReadString('\n')
	if m := statLine.FindStringSubmatch(line); m != nil {
		line = m[1] + " " + m[2] + "\n"
	}
	if line != want+"\n" {
		s.t.Errorf("got %q (%v), want %q\nstderr:\n%s", line, err, want, s.stderr.String())
	}
}

// resume ends the script's current pause.
func (s *pausedSC) resume() {
	s.t.Helper()
	io.WriteString(s.stdin, "go\n")
	s.next("read: ok 3 go\\x0a")
}

// finish closes stdin and waits for kbox; mustSucceed also requires
// exit status 0.
func (s *pausedSC) finish(mustSucceed bool) {
	s.t.Helper()
	defer s.cancel()
	s.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil && mustSucceed {
			s.t.Errorf("kbox: %v\nstderr:\n%s", err, s.stderr.String())
		}
	case <-time.After(runTimeout):
		syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
		s.t.Fatal("kbox did not end")
	}
}

var statLine = regexp.MustCompile(`^stat: ok type=reg mode=(\d+) .*size=(\d+) `)

// lockedBuffer collects a command's stderr while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
