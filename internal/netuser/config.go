// Package netuser is --net=user's address plan: the guest's addresses,
// the --allow-net, --publish and --dns flags, and the socket-level NAT
// the seccomp tier applies to every address an AF_INET call names
// (dispatch/net_user.go). docs/network.md has the design.
package netuser

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The guest's view of its network (the addresses QEMU's and slirp4netns's
// user-mode networks use, which programs and people recognise).
var (
	// GuestAddr is the guest's own address.
	GuestAddr = netip.AddrFrom4([4]byte{10, 0, 2, 15})
	// Gateway is the host as the guest sees it: 10.0.2.2:P is the host's
	// 127.0.0.1:P, reachable when --allow-net names it.
	Gateway = netip.AddrFrom4([4]byte{10, 0, 2, 2})
	// DNSAddr is the DNS forwarder: 10.0.2.3:53 is the upstream server.
	DNSAddr = netip.AddrFrom4([4]byte{10, 0, 2, 3})
	// Subnet is the guest's network.
	Subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 2, 0}), 24)
	// Loopback is the host's 127.0.0.1, where guest listeners are bound.
	Loopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})
)

// Rule is one --allow-net entry: destinations in Prefix, on Port (0:
// every port).
type Rule struct {
	Prefix netip.Prefix
	Port   uint16
	// Name is the entry as given (a host name is resolved at start).
	Name string
}

// Allows reports whether the rule admits dst.
func (r Rule) Allows(dst netip.AddrPort) bool {
	return r.Prefix.Contains(dst.Addr()) && (r.Port == 0 || r.Port == dst.Port())
}

// Publish is one --publish entry: the guest's binds of GuestPort (TCP and
// UDP) bind HostIP:HostPort on the host.
type Publish struct {
	HostIP    netip.Addr
	HostPort  uint16
	GuestPort uint16
}

// Config is the --net=user configuration.
type Config struct {
	Allow   []Rule
	Publish []Publish
	// DNS is the upstream server 10.0.2.3:53 forwards to (invalid: none).
	DNS netip.AddrPort
}

// Resolver looks a host name up (IPv4 addresses only are used).
type Resolver func(name string) ([]netip.Addr, error)

// splitHostPort splits HOST[:PORT]; an IPv6 literal is refused by the
// caller (the guest has no IPv6).
func splitHostPort(s string) (host, port string) {
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[:i], ":") {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func parsePort(s string, zeroOK bool) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || (n == 0 && !zeroOK) {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return uint16(n), nil
}

// ParseAllow parses one --allow-net value: HOST[:PORT], where HOST is an
// IPv4 address, an IPv4 prefix (ADDR/BITS), the gateway 10.0.2.2 (the
// host's loopback services), or a name resolve looks up now (every IPv4
// address it has is allowed). The guest's own loopback is its own and
// cannot be allowed: 127.0.0.0/8 is refused with a hint.
func ParseAllow(s string, resolve Resolver) ([]Rule, error) {
	if s == "" {
		return nil, fmt.Errorf("empty entry")
	}
	host, portStr := splitHostPort(s)
	var port uint16
	if portStr != "" {
		p, err := parsePort(portStr, false)
		if err != nil {
			return nil, err
		}
		port = p
	}
	if host == "" {
		return nil, fmt.Errorf("%q: no host", s)
	}
	var prefixes []netip.Prefix
	if strings.Contains(host, "/") {
		p, err := netip.ParsePrefix(host)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("%q is not an IPv4 prefix", host)
		}
		prefixes = append(prefixes, p.Masked())
	} else if a, err := netip.ParseAddr(host); err == nil {
		if !a.Is4() {
			return nil, fmt.Errorf("%q: the guest has no IPv6 (IPv4 addresses only)", host)
		}
		prefixes = append(prefixes, netip.PrefixFrom(a, 32))
	} else if strings.ContainsAny(host, ":[]") {
		return nil, fmt.Errorf("%q: the guest has no IPv6 (IPv4 addresses only)", host)
	} else {
		if resolve == nil {
			return nil, fmt.Errorf("%q: cannot resolve names here", host)
		}
		addrs, err := resolve(host)
		if err != nil {
			return nil, fmt.Errorf("resolving %q: %v", host, err)
		}
		for _, a := range addrs {
			if a = a.Unmap(); a.Is4() {
				prefixes = append(prefixes, netip.PrefixFrom(a, 32))
			}
		}
		if len(prefixes) == 0 {
			return nil, fmt.Errorf("%q has no IPv4 address", host)
		}
	}
	var out []Rule
	for _, p := range prefixes {
		if p.Overlaps(netip.MustParsePrefix("127.0.0.0/8")) && p.Bits() >= 8 {
			return nil, fmt.Errorf("%q: the guest's 127.0.0.0/8 is its own loopback; the host's 127.0.0.1 is the gateway %s", s, Gateway)
		}
		out = append(out, Rule{Prefix: p, Port: port, Name: s})
	}
	return out, nil
}

// ParsePublish parses one --publish value: [HOST_IP:]HOST_PORT:GUEST_PORT.
// HOST_IP defaults to 127.0.0.1: only the host's own processes reach the
// guest's server unless another address is given.
func ParsePublish(s string) (Publish, error) {
	parts := strings.Split(s, ":")
	p := Publish{HostIP: Loopback}
	switch len(parts) {
	case 2:
	case 3:
		a, err := netip.ParseAddr(parts[0])
		if err != nil || !a.Is4() {
			return p, fmt.Errorf("%q: %q is not an IPv4 address", s, parts[0])
		}
		p.HostIP = a
		parts = parts[1:]
	default:
		return p, fmt.Errorf("%q is not [HOST_IP:]HOST_PORT:GUEST_PORT", s)
	}
	var err error
	if p.HostPort, err = parsePort(parts[0], false); err != nil {
		return p, fmt.Errorf("%q: host port: %v", s, err)
	}
	if p.GuestPort, err = parsePort(parts[1], false); err != nil {
		return p, fmt.Errorf("%q: guest port: %v", s, err)
	}
	return p, nil
}

// ParseDNS parses --dns: ADDR[:PORT], an IPv4 address (port 53 when not
// given).
func ParseDNS(s string) (netip.AddrPort, error) {
	host, portStr := splitHostPort(s)
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IPv4 address", host)
	}
	port := uint16(53)
	if portStr != "" {
		if port, err = parsePort(portStr, false); err != nil {
			return netip.AddrPort{}, err
		}
	}
	return netip.AddrPortFrom(a, port), nil
}

// ResolvConfServer returns the first IPv4 nameserver of a resolv.conf.
func ResolvConfServer(data []byte) (netip.AddrPort, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil && a.Unmap().Is4() {
				return netip.AddrPortFrom(a.Unmap(), 53), true
			}
		}
	}
	return netip.AddrPort{}, false
}

// ResolvConf is the resolv.conf the guest is shown under --net=user: the
// forwarder.
func ResolvConf() []byte {
	return []byte("# kbox --net=user: the DNS forwarder (docs/network.md)\nnameserver " + DNSAddr.String() + "\n")
}

// Check validates a configuration: one guest port and one host port per
// --publish.
func (c *Config) Check() error {
	guest := map[uint16]bool{}
	host := map[netip.AddrPort]bool{}
	for _, p := range c.Publish {
		if guest[p.GuestPort] {
			return fmt.Errorf("--publish: guest port %d given twice", p.GuestPort)
		}
		hp := netip.AddrPortFrom(p.HostIP, p.HostPort)
		if host[hp] {
			return fmt.Errorf("--publish: host port %s given twice", hp)
		}
		guest[p.GuestPort], host[hp] = true, true
	}
	return nil
}
