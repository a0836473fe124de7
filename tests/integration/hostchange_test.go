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
			root := freshRoot(t, v.uid())
			d := filepath.Join(root, "hostchange")
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "f"), []byte("one"), 0o644); err != nil {
				t.Fatal(err)
			}
			chownTree(t, d, v.uid())
			ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
			defer cancel()
			// sc, not a shell: the in-process tiers run one process.
			argv := []string{kboxBin, "--syscall-mode=" + tier, "-r", root, "--", "/bin/sc",
				"stat", "/hostchange/f", ",", "read", "0", "3", ",", "stat", "/hostchange/f", ",", "readfile", "/hostchange/f", ",",
				"read", "0", "3", ",", "stat", "/hostchange/f", ",", "read", "0", "3", ",",
				"rename", "/hostchange/g", "/hostchange/h", ",", "stat", "/hostchange/f"}
			if v.unpriv && isRoot() {
				argv = asUnprivileged(argv)
			}
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			cmd.Env = baseEnv()
			cmd.Dir = "/"
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			var stderr lockedBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewReader(stdout)
			next := func(want string) {
				t.Helper()
				line, err := lines.ReadString('\n')
				if m := statLine.FindStringSubmatch(line); m != nil {
					line = m[1] + " " + m[2] + "\n"
				}
				if line != want+"\n" {
					t.Errorf("%s: got %q (%v), want %q\nstderr:\n%s", tier, line, err, want, stderr.String())
				}
			}
			next("0644 3")
			// The file changes on the host: seen.
			if err := os.WriteFile(filepath.Join(d, "f"), []byte("three"), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chmod(filepath.Join(d, "f"), 0o600)
			io.WriteString(stdin, "go\n")
			next("read: ok 3 go\\x0a")
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
			io.WriteString(stdin, "go\n")
			next("read: ok 3 go\\x0a")
			next("0600 5")
			// The guest's own rename drops the cache: now it is seen.
			io.WriteString(stdin, "go\n")
			next("read: ok 3 go\\x0a")
			next("rename: ok 0")
			next("0640 4")
			stdin.Close()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(runTimeout):
				syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
				t.Fatal("kbox did not end")
			}
		})
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
