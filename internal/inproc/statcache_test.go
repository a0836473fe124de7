//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/dispatch"
	"github.com/kbox-go/kbox/internal/policy"
)

func TestStatCacheHashMatchesC(t *testing.T) {
	for _, p := range []string{"/", "/etc/hostname", "a", "relative/path with spaces", "\xff\x01"} {
		for _, nf := range []bool{false, true} {
			if g, c := statCacheHash(p, nf), statCacheHashC(p, nf); g != c {
				t.Errorf("%q nofollow=%v: Go %#x, C %#x", p, nf, g, c)
			}
		}
	}
}

// TestStatCacheRules drives the C cache as the fast path and the trap
// handler do: an entry is made at a path's second plain stat and answers
// with the object's live status; a call outside the policy table's
// PathStable column (and a writing open) ends the generation; an object
// removed on the host is a miss.
func TestStatCacheRules(t *testing.T) {
	pol, err := policy.Resolve(abi.Host(), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := setStatCache(pol, true, false, 0, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer setStatCache(pol, false, false, 0, 0, 0, 0)
	c := newStatCache()
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	parent, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(parent)
	var host unix.Stat_t
	if err := unix.Stat(file, &host); err != nil {
		t.Fatal(err)
	}
	plain := func() {
		c.note(dispatch.PlainStat{Dirfd: unix.AT_FDCWD, Path: file, Follow: true, Parent: parent, Name: "f", Stat: &host})
	}
	path := append([]byte(file), 0)
	buf := make([]byte, unsafe.Sizeof(unix.Stat_t{}))
	nr := int(unix.SYS_NEWFSTATAT)
	atFDCWD := int64(unix.AT_FDCWD)
	stat := func() int64 {
		clear(buf)
		r := statFast(nr, uint64(atFDCWD), uint64(uintptr(unsafe.Pointer(&path[0]))), uint64(uintptr(unsafe.Pointer(&buf[0]))), 0)
		runtime.KeepAlive(path)
		runtime.KeepAlive(buf)
		return r
	}
	size := func() int64 { return (*unix.Stat_t)(unsafe.Pointer(&buf[0])).Size }

	plain()
	if r := stat(); r != statCacheMiss {
		t.Fatalf("after one plain stat: %d, want a miss", r)
	}
	plain()
	if r := stat(); r != 0 || size() != 5 {
		t.Fatalf("after two plain stats: %d, size %d; want 0 and 5", r, size())
	}
	os.WriteFile(file, []byte("longer"), 0o644) // same inode: live
	if r := stat(); r != 0 || size() != 6 {
		t.Fatalf("after a host write: %d, size %d; want 0 and 6", r, size())
	}
	statCacheNote(int(unix.SYS_OPENAT), 0, unix.O_RDONLY)
	statCacheNote(int(unix.SYS_READ), 0, 0)
	if r := stat(); r != 0 {
		t.Fatalf("after a read-only openat and a read: %d, want a hit", r)
	}
	statCacheNote(int(unix.SYS_OPENAT), 0, unix.O_WRONLY|unix.O_CREAT)
	if r := stat(); r != statCacheMiss {
		t.Fatalf("after a writing openat: %d, want a miss", r)
	}
	plain()
	plain()
	if r := stat(); r != 0 {
		t.Fatalf("filled again: %d, want a hit", r)
	}
	statCacheNote(int(unix.SYS_RENAMEAT), 0, 0)
	if r := stat(); r != statCacheMiss {
		t.Fatalf("after a rename: %d, want a miss", r)
	}
	plain()
	plain()
	os.Remove(file)
	if r := stat(); r != statCacheMiss {
		t.Fatalf("after a host unlink: %d, want a miss", r)
	}
	// Not a form the cache answers: another directory descriptor, a flag.
	if r := statFast(nr, uint64(parent), uint64(uintptr(unsafe.Pointer(&path[0]))), uint64(uintptr(unsafe.Pointer(&buf[0]))), 0); r != statCacheMiss {
		t.Errorf("a directory descriptor: %d, want a miss", r)
	}
	c.reset(statCacheGen() + 1)
	for i, fd := range c.fds {
		if fd >= 0 {
			t.Fatalf("slot %d keeps descriptor %d after reset", i, fd)
		}
	}
}
