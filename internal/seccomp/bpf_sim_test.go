package seccomp

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// xnetPacket serializes d for golang.org/x/net/bpf's VM, which loads words
// big-endian: every 4-byte word is written big-endian so that it reads back
// as the value the kernel sees on a little-endian machine.  u64 fields put
// their low word first.
func xnetPacket(d Data) []byte {
	b := make([]byte, seccompDataSize)
	put64 := func(off int, v uint64) {
		binary.BigEndian.PutUint32(b[off:], uint32(v))
		binary.BigEndian.PutUint32(b[off+4:], uint32(v>>32))
	}
	binary.BigEndian.PutUint32(b[0:], uint32(d.Nr))
	binary.BigEndian.PutUint32(b[4:], d.Arch)
	put64(8, d.IP)
	for i, v := range d.Args {
		put64(16+8*i, v)
	}
	return b
}

func newXNetVM(t testing.TB, prog []unix.SockFilter) *bpf.VM {
	t.Helper()
	insns := make([]bpf.Instruction, len(prog))
	for i, f := range prog {
		insns[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}.Disassemble()
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("x/net/bpf rejects the program: %v", err)
	}
	return vm
}

// crossCheck compares Simulate with x/net/bpf's VM on d.  The x/net VM
// reports "bytes accepted", so only the zero/nonzero outcome is meaningful in
// general; v0.62.0 happens to return RET's k unchanged, which is checked too
// so that a mistake in either serialization shows up.
func crossCheck(t testing.TB, vm *bpf.VM, prog []unix.SockFilter, d Data) uint32 {
	t.Helper()
	got, err := Simulate(prog, d)
	if err != nil {
		t.Fatalf("Simulate(%+v): %v", d, err)
	}
	n, err := vm.Run(xnetPacket(d))
	if err != nil {
		t.Fatalf("x/net VM(%+v): %v", d, err)
	}
	if (n != 0) != (got != 0) {
		t.Fatalf("%+v: Simulate = %#x, x/net VM accepted %d bytes", d, got, n)
	}
	if uint32(n) != got {
		t.Fatalf("%+v: Simulate = %#x, x/net VM = %#x", d, got, uint32(n))
	}
	return got
}

func TestSimulateXNetCrossCheck(t *testing.T) {
	p := basicProgram()
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	vm := newXNetVM(t, prog)
	arches := []uint32{auditArchX86_64, 0xc00000b7}
	nrs := []int32{0, 1, 2, 56, 59, 101, 102, 199, 200, 250, 299, 300, 1000, 0x3fffffff, 0x40000000, -1}
	args := [][6]uint64{
		{},
		{0xdeadbeef00000000, 1 << 32, 2, 3, 4, 5},
		{unix.CLONE_NEWUSER, unix.CLONE_NEWNS | unix.CLONE_THREAD, 0, 0, 0, 0},
		{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)},
	}
	for _, arch := range arches {
		for _, nr := range nrs {
			for _, a := range args {
				d := Data{Nr: nr, Arch: arch, IP: 0x7fff12345678, Args: a}
				got := crossCheck(t, vm, prog, d)
				if want := refEval(p, d); got != want {
					t.Errorf("%+v: got %#x want %#x", d, got, want)
				}
			}
		}
	}
}

// TestSimulateExact runs a hand-written program over the instructions that
// Compile does not emit.
func TestSimulateExact(t *testing.T) {
	s := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	j := func(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
	}
	// return ((args[1].lo + 3) * 2 - 1) ^ 0xf0 | (len << 8), via X and scratch.
	prog := []unix.SockFilter{
		s(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 24),
		s(unix.BPF_ALU|unix.BPF_ADD|unix.BPF_K, 3),
		s(unix.BPF_ALU|unix.BPF_MUL|unix.BPF_K, 2),
		s(unix.BPF_ALU|unix.BPF_SUB|unix.BPF_K, 1),
		s(unix.BPF_ALU|unix.BPF_XOR|unix.BPF_K, 0xf0),
		s(unix.BPF_ST, 3),
		s(unix.BPF_LD|unix.BPF_W|unix.BPF_LEN, 0),
		s(unix.BPF_ALU|unix.BPF_LSH|unix.BPF_K, 8),
		s(unix.BPF_MISC|unix.BPF_TAX, 0),
		s(unix.BPF_LD|unix.BPF_MEM, 3),
		s(unix.BPF_ALU|unix.BPF_OR|unix.BPF_X, 0),
		j(unix.BPF_JMP|unix.BPF_JGT|unix.BPF_K, 0x10000, 1, 0),
		s(unix.BPF_RET|unix.BPF_A, 0),
		s(unix.BPF_RET|unix.BPF_K, 7),
	}
	got, err := Simulate(prog, Data{Args: [6]uint64{0, 0xffffffff00000010}})
	if err != nil {
		t.Fatal(err)
	}
	if want := uint32(((0x10+3)*2 - 1) ^ 0xf0 | 64<<8); got != want {
		t.Errorf("got %#x want %#x", got, want)
	}
	vm := newXNetVM(t, prog)
	crossCheck(t, vm, prog, Data{Args: [6]uint64{0, 0xffffffff00000010}})
}

func TestSimulateRejects(t *testing.T) {
	ret := unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: retAllow}
	ld := func(k uint32) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: k}
	}
	tests := []struct {
		name string
		prog []unix.SockFilter
	}{
		{"empty", nil},
		{"too long", make([]unix.SockFilter, unix.BPF_MAXINSNS+1)},
		{"no final return", []unix.SockFilter{ret, ld(0)}},
		{"load past seccomp_data", []unix.SockFilter{ld(64), ret}},
		{"misaligned load", []unix.SockFilter{ld(2), ret}},
		{"byte load", []unix.SockFilter{{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS}, ret}},
		{"indirect load", []unix.SockFilter{{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_IND}, ret}},
		{"ja past end", []unix.SockFilter{{Code: unix.BPF_JMP | unix.BPF_JA, K: 1}, ret}},
		{"jt past end", []unix.SockFilter{{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1}, ret}},
		{"jf past end", []unix.SockFilter{{Code: unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, Jf: 1}, ret}},
		{"div by zero", []unix.SockFilter{{Code: unix.BPF_ALU | unix.BPF_DIV | unix.BPF_K}, ret}},
		{"shift 32", []unix.SockFilter{{Code: unix.BPF_ALU | unix.BPF_LSH | unix.BPF_K, K: 32}, ret}},
		{"scratch out of range", []unix.SockFilter{{Code: unix.BPF_ST, K: 16}, ret}},
		{"unknown opcode", []unix.SockFilter{{Code: 0xff}, ret}},
	}
	for _, tt := range tests {
		if got, err := Simulate(tt.prog, Data{}); err == nil {
			t.Errorf("%s: Simulate = %#x, want an error", tt.name, got)
		}
	}
	// The jump just inside the bounds is fine.
	ok := []unix.SockFilter{{Code: unix.BPF_JMP | unix.BPF_JA, K: 1}, ret, ret}
	if _, err := Simulate(ok, Data{}); err != nil {
		t.Errorf("in-range jump: %v", err)
	}
}
