package dispatch

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

// Process is kbox's state for one guest process (thread group): what the
// kernel cannot hold for it because the guest's view differs from the
// host's. Guest processes keep their real host pids.
type Process struct {
	Tgid int

	mu    sync.Mutex
	cwd   string // canonical guest path
	root  string // canonical guest path ("/" unless chrooted)
	creds identity.Creds
	// trustedExec: the process is still kbox's own launcher; its first
	// execve is the guest's start and may be served without the checks that
	// protect against racing guest threads.
	trustedExec bool
	pidfd       int
	ppid        int    // parent at first sight (for the vfork check at exec)
	exe         string // guest path of the executed program
	scriptBase  string // set while a script trampoline runs: the script's base name
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

// ProcTable maps host tids to guest processes.
//
// A child inherits its parent's state at fork. The kernel does not tell the
// supervisor about forks, so state is copied lazily: when a process is
// first seen, from its parent; and before a process changes its own state
// (chdir, chroot, set*id), every child it already has is settled with the
// old state first. Exited processes are dropped when their pidfd reports
// the exit.
type ProcTable struct {
	e       *Engine
	mu      sync.Mutex
	byTgid  map[int]*Process
	tidTgid map[int]int
	initial int
	self    int
	epfd    int
	// fdMap, when set, maps a guest descriptor number of process pid to
	// the host descriptor (in-process tiers; see SetFDMap).
	fdMap  func(pid, fd int) (int, bool)
	fdList func(pid int) []int
}

// SetFDView installs an in-process tier's view of its guest's descriptor
// table, for /proc/<pid>/fd: mapping guest numbers to host descriptors
// (the links) and listing the guest's numbers (the directory). Call before
// the guest runs.
func (t *ProcTable) SetFDView(mapFD func(pid, fd int) (int, bool), list func(pid int) []int) {
	t.fdMap, t.fdList = mapFD, list
}

// HostFD maps guest descriptor fd of process pid to a host descriptor
// number as /proc/<pid>/fd names it.
func (t *ProcTable) HostFD(pid, fd int) (int, bool) {
	if t.fdMap == nil {
		return fd, true
	}
	return t.fdMap(pid, fd)
}

func newProcTable(e *Engine) *ProcTable {
	t := &ProcTable{e: e, byTgid: map[int]*Process{}, tidTgid: map[int]int{}, self: os.Getpid(), epfd: -1}
	if fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC); err == nil {
		t.epfd = fd
		go t.reap()
	}
	return t
}

// AddInitial registers the first guest process (kbox's launcher child).
func (t *ProcTable) AddInitial(pid int) *Process {
	p := &Process{Tgid: pid, cwd: t.e.cfg.InitialCwd, root: "/", creds: t.e.cfg.Identity.Initial(), trustedExec: true, pidfd: -1, ppid: t.self}
	t.mu.Lock()
	t.initial = pid
	t.byTgid[pid] = p
	t.tidTgid[pid] = pid
	t.mu.Unlock()
	t.watch(p)
	return p
}

// Lookup returns the process of host thread tid, creating it on first sight.
func (t *ProcTable) Lookup(tid int) (*Process, int) {
	t.mu.Lock()
	if tgid, ok := t.tidTgid[tid]; ok {
		p := t.byTgid[tgid]
		t.mu.Unlock()
		if p != nil {
			return p, tgid
		}
		t.mu.Lock()
	}
	t.mu.Unlock()

	ts := readStatus(tid)
	tgid, ppid := ts.tgid, ts.ppid
	if tgid <= 0 {
		tgid = tid
	}
	// A parent that never made a notified call still has the state it
	// inherited: look it up (recursively) before copying from it.
	var parent *Process
	t.mu.Lock()
	_, known := t.byTgid[tgid]
	parent = t.byTgid[ppid]
	t.mu.Unlock()
	if !known && parent == nil && ppid > 1 && ppid != t.self && tgid != ppid && t.IsGuest(ppid) {
		parent, _ = t.Lookup(ppid)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tidTgid[tid] = tgid
	if p, ok := t.byTgid[tgid]; ok {
		return p, tgid
	}
	var p *Process
	if parent != nil {
		p = parent.snapshot()
	} else {
		p = &Process{cwd: t.e.cfg.InitialCwd, root: "/", creds: t.e.cfg.Identity.Initial(), pidfd: -1}
		t.e.Verbosef("pid %d: parent %d unknown; starting from the initial state", tgid, ppid)
	}
	p.Tgid, p.ppid = tgid, ppid
	t.byTgid[tgid] = p
	go t.watch(p)
	return p, tgid
}

// settleChildren gives every not-yet-seen child of p p's current state;
// called before p changes its state.
func (t *ProcTable) settleChildren(p *Process) {
	for _, child := range childrenOf(p.Tgid) {
		t.mu.Lock()
		if _, known := t.byTgid[child]; known {
			t.mu.Unlock()
			continue
		}
		c := p.snapshot()
		c.Tgid, c.ppid = child, p.Tgid
		t.byTgid[child] = c
		t.tidTgid[child] = child
		t.mu.Unlock()
		go t.watch(c)
	}
}

// update changes p's state after settling its children.
func (t *ProcTable) update(p *Process, fn func(p *Process) error) error {
	t.settleChildren(p)
	p.mu.Lock()
	defer p.mu.Unlock()
	return fn(p)
}

// watch arranges for p to be dropped when it exits.
func (t *ProcTable) watch(p *Process) {
	if t.epfd < 0 {
		return
	}
	fd, err := unix.PidfdOpen(p.Tgid, 0)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.pidfd = fd
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(p.Tgid)}
	if unix.EpollCtl(t.epfd, unix.EPOLL_CTL_ADD, fd, &ev) != nil {
		unix.Close(fd)
	}
}

func (t *ProcTable) reap() {
	evs := make([]unix.EpollEvent, 16)
	for {
		n, err := unix.EpollWait(t.epfd, evs, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range evs[:n] {
			tgid := int(ev.Fd)
			t.mu.Lock()
			p := t.byTgid[tgid]
			delete(t.byTgid, tgid)
			for tid, g := range t.tidTgid {
				if g == tgid {
					delete(t.tidTgid, tid)
				}
			}
			t.mu.Unlock()
			if p != nil {
				p.mu.Lock()
				if p.pidfd >= 0 {
					unix.EpollCtl(t.epfd, unix.EPOLL_CTL_DEL, p.pidfd, nil)
					unix.Close(p.pidfd)
					p.pidfd = -1
				}
				p.mu.Unlock()
			}
		}
	}
}

// IsGuest reports whether pid is in the guest's process tree: a known guest
// process, or a descendant of the first guest process (orphans are
// re-parented to kbox, which is a child subreaper).
func (t *ProcTable) IsGuest(pid int) bool {
	t.mu.Lock()
	_, known := t.byTgid[pid]
	initial := t.initial
	t.mu.Unlock()
	if known {
		return true
	}
	if pid <= 0 || pid == t.self {
		return false
	}
	cur := pid
	for i := 0; i < 128; i++ {
		ts := readStatus(cur)
		tgid, ppid := ts.tgid, ts.ppid
		if tgid <= 0 {
			return false
		}
		if tgid != cur {
			// A thread id: judge its process.
			cur = tgid
			continue
		}
		if ppid == initial || cur == initial || ppid == t.self {
			return true
		}
		if ppid <= 1 {
			return false
		}
		cur = ppid
	}
	return false
}

// guestProcess returns the state of guest process pid (nil if pid is not
// a guest process).
func (t *ProcTable) guestProcess(pid int) *Process {
	t.mu.Lock()
	p := t.byTgid[pid]
	t.mu.Unlock()
	if p == nil && t.IsGuest(pid) {
		p, _ = t.Lookup(pid)
	}
	return p
}

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

// tgids lists the known guest processes.
func (t *ProcTable) tgids() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]int, 0, len(t.byTgid))
	for tgid := range t.byTgid {
		out = append(out, tgid)
	}
	return out
}

// Exe implements vfs.ProcView.
func (t *ProcTable) Exe(pid int) (string, bool) {
	t.mu.Lock()
	p := t.byTgid[pid]
	t.mu.Unlock()
	if p == nil {
		return "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exe, p.exe != ""
}

// taskStatus is what kbox reads of a task in /proc/<tid>/status.
type taskStatus struct {
	tgid, ppid, threads int
}

// readStatus reads a task's thread group, parent and thread count; all -1
// when the task is gone.
func readStatus(tid int) taskStatus {
	st := taskStatus{-1, -1, -1}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return st
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		for _, f := range []struct {
			key []byte
			dst *int
		}{{[]byte("Tgid:"), &st.tgid}, {[]byte("PPid:"), &st.ppid}, {[]byte("Threads:"), &st.threads}} {
			if v, ok := bytes.CutPrefix(line, f.key); ok {
				*f.dst, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
			}
		}
	}
	return st
}

// childrenOf lists the children of every thread of process pid.
func childrenOf(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
