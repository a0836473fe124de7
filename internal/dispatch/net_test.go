package dispatch

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

// sockUn is a struct sockaddr_un naming path (NUL-terminated, as
// SUN_LEN counts it).
func sockUn(path string) []byte {
	b := binary.LittleEndian.AppendUint16(nil, unix.AF_UNIX)
	return append(append(b, path...), 0)
}

// newSock returns an AF_UNIX socket of the test (closed at the end).
func newSock(t *testing.T, typ int) int {
	t.Helper()
	s, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(s) })
	return s
}

// nativeAddr runs bind or connect natively with a raw address of addrlen
// bytes (addr may be shorter: the rest is zero).
func nativeAddr(nr uintptr, fd int, addr []byte, addrlen int) error {
	buf := make([]byte, 256)
	copy(buf, addr)
	_, _, en := unix.Syscall(nr, uintptr(fd), ptrOf(buf), uintptr(addrlen))
	keepAlive(buf)
	if en != 0 {
		return en
	}
	return nil
}

// nativeName runs getsockname or getpeername natively with a buffer of
// bufLen bytes; it returns the bytes written and the length reported.
func nativeName(nr uintptr, fd int, bufLen int) ([]byte, int, error) {
	buf := make([]byte, 256)
	n := uint32(bufLen)
	_, _, en := unix.Syscall(nr, uintptr(fd), ptrOf(buf), uintptr(ptrOfU32(&n)))
	keepAlive(buf)
	if en != 0 {
		return nil, 0, en
	}
	return buf[:min(int(n), bufLen)], int(n), nil
}

// guestName runs getsockname or getpeername through the engine with a
// buffer of bufLen bytes.
func (h *harness) guestName(call string, fd int, bufLen int) ([]byte, int, Result) {
	buf := h.alloc(256)
	lenp := h.u32(uint32(bufLen))
	res := h.call(call, uint64(fd), buf, lenp)
	if res.Kind != Value {
		return nil, 0, res
	}
	n := int(h.readU32(lenp))
	return h.read(buf, min(n, bufLen)), n, res
}

func isSocket(p string) bool {
	var st unix.Stat_t
	return unix.Lstat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK
}

// TestNetBind: bind's AF_UNIX path is resolved in the guest namespace
// (the socket appears in the mount the path names, never outside it);
// every other form of address is the kernel's; the errors are the ones
// the same bind gives natively (the native oracle binds the same path in
// a directory laid out like the guest root, from a thread whose working
// directory is that directory).
func TestNetBind(t *testing.T) {
	h := newHarness(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(h.root, "out")); err != nil {
		t.Fatal(err)
	}
	native := t.TempDir()
	populate(t, native)
	long := "/" + strings.Repeat("a", 107) // fills sun_path, no NUL
	for _, c := range []struct {
		name    string
		path    string // sun_path as the guest writes it
		addrlen int    // 0: SUN_LEN
		want    Result // when the native oracle cannot apply
		oracle  bool   // compare with the same bind in native/
		created string // the host path where the socket must appear
	}{
		{name: "absolute", path: "/s", oracle: true, created: h.root + "/s"},
		{name: "relative to the cwd", path: "s2", oracle: true, created: h.root + "/s2"},
		{name: "second mount", path: "/mnt/s", want: Ok(0), created: h.hosts["/mnt"] + "/s"},
		// unix(7): EROFS, the socket inode would reside on a read-only
		// file system.
		{name: "read-only bind", path: "/ro/s", want: Fail(unix.EROFS)},
		{name: "missing directory", path: "/nodir/s", oracle: true},
		{name: "a file as directory", path: "/f/s", oracle: true},
		{name: "existing file", path: "/f", oracle: true},
		{name: "existing directory", path: "/d", oracle: true},
		// ".." at the guest root stays at the root.
		{name: "dot-dot above the root", path: "/../../s3", want: Ok(0), created: h.root + "/s3"},
		// The symlink's host target is a guest path, inside the root,
		// where nothing exists.
		{name: "symlink to a host directory", path: "/out/s", want: Fail(unix.ENOENT)},
		// unix(7) BUGS: Linux appends the NUL a full sun_path lacks.
		{name: "108-byte sun_path without NUL", path: long, addrlen: 110, want: Ok(0), created: h.root + long},
		{name: "addrlen past sockaddr_un", path: "/s4", addrlen: 111, oracle: true},
		{name: "addrlen past sockaddr_storage", path: "/s5", addrlen: 129, oracle: true},
		{name: "autobind (addrlen 2)", path: "", addrlen: 2, oracle: true},
		{name: "abstract", path: "\x00kbox-unit-" + filepath.Base(h.root), oracle: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := sockUn(c.path)
			addrlen := c.addrlen
			if addrlen == 0 {
				addrlen = len(raw)
			}
			if c.path == long {
				raw = raw[:len(raw)-1]
			}
			want := c.want
			if c.oracle {
				ns := newSock(t, unix.SOCK_STREAM)
				switch {
				case strings.HasPrefix(c.path, "/"):
					// The same path under native/, the same addrlen
					// (SUN_LEN of the native path when the guest's is).
					nraw := sockUn(native + c.path)
					nlen := c.addrlen
					if nlen == 0 {
						nlen = len(nraw)
					}
					want = ret(0, nativeAddr(unix.SYS_BIND, ns, nraw, nlen))
				case c.path != "" && c.path[0] != 0:
					// A relative name: bound from native/ as the cwd.
					var err error
					inDir(t, native, func() { err = nativeAddr(unix.SYS_BIND, ns, raw, addrlen) })
					want = ret(0, err)
				default:
					// Abstract and autobind: the same call on a name of
					// its own (an abstract name is unique host-wide).
					nraw := append([]byte(nil), raw...)
					if len(nraw) > 3 {
						nraw[len(nraw)-2] = 'N'
					}
					want = ret(0, nativeAddr(unix.SYS_BIND, ns, nraw, addrlen))
				}
			}
			s := newSock(t, unix.SOCK_STREAM)
			a := h.bytes(append(raw, make([]byte, 256)...))
			expect(t, "bind "+c.name, h.call("bind", uint64(s), a, uint64(addrlen)), want)
			if c.created != "" && !isSocket(c.created) {
				t.Errorf("no socket at %s", c.created)
			}
		})
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("bind created %v outside the guest's mounts", ents)
	}
	if isSocket(filepath.Join(filepath.Dir(h.root), "s3")) {
		t.Error("bind of /../../s3 created a socket above the root")
	}
}

// TestNetAddrOrder: the kernel looks the socket up before it reads the
// address (EBADF, then ENOTSOCK, then EFAULT) and reads an AF_UNIX path
// only for an AF_UNIX socket; the native oracle runs the same calls.
func TestNetAddrOrder(t *testing.T) {
	h := newHarness(t)
	file := h.open(h.root+"/f", unix.O_RDONLY)
	inet, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(inet)
	unixSock := newSock(t, unix.SOCK_STREAM)
	good := sockUn("f") // the guest's existing file: EADDRINUSE for bind, ECONNREFUSED for connect
	for _, nr := range []uintptr{unix.SYS_BIND, unix.SYS_CONNECT} {
		call := "bind"
		if nr == unix.SYS_CONNECT {
			call = "connect"
		}
		for _, c := range []struct {
			name string
			fd   int
			bad  bool
		}{
			{"bad descriptor, bad pointer", -1, true},
			{"bad descriptor", -1, false},
			{"not a socket, bad pointer", file, true},
			{"not a socket", file, false},
			{"AF_INET socket", inet, false},
			{"AF_UNIX socket, bad pointer", unixSock, true},
		} {
			// Natively the same bytes (a relative name, resolved in the
			// test's cwd if at all: no AF_UNIX socket is bound here).
			var want Result
			if c.bad {
				_, _, en := unix.Syscall(nr, uintptr(c.fd), badAddr, uintptr(len(good)))
				want = ret(0, errnoOrNil(en))
			} else {
				want = ret(0, nativeAddr(nr, c.fd, good, len(good)))
			}
			addr := uint64(badAddr)
			if !c.bad {
				addr = h.bytes(good)
			}
			expect(t, call+": "+c.name, h.call(call, g64(c.fd), addr, uint64(len(good))), want)
		}
	}
}

func errnoOrNil(en unix.Errno) error {
	if en == 0 {
		return nil
	}
	return en
}

// TestNetConnect: a path is resolved in the guest; only a socket can be
// connected to; a socket outside the guest's mounts is not reachable.
func TestNetConnect(t *testing.T) {
	h := newHarness(t)
	listen := func(p string) {
		t.Helper()
		l := newSock(t, unix.SOCK_STREAM)
		if err := unix.Bind(l, &unix.SockaddrUnix{Name: p}); err != nil {
			t.Fatal(err)
		}
		if err := unix.Listen(l, 8); err != nil {
			t.Fatal(err)
		}
	}
	listen(h.root + "/s")
	listen(h.hosts["/mnt"] + "/s")
	outside := t.TempDir()
	listen(outside + "/s")
	if err := os.Symlink(outside, filepath.Join(h.root, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("s", filepath.Join(h.root, "slink")); err != nil {
		t.Fatal(err)
	}
	native := t.TempDir()
	populate(t, native)
	for _, c := range []struct {
		name   string
		path   string
		oracle string // the native path of the same object, or ""
		want   Result
	}{
		{"socket", "/s", h.root + "/s", Result{}},
		{"socket on the second mount", "/mnt/s", h.hosts["/mnt"] + "/s", Result{}},
		{"symlink to a socket", "/slink", h.root + "/slink", Result{}},
		{"regular file", "/f", native + "/f", Result{}},
		{"directory", "/d", native + "/d", Result{}},
		{"missing", "/nope", native + "/nope", Result{}},
		{"socket through a symlink to a host directory", "/out/s", "", Fail(unix.ENOENT)},
		{"dot-dot above the root", "/../" + filepath.Base(outside) + "/s", "", Fail(unix.ENOENT)},
	} {
		want := c.want
		if c.oracle != "" {
			want = ret(0, nativeAddr(unix.SYS_CONNECT, newSock(t, unix.SOCK_STREAM), sockUn(c.oracle), len(sockUn(c.oracle))))
		}
		s := newSock(t, unix.SOCK_STREAM)
		raw := sockUn(c.path)
		expect(t, "connect "+c.name, h.call("connect", uint64(s), h.bytes(raw), uint64(len(raw))), want)
	}
}

// TestNetNames: getsockname and getpeername answer with the address the
// guest gave, as Linux answers with the sun_path given to bind (never
// the host path kbox bound), truncated to the caller's buffer with the
// full length reported.
func TestNetNames(t *testing.T) {
	h := newHarness(t)
	// The native oracle: Linux reports a bound path as given, with
	// addrlen = offsetof(sun_path) + strlen + 1.
	native := t.TempDir()
	ns := newSock(t, unix.SOCK_STREAM)
	if err := unix.Bind(ns, &unix.SockaddrUnix{Name: native + "/n"}); err != nil {
		t.Fatal(err)
	}
	if got, n, err := nativeName(unix.SYS_GETSOCKNAME, ns, 128); err != nil || n != len(sockUn(native+"/n")) || !bytes.Equal(got, sockUn(native+"/n")) {
		t.Fatalf("native getsockname: %q %d %v", got, n, err)
	}
	var rel []byte
	var relLen int
	inDir(t, native, func() {
		s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return
		}
		defer unix.Close(s)
		if nativeAddr(unix.SYS_BIND, s, sockUn("rel"), len(sockUn("rel"))) == nil {
			rel, relLen, _ = nativeName(unix.SYS_GETSOCKNAME, s, 128)
		}
	})
	if relLen != len(sockUn("rel")) || !bytes.Equal(rel, sockUn("rel")) {
		t.Fatalf("native getsockname after a relative bind: %q %d", rel, relLen)
	}
	_, shortLen, _ := nativeName(unix.SYS_GETSOCKNAME, ns, 3)

	bindAt := func(p string, listen bool) int {
		t.Helper()
		s := newSock(t, unix.SOCK_STREAM)
		raw := sockUn(p)
		if res := h.call("bind", uint64(s), h.bytes(raw), uint64(len(raw))); !same(res, Ok(0)) {
			t.Fatalf("bind %s: %s", p, resultString(res))
		}
		if listen {
			if err := unix.Listen(s, 8); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	l := bindAt("/srv", true)
	r := bindAt("rel", false)
	ml := bindAt("/mnt/msrv", true)
	c := newSock(t, unix.SOCK_STREAM)
	raw := sockUn("/srv")
	expect(t, "connect /srv", h.call("connect", uint64(c), h.bytes(raw), uint64(len(raw))), Ok(0))
	a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(a)
	c2 := newSock(t, unix.SOCK_STREAM)
	raw = sockUn("/mnt/msrv")
	expect(t, "connect /mnt/msrv", h.call("connect", uint64(c2), h.bytes(raw), uint64(len(raw))), Ok(0))
	if err := unix.Listen(r, 8); err != nil {
		t.Fatal(err)
	}
	c3 := newSock(t, unix.SOCK_STREAM)
	raw = sockUn("/rel")
	expect(t, "connect /rel", h.call("connect", uint64(c3), h.bytes(raw), uint64(len(raw))), Ok(0))
	unconnected := newSock(t, unix.SOCK_STREAM)

	for _, x := range []struct {
		name, call string
		fd         int
		want       []byte
	}{
		{"bound listener", "getsockname", l, sockUn("/srv")},
		{"relative bind", "getsockname", r, sockUn("rel")},
		{"listener on the second mount", "getsockname", ml, sockUn("/mnt/msrv")},
		{"connected client's peer", "getpeername", c, sockUn("/srv")},
		{"second mount client's peer", "getpeername", c2, sockUn("/mnt/msrv")},
		// The peer's name is the one it was bound with, as given.
		{"peer bound by a relative name", "getpeername", c3, sockUn("rel")},
		// An accepted socket has its listener's name.
		{"accepted socket", "getsockname", a, sockUn("/srv")},
		// The client is unbound: sa_family only.
		{"accepted socket's peer", "getpeername", a, binary.LittleEndian.AppendUint16(nil, unix.AF_UNIX)},
		{"unbound socket", "getsockname", unconnected, binary.LittleEndian.AppendUint16(nil, unix.AF_UNIX)},
	} {
		got, n, res := h.guestName(x.call, x.fd, 128)
		if res.Kind != Value || n != len(x.want) || !bytes.Equal(got, x.want) {
			t.Errorf("%s %s: %q (length %d, %s), want %q (length %d)", x.call, x.name, got, n, resultString(res), x.want, len(x.want))
		}
	}
	// A short buffer: truncated, the full length reported, as natively.
	if shortLen != len(sockUn(native+"/n")) {
		t.Fatalf("native getsockname with 3 bytes reports %d", shortLen)
	}
	if got, n, res := h.guestName("getsockname", l, 3); res.Kind != Value || n != len(sockUn("/srv")) || !bytes.Equal(got, sockUn("/srv")[:3]) {
		t.Errorf("getsockname with 3 bytes: %q, length %d, %s", got, n, resultString(res))
	}
	_, _, en := nativeName(unix.SYS_GETPEERNAME, unconnected, 128)
	expect(t, "getpeername unconnected", h.call("getpeername", uint64(unconnected), h.alloc(128), h.u32(128)), ret(0, en))
	// move_addr_to_user: a negative length is EINVAL.
	expect(t, "getsockname negative length", h.call("getsockname", uint64(l), h.alloc(128), h.u32(^uint32(0))), Fail(unix.EINVAL))
	expect(t, "getsockname bad buffer", h.call("getsockname", uint64(l), badAddr, h.u32(128)), Fail(unix.EFAULT))
	expect(t, "getsockname bad length pointer", h.call("getsockname", uint64(l), h.alloc(128), badAddr), Fail(unix.EFAULT))
	// move_addr_to_user copies nothing for a length of 0: the buffer is
	// not touched, the length is set.
	lenp := h.u32(0)
	expect(t, "getsockname length 0, bad buffer", h.call("getsockname", uint64(l), badAddr, lenp), Ok(0))
	if n := h.readU32(lenp); n != uint32(len(sockUn("/srv"))) {
		t.Errorf("getsockname length 0 reports %d, want %d", n, len(sockUn("/srv")))
	}
	// The socket is looked up first: EBADF whatever the pointers.
	_, _, en = unix.Syscall(unix.SYS_GETSOCKNAME, ^uintptr(0), badAddr, badAddr)
	expect(t, "getsockname bad descriptor", h.call("getsockname", g64(-1), badAddr, badAddr), Fail(en))
}

// TestNetSend: sendto and sendmsg deliver to a path resolved in the
// guest, and SCM_RIGHTS carries the guest's descriptors (the receiver
// gets the same open file).
func TestNetSend(t *testing.T) {
	h := newHarness(t)
	recv := newSock(t, unix.SOCK_DGRAM)
	if err := unix.Bind(recv, &unix.SockaddrUnix{Name: h.root + "/r"}); err != nil {
		t.Fatal(err)
	}
	s := newSock(t, unix.SOCK_DGRAM)
	data := h.bytes([]byte("ping"))
	to := sockUn("/r")
	expect(t, "sendto /r", h.call("sendto", uint64(s), data, 4, unix.MSG_DONTWAIT, h.bytes(to), uint64(len(to))), Ok(4))
	buf := make([]byte, 16)
	if n, _, err := unix.Recvfrom(recv, buf, unix.MSG_DONTWAIT); err != nil || string(buf[:n]) != "ping" {
		t.Errorf("received %q, %v; want ping", buf[:n], err)
	}
	native := t.TempDir()
	populate(t, native)
	for _, c := range []struct{ name, path string }{{"missing", "/nope"}, {"file", "/f"}} {
		err := unix.Sendto(s, []byte("x"), unix.MSG_DONTWAIT, &unix.SockaddrUnix{Name: native + c.path})
		to := sockUn(c.path)
		expect(t, "sendto "+c.name, h.call("sendto", uint64(s), data, 4, unix.MSG_DONTWAIT, h.bytes(to), uint64(len(to))), ret(4, err))
	}
	expect(t, "sendto bad data", h.call("sendto", uint64(s), badAddr, 4, unix.MSG_DONTWAIT, h.bytes(to), uint64(len(to))), Fail(unix.EFAULT))
	expect(t, "sendto bad address", h.call("sendto", uint64(s), data, 4, unix.MSG_DONTWAIT, badAddr, uint64(len(to))), Fail(unix.EFAULT))

	// sendmsg with a name and SCM_RIGHTS for a pipe's write end.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	msg := func(name []byte, fds ...int) uint64 {
		iov := binary.LittleEndian.AppendUint64(nil, h.bytes([]byte("msg")))
		iov = binary.LittleEndian.AppendUint64(iov, 3)
		ctl := unix.UnixRights(fds...)
		hdr := make([]byte, abi.SizeofMsghdr)
		if name != nil {
			binary.LittleEndian.PutUint64(hdr[0:], h.bytes(name))
			binary.LittleEndian.PutUint32(hdr[8:], uint32(len(name)))
		}
		binary.LittleEndian.PutUint64(hdr[16:], h.bytes(iov))
		binary.LittleEndian.PutUint64(hdr[24:], 1)
		if len(fds) > 0 {
			binary.LittleEndian.PutUint64(hdr[32:], h.bytes(ctl))
			binary.LittleEndian.PutUint64(hdr[40:], uint64(len(ctl)))
		}
		return h.bytes(hdr)
	}
	expect(t, "sendmsg SCM_RIGHTS", h.call("sendmsg", uint64(s), msg(to, p[1]), unix.MSG_DONTWAIT), Ok(3))
	oob := make([]byte, 64)
	n, oobn, _, _, err := unix.Recvmsg(recv, buf, oob, unix.MSG_DONTWAIT)
	if err != nil || string(buf[:n]) != "msg" {
		t.Fatalf("recvmsg: %q %v", buf[:n], err)
	}
	cms, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(cms) != 1 {
		t.Fatalf("control messages: %v %v", cms, err)
	}
	fds, err := unix.ParseUnixRights(&cms[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights: %v %v", fds, err)
	}
	unix.Write(fds[0], []byte("via"))
	unix.Close(fds[0])
	if n, err := unix.Read(p[0], buf); err != nil || string(buf[:n]) != "via" {
		t.Errorf("the passed descriptor is not the pipe: %q %v", buf[:n], err)
	}
	// A descriptor the guest does not have: EBADF, as natively.
	err = unix.Sendmsg(s, []byte("x"), unix.UnixRights(1<<20), &unix.SockaddrUnix{Name: h.root + "/r"}, unix.MSG_DONTWAIT)
	expect(t, "sendmsg SCM_RIGHTS bad descriptor", h.call("sendmsg", uint64(s), msg(to, 1<<20), unix.MSG_DONTWAIT), ret(0, err))
	expect(t, "sendmsg bad msghdr", h.call("sendmsg", uint64(s), badAddr, unix.MSG_DONTWAIT), Fail(unix.EFAULT))
	nope := sockUn("/nope")
	expect(t, "sendmsg to a missing path", h.call("sendmsg", uint64(s), msg(nope), unix.MSG_DONTWAIT), Fail(unix.ENOENT))
	for {
		if _, _, err := unix.Recvfrom(recv, buf, unix.MSG_DONTWAIT); err != nil {
			break
		}
	}
	if _, err := os.Stat(native + "/nope"); err == nil {
		t.Error("a send created a file")
	}
}

// TestNetAcceptedSameName: two listeners bound under the same final name
// in different directories; each accepted socket's getsockname is its
// own listener's name (the kernel reports the bare name kbox bound).
func TestNetAcceptedSameName(t *testing.T) {
	if !unixDiagWorks(t) {
		t.Skip("the kernel answers no AF_UNIX sock_diag request (CONFIG_UNIX_DIAG off or its module not loadable): kbox then names an accepted socket by its listener's bare name, which two listeners can share (docs/architecture.md)")
	}
	h := newHarness(t)
	var accepted []int
	for _, p := range []string{"/srv", "/mnt/srv"} {
		l := newSock(t, unix.SOCK_STREAM)
		raw := sockUn(p)
		expect(t, "bind "+p, h.call("bind", uint64(l), h.bytes(raw), uint64(len(raw))), Ok(0))
		if err := unix.Listen(l, 8); err != nil {
			t.Fatal(err)
		}
		c := newSock(t, unix.SOCK_STREAM)
		expect(t, "connect "+p, h.call("connect", uint64(c), h.bytes(raw), uint64(len(raw))), Ok(0))
		a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(a) })
		accepted = append(accepted, a)
	}
	for i, p := range []string{"/srv", "/mnt/srv"} {
		if got, _, _ := h.guestName("getsockname", accepted[i], 128); !bytes.Equal(got, sockUn(p)) {
			t.Errorf("accepted from %s: getsockname %q", p, got)
		}
	}
}

// TestNetSendmmsg: sendmmsg(2) sends up to vlen messages, each to its
// own (guest-resolved) address, writes each one's msg_len, and "if an
// error occurs after at least one message has been sent, the call
// succeeds, and returns the number of messages sent".
func TestNetSendmmsg(t *testing.T) {
	h := newHarness(t)
	recv := newSock(t, unix.SOCK_DGRAM)
	if err := unix.Bind(recv, &unix.SockaddrUnix{Name: h.root + "/r"}); err != nil {
		t.Fatal(err)
	}
	s := newSock(t, unix.SOCK_DGRAM)
	to := sockUn("/r")
	entry := func(data []byte, name []byte) []byte {
		e := make([]byte, mmsghdrSize)
		iov := binary.LittleEndian.AppendUint64(nil, badAddr)
		if data != nil {
			iov = binary.LittleEndian.AppendUint64(nil, h.bytes(data))
		}
		iov = binary.LittleEndian.AppendUint64(iov, max(uint64(len(data)), 1))
		binary.LittleEndian.PutUint64(e[0:], h.bytes(name))
		binary.LittleEndian.PutUint32(e[8:], uint32(len(name)))
		binary.LittleEndian.PutUint64(e[16:], h.bytes(iov))
		binary.LittleEndian.PutUint64(e[24:], 1)
		return e
	}
	vec := h.bytes(append(entry([]byte("one"), to), entry([]byte("three"), to)...))
	expect(t, "sendmmsg two", h.call("sendmmsg", uint64(s), vec, 2, unix.MSG_DONTWAIT), Ok(2))
	if a, b := h.readU32(vec+abi.SizeofMsghdr), h.readU32(vec+mmsghdrSize+abi.SizeofMsghdr); a != 3 || b != 5 {
		t.Errorf("msg_len %d, %d; want 3, 5", a, b)
	}
	buf := make([]byte, 16)
	for _, want := range []string{"one", "three"} {
		if n, _, err := unix.Recvfrom(recv, buf, unix.MSG_DONTWAIT); err != nil || string(buf[:n]) != want {
			t.Errorf("received %q %v, want %q", buf[:n], err, want)
		}
	}
	partial := h.bytes(append(entry([]byte("ok"), to), entry(nil, to)...))
	expect(t, "sendmmsg, the second fails", h.call("sendmmsg", uint64(s), partial, 2, unix.MSG_DONTWAIT), Ok(1))
	missing := h.bytes(append(entry([]byte("ok"), sockUn("/nope")), entry([]byte("ok"), to)...))
	expect(t, "sendmmsg, the first fails", h.call("sendmmsg", uint64(s), missing, 2, unix.MSG_DONTWAIT), Fail(unix.ENOENT))
	expect(t, "sendmmsg vlen 0", h.call("sendmmsg", uint64(s), vec, 0, unix.MSG_DONTWAIT), Ok(0))
	expect(t, "sendmmsg bad vector", h.call("sendmmsg", uint64(s), badAddr, 2, unix.MSG_DONTWAIT), Fail(unix.EFAULT))
	expect(t, "sendmmsg bad descriptor", h.call("sendmmsg", g64(-1), vec, 2, unix.MSG_DONTWAIT), Fail(unix.EBADF))
}

// unixDiagWorks reports whether boundFile gets an answer here: the kernel
// has AF_UNIX sock_diag (built in, or a module it can load).
func unixDiagWorks(t *testing.T) bool {
	dir := t.TempDir()
	s := newSock(t, unix.SOCK_STREAM)
	if err := unix.Bind(s, &unix.SockaddrUnix{Name: dir + "/probe"}); err != nil {
		t.Fatal(err)
	}
	_, found := boundFile(s)
	return found
}
