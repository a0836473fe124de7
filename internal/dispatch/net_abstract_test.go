package dispatch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

// abs is a struct sockaddr_un for abstract name n, of the length the
// kernel counts (no trailing NUL).
func abs(n string) []byte { return abstractAddr([]byte(n)) }

// hostName is the address the kernel reports for host socket s.
func hostName(t *testing.T, nr uintptr, s int) []byte {
	t.Helper()
	b, _, err := nativeName(nr, s, 128)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNetAbstractTagged: the guest's abstract names carry the run's tag
// on the host, and the guest reads back its own.
func TestNetAbstractTagged(t *testing.T) {
	h := newHarness(t)
	tag := string(h.e.abstract.tag)
	long := strings.Repeat("L", abstractNameMax) // the longest name Linux takes
	for _, name := range []string{"srv", "\x00binary\x00name", long} {
		t.Run(fmt.Sprintf("len%d", len(name)), func(t *testing.T) {
			l := newSock(t, unix.SOCK_STREAM)
			raw := abs(name)
			if res := h.call("bind", uint64(l), h.bytes(raw), uint64(len(raw))); !same(res, Ok(0)) {
				t.Fatalf("bind: %s", resultString(res))
			}
			host := hostName(t, unix.SYS_GETSOCKNAME, l)
			if !isAbstract(host) || !strings.HasPrefix(string(host[3:]), tag) {
				t.Fatalf("the host name %q lacks the tag %q", host, tag)
			}
			if len(name)+len(tag) <= abstractNameMax && string(host[3:]) != tag+name {
				t.Errorf("host name %q, want the tag and the guest's name", host)
			}
			if got, n, res := h.guestName("getsockname", l, 128); !same(res, Ok(0)) || n != len(raw) || !bytes.Equal(got, raw) {
				t.Errorf("getsockname: %q len %d %s, want %q len %d", got, n, resultString(res), raw, len(raw))
			}
			if err := unix.Listen(l, 4); err != nil {
				t.Fatal(err)
			}
			c := newSock(t, unix.SOCK_STREAM)
			if res := h.call("connect", uint64(c), h.bytes(raw), uint64(len(raw))); !same(res, Ok(0)) {
				t.Fatalf("connect: %s", resultString(res))
			}
			if got, n, res := h.guestName("getpeername", c, 128); !same(res, Ok(0)) || n != len(raw) || !bytes.Equal(got, raw) {
				t.Errorf("getpeername: %q len %d %s, want %q", got, n, resultString(res), raw)
			}
			// A name read back with the tag (recvfrom, accept) reaches
			// the same socket: the tag is not added twice.
			c2 := newSock(t, unix.SOCK_STREAM)
			if res := h.call("connect", uint64(c2), h.bytes(host), uint64(len(host))); !same(res, Ok(0)) {
				t.Errorf("connect to the tagged name: %s", resultString(res))
			}
		})
	}
}

// TestNetAbstractHostUnreachable: a host listener's abstract name is not
// the guest's: connect and sendto fail as for a name nobody bound
// (ECONNREFUSED), and nothing arrives.
func TestNetAbstractHostUnreachable(t *testing.T) {
	h := newHarness(t)
	name := "kbox-unit-host-" + fmt.Sprint(unix.Getpid())
	hs := newSock(t, unix.SOCK_STREAM)
	if err := unix.Bind(hs, &unix.SockaddrUnix{Name: "@" + name}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(hs, 4); err != nil {
		t.Fatal(err)
	}
	hd := newSock(t, unix.SOCK_DGRAM)
	if err := unix.Bind(hd, &unix.SockaddrUnix{Name: "@" + name + "-d"}); err != nil {
		t.Fatal(err)
	}
	raw := abs(name)
	c := newSock(t, unix.SOCK_STREAM)
	if res := h.call("connect", uint64(c), h.bytes(raw), uint64(len(raw))); !same(res, Fail(unix.ECONNREFUSED)) {
		t.Errorf("connect to a host abstract listener: %s, want ECONNREFUSED", resultString(res))
	}
	d := newSock(t, unix.SOCK_DGRAM)
	rawd := abs(name + "-d")
	if res := h.call("sendto", uint64(d), h.bytes([]byte("x")), 1, 0, h.bytes(rawd), uint64(len(rawd))); !same(res, Fail(unix.ECONNREFUSED)) {
		t.Errorf("sendto a host abstract socket: %s, want ECONNREFUSED", resultString(res))
	}
	msg := make([]byte, abi.SizeofMsghdr)
	le := binary.LittleEndian
	le.PutUint64(msg[0:], h.bytes(rawd))
	le.PutUint32(msg[8:], uint32(len(rawd)))
	if res := h.call("sendmsg", uint64(d), h.bytes(msg), 0); !same(res, Fail(unix.ECONNREFUSED)) {
		t.Errorf("sendmsg to a host abstract socket: %s, want ECONNREFUSED", resultString(res))
	}
	if n, _, err := unix.Recvfrom(hd, make([]byte, 8), unix.MSG_DONTWAIT); err == nil {
		t.Errorf("the host socket received %d bytes", n)
	}
}

// TestNetAbstractAutobind: bind with only sun_family, and the implicit
// bind of a socket passing credentials, land in the tag space under a
// name of the kernel's form.
func TestNetAbstractAutobind(t *testing.T) {
	h := newHarness(t)
	tag := string(h.e.abstract.tag)
	form := regexp.MustCompile(`^\x00[0-9a-f]{5}$`)
	check := func(what string, s int) {
		t.Helper()
		host := hostName(t, unix.SYS_GETSOCKNAME, s)
		if !isAbstract(host) || !strings.HasPrefix(string(host[3:]), tag) {
			t.Errorf("%s: host name %q lacks the tag", what, host)
		}
		got, n, res := h.guestName("getsockname", s, 128)
		if !same(res, Ok(0)) || n != 8 || !form.Match(got[2:]) {
			t.Errorf("%s: getsockname %q len %d %s, want NUL and 5 hex digits (len 8, as natively)", what, got, n, resultString(res))
		}
	}
	s := newSock(t, unix.SOCK_DGRAM)
	fam := binary.LittleEndian.AppendUint16(nil, unix.AF_UNIX)
	if res := h.call("bind", uint64(s), h.bytes(fam), 2); !same(res, Ok(0)) {
		t.Fatalf("autobind: %s", resultString(res))
	}
	check("bind(addrlen 2)", s)
	before := hostName(t, unix.SYS_GETSOCKNAME, s)
	// Natively a second autobind of a bound socket succeeds and keeps the name.
	if res := h.call("bind", uint64(s), h.bytes(fam), 2); !same(res, Ok(0)) {
		t.Errorf("autobind of a bound socket: %s, want success", resultString(res))
	}
	if after := hostName(t, unix.SYS_GETSOCKNAME, s); !bytes.Equal(before, after) {
		t.Errorf("autobind of a bound socket changed its name: %q -> %q", before, after)
	}

	// SO_PASSCRED: connect and a datagram send bind first.
	l := newSock(t, unix.SOCK_DGRAM)
	raw := abs("pc")
	if res := h.call("bind", uint64(l), h.bytes(raw), uint64(len(raw))); !same(res, Ok(0)) {
		t.Fatal(resultString(res))
	}
	for _, call := range []string{"connect", "sendto"} {
		c := newSock(t, unix.SOCK_DGRAM)
		if err := unix.SetsockoptInt(c, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
			t.Fatal(err)
		}
		var res Result
		if call == "connect" {
			res = h.call("connect", uint64(c), h.bytes(raw), uint64(len(raw)))
		} else {
			res = h.call("sendto", uint64(c), h.bytes([]byte("x")), 1, 0, h.bytes(raw), uint64(len(raw)))
		}
		if res.Kind != Value {
			t.Fatalf("%s: %s", call, resultString(res))
		}
		check(call+" with SO_PASSCRED", c)
		// Without SO_PASSCRED nothing binds.
		c2 := newSock(t, unix.SOCK_DGRAM)
		h.call("connect", uint64(c2), h.bytes(raw), uint64(len(raw)))
		if !unbound(c2) {
			t.Errorf("%s without SO_PASSCRED bound the socket", call)
		}
	}
}

// TestNetAbstractPasscredConnected: SO_PASSCRED on a connected datagram
// socket (a socketpair) makes the kernel bind it at its next send, a
// write(2) kbox never sees: kbox binds it inside the tag space when the
// option is set.
func TestNetAbstractPasscredConnected(t *testing.T) {
	h := newHarness(t)
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	one := h.u32(1)
	if res := h.call("setsockopt", uint64(p[1]), unix.SOL_SOCKET, unix.SO_PASSCRED, one, 4); res.Kind != Continue {
		t.Fatalf("setsockopt: %s, want the kernel to set it", resultString(res))
	}
	if err := unix.SetsockoptInt(p[1], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(p[1], []byte("x")); err != nil {
		t.Fatal(err)
	}
	host := hostName(t, unix.SYS_GETSOCKNAME, p[1])
	if !isAbstract(host) || !strings.HasPrefix(string(host[3:]), string(h.e.abstract.tag)) {
		t.Errorf("after SO_PASSCRED and a write the socket's name is %q, want one in the tag space", host)
	}
	// A stream socketpair never binds at a send: left alone.
	q, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(q[0])
	defer unix.Close(q[1])
	h.call("setsockopt", uint64(q[1]), unix.SOL_SOCKET, unix.SO_PASSCRED, one, 4)
	if !unbound(q[1]) {
		t.Errorf("SO_PASSCRED on a stream socketpair bound it")
	}
}
