package seccomp

import (
	"encoding/binary"
	"fmt"
	"sort"

	"golang.org/x/sys/unix"
)

// Range is a half-open range of instruction addresses [Lo, Hi).
type Range struct{ Lo, Hi uint64 }

// offIP is the offset of instruction_pointer in struct seccomp_data.
const offIP = 8

// IPTrap compiles the in-process tiers' interception filter: a syscall whose
// instruction pointer lies in one of hostCode (kbox's own executable
// mappings: its binary, libc, the vDSO) is allowed; every other syscall —
// the guest's — raises SIGSYS (SECCOMP_RET_TRAP). A foreign architecture or
// an x32 number kills the process.
//
// The filter has no state a guest could change: unlike Syscall User
// Dispatch's selector byte, it cannot be switched off by a store to memory.
func IPTrap(auditArch uint32, hostCode []Range) ([]unix.SockFilter, error) {
	return IPTrapThen(auditArch, hostCode, nil, FastPath{})
}

// FastPath is the rewrite tier's fast path as the filter sees it: the
// instruction pointer its syscall reports, and the only syscall numbers it
// may issue from there (descriptor-local calls it has already translated).
// Any other number at that address is treated like any call from kbox's
// code; the guest can jump there with a number of its choosing.
type FastPath struct {
	IP  uint64
	Nrs []int
}

// IPTrapThen is IPTrap where a syscall from kbox's code continues into
// then (a complete filter, e.g. the backstop) instead of being allowed:
// one filter, so every syscall runs one BPF program, not two. The fast
// path's own calls (fast.IP with one of fast.Nrs) are allowed right after
// the architecture checks, before the address ranges.
func IPTrapThen(auditArch uint32, hostCode []Range, then []unix.SockFilter, fast FastPath) ([]unix.SockFilter, error) {
	rs := splitRanges(hostCode)
	if len(rs) == 0 {
		return nil, fmt.Errorf("seccomp: IPTrap needs at least one host code range")
	}
	a := &assembler{}
	kill, trap, allow := a.newLabel(), a.newLabel(), a.newLabel()
	archOK := a.newLabel()
	a.loadWord(offArch)
	a.jump(unix.BPF_JEQ, auditArch, archOK, kill)
	a.bind(archOK)
	if auditArch == auditArchX86_64 {
		nrOK := a.newLabel()
		a.loadWord(offNr)
		a.jump(unix.BPF_JGE, x32SyscallBit, kill, nrOK)
		a.bind(nrOK)
	}
	if fast.IP != 0 && len(fast.Nrs) > 0 {
		notFast, loFast, fastIP := a.newLabel(), a.newLabel(), a.newLabel()
		a.loadWord(offIP)
		a.jump(unix.BPF_JEQ, uint32(fast.IP), loFast, notFast)
		a.bind(loFast)
		a.loadWord(offIP + 4)
		a.jump(unix.BPF_JEQ, uint32(fast.IP>>32), fastIP, notFast)
		a.bind(fastIP)
		a.loadWord(offNr)
		for i, nr := range fast.Nrs {
			next := notFast
			if i+1 < len(fast.Nrs) {
				next = a.newLabel()
			}
			a.jump(unix.BPF_JEQ, uint32(nr), allow, next)
			if i+1 < len(fast.Nrs) {
				a.bind(next)
			}
		}
		a.bind(notFast)
	}
	// M[0] = high word of the instruction pointer.
	a.loadWord(offIP + 4)
	a.stmt(unix.BPF_ST, 0)
	for i, r := range rs {
		next := trap
		if i+1 < len(rs) {
			next = a.newLabel()
		}
		hiOK, loOK := a.newLabel(), a.newLabel()
		if i > 0 {
			a.stmt(unix.BPF_LD|unix.BPF_MEM, 0)
		}
		a.jump(unix.BPF_JEQ, uint32(r.Lo>>32), hiOK, next)
		a.bind(hiOK)
		a.loadWord(offIP)
		a.jump(unix.BPF_JGE, uint32(r.Lo), loOK, next)
		a.bind(loOK)
		// Hi-1 is in the same 4 GiB block as Lo (splitRanges).
		a.jump(unix.BPF_JGT, uint32(r.Hi-1), next, allow)
		if i+1 < len(rs) {
			a.bind(next)
		}
	}
	a.bind(trap)
	a.ret(Action{Kind: ActTrap}.Ret())
	a.bind(kill)
	a.ret(Action{Kind: ActKillProcess}.Ret())
	a.bind(allow)
	if then == nil {
		a.ret(Action{Kind: ActAllow}.Ret())
		return a.assemble()
	}
	// A placeholder for the label to bind to; dropped below.
	a.ret(0)
	prog, err := a.assemble()
	if err != nil {
		return nil, err
	}
	prog = append(prog[:len(prog)-1], then...)
	if len(prog) > 4096 {
		return nil, fmt.Errorf("seccomp: combined filter has %d instructions (max 4096)", len(prog))
	}
	return prog, nil
}

// splitRanges sorts and merges ranges and splits them at 4 GiB boundaries,
// so each can be tested on one high word.
func splitRanges(in []Range) []Range {
	var rs []Range
	for _, r := range in {
		if r.Hi > r.Lo {
			rs = append(rs, r)
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Lo < rs[j].Lo })
	var merged []Range
	for _, r := range rs {
		if n := len(merged); n > 0 && r.Lo <= merged[n-1].Hi {
			merged[n-1].Hi = max(merged[n-1].Hi, r.Hi)
			continue
		}
		merged = append(merged, r)
	}
	var out []Range
	for _, r := range merged {
		for r.Lo < r.Hi {
			block := (r.Lo | 0xffffffff) + 1 // start of the next 4 GiB block (0 on overflow)
			if block == 0 || block >= r.Hi {
				out = append(out, r)
				break
			}
			out = append(out, Range{r.Lo, block})
			r.Lo = block
		}
	}
	return out
}

// SelfPID and SelfNegPID stand, in a compiled filter, for the pid of the
// process that installs it and its negation (its process group, for
// kill): the filter is compiled before that process exists, and
// PatchSelfPID (or the in-process constructor, internal/sandbox) replaces
// them. Both lie above PID_MAX_LIMIT (2^22), so no real pid compares equal.
const (
	SelfPID    = 0x7ffbf00d
	SelfNegPID = 0x7ffbf00e
)

// PatchSelfPID replaces the SelfPID and SelfNegPID constants of prog's
// comparisons with pid and -pid.
func PatchSelfPID(prog []unix.SockFilter, pid int) {
	for i := range prog {
		if prog[i].Code != unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K {
			continue
		}
		switch prog[i].K {
		case SelfPID:
			prog[i].K = uint32(pid)
		case SelfNegPID:
			prog[i].K = uint32(-pid)
		}
	}
}

// Bytes encodes prog as the kernel reads a struct sock_filter array
// (little-endian hosts: amd64, arm64), for a filter handed to C code or
// another process.
func Bytes(prog []unix.SockFilter) []byte {
	b := make([]byte, 8*len(prog))
	for i, in := range prog {
		binary.LittleEndian.PutUint16(b[8*i:], in.Code)
		b[8*i+2] = in.Jt
		b[8*i+3] = in.Jf
		binary.LittleEndian.PutUint32(b[8*i+4:], in.K)
	}
	return b
}
