package rewrite

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// AArch64 encodings the tests assemble by hand.
const (
	tSVC     = 0xd4000001
	tRET     = 0xd65f03c0
	tNOP     = 0xd503201f
	tNegX0   = 0xcb0003e0 // neg x0, x0
	tCmnX0   = 0xb13ffc1f // cmn x0, #4095
	tLdrX19  = 0xf9400bf3 // ldr x19, [sp, #16]
	tLdpFP   = 0xa8c27bfd // ldp x29, x30, [sp], #32
	tAutiasp = 0xd50323bf
	tMovX0Ip = 0xaa1003e0 // mov x0, x16
	tStrX1   = 0xf9000041 // str x1, [x2]
	tMovzX8  = 0xd2801588 // mov x8, #172 (getpid)

	tMrsX3Tpidr = 0xd53bd043 // mrs x3, tpidr_el0
	tStrW1X3X2  = 0xb8226861 // str w1, [x3, x2]
)

func movReg(d, m uint32) uint32 { return 0xaa0003e0 | m<<16 | d }
func movzW6(nr uint32) uint32   { return 0x52800006 | nr<<5 }
func bl(from, to int) uint32    { return 0x94000000 | uint32((to-from)/4)&0x3ffffff }
func b(from, to int) uint32     { return 0x14000000 | uint32((to-from)/4)&0x3ffffff }
func bcond(from, to int, cond uint32) uint32 {
	return 0x54000000 | (uint32((to-from)/4)&0x7ffff)<<5 | cond
}

func code(words ...uint32) []byte {
	var c []byte
	for _, w := range words {
		c = binary.LittleEndian.AppendUint32(c, w)
	}
	return c
}

// TestARM64Plan: WRAPPER svc sites (x16 and x17 dead afterwards) are
// planned, every other svc is found and left to trap.
func TestARM64Plan(t *testing.T) {
	for _, c := range []struct {
		name  string
		code  []byte
		plan  []Site
		found int
	}{
		{"svc; ret", code(tMovzX8, tSVC, tRET), []Site{{4, 4}}, 1},
		{"svc; neg; ret", code(tSVC, tNegX0, tRET), []Site{{0, 0}}, 1},
		{"musl cancel epilogue", code(tSVC, tLdrX19, tLdpFP, tAutiasp, tRET), []Site{{0, 0}}, 1},
		{"cmn; b.hi both ways to ret", code(tSVC, tCmnX0, bcond(8, 16, 8), tRET, tNegX0, tRET), []Site{{0, 0}}, 1},
		{"cmn; b.hi to code that continues", code(tSVC, tCmnX0, bcond(8, 16, 8), tRET, tStrX1, b(20, 0)), nil, 1},
		{"result consumed in the function", code(tSVC, movReg(1, 0), tStrX1, b(12, 0)), nil, 1},
		{"x16 read after the svc", code(tSVC, tMovX0Ip, tRET), nil, 1},
		{"ret too far", code(tSVC, tNOP, tNOP, tNOP, tNOP, tRET), nil, 1},
		{"svc at the end", code(tNOP, tSVC), nil, 1},
		{"two sites", code(tSVC, tRET, tSVC, tNegX0, tRET), []Site{{0, 0}, {8, 8}}, 2},
		{"musl syscall(): svc; bl __syscall_ret", code(tSVC, bl(4, 0x40), tLdpFP, tRET), []Site{{0, 0}}, 1},
		{"a straight-line instruction, then bl", code(tSVC, movReg(1, 0), bl(8, 0x40), tRET), []Site{{0, 0}}, 1},
		{"x17 read before the bl", code(tSVC, 0xaa1103e0, bl(8, 0x40), tRET), nil, 1}, // mov x0, x17
		{"b out of the code", code(tSVC, b(4, 0x40), tRET), nil, 1},
		// glibc 2.36's syscall(): svc; cmn; b.cs err; ret; err: b
		// __syscall_error, which reads TPIDR_EL0 and returns.
		{"glibc syscall(): b.cs to b __syscall_error", code(tSVC, tCmnX0, bcond(8, 16, 2), tRET, b(16, 24), tNOP,
			tMrsX3Tpidr, movReg(1, 0), tStrW1X3X2, tRET), []Site{{0, 0}}, 1},
		{"b to code that reads x16", code(tSVC, b(4, 12), tNOP, tMovX0Ip, tRET), nil, 1},
		{"b to itself", code(tSVC, b(4, 4), tRET), nil, 1},
		{"three b in a row", code(tSVC, b(4, 8), b(8, 12), b(12, 16), tRET), nil, 1},
	} {
		plan, found := ARM64.Plan(c.code)
		if found != c.found || fmt.Sprint(plan) != fmt.Sprint(c.plan) {
			t.Errorf("%s: Plan = %v, %d; want %v, %d", c.name, plan, found, c.plan, c.found)
		}
		if !ARM64.Valid(c.code, plan) {
			t.Errorf("%s: Valid refuses its own plan", c.name)
		}
	}
	// svc bytes off the 4-byte grid are not an instruction.
	odd := append([]byte{0, 0}, code(tSVC, tRET)...)
	if plan, found := ARM64.Plan(odd); len(plan) != 0 || found != 0 {
		t.Errorf("misaligned svc bytes: %v, %d", plan, found)
	}
	if ARM64.Valid(code(tSVC, tStrX1), []Site{{0, 0}}) {
		t.Error("Valid accepted a COMPLEX site")
	}
}

// TestARM64Encodings: the site's branch, the veneer and the slots.
func TestARM64Encodings(t *testing.T) {
	p := ARM64.SitePatch(0x400000, 0x400004, 0x400100)
	if got := binary.LittleEndian.Uint32(p); got != 0x14000040 {
		t.Errorf("b +0x100 = %#x, want 0x14000040", got)
	}
	if ARM64.SitePatch(0x400000, 0x400004, 0x400000+128<<20) != nil {
		t.Error("a branch 128 MiB away was encoded (out of reach)")
	}
	if p := ARM64.SitePatch(0x10000000, 0x10000004, 0x10000000-128<<20); p == nil {
		t.Error("a branch -128 MiB away (the limit) was refused")
	}
	v := ARM64.Veneer(0x1122334455667788)
	if len(v) != 16 || binary.LittleEndian.Uint32(v) != 0x58000050 || binary.LittleEndian.Uint32(v[4:]) != 0xd61f0200 ||
		binary.LittleEndian.Uint64(v[8:]) != 0x1122334455667788 {
		t.Errorf("veneer % x", v)
	}
	const fast, site = 0x7f0000001000, 0x400010
	s := ARM64.Trampoline(nil, site, 0x500000, site+4, fast)
	want := code(
		0x58000110, // ldr x16, +32
		0x10000051, // adr x17, +8 (the svc)
		0xd61f0200, // br x16
		tSVC,
		0x580000d0, // ldr x16, +24 (back)
		0xd61f0200, // br x16
		tNOP, tNOP)
	want = binary.LittleEndian.AppendUint64(want, fast)
	want = binary.LittleEndian.AppendUint64(want, site+4)
	if string(s) != string(want) {
		t.Errorf("svc slot:\n got % x\nwant % x", s, want)
	}
	if len(s) > TrampMax || ARM64.TrapAddr(s, 0x500000) != 0x500010 {
		t.Errorf("svc slot: %d bytes, trap address %#x", len(s), ARM64.TrapAddr(s, 0x500000))
	}
	cs := ARM64.CancelTrampoline(0x400020, 0x500040, fast)
	wantC := code(
		0xaa0603e8, // mov x8, x6
		0x580000f0, // ldr x16, +28
		0x10000051, // adr x17, +8
		0xd61f0200, // br x16
		tSVC,
		0x580000b0, // ldr x16, +20
		0xd61f0200, // br x16
		tNOP)
	wantC = binary.LittleEndian.AppendUint64(wantC, fast)
	wantC = binary.LittleEndian.AppendUint64(wantC, 0x400024)
	if string(cs) != string(wantC) {
		t.Errorf("cancel slot:\n got % x\nwant % x", cs, wantC)
	}
	if ARM64.TrapAddr(cs, 0x500040) != 0x500054 {
		t.Errorf("cancel slot trap address %#x", ARM64.TrapAddr(cs, 0x500040))
	}
}

// cancelCode lays out a caller at 0 (movz x6, #nr at 0, the call at
// callAt), __syscall_cancel at 0x40 calling __internal_syscall_cancel at
// 0x80, whose svc is preceded by shuffles argument moves.
func cancelCode(nr uint32, call func(from, to int) uint32, shuffles int, between ...uint32) []byte {
	w := make([]uint32, 0x100/4)
	for i := range w {
		w[i] = tNOP
	}
	w[0] = movzW6(nr)
	at := 1
	for _, x := range between {
		w[at] = x
		at++
	}
	w[at] = call(4*at, 0x40)
	w[at+1] = tRET
	w[0x40/4] = bl(0x40, 0x80)
	w[0x40/4+1] = tRET
	k := 0x80 / 4
	for i := 0; i < shuffles; i++ {
		w[k] = movReg(uint32(i), uint32(i+1))
		k++
	}
	w[k] = tSVC
	w[k+1] = tRET
	return code(w...)
}

// cancelCodeX0 is cancelCode whose target shuffles like musl 1.2's
// __syscall_cp_c: mov x8, x0; mov x0, x1; ... mov x5, x6; svc.
func cancelCodeX0(x6 uint32) []byte {
	c := cancelCode(x6, bl, 0)
	k := 0x80
	for _, w := range []uint32{movReg(8, 0), movReg(0, 1), movReg(1, 2), movReg(2, 3), movReg(3, 4), movReg(4, 5), movReg(5, 6), tSVC, tRET} {
		binary.LittleEndian.PutUint32(c[k:], w)
		k += 4
	}
	return c
}

// TestARM64PlanCancel: musl's cancellation wrapper calls are found with
// their number; a tail call, an svc between, a target without the
// argument shuffle (a 7-argument C call passing a constant in x6) and a
// movz of another register are not.
func TestARM64PlanCancel(t *testing.T) {
	for _, c := range []struct {
		name string
		code []byte
		want []CancelSite
	}{
		{"close", cancelCode(57, bl, 4), []CancelSite{{Movz: 0, BL: 4, Nr: 57}}},
		{"openat, bl later in the window", cancelCode(56, bl, 5, tNOP, movReg(2, 3), tNOP), []CancelSite{{Movz: 0, BL: 16, Nr: 56}}},
		{"tail call b", cancelCode(57, b, 4), nil},
		{"svc between", cancelCode(57, bl, 4, tSVC), nil},
		{"target without the shuffle", cancelCode(57, bl, 3), nil},
		{"musl 1.2 __syscall_cp: the number from x0, x6 an argument", cancelCodeX0(0), nil},
		{"bl beyond 32 bytes", cancelCode(57, bl, 4, tNOP, tNOP, tNOP, tNOP, tNOP, tNOP, tNOP, tNOP), nil},
	} {
		if got := ARM64.PlanCancel(c.code); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: PlanCancel = %v, want %v", c.name, got, c.want)
		}
	}
	// Depth: the target and two further calls (musl's __syscall_cancel,
	// __internal_syscall_cancel, __syscall_cancel_arch) are walked; a
	// third further call is not.
	shuffle := code(movReg(0, 1), movReg(1, 2), movReg(2, 3), movReg(3, 4), tSVC, tRET)
	two := cancelCode(57, bl, 4)
	binary.LittleEndian.PutUint32(two[0x80:], bl(0x80, 0xc0))
	copy(two[0xc0:], shuffle)
	if got := ARM64.PlanCancel(two); len(got) != 1 {
		t.Errorf("two further calls: %v, want the site", got)
	}
	three := two
	binary.LittleEndian.PutUint32(three[0xc0:], bl(0xc0, 0xe0))
	copy(three[0xe0:], shuffle)
	if got := ARM64.PlanCancel(three); got != nil {
		t.Errorf("a third further call was followed: %v", got)
	}
}

// FuzzARM64Plan: any bytes plan without panic, the plan is valid, and the
// cancel planner's sites are movz/bl pairs in the window.
func FuzzARM64Plan(f *testing.F) {
	f.Add(code(tMovzX8, tSVC, tRET))
	f.Add(cancelCode(57, bl, 4))
	f.Add(code(tSVC, tCmnX0, bcond(8, 16, 8), tRET, tNegX0, tRET))
	f.Fuzz(func(t *testing.T, c []byte) {
		plan, found := ARM64.Plan(c)
		if len(plan) > found || !ARM64.Valid(c, plan) {
			t.Fatalf("plan %v of %d found is not valid", plan, found)
		}
		for _, s := range ARM64.PlanCancel(c) {
			if s.BL <= s.Movz || s.BL-s.Movz > cancelWindow || s.BL%4 != 0 {
				t.Fatalf("cancel site %+v", s)
			}
		}
	})
}

// TestARM64EncodingsObjdump: GNU objdump for aarch64 reads the slots and
// the veneer as the instructions they are meant to be.
func TestARM64EncodingsObjdump(t *testing.T) {
	objdump, err := exec.LookPath("aarch64-linux-gnu-objdump")
	if err != nil {
		t.Skip("aarch64-linux-gnu-objdump not installed (Debian: binutils-aarch64-linux-gnu); scripts/test.sh installs it")
	}
	var blob []byte
	blob = append(blob, ARM64.Trampoline(nil, 0, 0, 0x1000, 0)[:32]...)
	blob = append(blob, ARM64.CancelTrampoline(0, 0, 0)[:32]...)
	blob = append(blob, ARM64.Veneer(0)[:8]...)
	blob = append(blob, ARM64.SitePatch(0x68, 0x6c, 0x68+0x100)...)
	f := filepath.Join(t.TempDir(), "a64.bin")
	if err := os.WriteFile(f, blob, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(objdump, "-D", "-b", "binary", "-m", "aarch64", f).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump: %v\n%s", err, out)
	}
	var got []string
	for _, l := range strings.Split(string(out), "\n") {
		if fields := strings.Split(l, "\t"); len(fields) >= 3 && strings.HasSuffix(fields[0], ":") {
			got = append(got, strings.Join(strings.Fields(strings.Join(fields[2:], " ")), " "))
		}
	}
	want := []string{
		"ldr x16, 0x20", "adr x17, 0xc", "br x16", "svc #0x0", "ldr x16, 0x28", "br x16", "nop", "nop",
		"mov x8, x6", "ldr x16, 0x40", "adr x17, 0x30", "br x16", "svc #0x0", "ldr x16, 0x48", "br x16", "nop",
		"ldr x16, 0x48", "br x16",
		"b 0x148", // the patch sits at 0x48: +0x100
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("objdump reads:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
