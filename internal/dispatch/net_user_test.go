package dispatch

import (
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/netuser"
)

// withNetUser runs the engine under --net=user with cfg.
func withNetUser(cfg netuser.Config) harnessOpt {
	return func(c *harnessConfig) { c.netUser = &cfg }
}

func newInet(t *testing.T, typ int) int {
	t.Helper()
	s, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(s) })
	return s
}

// hostInet is socket s's name as the kernel reports it.
func hostInet(t *testing.T, s int, peer bool) netip.AddrPort {
	t.Helper()
	a, ok := inetName(s, peer)
	if !ok {
		t.Fatalf("no AF_INET name for %d (peer %v)", s, peer)
	}
	return a
}

// guestInet is socket s's name as the engine reports it to the guest.
func (h *harness) guestInet(call string, s int) (netip.AddrPort, Result) {
	b, _, res := h.guestName(call, s, 16)
	if res.Kind != Value {
		return netip.AddrPort{}, res
	}
	return decodeInet(b), res
}

func (h *harness) inetCall(name string, s int, ap string, length int) Result {
	raw := encodeInet(netip.MustParseAddrPort(ap))
	return h.call(name, uint64(s), h.bytes(raw), uint64(length))
}

// TestNetUserCalls: under --net=user bind, connect, sendto and the name
// calls translate addresses on the guest's real sockets: a guest port is
// a host port on 127.0.0.1 the kernel chose, the guest's loopback
// reaches only its own listeners, the DNS forwarder reaches --dns,
// anything else is EACCES with a -v line, and the kernel's own errors
// come first.
func TestNetUserCalls(t *testing.T) {
	dns := newInet(t, unix.SOCK_DGRAM)
	if err := unix.Bind(dns, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	dnsAddr := hostInet(t, dns, false)
	h := newHarness(t, withNetUser(netuser.Config{DNS: dnsAddr}))

	l := newInet(t, unix.SOCK_STREAM)
	if res := h.inetCall("bind", l, "0.0.0.0:80", 16); !same(res, Ok(0)) {
		t.Fatalf("bind 0.0.0.0:80: %s", resultString(res))
	}
	hostL := hostInet(t, l, false)
	if hostL.Addr() != netuser.Loopback || hostL.Port() == 80 || hostL.Port() == 0 {
		t.Errorf("the guest's port 80 is bound on the host at %v", hostL)
	}
	if g, _ := h.guestInet("getsockname", l); g.String() != "0.0.0.0:80" {
		t.Errorf("getsockname of the listener: %v", g)
	}
	if err := unix.Listen(l, 4); err != nil {
		t.Fatal(err)
	}
	c := newInet(t, unix.SOCK_STREAM)
	if res := h.inetCall("connect", c, "127.0.0.1:80", 16); !same(res, Ok(0)) {
		t.Fatalf("connect 127.0.0.1:80: %s", resultString(res))
	}
	if p := hostInet(t, c, true); p != hostL {
		t.Errorf("the client reached %v, want the listener's %v", p, hostL)
	}
	if g, _ := h.guestInet("getpeername", c); g.String() != "127.0.0.1:80" {
		t.Errorf("getpeername of the client: %v", g)
	}
	if g, _ := h.guestInet("getsockname", c); g.Addr() != netuser.Loopback || g.Port() != hostInet(t, c, false).Port() {
		t.Errorf("getsockname of the client: %v", g)
	}
	// The accepted connection, served: its peer is the guest's client.
	var pending atomic.Bool
	pending.Store(true)
	name, namelen := h.alloc(16), h.u32(16)
	res := h.e.Dispatch(h.waitingReq(&pending, "accept4", uint64(l), name, namelen, 0))
	if res.Kind != Inject {
		t.Fatalf("accept4: %s", resultString(res))
	}
	unix.Close(res.FD)
	if g := decodeInet(h.read(name, 16)); g.Addr() != netuser.Loopback || g.Port() != hostInet(t, c, false).Port() {
		t.Errorf("accept4's peer: %v", g)
	}

	for _, tc := range []struct {
		call, addr string
		length     int
		want       unix.Errno
	}{
		{"connect", "127.0.0.1:81", 16, unix.ECONNREFUSED},                    // no guest listener
		{"connect", "10.0.2.15:" + itoa(hostL.Port()), 16, unix.ECONNREFUSED}, // a host port is no guest port
		{"connect", "192.0.2.1:80", 16, unix.EACCES},
		{"connect", "10.0.2.2:22", 16, unix.EACCES},
		{"connect", "192.0.2.1:80", 8, unix.EINVAL},
		{"bind", "192.0.2.1:80", 16, unix.EADDRNOTAVAIL},
		{"bind", "127.0.0.1:80", 16, unix.EADDRINUSE},
	} {
		s := newInet(t, unix.SOCK_STREAM)
		if res := h.inetCall(tc.call, s, tc.addr, tc.length); !same(res, Fail(tc.want)) {
			t.Errorf("%s %s (len %d): %s, want %s", tc.call, tc.addr, tc.length, resultString(res), unix.ErrnoName(tc.want))
		}
	}
	// Another family on an AF_INET socket: the kernel's answer.
	s := newInet(t, unix.SOCK_STREAM)
	raw := encodeInet(netip.MustParseAddrPort("127.0.0.1:80"))
	raw[0] = unix.AF_INET6
	if res := h.call("connect", uint64(s), h.bytes(raw), 16); !same(res, Fail(unix.EAFNOSUPPORT)) {
		t.Errorf("connect with AF_INET6 on an AF_INET socket: %s", resultString(res))
	}
	if !strings.Contains(h.log.String(), "connect denied (EACCES): --net=user: 192.0.2.1:80 is not in --allow-net") {
		t.Errorf("no -v line for the refusal:\n%s", h.log.String())
	}

	// UDP through the forwarder: the datagram reaches --dns, the reply
	// comes from 10.0.2.3:53.
	u := newInet(t, unix.SOCK_DGRAM)
	msg := h.bytes([]byte("q"))
	to := h.bytes(encodeInet(netip.MustParseAddrPort("10.0.2.3:53")))
	if res := h.call("sendto", uint64(u), msg, 1, 0, to, 16); !same(res, Ok(1)) {
		t.Fatalf("sendto 10.0.2.3:53: %s", resultString(res))
	}
	buf := make([]byte, 8)
	n, from, err := unix.Recvfrom(dns, buf, 0)
	if err != nil || string(buf[:n]) != "q" {
		t.Fatalf("the DNS server got %q, %v", buf[:n], err)
	}
	if err := unix.Sendto(dns, []byte("a"), 0, from); err != nil {
		t.Fatal(err)
	}
	rb, name2, namelen2 := h.alloc(8), h.alloc(16), h.u32(16)
	res = h.e.Dispatch(h.waitingReq(&pending, "recvfrom", uint64(u), rb, 8, 0, name2, namelen2))
	if !same(res, Ok(1)) || string(h.read(rb, 1)) != "a" {
		t.Fatalf("recvfrom: %s", resultString(res))
	}
	if g := decodeInet(h.read(name2, 16)); g.String() != "10.0.2.3:53" {
		t.Errorf("the answer came from %v, want 10.0.2.3:53", g)
	}
	if res := h.call("sendto", uint64(u), msg, 1, 0, h.bytes(encodeInet(netip.MustParseAddrPort("192.0.2.1:53"))), 16); !same(res, Fail(unix.EACCES)) {
		t.Errorf("sendto 192.0.2.1:53: %s", resultString(res))
	}
	// listen on an unbound socket binds it on the host's loopback first.
	ul := newInet(t, unix.SOCK_STREAM)
	if res := h.call("listen", uint64(ul), 4); !same(res, Ok(0)) {
		t.Fatalf("listen: %s", resultString(res))
	}
	if a := hostInet(t, ul, false); a.Addr() != netuser.Loopback || a.Port() == 0 {
		t.Errorf("an unbound listener is bound on the host at %v", a)
	}
}

func itoa(p uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[len("0.0.0.0:"):]
}

// TestInetAlive: a TCP socket bound and not listening holds its port
// (Held: no table lists it), a listener and a bound UDP socket are Found
// by inode, another inode on the port is not taken for them, and a
// closed socket's port is Gone.
func TestInetAlive(t *testing.T) {
	for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_DGRAM} {
		s, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Bind(s, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		host := hostInet(t, s, false)
		ino := sockIno(s)
		p := netuser.Proto(typ)
		want := netuser.Found
		if typ == unix.SOCK_STREAM {
			want = netuser.Held
		}
		if got := inetAlive(p, host, ino); got != want {
			t.Errorf("type %d: a bound socket is %v, want %v", typ, got, want)
		}
		if typ == unix.SOCK_STREAM {
			if err := unix.Listen(s, 1); err != nil {
				t.Fatal(err)
			}
		}
		if got, ok := diagLookup(p, host); inetDiagWorks(t) && (!ok || got != ino) {
			t.Errorf("type %d: sock_diag: %d, %v; want inode %d", typ, got, ok, ino)
		}
		if got := inetAlive(p, host, ino); got != netuser.Found {
			t.Errorf("type %d: %v, want Found", typ, got)
		}
		if got := inetAlive(p, host, ino+1); got != netuser.Held {
			t.Errorf("type %d: another inode on the port: %v, want Held", typ, got)
		}
		unix.Close(s)
		if got := inetAlive(p, host, ino); got != netuser.Gone {
			t.Errorf("type %d: a closed socket: %v, want Gone", typ, got)
		}
	}
}

// TestDiagLookupWildcard: a UDP socket bound to the wildcard (a guest
// client) is found at 127.0.0.1 on its port, and inetAlive finds it.
func TestDiagLookupWildcard(t *testing.T) {
	if !inetDiagWorks(t) {
		t.Skip("the kernel answers no AF_INET sock_diag request (CONFIG_INET_DIAG off, or its modules not loadable): kbox reads /proc/net/{tcp,udp} instead")
	}
	s := newInet(t, unix.SOCK_DGRAM)
	if err := unix.Bind(s, &unix.SockaddrInet4{}); err != nil {
		t.Fatal(err)
	}
	host := hostInet(t, s, false)
	if got, ok := diagLookup(unix.SOCK_DGRAM, netip.AddrPortFrom(netuser.Loopback, host.Port())); !ok || got != sockIno(s) {
		t.Errorf("sock_diag: %d, %v; want %d", got, ok, sockIno(s))
	}
	if got := inetAlive(unix.SOCK_DGRAM, host, sockIno(s)); got != netuser.Found {
		t.Errorf("inetAlive: %v", got)
	}
}

// inetDiagWorks reports whether diagLookup gets an answer here: the
// kernel has AF_INET sock_diag for TCP (built in, or modules it can load).
func inetDiagWorks(t *testing.T) bool {
	l := newInet(t, unix.SOCK_STREAM)
	if err := unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(l, 1); err != nil {
		t.Fatal(err)
	}
	got, ok := diagLookup(unix.SOCK_STREAM, hostInet(t, l, false))
	return ok && got == sockIno(l)
}
