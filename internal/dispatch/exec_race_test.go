package dispatch

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

// TestInSharedMapping reads this process's own map.
func TestInSharedMapping(t *testing.T) {
	shared, err := unix.Mmap(-1, 0, 8192, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(shared)
	private, err := unix.Mmap(-1, 0, 8192, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(private)
	addr := func(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(&b[0]))) }
	for _, c := range []struct {
		name    string
		addr, n uint64
		want    bool
	}{
		{"shared", addr(shared) + 100, 10, true},
		{"private", addr(private) + 100, 10, false},
		{"shared, last byte", addr(shared) + 8191, 1, true},
		{"private, last byte", addr(private) + 8191, 1, false},
	} {
		got, err := inSharedMapping(os.Getpid(), c.addr, c.n)
		if err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}

func TestProcMemFile(t *testing.T) {
	proc := &vfs.Mount{Guest: "/proc", Kind: vfs.KindProc}
	bind := &vfs.Mount{Guest: "/", Kind: vfs.KindBind}
	for _, c := range []struct {
		m    *vfs.Mount
		path string
		want bool
	}{
		{proc, "/proc/123/mem", true},
		{proc, "/proc/123/task/124/mem", true},
		{proc, "/proc/123/status", false},
		{proc, "/proc/123/task/124/memx", false},
		{proc, "/proc/mem", false},
		{proc, "/proc/self/mem", false}, // never canonical: /proc/self resolves to the pid
		{bind, "/proc/123/mem", false},  // a directory named so, not procfs
		{&vfs.Mount{Guest: "/host/proc", Kind: vfs.KindProc}, "/host/proc/7/mem", true},
	} {
		if got := procMemFile(&vfs.Lookup{Mount: c.m, Path: c.path}); got != c.want {
			t.Errorf("%s on %s: %v, want %v", c.path, c.m.Guest, got, c.want)
		}
	}
}
