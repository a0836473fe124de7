package dispatch

import (
	"bytes"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

// waitingReq is a request of the seccomp tier's kind (it can wait in Go):
// pending reports whether the guest still waits.
func (h *harness) waitingReq(pending *atomic.Bool, name string, args ...uint64) *Request {
	r := h.req(name, args...)
	r.Waiting = func() {}
	r.Pending = pending.Load
	return r
}

func bindAbs(t *testing.T, h *harness, s int, name string) {
	t.Helper()
	raw := abs(name)
	if res := h.call("bind", uint64(s), h.bytes(raw), uint64(len(raw))); !same(res, Ok(0)) {
		t.Fatalf("bind %q: %s", name, resultString(res))
	}
}

// TestNetRecvNames: recvfrom, recvmsg and accept report an AF_UNIX peer's
// abstract name as the guest bound it; other families are left to the
// kernel; the in-process tiers' requests (no Waiting) run natively.
func TestNetRecvNames(t *testing.T) {
	h := newHarness(t)
	var pending atomic.Bool
	pending.Store(true)
	rcv := newSock(t, unix.SOCK_DGRAM)
	bindAbs(t, h, rcv, "rcv")
	snd := newSock(t, unix.SOCK_DGRAM)
	bindAbs(t, h, snd, "snd")
	to, _ := unix.Getsockname(rcv)
	for _, m := range []string{"one", "two"} {
		if err := unix.Sendto(snd, []byte(m), 0, to); err != nil {
			t.Fatal(err)
		}
	}
	buf, name, namelen := h.alloc(16), h.alloc(128), h.u32(128)
	res := h.e.Dispatch(h.waitingReq(&pending, "recvfrom", uint64(rcv), buf, 16, 0, name, namelen))
	if !same(res, Ok(3)) || string(h.read(buf, 3)) != "one" {
		t.Fatalf("recvfrom: %s %q", resultString(res), h.read(buf, 3))
	}
	if n := int(h.readU32(namelen)); n != len(abs("snd")) || !bytes.Equal(h.read(name, n), abs("snd")) {
		t.Errorf("recvfrom's address %q (len %d), want %q", h.read(name, n), n, abs("snd"))
	}
	// recvmsg, two iovecs, a short name buffer: the full length is
	// reported, the copy cut.
	b1, b2 := h.alloc(1), h.alloc(8)
	iov := make([]byte, 32)
	binary.LittleEndian.PutUint64(iov[0:], b1)
	binary.LittleEndian.PutUint64(iov[8:], 1)
	binary.LittleEndian.PutUint64(iov[16:], b2)
	binary.LittleEndian.PutUint64(iov[24:], 8)
	name2 := h.alloc(8)
	mh := make([]byte, abi.SizeofMsghdr)
	binary.LittleEndian.PutUint64(mh[0:], name2)
	binary.LittleEndian.PutUint32(mh[8:], 4)
	binary.LittleEndian.PutUint64(mh[16:], h.bytes(iov))
	binary.LittleEndian.PutUint64(mh[24:], 2)
	mha := h.bytes(mh)
	res = h.e.Dispatch(h.waitingReq(&pending, "recvmsg", uint64(rcv), mha, 0))
	if !same(res, Ok(3)) || string(h.read(b1, 1))+string(h.read(b2, 2)) != "two" {
		t.Fatalf("recvmsg: %s", resultString(res))
	}
	if n := h.readU32(mha + 8); int(n) != len(abs("snd")) || !bytes.Equal(h.read(name2, 4), abs("snd")[:4]) {
		t.Errorf("recvmsg's msg_namelen %d, name %q", n, h.read(name2, 4))
	}

	// accept with an address.
	l := newSock(t, unix.SOCK_STREAM)
	bindAbs(t, h, l, "lst")
	if err := unix.Listen(l, 4); err != nil {
		t.Fatal(err)
	}
	c := newSock(t, unix.SOCK_STREAM)
	bindAbs(t, h, c, "cli")
	lraw := abs("lst")
	if res := h.call("connect", uint64(c), h.bytes(lraw), uint64(len(lraw))); !same(res, Ok(0)) {
		t.Fatal(resultString(res))
	}
	aname, alen := h.alloc(128), h.u32(128)
	res = h.e.Dispatch(h.waitingReq(&pending, "accept4", uint64(l), aname, alen, unix.SOCK_CLOEXEC))
	if res.Kind != Inject || !res.Cloexec {
		t.Fatalf("accept4: %s, want a descriptor to install (close-on-exec)", resultString(res))
	}
	unix.Close(res.FD)
	if n := int(h.readU32(alen)); !bytes.Equal(h.read(aname, n), abs("cli")) {
		t.Errorf("accept's address %q, want %q", h.read(aname, n), abs("cli"))
	}

	// Another family: the kernel's.
	u, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(u)
	if res := h.e.Dispatch(h.waitingReq(&pending, "recvfrom", uint64(u), buf, 16, 0, name, namelen)); res.Kind != Continue {
		t.Errorf("recvfrom on AF_INET: %s, want the kernel to run it", resultString(res))
	}
	// An in-process tier's request: native.
	if res := h.call("recvfrom", uint64(rcv), buf, 16, 0, name, namelen); res.Kind != Continue {
		t.Errorf("in-process recvfrom: %s, want native", resultString(res))
	}
}

// TestNetRecvWaits: a blocking receive waits for data without blocking
// in the kernel, honours SO_RCVTIMEO, and is abandoned when the guest no
// longer waits (nothing is received for it then).
func TestNetRecvWaits(t *testing.T) {
	h := newHarness(t)
	var pending atomic.Bool
	pending.Store(true)
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	buf, name, namelen := h.alloc(16), h.alloc(128), h.u32(128)
	go func() {
		time.Sleep(50 * time.Millisecond)
		unix.Write(p[1], []byte("late"))
	}()
	start := time.Now()
	res := h.e.Dispatch(h.waitingReq(&pending, "recvfrom", uint64(p[0]), buf, 16, 0, name, namelen))
	if !same(res, Ok(4)) || string(h.read(buf, 4)) != "late" || time.Since(start) < 40*time.Millisecond {
		t.Errorf("blocking recvfrom: %s %q after %v", resultString(res), h.read(buf, 4), time.Since(start))
	}
	// An unnamed peer: msg_namelen 0, as natively.
	if n := h.readU32(namelen); n != 0 {
		t.Errorf("namelen %d for an unnamed peer, want 0", n)
	}
	if err := unix.SetsockoptTimeval(p[0], unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 120000}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	res = h.e.Dispatch(h.waitingReq(&pending, "recvfrom", uint64(p[0]), buf, 16, 0, name, namelen))
	if el := time.Since(start); !same(res, Fail(unix.EAGAIN)) || el < 100*time.Millisecond || el > 2*time.Second {
		t.Errorf("recvfrom with SO_RCVTIMEO 120ms: %s after %v, want EAGAIN after ~120ms", resultString(res), el)
	}
	unix.SetsockoptTimeval(p[0], unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{})
	go func() {
		time.Sleep(50 * time.Millisecond)
		pending.Store(false)
	}()
	start = time.Now()
	res = h.e.Dispatch(h.waitingReq(&pending, "recvfrom", uint64(p[0]), buf, 16, 0, name, namelen))
	if res.Kind != Errno || time.Since(start) > 2*time.Second {
		t.Errorf("recvfrom abandoned by the guest: %s after %v", resultString(res), time.Since(start))
	}
	unix.Write(p[1], []byte("kept"))
	if n, _, err := unix.Recvfrom(p[0], make([]byte, 8), unix.MSG_DONTWAIT); err != nil || n != 4 {
		t.Errorf("the datagram sent after the guest gave up was consumed: %d %v", n, err)
	}
}

// TestNetRecvRights: descriptors passed with SCM_RIGHTS reach the guest.
func TestNetRecvRights(t *testing.T) {
	h := newHarness(t)
	var pending atomic.Bool
	pending.Store(true)
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	var pp [2]int
	if err := unix.Pipe2(pp[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w := pp[0], pp[1]
	defer unix.Close(r)
	if err := unix.Sendmsg(p[1], []byte("x"), unix.UnixRights(w), nil, 0); err != nil {
		t.Fatal(err)
	}
	unix.Close(w)
	b := h.alloc(4)
	iov := make([]byte, 16)
	binary.LittleEndian.PutUint64(iov[0:], b)
	binary.LittleEndian.PutUint64(iov[8:], 4)
	ctl := h.alloc(64)
	mh := make([]byte, abi.SizeofMsghdr)
	binary.LittleEndian.PutUint64(mh[16:], h.bytes(iov))
	binary.LittleEndian.PutUint64(mh[24:], 1)
	binary.LittleEndian.PutUint64(mh[32:], ctl)
	binary.LittleEndian.PutUint64(mh[40:], 64)
	mha := h.bytes(mh)
	res := h.e.Dispatch(h.waitingReq(&pending, "recvmsg", uint64(p[0]), mha, 0))
	if !same(res, Ok(1)) {
		t.Fatalf("recvmsg: %s", resultString(res))
	}
	clen := binary.LittleEndian.Uint64(h.read(mha+40, 8))
	msgs, err := unix.ParseSocketControlMessage(h.read(ctl, int(clen)))
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages: %v %v", msgs, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights: %v %v", fds, err)
	}
	defer unix.Close(fds[0])
	if _, err := unix.Write(fds[0], []byte("ok")); err != nil {
		t.Fatalf("the passed descriptor %d: %v", fds[0], err)
	}
	got := make([]byte, 2)
	if n, _ := unix.Read(r, got); n != 2 || string(got) != "ok" {
		t.Errorf("through the passed pipe: %q", got)
	}
}
