// Package rewrite owns the rewrite tier's static half: which syscall sites
// of guest code can be patched, the bytes of each patch and trampoline,
// and the cache of plans between runs (cache.go, prime.go). It is pure Go
// with no cgo, and the planner of every instruction set builds on every
// host, so it is tested anywhere. The live half — arenas in the guest's
// address space, writing the patches under W^X, the assembly fast path
// the trampolines jump to — is internal/inproc's (rewrite.go there).
//
// A patched site jumps to its trampoline, which re-executes the
// instructions the patch displaced, then enters the fast path with the
// address of its own trapping syscall at hand; the fast path serves the
// calls the policy table marks Fast without a signal and returns to the
// trampoline's syscall for the rest, which traps like any guest syscall.
// Each ISA file says what its patches look like.
package rewrite

import (
	"debug/elf"
	"runtime"
)

// Site is one patch: the displaced instructions start at Start, the
// syscall instruction is at Sys (offsets into the code planned).
type Site struct{ Start, Sys uint32 }

// TrampMax is the size of a trampoline slot: no trampoline is longer.
const TrampMax = 64

// ISA plans and encodes the patches of one instruction set.
type ISA interface {
	// Machine is the ELF machine of the code it plans.
	Machine() elf.Machine
	// Plan finds the sites of code that can be patched, and how many
	// syscall instructions code has in all (found, at instruction
	// boundaries).
	Plan(code []byte) (plan []Site, found int)
	// Valid re-checks a plan (from the cache) against code.
	Valid(code []byte, plan []Site) bool
	// SitePatch is what replaces the site's bytes [site, end): a jump to
	// the trampoline at tramp.
	SitePatch(site, end, tramp uint64) []byte
	// Trampoline encodes the trampoline placed at addr for the site whose
	// displaced instructions (at origin in the guest) are displaced; it
	// returns to siteEnd and enters the fast path at fast.
	Trampoline(displaced []byte, origin, addr, siteEnd, fast uint64) []byte
	// TrapAddr is the address the trampoline's own syscall reports (the
	// instruction after it) for a trampoline b placed at addr.
	TrapAddr(b []byte, addr uint64) uint64
	// SyscallReturns reports whether the syscall at sys is the tail of a
	// libc wrapper (followed by a return).
	SyscallReturns(code []byte, sys uint32) bool
}

// Host is the ISA of the machine kbox runs on, or nil where the rewrite
// tier has no planner yet.
func Host() ISA {
	if runtime.GOARCH == "amd64" {
		return X86_64
	}
	return nil
}
