package dispatch

import (
	"encoding/binary"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

type dirent struct {
	name string
	typ  uint8
}

// parseDirents decodes a getdents64 (is64) or legacy getdents buffer.
func parseDirents(t *testing.T, b []byte, is64 bool) []dirent {
	t.Helper()
	var out []dirent
	for off := 0; off < len(b); {
		if off+19 > len(b) {
			t.Fatalf("truncated record at %d of %d", off, len(b))
		}
		reclen := int(binary.LittleEndian.Uint16(b[off+16:]))
		if reclen < 19 || off+reclen > len(b) {
			t.Fatalf("bad reclen %d at %d of %d", reclen, off, len(b))
		}
		rec := b[off : off+reclen]
		var name []byte
		var typ uint8
		if is64 {
			name, typ = rec[19:], rec[18]
		} else {
			name, typ = rec[18:reclen-1], rec[reclen-1]
		}
		if i := slices.Index(name, 0); i >= 0 {
			name = name[:i]
		}
		out = append(out, dirent{string(name), typ})
		off += reclen
	}
	return out
}

// listGuest lists guest descriptor fd with the engine, count bytes per
// call, until the end; it fails the test on anything but entries.
func (h *harness) listGuest(call string, fd, count int) []dirent {
	h.t.Helper()
	buf := h.alloc(count)
	var out []dirent
	for i := 0; ; i++ {
		if i > 10000 {
			h.t.Fatal("the listing does not end")
		}
		res := h.call(call, uint64(fd), buf, uint64(count))
		if res.Kind == Continue {
			// The kernel's own answer, on the guest's descriptor.
			b := make([]byte, count)
			n, err := rawGetdents(fd, b, call == "getdents64")
			if err != nil {
				h.t.Fatalf("%s continued: %v", call, err)
			}
			res = Ok(int64(n))
			h.mem.Write(buf, b[:n])
		}
		if res.Kind != Value {
			h.t.Fatalf("%s: %s", call, resultString(res))
		}
		if res.Val == 0 {
			return out
		}
		out = append(out, parseDirents(h.t, h.read(buf, int(res.Val)), call == "getdents64")...)
	}
}

// listNative lists a host directory with raw getdents64.
func listNative(t *testing.T, p string) []dirent {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var out []dirent
	b := make([]byte, 1<<16)
	for {
		n, err := rawGetdents(fd, b, true)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return out
		}
		out = append(out, parseDirents(t, b[:n], true)...)
	}
}

func getdentsCalls() []string {
	if runtime.GOARCH == "amd64" {
		return []string{"getdents64", "getdents"}
	}
	return []string{"getdents64"}
}

// isDescendant reports whether pid is self or a descendant of self.
func isDescendant(pid, self int) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		if pid == self {
			return true
		}
		pid = readStatus(pid).ppid
	}
	return pid == self
}

// TestGetdentsProc: a listing of a procfs root shows only the guest's
// processes (here the test process, the guest's only one, and any child
// of it), and every other entry the native listing has; whatever the
// buffer size, in both entry formats.
func TestGetdentsProc(t *testing.T) {
	h := newHarness(t, withProc())
	self := os.Getpid()
	native := listNative(t, "/proc")
	others := 0
	var named []string
	for _, d := range native {
		if pid, err := strconv.Atoi(d.name); err != nil {
			named = append(named, d.name)
		} else if !isDescendant(pid, self) {
			others++
		}
	}
	if others == 0 {
		t.Skip("no process outside the test's own in /proc: nothing to hide")
	}
	for _, call := range getdentsCalls() {
		counts := []int{1 << 16, 512}
		if call == "getdents64" {
			counts = append(counts, 64) // one entry a call, mostly of other processes
		}
		for _, count := range counts {
			fd := h.open("/proc", unix.O_RDONLY|unix.O_DIRECTORY)
			var pids, names []string
			for _, d := range h.listGuest(call, fd, count) {
				if pid, err := strconv.Atoi(d.name); err != nil {
					names = append(names, d.name)
				} else {
					pids = append(pids, d.name)
					if !isDescendant(pid, self) {
						t.Errorf("%s (%d bytes): lists process %d, not the guest's", call, count, pid)
					}
				}
			}
			if !slices.Contains(pids, strconv.Itoa(self)) {
				t.Errorf("%s (%d bytes): the guest's own process is missing", call, count)
			}
			if !slices.Equal(names, named) {
				t.Errorf("%s (%d bytes): named entries %v, natively %v", call, count, names, named)
			}
		}
	}
	// The kernel's errors: a buffer too small for any entry, a bad one.
	fd := h.open("/proc", unix.O_RDONLY|unix.O_DIRECTORY)
	nfd := h.open("/proc", unix.O_RDONLY|unix.O_DIRECTORY)
	for _, c := range []struct {
		what  string
		buf   uint64
		count int
	}{{"count 0", h.alloc(8), 0}, {"count 8", h.alloc(8), 8}, {"bad buffer", badAddr, 4096}} {
		b := make([]byte, max(c.count, 1))
		bufp := ptrOf(b)
		if c.buf == badAddr {
			bufp = badAddr
		}
		n, _, en := unix.Syscall(unix.SYS_GETDENTS64, uintptr(nfd), bufp, uintptr(c.count))
		keepAlive(b)
		expect(t, "getdents64 /proc "+c.what, h.call("getdents64", uint64(fd), c.buf, uint64(c.count)), ret(int64(n), errnoOrNil(en)))
	}
	expect(t, "getdents64 bad descriptor", h.call("getdents64", g64(-1), h.alloc(64), 64), Fail(unix.EBADF))
}

// TestGetdentsOther: any other directory is the kernel's (continued
// unchanged), but for a directory holding a file bind's placeholder,
// whose entry gets the type of what the guest reaches there.
func TestGetdentsOther(t *testing.T) {
	h := newHarness(t, withProc())
	for _, p := range []string{h.root, h.root + "/d", h.hosts["/ro"], "/proc/self", "/proc/self/fd"} {
		fd := h.open(p, unix.O_RDONLY|unix.O_DIRECTORY)
		for _, call := range getdentsCalls() {
			expect(t, call+" "+p, h.call(call, uint64(fd), h.alloc(4096), 4096), Cont())
		}
	}
	for _, call := range getdentsCalls() {
		fd := h.open(h.hosts["/mnt"], unix.O_RDONLY|unix.O_DIRECTORY)
		got := h.listGuest(call, fd, 4096)
		want := listNative(t, h.hosts["/mnt"])
		for i := range want {
			if want[i].name == "null" {
				want[i].typ = unix.DT_CHR
			}
		}
		slices.SortFunc(got, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
		slices.SortFunc(want, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
		if !slices.Equal(got, want) {
			t.Errorf("%s of /mnt: %v, want %v", call, got, want)
		}
	}
}
