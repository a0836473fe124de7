//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"encoding/binary"
	"fmt"
	"sort"

	"golang.org/x/sys/unix"
)

// originMap is the rewrite tier's record of where trampoline syscalls are:
// a sorted array of addresses in its own mapping, sealed read-only except
// while kbox adds a batch of trampolines (see rewrite.go). A trap from a
// trampoline arena whose address is not in it did not come from a
// trampoline, and is fatal.
type originMap struct {
	mem []byte // 8-byte little-endian addresses, sorted; len(mem) is the capacity
	n   int
}

// add records addrs and seals the map again. An error leaves the map as
// it was, sealed.
func (m *originMap) add(addrs []uint64) error {
	if len(addrs) == 0 {
		return nil
	}
	need := 8 * (m.n + len(addrs))
	if need > len(m.mem) {
		size := max(pageSize, len(m.mem)*2)
		for size < need {
			size *= 2
		}
		mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return fmt.Errorf("mapping the trampolines' origin map: %w", err)
		}
		if m.mem != nil {
			copy(mem, m.mem[:8*m.n])
			unix.Munmap(m.mem)
		}
		m.mem = mem
	} else if err := unix.Mprotect(m.mem, unix.PROT_READ|unix.PROT_WRITE); err != nil {
		return fmt.Errorf("opening the trampolines' origin map: %w", err)
	}
	all := make([]uint64, 0, m.n+len(addrs))
	for i := 0; i < m.n; i++ {
		all = append(all, binary.LittleEndian.Uint64(m.mem[8*i:]))
	}
	all = append(all, addrs...)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for i, a := range all {
		binary.LittleEndian.PutUint64(m.mem[8*i:], a)
	}
	m.n = len(all)
	if err := unix.Mprotect(m.mem, unix.PROT_READ); err != nil {
		return fmt.Errorf("sealing the trampolines' origin map: %w", err)
	}
	return nil
}

// contains reports whether addr is a recorded trampoline syscall.
func (m *originMap) contains(addr uint64) bool {
	i := sort.Search(m.n, func(i int) bool { return binary.LittleEndian.Uint64(m.mem[8*i:]) >= addr })
	return i < m.n && binary.LittleEndian.Uint64(m.mem[8*i:]) == addr
}

// reset forgets every address (at execve, with the arenas).
func (m *originMap) reset() {
	if m.mem != nil {
		unix.Munmap(m.mem)
	}
	m.mem, m.n = nil, 0
}
