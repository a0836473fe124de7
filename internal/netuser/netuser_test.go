package netuser

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func fakeResolve(name string) ([]netip.Addr, error) {
	switch name {
	case "example.test":
		return []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.11")}, nil
	case "v6only.test":
		return []netip.Addr{netip.MustParseAddr("2001:db8::1")}, nil
	case "localhost":
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, errors.New("no such host")
}

func TestParseAllow(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string // prefix/port
		err  string
	}{
		{"10.0.2.2", []string{"10.0.2.2/32 0"}, ""},
		{"10.0.2.2:8080", []string{"10.0.2.2/32 8080"}, ""},
		{"192.0.2.0/24:443", []string{"192.0.2.0/24 443"}, ""},
		{"192.0.2.7/24", []string{"192.0.2.0/24 0"}, ""},
		{"0.0.0.0/0", []string{"0.0.0.0/0 0"}, ""},
		{"example.test:80", []string{"192.0.2.10/32 80", "192.0.2.11/32 80"}, ""},
		{"v6only.test", nil, "no IPv4 address"},
		{"nowhere.test", nil, "resolving"},
		{"localhost", nil, "its own loopback"},
		{"127.0.0.1:80", nil, "its own loopback"},
		{"127.1.2.3", nil, "its own loopback"},
		{"127.0.0.0/8", nil, "its own loopback"},
		{"::1", nil, "no IPv6"},
		{"[::1]:80", nil, "no IPv6"},
		{"10.0.2.2:0", nil, "not a port"},
		{"10.0.2.2:65536", nil, "not a port"},
		{"10.0.2.2:http", nil, "not a port"},
		{":80", nil, "no host"},
		{"", nil, "empty"},
		{"1.2.3.4/33", nil, "not an IPv4 prefix"},
	} {
		rules, err := ParseAllow(c.in, fakeResolve)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseAllow(%q) = %v, %v; want error %q", c.in, rules, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseAllow(%q): %v", c.in, err)
			continue
		}
		var got []string
		for _, r := range rules {
			got = append(got, r.Prefix.String()+" "+itoa(r.Port))
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("ParseAllow(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func itoa(p uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[len("0.0.0.0:"):]
}

func TestParsePublishDNS(t *testing.T) {
	for _, c := range []struct {
		in, want, err string
	}{
		{"8080:80", "127.0.0.1 8080 80", ""},
		{"0.0.0.0:8080:80", "0.0.0.0 8080 80", ""},
		{"80", "", "is not"},
		{"a:b", "", "host port"},
		{"8080:0", "", "guest port"},
		{"::1:80:80", "", "is not"},
		{"1.2.3:80:80", "", "not an IPv4"},
	} {
		p, err := ParsePublish(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParsePublish(%q) = %v, %v; want error %q", c.in, p, err, c.err)
			}
			continue
		}
		if got := p.HostIP.String() + " " + itoa(p.HostPort) + " " + itoa(p.GuestPort); err != nil || got != c.want {
			t.Errorf("ParsePublish(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for in, want := range map[string]string{"127.0.0.1": "127.0.0.1:53", "192.0.2.1:5353": "192.0.2.1:5353", "x": "", "::1": "", "1.2.3.4:0": ""} {
		got, err := ParseDNS(in)
		if (want == "") != (err != nil) || (err == nil && got.String() != want) {
			t.Errorf("ParseDNS(%q) = %v, %v; want %q", in, got, err, want)
		}
	}
	c := Config{Publish: []Publish{{Loopback, 1, 80}, {Loopback, 2, 80}}}
	if c.Check() == nil {
		t.Error("a guest port published twice was accepted")
	}
	c = Config{Publish: []Publish{{Loopback, 1, 80}, {Loopback, 1, 81}}}
	if c.Check() == nil {
		t.Error("a host port published twice was accepted")
	}
}

func TestResolvConfServer(t *testing.T) {
	for in, want := range map[string]string{
		"# x\nsearch a\nnameserver 2001:db8::1\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n": "192.0.2.53:53",
		"nameserver 127.0.0.53\n": "127.0.0.53:53",
		"nameserver ::1\n":        "",
		"":                        "",
	} {
		got, ok := ResolvConfServer([]byte(in))
		if (want == "") == ok || (ok && got.String() != want) {
			t.Errorf("ResolvConfServer(%q) = %v, %v; want %q", in, got, ok, want)
		}
	}
	if !strings.Contains(string(ResolvConf()), "nameserver 10.0.2.3\n") {
		t.Errorf("ResolvConf() = %q", ResolvConf())
	}
}

// testNAT is a NAT whose sockets are alive until killed.
func testNAT(cfg Config) (*NAT, map[uint64]bool) {
	dead := map[uint64]bool{}
	n := NewNAT(cfg)
	n.Alive = func(p Proto, host netip.AddrPort, ino uint64) Liveness {
		if dead[ino] {
			return Gone
		}
		return Found
	}
	return n, dead
}

func TestOutbound(t *testing.T) {
	rules, _ := ParseAllow("10.0.2.2:8080", nil)
	more, _ := ParseAllow("192.0.2.0/24:443", nil)
	n, dead := testNAT(Config{Allow: append(rules, more...), DNS: ap("127.0.0.1:5353")})
	const tcp, udp = Proto(unix.SOCK_STREAM), Proto(unix.SOCK_DGRAM)
	// A guest listener on port 80, bound on the host's 127.0.0.1:40000.
	if _, err := n.Bind(tcp, ap("0.0.0.0:80"), 1); err != nil {
		t.Fatal(err)
	}
	n.Register(tcp, ap("0.0.0.0:80"), ap("127.0.0.1:40000"), 1)
	for _, c := range []struct {
		p     Proto
		dst   string
		host  string
		local string
		err   error
	}{
		{tcp, "10.0.2.2:8080", "127.0.0.1:8080", "10.0.2.15", nil},
		{tcp, "10.0.2.2:8081", "", "", &Refusal{}},
		{tcp, "192.0.2.9:443", "192.0.2.9:443", "10.0.2.15", nil},
		{tcp, "192.0.2.9:80", "", "", &Refusal{}},
		{tcp, "198.51.100.1:443", "", "", &Refusal{}},
		{udp, "10.0.2.3:53", "127.0.0.1:5353", "10.0.2.15", nil},
		{tcp, "10.0.2.3:53", "127.0.0.1:5353", "10.0.2.15", nil},
		{udp, "10.0.2.3:54", "", "", unix.ECONNREFUSED},
		{tcp, "127.0.0.1:80", "127.0.0.1:40000", "127.0.0.1", nil},
		{tcp, "127.3.4.5:80", "127.0.0.1:40000", "127.0.0.1", nil},
		{tcp, "0.0.0.0:80", "127.0.0.1:40000", "127.0.0.1", nil},
		{tcp, "10.0.2.15:80", "127.0.0.1:40000", "10.0.2.15", nil},
		{udp, "127.0.0.1:80", "", "", unix.ECONNREFUSED}, // another transport
		{tcp, "127.0.0.1:8080", "", "", unix.ECONNREFUSED},
		{tcp, "127.0.0.1:40000", "", "", unix.ECONNREFUSED}, // the host port is not a guest port
		{tcp, "10.0.2.4:80", "", "", &Refusal{}},
	} {
		host, local, err := n.Outbound(c.p, ap(c.dst))
		var ref *Refusal
		switch {
		case c.err == nil && err != nil, c.err != nil && err == nil:
			t.Errorf("Outbound(%s) = %v, %v, %v; want error %v", c.dst, host, local, err, c.err)
		case c.err != nil:
			if _, want := c.err.(*Refusal); want != errors.As(err, &ref) || (!want && err != c.err) {
				t.Errorf("Outbound(%s): error %v, want %v", c.dst, err, c.err)
			}
		case host.String() != c.host || local.String() != c.local:
			t.Errorf("Outbound(%s) = %v from %v, want %v from %v", c.dst, host, local, c.host, c.local)
		}
	}
	// Once the listener is gone its host port may be anyone's: refused.
	dead[1] = true
	if _, _, err := n.Outbound(tcp, ap("127.0.0.1:80")); err != unix.ECONNREFUSED {
		t.Errorf("a closed guest listener: %v", err)
	}
	// Without an upstream DNS server the forwarder refuses.
	n2, _ := testNAT(Config{})
	if _, _, err := n2.Outbound(udp, ap("10.0.2.3:53")); err != unix.ECONNREFUSED {
		t.Errorf("no DNS: %v", err)
	}
}

func TestBindAndNames(t *testing.T) {
	n, dead := testNAT(Config{Publish: []Publish{{Loopback, 18080, 80}}, DNS: ap("192.0.2.53:53")})
	const tcp, udp = Proto(unix.SOCK_STREAM), Proto(unix.SOCK_DGRAM)
	for _, c := range []struct {
		p    Proto
		addr string
		host string
		err  error
	}{
		{tcp, "0.0.0.0:80", "127.0.0.1:18080", nil},
		{tcp, "127.0.0.1:81", "127.0.0.1:0", nil},
		{tcp, "10.0.2.15:82", "127.0.0.1:0", nil},
		{tcp, "0.0.0.0:0", "127.0.0.1:0", nil},
		{udp, "0.0.0.0:0", "0.0.0.0:0", nil},
		{udp, "127.0.0.1:0", "127.0.0.1:0", nil},
		{udp, "0.0.0.0:80", "127.0.0.1:18080", nil},
		{tcp, "192.0.2.1:80", "", unix.EADDRNOTAVAIL},
		{tcp, "10.0.2.2:80", "", unix.EADDRNOTAVAIL},
	} {
		plan, err := n.Bind(c.p, ap(c.addr), 99)
		if err != c.err || (err == nil && plan.Host.String() != c.host) {
			t.Errorf("Bind(%s) = %v, %v; want %s, %v", c.addr, plan.Host, err, c.host, c.err)
		}
	}
	g := n.Register(tcp, ap("0.0.0.0:80"), ap("127.0.0.1:18080"), 1)
	if g.String() != "0.0.0.0:80" {
		t.Errorf("Register = %v", g)
	}
	if _, err := n.Bind(tcp, ap("127.0.0.1:80"), 2); err != unix.EADDRINUSE {
		t.Errorf("a second bind of guest port 80: %v", err)
	}
	if _, err := n.Bind(tcp, ap("127.0.0.1:80"), 1); err != unix.EINVAL {
		t.Errorf("the same socket bound again: %v", err)
	}
	// Port 0: the guest is shown the host's port.
	if g := n.Register(tcp, ap("10.0.2.15:0"), ap("127.0.0.1:41000"), 3); g.String() != "10.0.2.15:41000" {
		t.Errorf("Register of port 0 = %v", g)
	}
	// A guest client of its own listener, on host port 42000.
	n.Connected(tcp, 4, ap("127.0.0.1:80"), Loopback, ap("127.0.0.1:42000"))
	// An outside connection.
	n.Connected(tcp, 5, ap("192.0.2.9:443"), GuestAddr, ap("192.168.1.2:43000"))
	for _, c := range []struct {
		name   string
		got    netip.AddrPort
		expect string
	}{
		{"listener", n.GuestLocal(tcp, ap("127.0.0.1:18080"), 1, netip.AddrPort{}), "0.0.0.0:80"},
		{"accepted from the guest", n.GuestLocal(tcp, ap("127.0.0.1:18080"), 10, ap("127.0.0.1:42000")), "127.0.0.1:80"},
		{"accepted from the host", n.GuestLocal(tcp, ap("127.0.0.1:18080"), 11, ap("127.0.0.1:50000")), "10.0.2.15:80"},
		{"client local", n.GuestLocal(tcp, ap("127.0.0.1:42000"), 4, ap("127.0.0.1:18080")), "127.0.0.1:42000"},
		{"client peer", n.PeerOf(tcp, ap("127.0.0.1:18080"), 4), "127.0.0.1:80"},
		{"outside local", n.GuestLocal(tcp, ap("192.168.1.2:43000"), 5, ap("192.0.2.9:443")), "10.0.2.15:43000"},
		{"outside peer", n.PeerOf(tcp, ap("192.0.2.9:443"), 5), "192.0.2.9:443"},
		{"unbound", n.GuestLocal(tcp, ap("0.0.0.0:0"), 6, netip.AddrPort{}), "0.0.0.0:0"},
		{"a guest client's name", n.GuestPeer(tcp, ap("127.0.0.1:42000")), "127.0.0.1:42000"},
		{"a guest listener's name", n.GuestPeer(tcp, ap("127.0.0.1:18080")), "127.0.0.1:80"},
		{"a host process", n.GuestPeer(tcp, ap("127.0.0.1:50000")), "10.0.2.2:50000"},
		{"the DNS server", n.GuestPeer(udp, ap("192.0.2.53:53")), "10.0.2.3:53"},
		{"an outside peer", n.GuestPeer(udp, ap("192.0.2.54:53")), "192.0.2.54:53"},
		{"another transport", n.GuestPeer(udp, ap("127.0.0.1:18080")), "10.0.2.2:18080"},
	} {
		if c.got.String() != c.expect {
			t.Errorf("%s: %v, want %s", c.name, c.got, c.expect)
		}
	}
	// The listener closed: its guest port is free again.
	dead[1] = true
	if _, err := n.Bind(tcp, ap("127.0.0.1:80"), 2); err != nil {
		t.Errorf("rebinding a closed guest port: %v", err)
	}
	// A guest client's port is reachable on the guest's loopback (a
	// datagram reply), as long as the client lives.
	n.Sent(udp, 7, Loopback, ap("0.0.0.0:44000"))
	if host, _, err := n.Outbound(udp, ap("127.0.0.1:44000")); err != nil || host.String() != "127.0.0.1:44000" {
		t.Errorf("reply to a guest client: %v, %v", host, err)
	}
	dead[7] = true
	if _, _, err := n.Outbound(udp, ap("127.0.0.1:44000")); err != unix.ECONNREFUSED {
		t.Errorf("reply to a closed guest client: %v", err)
	}
}

// FuzzParseAllow: no input panics the parser, and what it accepts is an
// IPv4 prefix outside the guest's loopback (or a wider one holding it:
// Outbound takes the loopback first).
func FuzzParseAllow(f *testing.F) {
	for _, s := range []string{"10.0.2.2", "10.0.2.2:80", "192.0.2.0/24:443", "example.test", "::1", "127.0.0.1", "a:b:c", "/", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rules, err := ParseAllow(s, fakeResolve)
		if err != nil {
			return
		}
		for _, r := range rules {
			if !r.Prefix.Addr().Is4() || (r.Prefix.Bits() >= 8 && r.Prefix.Contains(Loopback)) {
				t.Errorf("ParseAllow(%q) accepted %v", s, r.Prefix)
			}
		}
		ParsePublish(s) //nolint:errcheck
		ParseDNS(s)     //nolint:errcheck
	})
}

// TestHeld: a guest port whose socket holds its host port unseen (a TCP
// socket bound and not yet listening) refuses connections, stays the
// socket's against a second bind, and is reachable once it is found; a
// Gone one is forgotten.
func TestHeld(t *testing.T) {
	state := map[uint64]Liveness{1: Held}
	n := NewNAT(Config{})
	n.Alive = func(p Proto, host netip.AddrPort, ino uint64) Liveness { return state[ino] }
	const tcp = Proto(unix.SOCK_STREAM)
	n.Register(tcp, ap("0.0.0.0:80"), ap("127.0.0.1:40000"), 1)
	if _, _, err := n.Outbound(tcp, ap("127.0.0.1:80")); err != unix.ECONNREFUSED {
		t.Errorf("connect to a bound, not listening guest port: %v", err)
	}
	if _, err := n.Bind(tcp, ap("0.0.0.0:80"), 2); err != unix.EADDRINUSE {
		t.Errorf("second bind while Held: %v", err)
	}
	state[1] = Found
	if host, _, err := n.Outbound(tcp, ap("127.0.0.1:80")); err != nil || host.String() != "127.0.0.1:40000" {
		t.Errorf("connect once listening: %v, %v", host, err)
	}
	state[1] = Gone
	if _, err := n.Bind(tcp, ap("0.0.0.0:80"), 2); err != nil {
		t.Errorf("bind after the socket is gone: %v", err)
	}
}
