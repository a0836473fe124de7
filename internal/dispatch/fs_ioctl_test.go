package dispatch

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// separateMem is fakeMem as a separate guest process's (the seccomp
// tier's ProcessAccess): kbox then cannot assume the guest's descriptor
// table stays as it is while it checks a descriptor (fdTableStable).
type separateMem struct{ *fakeMem }

func (separateMem) PinMemory() (PinnedMemory, error)       { return nil, unix.ENOSYS }
func (separateMem) HoldProcesses(pids []int) (Held, error) { return nil, unix.ENOSYS }
func (separateMem) WriteForce(addr uint64, p []byte) error { return unix.EFAULT }

// nativeIoctlInt is ioctl(fd, req, &v).
func nativeIoctlInt(fd int, req uint32, v int32) Result {
	return ret(0, ioctlIntPtr(fd, uint(req), &v))
}

// TestIoctlFS: the file-system requests are served as the kernel would
// (the native oracle runs the same request on a file laid out alike),
// except on a read-only mount (EROFS) and for the requests that act on
// the whole host file system (EPERM); every refusal is logged.
func TestIoctlFS(t *testing.T) {
	h := newHarness(t)
	native := t.TempDir()
	populate(t, native)
	nf := h.open(native+"/f", unix.O_RDONLY)
	gf := h.open(h.root+"/f", unix.O_RDONLY)
	gm := h.open(h.hosts["/mnt"]+"/f", unix.O_RDONLY)
	ro := h.open(h.hosts["/ro"]+"/f", unix.O_RDONLY)
	roDir := h.open(h.hosts["/ro"]+"/d", unix.O_RDONLY|unix.O_DIRECTORY)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])

	flags, err := unix.IoctlGetUint32(nf, fsIocGetflags)
	if err != nil {
		t.Skipf("FS_IOC_GETFLAGS unsupported here: %v", err)
	}
	// The same flags back: a change that changes nothing, which the
	// kernel still checks in full.
	fl := h.u32(flags)
	for _, c := range []struct {
		what string
		fd   int
		req  uint32
		arg  uint64
		want Result
	}{
		{"FS_IOC_SETFLAGS", gf, fsIocSetflags, fl, nativeIoctlInt(nf, fsIocSetflags, int32(flags))},
		{"FS_IOC32_SETFLAGS", gf, fsIoc32Setflags, fl, nativeIoctlInt(nf, fsIoc32Setflags, int32(flags))},
		{"FS_IOC_SETFLAGS on the second mount", gm, fsIocSetflags, fl, nativeIoctlInt(nf, fsIocSetflags, int32(flags))},
		{"FS_IOC_SETFLAGS on a pipe", p[0], fsIocSetflags, fl, nativeIoctlInt(p[0], fsIocSetflags, int32(flags))},
		{"FS_IOC_SETFLAGS on the read-only bind", ro, fsIocSetflags, fl, Fail(unix.EROFS)},
		{"FS_IOC_SETFLAGS on a read-only directory", roDir, fsIocSetflags, fl, Fail(unix.EROFS)},
		// The kernel reads the argument before it checks the mount.
		{"FS_IOC_SETFLAGS bad pointer, read-only bind", ro, fsIocSetflags, badAddr, Fail(unix.EFAULT)},
		{"FS_IOC_SETFLAGS bad pointer", gf, fsIocSetflags, badAddr, Fail(unix.EFAULT)},
		// ... and looks the descriptor up before it reads the argument.
		{"FS_IOC_SETFLAGS bad descriptor, bad pointer", -1, fsIocSetflags, badAddr, nativeIoctlInt(-1, fsIocSetflags, 0)},
		{"FS_IOC_SETVERSION on the read-only bind", ro, fsIocSetversion, fl, Fail(unix.EROFS)},
		{"FS_IOC_FSSETXATTR on the read-only bind", ro, fsIocFssetxattr, h.alloc(fsxattrSize), Fail(unix.EROFS)},
		{"FS_IOC_FSSETXATTR bad pointer", gf, fsIocFssetxattr, badAddr, Fail(unix.EFAULT)},
		{"FICLONE into the read-only bind", ro, unix.FICLONE, uint64(gf), Fail(unix.EROFS)},
		{"FICLONE from a bad descriptor", gf, unix.FICLONE, g64(-1), Fail(unix.EBADF)},
		{"FICLONERANGE bad pointer", gf, unix.FICLONERANGE, badAddr, Fail(unix.EFAULT)},
		{"FIFREEZE", gf, fiFreeze, 0, Fail(unix.EPERM)},
		{"FITHAW", gf, fiThaw, 0, Fail(unix.EPERM)},
		{"FS_IOC_SETFSLABEL", gf, fsIocSetfslabel, h.alloc(256), Fail(unix.EPERM)},
		{"FS_IOC_SHUTDOWN", gf, fsIocShutdown, h.u32(0), Fail(unix.EPERM)},
		// Requests that only read, and other families: the kernel's.
		{"FS_IOC_GETFLAGS", ro, fsIocGetflags, h.alloc(8), Cont()},
		{"FS_IOC_FSGETXATTR", ro, fsIocFsgetxattr, h.alloc(fsxattrSize), Cont()},
		{"TCGETS", gf, unix.TCGETS, h.alloc(64), Cont()},
		{"FIONREAD", p[0], 0x541b /* FIONREAD */, h.alloc(4), Cont()},
		// A request of the families kbox does not parse: the
		// descriptor is checked, then the kernel runs it.
		{"unparsed request", gf, unix.FS_IOC_ADD_ENCRYPTION_KEY, h.alloc(64), Cont()},
		{"unparsed request on the read-only bind", ro, unix.FS_IOC_ADD_ENCRYPTION_KEY, h.alloc(64), Fail(unix.EROFS)},
	} {
		expect(t, c.what, h.call("ioctl", g64(c.fd), uint64(c.req), c.arg), c.want)
	}
	for _, s := range []string{"FS_IOC_SETFLAGS on descriptor", "FIFREEZE acts on the host's file system", "on the read-only mount /ro"} {
		if !h.logged(s) {
			t.Errorf("no -v line says %q", s)
		}
	}

	// FS_IOC_FSSETXATTR with the file's own attributes, FICLONE and
	// FICLONERANGE between two files of the root: as natively.
	fsx := make([]byte, fsxattrSize)
	if err := ioctlBuf(nf, fsIocFsgetxattr, fsx); err == nil {
		want := ret(0, ioctlBuf(nf, fsIocFssetxattr, fsx))
		expect(t, "FS_IOC_FSSETXATTR", h.call("ioctl", uint64(gf), fsIocFssetxattr, h.bytes(fsx)), want)
	}
	ndst := h.open(native+"/dst", unix.O_RDWR|unix.O_CREAT)
	gdst := h.open(h.root+"/dst", unix.O_RDWR|unix.O_CREAT)
	expect(t, "FICLONE", h.call("ioctl", uint64(gdst), unix.FICLONE, uint64(gf)), ret(0, unix.IoctlFileClone(ndst, nf)))
	rng := make([]byte, fileCloneRangeSize)
	binary.LittleEndian.PutUint64(rng, uint64(gf))
	nrng := unix.FileCloneRange{Src_fd: int64(nf)}
	expect(t, "FICLONERANGE", h.call("ioctl", uint64(gdst), unix.FICLONERANGE, h.bytes(rng)), ret(0, unix.IoctlFileCloneRange(ndst, &nrng)))
}

// TestIoctlUnparsedSeparate: for a guest in a separate process, a request
// kbox does not parse is continued only while nothing can renumber the
// guest's descriptors: the test process has many threads, so EPERM.
func TestIoctlUnparsedSeparate(t *testing.T) {
	h := newHarness(t)
	gf := h.open(h.root+"/f", unix.O_RDONLY)
	r := h.req("ioctl", uint64(gf), uint64(unix.FS_IOC_ADD_ENCRYPTION_KEY), h.alloc(64))
	r.ProcessAccess = separateMem{h.mem}
	expect(t, "unparsed request, separate multi-threaded guest", h.e.Dispatch(r), Fail(unix.EPERM))
	if !h.logged("cannot be checked safely") {
		t.Errorf("the refusal is not logged:\n%s", h.log)
	}
	// A known request needs no such care: kbox runs it itself.
	r = h.req("ioctl", uint64(gf), fsIocGetflags, h.alloc(8))
	r.ProcessAccess = separateMem{h.mem}
	expect(t, "FS_IOC_GETFLAGS, separate guest", h.e.Dispatch(r), Cont())
}

// TestIoctlDedupe: FIDEDUPERANGE's destinations are checked one by one
// (a read-only one gets -EROFS in its status, the others are deduped),
// and the argument is bounded as the kernel bounds it (one page: ENOMEM).
func TestIoctlDedupe(t *testing.T) {
	h := newHarness(t)
	native := t.TempDir()
	populate(t, native)
	data := []byte(strings.Repeat("x", 8192))
	for _, p := range []string{native + "/a", native + "/b", h.root + "/a", h.root + "/b", h.hosts["/ro"] + "/b"} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	na, nb := h.open(native+"/a", unix.O_RDONLY), h.open(native+"/b", unix.O_RDWR)
	ga, gb := h.open(h.root+"/a", unix.O_RDONLY), h.open(h.root+"/b", unix.O_RDWR)
	gro := h.open(h.hosts["/ro"]+"/b", unix.O_RDWR)
	arg := unix.FileDedupeRange{Src_length: 4096, Info: []unix.FileDedupeRangeInfo{{Dest_fd: int64(nb)}, {Dest_fd: -1}}}
	nerr := unix.IoctlFileDedupeRange(na, &arg)

	hdr := make([]byte, dedupeHeaderSize)
	binary.LittleEndian.PutUint64(hdr[8:], 4096)
	binary.LittleEndian.PutUint16(hdr[16:], 3)
	info := func(fd int) []byte {
		b := make([]byte, dedupeInfoSize)
		binary.LittleEndian.PutUint64(b, uint64(int64(fd)))
		return b
	}
	buf := append(append(append(hdr, info(gb)...), info(-1)...), info(gro)...)
	a := h.bytes(buf)
	res := h.call("ioctl", uint64(ga), unix.FIDEDUPERANGE, a)
	expect(t, "FIDEDUPERANGE", res, ret(0, nerr))
	if nerr == nil {
		out := h.read(a, len(buf))
		status := func(i int) int32 {
			return int32(binary.LittleEndian.Uint32(out[dedupeHeaderSize+i*dedupeInfoSize+24:]))
		}
		deduped := func(i int) uint64 {
			return binary.LittleEndian.Uint64(out[dedupeHeaderSize+i*dedupeInfoSize+16:])
		}
		for i, want := range []struct {
			status int32
			bytes  uint64
		}{{arg.Info[0].Status, arg.Info[0].Bytes_deduped}, {arg.Info[1].Status, arg.Info[1].Bytes_deduped}, {-int32(unix.EROFS), 0}} {
			if status(i) != want.status || deduped(i) != want.bytes {
				t.Errorf("destination %d: status %d, %d bytes; want %d, %d", i, status(i), deduped(i), want.status, want.bytes)
			}
		}
	}
	// count 128: 24 + 128*32 > 4096 (PAGE_SIZE).
	binary.LittleEndian.PutUint16(hdr[16:], 128)
	expect(t, "FIDEDUPERANGE count 128", h.call("ioctl", uint64(ga), unix.FIDEDUPERANGE, h.bytes(hdr)), Fail(unix.ENOMEM))
	expect(t, "FIDEDUPERANGE bad pointer", h.call("ioctl", uint64(ga), unix.FIDEDUPERANGE, badAddr), Fail(unix.EFAULT))
	expect(t, "FIDEDUPERANGE bad source", h.call("ioctl", g64(-1), unix.FIDEDUPERANGE, badAddr), Fail(unix.EBADF))
}
