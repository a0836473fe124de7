//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"bytes"
	"runtime/debug"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

// memory reaches the guest's memory directly: it is kbox's own address
// space. Every access runs under debug.SetPanicOnFault (set by the trap
// entry points), so an unmapped or protected guest address becomes a
// recovered panic and EFAULT, never a crash.
type memory struct{}

const pageSize = abi.PageSize

func validRange(addr uint64, n int) bool {
	return addr != 0 && addr+uint64(n) >= addr
}

func (memory) Read(addr uint64, p []byte) error {
	return access(addr, len(p), func(guest []byte) { copy(p, guest) })
}

func (memory) Write(addr uint64, p []byte) error {
	return access(addr, len(p), func(guest []byte) { copy(guest, p) })
}

// access runs f on guest memory [addr, addr+n); a fault is EFAULT.
func access(addr uint64, n int, f func(guest []byte)) (err error) {
	if n == 0 {
		return nil
	}
	if !validRange(addr, n) {
		return unix.EFAULT
	}
	armFaultStack()
	defer func() {
		if recover() != nil {
			err = unix.EFAULT
		}
	}()
	f(guestBytes(addr, n))
	return nil
}

// ReadString reads up to max bytes and the NUL, a page at a time so that a
// string ending just before an unmapped page reads fine.
func (memory) ReadString(addr uint64, max int) (s string, err error) {
	if addr == 0 {
		return "", unix.EFAULT
	}
	armFaultStack()
	defer func() {
		if recover() != nil {
			s, err = "", unix.EFAULT
		}
	}()
	var out []byte
	for len(out) <= max {
		chunk := int(pageSize - addr%pageSize)
		if rest := max + 1 - len(out); chunk > rest {
			chunk = rest
		}
		if addr+uint64(chunk) < addr {
			return "", unix.EFAULT
		}
		b := guestBytes(addr, chunk)
		if i := bytes.IndexByte(b, 0); i >= 0 {
			if out == nil {
				return string(b[:i]), nil
			}
			return string(append(out, b[:i]...)), nil
		}
		out = append(out, b...)
		addr += uint64(chunk)
	}
	return "", unix.ENAMETOOLONG
}

// setPanicOnFault turns faults into panics for the calling goroutine and
// returns the function that restores the previous setting.
func setPanicOnFault() func() {
	old := debug.SetPanicOnFault(true)
	return func() { debug.SetPanicOnFault(old) }
}
