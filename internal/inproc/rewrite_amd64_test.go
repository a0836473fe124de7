//go:build cgo && linux && amd64

package inproc

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/policy"
)

// codeBuffer maps code read+write, for patching, then read+exec.
func codeBuffer(t *testing.T, code []byte) uint64 {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	copy(mem, code)
	if err := unix.Mprotect(mem, unix.PROT_READ|unix.PROT_EXEC); err != nil {
		t.Fatal(err)
	}
	return addrOf(mem)
}

// TestPatchAndRun patches real code in memory and runs it: getpid answered
// by the fast path, read on a mapped descriptor run natively on its host
// descriptor, an unmapped descriptor and another call falling back to the
// trampoline's own syscall (no filter here: it simply runs).
func TestPatchAndRun(t *testing.T) {
	defer setPanicOnFault()()
	rw := newRewriter(false)
	defer rw.release()
	tr := &tier{warned: map[string]bool{}}
	const exec = unix.PROT_READ | unix.PROT_EXEC
	patch := func(code []byte) uint64 {
		addr := codeBuffer(t, code)
		if done, left, err := rw.patchCode(tr, addr, addr+uint64(len(code)), addr, addr+pageSize, exec, ""); done != 1 || left != 0 || err != nil {
			t.Fatalf("patchCode(% x): %d patched, %d left, %v; want 1, 0", code, done, left, err)
		}
		return addr
	}
	pol, err := policy.Resolve(abi.AMD64, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := setFastKinds(pol); err != nil {
		t.Fatal(err)
	}
	setFastIdentity(424242, false)
	hits, _ := fastCounts()
	getpid := patch([]byte{0xb8, 0x27, 0, 0, 0, 0x0f, 0x05, 0xc3}) // mov $39,%eax; syscall; ret
	if got := callCode(getpid, 0, 0, 0); got != 424242 {
		t.Errorf("patched getpid = %d, want the fast path's 424242", got)
	}
	if h, _ := fastCounts(); h != hits+1 {
		t.Errorf("fast path hits %d -> %d, want one more", hits, h)
	}

	f, err := os.CreateTemp(t.TempDir(), "fast")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("fastpath")
	f.Seek(0, 0)
	setFastFD(77, int(f.Fd()))
	defer setFastFD(77, -1)
	// musl's syscall() tail: mov 0x18(%rdx),%rdx; syscall; ret — here
	// with the number set before: xor %eax,%eax (read).
	read := patch([]byte{0x31, 0xc0, 0x48, 0x89, 0xd2, 0x0f, 0x05, 0xc3}) // xor %eax,%eax; mov %rdx,%rdx; syscall; ret
	buf := make([]byte, 8)
	if n := callCode(read, 77, int64(addrOf(buf)), 8); n != 8 || string(buf) != "fastpath" {
		t.Errorf("patched read(77) = %d %q, want 8 \"fastpath\"", n, buf)
	}
	if n := callCode(read, 78, int64(addrOf(buf)), 8); n != -int64(unix.EBADF) {
		t.Errorf("patched read(78) = %d, want -EBADF from the fallback syscall", n)
	}
	// A displaced conditional jump, re-encoded in the trampoline:
	//   cmp $0,%edi; je L; xor %eax,%eax; syscall; ret; L: mov $77,%eax; ret
	branchy := patch([]byte{0x83, 0xff, 0x00, 0x74, 0x05, 0x31, 0xc0, 0x0f, 0x05, 0xc3, 0xb8, 0x4d, 0, 0, 0, 0xc3})
	f.Seek(0, 0)
	if n := callCode(branchy, 77, int64(addrOf(buf)), 8); n != 8 || string(buf) != "fastpath" {
		t.Errorf("je not taken: read = %d %q", n, buf)
	}
	if n := callCode(branchy, 0, 0, 0); n != 77 {
		t.Errorf("je taken through the trampoline: got %d, want 77", n)
	}
	getppid := patch([]byte{0xb8, 0x6e, 0, 0, 0, 0x0f, 0x05, 0xc3}) // mov $110,%eax; syscall; ret
	h0, _ := fastCounts()
	if got := callCode(getppid, 0, 0, 0); got != int64(os.Getppid()) {
		t.Errorf("patched getppid = %d, want %d", got, os.Getppid())
	}
	if h, _ := fastCounts(); h != h0+1 {
		t.Errorf("getppid did not take the fast path")
	}
	getuid := patch([]byte{0xb8, 0x66, 0, 0, 0, 0x0f, 0x05, 0xc3}) // mov $102,%eax; syscall; ret
	if got := callCode(getuid, 0, 0, 0); got != int64(os.Getuid()) {
		t.Errorf("patched getuid = %d, want %d (fallback)", got, os.Getuid())
	}
	keep(buf)
}

// TestPatchSkips checks the sites patchCode must leave alone.
func TestPatchSkips(t *testing.T) {
	defer setPanicOnFault()()
	rw := newRewriter(false)
	defer rw.release()
	tr := &tier{warned: map[string]bool{}}
	for _, c := range []struct {
		name string
		code []byte
	}{
		// A branch lands on the syscall.
		{"branch target", []byte{0xeb, 0x05, 0xb8, 0x27, 0, 0, 0, 0x0f, 0x05, 0xc3}},
		// Only 2 bytes before the syscall.
		{"too short", []byte{0x31, 0xc0, 0x0f, 0x05, 0xc3}},
		// RIP-relative load before the syscall.
		{"rip-relative", []byte{0x48, 0x8b, 0x05, 0, 0, 0, 0, 0x0f, 0x05, 0xc3}},
	} {
		addr := codeBuffer(t, c.code)
		before := append([]byte(nil), guestBytes(addr, len(c.code))...)
		done, left, _ := rw.patchCode(tr, addr, addr+uint64(len(c.code)), addr, addr+pageSize, unix.PROT_READ|unix.PROT_EXEC, "")
		if done != 0 || left != 1 {
			t.Errorf("%s: %d patched, %d left; want 0, 1", c.name, done, left)
		}
		if string(guestBytes(addr, len(c.code))) != string(before) {
			t.Errorf("%s: code changed", c.name)
		}
	}
	// 0f 05 inside an immediate is not a site.
	addr := codeBuffer(t, []byte{0xb8, 0x0f, 0x05, 0, 0, 0xc3})
	if done, left, _ := rw.patchCode(tr, addr, addr+6, addr, addr+pageSize, unix.PROT_READ|unix.PROT_EXEC, ""); done != 0 || left != 0 {
		t.Errorf("0f 05 in an immediate: %d patched, %d left", done, left)
	}
}

// TestPatchReportsUnsealedCode: when patched code cannot be given back its
// protection (or its arena sealed), patchCode says so instead of letting
// the guest run on writable code.
func TestPatchReportsUnsealedCode(t *testing.T) {
	defer setPanicOnFault()()
	rw := newRewriter(false)
	defer rw.release()
	calls := 0
	rw.mprotect = func(addr, n uint64, prot int) error {
		calls++
		if prot&unix.PROT_EXEC != 0 && calls > 2 {
			return unix.ENOMEM // the restore after patching
		}
		return rawMprotect(addr, n, prot)
	}
	tr := &tier{warned: map[string]bool{}}
	code := []byte{0xb8, 0x27, 0, 0, 0, 0x0f, 0x05, 0xc3}
	addr := codeBuffer(t, code)
	_, _, err := rw.patchCode(tr, addr, addr+uint64(len(code)), addr, addr+pageSize, unix.PROT_READ|unix.PROT_EXEC, "")
	if err == nil || !errors.Is(err, unix.ENOMEM) {
		t.Fatalf("patchCode with a failing restore: err = %v, want ENOMEM reported", err)
	}
	rawMprotect(addr, pageSize, unix.PROT_READ|unix.PROT_EXEC)
}
