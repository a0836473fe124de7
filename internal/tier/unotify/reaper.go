package unotify

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The reaper: no guest process may outlive kbox, however kbox ends. A guest
// can clear its own death signal (prctl is a process's own business) and
// its children never had one, so kbox's supervisor (A) does not start the
// guest itself: it starts a small reaper (R, kbox re-executed with
// ReaperArg), a child subreaper in a process group of its own, which starts
// the launcher. Every guest process is then R's descendant, and orphans are
// re-parented to R:
//
//   - kbox killed (SIGKILL, a crash): R reads end-of-file on its lifeline
//     (a pipe whose only write end A holds), kills every process below
//     itself and exits;
//   - R killed: the launcher dies with it (its death signal follows R), the
//     other guest processes are re-parented to A (a subreaper too), and A
//     kills them;
//   - the guest's first process exits: R kills the rest, reports the
//     status to A and exits (a container's lifetime is its init's).
//
// Only both killed at once (two SIGKILLs to two process groups) leaves
// guest processes behind; docs/security.md says so.

// helperEnv is the environment of the reaper and the launcher, kbox's own
// processes (the guest's environment reaches the guest through the launch
// config, never through theirs, so a GODEBUG or GOGC meant for the guest
// does not change them). Without asynchronous preemption the launcher's Go
// runtime sends no SIGURG to its own thread while that thread's execve
// waits for the supervisor: each such signal restarted the execve, and the
// supervisor served it again from the start (seven times in one traced
// start of /bin/true).
var helperEnv = []string{"GODEBUG=asyncpreemptoff=1", "GOMAXPROCS=1"}

// ReaperArg marks the re-executed reaper (os.Args[1]).
const ReaperArg = "__kbox_reaper__"

// The reaper's descriptors: stdio, then the launcher's config and status
// pipes (passed on to it as 3 and 4), the lifeline and the report pipe.
const (
	reaperLifeline = 5
	reaperReport   = 6
)

// ReaperMain is the reaper's main; it never returns.
func ReaperMain() {
	// The launcher's death signal follows the thread that forks it.
	runtime.LockOSThread()
	report := os.NewFile(reaperReport, "report")
	fail := func(format string, args ...any) {
		fmt.Fprintf(report, "X "+format+"\n", args...)
		killDescendants()
		os.Exit(ExitLaunchFailed)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fail("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	// Only kbox ends the reaper: a terminal's or a job's signals must not.
	// They are caught and dropped, not ignored: an ignored signal stays
	// ignored across exec, and the guest must start with the dispositions
	// kbox was started with (those ignored then stay ignored).
	drop := make(chan os.Signal, 16)
	for _, sg := range []os.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGTSTP,
		syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGALRM} {
		if !signal.Ignored(sg) {
			signal.Notify(drop, sg)
		}
	}
	go func() {
		for range drop {
		}
	}()
	self, err := os.Executable()
	if err != nil {
		fail("finding the kbox binary: %v", err)
	}
	sys := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if len(os.Args) > 2 && os.Args[2] == "foreground" {
		sys.Foreground, sys.Ctty = true, 0
	}
	cfg, status := os.NewFile(3, "config"), os.NewFile(4, "status")
	// The guest's environment reaches it through the launch config.
	proc, err := os.StartProcess(self, []string{"kbox-init", InitArg}, &os.ProcAttr{
		Env: helperEnv, Files: []*os.File{os.Stdin, os.Stdout, os.Stderr, cfg, status}, Sys: sys})
	cfg.Close()
	status.Close()
	if err != nil {
		fail("starting the launcher: %v", err)
	}
	launcher := proc.Pid
	fmt.Fprintf(report, "P %d\n", launcher)
	go func() {
		// kbox holds the only write end: end-of-file means it is gone.
		io.Copy(io.Discard, os.NewFile(reaperLifeline, "lifeline"))
		killDescendants()
		os.Exit(0)
	}()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			fail("waiting for the guest: %v", err)
		}
		if pid != launcher {
			continue // an orphaned guest process re-parented here
		}
		// The guest is over: nothing of it may remain.
		killDescendants()
		fmt.Fprintf(report, "W %d\n", uint32(ws))
		os.Exit(0)
	}
}

// reaper is kbox's side of a started reaper.
type reaper struct {
	pid      int
	lifeline *os.File // kbox's write end, held until kbox exits
	report   *bufio.Reader
	file     *os.File
}

// startReaper starts kbox re-executed as the reaper with the launcher's
// config and status pipes and returns once it reported the launcher's pid.
func startReaper(self string, stdio [3]*os.File, cfgR, stW *os.File, foreground bool) (*reaper, int, error) {
	arg := "background"
	if foreground {
		arg = "foreground"
	}
	r, err := spawnReaper(self, []string{"kbox-reaper", ReaperArg, arg}, []*os.File{stdio[0], stdio[1], stdio[2], cfgR, stW}, nil)
	if err != nil {
		return nil, 0, err
	}
	pid, err := r.launcherPid()
	return r, pid, err
}

func newReaper(pid int, lifeline, report *os.File) *reaper {
	return &reaper{pid: pid, lifeline: lifeline, report: bufio.NewReader(report), file: report}
}

// launcherPid reads the reaper's first report, the launcher's pid; on an
// error the reaper is closed.
func (r *reaper) launcherPid() (int, error) {
	kind, val, err := r.next()
	if err != nil || kind != "P" {
		r.close()
		if kind == "X" {
			return 0, fmt.Errorf("%s", val)
		}
		return 0, fmt.Errorf("the reaper did not start the launcher (%v)", err)
	}
	pid, err := strconv.Atoi(val)
	if err != nil {
		r.close()
		return 0, fmt.Errorf("the reaper's report %q", val)
	}
	return pid, nil
}

// next reads one report line: its kind (P, W, X) and value.
func (r *reaper) next() (string, string, error) {
	line, err := r.report.ReadString('\n')
	if err != nil {
		return "", "", err
	}
	kind, val, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	return kind, val, nil
}

// wait returns the guest's first process's wait status, once the reaper
// reported it (and killed what remained); an error when the reaper died
// without a report.
func (r *reaper) wait() (unix.WaitStatus, error) {
	defer r.close()
	kind, val, err := r.next()
	var ws unix.WaitStatus
	switch {
	case err != nil:
		return 0, fmt.Errorf("kbox's reaper ended without reporting the guest's status")
	case kind == "W":
		n, _ := strconv.ParseUint(val, 10, 32)
		ws = unix.WaitStatus(n)
	default:
		return 0, fmt.Errorf("%s", val)
	}
	return ws, nil
}

func (r *reaper) close() {
	r.file.Close()
	r.lifeline.Close() // a reaper still running kills the guest and exits
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(r.pid, &ws, 0, nil); err != unix.EINTR {
			break
		}
	}
}
