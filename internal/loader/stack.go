package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Auxiliary vector entry types, from linux/auxvec.h.
const (
	AT_NULL         = 0
	AT_PHDR         = 3
	AT_PHENT        = 4
	AT_PHNUM        = 5
	AT_PAGESZ       = 6
	AT_BASE         = 7
	AT_FLAGS        = 8
	AT_ENTRY        = 9
	AT_UID          = 11
	AT_EUID         = 12
	AT_GID          = 13
	AT_EGID         = 14
	AT_PLATFORM     = 15
	AT_HWCAP        = 16
	AT_CLKTCK       = 17
	AT_SECURE       = 23
	AT_RANDOM       = 25
	AT_HWCAP2       = 26
	AT_EXECFN       = 31
	AT_SYSINFO_EHDR = 33
)

// MaxStackData bounds the size of the initial stack [BuildStack] will lay
// out (the kernel's default limit for argv plus envp is a quarter of an
// 8 MiB stack rlimit; this is a sanity bound, not that limit).
const MaxStackData = 64 << 20

// ErrBadStack is wrapped by every error [BuildStack] returns.
var ErrBadStack = errors.New("bad initial stack")

// StackParams describes the initial process stack. Addresses are guest
// addresses; the auxv values are passed through unchanged except where
// noted.
type StackParams struct {
	Top      uint64 // highest address (exclusive), 16-byte aligned
	Argv     []string
	Envp     []string
	ExecFn   string   // AT_EXECFN string (the path given to execve)
	Random   [16]byte // AT_RANDOM bytes
	Platform string   // AT_PLATFORM string ("x86_64", "aarch64"); "" omits it

	Phdr        uint64 // AT_PHDR: Layout.PhdrAddr of the program
	Phent       uint64 // AT_PHENT: Image.Phentsize
	Phnum       uint64 // AT_PHNUM: Image.Phnum
	Pagesz      uint64 // AT_PAGESZ; 0 means PageSize
	Base        uint64 // AT_BASE: interpreter load bias, 0 if static
	Flags       uint64 // AT_FLAGS
	Entry       uint64 // AT_ENTRY: the program's entry point, biased
	UID         uint64
	EUID        uint64
	GID         uint64
	EGID        uint64
	Secure      uint64 // AT_SECURE
	Hwcap       uint64
	Hwcap2      uint64
	Clktck      uint64 // AT_CLKTCK; 0 means 100
	SysinfoEhdr uint64 // AT_SYSINFO_EHDR (vDSO); 0 omits it
}

// BuildStack lays out the initial process stack below p.Top and returns its
// bytes, which belong at [sp, p.Top), and sp, the initial stack pointer.
//
// From p.Top downward it holds: 8 zero bytes (as the kernel leaves), the
// ExecFn string, the envp strings, the argv strings (argv[0] lowest), the 16
// AT_RANDOM bytes, the Platform string, padding, then the auxv (ending with
// AT_NULL), the envp pointers and NULL, the argv pointers and NULL, and argc
// at sp. sp is 16-byte aligned, as the x86-64 and AArch64 ABIs require at
// process entry. Strings must not contain NUL bytes.
func BuildStack(p StackParams) (data []byte, sp uint64, err error) {
	if p.Top%16 != 0 {
		return nil, 0, fmt.Errorf("%w: top %#x not 16-byte aligned", ErrBadStack, p.Top)
	}
	for _, list := range [][]string{p.Argv, p.Envp, {p.ExecFn, p.Platform}} {
		for _, s := range list {
			if strings.IndexByte(s, 0) >= 0 {
				return nil, 0, fmt.Errorf("%w: string %q contains a NUL byte", ErrBadStack, s)
			}
		}
	}
	pagesz := p.Pagesz
	if pagesz == 0 {
		pagesz = PageSize
	}
	clktck := p.Clktck
	if clktck == 0 {
		clktck = 100
	}

	// Size of the string area (including the 8 zero bytes at the top).
	strBytes := uint64(8) + uint64(len(p.ExecFn)) + 1 + 16
	if p.Platform != "" {
		strBytes += uint64(len(p.Platform)) + 1
	}
	for _, list := range [][]string{p.Argv, p.Envp} {
		for _, s := range list {
			strBytes += uint64(len(s)) + 1
			if strBytes > MaxStackData {
				return nil, 0, fmt.Errorf("%w: arguments and environment exceed %d bytes", ErrBadStack, MaxStackData)
			}
		}
	}
	nAux := 18 // fixed entries including AT_NULL
	if p.SysinfoEhdr != 0 {
		nAux++
	}
	if p.Platform != "" {
		nAux++
	}
	words := uint64(1+len(p.Argv)+1+len(p.Envp)+1) + uint64(2*nAux)
	total := (strBytes+15)&^15 + words*8
	total = (total + 15) &^ 15
	if total > MaxStackData {
		return nil, 0, fmt.Errorf("%w: initial stack exceeds %d bytes", ErrBadStack, MaxStackData)
	}
	if total > p.Top {
		return nil, 0, fmt.Errorf("%w: %d bytes do not fit below top %#x", ErrBadStack, total, p.Top)
	}
	sp = p.Top - total
	data = make([]byte, total)

	// Strings, from the top down. pos is the current lowest used address.
	pos := p.Top - 8
	put := func(b []byte) uint64 {
		pos -= uint64(len(b))
		copy(data[pos-sp:], b)
		return pos
	}
	putStr := func(s string) uint64 {
		pos--
		return put([]byte(s))
	}
	execfn := putStr(p.ExecFn)
	envAddr := make([]uint64, len(p.Envp))
	for i := len(p.Envp) - 1; i >= 0; i-- {
		envAddr[i] = putStr(p.Envp[i])
	}
	argAddr := make([]uint64, len(p.Argv))
	for i := len(p.Argv) - 1; i >= 0; i-- {
		argAddr[i] = putStr(p.Argv[i])
	}
	random := put(p.Random[:])
	var platform uint64
	if p.Platform != "" {
		platform = putStr(p.Platform)
	}

	// The pointer block, from sp upward.
	w := sp
	word := func(v uint64) {
		binary.LittleEndian.PutUint64(data[w-sp:], v)
		w += 8
	}
	word(uint64(len(p.Argv)))
	for _, a := range argAddr {
		word(a)
	}
	word(0)
	for _, a := range envAddr {
		word(a)
	}
	word(0)
	aux := func(k, v uint64) { word(k); word(v) }
	if p.SysinfoEhdr != 0 {
		aux(AT_SYSINFO_EHDR, p.SysinfoEhdr)
	}
	aux(AT_HWCAP, p.Hwcap)
	aux(AT_PAGESZ, pagesz)
	aux(AT_CLKTCK, clktck)
	aux(AT_PHDR, p.Phdr)
	aux(AT_PHENT, p.Phent)
	aux(AT_PHNUM, p.Phnum)
	aux(AT_BASE, p.Base)
	aux(AT_FLAGS, p.Flags)
	aux(AT_ENTRY, p.Entry)
	aux(AT_UID, p.UID)
	aux(AT_EUID, p.EUID)
	aux(AT_GID, p.GID)
	aux(AT_EGID, p.EGID)
	aux(AT_SECURE, p.Secure)
	aux(AT_RANDOM, random)
	aux(AT_HWCAP2, p.Hwcap2)
	aux(AT_EXECFN, execfn)
	if p.Platform != "" {
		aux(AT_PLATFORM, platform)
	}
	aux(AT_NULL, 0)
	if w > pos {
		// Cannot happen: total was computed to hold both areas.
		return nil, 0, fmt.Errorf("%w: internal error: pointer block overlaps strings", ErrBadStack)
	}
	return data, sp, nil
}
