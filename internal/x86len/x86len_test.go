package x86len

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// lenCases are single instructions; the expected lengths were checked
// against GNU objdump.
var lenCases = []struct {
	name string
	hex  string
	n    int
}{
	{"endbr64", "f3 0f 1e fa", 4},
	{"endbr32", "f3 0f 1e fb", 4},
	{"vzeroupper", "c5 f8 77", 3},
	{"vzeroall", "c5 fc 77", 3},
	{"rdpkru", "0f 01 ee", 3},
	{"wrpkru", "0f 01 ef", 3},
	{"xgetbv", "0f 01 d0", 3},
	{"xsave (rsp)", "0f ae 24 24", 4},
	{"xsavec64 0x40(rsp)", "48 0f c7 64 24 40", 6},
	{"xrstor64 disp32", "48 0f ae ac 24 00 01 00 00", 9},
	{"xsaveopt rip", "0f ae 35 00 00 00 00", 7},
	{"lfence", "0f ae e8", 3},
	{"vpshufb vex3 0f38", "c4 e2 75 00 c2", 5},
	{"vpalignr vex3 0f3a ib", "c4 e3 75 0f c2 08", 6},
	{"vpermq vex3 0f3a ib mem", "c4 e3 fd 00 44 24 08 d8", 8},
	{"vpshufd vex2 ib", "c5 f9 70 c1 1b", 5},
	{"vpcmpeqb vex2", "c5 f5 74 c2", 4},
	{"vmovdqu64 evex", "62 e1 fe 48 6f 06", 6},
	{"vmovdqu64 evex disp8", "62 e1 fe 48 6f 46 01", 7},
	{"vpternlogd evex 0f3a ib", "62 f3 75 48 25 c2 96", 7},
	{"vpcmpb evex 0f3a ib disp32", "62 f3 7d 48 3f 8f 00 01 00 00 00", 11},
	{"vprord evex 0f ib", "62 f1 75 48 72 c1 05", 7},
	{"vpminub evex 0f", "62 b1 7d 48 da c0", 6},
	{"movabs imm64", "48 b8 01 02 03 04 05 06 07 08", 10},
	{"mov r10 imm64", "49 ba 01 02 03 04 05 06 07 08", 10},
	{"mov eax imm32", "b8 3c 00 00 00", 5},
	{"mov ax imm16", "66 b8 01 00", 4},
	{"movabs al moffs", "a0 01 02 03 04 05 06 07 08", 9},
	{"movabs eax moffs", "a1 01 02 03 04 05 06 07 08", 9},
	{"movabs moffs al", "a2 01 02 03 04 05 06 07 08", 9},
	{"movabs moffs rax", "48 a3 01 02 03 04 05 06 07 08", 10},
	{"addr32 mov al moffs32", "67 a0 01 02 03 04", 6},
	{"addr32 mov moffs32 eax", "67 a3 01 02 03 04", 6},
	{"movw imm16", "66 c7 00 34 12", 5},
	{"movw imm16 disp8", "66 c7 40 08 34 12", 6},
	{"movl imm32", "c7 00 78 56 34 12", 6},
	{"movq imm32 sext", "48 c7 c0 ff ff ff ff", 7},
	{"66 rex.w c7 imm32", "66 48 c7 c0 ff ff ff ff", 8},
	{"test byte imm8", "f6 c1 01", 3},
	{"test byte /1 imm8", "f6 c9 01", 3},
	{"not byte", "f6 d1", 2},
	{"neg byte", "f6 d9", 2},
	{"mul byte", "f6 e1", 2},
	{"div byte mem", "f6 30", 2},
	{"test dword imm32", "f7 c1 00 01 00 00", 6},
	{"test word imm16", "66 f7 c1 00 01", 5},
	{"test dword mem imm32", "f7 44 24 08 00 01 00 00", 8},
	{"neg dword", "f7 d8", 2},
	{"idiv qword", "48 f7 f9", 3},
	{"enter", "c8 10 00 01", 4},
	{"ret imm16", "c2 08 00", 3},
	{"lret imm16", "ca 08 00", 3},
	{"ret", "c3", 1},
	{"nopw cs 66 2e", "66 2e 0f 1f 84 00 00 00 00 00", 10},
	{"data16 x5 nopw", "66 66 66 66 66 2e 0f 1f 84 00 00 00 00 00", 14},
	{"nopl 0(rax,rax)", "0f 1f 44 00 00", 5},
	{"xchg ax,ax", "66 90", 2},
	{"syscall", "0f 05", 2},
	{"sib no base disp32", "8b 04 25 00 10 00 00", 7},
	{"sib rbp base disp8", "8b 44 25 08", 4},
	{"rip relative", "48 8b 05 00 00 00 00", 7},
	{"rip relative + imm8", "80 3d 00 00 00 00 01", 7},
	{"rip relative + imm32", "c7 05 00 00 00 00 01 00 00 00", 10},
	{"lea r13 sib", "4c 8d 6c 24 10", 5},
	{"call rel32", "e8 00 00 00 00", 5},
	{"jmp rel8", "eb fe", 2},
	{"jne rel32", "0f 85 00 01 00 00", 6},
	{"imul imm8", "6b c0 03", 3},
	{"imul imm32", "69 c0 00 01 00 00", 6},
	{"imul imm16", "66 69 c0 00 01", 5},
	{"push imm32", "68 00 01 00 00", 5},
	{"shld imm8", "0f a4 c2 03", 4},
	{"bt imm8", "0f ba e0 03", 4},
	{"pshufd ib", "66 0f 70 c1 1b", 5},
	{"pcmpistri 0f3a ib", "66 0f 3a 63 c1 1a", 6},
	{"pshufb 0f38", "66 0f 38 00 c1", 5},
	{"crc32", "f2 48 0f 38 f1 c1", 6},
	{"movbe", "0f 38 f0 06", 4},
	{"mov cr0 (mod ignored)", "0f 20 00", 3},
	{"3dnow pfadd", "0f 0f c1 9e", 4},
	{"3dnow mem", "0f 0f 44 24 08 b4", 6},
	{"fstcw (no fwait)", "d9 7c 24 08", 4},
	{"fwait", "9b", 1},
	{"lock cmpxchg", "f0 48 0f b1 0a", 5},
	{"fs mov", "64 48 8b 04 25 28 00 00 00", 9},
	{"xbegin rel32", "c7 f8 00 00 00 00", 6},
	{"xabort", "c6 f8 01", 3},
	{"int3", "cc", 1},
	{"int imm8", "cd 80", 2},
	{"in al imm8", "e4 60", 2},
	{"pop r/m", "8f c0", 2},
	{"xop vprotd imm8", "8f e8 78 c2 c1 05", 6},
	{"tzcnt", "f3 48 0f bc c0", 5},
	{"ud2", "0f 0b", 2},
	{"ud1", "0f b9 c0", 3},
	{"cpuid", "0f a2", 2},
	{"rdtscp", "0f 01 f9", 3},
	{"vpbroadcastq evex", "62 f2 fd 48 59 c0", 6},
	{"kmovq vex", "c4 e1 fb 92 c0", 5},
	{"vcmpps vex ib", "c5 fc c2 c1 00", 5},
	{"bswap", "0f c8", 2},
}

func TestLenTable(t *testing.T) {
	for _, c := range lenCases {
		code := mustHex(t, c.hex)
		n, err := Len(code)
		if err != nil || n != c.n {
			t.Errorf("%s (%s): Len = %d, %v; want %d", c.name, c.hex, n, err, c.n)
		}
		if len(code) != c.n {
			t.Errorf("%s: test case has %d bytes, want %d", c.name, len(code), c.n)
		}
		// Every proper prefix must be reported as truncated.
		for k := 0; k < len(code); k++ {
			if n, err := Len(code[:k]); !errors.Is(err, ErrTruncated) {
				t.Errorf("%s: Len(first %d bytes) = %d, %v; want ErrTruncated", c.name, k, n, err)
			}
		}
		// Trailing bytes must not change the length.
		if n, err := Len(append(code[:len(code):len(code)], 0x0f, 0x05, 0xcc)); err != nil || n != c.n {
			t.Errorf("%s: with trailing bytes Len = %d, %v; want %d", c.name, n, err, c.n)
		}
	}
}

func TestLenInvalid(t *testing.T) {
	for _, h := range []string{"06", "07", "27", "60", "9a", "ce", "d6", "ea", "0f 04", "0f 0a", "0f a6",
		"c4 e0 7d 00 c0",    // VEX3 map 0
		"62 f4 7d 48 00 c0", // EVEX map 4 (APX) not supported
	} {
		code := mustHex(t, h)
		var ie *InvalidError
		if n, err := Len(code); !errors.As(err, &ie) {
			t.Errorf("Len(%s) = %d, %v; want InvalidError", h, n, err)
		}
	}
	for _, h := range []string{"66 e8 00 00 00 00", "66 e9 00 00", "66 0f 84 00 00 00 00"} {
		if n, err := Len(mustHex(t, h)); !errors.Is(err, ErrVendorDependent) {
			t.Errorf("Len(%s) = %d, %v; want ErrVendorDependent", h, n, err)
		}
	}
	if _, err := Len(nil); !errors.Is(err, ErrTruncated) {
		t.Errorf("Len(nil): %v", err)
	}
	// 15 prefixes then an opcode: too long.
	long := mustHex(t, strings.Repeat("66", 15)+"90")
	if n, err := Len(long); !errors.Is(err, ErrTooLong) {
		t.Errorf("Len(16-byte insn) = %d, %v; want ErrTooLong", n, err)
	}
	// 14 prefixes + 1-byte opcode is exactly 15: fine.
	if n, err := Len(long[1:]); err != nil || n != 15 {
		t.Errorf("Len(15-byte insn) = %d, %v", n, err)
	}
}

func TestBoundaries(t *testing.T) {
	code := mustHex(t, "f3 0f 1e fa"+ // endbr64
		"06"+ // undecodable
		"c5 f8 77"+ // vzeroupper
		"b8 0f 05 00 00"+ // mov $0x50f,%eax
		"c3")
	starts, undec := Boundaries(code)
	want := []int{0, 5, 8, 13}
	if undec != 1 || !equalInts(starts, want) {
		t.Fatalf("Boundaries = %v, %d; want %v, 1", starts, undec, want)
	}
	// Truncated final instruction: each remaining byte is undecodable.
	starts, undec = Boundaries(mustHex(t, "90 48 b8 01"))
	if !equalInts(starts, []int{0}) || undec != 3 {
		t.Fatalf("truncated tail: %v, %d", starts, undec)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSites(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want []Site
	}{
		{
			name: "syscall inside an immediate is not a site",
			hex:  "b8 0f 05 00 00 c3",
			want: nil,
		},
		{
			name: "syscall bytes inside movabs imm64",
			hex:  "48 b8 b8 3c 00 00 00 0f 05 90 c3",
			want: nil,
		},
		{
			name: "mov+syscall pair",
			hex:  "90 b8 3c 00 00 00 0f 05 c3",
			want: []Site{{Offset: 1, Kind: MovSyscall, Nr: 60, Syscall: 6}},
		},
		{
			name: "bare syscall and mov with other register",
			hex:  "48 89 f8 0f 05 bf 3c 00 00 00 0f 05",
			want: []Site{
				{Offset: 3, Kind: BareSyscall, Syscall: 3},
				{Offset: 10, Kind: BareSyscall, Syscall: 10},
			},
		},
		{
			name: "branch target on the syscall of a pair",
			// 0: test %edi,%edi; 2: je +5 -> 9; 4: mov $0x27,%eax; 9: syscall
			hex:  "85 ff 74 05 b8 27 00 00 00 0f 05 c3",
			want: []Site{{Offset: 4, Kind: MovSyscall, Nr: 0x27, Syscall: 9, SyscallIsBranchTarget: true}},
		},
		{
			name: "backward rel32 branch to a pair's syscall",
			// 0: mov $1,%eax; 5: syscall; 7: jmp rel32 -> 5
			hex:  "b8 01 00 00 00 0f 05 e9 f9 ff ff ff",
			want: []Site{{Offset: 0, Kind: MovSyscall, Nr: 1, Syscall: 5, SyscallIsBranchTarget: true}},
		},
		{
			name: "pair at the very end of the buffer",
			hex:  "c3 b8 e7 00 00 00 0f 05",
			want: []Site{{Offset: 1, Kind: MovSyscall, Nr: 0xe7, Syscall: 6}},
		},
		{
			name: "mov at end with truncated syscall",
			hex:  "c3 b8 e7 00 00 00 0f",
			want: nil,
		},
		{
			name: "bare syscall at the very end",
			hex:  "c3 0f 05",
			want: []Site{{Offset: 1, Kind: BareSyscall, Syscall: 1}},
		},
		{
			name: "mov not directly followed by syscall",
			hex:  "b8 01 00 00 00 90 0f 05",
			want: []Site{{Offset: 6, Kind: BareSyscall, Syscall: 6}},
		},
		{
			name: "prefixed mov is not a pair",
			hex:  "41 b8 01 00 00 00 0f 05",
			want: []Site{{Offset: 6, Kind: BareSyscall, Syscall: 6}},
		},
		{
			name: "resync after undecodable byte",
			hex:  "06 b8 01 00 00 00 0f 05",
			want: []Site{{Offset: 1, Kind: MovSyscall, Nr: 1, Syscall: 6}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Sites(mustHex(t, tc.hex))
			if len(got) != len(tc.want) {
				t.Fatalf("Sites = %+v; want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("site %d = %+v; want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestCompareSectionDetects(t *testing.T) {
	// Sanity check of the objdump comparator itself: a disagreement must be
	// counted, one next to "(bad)" must be excused.
	data := mustHex(t, "90 b8 01 00 00 00 c3")
	starts, _ := Boundaries(data)
	var r crossResult
	compareSection(&r, "t", 0x1000, data, []objdumpInsn{{addr: 0x1000}, {addr: 0x1001}, {addr: 0x1003}, {addr: 0x1006}}, starts)
	if r.disagreements != 1 || r.compared != 3 {
		t.Fatalf("disagreement not detected: %+v", r)
	}
	r = crossResult{}
	compareSection(&r, "t", 0x1000, data, []objdumpInsn{{addr: 0x1000}, {addr: 0x1001, bad: true}, {addr: 0x1002}, {addr: 0x1006}}, starts)
	if r.disagreements != 0 || r.excused != 1 {
		t.Fatalf("(bad) region not excused: %+v", r)
	}
}

func FuzzLen(f *testing.F) {
	for _, c := range lenCases {
		f.Add(mustHex(f, c.hex))
	}
	f.Add([]byte{})
	f.Add([]byte{0x62})
	f.Add([]byte{0xc4, 0xe3})
	f.Fuzz(func(t *testing.T, code []byte) {
		code = code[:len(code):len(code)] // any read past len(code) panics
		n, err := Len(code)
		if err != nil {
			if n != 0 {
				t.Fatalf("Len = %d with error %v", n, err)
			}
			return
		}
		if n < 1 || n > MaxLen || n > len(code) {
			t.Fatalf("Len = %d for %d bytes", n, len(code))
		}
		// Determinism and independence from trailing bytes.
		if n2, err2 := Len(code[:n:n]); err2 != nil || n2 != n {
			t.Fatalf("Len(code[:%d]) = %d, %v", n, n2, err2)
		}
		in, err := Decode(code)
		if err != nil || in.Len != n || in.Op < in.Legacy || in.Op >= n || in.ModRM >= n || (in.ModRM >= 0 && in.ModRM <= in.Op) {
			t.Fatalf("Decode = %+v, %v; Len = %d", in, err, n)
		}
		starts, undec := Boundaries(code)
		if len(starts) == 0 || starts[0] != 0 || undec < 0 {
			t.Fatalf("Boundaries = %v, %d", starts, undec)
		}
		_ = Sites(code)
	})
}

// TestBranchTargetsPrefixed: prefixed direct branches (bnd, branch hints,
// REX, operand size) are branches too; their targets are found where the
// processor would go.
func TestBranchTargetsPrefixed(t *testing.T) {
	for _, c := range []struct {
		name string
		hex  string
		want []int
	}{
		{"plain jmp rel8", "eb 02 90 90 90", []int{4}},
		{"bnd jmp rel32", "f2 e9 01 00 00 00 90 90", []int{7}},
		{"bnd call rel32", "f2 e8 00 00 00 00 90", []int{6}},
		{"bnd jcc rel32", "f2 0f 84 01 00 00 00 90 90", []int{8}},
		{"branch hint jcc rel8", "3e 74 01 90 90", []int{4}},
		{"REX before jmp rel32", "48 e9 01 00 00 00 90 90", []int{7}},
		{"bnd jmp backwards", "90 f2 eb fd", []int{1}},
		{"not a branch", "66 90 90", nil},
	} {
		code := mustHex(t, c.hex)
		starts, _ := Boundaries(code)
		targets := BranchTargets(code, starts)
		bits := BranchTargetBits(code, starts)
		var got []int
		for off := range code {
			if targets[off] {
				got = append(got, off)
			}
			if targets[off] != (bits[off/64]&(1<<(off%64)) != 0) {
				t.Errorf("%s: the map and the bit set disagree at %d", c.name, off)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: targets %v, want %v", c.name, got, c.want)
		}
	}
}

// TestDecode: where Decode puts the parts of an instruction.
func TestDecode(t *testing.T) {
	for _, c := range []struct {
		hex  string
		want Inst
		rip  bool
	}{
		{"48 8b 05 01 02 03 04", Inst{Len: 7, REX: 0x48, Op: 1, ModRM: 2}, true},           // mov 0x..(%rip),%rax
		{"48 8b 52 18", Inst{Len: 4, REX: 0x48, Op: 1, ModRM: 2}, false},                   // mov 0x18(%rdx),%rdx
		{"66 89 c0", Inst{Len: 3, Legacy: 1, Op: 1, ModRM: 2, OpSize: true}, false},        // mov %ax,%ax
		{"48 66 89 c0", Inst{Len: 4, Legacy: 1, Op: 2, ModRM: 3, OpSize: true}, false},     // REX then a legacy prefix: the REX is void
		{"b8 27 00 00 00", Inst{Len: 5, ModRM: -1}, false},                                 // mov $39,%eax
		{"0f 05", Inst{Len: 2, ModRM: -1}, false},                                          // syscall
		{"f3 0f 1e fa", Inst{Len: 4, Legacy: 1, Op: 1, ModRM: 3, Rep: true}, false},        // endbr64
		{"c5 f8 77", Inst{Len: 3, Op: 0, ModRM: -1, VEX: true}, false},                     // vzeroupper
		{"c4 e2 79 18 05 00 00 00 00", Inst{Len: 9, ModRM: 4, VEX: true}, true},            // vbroadcastss 0x0(%rip),%xmm0
		{"f2 e9 01 00 00 00", Inst{Len: 6, Legacy: 1, Op: 1, ModRM: -1, Rep: true}, false}, // bnd jmp
	} {
		code := mustHex(t, c.hex)
		got, err := Decode(code)
		if err != nil || got != c.want || got.RIPRelative(code) != c.rip {
			t.Errorf("Decode(%s) = %+v, %v (RIP-relative %v); want %+v (%v)", c.hex, got, err, got.RIPRelative(code), c.want, c.rip)
		}
	}
}
