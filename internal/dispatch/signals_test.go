package dispatch

import (
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSignalThroughPidfd: without the kernel's signal scope, kbox sends a
// signal to another guest process itself, through the pidfd (process) or
// a thread pidfd (thread); with it, or to the caller's own process, the
// call continues; signal 0 is answered from the check.
func TestSignalThroughPidfd(t *testing.T) {
	e, pt := testTable(t, false)
	r := &Request{Tgid: os.Getpid(), Tid: os.Getpid()}
	for _, thread := range []bool{false, true} {
		a := startSleep(t)
		p, _, err := pt.Lookup(a.Process.Pid, always)
		if err != nil {
			t.Fatal(err)
		}
		if res := e.signalProcess(r, p, 0, nil); res.Kind != Value || res.Val != 0 {
			t.Errorf("signal 0: %+v", res)
		}
		pt.SetSignalScope(true)
		if res := e.signalProcess(r, p, int(syscall.SIGTERM), nil); res.Kind != Continue {
			t.Errorf("scoped: %+v, want Continue", res)
		}
		pt.SetSignalScope(false)
		var res Result
		if thread {
			res = e.signalThread(r, p, a.Process.Pid, int(syscall.SIGTERM), nil)
		} else {
			res = e.signalProcess(r, p, int(syscall.SIGTERM), nil)
		}
		if thread && res.Kind == Continue && !threadPidfds() {
			// Before Linux 6.9 there are no thread pidfds: kbox checks the
			// thread and lets the kernel send the signal. Do as it would.
			syscall.Kill(a.Process.Pid, syscall.SIGTERM)
		} else if res.Kind != Value || res.Val != 0 {
			t.Errorf("thread %v: %+v, want 0", thread, res)
		}
		err = a.Wait()
		if ws, ok := a.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Errorf("thread %v: the target ended with %v, want SIGTERM", thread, err)
		}
		if e.guestTask(a.Process.Pid) != nil {
			t.Errorf("a reaped target is still a guest task")
		}
	}
	// The caller's own pid continues: the kernel acts on the caller's own
	// process, which lives while it calls.
	own := &Request{Tgid: os.Getpid(), Tid: os.Getpid(), Args: [6]uint64{uint64(os.Getpid()), uint64(syscall.SIGURG)}}
	if res := sysKill(e, own); res.Kind != Continue {
		t.Errorf("kill of the caller's own pid: %+v, want Continue", res)
	}
	// A host process is refused.
	host := &Request{Tgid: os.Getpid(), Tid: os.Getpid(), Args: [6]uint64{uint64(os.Getppid()), 0}}
	if res := sysKill(e, host); res.Kind != Errno || res.Err != syscall.ESRCH {
		t.Errorf("kill of a host process: %+v, want ESRCH", res)
	}
}

// threadPidfds reports whether the kernel has PIDFD_THREAD (Linux 6.9).
func threadPidfds() bool {
	fd, err := unix.PidfdOpen(os.Getpid(), unix.PIDFD_THREAD)
	if err == nil {
		unix.Close(fd)
	}
	return err != unix.EINVAL
}
