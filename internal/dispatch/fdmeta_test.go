package dispatch

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

// TestFDChangeCheck: the mount a descriptor's file belongs to decides
// whether it may be changed through the descriptor.
func TestFDChangeCheck(t *testing.T) {
	base := t.TempDir()
	rw, ro, outside := filepath.Join(base, "rw"), filepath.Join(base, "rw", "ro"), filepath.Join(base, "outside")
	for _, d := range []string{ro, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ns := vfs.NewNamespace()
	defer ns.Close()
	if err := ns.Add("/", rw, false, vfs.KindBind); err != nil {
		t.Fatal(err)
	}
	if err := ns.Add("/mnt", ro, true, vfs.KindBind); err != nil {
		t.Fatal(err)
	}
	ns.Seal()
	e := &Engine{ns: ns}

	open := func(p string, flags int) int {
		t.Helper()
		fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	file := func(p string) int { return open(p, unix.O_RDONLY|unix.O_CREAT) }
	deleted := func(p string) int {
		fd := file(p)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		return fd
	}
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pipe[0])
	defer unix.Close(pipe[1])
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	mfd, err := unix.MemfdCreate("kbox-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(mfd)

	for _, c := range []struct {
		name string
		fd   int
		want unix.Errno
	}{
		{"writable root", file(filepath.Join(rw, "f")), 0},
		{"writable directory", open(rw, unix.O_RDONLY|unix.O_DIRECTORY), 0},
		{"read-only bind", file(filepath.Join(ro, "f")), unix.EROFS},
		{"read-only bind, O_PATH", open(filepath.Join(ro, "f"), unix.O_PATH), unix.EROFS},
		{"read-only bind root", open(ro, unix.O_RDONLY|unix.O_DIRECTORY), unix.EROFS},
		{"outside the mounts", file(filepath.Join(outside, "f")), unix.EROFS},
		{"deleted, writable", deleted(filepath.Join(rw, "gone")), 0},
		{"deleted, read-only", deleted(filepath.Join(ro, "gone")), unix.EROFS},
		{"named like a deleted file, read-only", file(filepath.Join(ro, "x (deleted)")), unix.EROFS},
		{"named like a deleted file, writable", file(filepath.Join(rw, "y (deleted)")), 0},
		{"pipe", pipe[0], 0},
		{"memfd", mfd, 0},
		{"anonymous inode", efd, unix.EPERM},
	} {
		if got, why := e.fdChangeCheck(nil, c.fd); got != c.want {
			t.Errorf("%s: %v (%s), want %v", c.name, got, why, c.want)
		}
	}
}

func TestHideRecord(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"user.a\x00", "user.a\x00"},
		{overrideXattr + "\x00", ""},
		{"user.a\x00" + overrideXattr + "\x00user.b\x00", "user.a\x00user.b\x00"},
		{overrideXattr + "x\x00", overrideXattr + "x\x00"},
	} {
		if got := string(hideRecord([]byte(c.in))); got != c.want {
			t.Errorf("hideRecord(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestIoctlFamilies: the requests kbox names belong to the notified
// families; the terminal's and sockets' do not.
func TestIoctlFamilies(t *testing.T) {
	for _, req := range []uint32{fsIocSetflags, fsIoc32Setflags, fsIocSetversion, fsIocFssetxattr, unix.FICLONE,
		unix.FICLONERANGE, unix.FIDEDUPERANGE, fiFreeze, fsIocSetfslabel, fsIocGetflags, unix.FS_IOC_ENABLE_VERITY} {
		if !isFSIoctl(req) {
			t.Errorf("%#x is not in a notified family", req)
		}
	}
	for _, req := range []uint32{unix.TCGETS, unix.TIOCGWINSZ, 0x541b /* FIONREAD */, 0x5421 /* FIONBIO */, unix.TIOCSPGRP, unix.SIOCGIFCONF} {
		if isFSIoctl(req) {
			t.Errorf("%#x is in a notified family", req)
		}
	}
}
