// Package x86len owns x86-64 instruction length decoding for the rewrite
// tier's site scanner.
//
// The decoder is self-contained and table driven: it understands legacy
// prefixes, REX, VEX (c4/c5), XOP (8f with map >= 8), EVEX (62), the one-,
// two- (0f) and three-byte (0f 38, 0f 3a) opcode maps including 3DNow!
// (0f 0f /r ib), ModRM/SIB/displacement forms (including RIP-relative) and all
// immediate forms (66h operand size, REX.W b8+r imm64, moffs with 67h,
// group 3 test immediates, enter, ret imm16, ...). It computes lengths only;
// it never interprets operands beyond what the length requires.
//
// All routines are 64-bit mode only and never read past len(code).
package x86len

import (
	"errors"
	"fmt"
)

// MaxLen is the architectural maximum x86 instruction length.
const MaxLen = 15

// ErrTruncated is returned when code ends inside an instruction.
var ErrTruncated = errors.New("x86len: truncated instruction")

// ErrTooLong is returned when an instruction would exceed MaxLen bytes.
var ErrTooLong = errors.New("x86len: instruction longer than 15 bytes")

// ErrVendorDependent is returned for 66h-prefixed near relative branches
// (66 e8, 66 e9, 66 0f 80..8f): Intel CPUs ignore 66h there (rel32) while
// AMD CPUs use a rel16 displacement, so the length is not well defined.
// Compilers never emit these.
var ErrVendorDependent = errors.New("x86len: 66h-prefixed near branch has vendor-dependent length")

// InvalidError reports an opcode that is undefined in 64-bit mode.
type InvalidError struct {
	Offset int  // offset of the offending byte within the instruction
	Byte   byte // the offending byte
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("x86len: invalid opcode byte %#02x at +%d", e.Byte, e.Offset)
}

// Opcode table flags.
const (
	fModRM uint8 = 1 << iota // has a ModRM byte
	fIb                      // 8-bit immediate
	fIw                      // 16-bit immediate
	fIz                      // 16/32-bit immediate (66h selects 16)
	fIv                      // 16/32/64-bit immediate (b8+r)
	fRel32                   // 32-bit relative branch displacement
	fMoffs                   // 64-bit moffs (32-bit with 67h)
	fBad                     // invalid in 64-bit mode
)

var oneByte [256]uint8
var twoByte [256]uint8

func init() {
	// ALU blocks 00-3f: op r/m,r ; op r,r/m ; op al,ib ; op eAX,iz.
	for base := 0; base < 0x40; base += 8 {
		oneByte[base+0] = fModRM
		oneByte[base+1] = fModRM
		oneByte[base+2] = fModRM
		oneByte[base+3] = fModRM
		oneByte[base+4] = fIb
		oneByte[base+5] = fIz
	}
	for _, b := range []int{0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f,
		0x60, 0x61, 0x82, 0x9a, 0xce, 0xd4, 0xd5, 0xd6, 0xea} {
		oneByte[b] = fBad
	}
	oneByte[0x63] = fModRM
	oneByte[0x68] = fIz
	oneByte[0x69] = fModRM | fIz
	oneByte[0x6a] = fIb
	oneByte[0x6b] = fModRM | fIb
	for b := 0x70; b <= 0x7f; b++ {
		oneByte[b] = fIb
	}
	oneByte[0x80] = fModRM | fIb
	oneByte[0x81] = fModRM | fIz
	oneByte[0x83] = fModRM | fIb
	for b := 0x84; b <= 0x8f; b++ {
		oneByte[b] = fModRM
	}
	for b := 0xa0; b <= 0xa3; b++ {
		oneByte[b] = fMoffs
	}
	oneByte[0xa8] = fIb
	oneByte[0xa9] = fIz
	for b := 0xb0; b <= 0xb7; b++ {
		oneByte[b] = fIb
	}
	for b := 0xb8; b <= 0xbf; b++ {
		oneByte[b] = fIv
	}
	oneByte[0xc0] = fModRM | fIb
	oneByte[0xc1] = fModRM | fIb
	oneByte[0xc2] = fIw
	oneByte[0xc6] = fModRM | fIb
	oneByte[0xc7] = fModRM | fIz
	oneByte[0xc8] = fIw | fIb
	oneByte[0xca] = fIw
	oneByte[0xcd] = fIb
	for b := 0xd0; b <= 0xd3; b++ {
		oneByte[b] = fModRM
	}
	for b := 0xd8; b <= 0xdf; b++ {
		oneByte[b] = fModRM
	}
	for b := 0xe0; b <= 0xe7; b++ {
		oneByte[b] = fIb
	}
	oneByte[0xe8] = fRel32
	oneByte[0xe9] = fRel32
	oneByte[0xeb] = fIb
	oneByte[0xf6] = fModRM // immediate depends on ModRM.reg
	oneByte[0xf7] = fModRM
	oneByte[0xfe] = fModRM
	oneByte[0xff] = fModRM

	// Two-byte map (0f xx). Default: ModRM.
	for b := 0; b < 256; b++ {
		twoByte[b] = fModRM
	}
	for _, b := range []int{0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x0e,
		0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x37, 0x77,
		0xa0, 0xa1, 0xa2, 0xa8, 0xa9, 0xaa} {
		twoByte[b] = 0
	}
	for b := 0xc8; b <= 0xcf; b++ {
		twoByte[b] = 0
	}
	for _, b := range []int{0x04, 0x0a, 0x0c, 0x24, 0x25, 0x26, 0x27, 0x36, 0x39,
		0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x7a, 0x7b, 0xa6, 0xa7} {
		twoByte[b] = fBad
	}
	twoByte[0x0f] = fModRM | fIb // 3DNow!
	for _, b := range []int{0x70, 0x71, 0x72, 0x73, 0xa4, 0xac, 0xba, 0xc2, 0xc4, 0xc5, 0xc6} {
		twoByte[b] = fModRM | fIb
	}
	for b := 0x80; b <= 0x8f; b++ {
		twoByte[b] = fRel32
	}
}

// vexMap1Imm8 reports whether a VEX/EVEX-encoded opcode in map 0f takes an imm8.
func vexMap1Imm8(op byte) bool {
	switch op {
	case 0x70, 0x71, 0x72, 0x73, 0xc2, 0xc4, 0xc5, 0xc6:
		return true
	}
	return false
}

// Len returns the length in bytes (1..15) of the instruction at code[0]. It
// returns an error if the bytes are not a valid 64-bit instruction encoding
// or if code ends before the instruction does.
func Len(code []byte) (int, error) {
	d := decoder{code: code, modrmAt: -1}
	return d.decode()
}

// Inst is the shape of one decoded instruction: where its parts are, not
// what it does. The rewrite planner and the fork-site scanner read
// opcodes and ModRM fields through it instead of parsing prefixes again.
type Inst struct {
	Len    int  // bytes
	Legacy int  // legacy prefix bytes (66, 67, f0, f2, f3, segments)
	REX    byte // the REX prefix in effect (immediately before the opcode), 0 if none
	Op     int  // offset of the opcode's first byte (0f for the two- and three-byte maps; c4/c5/62/8f for VEX, EVEX, XOP)
	ModRM  int  // offset of the ModRM byte, -1 if the instruction has none
	VEX    bool // VEX, EVEX or XOP encoded
	OpSize bool // a 66 (operand-size) prefix
	Rep    bool // an f2 or f3 (repne, rep) prefix
}

// RIPRelative reports whether in (decoded from code) has a RIP-relative
// memory operand.
func (in Inst) RIPRelative(code []byte) bool {
	if in.ModRM < 0 || in.ModRM >= len(code) {
		return false
	}
	m := code[in.ModRM]
	return m>>6 == 0 && m&7 == 5
}

// Decode decodes the instruction at the start of code.
func Decode(code []byte) (Inst, error) {
	d := decoder{code: code, modrmAt: -1}
	n, err := d.decode()
	if err != nil {
		return Inst{}, err
	}
	return Inst{Len: n, Legacy: d.legacy, REX: d.rex, Op: d.opAt, ModRM: d.modrmAt, VEX: d.vexLike, OpSize: d.opsize, Rep: d.rep}, nil
}

type decoder struct {
	code []byte
	pos  int
	// What Decode reports besides the length.
	opAt, modrmAt, legacy int
	rex                   byte
	vexLike, opsize, rep  bool
}

func (d *decoder) next() (byte, error) {
	if d.pos >= MaxLen {
		return 0, ErrTooLong
	}
	if d.pos >= len(d.code) {
		return 0, ErrTruncated
	}
	b := d.code[d.pos]
	d.pos++
	return b, nil
}

func (d *decoder) skip(n int) error {
	if d.pos+n > MaxLen {
		return ErrTooLong
	}
	if d.pos+n > len(d.code) {
		return ErrTruncated
	}
	d.pos += n
	return nil
}

func (d *decoder) bad(at int) error {
	return &InvalidError{Offset: at, Byte: d.code[at]}
}

// modrm consumes a ModRM byte plus any SIB and displacement. It returns the
// ModRM byte. 64-bit mode has no 16-bit addressing, so 67h does not change
// the shape of the memory operand.
func (d *decoder) modrm() (byte, error) {
	if d.modrmAt < 0 {
		d.modrmAt = d.pos
	}
	m, err := d.next()
	if err != nil {
		return 0, err
	}
	mod, rm := m>>6, m&7
	if mod == 3 {
		return m, nil
	}
	disp := 0
	if rm == 4 {
		sib, err := d.next()
		if err != nil {
			return 0, err
		}
		if mod == 0 && sib&7 == 5 {
			disp = 4
		}
	}
	switch mod {
	case 0:
		if rm == 5 { // RIP-relative
			disp = 4
		}
	case 1:
		disp = 1
	case 2:
		disp = 4
	}
	return m, d.skip(disp)
}

func (d *decoder) decode() (int, error) {
	var opsize, addrsize, rexW, repne bool
	var b byte
	var err error
	// Legacy prefixes and REX. A REX prefix only counts when it immediately
	// precedes the opcode (or VEX/EVEX escape, where it is invalid anyway).
	for {
		if b, err = d.next(); err != nil {
			return 0, err
		}
		switch {
		case b == 0x66:
			opsize = true
			d.opsize = true
			rexW = false
			d.legacy++
			d.rex = 0
			continue
		case b == 0x67:
			addrsize = true
			rexW = false
			d.legacy++
			d.rex = 0
			continue
		case b == 0xf2:
			repne = true
			d.rep = true
			rexW = false
			d.legacy++
			d.rex = 0
			continue
		case b == 0xf3, b == 0xf0, b == 0x2e, b == 0x36, b == 0x3e, b == 0x26, b == 0x64, b == 0x65:
			d.rep = d.rep || b == 0xf3
			rexW = false
			d.legacy++
			d.rex = 0
			continue
		case b&0xf0 == 0x40:
			// REX only takes effect if it immediately precedes the opcode;
			// any following legacy prefix clears it again (see above).
			rexW = b&8 != 0
			d.rex = b
			continue
		}
		break
	}
	opAt := d.pos - 1
	d.opAt = opAt
	switch b {
	case 0x0f:
		return d.twoByte(opsize, repne)
	case 0xc5: // VEX2
		d.vexLike = true
		if _, err := d.next(); err != nil {
			return 0, err
		}
		return d.vex(1)
	case 0xc4: // VEX3
		d.vexLike = true
		p1, err := d.next()
		if err != nil {
			return 0, err
		}
		if _, err := d.next(); err != nil {
			return 0, err
		}
		mm := p1 & 0x1f
		if mm < 1 || mm > 3 {
			return 0, d.bad(opAt + 1)
		}
		return d.vex(int(mm))
	case 0x8f: // POP r/m or XOP
		if d.pos < len(d.code) && d.code[d.pos]&0x1f >= 8 {
			d.vexLike = true
			p1, _ := d.next()
			if _, err := d.next(); err != nil {
				return 0, err
			}
			mm := p1 & 0x1f
			if _, err := d.next(); err != nil { // opcode
				return 0, err
			}
			if _, err := d.modrm(); err != nil {
				return 0, err
			}
			switch mm {
			case 8:
				err = d.skip(1)
			case 9:
			case 0xa:
				err = d.skip(4)
			default:
				return 0, d.bad(opAt + 1)
			}
			if err != nil {
				return 0, err
			}
			return d.pos, nil
		}
	case 0x62: // EVEX
		d.vexLike = true
		p0, err := d.next()
		if err != nil {
			return 0, err
		}
		if err := d.skip(2); err != nil {
			return 0, err
		}
		mm := p0 & 7
		switch mm {
		case 1, 2, 3, 5, 6:
		default:
			return 0, d.bad(opAt + 1)
		}
		return d.vex(int(mm))
	}

	f := oneByte[b]
	if f&fBad != 0 {
		return 0, d.bad(opAt)
	}
	if f&fRel32 != 0 && opsize {
		return 0, ErrVendorDependent
	}
	if f&fModRM != 0 {
		m, err := d.modrm()
		if err != nil {
			return 0, err
		}
		if (b == 0xf6 || b == 0xf7) && (m>>3)&7 <= 1 {
			if b == 0xf6 {
				f |= fIb
			} else {
				f |= fIz
			}
		}
	}
	return d.imm(f, opsize, addrsize, rexW)
}

func (d *decoder) imm(f uint8, opsize, addrsize, rexW bool) (int, error) {
	n := 0
	if f&fIw != 0 {
		n += 2
	}
	if f&fIb != 0 {
		n++
	}
	if f&fIz != 0 {
		if opsize && !rexW {
			n += 2
		} else {
			n += 4
		}
	}
	if f&fIv != 0 {
		switch {
		case rexW:
			n += 8
		case opsize:
			n += 2
		default:
			n += 4
		}
	}
	if f&fRel32 != 0 {
		n += 4
	}
	if f&fMoffs != 0 {
		if addrsize {
			n += 4
		} else {
			n += 8
		}
	}
	if err := d.skip(n); err != nil {
		return 0, err
	}
	return d.pos, nil
}

func (d *decoder) twoByte(opsize, repne bool) (int, error) {
	opAt := d.pos
	op, err := d.next()
	if err != nil {
		return 0, err
	}
	switch op {
	case 0x38, 0x3a:
		if _, err := d.next(); err != nil {
			return 0, err
		}
		if _, err := d.modrm(); err != nil {
			return 0, err
		}
		if op == 0x3a {
			if err := d.skip(1); err != nil {
				return 0, err
			}
		}
		return d.pos, nil
	case 0x20, 0x21, 0x22, 0x23:
		// MOV to/from control/debug registers: ModRM is always treated as
		// a register form, regardless of mod.
		if err := d.skip(1); err != nil {
			return 0, err
		}
		return d.pos, nil
	case 0x78:
		// SSE4a EXTRQ (66 0f 78 /0 ib ib) and INSERTQ (f2 0f 78 /r ib ib);
		// otherwise VMREAD.
		if _, err := d.modrm(); err != nil {
			return 0, err
		}
		if opsize || repne {
			if err := d.skip(2); err != nil {
				return 0, err
			}
		}
		return d.pos, nil
	}
	f := twoByte[op]
	if f&fBad != 0 {
		return 0, d.bad(opAt)
	}
	if f&fRel32 != 0 && opsize {
		return 0, ErrVendorDependent
	}
	if f&fModRM != 0 {
		if _, err := d.modrm(); err != nil {
			return 0, err
		}
	}
	return d.imm(f, false, false, false)
}

// vex finishes a VEX/EVEX instruction once the escape prefix is consumed.
func (d *decoder) vex(mapSel int) (int, error) {
	op, err := d.next()
	if err != nil {
		return 0, err
	}
	if mapSel == 1 && op == 0x77 { // vzeroupper / vzeroall
		return d.pos, nil
	}
	if _, err := d.modrm(); err != nil {
		return 0, err
	}
	if mapSel == 3 || (mapSel == 1 && vexMap1Imm8(op)) {
		if err := d.skip(1); err != nil {
			return 0, err
		}
	}
	return d.pos, nil
}
