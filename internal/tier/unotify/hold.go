package unotify

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/dispatch"
)

// Holding the processes that share an exec caller's memory.
//
// kbox rewrites the exec path in the caller's memory and restores it once
// the kernel has read it (dispatch/exec.go). A vfork child's memory is its
// parent's, and the kernel lets the parent run again as soon as the exec
// has replaced the child's address space: a restore after that point
// writes into memory the parent may already have reused. So every task of
// every other process sharing the memory is held in a ptrace stop from
// before the rewrite until after the restore:
//
//   - PTRACE_SEIZE, then PTRACE_INTERRUPT each task. From then on no held
//     task executes an instruction of its own: one in user mode is
//     stopped, one in a system call stops before it returns to user mode
//     (a vfork parent waiting for its child is woken only by the child's
//     exec or exit, and then stops). Unlike SIGSTOP, a ptrace stop is not
//     reported to the process's parent, so a shell's job control never
//     sees it. Like SIGSTOP, it makes a few blocking calls the held
//     tasks were in (epoll_wait, semtimedop...) fail with EINTR, as
//     signal(7) documents for stops.
//   - Hold returns once each task is stopped or inside a system call.
//   - Release detaches every task: those stopped resume, and a pending
//     interrupt is dropped.
//
// ptrace requests must come from the tracing thread: each hold has a
// goroutine locked to a thread of its own that it never unlocks, so the
// thread exits with it, and the kernel detaches whatever is still
// attached (a vfork parent whose child's exec failed and that is still
// waiting for the child, for instance). kbox may trace its guest: it is
// every guest process's ancestor and already writes their memory, which
// takes the same access; the guest itself may not use ptrace.

// holdWait bounds how long Hold waits for a task to stop: one in user
// mode stops within microseconds of the interrupt.
const holdWait = 2 * time.Second

// hold is one set of held tasks.
type hold struct {
	release chan struct{}
}

// HoldProcesses holds every task of the processes pids (dispatch.Holder).
func (m *memory) HoldProcesses(pids []int) (dispatch.Held, error) {
	h := &hold{release: make(chan struct{})}
	errc := make(chan error, 1)
	go h.run(pids, errc, nil)
	if err := <-errc; err != nil {
		return nil, err
	}
	return h, nil
}

// Release detaches the held tasks.
func (h *hold) Release() { close(h.release) }

func (h *hold) run(pids []int, errc chan<- error, locked chan<- struct{}) {
	runtime.LockOSThread() // never unlocked: see the top of the file
	if locked != nil {
		close(locked)
	}
	if unix.Gettid() == unix.Getpid() {
		// The main thread is parked, not ended, when its goroutine
		// exits locked: trace from another one. This goroutine keeps the
		// main thread locked until that one has its own.
		next := make(chan struct{})
		go h.run(pids, errc, next)
		<-next
		runtime.UnlockOSThread()
		return
	}
	tasks, err := seize(pids)
	if err == nil {
		err = waitHeld(tasks)
	}
	errc <- err
	if err != nil {
		return // the thread's exit detaches what was attached
	}
	<-h.release
	for tid, st := range tasks {
		if !st.stopped {
			// Held in a system call then; stopped since, perhaps.
			var ws unix.WaitStatus
			if pid, err := unix.Wait4(tid, &ws, unix.WNOHANG|unix.WALL, nil); err == nil && pid == tid && ws.Stopped() {
				st.stopped, st.ws = true, ws
			}
		}
		if st.stopped {
			// Hand back a signal that arrived meanwhile (a
			// signal-delivery stop), as if kbox had not been there.
			sig := 0
			if st.ws.StopSignal() != unix.SIGTRAP {
				sig = int(st.ws.StopSignal())
			}
			unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_DETACH, uintptr(tid), 0, uintptr(sig), 0, 0)
		}
	}
}

// taskState is what a hold knows of one task.
type taskState struct {
	stopped bool // its stop was reported (ws)
	ws      unix.WaitStatus
	held    bool // stopped, in a system call, or gone
}

// seize attaches to and interrupts every task of pids, again for tasks
// that appeared meanwhile, until a round finds no new one.
func seize(pids []int) (map[int]*taskState, error) {
	tasks := map[int]*taskState{}
	for round := 0; ; round++ {
		if round == 16 {
			return nil, errors.New("the processes sharing its memory keep creating threads")
		}
		added := false
		for _, pid := range pids {
			ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
			if err != nil {
				continue // gone
			}
			for _, ent := range ents {
				tid, err := strconv.Atoi(ent.Name())
				if err != nil || tasks[tid] != nil {
					continue
				}
				added = true
				if err := unix.PtraceSeize(tid); err != nil {
					if err == unix.ESRCH {
						tasks[tid] = &taskState{held: true}
						continue
					}
					return nil, fmt.Errorf("kbox cannot hold task %d of process %d, which shares its memory (ptrace: %v)", tid, pid, err)
				}
				tasks[tid] = &taskState{}
				if err := unix.PtraceInterrupt(tid); err != nil && err != unix.ESRCH {
					return nil, fmt.Errorf("kbox cannot stop task %d of process %d, which shares its memory (ptrace: %v)", tid, pid, err)
				}
			}
		}
		if !added {
			return tasks, nil
		}
	}
}

// waitHeld waits until no task can run an instruction of its own: each is
// stopped, inside a system call (it stops before returning to user mode)
// or gone.
func waitHeld(tasks map[int]*taskState) error {
	deadline := time.Now().Add(holdWait)
	for pause := time.Microsecond; ; pause = min(2*pause, time.Millisecond) {
		pending := 0
		for tid, st := range tasks {
			if st.held {
				continue
			}
			var ws unix.WaitStatus
			pid, err := unix.Wait4(tid, &ws, unix.WNOHANG|unix.WALL, nil)
			switch {
			case err == unix.ECHILD || err == unix.ESRCH:
				st.held = true // gone
			case err == nil && pid == tid:
				if ws.Stopped() {
					st.stopped, st.ws, st.held = true, ws, true
				} else {
					st.held = true // exited
				}
			case inSyscall(tid):
				st.held = true
			default:
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d tasks sharing its memory did not stop within %v", pending, holdWait)
		}
		time.Sleep(pause)
	}
}

// inSyscall reports a task blocked inside a system call: the first field
// of /proc/<tid>/syscall is its number ("running" while it runs, -1 when
// it is blocked outside one, in a page fault for instance).
func inSyscall(tid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/syscall")
	if err != nil {
		return false
	}
	f, _, _ := strings.Cut(string(b), " ")
	n, err := strconv.Atoi(strings.TrimSpace(f))
	return err == nil && n >= 0
}

var _ dispatch.Holder = (*memory)(nil)
