//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"

	"github.com/kbox-go/kbox/internal/policy"
)

// Descriptor management: the guest's numbers live in the fdtable; the
// host descriptors behind them are kbox's.

func init() {
	own(sysClose, "close")
	own(sysCloseRange, "close_range")
	own(sysDup, "dup")
	own(sysDup2, "dup2")
	own(sysDup3, "dup3")
	own(sysFcntl, "fcntl")
	own(sysIoctl, "ioctl")
	ownNamed(sysPipe, "pipe", "pipe2")
	own(sysSocketpair, "socketpair")
	ownNamed(sysPoll, "poll", "ppoll")
	ownNamed(sysSelect, "select", "pselect6")
	own(sysRecvmsg, "recvmsg")
}

func result(v int, err error) int64 {
	if err != nil {
		return errno(err)
	}
	return int64(v)
}

func sysClose(t *tier, c *call) int64 {
	_, err := t.fds.Close(c.int(0))
	return result(0, err)
}

func sysCloseRange(t *tier, c *call) int64 {
	first, last, flags := uint64(uint32(c.args[0])), uint64(uint32(c.args[1])), c.args[2]
	if first > last || flags&^uint64(unix.CLOSE_RANGE_CLOEXEC|unix.CLOSE_RANGE_UNSHARE) != 0 {
		return -int64(unix.EINVAL)
	}
	limit := uint64(t.fds.Limit())
	for fd := first; fd <= last && fd < limit; fd++ {
		if _, ok := t.fds.Get(int(fd)); !ok {
			continue
		}
		if flags&unix.CLOSE_RANGE_CLOEXEC != 0 {
			t.fds.SetCloexec(int(fd), true)
		} else {
			t.fds.Close(int(fd))
		}
	}
	return 0
}

func sysDup(t *tier, c *call) int64 { return result(t.fds.Dup(c.int(0))) }

func sysDup2(t *tier, c *call) int64 {
	old, nfd := c.int(0), c.int(1)
	if old == nfd {
		if _, ok := t.fds.Get(old); !ok {
			return -int64(unix.EBADF)
		}
		return int64(nfd)
	}
	return result(t.fds.Dup2(old, nfd))
}

func sysDup3(t *tier, c *call) int64 { return result(t.fds.Dup3(c.int(0), c.int(1), c.int(2))) }

func sysFcntl(t *tier, c *call) int64 {
	fd, cmd := c.int(0), c.int(1)
	switch cmd {
	case unix.F_DUPFD, unix.F_DUPFD_CLOEXEC:
		min := c.int(2)
		if min < 0 {
			return -int64(unix.EINVAL)
		}
		return result(t.fds.DupFrom(fd, min, cmd == unix.F_DUPFD_CLOEXEC))
	case unix.F_GETFD:
		on, err := t.fds.Cloexec(fd)
		if err != nil {
			return errno(err)
		}
		if on {
			return unix.FD_CLOEXEC
		}
		return 0
	case unix.F_SETFD:
		return result(0, t.fds.SetCloexec(fd, c.args[2]&unix.FD_CLOEXEC != 0))
	case unix.F_SETOWN, unix.F_SETOWN_EX:
		return t.viaEngine(c) // who receives SIGIO is checked like kill
	case unix.F_SETLKW, unix.F_OFD_SETLKW:
		return t.runNative(c, onDescriptorBlocking)
	}
	return t.runNative(c, onDescriptor)
}

// The native forms of own rules' calls on the descriptor in their first
// argument.
var (
	onDescriptor         = &policy.NativeSpec{FDArgs: 1}
	onDescriptorBlocking = &policy.NativeSpec{FDArgs: 1, Blocking: true}
)

func sysIoctl(t *tier, c *call) int64 {
	switch uint(c.args[1]) {
	case abi.FIOCLEX, abi.FIONCLEX:
		return result(0, t.fds.SetCloexec(c.int(0), uint(c.args[1]) == abi.FIOCLEX))
	}
	if t.pol.Expect(c.nr, c.args) == policy.Notify { // FIOSETOWN, SIOCSPGRP
		return t.viaEngine(c)
	}
	return t.runNative(c, onDescriptor)
}

// installPair installs two new host descriptors and writes the guest
// numbers as int[2] at addr.
func (t *tier) installPair(h [2]int, cloexec bool, addr uint64) int64 {
	g0, err := t.install(h[0], cloexec, "")
	if err != nil {
		unix.Close(h[0])
		unix.Close(h[1])
		return errno(err)
	}
	g1, err := t.install(h[1], cloexec, "")
	if err != nil {
		unix.Close(h[1])
		t.fds.Close(g0)
		return errno(err)
	}
	var b [8]byte
	binary.LittleEndian.PutUint32(b[0:], uint32(g0))
	binary.LittleEndian.PutUint32(b[4:], uint32(g1))
	if err := (memory{}).Write(addr, b[:]); err != nil {
		t.fds.Close(g0)
		t.fds.Close(g1)
		return -int64(unix.EFAULT)
	}
	return 0
}

func sysPipe(name string) rule {
	return func(t *tier, c *call) int64 { return pipe(t, c, name == "pipe2") }
}

func pipe(t *tier, c *call, withFlags bool) int64 {
	flags := 0
	if withFlags {
		flags = c.int(1)
	}
	if flags&^(unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_DIRECT|abi.ONotificationPipe) != 0 {
		return -int64(unix.EINVAL)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], flags|unix.O_CLOEXEC); err != nil {
		return errno(err)
	}
	return t.installPair(p, flags&unix.O_CLOEXEC != 0, c.args[0])
}

func sysSocketpair(t *tier, c *call) int64 {
	typ := c.int(1)
	p, err := unix.Socketpair(c.int(0), typ|unix.SOCK_CLOEXEC, c.int(2))
	if err != nil {
		return errno(err)
	}
	return t.installPair(p, typ&unix.SOCK_CLOEXEC != 0, c.args[3])
}

// sysPoll translates the pollfd array into a host copy, polls, and writes
// the revents back. A guest number that is not open gets POLLNVAL, as the
// kernel reports it.
func sysPoll(name string) rule {
	return func(t *tier, c *call) int64 { return poll(t, c, name == "ppoll") }
}

func poll(t *tier, c *call, ppoll bool) int64 {
	nfds := c.args[1]
	if nfds > uint64(t.fds.Limit()) || nfds > 1<<20 {
		return -int64(unix.EINVAL)
	}
	buf := make([]byte, 8*nfds)
	if err := (memory{}).Read(c.args[0], buf); err != nil && nfds > 0 {
		return -int64(unix.EFAULT)
	}
	host := make([]byte, len(buf))
	copy(host, buf)
	nval := 0
	for i := 0; i < int(nfds); i++ {
		g := int32(binary.LittleEndian.Uint32(buf[8*i:]))
		if g < 0 {
			continue
		}
		e, ok := t.fds.Get(int(g))
		if !ok {
			binary.LittleEndian.PutUint32(host[8*i:], ^uint32(0)) // ignored by the kernel
			nval++
			continue
		}
		binary.LittleEndian.PutUint32(host[8*i:], uint32(e.HostFD))
	}
	a := c.args
	a[0] = addrOf(host)
	if ppoll {
		// The guest's temporary signal mask is virtual; the host call
		// keeps the thread's own.
		a[3], a[4] = 0, 0
		if nval > 0 {
			a[2] = addrOf(zeroTimespec[:])
		}
	} else if nval > 0 {
		a[2] = 0 // an invalid descriptor makes poll return at once
	}
	r := t.blocking(c, a)
	if r < 0 {
		return r
	}
	for i := 0; i < int(nfds); i++ {
		g := int32(binary.LittleEndian.Uint32(buf[8*i:]))
		rev := binary.LittleEndian.Uint16(host[8*i+6:])
		if g >= 0 {
			if _, ok := t.fds.Get(int(g)); !ok {
				rev = unix.POLLNVAL
				r++
			}
		}
		binary.LittleEndian.PutUint16(buf[8*i+6:], rev)
	}
	if err := (memory{}).Write(c.args[0], buf); err != nil && nfds > 0 {
		return -int64(unix.EFAULT)
	}
	keep(host)
	return r
}

var zeroTimespec [16]byte

// sysSelect rebuilds the three fd_sets over host numbers and maps the
// result back.
func sysSelect(name string) rule {
	return func(t *tier, c *call) int64 { return selectFDs(t, c, name == "pselect6") }
}

func selectFDs(t *tier, c *call, pselect bool) int64 {
	n := c.int(0)
	if n < 0 || n > t.fds.Limit() {
		return -int64(unix.EINVAL)
	}
	words := (n + 63) / 64
	var guest [3][]uint64
	var hostSets [3][]uint64
	var toGuest = map[int]int{}
	maxHost := -1
	type member struct{ set, g, h int }
	var members []member
	for s := 0; s < 3; s++ {
		if c.args[1+s] == 0 {
			continue
		}
		b := make([]byte, 8*words)
		if err := (memory{}).Read(c.args[1+s], b); err != nil && words > 0 {
			return -int64(unix.EFAULT)
		}
		guest[s] = make([]uint64, words)
		for w := range guest[s] {
			guest[s][w] = binary.LittleEndian.Uint64(b[8*w:])
		}
		for g := 0; g < n; g++ {
			if guest[s][g/64]&(1<<(g%64)) == 0 {
				continue
			}
			e, ok := t.fds.Get(g)
			if !ok {
				return -int64(unix.EBADF)
			}
			members = append(members, member{s, g, e.HostFD})
			toGuest[e.HostFD] = g
			maxHost = max(maxHost, e.HostFD)
		}
	}
	hn := maxHost + 1
	hwords := (hn + 63) / 64
	var bufs [3][]byte
	a := c.args
	a[0] = uint64(hn)
	for s := 0; s < 3; s++ {
		if c.args[1+s] == 0 {
			continue
		}
		hostSets[s] = make([]uint64, max(hwords, 1))
		bufs[s] = make([]byte, 8*max(hwords, 1))
		a[1+s] = addrOf(bufs[s])
	}
	for _, m := range members {
		hostSets[m.set][m.h/64] |= 1 << (m.h % 64)
	}
	for s := 0; s < 3; s++ {
		for w, v := range hostSets[s] {
			binary.LittleEndian.PutUint64(bufs[s][8*w:], v)
		}
	}
	if pselect {
		a[5] = 0 // the guest's signal mask is virtual
	}
	r := t.blocking(c, a)
	if r < 0 {
		return r
	}
	count := int64(0)
	for s := 0; s < 3; s++ {
		if c.args[1+s] == 0 {
			continue
		}
		out := make([]byte, 8*words)
		for w := 0; w < hwords; w++ {
			v := binary.LittleEndian.Uint64(bufs[s][8*w:])
			for v != 0 {
				bit := v & -v
				h := w*64 + trailingZeros(bit)
				v &^= bit
				if g, ok := toGuest[h]; ok {
					out[g/8] |= 1 << (g % 8)
					count++
				}
			}
		}
		if err := (memory{}).Write(c.args[1+s], out); err != nil && words > 0 {
			return -int64(unix.EFAULT)
		}
	}
	keep(bufs[0], bufs[1], bufs[2])
	return count
}

func trailingZeros(v uint64) int {
	n := 0
	for v&1 == 0 {
		v >>= 1
		n++
	}
	return n
}

// sysRecvmsg receives, then installs descriptors passed with SCM_RIGHTS
// and rewrites their numbers in the guest's control buffer.
func sysRecvmsg(t *tier, c *call) int64 {
	r := t.runNative(c, onDescriptorBlocking)
	if r < 0 {
		return r
	}
	// struct msghdr: name, namelen, iov, iovlen, control, controllen, flags.
	var hb [56]byte
	if (memory{}).Read(c.args[1], hb[:]) != nil {
		return r
	}
	caddr := binary.LittleEndian.Uint64(hb[32:])
	clen := binary.LittleEndian.Uint64(hb[40:])
	if caddr == 0 || clen == 0 || clen > 1<<20 {
		return r
	}
	ctl := make([]byte, clen)
	if (memory{}).Read(caddr, ctl) != nil {
		return r
	}
	cloexec := c.args[2]&unix.MSG_CMSG_CLOEXEC != 0
	changed := false
	for off := 0; off+unix.SizeofCmsghdr <= len(ctl); {
		clen := int(binary.LittleEndian.Uint64(ctl[off:]))
		level := int32(binary.LittleEndian.Uint32(ctl[off+8:]))
		typ := int32(binary.LittleEndian.Uint32(ctl[off+12:]))
		if clen < unix.SizeofCmsghdr || off+clen > len(ctl) {
			break
		}
		if level == unix.SOL_SOCKET && typ == unix.SCM_RIGHTS {
			for p := off + unix.SizeofCmsghdr; p+4 <= off+clen; p += 4 {
				h := int(int32(binary.LittleEndian.Uint32(ctl[p:])))
				g, err := t.install(h, cloexec, "")
				if err != nil {
					unix.Close(h)
					g = -1
				}
				binary.LittleEndian.PutUint32(ctl[p:], uint32(g))
				changed = true
			}
		}
		off += (clen + 7) &^ 7
	}
	if changed {
		(memory{}).Write(caddr, ctl)
	}
	return r
}
