package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// This file holds a tiny label-based assembler for classic BPF.  Code is
// emitted as a list of instructions whose jump targets are symbolic labels;
// assemble resolves them in a final pass.
//
// Classic BPF jumps are forward-only.  Conditional jumps carry 8-bit jt/jf
// offsets, so a target more than 255 instructions away is reached through an
// unconditional trampoline (BPF_JMP|BPF_JA, 32-bit k) inserted directly after
// the conditional jump.  Inserting trampolines moves code and can push other
// jumps out of range, so layout is recomputed until nothing changes.  Each
// conditional jump gains at most two trampolines, so this terminates.

// label names a position in the program.  Labels are bound to the index of
// the next emitted instruction.
type label int

// asmInsn is one instruction before label resolution.
type asmInsn struct {
	code uint16
	k    uint32
	// For conditional jumps, jt and jf are the targets; for BPF_JA, jt is
	// the target.  Other instructions ignore them.
	jt, jf label
}

func (in asmInsn) isJA() bool { return in.code == unix.BPF_JMP|unix.BPF_JA }

func (in asmInsn) isCondJump() bool {
	return in.code&0x07 == unix.BPF_JMP && !in.isJA()
}

type assembler struct {
	insns  []asmInsn
	labels []int // label -> instruction index, -1 while unbound
}

func (a *assembler) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

// bind attaches l to the next instruction to be emitted.
func (a *assembler) bind(l label) {
	if a.labels[l] != -1 {
		panic(fmt.Sprintf("seccomp: label %d bound twice", l))
	}
	a.labels[l] = len(a.insns)
}

func (a *assembler) stmt(code uint16, k uint32) {
	a.insns = append(a.insns, asmInsn{code: code, k: k})
}

// loadWord emits A = seccomp_data[off:off+4].
func (a *assembler) loadWord(off uint32) { a.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }

// and emits A &= k.
func (a *assembler) and(k uint32) { a.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, k) }

// ret emits a return of the constant k.
func (a *assembler) ret(k uint32) { a.stmt(unix.BPF_RET|unix.BPF_K, k) }

// jump emits a conditional jump (op is BPF_JEQ, BPF_JGT, BPF_JGE or
// BPF_JSET) comparing A with k.
func (a *assembler) jump(op uint16, k uint32, jt, jf label) {
	a.insns = append(a.insns, asmInsn{code: unix.BPF_JMP | op | unix.BPF_K, k: k, jt: jt, jf: jf})
}

// assemble resolves labels and returns the final program.
func (a *assembler) assemble() ([]unix.SockFilter, error) {
	n := len(a.insns)
	target := func(i int, l label) (int, error) {
		if int(l) < 0 || int(l) >= len(a.labels) || a.labels[l] < 0 {
			return 0, fmt.Errorf("seccomp: internal error: instruction %d jumps to unbound label %d", i, l)
		}
		t := a.labels[l]
		if t <= i {
			return 0, fmt.Errorf("seccomp: internal error: instruction %d jumps backwards to %d", i, t)
		}
		if t >= n {
			return 0, fmt.Errorf("seccomp: internal error: instruction %d jumps past the end", i)
		}
		return t, nil
	}

	// farT/farF: this conditional jump reaches jt/jf through a trampoline.
	farT := make([]bool, n)
	farF := make([]bool, n)
	pos := make([]int, n+1)
	size := func(i int) int {
		s := 1
		if farT[i] {
			s++
		}
		if farF[i] {
			s++
		}
		return s
	}
	for {
		pos[0] = 0
		for i := 0; i < n; i++ {
			pos[i+1] = pos[i] + size(i)
		}
		changed := false
		for i, in := range a.insns {
			if !in.isCondJump() {
				continue
			}
			for _, c := range []struct {
				l   label
				far []bool
			}{{in.jt, farT}, {in.jf, farF}} {
				if c.far[i] {
					continue
				}
				t, err := target(i, c.l)
				if err != nil {
					return nil, err
				}
				if pos[t]-pos[i]-1 > 0xff {
					c.far[i] = true
					changed = true
				}
			}
		}
		if !changed {
			break
		}
	}
	total := pos[n]
	if total > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("seccomp: program has %d instructions, limit is %d", total, unix.BPF_MAXINSNS)
	}

	out := make([]unix.SockFilter, 0, total)
	for i, in := range a.insns {
		switch {
		case in.isJA():
			t, err := target(i, in.jt)
			if err != nil {
				return nil, err
			}
			out = append(out, unix.SockFilter{Code: in.code, K: uint32(pos[t] - pos[i] - 1)})
		case in.isCondJump():
			tt, err := target(i, in.jt)
			if err != nil {
				return nil, err
			}
			tf, err := target(i, in.jf)
			if err != nil {
				return nil, err
			}
			f := unix.SockFilter{Code: in.code, K: in.k}
			var tramps []unix.SockFilter
			// Trampolines sit right after the jump: first the one for
			// jt (if any), then the one for jf (if any).
			at := pos[i] + 1 // address of the next trampoline slot
			if farT[i] {
				f.Jt = uint8(at - pos[i] - 1)
				tramps = append(tramps, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA, K: uint32(pos[tt] - at - 1)})
				at++
			} else {
				f.Jt = uint8(pos[tt] - pos[i] - 1)
			}
			if farF[i] {
				f.Jf = uint8(at - pos[i] - 1)
				tramps = append(tramps, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA, K: uint32(pos[tf] - at - 1)})
			} else {
				f.Jf = uint8(pos[tf] - pos[i] - 1)
			}
			out = append(out, f)
			out = append(out, tramps...)
		default:
			out = append(out, unix.SockFilter{Code: in.code, K: in.k})
		}
	}
	if len(out) != total {
		return nil, fmt.Errorf("seccomp: internal error: emitted %d instructions, expected %d", len(out), total)
	}
	return out, nil
}
