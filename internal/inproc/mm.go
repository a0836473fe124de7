//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The guest shares kbox's address space. It may change only memory it
// mapped itself (or kbox's loader mapped for it): every range-taking memory
// call is checked against vmRanges, and a MAP_FIXED mapping may also land
// on addresses where nothing is mapped. Everything else is kbox's (its
// binary, libc, the Go heap and stacks) and is refused with a -v line.

// maxUserAddr bounds user addresses on x86-64 (57-bit with 5-level
// paging; 47-bit otherwise): no guest address argument is above it.
const maxUserAddr = 1<<56 - 1

// hostMapped reports whether any page of the given ranges is mapped, from
// /proc/self/maps (only consulted for ranges the guest does not own).
func hostMapped(parts []span) bool {
	if len(parts) == 0 {
		return false
	}
	maps, err := readMaps()
	if err != nil {
		return true
	}
	for _, m := range maps {
		for _, p := range parts {
			if m.lo < p.hi && m.hi > p.lo {
				return true
			}
		}
	}
	return false
}

// mayReplace reports whether the guest may unmap or replace [lo, hi): all
// of it is the guest's or unmapped.
func (t *tier) mayReplace(lo, hi uint64) bool {
	return !hostMapped(t.vm.gaps(lo, hi))
}

func (t *tier) refuseMemory(c *call, lo, hi uint64, en unix.Errno) int64 {
	t.eng.Verbosef("pid %d: %s [%#x, %#x) refused (%s): kbox's own memory", t.pid, t.name(c.nr), lo, hi, unix.ErrnoName(en))
	return -int64(en)
}

func wxRefused(t *tier, c *call) int64 {
	t.eng.Verbosef("pid %d: %s with PROT_WRITE|PROT_EXEC refused (EACCES): the trap tier keeps guest memory W^X", t.pid, t.name(c.nr))
	return -int64(unix.EACCES)
}

const protWX = unix.PROT_WRITE | unix.PROT_EXEC

func init() {
	own(sysMmap, "mmap")
	own(sysMunmap, "munmap")
	own(sysMprotect, "mprotect", "pkey_mprotect")
	own(sysMremap, "mremap")
	own(sysMadvise, "madvise", "mseal") // process_madvise: denied by the policy table
	own(sysBrk, "brk")
	own(sysNoShadowStack, "map_shadow_stack")
}

func sysMmap(t *tier, c *call) int64 {
	addr, length, prot, flags := c.args[0], c.args[1], c.args[2], c.args[3]
	if prot&protWX == protWX {
		return wxRefused(t, c)
	}
	if length == 0 || pageUp(length) < length {
		return -int64(unix.EINVAL)
	}
	end := addr + pageUp(length)
	if flags&unix.MAP_FIXED != 0 && flags&unix.MAP_FIXED_NOREPLACE == 0 {
		if end < addr || !t.mayReplace(addr, end) {
			return t.refuseMemory(c, addr, end, unix.ENOMEM)
		}
	}
	a := c.args
	if flags&unix.MAP_ANONYMOUS == 0 {
		e, ok := t.fds.Get(c.int(4))
		if !ok {
			return -int64(unix.EBADF)
		}
		a[4] = uint64(e.HostFD)
	}
	r := rawSyscall(c.nr, a)
	if r >= 0 || r < -4095 {
		t.vm.add(uint64(r), uint64(r)+pageUp(length))
		if t.rw != nil && prot&unix.PROT_EXEC != 0 && flags&unix.MAP_ANONYMOUS == 0 {
			// Code mapped by the guest (ld.so mapping a library) is
			// patched before the guest can run it.
			what, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(a[4])))
			t.rw.patchMapping(t, int(a[4]), c.args[5], uint64(r), uint64(r)+pageUp(length), int(prot), what)
		}
	}
	return r
}

func sysMunmap(t *tier, c *call) int64 {
	addr, length := c.args[0], c.args[1]
	end := addr + pageUp(length)
	if addr%pageSize != 0 || length == 0 || end < addr {
		return -int64(unix.EINVAL)
	}
	if !t.mayReplace(addr, end) {
		return t.refuseMemory(c, addr, end, unix.EINVAL)
	}
	r := rawSyscall(c.nr, c.args)
	if r == 0 {
		t.vm.remove(addr, end)
	}
	return r
}

func sysMprotect(t *tier, c *call) int64 {
	addr, length, prot := c.args[0], c.args[1], c.args[2]
	if prot&protWX == protWX {
		return wxRefused(t, c)
	}
	end := addr + pageUp(length)
	if end < addr {
		return -int64(unix.ENOMEM)
	}
	if !t.vm.contains(addr, end) {
		if t.mayReplace(addr, end) {
			return -int64(unix.ENOMEM) // unmapped, as the kernel says
		}
		return t.refuseMemory(c, addr, end, unix.EACCES)
	}
	r := rawSyscall(c.nr, c.args)
	if r == 0 && t.rw != nil && prot&unix.PROT_EXEC != 0 {
		t.patchProtected(addr, end, int(prot))
	}
	return r
}

// patchProtected patches code that became executable through mprotect
// (text relocations, or code a loader wrote first): the file behind the
// mapping is found in /proc/self/maps. Without the plan cache: the code may
// already be partly patched.
func (t *tier) patchProtected(lo, hi uint64, prot int) {
	maps, err := readMaps()
	if err != nil {
		return
	}
	for _, m := range maps {
		if !strings.HasPrefix(m.path, "/") || m.hi <= lo || m.lo >= hi {
			continue
		}
		file, err := os.Open(m.path)
		if err != nil {
			continue
		}
		a, b := max(m.lo, lo), min(m.hi, hi)
		t.rw.patchMappingNoCache(t, int(file.Fd()), m.off+(a-m.lo), a, b, prot, m.path)
		file.Close()
	}
}

func sysMremap(t *tier, c *call) int64 {
	old, oldLen, newLen, flags, newAddr := c.args[0], c.args[1], c.args[2], c.args[3], c.args[4]
	oldEnd := old + pageUp(oldLen)
	if oldEnd < old || !t.vm.contains(old, oldEnd) {
		if t.mayReplace(old, oldEnd) {
			return -int64(unix.EFAULT)
		}
		return t.refuseMemory(c, old, oldEnd, unix.EFAULT)
	}
	if flags&unix.MREMAP_FIXED != 0 {
		end := newAddr + pageUp(newLen)
		if end < newAddr || !t.mayReplace(newAddr, end) {
			return t.refuseMemory(c, newAddr, end, unix.EINVAL)
		}
	}
	r := rawSyscall(c.nr, c.args)
	if r >= 0 || r < -4095 {
		if flags&unix.MREMAP_DONTUNMAP == 0 {
			t.vm.remove(old, oldEnd)
		}
		t.vm.add(uint64(r), uint64(r)+pageUp(newLen))
	}
	return r
}

func sysMadvise(t *tier, c *call) int64 {
	addr, length := c.args[0], c.args[1]
	end := addr + pageUp(length)
	if end < addr {
		return -int64(unix.EINVAL)
	}
	if !t.vm.contains(addr, end) {
		if t.mayReplace(addr, end) {
			return -int64(unix.ENOMEM)
		}
		return t.refuseMemory(c, addr, end, unix.EPERM)
	}
	return rawSyscall(c.nr, c.args)
}

func sysNoShadowStack(t *tier, c *call) int64 { return -int64(unix.ENOSYS) }

// brkState is the guest's program break, emulated with anonymous mappings
// placed after its program (never the host's own heap).
type brkState struct {
	start, cur uint64 // cur is the guest-visible break
}

func sysBrk(t *tier, c *call) int64 {
	want := c.args[0]
	b := &t.brk
	// Below the break's start, or beyond any user address (where rounding
	// up to a page would wrap to 0 and "shrink" over everything): the
	// kernel's answer, the current break.
	if want < b.start || want > maxUserAddr {
		return int64(b.cur)
	}
	oldTop, newTop := pageUp(b.cur), pageUp(want)
	switch {
	case newTop > oldTop:
		if _, err := mmapFixedNoReplace(oldTop, newTop-oldTop, unix.PROT_READ|unix.PROT_WRITE); err != nil {
			return int64(b.cur)
		}
		t.vm.add(oldTop, newTop)
	case newTop < oldTop:
		if _, _, en := unix.RawSyscall(unix.SYS_MUNMAP, uintptr(newTop), uintptr(oldTop-newTop), 0); en != 0 {
			return int64(b.cur)
		}
		t.vm.remove(newTop, oldTop)
	}
	b.cur = want
	return int64(want)
}

func mmapFixedNoReplace(addr, length uint64, prot int) (uint64, error) {
	r, _, en := unix.RawSyscall6(unix.SYS_MMAP, uintptr(addr), uintptr(length), uintptr(prot),
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE, ^uintptr(0), 0)
	if en != 0 {
		return 0, en
	}
	if uint64(r) != addr { // kernels before 4.17 treat the flag as a hint
		unix.RawSyscall(unix.SYS_MUNMAP, r, uintptr(length), 0)
		return 0, unix.EEXIST
	}
	return addr, nil
}
