package integration

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// The guest's abstract AF_UNIX names are its own (docs/network.md): kbox
// tags them on the host. These tests drive /bin/socktest abshost and
// abspair (tests/guest/socktest.c).

// hostAbstract listens on abstract name (stream) and name-d (datagram)
// in the test process, as a session bus or an X server would.
func hostAbstract(t *testing.T, name string) (*net.UnixListener, *net.UnixConn) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: "@" + name, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	d, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "@" + name + "-d", Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return l, d
}

// reached reports what the host sockets got: a connection or a datagram.
func reached(t *testing.T, l *net.UnixListener, d *net.UnixConn) []string {
	t.Helper()
	var got []string
	l.SetDeadline(time.Now().Add(50 * time.Millisecond)) //nolint:errcheck
	for {
		c, err := l.Accept()
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("accept on the host listener: %v", err)
			}
			break
		}
		c.Close()
		got = append(got, "connection")
	}
	buf := make([]byte, 64)
	for {
		d.SetReadDeadline(time.Now().Add(50 * time.Millisecond)) //nolint:errcheck
		n, _, err := d.ReadFrom(buf)
		if err != nil {
			break
		}
		got = append(got, "datagram "+string(buf[:n]))
	}
	return got
}

// TestNetAbstractHostUnreachable: a host listener on an abstract name is
// out of the guest's reach in every tier, root flag and privilege; the
// same program run natively reaches it (the control). Under --net=host
// (the default) and --net=none alike.
func TestNetAbstractHostUnreachable(t *testing.T) {
	t.Parallel()
	t.Run("native-control", func(t *testing.T) {
		name := "kbit-abs-" + randomHex(t, 6)
		l, d := hostAbstract(t, name)
		opts := runOpts{Bin: filepath.Join(fixtureRoot(t), "bin", "socktest"), Args: []string{"abshost", name}}
		out, errOut, code := runKbox(t, opts)
		if diff := compareLines([]string{"connect: ok", "sendto: ok 4"}, lines(out)); diff != "" || code != 0 {
			t.Fatalf("natively: exit %d\n%s%s", code, diff, errOut)
		}
		if got := reached(t, l, d); len(got) != 2 {
			t.Errorf("natively the host sockets got %q, want a connection and a datagram", got)
		}
	})
	forEachTierModeVariant(t, func(t *testing.T, tier, mode string, v variant) {
		root := freshRoot(t, v.uid())
		for _, netMode := range []string{"host", "none"} {
			name := "kbit-abs-" + randomHex(t, 6)
			l, d := hostAbstract(t, name)
			opts := runOpts{Unpriv: v.unpriv, Args: []string{"--net=" + netMode, "--syscall-mode=" + tier, mode, root, "--", "/bin/socktest", "abshost", name}}
			out, errOut, code := runKbox(t, opts)
			want := []string{"connect: err ECONNREFUSED", "sendto: err ECONNREFUSED"}
			if code != 0 {
				t.Errorf("%s\nexit status %d, want 0\nstderr:\n%s", cmdline(opts), code, errOut)
			}
			if diff := compareLines(want, lines(out)); diff != "" {
				t.Errorf("%s\noutput mismatch:\n%sstderr:\n%s", cmdline(opts), diff, errOut)
			}
			if got := reached(t, l, d); len(got) > 0 {
				t.Errorf("%s: the host's abstract sockets were reached: %q", cmdline(opts), got)
			}
		}
	})
}

// TestNetAbstractPair: two guest processes talk over abstract names and
// see their own names (getsockname, getpeername, accept's, recvfrom's and
// recvmsg's peer addresses), and a datagram reply to an autobound sender
// arrives. The seccomp tier (the in-process tiers run one process).
func TestNetAbstractPair(t *testing.T) {
	t.Parallel()
	want := []string{"bind: ok", "bind-dgram: ok", "getsockname: ok @NAME", "child-bind: ok", "child-connect: ok",
		"child-getpeername: ok @NAME", "child-write: ok 5", "accept: ok @NAME-c", "getsockname-accepted: ok @NAME",
		"read: ok hello", "child-autobind: ok", "child-autobind-name: ok @AUTO", "child-sendto: ok 4", "child-sendto: ok 5",
		"recvfrom: ok ping from @AUTO", "recvmsg: ok ping2 from @AUTO", "reply: ok 4", "child-reply: ok pong"}
	autoName := regexp.MustCompile(`^child-autobind-name: ok @([0-9a-f]{5})$`)
	check := func(t *testing.T, opts runOpts, name string) {
		t.Helper()
		out, errOut, code := runKbox(t, opts)
		got := lines(out)
		auto := "(none)"
		for _, l := range got {
			if m := autoName.FindStringSubmatch(l); m != nil {
				auto = m[1]
			}
		}
		w := make([]string, len(want))
		for i, s := range want {
			w[i] = strings.NewReplacer("@NAME", "@"+name, "@AUTO", "@"+auto).Replace(s)
		}
		sort.Strings(w)
		sort.Strings(got)
		if code != 0 {
			t.Errorf("%s\nexit status %d, want 0\nstderr:\n%s", cmdline(opts), code, errOut)
		}
		if diff := compareLines(w, got); diff != "" {
			t.Errorf("%s\noutput mismatch (sorted):\n%sstderr:\n%s", cmdline(opts), diff, errOut)
		}
	}
	t.Run("native-oracle", func(t *testing.T) {
		name := "kbit-pair-" + randomHex(t, 6)
		check(t, runOpts{Bin: filepath.Join(fixtureRoot(t), "bin", "socktest"), Args: []string{"abspair", name}}, name)
	})
	for _, mode := range rootModes() {
		forEachVariant(t, mode+"/", func(t *testing.T, v variant) {
			root := freshRoot(t, v.uid())
			name := "kbit-pair-" + randomHex(t, 6)
			check(t, runOpts{Unpriv: v.unpriv, Args: []string{mode, root, "--", "/bin/socktest", "abspair", name}}, name)
		})
	}
}
