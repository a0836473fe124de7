package unotify

import (
	"bytes"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/dispatch"
	"github.com/kbox-go/kbox/internal/seccomp"
)

// memory reads and writes a guest task's memory.
//
// Reads use process_vm_readv and check after every read that the
// notification is still pending, so a value read from a task that was
// killed and whose pid was reused is never acted upon.
//
// Writes cannot be checked afterwards, and process_vm_writev names its
// target by number: a task that dies after the last check can have its
// tid taken by another process before the write (a thread's tid is freed
// as soon as it exits). So writes go through a memory file of the
// caller's address space, /proc/<tid>/mem checked once opened (the
// notification still pending, so the file is of the caller's space),
// which the process table keeps per process (dispatch/procmem.go). Like
// a debugger's poke, such a write also reaches read-only private pages
// (FOLL_FORCE), where process_vm_writev would fail with EFAULT.
type memory struct {
	tid      int
	id       uint64
	listener int
	proc     *dispatch.Process
}

const (
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

// openMem opens the caller's memory file and checks it is the caller's.
func (m *memory) openMem() (int, error) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(m.tid)+"/mem", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		if seccomp.IDValid(m.listener, m.id) != nil {
			return -1, unix.ENOENT
		}
		return -1, unix.EFAULT
	}
	if err := seccomp.IDValid(m.listener, m.id); err != nil {
		unix.Close(fd)
		return -1, unix.ENOENT
	}
	return fd, nil
}

func (m *memory) Write(addr uint64, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	return m.proc.UseMemFile(m.openMem, func(fd int) error { return pwriteAll(fd, p, addr) })
}

// WriteForce writes to read-only private pages too (copy-on-write), as a
// debugger's poke does; Write already does.
func (m *memory) WriteForce(addr uint64, p []byte) error { return m.Write(addr, p) }

func pwriteAll(fd int, p []byte, addr uint64) error {
	if addr > math.MaxInt64 || addr+uint64(len(p)) < addr {
		return unix.EFAULT
	}
	for len(p) > 0 {
		n, err := unix.Pwrite(fd, p, int64(addr))
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return unix.EFAULT
		}
		p, addr = p[n:], addr+uint64(n)
	}
	return nil
}

// PinMemory returns a writer of the caller's address space as it is now,
// valid after the request (used to restore a vfork parent's memory after
// its child's exec: the child's pid then names the new program's memory,
// the pinned file still the one the parent shares). Close it after use.
func (m *memory) PinMemory() (dispatch.PinnedMemory, error) {
	fd, err := m.openMem()
	if err != nil {
		return nil, err
	}
	return &pinnedMemory{fd: fd}, nil
}

// pinnedMemory writes an address space through its memory file.
type pinnedMemory struct{ fd int }

func (m *pinnedMemory) Read(addr uint64, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if addr > math.MaxInt64 {
		return unix.EFAULT
	}
	n, err := unix.Pread(m.fd, p, int64(addr))
	if err != nil || n != len(p) {
		return unix.EFAULT
	}
	return nil
}

func (m *pinnedMemory) Write(addr uint64, p []byte) error { return pwriteAll(m.fd, p, addr) }

func (m *pinnedMemory) ReadString(addr uint64, max int) (string, error) {
	return "", unix.EFAULT // not used: a pinned memory is written back to
}

func (m *pinnedMemory) Close() error { return unix.Close(m.fd) }

// ReadString reads in chunks that never cross a page boundary, so a string
// ending just before an unmapped page is still read; the first chunk is
// small because most paths are (copy cost grows with the chunk).
func (m *memory) ReadString(addr uint64, max int) (string, error) {
	var out []byte
	var small [firstChunk]byte
	buf := small[:]
	first := true
	for len(out) <= max {
		chunk := abi.PageSize - int(addr%abi.PageSize)
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
		if len(buf) < abi.PageSize {
			buf = make([]byte, abi.PageSize)
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
		return -1, abi.Errno(err, unix.EBADF)
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

// InstallsOPath: SECCOMP_IOCTL_NOTIF_ADDFD refuses O_PATH descriptors.
func (g *guestFDs) InstallsOPath() bool { return false }

// StackPointer reads the blocked thread's stack pointer from
// /proc/<tid>/syscall ("nr a0..a5 sp pc"). The notification can reach
// kbox before the thread has gone to sleep in it: the file then says
// "running" for a moment, and is read again (seen 8 times in 100 execs
// under qemu; stackPointerWait bounds the wait).
func (g *guestFDs) StackPointer() (uint64, error) {
	deadline := time.Now().Add(stackPointerWait)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(g.tid) + "/syscall")
		if err != nil {
			return 0, unix.EFAULT
		}
		sp, running, ok := parseSyscallSP(string(b))
		switch {
		case ok:
			return sp, nil
		case running && time.Now().Before(deadline):
			runtime.Gosched()
			continue
		}
		return 0, unix.EFAULT
	}
}

// stackPointerWait bounds how long StackPointer waits for a thread that
// is still "running" into its notification.
const stackPointerWait = 100 * time.Millisecond

// parseSyscallSP reads the stack pointer from /proc/<tid>/syscall's
// content; running reports the transient "running" state.
func parseSyscallSP(s string) (sp uint64, running, ok bool) {
	f := strings.Fields(s)
	if len(f) == 1 && f[0] == "running" {
		return 0, true, false
	}
	if len(f) < 9 {
		return 0, false, false
	}
	sp, err := strconv.ParseUint(strings.TrimPrefix(f[7], "0x"), 16, 64)
	return sp, false, err == nil
}

var (
	_ dispatch.Memory = (*memory)(nil)
	_ dispatch.Memory = (*pinnedMemory)(nil)
	_ dispatch.Guest  = (*guestFDs)(nil)
)
