package unotify

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/dispatch"
	"github.com/kbox-go/kbox/internal/seccomp"
)

// memory reads and writes a guest task's memory with process_vm_readv/
// writev and checks after every read that the notification is still
// pending, so a value read from a task that was killed and whose pid was
// reused is never acted upon.
type memory struct {
	tid      int
	id       uint64
	listener int
}

const (
	pageSize   = 4096
	firstChunk = 256
)

func (m *memory) Read(addr uint64, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	n, err := unix.ProcessVMReadv(m.tid, []unix.Iovec{{Base: &p[0], Len: uint64(len(p))}},
		[]unix.RemoteIovec{{Base: uintptr(addr), Len: len(p)}}, 0)
	if err != nil || n != len(p) {
		return unix.EFAULT
	}
	if err := seccomp.IDValid(m.listener, m.id); err != nil {
		return unix.ENOENT
	}
	return nil
}

func (m *memory) Write(addr uint64, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	n, err := unix.ProcessVMWritev(m.tid, []unix.Iovec{{Base: &p[0], Len: uint64(len(p))}},
		[]unix.RemoteIovec{{Base: uintptr(addr), Len: len(p)}}, 0)
	if err != nil || n != len(p) {
		return unix.EFAULT
	}
	return nil
}

// WriteForce writes through /proc/<tid>/mem, which reaches read-only
// private pages (copy-on-write), as a debugger's poke does.
func (m *memory) WriteForce(addr uint64, p []byte) error {
	f, err := os.OpenFile("/proc/"+strconv.Itoa(m.tid)+"/mem", os.O_WRONLY, 0)
	if err != nil {
		return unix.EFAULT
	}
	defer f.Close()
	if _, err := f.WriteAt(p, int64(addr)); err != nil {
		return unix.EFAULT
	}
	return nil
}

// OfProcess returns a writer of another guest process's memory (used to
// restore a vfork parent's memory after its child's exec); it performs no
// notification checks, so it must only be written to.
func (m *memory) OfProcess(pid int) dispatch.Memory {
	return &memory{tid: pid, id: 0, listener: -1}
}

// ReadString reads in chunks that never cross a page boundary, so a string
// ending just before an unmapped page is still read; the first chunk is
// small because most paths are (copy cost grows with the chunk).
func (m *memory) ReadString(addr uint64, max int) (string, error) {
	var out []byte
	var small [firstChunk]byte
	buf := small[:]
	first := true
	for len(out) <= max {
		chunk := pageSize - int(addr%pageSize)
		if first && chunk > firstChunk {
			chunk = firstChunk
		}
		first = false
		if rest := max + 1 - len(out); chunk > rest {
			chunk = rest
		}
		if err := m.Read(addr, buf[:chunk]); err != nil {
			return "", err
		}
		if i := bytes.IndexByte(buf[:chunk], 0); i >= 0 {
			if out == nil {
				return string(buf[:i]), nil
			}
			return string(append(out, buf[:i]...)), nil
		}
		out = append(out, buf[:chunk]...)
		addr += uint64(chunk)
		if len(buf) < pageSize {
			buf = make([]byte, pageSize)
		}
	}
	return "", unix.ENAMETOOLONG
}

// guestFDs reaches a guest process's descriptor table through the pidfd
// the process table holds for it, and the listener.
type guestFDs struct {
	tid      int
	proc     *dispatch.Process
	id       uint64
	listener int
}

func (g *guestFDs) DupFD(fd int) (int, error) {
	if fd < 0 {
		return -1, unix.EBADF
	}
	h := -1
	err := g.proc.UsePidfd(func(pidfd int) error {
		var err error
		h, err = unix.PidfdGetfd(pidfd, fd, 0)
		return err
	})
	if err != nil {
		return -1, errnoOr(err, unix.EBADF)
	}
	return h, nil
}

func (g *guestFDs) InjectFD(hostFD int, cloexec bool, target int) (int, error) {
	a := seccomp.NotifAddFD{ID: g.id, SrcFD: uint32(hostFD)}
	if cloexec {
		a.NewFDFlags = unix.O_CLOEXEC
	}
	if target >= 0 {
		a.Flags |= unix.SECCOMP_ADDFD_FLAG_SETFD
		a.NewFD = uint32(target)
	}
	return seccomp.AddFD(g.listener, &a)
}

// StackPointer reads the blocked thread's stack pointer from
// /proc/<tid>/syscall ("nr a0..a5 sp pc").
func (g *guestFDs) StackPointer() (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(g.tid) + "/syscall")
	if err != nil {
		return 0, unix.EFAULT
	}
	f := strings.Fields(string(b))
	if len(f) < 9 {
		return 0, unix.EFAULT
	}
	sp, err := strconv.ParseUint(strings.TrimPrefix(f[7], "0x"), 16, 64)
	if err != nil {
		return 0, unix.EFAULT
	}
	return sp, nil
}

var (
	_ dispatch.Memory = (*memory)(nil)
	_ dispatch.Guest  = (*guestFDs)(nil)
)
