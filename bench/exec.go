package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// proc describes one process to start.
type proc struct {
	argv    []string
	env     []string // nil: the harness's environment
	dir     string   // working directory (default /)
	chroot  string   // chroot(2) the child here first (native baseline)
	timeout time.Duration
}

// outcome is what running a proc gave.
type outcome struct {
	wall   time.Duration // from just before fork to just after wait
	stdout string
	stderr string
	err    error // start failure, timeout or non-zero exit
}

// run starts p, waits for it and times it.
func run(p proc) outcome {
	if p.timeout == 0 {
		p.timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.argv[0], p.argv[1:]...)
	cmd.Env = p.env
	cmd.Dir = p.dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	// Kill the whole process group on timeout (peers and kbox fork).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Chroot: p.chroot}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	o := outcome{wall: time.Since(t0), stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v", p.timeout)
	}
	if err != nil {
		o.err = fmt.Errorf("%s: %w%s", strings.Join(p.argv, " "), err, stderrSuffix(o.stderr))
	}
	return o
}

// stderrSuffix returns ": <first line of stderr>" or "".
func stderrSuffix(s string) string {
	if l := firstLine(s); l != "" {
		return ": " + l
	}
	return ""
}

// firstLine returns the first non-empty line of s, trimmed.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// exitCode returns the exit status carried by err, or -1.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// nsExecutor starts processes from one OS thread that lives in a private
// mount namespace where the host's /dev is bound on ROOT/dev, so chroot
// ROOT sees a /dev/null like every sandbox does. The bind mount exists only
// in that namespace: it can never leak into the host (where, say, a
// recursive removal of a stale root could otherwise reach /dev).
type nsExecutor struct {
	reqs chan func()
}

// newNSExecutor sets up the namespace; it needs CAP_SYS_ADMIN.
func newNSExecutor(root string) (*nsExecutor, error) {
	e := &nsExecutor{reqs: make(chan func())}
	ready := make(chan error)
	go func() {
		// Never unlocked: when this goroutine returns its thread exits,
		// and the namespace with it.
		runtime.LockOSThread()
		if err := enterPrivateNS(root); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for f := range e.reqs {
			f()
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return e, nil
}

func enterPrivateNS(root string) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare(CLONE_NEWNS): %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private: %w", err)
	}
	if err := unix.Mount("/dev", root+"/dev", "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("binding /dev on %s/dev: %w", root, err)
	}
	return nil
}

// run runs p on the executor's thread (fork happens there, so the child
// is born in the private namespace).
func (e *nsExecutor) run(p proc) outcome {
	done := make(chan outcome)
	e.reqs <- func() { done <- run(p) }
	return <-done
}

func (e *nsExecutor) close() { close(e.reqs) }

// isRoot reports whether the harness runs as uid 0.
func isRoot() bool { return os.Geteuid() == 0 }
