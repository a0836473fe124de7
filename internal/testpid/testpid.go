// Package testpid starts a process with a chosen pid, for tests of pid
// reuse. It writes /proc/sys/kernel/ns_last_pid, which needs
// CAP_SYS_ADMIN (tests run it as root and skip otherwise). Every user in
// every test binary serialises on one flock(2)ed file, so concurrent
// packages do not steal each other's pids.
package testpid

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

const nsLastPid = "/proc/sys/kernel/ns_last_pid"

var mu sync.Mutex

// ErrTaken: the pid belongs to a live process.
var ErrTaken = errors.New("testpid: the pid is in use")

// ErrMissed: other processes took the pid first on every try.
var ErrMissed = errors.New("testpid: another process took the pid first")

// Available reports whether the caller may choose pids.
func Available() bool {
	return os.Geteuid() == 0 && unix.Access(nsLastPid, unix.W_OK) == nil
}

// Start starts cmd (made anew for each try by mk) so that it gets pid.
func Start(pid int, mk func() *exec.Cmd) (*exec.Cmd, error) {
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "kbox-ns_last_pid.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return nil, err
	}
	for try := 0; try < 20; try++ {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			return nil, ErrTaken
		}
		if err := os.WriteFile(nsLastPid, []byte(strconv.Itoa(pid-1)), 0); err != nil {
			return nil, err
		}
		cmd := mk()
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		if cmd.Process.Pid == pid {
			return cmd, nil
		}
		cmd.Process.Kill() //nolint:errcheck
		cmd.Wait()         //nolint:errcheck
	}
	return nil, ErrMissed
}
