//go:build cgo && linux && amd64

package trap

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRelocatable(t *testing.T) {
	for _, c := range []struct {
		code []byte
		ok   bool
	}{
		{[]byte{0xb8, 0x27, 0, 0, 0}, true},                       // mov $39,%eax
		{[]byte{0x48, 0x89, 0xf8}, true},                          // mov %rdi,%rax
		{[]byte{0x4c, 0x8b, 0x4c, 0x24, 0x08}, true},              // mov 0x8(%rsp),%r9
		{[]byte{0x48, 0x8b, 0x52, 0x18}, true},                    // mov 0x18(%rdx),%rdx
		{[]byte{0x31, 0xc0}, true},                                // xor %eax,%eax
		{[]byte{0x48, 0x8b, 0x05, 1, 2, 3, 4}, false},             // mov 0x..(%rip),%rax
		{[]byte{0x48, 0x8d, 0x05, 1, 2, 3, 4}, false},             // lea 0x..(%rip),%rax
		{[]byte{0xe8, 1, 2, 3, 4}, false},                         // call
		{[]byte{0x50}, false},                                     // push %rax
		{[]byte{0x66, 0x89, 0xc0}, false},                         // operand-size prefix
		{[]byte{0x48, 0xc7, 0xc0, 0x3c, 0, 0, 0}, true},           // mov $60,%rax
		{[]byte{0x48, 0xc7, 0x05, 1, 2, 3, 4, 5, 6, 7, 8}, false}, // RIP-relative store
	} {
		if got := relocatable(c.code); got != c.ok {
			t.Errorf("relocatable(% x) = %v, want %v", c.code, got, c.ok)
		}
	}
}

func TestTrampolineEncoding(t *testing.T) {
	displaced := []byte{0xb8, 0x27, 0, 0, 0}
	const addr, end, fast = 0x10000000, 0x10400007, 0x555555556000
	b := trampoline(displaced, 0x10400000, addr, end, fast)
	want := []byte{0xb8, 0x27, 0, 0, 0,
		0x48, 0xb9, 0x1e, 0, 0, 0x10, 0, 0, 0, 0, // movabs $addr+28 (tail+2), %rcx
		0x49, 0xbb, 0, 0x60, 0x55, 0x55, 0x55, 0x55, 0, 0, // movabs $fast, %r11
		0x41, 0xff, 0xe3, // jmp *%r11
		0x0f, 0x05, // tail: syscall
		0xe9} // jmp end
	if len(b) != len(want)+4 || string(b[:len(want)]) != string(want) {
		t.Fatalf("trampoline:\n got % x\nwant % x ...", b, want)
	}
	if rel := int32(uint32(b[len(b)-4]) | uint32(b[len(b)-3])<<8 | uint32(b[len(b)-2])<<16 | uint32(b[len(b)-1])<<24); uint64(int64(addr)+int64(len(b))+int64(rel)) != end {
		t.Fatalf("jmp back lands at %#x, want %#x", int64(addr)+int64(len(b))+int64(rel), end)
	}
	if len(b) > trampMax {
		t.Fatalf("trampoline of %d bytes exceeds its %d-byte slot", len(b), trampMax)
	}
	p := sitePatch(0x1000, 0x1007, 0x2000)
	if string(p) != string([]byte{0xe9, 0xfb, 0x0f, 0, 0, 0xcc, 0xcc}) {
		t.Fatalf("site patch % x", p)
	}
}

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
		if done, left := rw.patchCode(tr, addr, addr+uint64(len(code)), addr, addr+pageSize, exec, ""); done != 1 || left != 0 {
			t.Fatalf("patchCode(% x): %d patched, %d left; want 1, 0", code, done, left)
		}
		return addr
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
		done, left := rw.patchCode(tr, addr, addr+uint64(len(c.code)), addr, addr+pageSize, unix.PROT_READ|unix.PROT_EXEC, "")
		if done != 0 || left != 1 {
			t.Errorf("%s: %d patched, %d left; want 0, 1", c.name, done, left)
		}
		if string(guestBytes(addr, len(c.code))) != string(before) {
			t.Errorf("%s: code changed", c.name)
		}
	}
	// 0f 05 inside an immediate is not a site.
	addr := codeBuffer(t, []byte{0xb8, 0x0f, 0x05, 0, 0, 0xc3})
	if done, left := rw.patchCode(tr, addr, addr+6, addr, addr+pageSize, unix.PROT_READ|unix.PROT_EXEC, ""); done != 0 || left != 0 {
		t.Errorf("0f 05 in an immediate: %d patched, %d left", done, left)
	}
}

// TestPlanCache stores and loads a plan and checks that validPlan refuses
// a plan that does not match the code.
func TestPlanCache(t *testing.T) {
	c := planCache{dir: t.TempDir()}
	code := []byte{0x90, 0x48, 0x8b, 0x52, 0x18, 0x0f, 0x05, 0xc3} // nop; mov 0x18(%rdx),%rdx; syscall; ret
	plan, found := planSites(code)
	if found != 1 || len(plan) != 1 || plan[0] != (site{1, 5}) {
		t.Fatalf("planSites = %v, %d", plan, found)
	}
	c.store("k", plan, found)
	got, gotFound, ok := c.load("k")
	if !ok || gotFound != 1 || len(got) != 1 || got[0] != plan[0] {
		t.Fatalf("load = %v, %d, %v", got, gotFound, ok)
	}
	if !validPlan(code, got) {
		t.Fatal("a fresh plan is not valid")
	}
	// (A start inside an instruction can decode validly, {2, 5} here: the
	// key, the file's identity and version, is what rules that out.)
	for _, bad := range [][]site{{{0, 5}}, {{3, 5}}, {{1, 6}}, {{1, 50}}} {
		if validPlan(code, bad) {
			t.Errorf("validPlan accepted %v", bad)
		}
	}
	if _, _, ok := c.load("missing"); ok {
		t.Error("a missing key loaded")
	}
	os.WriteFile(c.dir+"/trunc", []byte(planMagic+"\x01\x00\x00\x00\x05"), 0o600)
	if _, _, ok := c.load("trunc"); ok {
		t.Error("a truncated plan loaded")
	}
}

// TestPlanPatterns runs planSites over the instruction patterns a rewriter
// meets: endbr64 or a VEX instruction right before a site (kept in place),
// a site at the very end of a section, bare syscalls after register moves,
// and a syscall preceded only by an endbr64 (not movable: left to trap).
func TestPlanPatterns(t *testing.T) {
	for _, c := range []struct {
		name  string
		code  []byte
		plan  []site
		found int
	}{
		{"endbr64 before mov", []byte{0xf3, 0x0f, 0x1e, 0xfa, 0xb8, 0x27, 0, 0, 0, 0x0f, 0x05, 0xc3}, []site{{4, 9}}, 1},
		{"vzeroupper before mov", []byte{0xc5, 0xf8, 0x77, 0xb8, 0x27, 0, 0, 0, 0x0f, 0x05, 0xc3}, []site{{3, 8}}, 1},
		{"site at the end", []byte{0x90, 0xb8, 0x27, 0, 0, 0, 0x0f, 0x05}, []site{{1, 6}}, 1},
		{"glibc syscall() tail", []byte{0x48, 0x89, 0xf8, 0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05, 0xc3}, []site{{3, 8}}, 1},
		{"the last move is enough", []byte{0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x0f, 0x05, 0xc3}, []site{{3, 6}}, 1},
		{"two moves needed", []byte{0x48, 0x89, 0xf7, 0x31, 0xc0, 0x0f, 0x05, 0xc3}, []site{{0, 5}}, 1},
		{"a branch onto the second of two", []byte{0xeb, 0x03, 0x48, 0x89, 0xf7, 0x31, 0xc0, 0x0f, 0x05, 0xc3}, nil, 1},
		{"endbr64 only", []byte{0xf3, 0x0f, 0x1e, 0xfa, 0x0f, 0x05, 0xc3}, nil, 1},
		// glibc's read: cmpb $0,x(%rip); je slow; xor %eax,%eax; syscall.
		{"je and xor", []byte{0x80, 0x3d, 1, 2, 3, 4, 0, 0x74, 0x17, 0x31, 0xc0, 0x0f, 0x05, 0xc3}, []site{{7, 11}}, 1},
		{"syscall first", []byte{0x0f, 0x05, 0xc3}, nil, 1},
		{"branch into the displaced bytes", []byte{0xeb, 0x03, 0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x0f, 0x05, 0xc3}, []site{{5, 8}}, 1},
	} {
		plan, found := planSites(c.code)
		if found != c.found || len(plan) != len(c.plan) || (len(plan) > 0 && plan[0] != c.plan[0]) {
			t.Errorf("%s: planSites = %v, %d; want %v, %d", c.name, plan, found, c.plan, c.found)
		}
	}
}

// FuzzPlanSites checks planSites on arbitrary bytes: no panic, and every
// planned site is a syscall preceded by 3..maxDisplace bytes of
// relocatable instructions that validPlan accepts.
func FuzzPlanSites(f *testing.F) {
	f.Add([]byte{0xb8, 0x27, 0, 0, 0, 0x0f, 0x05, 0xc3})
	f.Add([]byte{0x48, 0x89, 0xf8, 0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05, 0xc3})
	f.Add([]byte{0xf3, 0x0f, 0x1e, 0xfa, 0xb8, 0x27, 0, 0, 0, 0x0f, 0x05})
	f.Add([]byte{0xeb, 0x03, 0x48, 0x89, 0xf7, 0x31, 0xc0, 0x0f, 0x05, 0xc3})
	f.Fuzz(func(t *testing.T, code []byte) {
		plan, found := planSites(code)
		if len(plan) > found {
			t.Fatalf("%d sites planned of %d found", len(plan), found)
		}
		if !validPlan(code, plan) {
			t.Fatalf("planSites made a plan validPlan refuses: %v for % x", plan, code)
		}
	})
}

func TestOriginMap(t *testing.T) {
	var m originMap
	defer m.reset()
	m.add([]uint64{30, 10})
	m.add([]uint64{20})
	for a, want := range map[uint64]bool{10: true, 20: true, 30: true, 15: false, 0: false, 31: false} {
		if m.contains(a) != want {
			t.Errorf("contains(%d) = %v", a, !want)
		}
	}
	// Sealed: a write to the map faults.
	defer setPanicOnFault()()
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the origin map is writable outside add")
			}
		}()
		m.mem[0] = 1
	}()
	many := make([]uint64, 1000)
	for i := range many {
		many[i] = uint64(1000 + 2*i)
	}
	m.add(many)
	if !m.contains(2998) || m.contains(2999) || !m.contains(20) {
		t.Error("lookups after growing the map")
	}
}
