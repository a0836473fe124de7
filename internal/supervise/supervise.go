// Package supervise owns what kbox's supervisor does for the guest's first
// process whatever the tier: passing on the signals kbox receives, lending
// it the terminal's foreground and taking it back, and turning its wait
// status into kbox's exit status.
package supervise

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// forwarded are the signals kbox passes on to the guest's first process.
// The synchronous ones count only when sent by kill (a fault of kbox's own
// is not forwarded: Go reports it).
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGABRT, syscall.SIGSEGV, syscall.SIGBUS,
	syscall.SIGFPE, syscall.SIGILL, syscall.SIGTRAP}

// ForwardSignals passes every signal of the forwarded set that kbox
// receives to send (the guest's first process). One kbox was started with
// ignored (nohup) stays ignored, and the guest inherits that; with
// ignoredToo, those are forwarded as well (call it once the guest's process
// exists and has inherited the disposition: an in-process guest may
// install a handler for such a signal later, and kbox's supervisor then
// must pass it on). It returns a function that stops forwarding.
func ForwardSignals(send func(syscall.Signal), ignoredToo bool) (stop func()) {
	ch := make(chan os.Signal, 8)
	for _, sg := range forwarded {
		if ignored := signal.Ignored(sg); ignored == ignoredToo {
			signal.Notify(ch, sg)
		}
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				send(sig.(syscall.Signal))
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// ForegroundTTY reports whether f is a terminal whose foreground process
// group is kbox's.
func ForegroundTTY(f *os.File) bool {
	pgrp, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// ReclaimTTY makes kbox's process group the foreground of the terminal
// again after the guest's group had it (kbox is then a background group,
// so SIGTTOU is ignored for the call).
func ReclaimTTY(f *os.File, hadIt bool) {
	if !hadIt {
		return
	}
	signal.Ignore(syscall.SIGTTOU)
	unix.IoctlSetPointerInt(int(f.Fd()), unix.TIOCSPGRP, unix.Getpgrp())
}

// ExitCode is kbox's exit status for the guest's wait status: its exit
// code, or 128+N when signal N killed it.
func ExitCode(ws unix.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 125
}

// Privileged reports whether this process is uid 0 or holds permitted
// capabilities: then kbox takes them from the guest (unless --keep-caps).
func Privileged() (bool, error) {
	var hdr unix.CapUserHeader
	var data [2]unix.CapUserData
	hdr.Version = unix.LINUX_CAPABILITY_VERSION_3
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false, err
	}
	return data[0].Permitted != 0 || data[1].Permitted != 0 || os.Geteuid() == 0, nil
}
