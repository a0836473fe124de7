package dispatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

// The calls that report a sender's or peer's address: recvfrom with an
// address buffer, recvmsg, accept and accept4 with an address buffer. The
// seccomp filter sends them to kbox (the address-less forms of recvfrom,
// accept and accept4 stay in BPF); for a socket of another family than
// AF_UNIX kbox lets the kernel run the call as issued (one notification
// and one descriptor lookup: docs/network.md has the cost). For an AF_UNIX
// socket kbox receives on its duplicate and reports the guest's names: an
// abstract name without the run's tag (net_abstract.go), a path the guest
// bound by the guest's name of it (unixNames). Descriptors passed with
// SCM_RIGHTS (and SCM_PIDFD) are installed in the guest.
//
// A blocking receive waits in Go, on the runtime's poller (waitReadable),
// holding no thread, and receives only once data is there, with
// MSG_DONTWAIT, while the guest still waits: a guest whose call a signal
// interrupts loses no message to a receive kbox would still be blocked in.
//
// The in-process tiers run these calls natively (their guest is one
// process: the peers with tagged names are its own sockets), so the names
// there keep the tag; tagging is idempotent, so a reply still arrives.

func init() {
	register(sysRecvfrom, "recvfrom")
	register(sysRecvmsg, "recvmsg")
	register(sysAccept, "accept")
	register(sysAccept4, "accept4")
}

// recvMax bounds what kbox receives for one call (the guest's buffers may
// say more): a datagram larger than this is reported truncated.
const recvMax = 4 << 20

// receiver returns kbox's duplicate of the socket in argument 0 when
// kbox serves the call: an AF_UNIX socket in the seccomp tier, and under
// --net=user an AF_INET one (its peers' names are translated). Otherwise
// the kernel runs the call (and reports EBADF, ENOTSOCK, ... itself).
func (e *Engine) receiver(r *Request) (int, bool) {
	if r.Waiting == nil {
		// An in-process tier: the engine runs on the guest's own thread,
		// where a wait would hold off the guest's signals; the call runs
		// natively, interruptibly.
		return -1, false
	}
	s, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return -1, false
	}
	if d, err := sockDomain(s); err != nil || (d != unix.AF_UNIX && (d != unix.AF_INET || e.nat == nil)) {
		unix.Close(s)
		return -1, false
	}
	return s, true
}

// peerName is the guest's form of the address of a peer the kernel
// reported on socket s.
func (e *Engine) peerName(s int, raw []byte) []byte {
	if len(raw) < 2 {
		return raw
	}
	if e.nat != nil && binary.LittleEndian.Uint16(raw) == unix.AF_INET {
		return e.guestInetAddr(s, raw)
	}
	return e.guestUnixAddr(raw)
}

// guestUnixAddr is the guest's form of AF_UNIX address raw the kernel
// reported for a peer: the tag removed from an abstract name, a path kbox
// bound given back as the guest named it.
func (e *Engine) guestUnixAddr(raw []byte) []byte {
	if isAbstract(raw) {
		return e.abstract.guestAbstract(raw)
	}
	if len(raw) > abi.SockaddrUnPath && binary.LittleEndian.Uint16(raw) == unix.AF_UNIX {
		host := bytes.TrimRight(raw[abi.SockaddrUnPath:], "\x00")
		e.names.mu.Lock()
		g, ok := e.names.byName[string(host)]
		e.names.mu.Unlock()
		if ok {
			out := make([]byte, abi.SockaddrUnPath+len(g)+1)
			binary.LittleEndian.PutUint16(out, unix.AF_UNIX)
			copy(out[abi.SockaddrUnPath:], g)
			return out
		}
	}
	return raw
}

// errGone: the guest no longer waits for the call (a signal interrupted
// it, or it died); the answer is never seen.
var errGone = errors.New("the guest no longer waits")

// sockBlocks reports whether a receive or accept on s waits for data:
// the description is blocking and flags lack MSG_DONTWAIT.
func sockBlocks(s, flags int) bool { return sockMayBlock(s, flags) }

// rcvDeadline is the end of SO_RCVTIMEO from now (zero: none).
func rcvDeadline(s int) time.Time {
	tv, err := unix.GetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO)
	if err != nil || (tv.Sec == 0 && tv.Usec == 0) {
		return time.Time{}
	}
	return time.Now().Add(time.Duration(tv.Sec)*time.Second + time.Duration(tv.Usec)*time.Microsecond)
}

// waitCheck is how often a wait checks that the guest still waits.
const waitCheck = 100 * time.Millisecond

// waitReadable waits, in Go, until s has something to receive or accept
// (or a hang-up or error to report), until deadline (zero: none; then
// EAGAIN, as SO_RCVTIMEO), or until the guest no longer waits (errGone).
// The wait uses an epoll descriptor of its own on the runtime's poller, so
// no OS thread is held however long it lasts.
func waitReadable(r *Request, s int, deadline time.Time) error {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(s)}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, s, &ev); err != nil {
		unix.Close(ep)
		return err
	}
	if err := unix.SetNonblock(ep, true); err != nil {
		unix.Close(ep)
		return err
	}
	f := os.NewFile(uintptr(ep), "epoll")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	r.MayWait()
	for {
		if !r.StillPending() {
			return errGone
		}
		step := time.Now().Add(waitCheck)
		if !deadline.IsZero() && deadline.Before(step) {
			step = deadline
		}
		if err := f.SetReadDeadline(step); err != nil {
			return err
		}
		ready := false
		err := rc.Read(func(fd uintptr) bool {
			var evs [1]unix.EpollEvent
			n, _ := unix.EpollWait(int(fd), evs[:], 0)
			ready = n > 0
			return ready
		})
		if ready {
			return nil
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return unix.EAGAIN
		}
	}
}

// received is one message kbox received for the guest.
type received struct {
	n      int    // the call's result (with MSG_TRUNC: the datagram's length)
	data   []byte // the bytes received
	name   []byte // the sender's address as the kernel reported it
	oob    []byte // control messages as the kernel wrote them
	rflags int    // msg_flags
}

// recvUnix receives on AF_UNIX socket s into up to size bytes, as the
// guest's call with flags would: waiting (waitReadable) when the guest's
// call would wait.
func recvUnix(r *Request, s, size, oobSize int, flags int) (*received, error) {
	if size > recvMax {
		size = recvMax
	}
	blocks := sockBlocks(s, flags)
	// SO_RCVTIMEO counts from the call; read only when the call waits.
	start := time.Now()
	var deadline time.Time
	deadlineRead := false
	until := func() time.Time {
		if !deadlineRead {
			deadlineRead = true
			if d := rcvDeadline(s); !d.IsZero() {
				deadline = start.Add(time.Until(d))
			}
		}
		return deadline
	}
	m := &received{data: make([]byte, max(size, 1))[:size], name: make([]byte, sockaddrMax)}
	if oobSize > 0 {
		m.oob = make([]byte, oobSize)
	}
	for {
		var h unix.Msghdr
		var iov unix.Iovec
		if size > 0 {
			iov.Base = &m.data[0]
			iov.SetLen(size)
			h.Iov = &iov
			h.SetIovlen(1)
		}
		h.Name = &m.name[0]
		h.Namelen = uint32(len(m.name))
		if len(m.oob) > 0 {
			h.Control = &m.oob[0]
			h.SetControllen(len(m.oob))
		}
		n, _, en := unix.Syscall(unix.SYS_RECVMSG, uintptr(s), uintptr(ptrOfMsghdr(&h)), uintptr(flags|unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC))
		keepAlive(m.data, m.name, m.oob)
		if en == 0 {
			m.n = int(n)
			m.name = m.name[:min(int(h.Namelen), len(m.name))]
			m.oob = m.oob[:h.Controllen]
			m.rflags = int(h.Flags)
			if blocks && flags&(unix.MSG_WAITALL|unix.MSG_PEEK) == unix.MSG_WAITALL && int(n) > 0 && int(n) < size {
				m.n = waitAll(r, s, m.data, int(n), flags, until())
			}
			m.data = m.data[:min(m.n, size)]
			return m, nil
		}
		if en != unix.EAGAIN || !blocks {
			return nil, en
		}
		if err := waitReadable(r, s, until()); err != nil {
			return nil, err
		}
	}
}

// waitAll goes on receiving into buf after have bytes, for MSG_WAITALL
// on a stream socket, until buf is full, the peer ends the stream, an
// error, the receive timeout, or a signal (the guest then gets what has
// arrived, as natively); it returns the bytes received in all.
func waitAll(r *Request, s int, buf []byte, have, flags int, deadline time.Time) int {
	if t, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || t != unix.SOCK_STREAM {
		return have
	}
	for have < len(buf) {
		n, _, en := unix.Syscall6(unix.SYS_RECVFROM, uintptr(s), ptrOf(buf[have:]), uintptr(len(buf)-have),
			uintptr(flags&^unix.MSG_WAITALL|unix.MSG_DONTWAIT), 0, 0)
		keepAlive(buf)
		switch {
		case en == unix.EAGAIN:
			if waitReadable(r, s, deadline) != nil {
				return have
			}
		case en != 0 || n == 0:
			return have
		default:
			have += int(n)
		}
	}
	return have
}

// putName writes address name (the guest's form of it) to the guest buffer
// at addr, whose length is the int at lenAddr, as move_addr_to_user: the
// length is read first (EFAULT; negative: EINVAL), at most that many
// bytes are copied, and the full length is written back.
func (e *Engine) putName(r *Request, name []byte, addr, lenAddr uint64) error {
	var lb [4]byte
	if err := r.Mem.Read(lenAddr, lb[:]); err != nil {
		return err
	}
	want := int(int32(binary.LittleEndian.Uint32(lb[:])))
	if want < 0 {
		return unix.EINVAL
	}
	if c := min(want, len(name)); c > 0 {
		if err := r.Mem.Write(addr, name[:c]); err != nil {
			return err
		}
	}
	binary.LittleEndian.PutUint32(lb[:], uint32(len(name)))
	return r.Mem.Write(lenAddr, lb[:])
}

// recvResult answers a receive kbox gave up on.
func recvResult(err error) Result {
	if err == errGone {
		return Fail(unix.EINTR) // never seen: the guest's call is gone
	}
	return Fail(err)
}

func sysRecvfrom(e *Engine, r *Request) Result {
	s, ok := e.receiver(r)
	if !ok {
		return Cont()
	}
	defer unix.Close(s)
	m, err := recvUnix(r, s, int(min(r.Args[2], recvMax)), 0, r.Int(3))
	if err != nil {
		return recvResult(err)
	}
	if len(m.data) > 0 {
		if err := r.Mem.Write(r.Ptr(1), m.data); err != nil {
			return Fail(err)
		}
	}
	if r.Ptr(4) != 0 {
		if err := e.putName(r, e.peerName(s, m.name), r.Ptr(4), r.Ptr(5)); err != nil {
			return Fail(err)
		}
	}
	return Ok(int64(m.n))
}

func sysRecvmsg(e *Engine, r *Request) Result {
	s, ok := e.receiver(r)
	if !ok {
		return Cont()
	}
	defer unix.Close(s)
	flags := r.Int(2)
	var hb [abi.SizeofMsghdr]byte
	if err := r.Mem.Read(r.Ptr(1), hb[:]); err != nil {
		return Fail(err)
	}
	mh := abi.DecodeMsghdr(hb[:])
	if mh.Iovlen > iovMax {
		return Fail(unix.EMSGSIZE)
	}
	le := binary.LittleEndian
	type seg struct{ base, n uint64 }
	var segs []seg
	total := uint64(0)
	if mh.Iovlen > 0 {
		vec := make([]byte, 16*mh.Iovlen)
		if err := r.Mem.Read(mh.Iov, vec); err != nil {
			return Fail(err)
		}
		for i := uint64(0); i < mh.Iovlen; i++ {
			base, n := le.Uint64(vec[16*i:]), le.Uint64(vec[16*i+8:])
			if int64(n) < 0 {
				return Fail(unix.EINVAL)
			}
			segs = append(segs, seg{base, n})
			total += n
		}
	}
	oobSize := 0
	if mh.Control != 0 {
		oobSize = int(min(mh.Controllen, controlMax))
	}
	m, err := recvUnix(r, s, int(min(total, recvMax)), oobSize, flags&^unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return recvResult(err)
	}
	data := m.data
	for _, sg := range segs {
		if len(data) == 0 {
			break
		}
		c := min(uint64(len(data)), sg.n)
		if c > 0 {
			if err := r.Mem.Write(sg.base, data[:c]); err != nil {
				return Fail(err)
			}
		}
		data = data[c:]
	}
	if mh.Name != 0 {
		if err := e.putName(r, e.peerName(s, m.name), mh.Name, r.Ptr(1)+8); err != nil {
			return Fail(err)
		}
	}
	rflags := m.rflags
	if len(m.oob) > 0 {
		if installPassed(r, m.oob, flags&unix.MSG_CMSG_CLOEXEC != 0) {
			rflags |= unix.MSG_CTRUNC
		}
		if err := r.Mem.Write(mh.Control, m.oob); err != nil {
			return Fail(err)
		}
	}
	var b [8]byte
	le.PutUint64(b[:], uint64(len(m.oob)))
	if err := r.Mem.Write(r.Ptr(1)+40, b[:]); err != nil {
		return Fail(err)
	}
	le.PutUint32(b[:4], uint32(rflags))
	if err := r.Mem.Write(r.Ptr(1)+abi.MsghdrFlags, b[:4]); err != nil {
		return Fail(err)
	}
	return Ok(int64(m.n))
}

// scmPidfd is SCM_PIDFD (Linux 6.5): a pidfd of the sender.
const scmPidfd = 0x04

// installPassed installs the descriptors the kernel passed to kbox in
// control messages oob (SCM_RIGHTS, SCM_PIDFD) in the guest and writes
// the guest's numbers in their place, closing kbox's. A descriptor the
// guest cannot take (EMFILE) is closed, the message shortened to the
// ones installed, and true returned (MSG_CTRUNC, as scm_detach_fds).
func installPassed(r *Request, oob []byte, cloexec bool) (truncated bool) {
	le := binary.LittleEndian
	for off := 0; off+abi.SizeofCmsghdr <= len(oob); {
		ch := abi.DecodeCmsghdr(oob[off:])
		if ch.Len < abi.SizeofCmsghdr || !within(uint64(off), ch.Len, uint64(len(oob))) {
			break
		}
		clen := int(ch.Len)
		if ch.Level == unix.SOL_SOCKET && (ch.Type == scmRightsType || ch.Type == scmPidfd) {
			installed := 0
			failed := false
			for p := off + abi.SizeofCmsghdr; p+4 <= off+clen; p += 4 {
				fd := int(int32(le.Uint32(oob[p:])))
				if failed {
					unix.Close(fd)
					continue
				}
				g, err := r.FDs.InjectFD(fd, cloexec, -1)
				unix.Close(fd)
				if err != nil {
					failed = true
					continue
				}
				le.PutUint32(oob[p:], uint32(g))
				installed++
			}
			if failed {
				truncated = true
				le.PutUint64(oob[off:], uint64(abi.SizeofCmsghdr+4*installed))
			}
		}
		off += (clen + 7) &^ 7
	}
	return truncated
}

func sysAccept(e *Engine, r *Request) Result  { return e.acceptCall(r, 0) }
func sysAccept4(e *Engine, r *Request) Result { return e.acceptCall(r, r.Int(3)) }

// acceptCall serves accept and accept4 with an address buffer on an
// AF_UNIX listener: kbox accepts on its duplicate, writes the guest's
// form of the peer's address, and installs the new socket.
func (e *Engine) acceptCall(r *Request, flags int) Result {
	if flags&^(unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK) != 0 {
		return Cont() // the kernel's EINVAL, before anything else
	}
	s, ok := e.receiver(r)
	if !ok {
		return Cont()
	}
	defer unix.Close(s)
	if v, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err == nil && v != 0 && sockBlocks(s, 0) {
		if err := waitReadable(r, s, rcvDeadline(s)); err != nil {
			return recvResult(err)
		}
		// Another process may take the connection first: the accept
		// then waits in the host kernel, in a slot.
		if err := r.MayBlock(); err != nil {
			return Fail(err)
		}
	}
	buf := make([]byte, sockaddrMax)
	n := uint32(len(buf))
	ns, _, en := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(s), ptrOf(buf), uintptr(ptrOfU32(&n)),
		uintptr(unix.SOCK_CLOEXEC|flags&unix.SOCK_NONBLOCK), 0, 0)
	keepAlive(buf)
	if en != 0 {
		return Fail(en)
	}
	if err := e.putName(r, e.peerName(s, buf[:min(int(n), len(buf))]), r.Ptr(1), r.Ptr(2)); err != nil {
		unix.Close(int(ns))
		return Fail(err)
	}
	return InjectFD(int(ns), flags&unix.SOCK_CLOEXEC != 0)
}
