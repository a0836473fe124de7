package forkscan

import "github.com/kbox-go/kbox/internal/x86len"

// maxTrace bounds how many instructions traceNr walks back from a syscall.
const maxTrace = 24

// General-purpose register numbers (ModRM encoding with REX bits).
const (
	regRAX = 0
	regRDX = 2
	regRSP = 4
)

// effKind classifies what one instruction does to the general-purpose
// registers, as far as the backward trace cares.
type effKind uint8

const (
	effStop  effKind = iota // unknown effect, or control transfer: stop the trace
	effNone                 // writes no general-purpose register (flags, memory, vector registers only)
	effWrite                // writes reg with a value the trace does not know
	effImm                  // reg = imm (the low 32 bits are exact)
	effLow8                 // the low byte of reg = imm, the rest unchanged
	effCopy                 // reg = src (the low 32 bits are exact)
	effPop                  // reg = the value popped from the stack
)

type effect struct {
	kind     effKind
	reg, src int
	imm      uint32
}

// traceNr walks backwards from the syscall instruction at starts[i] through
// straight-line code to find the literal value of %eax there. It follows
// copies between registers (`mov %r9,%rax`), combines `mov $imm8,%al` with
// an earlier zeroing or mov of the whole register, and understands `push
// $imm; pop %rax`. It gives up at anything it cannot prove leaves the
// tracked register alone: calls, jumps, returns, loads into the register,
// undecodable bytes, unlisted opcodes. Conditional branches are walked past
// (their fall-through path is the one that reaches the syscall); direct
// branches *into* the walked window are the caller's concern. from is the
// index in starts of the instruction that set the value.
func traceNr(code []byte, starts []int, i int) (nr uint32, from int, ok bool) {
	t := regRAX
	low := -1 // low byte of t, once a later `mov $imm8` set it
	for j := i - 1; j >= 0 && i-j <= maxTrace; j-- {
		off := starts[j]
		n, err := x86len.Len(code[off:])
		if err != nil || off+n != starts[j+1] {
			return 0, 0, false // undecodable bytes in between
		}
		e := classify(code[off : off+n])
		switch e.kind {
		case effStop:
			return 0, 0, false
		case effNone:
			continue
		}
		if e.reg != t {
			continue
		}
		switch e.kind {
		case effImm:
			v := e.imm
			if low >= 0 {
				v = v&^0xff | uint32(low)
			}
			return v, j, true
		case effLow8:
			if low < 0 { // a later write of the low byte wins
				low = int(e.imm)
			}
		case effCopy:
			if low >= 0 || e.src == regRSP {
				return 0, 0, false
			}
			t = e.src
		case effPop:
			if j == 0 {
				return 0, 0, false
			}
			p := starts[j-1]
			var v uint32
			switch {
			case off-p == 2 && code[p] == 0x6a: // push imm8 (sign-extended)
				v = uint32(int32(int8(code[p+1])))
			case off-p == 5 && code[p] == 0x68: // push imm32
				v = le32(code[p+1:])
			default:
				return 0, 0, false
			}
			if low >= 0 {
				v = v&^0xff | uint32(low)
			}
			return v, j - 1, true
		default: // effWrite
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// sseNoGPR lists two-byte (0f xx) SSE/MMX opcodes whose destination is a
// vector register or memory, never a general-purpose register.
var sseNoGPR = func() (t [256]bool) {
	for _, r := range [][2]int{
		{0x10, 0x17}, {0x28, 0x29}, {0x2b, 0x2b}, {0x51, 0x6f}, {0x70, 0x70},
		{0x74, 0x76}, {0xc2, 0xc2}, {0xc6, 0xc6}, {0xd4, 0xd6}, {0xd8, 0xdf},
		{0xe0, 0xef}, {0xf1, 0xfe},
	} {
		for b := r[0]; b <= r[1]; b++ {
			t[b] = true
		}
	}
	return t
}()

// classify returns the register effect of the single, complete instruction
// ins. It is conservative: anything not listed is effStop, so an error can
// only cost a trace, never produce a wrong number.
func classify(ins []byte) effect {
	in, err := x86len.Decode(ins)
	if err != nil || in.Len != len(ins) {
		return effect{}
	}
	opsize, rep, rex, p := in.OpSize, in.Rep, in.REX, in.Op
	hasREX := rex != 0
	rexW := rex&8 != 0
	rexR := int(rex>>2&1) << 3
	rexB := int(rex&1) << 3
	op := ins[p]

	// ModRM fields; valid only when the opcode has a ModRM byte (Len
	// guarantees it is present).
	var mod byte
	var reg, rm int
	modrm := func() bool {
		if in.ModRM < 0 {
			return false
		}
		m := ins[in.ModRM]
		mod, reg, rm = m>>6, int(m>>3&7)|rexR, int(m&7)|rexB
		return true
	}
	// byteReg maps an 8-bit register encoding to the register it writes;
	// high is set for ah, ch, dh, bh (bits 8-15 of rax..rbx).
	byteReg := func(enc int) (r int, high bool) {
		if !hasREX && enc >= 4 && enc <= 7 {
			return enc - 4, true
		}
		return enc, false
	}
	write := func(r int) effect { return effect{kind: effWrite, reg: r} }
	writeByte := func(enc int) effect { r, _ := byteReg(enc); return write(r) }
	none := effect{kind: effNone}
	stop := effect{}

	switch {
	case op == 0x0f:
		return classify0f(ins, p+1, rep, hasREX, rexR, rexB)

	case op < 0x40 && op&7 <= 5: // add, or, adc, sbb, and, sub, xor, cmp
		cmp := op>>3 == 7
		switch op & 7 {
		case 0, 1: // op r/m, r
			if !modrm() {
				return stop
			}
			if cmp || mod != 3 {
				return none
			}
			if op&7 == 0 {
				return writeByte(rm)
			}
			if (op == 0x31 || op == 0x29) && reg == rm && !opsize {
				return effect{kind: effImm, reg: rm} // xor/sub r,r: zero
			}
			return write(rm)
		case 2, 3: // op r, r/m
			if !modrm() {
				return stop
			}
			if cmp {
				return none
			}
			if op&7 == 2 {
				return writeByte(reg)
			}
			if (op == 0x33 || op == 0x2b) && mod == 3 && reg == rm && !opsize {
				return effect{kind: effImm, reg: reg}
			}
			return write(reg)
		default: // op al/eax, imm
			if cmp {
				return none
			}
			return write(regRAX)
		}

	case op >= 0x50 && op <= 0x57, op == 0x68, op == 0x6a: // push
		return write(regRSP)
	case op >= 0x58 && op <= 0x5f: // pop r
		return effect{kind: effPop, reg: int(op&7) | rexB}
	case op == 0x63: // movsxd r, r/m
		if !modrm() {
			return stop
		}
		if mod == 3 && !opsize {
			return effect{kind: effCopy, reg: reg, src: rm}
		}
		return write(reg)
	case op == 0x69 || op == 0x6b: // imul r, r/m, imm
		if !modrm() {
			return stop
		}
		return write(reg)
	case op >= 0x70 && op <= 0x7f: // jcc rel8
		return none
	case op == 0x80 || op == 0x81 || op == 0x83: // group 1 r/m, imm
		if !modrm() {
			return stop
		}
		if reg&7 == 7 || mod != 3 { // cmp, or a memory destination
			return none
		}
		if op == 0x80 {
			return writeByte(rm)
		}
		return write(rm)
	case op == 0x84 || op == 0x85 || op == 0xa8 || op == 0xa9: // test
		return none
	case op == 0x88 || op == 0x89: // mov r/m, r
		if !modrm() {
			return stop
		}
		switch {
		case mod != 3:
			return none
		case op == 0x88:
			return writeByte(rm)
		case opsize:
			return write(rm)
		}
		return effect{kind: effCopy, reg: rm, src: reg}
	case op == 0x8a || op == 0x8b: // mov r, r/m
		if !modrm() {
			return stop
		}
		switch {
		case op == 0x8a:
			return writeByte(reg)
		case mod == 3 && !opsize:
			return effect{kind: effCopy, reg: reg, src: rm}
		}
		return write(reg)
	case op == 0x8d: // lea
		if !modrm() {
			return stop
		}
		return write(reg)
	case op == 0x90: // nop, pause, xchg %ax,%ax; with REX.B: xchg %r8,%rax
		if rexB != 0 {
			return stop
		}
		return none
	case op == 0x98: // cbw/cwde/cdqe
		return write(regRAX)
	case op == 0x99: // cwd/cdq/cqo
		return write(regRDX)
	case op >= 0xb0 && op <= 0xb7: // mov $imm8, r8
		r, high := byteReg(int(op&7) | rexB)
		if high || p+1 >= len(ins) {
			return write(r)
		}
		return effect{kind: effLow8, reg: r, imm: uint32(ins[p+1])}
	case op >= 0xb8 && op <= 0xbf: // mov $imm32, r32 / movabs $imm64, r64
		r := int(op&7) | rexB
		if opsize && !rexW || p+5 > len(ins) {
			return write(r)
		}
		return effect{kind: effImm, reg: r, imm: le32(ins[p+1:])}
	case op == 0xc0 || op == 0xc1 || op >= 0xd0 && op <= 0xd3: // shifts
		if !modrm() {
			return stop
		}
		if mod != 3 {
			return none
		}
		if op == 0xc0 || op == 0xd0 || op == 0xd2 {
			return writeByte(rm)
		}
		return write(rm)
	case op == 0xc6 || op == 0xc7: // mov r/m, imm
		if !modrm() {
			return stop
		}
		if reg&7 != 0 { // xabort, xbegin
			return stop
		}
		if mod != 3 {
			return none
		}
		if op == 0xc6 {
			r, high := byteReg(rm)
			if high || p+3 > len(ins) {
				return write(r)
			}
			return effect{kind: effLow8, reg: r, imm: uint32(ins[p+2])}
		}
		if opsize && !rexW || p+6 > len(ins) {
			return write(rm)
		}
		return effect{kind: effImm, reg: rm, imm: le32(ins[p+2:])}
	case op == 0xf6 || op == 0xf7: // group 3
		if !modrm() {
			return stop
		}
		switch reg & 7 {
		case 0, 1: // test
			return none
		case 2, 3: // not, neg
			if mod != 3 {
				return none
			}
			if op == 0xf6 {
				return writeByte(rm)
			}
			return write(rm)
		}
		return stop // mul, imul, div, idiv write rax and rdx
	case op == 0xfe || op == 0xff: // group 4/5
		if !modrm() {
			return stop
		}
		switch {
		case reg&7 <= 1: // inc, dec
			if mod != 3 {
				return none
			}
			if op == 0xfe {
				return writeByte(rm)
			}
			return write(rm)
		case op == 0xff && reg&7 == 6: // push r/m
			return write(regRSP)
		}
		return stop // call, jmp
	case op == 0xc5: // VEX2: only vzeroupper/vzeroall (c5 xx 77)
		if p+2 < len(ins) && ins[p+2] == 0x77 {
			return none
		}
		return stop
	}
	return stop
}

// classify0f handles the two-byte opcode map; q indexes the byte after 0f.
func classify0f(ins []byte, q int, rep, hasREX bool, rexR, rexB int) effect {
	if q >= len(ins) {
		return effect{}
	}
	op := ins[q]
	var mod byte
	var reg, rm int
	if q+1 < len(ins) {
		m := ins[q+1]
		mod, reg, rm = m>>6, int(m>>3&7)|rexR, int(m&7)|rexB
	}
	write := func(r int) effect { return effect{kind: effWrite, reg: r} }
	none := effect{kind: effNone}
	switch {
	case op == 0x18 || op == 0x1f: // prefetch, hint nop
		return none
	case op == 0x1e: // endbr64/endbr32; other encodings (rdssp) write a register
		if rep && q+1 < len(ins) && (ins[q+1] == 0xfa || ins[q+1] == 0xfb) {
			return none
		}
	case op >= 0x80 && op <= 0x8f: // jcc rel32
		return none
	case op >= 0x40 && op <= 0x4f, op == 0xaf, op == 0xb6, op == 0xb7, op == 0xbe, op == 0xbf:
		return write(reg) // cmov, imul, movzx, movsx
	case op >= 0x90 && op <= 0x9f: // setcc r/m8
		if mod != 3 {
			return none
		}
		if !hasREX && rm >= 4 && rm <= 7 {
			return write(rm - 4)
		}
		return write(rm)
	case op == 0xa3: // bt
		return none
	case op == 0xab || op == 0xb3 || op == 0xbb: // bts, btr, btc
		if mod != 3 {
			return none
		}
		return write(rm)
	case op == 0xba: // group 8
		switch {
		case reg&7 == 4:
			return none
		case reg&7 >= 5:
			if mod != 3 {
				return none
			}
			return write(rm)
		}
	case op == 0xae: // fences, fxsave, ldmxcsr, ...; f3 0f ae /r mod 3 is rd/wr{fs,gs}base
		if mod == 3 && rep {
			break
		}
		return none
	case sseNoGPR[op]:
		return none
	}
	return effect{}
}
