package dispatch

import "golang.org/x/sys/unix"

// A process's memory file: a descriptor of its address space
// (/proc/<tid>/mem) that a tier writes guest memory through. Such a file
// holds the address space it was opened on, whatever the pid names
// later, so a write through it cannot reach another process the way
// process_vm_writev by number can. Opening one costs about as much as a
// whole stat through kbox, so it is kept per process, and dropped when
// the address space is replaced (exec, see ForgetMemFile) and when the
// process leaves the table.
//
// A process that shares its address space with its parent (a vfork or
// CLONE_VM child) gets no cached file: its exec leaves the shared space
// to the parent. A file cached by one thread while another thread's exec
// is under way names the old space: a write that then fails is retried
// once on a fresh file; one that succeeds lands in the old space, which
// only guest processes ever use.

type memFile struct {
	fd    int
	users int
	stale bool
}

// UseMemFile runs fn with a descriptor of the process's address space:
// the cached one, or one open makes (it must return a file of the calling
// thread's address space, checked), kept for later calls.
func (p *Process) UseMemFile(open func() (int, error), fn func(fd int) error) error {
	if !p.memCacheable() {
		fd, err := open()
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return fn(fd)
	}
	m, fresh, err := p.memFile(open)
	if err != nil {
		return err
	}
	err = fn(m.fd)
	if err != nil && !fresh {
		// Perhaps a space replaced meanwhile: once more on a new file.
		p.releaseMem(m, true)
		if m, _, err = p.memFile(open); err != nil {
			return err
		}
		err = fn(m.fd)
	}
	p.releaseMem(m, false)
	return err
}

// memCacheable reports whether the process has an address space of its
// own, remembering only a yes: a process never comes to share its
// parent's space, but a vfork child stops sharing it when it execs, and
// every process a shell or posix_spawn starts is one.
func (p *Process) memCacheable() bool {
	p.mu.Lock()
	own, tgid, ppid := p.memOwn, p.Tgid, p.ppid
	p.mu.Unlock()
	if own {
		return true
	}
	if ppid <= 0 {
		return false
	}
	if shared, err := kcmp(tgid, ppid, kcmpVM); err != nil || shared {
		return false
	}
	p.mu.Lock()
	p.memOwn = true
	p.mu.Unlock()
	return true
}

// noteMemShared records what kcmp said of the process's address space
// and its parent ppid's (the question memCacheable asks), when ppid is
// the parent it compares with: only a "not shared", as memCacheable.
func (p *Process) noteMemShared(ppid int, shared bool) {
	p.mu.Lock()
	if !shared && p.ppid == ppid && ppid > 0 {
		p.memOwn = true
	}
	p.mu.Unlock()
}

// memFile returns the cached file, opening one if needed; fresh reports
// a new one.
func (p *Process) memFile(open func() (int, error)) (*memFile, bool, error) {
	p.mu.Lock()
	if m := p.mem; m != nil && !m.stale {
		m.users++
		p.mu.Unlock()
		return m, false, nil
	}
	gen := p.memGen
	p.mu.Unlock()
	fd, err := open()
	if err != nil {
		return nil, false, err
	}
	m := &memFile{fd: fd, users: 1}
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen == p.memGen && !p.dropped {
		// Replaces a stale file (closed by its last user) or one another
		// call opened meanwhile (the same space: dropped once unused).
		if old := p.mem; old != nil {
			old.stale = true
			if old.users == 0 {
				unix.Close(old.fd)
			}
		}
		p.mem = m
	} else {
		m.stale = true // the space was replaced while opening: not kept
	}
	return m, true, nil
}

// releaseMem ends a use; stale marks the file as not to be used again.
func (p *Process) releaseMem(m *memFile, stale bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m.users--
	if stale {
		m.stale = true
		if p.mem == m {
			p.mem = nil
		}
	}
	if m.users == 0 && m.stale {
		unix.Close(m.fd)
	}
}

// ForgetMemFile drops the cached memory file: the process is replacing
// its address space (exec).
func (p *Process) ForgetMemFile() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forgetMemLocked()
}

func (p *Process) forgetMemLocked() {
	p.memGen++
	if m := p.mem; m != nil {
		m.stale = true
		p.mem = nil
		if m.users == 0 {
			unix.Close(m.fd)
		}
	}
}
