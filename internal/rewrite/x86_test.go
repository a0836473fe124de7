package rewrite

import (
	"os"
	"testing"
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
	b := X86_64.Trampoline(displaced, 0x10400000, addr, end, fast)
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
	if len(b) > TrampMax {
		t.Fatalf("trampoline of %d bytes exceeds its %d-byte slot", len(b), TrampMax)
	}
	p := X86_64.SitePatch(0x1000, 0x1007, 0x2000)
	if string(p) != string([]byte{0xe9, 0xfb, 0x0f, 0, 0, 0xcc, 0xcc}) {
		t.Fatalf("site patch % x", p)
	}
}

// TestPlanCache stores and loads a plan and checks that Valid refuses
// a plan that does not match the code.
func TestPlanCache(t *testing.T) {
	c := Cache{dir: t.TempDir()}
	code := []byte{0x90, 0x48, 0x8b, 0x52, 0x18, 0x0f, 0x05, 0xc3} // nop; mov 0x18(%rdx),%rdx; syscall; ret
	plan, found := X86_64.Plan(code)
	if found != 1 || len(plan) != 1 || plan[0] != (Site{1, 5}) {
		t.Fatalf("planSites = %v, %d", plan, found)
	}
	c.Store("k", plan, found)
	got, gotFound, ok := c.Load("k")
	if !ok || gotFound != 1 || len(got) != 1 || got[0] != plan[0] {
		t.Fatalf("load = %v, %d, %v", got, gotFound, ok)
	}
	if !X86_64.Valid(code, got) {
		t.Fatal("a fresh plan is not valid")
	}
	// (A start inside an instruction can decode validly, {2, 5} here: the
	// key, the file's identity and version, is what rules that out.)
	for _, bad := range [][]Site{{{0, 5}}, {{3, 5}}, {{1, 6}}, {{1, 50}}} {
		if X86_64.Valid(code, bad) {
			t.Errorf("validPlan accepted %v", bad)
		}
	}
	if _, _, ok := c.Load("missing"); ok {
		t.Error("a missing key loaded")
	}
	os.WriteFile(c.dir+"/trunc", []byte(planMagic+"\x01\x00\x00\x00\x05"), 0o600)
	if _, _, ok := c.Load("trunc"); ok {
		t.Error("a truncated plan loaded")
	}
}

// TestPlanPatterns runs Plan over the instruction patterns a rewriter
// meets: endbr64 or a VEX instruction right before a site (kept in place),
// a site at the very end of a section, bare syscalls after register moves,
// and a syscall preceded only by an endbr64 (not movable: left to trap).
func TestPlanPatterns(t *testing.T) {
	for _, c := range []struct {
		name  string
		code  []byte
		plan  []Site
		found int
	}{
		{"endbr64 before mov", []byte{0xf3, 0x0f, 0x1e, 0xfa, 0xb8, 0x27, 0, 0, 0, 0x0f, 0x05, 0xc3}, []Site{{4, 9}}, 1},
		{"vzeroupper before mov", []byte{0xc5, 0xf8, 0x77, 0xb8, 0x27, 0, 0, 0, 0x0f, 0x05, 0xc3}, []Site{{3, 8}}, 1},
		{"site at the end", []byte{0x90, 0xb8, 0x27, 0, 0, 0, 0x0f, 0x05}, []Site{{1, 6}}, 1},
		{"glibc syscall() tail", []byte{0x48, 0x89, 0xf8, 0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05, 0xc3}, []Site{{3, 8}}, 1},
		{"the last move is enough", []byte{0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x0f, 0x05, 0xc3}, []Site{{3, 6}}, 1},
		{"two moves needed", []byte{0x48, 0x89, 0xf7, 0x31, 0xc0, 0x0f, 0x05, 0xc3}, []Site{{0, 5}}, 1},
		{"a branch onto the second of two", []byte{0xeb, 0x03, 0x48, 0x89, 0xf7, 0x31, 0xc0, 0x0f, 0x05, 0xc3}, nil, 1},
		{"endbr64 only", []byte{0xf3, 0x0f, 0x1e, 0xfa, 0x0f, 0x05, 0xc3}, nil, 1},
		// glibc's read: cmpb $0,x(%rip); je slow; xor %eax,%eax; syscall.
		{"je and xor", []byte{0x80, 0x3d, 1, 2, 3, 4, 0, 0x74, 0x17, 0x31, 0xc0, 0x0f, 0x05, 0xc3}, []Site{{7, 11}}, 1},
		{"syscall first", []byte{0x0f, 0x05, 0xc3}, nil, 1},
		{"branch into the displaced bytes", []byte{0xeb, 0x03, 0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x0f, 0x05, 0xc3}, []Site{{5, 8}}, 1},
	} {
		plan, found := X86_64.Plan(c.code)
		if found != c.found || len(plan) != len(c.plan) || (len(plan) > 0 && plan[0] != c.plan[0]) {
			t.Errorf("%s: planSites = %v, %d; want %v, %d", c.name, plan, found, c.plan, c.found)
		}
	}
}

// FuzzPlanSites checks Plan on arbitrary bytes: no panic, and every
// planned site is a syscall preceded by 3..MaxDisplace bytes of
// relocatable instructions that validPlan accepts.
func FuzzPlanSites(f *testing.F) {
	f.Add([]byte{0xb8, 0x27, 0, 0, 0, 0x0f, 0x05, 0xc3})
	f.Add([]byte{0x48, 0x89, 0xf8, 0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05, 0xc3})
	f.Add([]byte{0xf3, 0x0f, 0x1e, 0xfa, 0xb8, 0x27, 0, 0, 0, 0x0f, 0x05})
	f.Add([]byte{0xeb, 0x03, 0x48, 0x89, 0xf7, 0x31, 0xc0, 0x0f, 0x05, 0xc3})
	f.Fuzz(func(t *testing.T, code []byte) {
		plan, found := X86_64.Plan(code)
		if len(plan) > found {
			t.Fatalf("%d sites planned of %d found", len(plan), found)
		}
		if !X86_64.Valid(code, plan) {
			t.Fatalf("planSites made a plan validPlan refuses: %v for % x", plan, code)
		}
	})
}
