// Package abi owns the Linux syscall ABI facts kbox depends on: syscall
// numbers per architecture and audit-arch values. Handlers never spell a
// magic number.
//
// The tables for every supported architecture are plain data (no build
// tags), so tools running on amd64 can reason about arm64 tracees and vice
// versa. They are generated from golang.org/x/sys/unix; see internal/gen.
package abi

//go:generate go run ./internal/gen

import (
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"sync"
)

const (
	auditArchX86_64  = 0xc000003e // AUDIT_ARCH_X86_64: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
	auditArchAARCH64 = 0xc00000b7 // AUDIT_ARCH_AARCH64: EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
)

// Arch describes the syscall ABI of one architecture.
//
// An Arch and its Syscalls map are read-only after package initialisation;
// all methods are safe for concurrent use. Do not modify Syscalls.
type Arch struct {
	Name      string         // "amd64" or "arm64"
	AuditArch uint32         // seccomp_data.arch value: AUDIT_ARCH_X86_64 = 0xc000003e, AUDIT_ARCH_AARCH64 = 0xc00000b7
	Syscalls  map[string]int // kernel syscall name (lower case, e.g. "newfstatat", "rt_sigaction", "pread64") -> number

	once    sync.Once
	byNr    map[int]string
	numbers []int // sorted ascending
}

// AMD64 is the x86-64 (64-bit, non-x32) syscall ABI.
var AMD64 = &Arch{Name: "amd64", AuditArch: auditArchX86_64, Syscalls: amd64Syscalls}

// ARM64 is the AArch64 syscall ABI.
var ARM64 = &Arch{Name: "arm64", AuditArch: auditArchAARCH64, Syscalls: arm64Syscalls}

// Host returns the Arch matching runtime.GOARCH.
// It panics on architectures other than amd64 and arm64.
func Host() *Arch {
	switch runtime.GOARCH {
	case "amd64":
		return AMD64
	case "arm64":
		return ARM64
	}
	panic("abi: unsupported architecture " + runtime.GOARCH + " (only amd64 and arm64 are supported)")
}

// Nr returns the number of the named syscall and whether it exists on a.
func (a *Arch) Nr(name string) (int, bool) {
	nr, ok := a.Syscalls[name]
	return nr, ok
}

// MustNr returns the number of the named syscall. It panics if the syscall
// does not exist on a; use it only for names written by us, never for input.
func (a *Arch) MustNr(name string) int {
	nr, ok := a.Syscalls[name]
	if !ok {
		panic(fmt.Sprintf("abi: syscall %q does not exist on %s", name, a.Name))
	}
	return nr
}

// SyscallName returns the kernel name of syscall nr, or "syscall_<nr>" when
// nr is unknown on a.
func (a *Arch) SyscallName(nr int) string {
	a.index()
	if name, ok := a.byNr[nr]; ok {
		return name
	}
	return "syscall_" + strconv.Itoa(nr)
}

// Numbers returns all syscall numbers of a, sorted ascending. The caller
// owns the returned slice.
func (a *Arch) Numbers() []int {
	a.index()
	return append([]int(nil), a.numbers...)
}

// MaxNr returns the highest syscall number of a, or -1 if the table is empty.
func (a *Arch) MaxNr() int {
	a.index()
	if len(a.numbers) == 0 {
		return -1
	}
	return a.numbers[len(a.numbers)-1]
}

// index builds the reverse map and sorted number list once.
func (a *Arch) index() {
	a.once.Do(func() {
		a.byNr = make(map[int]string, len(a.Syscalls))
		a.numbers = make([]int, 0, len(a.Syscalls))
		for name, nr := range a.Syscalls {
			if prev, ok := a.byNr[nr]; ok {
				// The generated tables have no aliases; if one sneaks
				// in, keep the choice deterministic.
				if name > prev {
					continue
				}
			} else {
				a.numbers = append(a.numbers, nr)
			}
			a.byNr[nr] = name
		}
		sort.Ints(a.numbers)
	})
}
