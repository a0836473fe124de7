package dispatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

// Process is kbox's state for one guest process (thread group): what the
// kernel cannot hold for it because the guest's view differs from the
// host's. Guest processes keep their real host pids.
type Process struct {
	Tgid int
	// inProcess: the guest runs in kbox's own process (trap, rewrite).
	inProcess bool

	mu    sync.Mutex
	cwd   string // canonical guest path
	root  string // canonical guest path ("/" unless chrooted)
	creds identity.Creds
	// trustedExec: the process is still kbox's own launcher; its first
	// execve is the guest's start and may be served without the checks that
	// protect against racing guest threads.
	trustedExec bool
	ppid        int    // parent at first sight (for the vfork check at exec)
	exe         string // guest path of the executed program
	scriptBase  string // set while a script trampoline runs: the script's base name

	// The process's pidfd, held from registration (a process enters the
	// table only with one) until the entry is dropped and no caller uses
	// it any more (users). It is what makes the entry this process and not
	// whatever later gets the same number: see alive.
	pidfd   int
	users   int
	dropped bool
	// seq orders registrations (guarded by the table's mu, like tids).
	seq  uint64
	tids map[int]struct{} // threads bound to this entry (ProcTable.byTid)

	// The memory file (procmem.go).
	mem    *memFile
	memGen uint64
	memOwn bool // not sharing its parent's space (memCacheable)
}

// CwdRoot returns the working and root directories.
func (p *Process) CwdRoot() (string, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cwd, p.root
}

// Creds returns a copy of the credentials.
func (p *Process) Creds() identity.Creds {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.creds.Clone()
}

func (p *Process) snapshot() *Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &Process{cwd: p.cwd, root: p.root, creds: p.creds.Clone(), pidfd: -1, exe: p.exe}
}

// acquire returns the held pidfd and keeps it open until release; false
// once the entry is dropped.
func (p *Process) acquire() (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dropped || p.pidfd < 0 {
		return -1, false
	}
	p.users++
	return p.pidfd, true
}

func (p *Process) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users--
	if p.users == 0 && p.dropped && p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
}

// UsePidfd runs fn with the process's pidfd, which stays open meanwhile;
// ESRCH when the process has left the table.
func (p *Process) UsePidfd(fn func(pidfd int) error) error {
	fd, ok := p.acquire()
	if !ok {
		return unix.ESRCH
	}
	defer p.release()
	return fn(fd)
}

// alive reports whether the process has not been reaped, which is exactly
// while its pid cannot name another process: a signal 0 through the pidfd
// fails with ESRCH once it is reaped (a zombie still answers). EPERM
// answers only for a process that exists.
func (p *Process) alive() bool {
	if p.inProcess {
		return true // kbox's own process: it lives while it asks
	}
	err := p.UsePidfd(func(fd int) error { return unix.PidfdSendSignal(fd, 0, nil, 0) })
	return err == nil || err == unix.EPERM
}

// ProcTable maps host tids to guest processes.
//
// A process is a guest's only while that exact process lives: it enters
// the table only once kbox holds a pidfd for it, every use checks the
// pidfd still names a process that has not been reaped (a pid is reused
// only after its process is reaped), and the entry is dropped when the
// pidfd reports the exit and the process is gone. A pid number on its own
// is never trusted: see judge and GuestDir.
//
// A child inherits its parent's state at fork. The kernel does not tell the
// supervisor about forks, so state is copied lazily: when a process is
// first seen, from its parent; and before a process changes its own state
// (chdir, chroot, set*id), every child it already has is settled with the
// old state first.
type ProcTable struct {
	e      *Engine
	mu     sync.Mutex
	byTgid map[int]*Process
	byTid  map[int]*Process
	// byToken: processes whose exit the epoll set still watches, by the
	// token of their registration (their seq).
	byToken map[uint64]*Process
	// exited: processes that exited but were not yet reaped (zombies),
	// checked a few at a time as other exits arrive.
	exited    []*Process
	seq       uint64
	initial   int
	self      int
	subreaper int
	epfd      int
	// signalScoped: the kernel confines the guest's signals to its own
	// Landlock domain (LANDLOCK_SCOPE_SIGNAL), see signals.go.
	signalScoped bool
	// reserve: descriptors kept open so that a pidfd can still be had
	// when kbox's descriptor table is full (see openPidfd).
	resMu   sync.Mutex
	reserve []int
	// fdView, when set, is an in-process tier's descriptor table
	// (SetFDView).
	fdView FDView
}

// FDView is an in-process tier's descriptor table as /proc/<pid>/fd shows
// it: guest numbers mapped to host descriptors (the links) and listed
// (the directory). The seccomp tier has none: its guest's descriptors are
// the kernel's.
type FDView interface {
	// HostFD maps guest descriptor fd of process pid to the host
	// descriptor; false when pid has no such descriptor.
	HostFD(pid, fd int) (int, bool)
	// GuestFDs lists process pid's descriptor numbers, ascending.
	GuestFDs(pid int) []int
}

// reserveFDs is how many descriptors the table keeps in reserve.
const reserveFDs = 8

// maxAncestry bounds the ancestry walk of judge.
const maxAncestry = 128

// SetFDView installs an in-process tier's view of its guest's descriptor
// table, for /proc/<pid>/fd: mapping guest numbers to host descriptors
// (the links) and listing the guest's numbers (the directory). Call before
// the guest runs.
func (t *ProcTable) SetFDView(v FDView) { t.fdView = v }

// HostFD maps guest descriptor fd of process pid to a host descriptor
// number as /proc/<pid>/fd names it.
func (t *ProcTable) HostFD(pid, fd int) (int, bool) {
	if t.fdView == nil {
		return fd, true
	}
	return t.fdView.HostFD(pid, fd)
}

func newProcTable(e *Engine) *ProcTable {
	t := makeProcTable(e)
	if fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC); err == nil {
		t.epfd = fd
		go t.reap()
	}
	return t
}

// makeProcTable makes a table without the exit watcher (entries are then
// dropped only when a check finds them gone).
func makeProcTable(e *Engine) *ProcTable {
	self := os.Getpid()
	t := &ProcTable{e: e, byTgid: map[int]*Process{}, byTid: map[int]*Process{}, byToken: map[uint64]*Process{},
		self: self, subreaper: self, epfd: -1}
	t.refill()
	return t
}

// SetSubreaper names the process the guest's orphans are re-parented to
// (the child subreaper above the guest's first process; kbox itself by
// default). Its children are guest processes; it is not one. The caller
// keeps it from being reaped while the guest runs. Call before the guest
// runs.
func (t *ProcTable) SetSubreaper(pid int) {
	t.mu.Lock()
	t.subreaper = pid
	t.mu.Unlock()
}

// SetSignalScope records whether the kernel confines the guest's signals
// to its Landlock domain (LANDLOCK_SCOPE_SIGNAL). Call before the guest
// runs.
func (t *ProcTable) SetSignalScope(scoped bool) {
	t.mu.Lock()
	t.signalScoped = scoped
	t.mu.Unlock()
}

func (t *ProcTable) scoped() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.signalScoped
}

func (t *ProcTable) subreaperPid() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.subreaper
}

// AddInitial registers the first guest process (kbox's launcher child).
func (t *ProcTable) AddInitial(pid int) *Process {
	p := &Process{Tgid: pid, cwd: t.e.cfg.InitialCwd, root: "/", creds: t.e.cfg.Identity.Initial(), trustedExec: true, pidfd: -1, ppid: t.self}
	t.mu.Lock()
	t.initial = pid
	if pid == t.self {
		// An in-process tier: the guest is kbox's own process, which
		// needs no pidfd to be known alive (and may not open one: its
		// filter denies pidfd_open).
		p.inProcess = true
		t.seq++
		p.seq, p.tids = t.seq, map[int]struct{}{}
		t.byTgid[pid] = p
		t.mu.Unlock()
		return p
	}
	t.mu.Unlock()
	fd, err := t.openPidfd(pid, &probe{})
	if err != nil {
		// Not in the table: its first call registers it afresh.
		t.e.warnf("pid %d: pidfd_open of the first guest process: %v", pid, err)
		return p
	}
	return t.insert(p, fd)
}

// openPidfd opens a pidfd, recording in pr a failure for want of
// descriptors.
func (t *ProcTable) openPidfd(pid int, pr *probe) (int, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	pr.note(err)
	return fd, err
}

// probe collects, over one judgement or registration, whether a step
// failed for want of descriptors (kbox's table full): its answer is then
// no answer.
type probe struct{ starved bool }

func (pr *probe) note(err error) {
	if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
		pr.starved = true
	}
}

// refill tops up the descriptor reserve.
func (t *ProcTable) refill() {
	t.resMu.Lock()
	defer t.resMu.Unlock()
	for len(t.reserve) < reserveFDs {
		fd, err := unix.Open("/", unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		t.reserve = append(t.reserve, fd)
	}
}

// insert enters p, holding pidfd fd, into the table and watches its exit.
// When a live entry for the same pid is there already (two threads of a
// new process registering at once), that entry is returned and fd closed.
func (t *ProcTable) insert(p *Process, fd int) *Process {
	for {
		t.mu.Lock()
		old := t.byTgid[p.Tgid]
		if old == nil {
			t.seq++
			p.seq, p.pidfd = t.seq, fd
			p.tids = map[int]struct{}{}
			t.byTgid[p.Tgid] = p
			t.mu.Unlock()
			t.watch(p)
			return p
		}
		t.mu.Unlock()
		if t.alive(old) {
			unix.Close(fd)
			return old
		}
	}
}

// watch arms the one-shot exit notification of p's pidfd.
func (t *ProcTable) watch(p *Process) {
	if t.epfd < 0 {
		return
	}
	t.mu.Lock()
	t.byToken[p.seq] = p
	t.mu.Unlock()
	err := p.UsePidfd(func(fd int) error {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(uint32(p.seq)), Pad: int32(uint32(p.seq >> 32))}
		return unix.EpollCtl(t.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
	})
	if err != nil {
		t.mu.Lock()
		delete(t.byToken, p.seq)
		t.mu.Unlock()
	}
}

// reap handles exit notifications: a process already reaped is dropped; a
// zombie waits in exited, checked again as later exits arrive and on a
// timer (20 ms, doubling up to 1 s while nothing is found reaped).
func (t *ProcTable) reap() {
	const first, last = 20, 1000
	evs := make([]unix.EpollEvent, 16)
	timeout := -1
	wait := t.exitWaiter()
	for {
		n, err := wait(evs, timeout)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		if n == 0 {
			if t.sweep(64) == 0 {
				timeout = min(2*timeout, last)
			}
		}
		for _, ev := range evs[:n] {
			token := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			t.mu.Lock()
			p := t.byToken[token]
			delete(t.byToken, token)
			t.mu.Unlock()
			if p != nil && t.alive(p) {
				t.mu.Lock()
				t.exited = append(t.exited, p)
				t.mu.Unlock()
				timeout = first
			}
			t.sweep(2)
		}
		t.mu.Lock()
		if len(t.exited) == 0 {
			timeout = -1
		} else if timeout < 0 {
			timeout = first
		}
		t.mu.Unlock()
	}
}

// exitWaiter returns how reap waits for exit notifications: through Go's
// network poller when the epoll descriptor can be registered there, so
// that no thread of kbox sits in a system call between exits. A thread
// blocked in epoll_wait for more than 10 ms has its P taken by the Go
// runtime's monitor, which then polls every 20 us for the next
// millisecond or so (and again after every guest process's exit): 40
// nanosleep wake-ups per iteration of a shell loop, as costly as serving
// its calls. Else a plain blocking epoll_wait.
func (t *ProcTable) exitWaiter() func(evs []unix.EpollEvent, msec int) (int, error) {
	blocking := func(evs []unix.EpollEvent, msec int) (int, error) { return unix.EpollWait(t.epfd, evs, msec) }
	if err := unix.SetNonblock(t.epfd, true); err != nil {
		return blocking
	}
	// The File is kept by the closures below for the table's lifetime:
	// its finalizer would close t.epfd.
	f := os.NewFile(uintptr(t.epfd), "kbox-exits")
	rc, err := f.SyscallConn()
	if err != nil || f.SetReadDeadline(time.Time{}) != nil {
		// Not pollable: epoll_wait blocks (O_NONBLOCK does not change it).
		return func(evs []unix.EpollEvent, msec int) (int, error) {
			defer runtime.KeepAlive(f)
			return blocking(evs, msec)
		}
	}
	return func(evs []unix.EpollEvent, msec int) (int, error) {
		deadline := time.Time{}
		if msec >= 0 {
			deadline = time.Now().Add(time.Duration(msec) * time.Millisecond)
		}
		f.SetReadDeadline(deadline) //nolint:errcheck // pollable: checked above
		n := 0
		var werr error
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, werr = unix.EpollWait(int(fd), evs, 0)
				if werr != unix.EINTR {
					return werr != nil || n > 0
				}
			}
		})
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return 0, nil
		case err != nil:
			return 0, err
		}
		return n, werr
	}
}

// sweep checks up to n exited processes, dropping those reaped since; it
// returns how many it dropped.
func (t *ProcTable) sweep(n int) int {
	t.mu.Lock()
	if n > len(t.exited) {
		n = len(t.exited)
	}
	batch := append([]*Process(nil), t.exited[:n]...)
	t.exited = t.exited[n:]
	t.mu.Unlock()
	dropped := 0
	for _, p := range batch {
		p.mu.Lock()
		gone := p.dropped
		p.mu.Unlock()
		switch {
		case gone:
		case t.alive(p):
			t.mu.Lock()
			t.exited = append(t.exited, p)
			t.mu.Unlock()
		default:
			dropped++
		}
	}
	return dropped
}

// drop removes p from the table; its pidfd is closed once unused.
func (t *ProcTable) drop(p *Process) {
	t.mu.Lock()
	if t.byTgid[p.Tgid] == p {
		delete(t.byTgid, p.Tgid)
	}
	for tid := range p.tids {
		if t.byTid[tid] == p {
			delete(t.byTid, tid)
		}
	}
	p.tids = nil
	if t.byToken[p.seq] == p {
		delete(t.byToken, p.seq)
	}
	t.mu.Unlock()
	p.mu.Lock()
	closed := false
	if !p.dropped {
		p.dropped = true
		p.forgetMemLocked()
		if p.users == 0 && p.pidfd >= 0 {
			unix.Close(p.pidfd)
			p.pidfd = -1
			closed = true
		}
	}
	p.mu.Unlock()
	if closed {
		t.refill()
	}
}

// alive checks p and drops it from the table once it is gone.
func (t *ProcTable) alive(p *Process) bool {
	if p.alive() {
		return true
	}
	t.drop(p)
	return false
}

// entry returns the live table entry of process tgid, or nil.
func (t *ProcTable) entry(tgid int) *Process {
	t.mu.Lock()
	p := t.byTgid[tgid]
	t.mu.Unlock()
	if p == nil || !t.alive(p) {
		return nil
	}
	return p
}

func (t *ProcTable) lastSeq() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seq
}

// bindThread records that thread tid belongs to p.
func (t *ProcTable) bindThread(tid int, p *Process) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.tids == nil || t.byTid[tid] == p {
		return // dropped meanwhile, or known
	}
	if old := t.byTid[tid]; old != nil && old.tids != nil {
		delete(old.tids, tid)
	}
	t.byTid[tid] = p
	p.tids[tid] = struct{}{}
}

// holdsThread reports whether thread tid is p's now: for another thread
// than the leader, the kernel finds tid in the thread group p's pid names
// (tgkill with signal 0), and then p is still not reaped, so that pid was
// p's when tgkill looked.
func (t *ProcTable) holdsThread(p *Process, tid int) bool {
	if tid != p.Tgid {
		if err := unix.Tgkill(p.Tgid, tid, 0); err != nil && err != unix.EPERM {
			return false
		}
	}
	return t.alive(p)
}

// Lookup returns the process of notifying thread tid, registering it on
// first sight. valid reports whether the notification is still pending,
// that is whether the thread still lives; a thread that died meanwhile
// gets ESRCH, and a process kbox cannot hold a pidfd for (its descriptor
// table full even after spending the reserve) EAGAIN: such a process is
// not entered, so it is no guest for anyone else's calls.
func (t *ProcTable) Lookup(tid int, valid func() bool) (*Process, int, error) {
	t.mu.Lock()
	p := t.byTid[tid]
	t.mu.Unlock()
	if p != nil {
		if t.holdsThread(p, tid) {
			return p, p.Tgid, nil
		}
		// A thread id reused by another process's thread, or p is gone.
		t.mu.Lock()
		if t.byTid[tid] == p {
			delete(t.byTid, tid)
			if p.tids != nil {
				delete(p.tids, tid)
			}
		}
		t.mu.Unlock()
	}
	return t.register(tid, valid)
}

// register enters the process of notifying thread tid. When kbox's
// descriptor table is full, the reserve is spent on one more try; if that
// fails too the call gets EAGAIN rather than a process entered from a
// wrong parent or not at all.
func (t *ProcTable) register(tid int, valid func() bool) (*Process, int, error) {
	pr := &probe{}
	p, tgid, err := t.registerOnce(tid, valid, pr)
	if !pr.starved {
		return p, tgid, err
	}
	t.resMu.Lock()
	for _, fd := range t.reserve {
		unix.Close(fd)
	}
	t.reserve = nil
	pr = &probe{}
	p, tgid, err = t.registerOnce(tid, valid, pr)
	t.resMu.Unlock()
	t.refill()
	if pr.starved {
		if p != nil {
			return p, tgid, nil
		}
		t.e.Verbosef("pid %d: kbox is out of descriptors: not entered as a guest process; its call fails with EAGAIN", tid)
		return nil, 0, unix.EAGAIN
	}
	return p, tgid, err
}

func (t *ProcTable) registerOnce(tid int, valid func() bool, pr *probe) (*Process, int, error) {
	seq0 := t.lastSeq()
	ts := readStatus(tid)
	if ts.tgid <= 0 {
		pr.note(ts.err)
		return nil, 0, unix.ESRCH
	}
	tgid, ppid := ts.tgid, ts.ppid
	if p := t.entry(tgid); p != nil {
		// While the caller lives its thread group keeps pid tgid, so a
		// live entry of tgid is the caller's process.
		if !valid() {
			return nil, 0, unix.ESRCH
		}
		t.bindThread(tid, p)
		return p, tgid, nil
	}
	// A parent that never made a notified call still has the state it
	// inherited: look it up (registering it) before copying from it.
	var parent *Process
	if ppid != t.subreaperPid() {
		parent = t.judgeProbe(ppid, 1, pr)
	}
	if parent != nil && parent.seq > seq0 {
		if now := readStatus(tid); now.ppid != ppid {
			pr.note(now.err)
			parent = nil // registered after the read, and no longer the parent
		}
	}
	if parent != nil && !t.alive(parent) {
		parent = nil
	}
	if pr.starved {
		return nil, 0, unix.EAGAIN // the parent may be unknown for want of descriptors
	}
	fd, err := t.openPidfd(tgid, pr)
	if err != nil {
		if err == unix.ESRCH {
			return nil, 0, unix.ESRCH
		}
		return nil, 0, unix.EAGAIN
	}
	// The caller still lives, so its process kept pid tgid throughout: fd
	// is the caller's process.
	if !valid() {
		unix.Close(fd)
		return nil, 0, unix.ESRCH
	}
	var p *Process
	if parent != nil {
		p = parent.snapshot()
	} else {
		p = t.orphanState(tgid, ppid)
	}
	p.Tgid, p.ppid = tgid, ppid
	p = t.insert(p, fd)
	t.bindThread(tid, p)
	return p, tgid, nil
}

// orphanState is the state of a process kbox sees first after its parent
// died (it was re-parented to the reaper) or whose parent it cannot know.
// Every call that changes what kbox keeps per process (cwd, root,
// identity) is notified, so a process kbox never saw has exactly the
// state of its nearest ancestor kbox saw, as it was at the fork; that
// ancestor is gone from the process's ppid once the parent in between
// died. The closest live guest process kbox can still name is the
// leader of the orphan's process group, then of its session (a shell
// without job control keeps its children in its own group: `(cmd &)`
// leaves cmd an orphan in it). Only when neither is a known guest
// process does the orphan start from the initial state, with a -v line.
// The leader may have changed its state since the fork, or the dead
// parent before it: docs/architecture.md ("Processes kbox sees late").
func (t *ProcTable) orphanState(pid, ppid int) *Process {
	if pgrp, sid, ok := readGroupSession(pid); ok {
		for _, leader := range []int{pgrp, sid} {
			if leader == pid || leader <= 0 {
				continue
			}
			if p := t.entry(leader); p != nil {
				if ppid != t.subreaperPid() {
					t.e.Verbosef("pid %d: parent %d unknown; state of its group or session leader %d", pid, ppid, leader)
				}
				return p.snapshot()
			}
		}
	}
	t.e.Verbosef("pid %d: parent %d unknown and no known group or session leader; starting from the initial state", pid, ppid)
	return &Process{cwd: t.e.cfg.InitialCwd, root: "/", creds: t.e.cfg.Identity.Initial(), pidfd: -1}
}

// readGroupSession reads the process group and session of pid from
// /proc/<pid>/stat (fields 5 and 6, after the parenthesized name).
func readGroupSession(pid int) (pgrp, sid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	return parseGroupSession(b)
}

func parseGroupSession(b []byte) (pgrp, sid int, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 4 {
		return 0, 0, false
	}
	pgrp, err1 := strconv.Atoi(f[2])
	sid, err2 := strconv.Atoi(f[3])
	return pgrp, sid, err1 == nil && err2 == nil
}

// settleChildren gives every not-yet-seen child of p p's current state;
// called before p changes its state.
func (t *ProcTable) settleChildren(p *Process) {
	type pending struct{ pid, fd int }
	var found []pending
	for _, child := range ChildrenOf(p.Tgid) {
		if t.entry(child) != nil {
			continue
		}
		fd, err := t.openPidfd(child, &probe{})
		if err != nil {
			continue
		}
		found = append(found, pending{child, fd})
	}
	if len(found) == 0 {
		return
	}
	// Each pidfd names a child of p only if the pid is still p's child
	// after it was opened, p still holding its own pid.
	now := map[int]bool{}
	for _, c := range ChildrenOf(p.Tgid) {
		now[c] = true
	}
	pAlive := t.alive(p)
	for _, c := range found {
		if !pAlive || !now[c.pid] || !pidfdAlive(c.fd) {
			unix.Close(c.fd)
			continue
		}
		s := p.snapshot()
		s.Tgid, s.ppid = c.pid, p.Tgid
		t.insert(s, c.fd)
	}
}

// update changes p's state after settling its children.
func (t *ProcTable) update(p *Process, fn func(p *Process) error) error {
	t.settleChildren(p)
	p.mu.Lock()
	defer p.mu.Unlock()
	return fn(p)
}

func pidfdAlive(fd int) bool {
	err := unix.PidfdSendSignal(fd, 0, nil, 0)
	return err == nil || err == unix.EPERM
}

// IsGuest reports whether host task id (a process or a thread) is a live
// guest task.
func (t *ProcTable) IsGuest(id int) bool { return t.judge(id, 0) != nil }

// GuestDir reports whether dirfd, a /proc/<id> directory the caller opened
// by the number id before calling, belongs to a live guest task. Every
// use of another process's /proc directory goes through it: the directory
// is tied to the task it was opened for (it does not follow pid reuse), the
// judgement finds the number a guest's after the open, and the directory's
// task, not reaped after that, held the number meanwhile: the two are
// one task.
func (t *ProcTable) GuestDir(dirfd, id int) bool {
	return t.judge(id, 0) != nil && procDirAlive(dirfd)
}

// judge returns the guest process that task id (a process or a thread
// id) belongs to now, registering a guest process it meets for the first
// time; nil if id is not a live guest task. A process is a guest's when it
// is in the table (with a live pidfd), or is a live child of the guest's
// subreaper or of a guest process; the parent is read from the process's
// own /proc directory and checked only after that read.
func (t *ProcTable) judge(id, depth int) *Process { return t.judgeProbe(id, depth, &probe{}) }

func (t *ProcTable) judgeProbe(id, depth int, pr *probe) *Process {
	if id <= 0 || depth > maxAncestry {
		return nil
	}
	if p := t.entry(id); p != nil {
		return p
	}
	subreaper := t.subreaperPid()
	if id == t.self || id == subreaper {
		return nil
	}
	dir, err := openProcDir(id)
	if err != nil {
		pr.note(err)
		return nil
	}
	defer unix.Close(dir)
	seq0 := t.lastSeq()
	ts := readStatusAt(dir)
	if ts.tgid <= 0 {
		pr.note(ts.err)
		return nil
	}
	if ts.tgid != id {
		// A thread: it is a guest's if its process is, and the kernel
		// finds it in that process while the process holds its pid.
		g := t.judgeProbe(ts.tgid, depth+1, pr)
		if g == nil || !t.holdsThread(g, id) {
			return nil
		}
		return g
	}
	var parent *Process
	if ts.ppid != subreaper {
		if ts.ppid <= 1 || ts.ppid == t.self {
			return nil
		}
		if parent = t.judgeProbe(ts.ppid, depth+1, pr); parent == nil {
			return nil
		}
		// The parent entry names the read parent if it was registered
		// before the read, or the process still has that parent now.
		if parent.seq > seq0 {
			if now := readStatusAt(dir); now.ppid != ts.ppid {
				pr.note(now.err)
				return nil
			}
		}
		if !t.alive(parent) {
			return nil
		}
	}
	fd, err := t.openPidfd(id, pr)
	if err != nil {
		return nil
	}
	// The directory's process, whose parent was read, still holds id: fd
	// (opened meanwhile) is that process.
	if !procDirAlive(dir) {
		unix.Close(fd)
		return nil
	}
	var p *Process
	if parent != nil {
		p = parent.snapshot()
	} else {
		p = t.orphanState(id, ts.ppid)
	}
	p.Tgid, p.ppid = id, ts.ppid
	return t.insert(p, fd)
}

// guestProcess returns the state of guest process pid (nil if pid is not
// a guest process).
func (t *ProcTable) guestProcess(pid int) *Process { return t.judge(pid, 0) }

// Cwd implements vfs.ProcView.
func (t *ProcTable) Cwd(pid int) (string, bool) {
	p := t.guestProcess(pid)
	if p == nil {
		return "", false
	}
	c, _ := p.CwdRoot()
	return c, true
}

// Root implements vfs.ProcView.
func (t *ProcTable) Root(pid int) (string, bool) {
	p := t.guestProcess(pid)
	if p == nil {
		return "", false
	}
	_, r := p.CwdRoot()
	return r, true
}

// Exe implements vfs.ProcView.
func (t *ProcTable) Exe(pid int) (string, bool) {
	p := t.guestProcess(pid)
	if p == nil {
		return "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exe, p.exe != ""
}

// live returns the table's processes that are still alive.
func (t *ProcTable) live() []*Process {
	t.mu.Lock()
	all := make([]*Process, 0, len(t.byTgid))
	for _, p := range t.byTgid {
		all = append(all, p)
	}
	t.mu.Unlock()
	out := all[:0]
	for _, p := range all {
		if t.alive(p) {
			out = append(out, p)
		}
	}
	return out
}

// Size returns the number of processes in the table (for tests and -v).
func (t *ProcTable) Size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byTgid)
}

// openProcDir opens /proc/<id> (O_PATH): the directory stays tied to the
// task it names now.
func openProcDir(id int) (int, error) {
	return unix.Open("/proc/"+strconv.Itoa(id), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// procDirAlive reports whether the task of a /proc/<id> directory has not
// been reaped: a lookup inside the directory of a reaped task fails.
func procDirAlive(dir int) bool {
	var st unix.Stat_t
	return unix.Fstatat(dir, "stat", &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// taskStatus is what kbox reads of a task in /proc/<tid>/status.
type taskStatus struct {
	tgid, ppid, threads int
	err                 error // why it could not be read
}

// readStatus reads a task's thread group, parent and thread count; all -1
// when the task is gone. The numbers are of whatever task holds tid when
// read: callers check afterwards that it was the task they meant.
//
// It is read with plain system calls (open, read until end, close): an
// exec reads three or four of these files (the new process's entry, the
// exec-race and vfork checks), and os.ReadFile's fstat and poller
// registration (five more calls, an epoll_ctl that fails on procfs) were
// a visible part of each guest exec.
func readStatus(tid int) taskStatus {
	fd, err := unix.Open("/proc/"+strconv.Itoa(tid)+"/status", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return taskStatus{-1, -1, -1, err}
	}
	defer unix.Close(fd)
	return readStatusFD(fd)
}

// readStatusAt reads the status file of an open /proc/<id> directory.
func readStatusAt(dir int) taskStatus {
	fd, err := unix.Openat(dir, "status", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return taskStatus{-1, -1, -1, err}
	}
	defer unix.Close(fd)
	return readStatusFD(fd)
}

// statusBuf is the first read's size: a status file is about 1.5 KB
// (more with long Groups or many CPUs: the buffer then grows).
const statusBuf = 4096

func readStatusFD(fd int) taskStatus {
	var small [statusBuf]byte
	b, err := readAllFD(fd, small[:0])
	if err != nil {
		return taskStatus{-1, -1, -1, err}
	}
	return parseStatus(b)
}

// readAllFD reads fd to its end into b (growing it when full): plain read
// calls, without os.File's poller registration and fcntl calls, for the
// small /proc files kbox reads per process.
func readAllFD(fd int, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, make([]byte, max(len(b), 64))...)[:len(b)]
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return b, err
		}
		if n <= 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

func parseStatus(b []byte) taskStatus {
	st := taskStatus{-1, -1, -1, nil}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		var dst *int
		switch {
		case bytes.HasPrefix(line, []byte("Tgid:")):
			dst, line = &st.tgid, line[len("Tgid:"):]
		case bytes.HasPrefix(line, []byte("PPid:")):
			dst, line = &st.ppid, line[len("PPid:"):]
		case bytes.HasPrefix(line, []byte("Threads:")):
			dst, line = &st.threads, line[len("Threads:"):]
		default:
			continue
		}
		*dst = statusInt(bytes.TrimSpace(line))
	}
	return st
}

// statusInt parses a non-negative decimal field; 0 when it is not one
// (as strconv.Atoi's error was ignored before).
func statusInt(b []byte) int {
	if len(b) == 0 || len(b) > 10 {
		return 0
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// ChildrenOf lists the children of every thread of process pid (of
// whatever process holds pid: callers check afterwards, unless pid is
// their own process, whose children's pids cannot be reused before it
// reaps them).
//
// It reads with plain system calls, as readStatus does: os.ReadFile spent
// six more calls on each children file (fstat, four fcntl and an
// epoll_ctl that fails on procfs), and a process's state change (chdir,
// chroot, set*id) reads one file per thread, twice when it has children.
func ChildrenOf(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	var out []int
	for _, tid := range taskIDs(dir) {
		out = appendChildren(out, dir+strconv.Itoa(tid)+"/children")
	}
	return out
}

// taskIDs lists the numeric entries of a /proc/<pid>/task directory.
func taskIDs(dir string) []int {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	var ids []int
	var buf [4096]byte
	for {
		n, err := unix.Getdents(fd, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return ids
		}
		for off := 0; off+19 <= n; {
			reclen := int(binary.LittleEndian.Uint16(buf[off+16:]))
			if reclen < 19 || off+reclen > n {
				return ids
			}
			name := buf[off+19 : off+reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if id, err := strconv.Atoi(string(name)); err == nil && id > 0 {
				ids = append(ids, id)
			}
			off += reclen
		}
	}
}

// appendChildren appends the pids listed in a children file.
func appendChildren(out []int, path string) []int {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return out
	}
	defer unix.Close(fd)
	var small [512]byte
	b, err := readAllFD(fd, small[:0])
	if err != nil {
		return out
	}
	for _, f := range strings.Fields(string(b)) {
		if c, err := strconv.Atoi(f); err == nil {
			out = append(out, c)
		}
	}
	return out
}
