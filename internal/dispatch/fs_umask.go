package dispatch

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// The guest's umask. kbox creates files, directories, FIFOs and sockets
// for the guest, so the kernel applies the umask of the thread that makes
// the call, not the guest's: a guest that set umask 077 (ssh-keygen) got
// files of mode 0644. Every creating call is therefore made on a thread of
// kbox with a private fs_struct (unshare(CLONE_FS)) whose umask is set to
// the calling guest task's just before. The kernel then applies it exactly
// as for the guest: mode &^ umask, or, when the parent directory has a
// default POSIX ACL, the ACL instead of the umask.
//
// The umask is read from /proc/<tid>/status (Linux 4.7 and later), where
// the kernel shows the calling task's own; a guest's umask call is never
// intercepted, and the value follows fork and CLONE_FS as the kernel
// keeps it.

// guestUmask returns the umask of the task that made request r.
func guestUmask(r *Request) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(r.Tid) + "/status")
	if err != nil {
		if os.IsNotExist(err) {
			return 0, unix.ESRCH
		}
		return 0, err
	}
	mask, ok := parseUmask(b)
	if !ok {
		return 0, unix.ENOSYS // a kernel before 4.7
	}
	// The task may have died and its tid been reused since the request
	// arrived: the value is only the guest's if the request still waits.
	if !r.StillPending() {
		return 0, unix.ESRCH
	}
	return mask, nil
}

// parseUmask finds the "Umask:" line of a /proc/<tid>/status file.
func parseUmask(b []byte) (int, bool) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("Umask:")); ok {
			m, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 8, 32)
			if err != nil || m > 0o777 {
				return 0, false
			}
			return int(m), true
		}
	}
	return 0, false
}

// createAs runs fn, a single host call that creates an object for the
// guest and never blocks (it must not open an existing FIFO or device),
// with the umask of the task that made r.
func (e *Engine) createAs(r *Request, what string, fn func() error) error {
	mask, err := guestUmask(r)
	if err != nil {
		e.Verbosef("pid %d: %s: cannot read the guest's umask: %v", r.Tgid, what, err)
		return err
	}
	return umaskThreads.run(mask, fn)
}

// createFile creates name in dirfd with open(2) flags (O_CREAT|O_EXCL
// added) under the guest's umask, and gives it the guest's owner
// (ownership.go: created).
func (e *Engine) createFile(r *Request, dirfd int, name string, flags int, mode uint32) (int, error) {
	fd := -1
	err := e.createAs(r, "create "+name, func() error {
		var err error
		fd, err = unix.Openat(dirfd, name, flags|unix.O_CREAT|unix.O_EXCL, mode)
		return err
	})
	if err == nil {
		e.created(r, dirfd, fd)
	}
	return fd, err
}

// createOpen serves open(2) with O_CREAT of name in dirfd: an existing
// object is opened as open(2) opens it (a directory is EISDIR), a missing
// one created under the guest's umask (createFile). An object that comes
// and goes meanwhile is retried.
func (e *Engine) createOpen(r *Request, dirfd int, name string, flags int, mode uint32) (int, error) {
	for attempt := 0; attempt < 8; attempt++ {
		if flags&unix.O_EXCL == 0 {
			fd, err := e.hostOpen(r, dirfd, name, flags&^unix.O_CREAT, 0)
			if err == nil {
				var st unix.Stat_t
				if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT == unix.S_IFDIR {
					unix.Close(fd)
					if err == nil {
						err = unix.EISDIR
					}
					return -1, err
				}
				return fd, nil
			}
			if err != unix.ENOENT {
				return -1, err
			}
		}
		fd, err := e.createFile(r, dirfd, name, flags, mode)
		if err != unix.EEXIST || flags&unix.O_EXCL != 0 {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

// umaskPool runs creating calls on OS threads with a private fs_struct,
// started with the engine (startUmaskThreads) in the in-process tiers: a
// thread the Go runtime starts later may be cloned from their guest
// thread and inherit its filter, which refuses unshare. The seccomp tier
// starts them at the first creating call (Config.ThreadsOnDemand). A call
// waits for a free thread.
type umaskPool struct {
	once sync.Once
	idle chan *umaskWorker
	err  error
}

// umaskThreadCount is how many creating calls run at once.
const umaskThreadCount = 4

type umaskJob struct {
	mask int
	fn   func() error
	done chan error
}

type umaskWorker struct{ jobs chan umaskJob }

var umaskThreads = &umaskPool{}

// startUmaskThreads starts the umask threads (once per process).
func startUmaskThreads() {
	p := umaskThreads
	p.once.Do(func() {
		p.idle = make(chan *umaskWorker, umaskThreadCount)
		for range umaskThreadCount {
			w := &umaskWorker{jobs: make(chan umaskJob)}
			started := make(chan error, 1)
			go func() {
				// Never unlocked: the thread's fs_struct is its own.
				runtime.LockOSThread()
				if err := unix.Unshare(unix.CLONE_FS); err != nil {
					started <- err
					return
				}
				started <- nil
				for j := range w.jobs {
					unix.Umask(j.mask)
					j.done <- j.fn()
				}
			}()
			if err := <-started; err != nil {
				p.err = err
				return
			}
			p.idle <- w
		}
	})
}

func (p *umaskPool) run(mask int, fn func() error) error {
	startUmaskThreads()
	if p.err != nil {
		return p.err
	}
	w := <-p.idle
	done := make(chan error, 1)
	w.jobs <- umaskJob{mask: mask, fn: fn, done: done}
	err := <-done
	p.idle <- w
	return err
}
