package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Data is a synthetic seccomp_data.
type Data struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

// seccompDataSize is sizeof(struct seccomp_data).
const seccompDataSize = 64

// bytes serializes d as the kernel lays out struct seccomp_data on a
// little-endian machine.
func (d Data) bytes() []byte {
	b := make([]byte, seccompDataSize)
	binary.LittleEndian.PutUint32(b[0:], uint32(d.Nr))
	binary.LittleEndian.PutUint32(b[4:], d.Arch)
	binary.LittleEndian.PutUint64(b[8:], d.IP)
	for i, v := range d.Args {
		binary.LittleEndian.PutUint64(b[16+8*i:], v)
	}
	return b
}

// Simulate runs prog on d exactly as the kernel would on a little-endian
// machine and returns the filter's 32-bit return value.
//
// It first validates prog like the kernel's seccomp filter checks
// (bpf_check_classic and seccomp_check_filter): length 1..4096, only the
// instruction codes seccomp accepts, aligned in-bounds loads of seccomp_data,
// forward jumps that stay inside the program, no division by a zero constant,
// shifts below 32, and a return as the last instruction.  An error means the
// kernel would refuse to install the filter.
func Simulate(prog []unix.SockFilter, d Data) (uint32, error) {
	if err := checkFilter(prog); err != nil {
		return 0, err
	}
	data := d.bytes()
	var (
		A, X uint32
		mem  [unix.BPF_MEMWORDS]uint32
	)
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case ldAbsW:
			A = binary.LittleEndian.Uint32(data[in.K:])
		case ldLenW:
			A = seccompDataSize
		case ldxLenW:
			X = seccompDataSize
		case ldImm:
			A = in.K
		case ldxImm:
			X = in.K
		case ldMem:
			A = mem[in.K]
		case ldxMem:
			X = mem[in.K]
		case unix.BPF_ST:
			mem[in.K] = A
		case unix.BPF_STX:
			mem[in.K] = X
		case unix.BPF_MISC | unix.BPF_TAX:
			X = A
		case unix.BPF_MISC | unix.BPF_TXA:
			A = X
		case unix.BPF_RET | unix.BPF_K:
			return in.K, nil
		case unix.BPF_RET | unix.BPF_A:
			return A, nil
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		default:
			src := in.K
			if in.Code&unix.BPF_X != 0 {
				src = X
			}
			if in.Code&0x07 == unix.BPF_JMP {
				var ok bool
				switch in.Code & 0xf0 {
				case unix.BPF_JEQ:
					ok = A == src
				case unix.BPF_JGT:
					ok = A > src
				case unix.BPF_JGE:
					ok = A >= src
				case unix.BPF_JSET:
					ok = A&src != 0
				}
				if ok {
					pc += int(in.Jt)
				} else {
					pc += int(in.Jf)
				}
				continue
			}
			// BPF_ALU
			switch in.Code & 0xf0 {
			case unix.BPF_ADD:
				A += src
			case unix.BPF_SUB:
				A -= src
			case unix.BPF_MUL:
				A *= src
			case unix.BPF_DIV:
				if src == 0 {
					return 0, nil // the kernel aborts the filter with 0
				}
				A /= src
			case unix.BPF_OR:
				A |= src
			case unix.BPF_AND:
				A &= src
			case unix.BPF_XOR:
				A ^= src
			case unix.BPF_LSH:
				if src >= 32 {
					A = 0
				} else {
					A <<= src
				}
			case unix.BPF_RSH:
				if src >= 32 {
					A = 0
				} else {
					A >>= src
				}
			case unix.BPF_NEG:
				A = -A
			}
		}
	}
	// Unreachable: checkFilter ensures the last instruction returns.
	return 0, errors.New("seccomp: simulate: fell off the end of the program")
}

// Instruction codes not spelled as a single unix constant.
const (
	ldAbsW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	ldLenW  = unix.BPF_LD | unix.BPF_W | unix.BPF_LEN
	ldxLenW = unix.BPF_LDX | unix.BPF_W | unix.BPF_LEN
	ldImm   = unix.BPF_LD | unix.BPF_IMM
	ldxImm  = unix.BPF_LDX | unix.BPF_IMM
	ldMem   = unix.BPF_LD | unix.BPF_MEM
	ldxMem  = unix.BPF_LDX | unix.BPF_MEM
)

// checkFilter validates prog the way the kernel does before accepting a
// seccomp filter.
func checkFilter(prog []unix.SockFilter) error {
	n := len(prog)
	if n == 0 || n > unix.BPF_MAXINSNS {
		return fmt.Errorf("seccomp: simulate: program length %d not in 1..%d", n, unix.BPF_MAXINSNS)
	}
	for pc, in := range prog {
		bad := func(what string) error {
			return fmt.Errorf("seccomp: simulate: instruction %d {code %#04x jt %d jf %d k %#x}: %s",
				pc, in.Code, in.Jt, in.Jf, in.K, what)
		}
		rest := n - pc - 1 // instructions after this one
		switch in.Code {
		case ldAbsW:
			if in.K >= seccompDataSize || in.K%4 != 0 {
				return bad("load outside seccomp_data or misaligned")
			}
		case ldMem, ldxMem, unix.BPF_ST, unix.BPF_STX:
			if in.K >= unix.BPF_MEMWORDS {
				return bad("scratch slot out of range")
			}
		case ldLenW, ldxLenW, ldImm, ldxImm,
			unix.BPF_MISC | unix.BPF_TAX, unix.BPF_MISC | unix.BPF_TXA,
			unix.BPF_RET | unix.BPF_K, unix.BPF_RET | unix.BPF_A,
			unix.BPF_ALU | unix.BPF_NEG:
		case unix.BPF_ALU | unix.BPF_ADD | unix.BPF_K, unix.BPF_ALU | unix.BPF_ADD | unix.BPF_X,
			unix.BPF_ALU | unix.BPF_SUB | unix.BPF_K, unix.BPF_ALU | unix.BPF_SUB | unix.BPF_X,
			unix.BPF_ALU | unix.BPF_MUL | unix.BPF_K, unix.BPF_ALU | unix.BPF_MUL | unix.BPF_X,
			unix.BPF_ALU | unix.BPF_DIV | unix.BPF_X,
			unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, unix.BPF_ALU | unix.BPF_AND | unix.BPF_X,
			unix.BPF_ALU | unix.BPF_OR | unix.BPF_K, unix.BPF_ALU | unix.BPF_OR | unix.BPF_X,
			unix.BPF_ALU | unix.BPF_XOR | unix.BPF_K, unix.BPF_ALU | unix.BPF_XOR | unix.BPF_X,
			unix.BPF_ALU | unix.BPF_LSH | unix.BPF_X, unix.BPF_ALU | unix.BPF_RSH | unix.BPF_X:
		case unix.BPF_ALU | unix.BPF_DIV | unix.BPF_K:
			if in.K == 0 {
				return bad("division by zero")
			}
		case unix.BPF_ALU | unix.BPF_LSH | unix.BPF_K, unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K:
			if in.K >= 32 {
				return bad("shift by 32 or more")
			}
		case unix.BPF_JMP | unix.BPF_JA:
			if uint64(in.K) >= uint64(rest) {
				return bad("jump out of range")
			}
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_X,
			unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_X,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_X,
			unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_X:
			if int(in.Jt) >= rest || int(in.Jf) >= rest {
				return bad("jump out of range")
			}
		default:
			return bad("instruction not allowed in a seccomp filter")
		}
	}
	if last := prog[n-1].Code; last != unix.BPF_RET|unix.BPF_K && last != unix.BPF_RET|unix.BPF_A {
		return errors.New("seccomp: simulate: last instruction is not a return")
	}
	return nil
}
