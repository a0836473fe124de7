package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Process groups are confined by kbox itself, whatever the kernel's
// Landlock (hostile-guest F7): a guest can neither join a process group
// with a host member (setpgid(0, pgid) was not checked) nor signal one
// (kill(0), kill(-pgid)), nor make one the terminal's foreground. The
// tests run with kbox's no-Landlock test hook, so that no Landlock signal
// scoping hides a hole in kbox's own check.

// startSleeper starts a host sleep in a process group of its own (as the
// variant's uid, so that only kbox's check can keep a guest of that uid
// from signalling it) and returns it and its group.
func startSleeper(t *testing.T, v variant) (*exec.Cmd, int) {
	t.Helper()
	argv := []string{"sleep", "60"}
	if v.unpriv && isRoot() {
		argv = asUnprivileged(argv)
	}
	sleep := exec.Command(argv[0], argv[1:]...)
	sleep.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sleep.Process.Kill()
		sleep.Wait()
	})
	return sleep, sleep.Process.Pid
}

// sleeperAlive reports whether the sleep is still running (not a zombie).
func sleeperAlive(sleep *exec.Cmd) bool {
	var ws unix.WaitStatus
	pid, err := unix.Wait4(sleep.Process.Pid, &ws, unix.WNOHANG, nil)
	return err == nil && pid == 0
}

// runInGroup runs kbox with args as a member of process group pgid.
func runInGroup(t *testing.T, v variant, pgid int, args ...string) (string, string, int) {
	t.Helper()
	argv := append([]string{kboxBin}, args...)
	requireTiersOf(t, argv)
	if v.unpriv && isRoot() {
		argv = asUnprivileged(argv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(baseEnv(), noLandlockEnv)
	cmd.Dir = "/"
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return so.String(), se.String(), code
}

// TestGuestCannotJoinHostGroup: kbox and a host sleep share a process
// group; the guest may not join it, nor signal it with kill(-pgid) or
// kill(0) from inside it, in any tier.
func TestGuestCannotJoinHostGroup(t *testing.T) {
	t.Parallel()
	for _, tier := range testedTiers(t, allTiers) {
		forEachVariant(t, tier+"/", func(t *testing.T, v variant) {
			sleep, g := startSleeper(t, v)
			gs := strconv.Itoa(g)
			ops := "setpgid 0 " + gs + " , getpgid 0 , kill -" + gs + " 0 , kill -" + gs + " 15 , kill 0 0 , setpgid 0 0 , getpgid 0"
			args := append([]string{"--syscall-mode=" + tier, "-v", "-r", fixtureRoot(t), "--", "/bin/sc"}, scArgs(ops)...)
			out, errOut, code := runInGroup(t, v, g, args...)
			got := lines(out)
			// The guest starts in a group of its own in every tier (the
			// in-process tiers' confined child leads one): joining kbox's is
			// refused.
			want := []string{"setpgid: err EPERM", "getpgid: ok *", "kill: err ESRCH", "kill: err ESRCH", "kill: ok 0",
				"setpgid: ok 0", "getpgid: ok *"}
			if code != 0 {
				t.Errorf("exit status %d\nstderr:\n%s", code, errOut)
			}
			if diff := compareLines(want, got); diff != "" {
				t.Errorf("%s\nstderr:\n%s", diff, errOut)
			}
			if len(got) > 1 && got[1] == "getpgid: ok "+gs {
				t.Errorf("the guest joined the host process group %d", g)
			}
			if !strings.Contains(errOut, "not a guest process") && !strings.Contains(errOut, "guest processes only") {
				t.Errorf("no -v line explains the refusals\nstderr:\n%s", errOut)
			}
			time.Sleep(50 * time.Millisecond)
			if !sleeperAlive(sleep) {
				t.Errorf("the guest killed the host sleep in process group %d", g)
			}
		})
	}
}

// TestGuestCannotForegroundHostGroup: on a terminal, tcsetpgrp
// (TIOCSPGRP) to a host process group of the session is refused; to the
// guest's own group it works.
func TestGuestCannotForegroundHostGroup(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		master, slave := openPty(t, v)
		defer master.Close()
		// The shell leads the session, kbox runs in the shell's group.
		script := `exec 2>&1; ` + kboxBin + ` --syscall-mode=seccomp -v -r ` + fixtureRoot(t) +
			` -- /bin/sh -c 'exec /bin/sc ioctl_int 0 0x5410 '$$' , ioctl_int 0 0x5410 $$'; echo kbox-exit-$?`
		argv := []string{"/bin/sh", "-c", script}
		if v.unpriv && isRoot() {
			argv = asUnprivileged(argv)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(baseEnv(), noLandlockEnv)
		cmd.Dir = "/"
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
		var out bytes.Buffer
		done := make(chan struct{})
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := master.Read(buf)
				out.Write(buf[:n])
				if err != nil {
					break
				}
			}
			close(done)
		}()
		waitErr := make(chan error, 1)
		go func() { waitErr <- cmd.Wait() }()
		select {
		case <-waitErr:
		case <-time.After(runTimeout):
			cmd.Process.Kill()
			t.Fatalf("timeout; output so far:\n%s", out.String())
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		text := strings.ReplaceAll(out.String(), "\r", "")
		var got []string
		for _, l := range lines(text) {
			if strings.HasPrefix(l, "ioctl_int:") || strings.HasPrefix(l, "kbox-exit") {
				got = append(got, l)
			}
		}
		want := []string{"ioctl_int: err EPERM", "ioctl_int: ok 0", "kbox-exit-0"}
		if diff := compareLines(want, got); diff != "" {
			t.Errorf("%s\noutput:\n%s", diff, text)
		}
	})
}

// openPty opens a pseudo-terminal pair whose slave the variant's uid may
// use.
func openPty(t *testing.T, v variant) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	name := "/dev/pts/" + strconv.Itoa(int(n))
	if v.unpriv && isRoot() {
		if err := os.Chown(name, unprivUID, unprivUID); err != nil {
			m.Close()
			t.Fatal(err)
		}
	}
	s, err := os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	return m, s
}
