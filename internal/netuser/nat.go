package netuser

import (
	"fmt"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"
)

// Proto is a socket's transport as the NAT keys it: unix.SOCK_STREAM or
// unix.SOCK_DGRAM (raw and ICMP sockets are keyed as datagrams).
type Proto int

// NAT is one run's address plan: which guest destinations reach what,
// and which host addresses the guest is told about. The guest's
// listeners are real host sockets bound to 127.0.0.1 on ports the kernel
// chose (or the --publish ones); the NAT remembers which guest port each
// is, and forgets a socket once the kernel no longer has it (Alive).
type NAT struct {
	cfg Config
	// Alive reports whether the host socket with inode ino is still bound
	// to local port port (the guest closed it otherwise, and the port may
	// now be another host process's). Set before use.
	Alive func(p Proto, host netip.AddrPort, ino uint64) Liveness
	// Logf, when set, reports a forgotten guest port (-v).
	Logf func(format string, args ...any)

	mu      sync.Mutex
	byGuest map[portKey]*binding // (proto, guest port)
	byHost  map[portKey]*binding // (proto, host port)
	conns   map[uint64]conn      // socket inode -> what the guest connected to
	order   []uint64             // conns in insertion order, to bound it
}

type portKey struct {
	p    Proto
	port uint16
}

// binding is a guest socket with a port of its own: one the guest bound,
// or a client the kernel gave an ephemeral port that talks to the guest's
// own loopback.
type binding struct {
	ino   uint64
	guest netip.AddrPort // as the guest bound it
	host  netip.AddrPort // as the kernel bound it
	// missed: Alive did not find it once (reported once under -v).
	missed bool
}

// conn is what a guest socket connected to.
type conn struct {
	peer  netip.AddrPort // the guest's destination
	local netip.Addr     // the guest's local address for it
}

// connsMax bounds the connection records (a socket closed without kbox
// seeing it leaves its record; the oldest are forgotten first, and a
// forgotten record only makes getpeername answer from the host's view).
const connsMax = 1 << 16

// NewNAT makes a NAT for cfg.
func NewNAT(cfg Config) *NAT {
	return &NAT{cfg: cfg, byGuest: map[portKey]*binding{}, byHost: map[portKey]*binding{}, conns: map[uint64]conn{}}
}

// Config returns the NAT's configuration.
func (n *NAT) Config() Config { return n.cfg }

// Refusal is an outbound destination the allow-list refuses (EACCES).
type Refusal struct{ Dst netip.AddrPort }

func (r *Refusal) Error() string {
	return fmt.Sprintf("--net=user: %s is not in --allow-net", r.Dst)
}

// isLocal reports whether dst is the guest itself: its loopback, the
// unspecified address (which connect takes as the local host) or its
// address.
func isLocal(a netip.Addr) bool {
	return a.IsLoopback() || a.IsUnspecified() || a == GuestAddr
}

// Liveness is what the kernel says of a guest socket's host port.
type Liveness int

const (
	// Gone: nothing holds the port; the guest closed the socket.
	Gone Liveness = iota
	// Found: the socket (by inode) holds the port.
	Found
	// Held: something holds the port but the socket was not seen: a TCP
	// socket bound and not yet listening (the kernel's tables list
	// listeners and connections only), a socket the table read missed
	// while others came and went, or another socket that took the port.
	Held
)

// lookupLocked returns the binding of guest port k and what the kernel
// says of it. A binding not Found is never used to reach its host port
// (it might be another's now); it is forgotten only when Gone.
func (n *NAT) lookupLocked(k portKey) (*binding, Liveness) {
	b := n.byGuest[k]
	if b == nil {
		return nil, Gone
	}
	if n.Alive == nil {
		return b, Found
	}
	l := n.Alive(k.p, b.host, b.ino)
	switch l {
	case Gone:
		n.dropLocked(k.p, b)
	case Held:
		if n.Logf != nil && !b.missed {
			b.missed = true
			n.Logf("--net=user: guest port %d: its socket (host %s) is not listening or was not found", k.port, b.host)
		}
	}
	return b, l
}

// live returns the binding of guest port k when its socket was Found.
func (n *NAT) live(k portKey) *binding {
	if b, l := n.lookupLocked(k); l == Found {
		return b
	}
	return nil
}

// inUse returns the binding of guest port k unless it is Gone.
func (n *NAT) inUse(k portKey) *binding {
	if b, l := n.lookupLocked(k); l != Gone {
		return b
	}
	return nil
}

func (n *NAT) dropLocked(p Proto, b *binding) {
	if n.byGuest[portKey{p, b.guest.Port()}] == b {
		delete(n.byGuest, portKey{p, b.guest.Port()})
	}
	if n.byHost[portKey{p, b.host.Port()}] == b {
		delete(n.byHost, portKey{p, b.host.Port()})
	}
}

// Outbound translates the guest destination dst of a connect or send on
// a socket of transport p: the host address to use and the guest's local
// address for it, or an error: a *Refusal (EACCES) for a destination
// --allow-net does not name, ECONNREFUSED for a guest port nothing
// listens on (and for the DNS forwarder without an upstream).
func (n *NAT) Outbound(p Proto, dst netip.AddrPort) (host netip.AddrPort, local netip.Addr, err error) {
	a := dst.Addr()
	switch {
	case isLocal(a):
		local = Loopback
		if a == GuestAddr {
			local = GuestAddr
		}
		n.mu.Lock()
		b := n.live(portKey{p, dst.Port()})
		n.mu.Unlock()
		if b == nil {
			return host, local, unix.ECONNREFUSED
		}
		h := b.host.Addr()
		if h.IsUnspecified() {
			h = Loopback
		}
		return netip.AddrPortFrom(h, b.host.Port()), local, nil
	case a == DNSAddr:
		if dst.Port() != 53 || !n.cfg.DNS.IsValid() {
			return host, GuestAddr, unix.ECONNREFUSED
		}
		return n.cfg.DNS, GuestAddr, nil
	}
	if !n.allowed(dst) {
		return host, GuestAddr, &Refusal{Dst: dst}
	}
	if a == Gateway {
		return netip.AddrPortFrom(Loopback, dst.Port()), GuestAddr, nil
	}
	return dst, GuestAddr, nil
}

func (n *NAT) allowed(dst netip.AddrPort) bool {
	for _, r := range n.cfg.Allow {
		if r.Allows(dst) {
			return true
		}
	}
	return false
}

// BindPlan is how a guest bind is done on the host.
type BindPlan struct {
	Host netip.AddrPort // what to bind the host socket to (port 0: the kernel chooses)
}

// Bind plans the guest's bind of guest (on socket inode ino, transport
// p): EADDRNOTAVAIL for an address that is not the guest's, EADDRINUSE
// for a guest port a live socket has. Register records the outcome.
func (n *NAT) Bind(p Proto, guest netip.AddrPort, ino uint64) (BindPlan, error) {
	a := guest.Addr()
	if !isLocal(a) || (a.IsLoopback() && !a.Is4()) {
		return BindPlan{}, unix.EADDRNOTAVAIL
	}
	if guest.Port() == 0 {
		if p == unix.SOCK_DGRAM && a.IsUnspecified() {
			// A datagram client: it may send to any allowed address, so
			// it is bound as the kernel would bind it on its first send.
			return BindPlan{Host: netip.AddrPortFrom(netip.IPv4Unspecified(), 0)}, nil
		}
		return BindPlan{Host: netip.AddrPortFrom(Loopback, 0)}, nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if b := n.inUse(portKey{p, guest.Port()}); b != nil {
		if b.ino == ino {
			return BindPlan{}, unix.EINVAL // bound already
		}
		return BindPlan{}, unix.EADDRINUSE
	}
	for _, pub := range n.cfg.Publish {
		if pub.GuestPort == guest.Port() {
			return BindPlan{Host: netip.AddrPortFrom(pub.HostIP, pub.HostPort)}, nil
		}
	}
	return BindPlan{Host: netip.AddrPortFrom(Loopback, 0)}, nil
}

// Register records that the guest's socket ino (transport p) has guest
// name guest and host name host (as the kernel reports it after the
// bind). A guest port 0 takes the host's port: the guest is shown the
// port the kernel chose.
func (n *NAT) Register(p Proto, guest, host netip.AddrPort, ino uint64) netip.AddrPort {
	if guest.Port() == 0 {
		guest = netip.AddrPortFrom(guest.Addr(), host.Port())
	}
	b := &binding{ino: ino, guest: guest, host: host}
	n.mu.Lock()
	if old := n.byGuest[portKey{p, guest.Port()}]; old != nil {
		n.dropLocked(p, old)
	}
	if old := n.byHost[portKey{p, host.Port()}]; old != nil {
		n.dropLocked(p, old)
	}
	n.byGuest[portKey{p, guest.Port()}] = b
	n.byHost[portKey{p, host.Port()}] = b
	n.mu.Unlock()
	return guest
}

// Connected records what the guest's socket ino (transport p, local
// host address hostLocal) connected to: dst, from guest address local.
func (n *NAT) Connected(p Proto, ino uint64, dst netip.AddrPort, local netip.Addr, hostLocal netip.AddrPort) {
	n.mu.Lock()
	if _, ok := n.conns[ino]; !ok {
		n.order = append(n.order, ino)
		if len(n.order) > connsMax {
			delete(n.conns, n.order[0])
			n.order = n.order[1:]
		}
	}
	n.conns[ino] = conn{peer: dst, local: local}
	n.mu.Unlock()
	if isLocal(dst.Addr()) {
		n.Sent(p, ino, local, hostLocal)
	}
}

// Sent records that the guest's socket ino (transport p, local host
// address hostLocal) talks to the guest's own loopback as local: it is
// registered under its host port, so that its peers' replies find it and
// their names for it are the guest's.
func (n *NAT) Sent(p Proto, ino uint64, local netip.Addr, hostLocal netip.AddrPort) {
	if hostLocal.Port() == 0 {
		return
	}
	k := portKey{p, hostLocal.Port()}
	n.mu.Lock()
	defer n.mu.Unlock()
	if b := n.byHost[k]; b != nil && b.ino == ino {
		return // registered already (a bound socket, an earlier send)
	}
	if b := n.inUse(k); b != nil && b.ino != ino {
		return // the guest port is another socket's
	}
	b := &binding{ino: ino, guest: netip.AddrPortFrom(local, hostLocal.Port()), host: hostLocal}
	if old := n.byHost[k]; old != nil {
		n.dropLocked(p, old)
	}
	n.byGuest[k] = b
	n.byHost[k] = b
}

// PeerOf is the guest's name for the peer h of its connected socket ino:
// the destination it connected to when kbox saw the connect, else
// GuestPeer.
func (n *NAT) PeerOf(p Proto, h netip.AddrPort, ino uint64) netip.AddrPort {
	n.mu.Lock()
	c, ok := n.conns[ino]
	n.mu.Unlock()
	if ok && c.peer.IsValid() {
		return c.peer
	}
	return n.GuestPeer(p, h)
}

// GuestPeer is the guest's name for host address h that a socket of
// transport p received from or was reached by: the upstream DNS server
// is 10.0.2.3:53; a guest socket's host port is its guest port on the
// guest's loopback; another host loopback address is the gateway's.
func (n *NAT) GuestPeer(p Proto, h netip.AddrPort) netip.AddrPort {
	if n.cfg.DNS.IsValid() && h == n.cfg.DNS {
		return netip.AddrPortFrom(DNSAddr, 53)
	}
	a := h.Addr()
	if !a.IsLoopback() {
		return h
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if b := n.byHost[portKey{p, h.Port()}]; b != nil {
		ga := b.guest.Addr()
		if ga.IsUnspecified() {
			ga = Loopback
		}
		return netip.AddrPortFrom(ga, b.guest.Port())
	}
	return netip.AddrPortFrom(Gateway, h.Port())
}

// GuestLocal is the guest's name for host address h, the local address
// of its socket ino (transport p); peer is the host address of the
// socket's peer when it has one (an accepted connection: whether it came
// from the guest's loopback decides its local address).
func (n *NAT) GuestLocal(p Proto, h netip.AddrPort, ino uint64, peer netip.AddrPort) netip.AddrPort {
	n.mu.Lock()
	defer n.mu.Unlock()
	b := n.byHost[portKey{p, h.Port()}]
	if b != nil && b.ino == ino {
		return b.guest
	}
	if b != nil && b.host.Addr() == h.Addr() || b != nil && b.host.Addr().IsUnspecified() {
		// A connection accepted on a guest listener.
		ga := b.guest.Addr()
		if ga.IsUnspecified() {
			ga = GuestAddr
			if peer.IsValid() && peer.Addr().IsLoopback() && n.byHost[portKey{p, peer.Port()}] != nil {
				ga = Loopback // the client is the guest's own
			}
		}
		return netip.AddrPortFrom(ga, b.guest.Port())
	}
	if h.Addr().IsUnspecified() {
		return h
	}
	if c, ok := n.conns[ino]; ok && c.local.IsValid() {
		return netip.AddrPortFrom(c.local, h.Port())
	}
	return netip.AddrPortFrom(GuestAddr, h.Port())
}
