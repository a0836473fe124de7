package launch

import (
	"context"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/kbox-go/kbox/internal/netuser"
)

// checkNet validates --net: the guest's network mode (docs/network.md).
func checkNet(v string) (string, error) {
	switch v {
	case "", "host":
		return "host", nil
	case "none", "user":
		return v, nil
	}
	return "", usagef("--net must be host, none or user, not %q", v)
}

// checkNetUser validates --allow-net, --publish and --dns, which only
// --net=user takes, and builds its configuration: names in --allow-net
// are resolved now (by kbox, with the host's resolver), the upstream DNS
// server is --dns or the host's resolv.conf's first IPv4 nameserver.
func checkNetUser(o Options, net string) (*netuser.Config, error) {
	if net != "user" {
		switch {
		case len(o.AllowNet) > 0:
			return nil, usagef("--allow-net needs --net=user")
		case len(o.Publish) > 0:
			return nil, usagef("--publish needs --net=user")
		case o.DNS != "":
			return nil, usagef("--dns needs --net=user")
		}
		return nil, nil
	}
	if o.KeepCaps {
		// CAP_NET_RAW's raw sockets write their own IP headers, and
		// CAP_NET_ADMIN changes the host's network: neither goes
		// through the NAT.
		return nil, usagef("--net=user cannot be combined with --keep-caps: the guest's raw sockets would bypass it")
	}
	c := &netuser.Config{}
	for _, a := range o.AllowNet {
		rules, err := netuser.ParseAllow(a, lookupIPv4)
		if err != nil {
			return nil, usagef("--allow-net: %v", err)
		}
		c.Allow = append(c.Allow, rules...)
	}
	for _, p := range o.Publish {
		pub, err := netuser.ParsePublish(p)
		if err != nil {
			return nil, usagef("--publish: %v", err)
		}
		c.Publish = append(c.Publish, pub)
	}
	if err := c.Check(); err != nil {
		return nil, usagef("%v", err)
	}
	if o.DNS != "" {
		d, err := netuser.ParseDNS(o.DNS)
		if err != nil {
			return nil, usagef("--dns: %v", err)
		}
		c.DNS = d
	} else if data, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		c.DNS, _ = netuser.ResolvConfServer(data)
	}
	return c, nil
}

// lookupIPv4 resolves an --allow-net name with the host's resolver.
func lookupIPv4(name string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return net.DefaultResolver.LookupNetIP(ctx, "ip4", name)
}
