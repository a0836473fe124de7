package dispatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/netuser"
)

// --net=user in the seccomp tier: a socket-level NAT on real kernel
// sockets (docs/network.md). The guest's AF_INET sockets are host
// sockets; every call that names an address (bind, connect, sendto,
// sendmsg, sendmmsg) is already served by kbox on its duplicate of the
// socket, so kbox hands the kernel the translated address
// (netuser.NAT.Outbound, Bind), and every call that reports one
// (getsockname, getpeername, accept, recvfrom, recvmsg) gives the guest
// its own view (GuestLocal, GuestPeer). Data calls (read, write, recv
// and send without an address, poll, shutdown, options) stay the
// kernel's, at native speed.

func init() { register(sysListen, "listen") }

// sysListen serves listen under --net=user (the only mode whose filter
// notifies it): an unbound AF_INET stream socket would be bound by the
// kernel to a port on every host address, reachable from outside, so
// kbox binds it first as a guest bind of 0.0.0.0:0 (the host's 127.0.0.1
// on a port the kernel chooses, which the guest is shown).
func sysListen(e *Engine, r *Request) Result {
	s, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(s)
	if e.inetSock(s) && sockProto(s) == unix.SOCK_STREAM {
		if hl, ok := inetName(s, false); ok && hl.Port() == 0 {
			if res := e.userBind(r, s, encodeInet(netip.AddrPortFrom(netip.IPv4Unspecified(), 0))); res.Kind == Errno {
				return res
			}
		}
	}
	return errOf(unix.Listen(s, r.Int(1)))
}

// sockaddrInLen is sizeof(struct sockaddr_in).
const sockaddrInLen = 16

// inetSock reports whether the NAT applies to host socket s: --net=user
// and an AF_INET socket.
func (e *Engine) inetSock(s int) bool {
	if e.nat == nil {
		return false
	}
	d, err := sockDomain(s)
	return err == nil && d == unix.AF_INET
}

// sockProto is socket s's transport as the NAT keys it.
func sockProto(s int) netuser.Proto {
	if t, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_TYPE); err == nil && t == unix.SOCK_STREAM {
		return unix.SOCK_STREAM
	}
	return unix.SOCK_DGRAM
}

// decodeInet reads a sockaddr_in (the family is the caller's to check).
func decodeInet(raw []byte) netip.AddrPort {
	var a [4]byte
	copy(a[:], raw[4:8])
	return netip.AddrPortFrom(netip.AddrFrom4(a), binary.BigEndian.Uint16(raw[2:4]))
}

// encodeInet builds a sockaddr_in for ap.
func encodeInet(ap netip.AddrPort) []byte {
	raw := make([]byte, sockaddrInLen)
	binary.LittleEndian.PutUint16(raw, unix.AF_INET)
	binary.BigEndian.PutUint16(raw[2:], ap.Port())
	a := ap.Addr().As4()
	copy(raw[4:], a[:])
	return raw
}

// inetName is the local (peer=false) or peer address of host socket s.
func inetName(s int, peer bool) (netip.AddrPort, bool) {
	buf, en := rawSockName(s, peer)
	if en != 0 || len(buf) < sockaddrInLen || binary.LittleEndian.Uint16(buf) != unix.AF_INET {
		return netip.AddrPort{}, false
	}
	return decodeInet(buf), true
}

// netRefuse answers a destination the NAT refused: EACCES for one
// --allow-net does not name (named and counted under -v), the NAT's
// errno otherwise.
func (e *Engine) netRefuse(r *Request, err error) Result {
	var ref *netuser.Refusal
	if errors.As(err, &ref) {
		return e.denied(r, unix.EACCES, ref.Error())
	}
	return Fail(err)
}

// userDest translates the destination raw of a send on AF_INET socket s:
// the kernel's checks first (a short address is EINVAL; a family other
// than AF_INET, or AF_UNSPEC which udp_sendmsg takes as AF_INET, is
// EAFNOSUPPORT).
func (e *Engine) userDest(s int, raw []byte) (*sockAddr, error) {
	if len(raw) < sockaddrInLen {
		return nil, unix.EINVAL
	}
	if f := binary.LittleEndian.Uint16(raw); f != unix.AF_INET && f != unix.AF_UNSPEC {
		return nil, unix.EAFNOSUPPORT
	}
	dst := decodeInet(raw)
	host, local, err := e.nat.Outbound(sockProto(s), dst)
	if err != nil {
		return nil, err
	}
	return &sockAddr{raw: encodeInet(host), dirfd: -1, inet: &inetDst{guest: dst, local: local}}, nil
}

// inetDst is a translated AF_INET destination.
type inetDst struct {
	guest netip.AddrPort
	local netip.Addr
}

// userSent records a send on s to a: a socket that talks to the guest's
// own loopback is registered under its port, so replies find it.
func (e *Engine) userSent(s int, a *sockAddr) {
	if a == nil || a.inet == nil || !a.inet.local.IsLoopback() {
		return
	}
	if hl, ok := inetName(s, false); ok {
		e.nat.Sent(sockProto(s), sockIno(s), a.inet.local, hl)
	}
}

// userConnect serves connect on AF_INET socket s with guest address raw.
func (e *Engine) userConnect(r *Request, s int, raw []byte) Result {
	if len(raw) < 2 {
		return Fail(unix.EINVAL)
	}
	if binary.LittleEndian.Uint16(raw) == unix.AF_UNSPEC {
		// Dissolves the association: no address is read.
		return errOf(rawAddrCall(unix.SYS_CONNECT, s, &sockAddr{raw: raw}))
	}
	if len(raw) < sockaddrInLen {
		return Fail(unix.EINVAL)
	}
	if binary.LittleEndian.Uint16(raw) != unix.AF_INET {
		return Fail(unix.EAFNOSUPPORT)
	}
	dst := decodeInet(raw)
	p := sockProto(s)
	host, local, err := e.nat.Outbound(p, dst)
	if err != nil {
		return e.netRefuse(r, err)
	}
	if sockMayBlock(s, 0) {
		if err := r.MayBlock(); err != nil {
			return Fail(err)
		}
	}
	err = rawAddrCall(unix.SYS_CONNECT, s, &sockAddr{raw: encodeInet(host)})
	if err == nil || err == unix.EINPROGRESS || err == unix.EALREADY {
		hl, _ := inetName(s, false)
		e.nat.Connected(p, sockIno(s), dst, local, hl)
	}
	return errOf(err)
}

// userBind serves bind on AF_INET socket s: the guest's port becomes a
// host port on 127.0.0.1 the kernel chooses (or --publish's), which the
// NAT remembers.
func (e *Engine) userBind(r *Request, s int, raw []byte) Result {
	if len(raw) < sockaddrInLen {
		return Fail(unix.EINVAL)
	}
	guest := decodeInet(raw)
	switch binary.LittleEndian.Uint16(raw) {
	case unix.AF_INET:
	case unix.AF_UNSPEC:
		// __inet_bind takes AF_UNSPEC for INADDR_ANY only.
		if !guest.Addr().IsUnspecified() {
			return Fail(unix.EAFNOSUPPORT)
		}
	default:
		return Fail(unix.EAFNOSUPPORT)
	}
	p := sockProto(s)
	ino := sockIno(s)
	if hl, ok := inetName(s, false); ok && hl.Port() != 0 {
		return Fail(unix.EINVAL) // bound already (__inet_bind)
	}
	plan, err := e.nat.Bind(p, guest, ino)
	if err != nil {
		e.Verbosef("pid %d: bind of guest %s: %v (--net=user)", r.Tgid, guest, err)
		return Fail(err)
	}
	if err := rawAddrCall(unix.SYS_BIND, s, &sockAddr{raw: encodeInet(plan.Host)}); err != nil {
		if plan.Host.Port() != 0 {
			e.Verbosef("pid %d: bind of guest port %d to host %s (--publish) failed: %v", r.Tgid, guest.Port(), plan.Host, err)
		}
		return Fail(err)
	}
	hl, ok := inetName(s, false)
	if !ok {
		return Fail(unix.EINVAL)
	}
	e.nat.Register(p, guest, hl, ino)
	return Ok(0)
}

// userName is the guest's form of host AF_INET address raw that socket s
// reports: its own name (peer=false) or its peer's.
func (e *Engine) userName(s int, raw []byte, peer bool) []byte {
	if len(raw) < sockaddrInLen || binary.LittleEndian.Uint16(raw) != unix.AF_INET {
		return raw
	}
	h := decodeInet(raw)
	p := sockProto(s)
	ino := sockIno(s)
	var g netip.AddrPort
	if peer {
		g = e.nat.PeerOf(p, h, ino)
	} else {
		pa, _ := inetName(s, true)
		g = e.nat.GuestLocal(p, h, ino, pa)
	}
	out := encodeInet(g)
	copy(out[sockaddrInLen:], raw[sockaddrInLen:])
	return out
}

// guestInetAddr is the guest's form of the address of a sender or peer
// the kernel reported on socket s.
func (e *Engine) guestInetAddr(s int, raw []byte) []byte {
	if len(raw) < sockaddrInLen || binary.LittleEndian.Uint16(raw) != unix.AF_INET {
		return raw
	}
	return encodeInet(e.nat.GuestPeer(sockProto(s), decodeInet(raw)))
}

// inetAlive says whether the host socket with inode ino (transport p)
// still holds host address host: a listener is asked for by address
// (sock_diag, one exact answer); otherwise the kernel's table
// (/proc/net/tcp or udp of kbox's network namespace, the guest's) is
// searched, twice (it is read in pages the kernel resumes by position,
// so a socket can be missed while others come and go). Not found, a
// probe bind of the address tells Gone (it binds: nothing holds the
// port) from Held (a TCP socket bound and not listening, which no table
// lists, a missed socket, or another that took the port).
func inetAlive(p netuser.Proto, host netip.AddrPort, ino uint64) netuser.Liveness {
	name := "/proc/self/net/tcp"
	if p != unix.SOCK_STREAM {
		name = "/proc/self/net/udp"
	}
	a := host.Addr()
	if a.IsUnspecified() {
		a = netuser.Loopback
	}
	if got, ok := diagLookup(p, netip.AddrPortFrom(a, host.Port())); ok && got == ino {
		return netuser.Found
	}
	for range 2 {
		if found, ok := inetTableHas(name, host.Port(), ino); ok && found {
			return netuser.Found
		}
	}
	return probeBind(p, host)
}

// probeBind binds a socket of transport p to host (without SO_REUSEADDR)
// and closes it: Gone when it binds, Held otherwise.
func probeBind(p netuser.Proto, host netip.AddrPort) netuser.Liveness {
	s, err := unix.Socket(unix.AF_INET, int(p)|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return netuser.Held
	}
	defer unix.Close(s)
	if rawAddrCall(unix.SYS_BIND, s, &sockAddr{raw: encodeInet(host)}) != nil {
		return netuser.Held
	}
	return netuser.Gone
}

// diagLookup asks the kernel (sock_diag, an exact lookup: no table
// walk) for the inode of the socket of transport p that a connection or
// datagram to local address a would reach: a TCP listener, an
// unconnected UDP socket; ok=false when none does or the kernel does not
// say.
func diagLookup(p netuser.Proto, a netip.AddrPort) (ino uint64, ok bool) {
	const (
		inetDiagReqLen = 56 // struct inet_diag_req_v2
		inetDiagMsgLen = 72 // struct inet_diag_msg
		tcpListen      = 10
	)
	le := binary.LittleEndian
	msg, ok := sockDiag(unix.AF_INET, inetDiagReqLen, inetDiagMsgLen, func(d []byte) {
		// struct inet_diag_sockid: for TCP the socket's own port and
		// address are "src" and the peer's, zero, "dst"; udp_dump_one
		// swaps them ("for historical reasons"). No interface, no cookie.
		ip := a.Addr().As4()
		if p == unix.SOCK_STREAM {
			d[1] = unix.IPPROTO_TCP
			le.PutUint32(d[4:], 1<<tcpListen)
			binary.BigEndian.PutUint16(d[8:], a.Port())
			copy(d[12:], ip[:])
		} else {
			d[1] = unix.IPPROTO_UDP
			le.PutUint32(d[4:], ^uint32(0))
			binary.BigEndian.PutUint16(d[10:], a.Port())
			copy(d[28:], ip[:])
		}
		le.PutUint32(d[48:], ^uint32(0))
		le.PutUint32(d[52:], ^uint32(0))
	})
	if !ok {
		return 0, false
	}
	m := msg[nlmsgHdrLen:]
	if (p == unix.SOCK_STREAM && m[1] != tcpListen) || binary.BigEndian.Uint16(m[4:]) != a.Port() {
		return 0, false
	}
	return uint64(le.Uint32(m[68:])), true
}

// inetTableBuf is the first read's size: a table of about 7000 sockets.
const inetTableBuf = 1 << 20

// inetTableBufs are the table reads' buffers (a send to the guest's own
// loopback checks its destination each time).
var inetTableBufs = sync.Pool{New: func() any { b := make([]byte, inetTableBuf); return &b }}

// inetTableHas looks for the socket in table name; ok=false when the
// table could not be read.
func inetTableHas(name string, port uint16, ino uint64) (found, ok bool) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, false
	}
	defer unix.Close(fd)
	bp := inetTableBufs.Get().(*[]byte)
	defer inetTableBufs.Put(bp)
	buf := *bp
	defer func() { *bp = buf }()
	n := 0
	for {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, false
		}
		if m == 0 {
			break
		}
		n += m
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
	}
	portHex := []byte(fmt.Sprintf(":%04X", port))
	inoStr := []byte(strconv.FormatUint(ino, 10))
	for line := range bytes.SplitSeq(buf[:n], []byte{'\n'}) {
		fields := bytes.Fields(line)
		if len(fields) >= 10 && bytes.HasSuffix(fields[1], portHex) && bytes.Equal(fields[9], inoStr) {
			return true, true
		}
	}
	return false, true
}
