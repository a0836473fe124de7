package dispatch

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

func TestClampSize(t *testing.T) {
	for _, c := range []struct {
		v    uint64
		want int
	}{{0, 0}, {1, 1}, {65536, 65536}, {65537, 65536}, {1 << 63, 65536}, {math.MaxUint64, 65536}, {1<<63 - 1, 65536}} {
		if got := clampSize(c.v, 65536); got != c.want {
			t.Errorf("clampSize(%#x) = %d, want %d", c.v, got, c.want)
		}
	}
}

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		off, n, total uint64
		want          bool
	}{{0, 0, 0, true}, {0, 64, 64, true}, {16, 48, 64, true}, {16, 49, 64, false}, {65, 0, 64, false},
		{16, math.MaxInt64 - 7, 64, false}, {16, math.MaxUint64 - 8, 64, false}, {math.MaxUint64, 2, 64, false}} {
		if got := within(c.off, c.n, c.total); got != c.want {
			t.Errorf("within(%#x, %#x, %d) = %v, want %v", c.off, c.n, c.total, got, c.want)
		}
	}
}

// TestHostileSizes passes every size a handler reads from the guest at
// its extremes (2^63 and 2^64-1 become negative ints; 2^32 truncates), and
// checks the kernel's own answer for each: nothing panics, nothing
// allocates what the guest asked for.
func TestHostileSizes(t *testing.T) {
	e, log, req := testEngine(t)
	mem := req("getcwd").Mem.(*fakeMem)
	path := mem.put(0, []byte("/f\x00"))
	name := mem.put(16, []byte("user.none\x00"))
	buf := mem.base + 4096
	huge := []uint64{1 << 63, math.MaxUint64, 1<<63 + 1, 1 << 32, math.MaxInt64}
	for _, size := range huge {
		for _, c := range []struct {
			call string
			r    *Request
			want Result
		}{
			// The kernel clamps the buffer size of getxattr/listxattr.
			{"getxattr", req("getxattr", path, name, buf, size), Fail(unix.ENODATA)},
			{"lgetxattr", req("lgetxattr", path, name, buf, size), Fail(unix.ENODATA)},
			{"setxattr", req("setxattr", path, name, buf, size, 0), Fail(unix.E2BIG)},
			{"openat2", req("openat2", uint64(atFDCWD&0xffffffff), path, buf, size), Fail(unix.E2BIG)},
		} {
			if got := e.Dispatch(c.r); !same(got, c.want) {
				t.Errorf("%s size %#x: %+v, want %+v", c.call, size, got, c.want)
			}
		}
		for _, call := range []string{"listxattr", "llistxattr"} {
			if got := e.Dispatch(req(call, path, buf, size)); got.Kind != Value && !same(got, Fail(unix.EOPNOTSUPP)) {
				t.Errorf("%s size %#x: %+v, want a length", call, size, got)
			}
		}
		if got := e.Dispatch(req("getcwd", buf, size)); !same(got, Ok(2)) {
			t.Errorf("getcwd size %#x: %+v, want 2", size, got)
		}
	}
	if got := e.Dispatch(req("openat2", uint64(atFDCWD&0xffffffff), path, buf, 23)); !same(got, Fail(unix.EINVAL)) {
		t.Errorf("openat2 size 23: %+v, want EINVAL", got)
	}
	if got := e.Dispatch(req("openat2", uint64(atFDCWD&0xffffffff), path, buf, 4097)); !same(got, Fail(unix.E2BIG)) {
		t.Errorf("openat2 size 4097: %+v, want E2BIG", got)
	}
	if e.InternalErrors() != 0 {
		t.Errorf("%d internal errors:\n%s", e.InternalErrors(), log)
	}
}

// cmsgMsg lays out a msghdr in mem whose control buffer holds ctl.
func cmsgMsg(mem *fakeMem, ctl []byte, iovlen, ctllen uint64) uint64 {
	ctlAddr := mem.put(1024, ctl)
	iov := make([]byte, 16)
	binary.LittleEndian.PutUint64(iov, mem.put(2048, []byte("x")))
	binary.LittleEndian.PutUint64(iov[8:], 1)
	iovAddr := mem.put(3072, iov)
	h := make([]byte, abi.SizeofMsghdr)
	binary.LittleEndian.PutUint64(h[16:], iovAddr)
	binary.LittleEndian.PutUint64(h[24:], iovlen)
	binary.LittleEndian.PutUint64(h[32:], ctlAddr)
	binary.LittleEndian.PutUint64(h[40:], ctllen)
	return mem.put(512, h)
}

// TestHostileMsghdr: cmsg_len near INT64_MAX (the sum with the offset
// wraps), past the buffer or below the header is EINVAL, as the kernel's
// CMSG_OK; iovlen and controllen beyond the kernel's limits are EMSGSIZE
// and ENOBUFS.
func TestHostileMsghdr(t *testing.T) {
	e, log, req := testEngine(t)
	sv, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sv[0])
	defer unix.Close(sv[1])
	mem := req("sendmsg").Mem.(*fakeMem)
	for _, clen := range []uint64{math.MaxInt64, math.MaxInt64 - 7, math.MaxInt64 - 15, 1 << 63, math.MaxUint64, 65, 8, 0} {
		for _, second := range []bool{false, true} {
			ctl := make([]byte, 64)
			off := 0
			if second {
				// A valid SCM_RIGHTS message first, so the hostile one
				// sits at a non-zero offset.
				binary.LittleEndian.PutUint64(ctl, 20)
				binary.LittleEndian.PutUint32(ctl[8:], unix.SOL_SOCKET)
				binary.LittleEndian.PutUint32(ctl[12:], unix.SCM_RIGHTS)
				binary.LittleEndian.PutUint32(ctl[16:], uint32(sv[1]))
				off = 24
			}
			binary.LittleEndian.PutUint64(ctl[off:], clen)
			binary.LittleEndian.PutUint32(ctl[off+8:], unix.SOL_SOCKET)
			binary.LittleEndian.PutUint32(ctl[off+12:], 99)
			msg := cmsgMsg(mem, ctl, 1, 64)
			if got := e.Dispatch(req("sendmsg", uint64(sv[0]), msg, unix.MSG_DONTWAIT)); !same(got, Fail(unix.EINVAL)) {
				t.Errorf("cmsg_len %#x at offset %d: %+v, want EINVAL", clen, off, got)
			}
		}
	}
	for _, c := range []struct {
		iovlen, ctllen uint64
		want           Result
	}{
		{1025, 0, Fail(unix.EMSGSIZE)}, {1 << 63, 0, Fail(unix.EMSGSIZE)}, {math.MaxUint64, 0, Fail(unix.EMSGSIZE)},
		{1, 1 << 63, Fail(unix.ENOBUFS)}, {1, math.MaxUint64, Fail(unix.ENOBUFS)},
	} {
		msg := cmsgMsg(mem, make([]byte, 64), c.iovlen, c.ctllen)
		if got := e.Dispatch(req("sendmsg", uint64(sv[0]), msg, unix.MSG_DONTWAIT)); !same(got, c.want) {
			t.Errorf("iovlen %#x controllen %#x: %+v, want %+v", c.iovlen, c.ctllen, got, c.want)
		}
	}
	if e.InternalErrors() != 0 {
		t.Errorf("%d internal errors:\n%s", e.InternalErrors(), log)
	}
}

// TestDispatchRecovers: a handler that panics fails its call with EIO,
// is counted and named in a warning, and the engine serves on.
func TestDispatchRecovers(t *testing.T) {
	e, log, req := testEngine(t)
	nr := e.arch.MustNr("getcwd")
	saved := e.handlers[nr]
	e.handlers[nr] = func(e *Engine, r *Request) Result {
		b := make([]byte, 8)
		return Ok(int64(b[r.Args[0]])) // index out of range: a runtime panic
	}
	for i := 0; i < internalErrorWarnMax+3; i++ {
		if got := e.Dispatch(req("getcwd", 1<<63)); !same(got, Fail(unix.EIO)) {
			t.Fatalf("a panicking handler: %+v, want EIO", got)
		}
	}
	if got := e.InternalErrors(); got != internalErrorWarnMax+3 {
		t.Errorf("InternalErrors() = %d, want %d", got, internalErrorWarnMax+3)
	}
	if n := strings.Count(log.String(), "internal error serving getcwd"); n != internalErrorWarnMax {
		t.Errorf("%d warnings, want %d (bounded):\n%s", n, internalErrorWarnMax, log)
	}
	e.handlers[nr] = saved
	mem := req("getcwd").Mem.(*fakeMem)
	if got := e.Dispatch(req("getcwd", mem.base, 100)); !same(got, Ok(2)) {
		t.Errorf("getcwd after the recovered panics: %+v, want 2", got)
	}
}
