package integration

import (
	"net"
	"strings"
	"testing"
)

// TestNetNone: --net=none leaves the guest AF_UNIX sockets only, in every
// tier: every other family fails with EAFNOSUPPORT (with a -v line), busybox
// tools say so, AF_UNIX paths and abstract names keep working, and the
// default (--net=host) still creates every family the host allows.
func TestNetNone(t *testing.T) {
	t.Parallel()
	// A host TCP listener on loopback the guest must not reach.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			accepted <- struct{}{}
		}
	}()
	addr := ln.Addr().String()
	families := []string{"socket AF_UNIX: ok", "socket AF_INET: err EAFNOSUPPORT", "socket AF_INET6: err EAFNOSUPPORT",
		"socket AF_NETLINK: err EAFNOSUPPORT", "socket AF_PACKET: err EAFNOSUPPORT", "socket AF_VSOCK: err EAFNOSUPPORT",
		"socketpair AF_UNIX: ok", "socketpair AF_INET: err EAFNOSUPPORT"}
	forEachTierModeVariant(t, func(t *testing.T, tier, mode string, v variant) {
		root := freshRoot(t, v.uid())
		tok := randomHex(t, 4)
		run := func(args ...string) (string, string, int, runOpts) {
			opts := runOpts{Unpriv: v.unpriv, Args: append([]string{"-v", "--net=none", "--syscall-mode=" + tier, mode, root, "--"}, args...)}
			out, errOut, code := runKbox(t, opts)
			return out, errOut, code, opts
		}
		out, errOut, code, opts := run("/bin/socktest", "families")
		if code != 0 {
			t.Errorf("%s\nexit status %d\nstderr:\n%s", cmdline(opts), code, errOut)
		}
		if diff := compareLines(families, lines(out)); diff != "" {
			t.Errorf("%s\noutput mismatch:\n%sstderr:\n%s", cmdline(opts), diff, errOut)
		}
		if !strings.Contains(errOut, "socket denied (EAFNOSUPPORT): --net=none") {
			t.Errorf("%s: no -v line names the refusal:\n%s", cmdline(opts), errOut)
		}
		// AF_UNIX keeps working: a path in the guest and the abstract
		// namespace.
		out, errOut, code, opts = run("/bin/socktest", "dgram", "/tmp/none-"+tok+".sock")
		if code != 0 || !strings.Contains(out, "recv: ok f") {
			t.Errorf("%s: AF_UNIX datagrams under --net=none: exit %d\n%s%s", cmdline(opts), code, out, errOut)
		}
		out, errOut, code, opts = run("/bin/socktest", "abstract")
		if code != 0 || !strings.Contains(out, "recv: ok msg") {
			t.Errorf("%s: abstract AF_UNIX under --net=none: exit %d\n%s%s", cmdline(opts), code, out, errOut)
		}
		if tier != "seccomp" {
			return // the busybox shell forks: the seccomp tier's
		}
		host, port, _ := net.SplitHostPort(addr)
		out, errOut, code, opts = run("/bin/sh", "-c", `ip addr; echo "ip=$?"; wget -q -O- http://`+addr+`/; echo "wget=$?"; echo x | nc `+host+` `+port+`; echo "nc=$?"`)
		if code != 0 {
			t.Errorf("%s: exit %d\n%s%s", cmdline(opts), code, out, errOut)
		}
		for _, w := range []string{"ip=1", "wget=1", "nc=1"} {
			if !strings.Contains(out, w) {
				t.Errorf("%s: want %s in\n%s%s", cmdline(opts), w, out, errOut)
			}
		}
		if !strings.Contains(errOut, "Address family not supported") {
			t.Errorf("%s: busybox does not report the refused family:\n%s", cmdline(opts), errOut)
		}
		select {
		case <-accepted:
			t.Errorf("%s: the host's loopback listener %s was reached", cmdline(opts), addr)
		default:
		}
	})
	// The default is the host's network: the same families are created
	// (AF_INET at least; the others depend on the host and privilege).
	forEachVariant(t, "host/", func(t *testing.T, v variant) {
		root := freshRoot(t, v.uid())
		opts := runOpts{Unpriv: v.unpriv, Args: []string{"-S", root, "--", "/bin/socktest", "families"}}
		out, errOut, code := runKbox(t, opts)
		if code != 0 || !strings.Contains(out, "socket AF_INET: ok") || !strings.Contains(out, "socketpair AF_INET: err EOPNOTSUPP") {
			t.Errorf("%s: exit %d\n%s%s", cmdline(opts), code, out, errOut)
		}
	})
}

// TestNetFlag: --net takes host, none or user; anything else is a usage
// error (TestNetUserFlags has user's own).
func TestNetFlag(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	for _, c := range []struct {
		val, msg string
	}{{"bogus", `--net must be host, none or user, not "bogus"`}} {
		opts := runOpts{Args: []string{"--net=" + c.val, "-r", root, "--", "/bin/true"}}
		_, errOut, code := runKbox(t, opts)
		if code != 125 || !strings.Contains(errOut, c.msg) {
			t.Errorf("%s: exit %d, stderr %q; want 125 and %q", cmdline(opts), code, errOut, c.msg)
		}
	}
	opts := runOpts{Args: []string{"--net=host", "-r", root, "--", "/bin/true"}}
	if _, errOut, code := runKbox(t, opts); code != 0 {
		t.Errorf("%s: exit %d\n%s", cmdline(opts), code, errOut)
	}
}
