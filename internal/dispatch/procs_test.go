package dispatch

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/testpid"
)

// testTable returns an engine whose process table treats the test
// process's children as guests only once entered (no subreaper), with or
// without the exit watcher.
func testTable(t *testing.T, watcher bool) (*Engine, *ProcTable) {
	t.Helper()
	e := &Engine{cfg: Config{InitialCwd: "/"}, arch: abi.Host()}
	if watcher {
		e.Procs = newProcTable(e)
	} else {
		e.Procs = makeProcTable(e)
	}
	e.Procs.SetSubreaper(-1)
	return e, e.Procs
}

func always() bool { return true }

// startSleep starts a host "sleep 30", killed and reaped at the end.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck
		cmd.Wait()         //nolint:errcheck
	})
	return cmd
}

// end kills and reaps cmd.
func end(cmd *exec.Cmd) {
	cmd.Process.Kill() //nolint:errcheck
	cmd.Wait()         //nolint:errcheck
}

func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestProcTableEntersOnlyWithPidfd: a process is entered only while kbox
// can hold a pidfd for it and the notifying thread still lives.
func TestProcTableEntersOnlyWithPidfd(t *testing.T) {
	_, pt := testTable(t, false)

	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if p, _, err := pt.Lookup(gone.Process.Pid, always); err != unix.ESRCH || p != nil {
		t.Errorf("Lookup of a reaped process: %v %v, want ESRCH", p, err)
	}

	live := startSleep(t)
	pid := live.Process.Pid
	if p, _, err := pt.Lookup(pid, func() bool { return false }); err != unix.ESRCH || p != nil {
		t.Errorf("Lookup with the notification gone: %v %v, want ESRCH", p, err)
	}
	if n := pt.Size(); n != 0 {
		t.Fatalf("table has %d entries after failed lookups, want 0", n)
	}
	p, tgid, err := pt.Lookup(pid, always)
	if err != nil || p == nil || tgid != pid {
		t.Fatalf("Lookup of a live process: %v %d %v", p, tgid, err)
	}
	if p.pidfd < 0 {
		t.Errorf("entry without a pidfd")
	}
	if q, _, _ := pt.Lookup(pid, always); q != p {
		t.Errorf("second Lookup made a new entry")
	}
	if !pt.IsGuest(pid) || pt.Size() != 1 {
		t.Errorf("IsGuest %v, size %d; want true, 1", pt.IsGuest(pid), pt.Size())
	}
}

// TestProcTableDropsOnExit: the exit watcher drops a reaped process; a
// zombie stays a guest (its pid is still its own) until reaped.
func TestProcTableDropsOnExit(t *testing.T) {
	_, pt := testTable(t, true)
	a := startSleep(t)
	p, _, err := pt.Lookup(a.Process.Pid, always)
	if err != nil {
		t.Fatal(err)
	}
	end(a)
	if !waitFor(func() bool { return pt.Size() == 0 }) {
		t.Fatalf("a reaped process is still in the table (size %d)", pt.Size())
	}
	p.mu.Lock()
	fd := p.pidfd
	p.mu.Unlock()
	if fd != -1 {
		t.Errorf("the dropped entry still holds pidfd %d", fd)
	}

	z := startSleep(t)
	zp := z.Process.Pid
	if _, _, err := pt.Lookup(zp, always); err != nil {
		t.Fatal(err)
	}
	z.Process.Signal(syscall.SIGKILL) //nolint:errcheck
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, zp, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the watcher see the exit
	if !pt.IsGuest(zp) {
		t.Errorf("a zombie guest is no guest before it is reaped")
	}
	z.Wait() //nolint:errcheck
	if pt.IsGuest(zp) {
		t.Errorf("a reaped guest is still a guest")
	}
	if !waitFor(func() bool { return pt.Size() == 0 }) {
		t.Errorf("a reaped zombie is still in the table (size %d)", pt.Size())
	}
}

// TestProcTableReusedPid: a guest process's pid reused by a host process
// does not make that process a guest, even while the stale entry is still
// in the table (no exit watcher here); a guest process that reuses it gets
// a fresh entry. Needs root (ns_last_pid).
func TestProcTableReusedPid(t *testing.T) {
	if !testpid.Available() {
		t.Skip("choosing pids needs root (/proc/sys/kernel/ns_last_pid)")
	}
	_, pt := testTable(t, false)
	a := startSleep(t)
	pid := a.Process.Pid
	p, _, err := pt.Lookup(pid, always)
	if err != nil {
		t.Fatal(err)
	}
	p.cwd = "/old"
	dir, err := openProcDir(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dir)
	end(a)

	b, err := testpid.Start(pid, func() *exec.Cmd { return exec.Command("sleep", "30") })
	if err != nil {
		t.Skipf("cannot reuse pid %d: %v", pid, err)
	}
	defer end(b)
	if pt.IsGuest(pid) {
		t.Errorf("host process %d, which reused a guest's pid, is a guest", pid)
	}
	if pt.GuestDir(dir, pid) {
		t.Errorf("the old /proc/%d directory passes as a guest's", pid)
	}
	newDir, err := openProcDir(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(newDir)
	if pt.GuestDir(newDir, pid) {
		t.Errorf("/proc/%d of the host process passes as a guest's", pid)
	}
	if c, ok := pt.Cwd(pid); ok {
		t.Errorf("Cwd of the host process: %q", c)
	}
	// Now as if b made a notified call: a new entry, not the old state.
	q, _, err := pt.Lookup(pid, always)
	if err != nil {
		t.Fatal(err)
	}
	if q == p {
		t.Fatalf("the reused pid got the stale entry")
	}
	if c, _ := q.CwdRoot(); c != "/" {
		t.Errorf("the new process inherited the old one's cwd %q", c)
	}
	if !pt.GuestDir(newDir, pid) || pt.Size() != 1 {
		t.Errorf("after registration: GuestDir %v, size %d", pt.GuestDir(newDir, pid), pt.Size())
	}
}

// childOf waits for the first child of pid.
func childOf(t *testing.T, pid int) int {
	t.Helper()
	var c int
	if !waitFor(func() bool {
		cs := ChildrenOf(pid)
		if len(cs) > 0 {
			c = cs[0]
		}
		return c > 0
	}) {
		t.Fatalf("process %d has no child", pid)
	}
	return c
}

// TestProcTableJudgesDescendants: a child of a guest that never made a
// call is a guest (entered with its parent's state); a host process, kbox
// and init are not.
func TestProcTableJudgesDescendants(t *testing.T) {
	_, pt := testTable(t, false)
	sh := exec.Command("sh", "-c", "sleep 30 & wait")
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer end(sh)
	child := childOf(t, sh.Process.Pid)
	defer syscall.Kill(child, syscall.SIGKILL) //nolint:errcheck
	if pt.IsGuest(child) {
		t.Errorf("child of a host process is a guest")
	}
	p, _, err := pt.Lookup(sh.Process.Pid, always)
	if err != nil {
		t.Fatal(err)
	}
	p.cwd = "/parent"
	if !pt.IsGuest(child) {
		t.Fatalf("child %d of guest %d is no guest", child, sh.Process.Pid)
	}
	if c, _ := pt.Cwd(child); c != "/parent" {
		t.Errorf("child entered with cwd %q, want its parent's", c)
	}
	for _, host := range []int{1, os.Getpid(), os.Getppid(), 0, -1} {
		if pt.IsGuest(host) {
			t.Errorf("IsGuest(%d) = true", host)
		}
	}
	// Threads of a guest process are guest tasks; of a host one not.
	tids := threadsOf(os.Getpid())
	for _, tid := range tids {
		if pt.IsGuest(tid) {
			t.Errorf("thread %d of the test process is a guest", tid)
		}
	}
	if _, _, err := pt.Lookup(os.Getpid(), always); err != nil {
		t.Fatal(err)
	}
	for _, tid := range tids {
		if _, err := os.Stat("/proc/" + strconv.Itoa(tid)); err == nil && !pt.IsGuest(tid) {
			t.Errorf("thread %d of a guest process is no guest", tid)
		}
	}
}

func threadsOf(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// TestGuestDirTiedToTask: a /proc/<pid> directory opened while the pid was
// a guest's does not pass once that process is gone.
func TestGuestDirTiedToTask(t *testing.T) {
	_, pt := testTable(t, true)
	a := startSleep(t)
	pid := a.Process.Pid
	if _, _, err := pt.Lookup(pid, always); err != nil {
		t.Fatal(err)
	}
	dir, err := openProcDir(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dir)
	if !pt.GuestDir(dir, pid) {
		t.Fatalf("GuestDir of a live guest: false")
	}
	end(a)
	if pt.GuestDir(dir, pid) {
		t.Errorf("GuestDir of a reaped guest: true")
	}
}

// TestStatusParse: the fields readStatus uses.
func TestStatusParse(t *testing.T) {
	st := parseStatus([]byte("Name:\tx\nTgid:\t12\nPid:\t13\nPPid:\t7\nThreads:\t3\n"))
	if st != (taskStatus{12, 7, 3, nil}) {
		t.Errorf("parseStatus: %+v", st)
	}
	if st := readStatus(os.Getpid()); st.tgid != os.Getpid() || st.ppid != os.Getppid() {
		t.Errorf("readStatus(self): %+v", st)
	}
	dir, err := openProcDir(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dir)
	if st := readStatusAt(dir); st.tgid != os.Getpid() || st.threads < 1 {
		t.Errorf("readStatusAt(self): %+v", st)
	}
}

// TestStatusLong: a status file longer than the first read's buffer (a
// long Groups line) is read to its end; fields after the first buffer
// count, the last line needs no newline, and a field that is not a
// number reads as 0 (and a missing one as -1).
func TestStatusLong(t *testing.T) {
	var b strings.Builder
	b.WriteString("Name:\tx\nTgid:\t41\nPPid:\tx9\nGroups:\t")
	for b.Len() < 3*statusBuf {
		b.WriteString("1234567 ")
	}
	b.WriteString("\nThreads:\t17")
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	go func() {
		unix.Write(p[1], []byte(b.String()))
		unix.Close(p[1])
	}()
	if st := readStatusFD(p[0]); st != (taskStatus{41, 0, 17, nil}) {
		t.Errorf("readStatusFD of %d bytes: %+v", b.Len(), st)
	}
	if st := parseStatus([]byte("Name:\tx\n")); st != (taskStatus{-1, -1, -1, nil}) {
		t.Errorf("parseStatus without the fields: %+v", st)
	}
}

// TestProcTableFullDescriptorTable: with kbox's descriptor table full, a
// process still gets its pidfd from the reserve; once the reserve is
// spent too, it is refused (EAGAIN) and not entered.
func TestProcTableFullDescriptorTable(t *testing.T) {
	_, pt := testTable(t, false)
	a, b := startSleep(t), startSleep(t)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &lim) //nolint:errcheck
	low := lim
	low.Cur = 256
	// The reserve must lie below the limit to be usable: descriptors
	// other tests of the package left open (a repeated run: -count=N)
	// push its numbers up.
	pt.resMu.Lock()
	for _, fd := range pt.reserve {
		low.Cur = max(low.Cur, uint64(fd)+1)
	}
	pt.resMu.Unlock()
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var filler []int
	defer func() {
		for _, fd := range filler {
			unix.Close(fd)
		}
	}()
	for {
		fd, err := unix.Open("/", unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		filler = append(filler, fd)
	}
	p, _, err := pt.Lookup(a.Process.Pid, always)
	if err != nil || p == nil || !pt.IsGuest(a.Process.Pid) {
		t.Fatalf("with a full descriptor table: %v %v", p, err)
	}
	pt.resMu.Lock()
	for _, fd := range pt.reserve {
		unix.Close(fd)
		if nfd, err := unix.Open("/", unix.O_PATH|unix.O_CLOEXEC, 0); err == nil {
			filler = append(filler, nfd)
		}
	}
	pt.reserve = nil
	pt.resMu.Unlock()
	if p, _, err := pt.Lookup(b.Process.Pid, always); err != unix.EAGAIN || p != nil {
		t.Errorf("with no descriptor left: %v %v, want EAGAIN", p, err)
	}
	if pt.Size() != 1 {
		t.Errorf("size %d, want 1", pt.Size())
	}
}

// TestParseGroupSession reads the process group and session from
// /proc/<pid>/stat, whatever the process's name holds.
func TestParseGroupSession(t *testing.T) {
	for _, c := range []struct {
		in        string
		pgrp, sid int
		ok        bool
	}{
		{"1234 (sh) S 1 1234 1200 0 -1 4194560", 1234, 1200, true},
		{"77 (a) b (c)) R 5 66 55 0", 66, 55, true},
		{"77 (noclose R 5 66 55", 0, 0, false},
		{"77 (x) R 5", 0, 0, false},
	} {
		pgrp, sid, ok := parseGroupSession([]byte(c.in))
		if pgrp != c.pgrp || sid != c.sid || ok != c.ok {
			t.Errorf("parseGroupSession(%q) = %d, %d, %v; want %d, %d, %v", c.in, pgrp, sid, ok, c.pgrp, c.sid, c.ok)
		}
	}
	pgrp, sid, ok := readGroupSession(os.Getpid())
	if !ok || pgrp != unix.Getpgrp() {
		t.Errorf("readGroupSession(self) = %d, %d, %v; want pgrp %d", pgrp, sid, ok, unix.Getpgrp())
	}
}

// TestExitWaiter: the exit watcher's wait through Go's poller returns no
// events when its timeout passes, the ready events when there are some,
// and blocks (with no timeout) until one comes.
func TestExitWaiter(t *testing.T) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: 7}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, p[0], &ev); err != nil {
		t.Fatal(err)
	}
	pt := &ProcTable{epfd: epfd}
	wait := pt.exitWaiter()
	evs := make([]unix.EpollEvent, 4)
	t0 := time.Now()
	if n, err := wait(evs, 30); n != 0 || err != nil || time.Since(t0) < 25*time.Millisecond {
		t.Fatalf("wait with nothing ready: %d events, %v, after %v (want 0 after 30 ms)", n, err, time.Since(t0))
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		unix.Write(p[1], []byte{1})
	}()
	if n, err := wait(evs, -1); n != 1 || err != nil || evs[0].Fd != 7 {
		t.Fatalf("wait for a write: %d events %+v, %v", n, evs[:n], err)
	}
	// Level-triggered inside: the unread byte is reported again at once.
	if n, err := wait(evs, 1000); n != 1 || err != nil {
		t.Fatalf("second wait: %d events, %v", n, err)
	}
	if fl, _ := unix.FcntlInt(uintptr(epfd), unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
		t.Errorf("the epoll descriptor was not made non-blocking for the poller")
	}
}
