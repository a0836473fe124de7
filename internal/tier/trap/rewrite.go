//go:build cgo && linux && amd64

package trap

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/x86len"
)

// The rewrite tier is the trap tier plus patched call sites. Before guest
// code can run (at load, and whenever a mapping becomes executable), every
// syscall instruction found at an instruction boundary is rewritten:
//
//	site:  <displaced instructions, >= 3 bytes> syscall   (>= 5 bytes)
//	  =>   jmp tramp; int3 ...
//	tramp: <displaced instructions>
//	       movabs $tail+2, %rcx    ; where the fast path returns
//	       movabs $kbox_fast_any, %r11
//	       jmp *%r11
//	tail:  syscall                 ; the fast path's fallback: traps
//	       jmp site_end
//
// The displaced instructions are the ones just before the syscall (for
// `mov $nr,%eax; syscall` the mov alone), moved only when they are
// position-independent (no RIP-relative operand, no branch) and no direct
// branch lands on any of them but the first or on the syscall. A site that
// does not qualify keeps its syscall and traps. kbox_fast_any
// (fastpath_amd64.c) runs descriptor-local calls on regular files natively
// and jumps back to `tail` for everything else, so a call the fast path
// does not take costs one trap, as in the trap tier.
//
// Trampolines live in arenas within ±2 GiB of their sites, which kbox
// maps, writes and then seals read-only and executable (the origin map:
// only the trampolines kbox wrote exist; the guest cannot change them —
// they are not guest memory, so its mprotect and munmap are refused).

const (
	arenaSize   = 256 << 10
	trampMax    = 64      // bytes per trampoline slot
	maxDisplace = 20      // displaced bytes (jumps grow by up to 4 when re-encoded)
	arenaReach  = 1 << 30 // keep arenas within 1 GiB of their sites
)

type arena struct{ base, used uint64 }

type rewriter struct {
	cache    planCache
	fast     uint64
	arenas   []*arena
	sites    int // patched
	wrappers int // of which WRAPPER sites: the syscall is followed by ret
	mappings int // mappings with sites
	// origins holds, for every trampoline kbox wrote, the address its
	// trapping syscall reports (tail+2): a trap from an arena at any other
	// address did not come from a trampoline, and is fatal.
	origins originMap
}

func newRewriter(cacheReadOnly bool) *rewriter {
	return &rewriter{fast: fastPathAddr(), cache: newPlanCache(cacheReadOnly)}
}

// inArena reports whether ip lies in a trampoline arena.
func (rw *rewriter) inArena(ip uint64) bool {
	for _, a := range rw.arenas {
		if ip-a.base < arenaSize {
			return true
		}
	}
	return false
}

// relocatable reports whether instruction b can run unchanged at another
// address: register or register-based memory moves, xor, test, and
// immediate loads. Anything else (RIP-relative operands, branches, stack
// pushes, prefixes other than REX) is left in place.
func relocatable(b []byte) bool {
	i := 0
	var rex byte
	if len(b) > 0 && b[0]&0xf0 == 0x40 {
		rex = b[0]
		i++
	}
	if i >= len(b) {
		return false
	}
	op := b[i]
	switch {
	case op >= 0xb8 && op <= 0xbf: // mov $imm, reg
		return true
	case op == 0x89 || op == 0x8b || op == 0x31 || op == 0x33 || op == 0x85 || (op == 0xc7 && rex&8 != 0) || op == 0x8d:
		if i+1 >= len(b) {
			return false
		}
		modrm := b[i+1]
		if op == 0x8d && modrm>>6 == 3 {
			return false // lea needs a memory operand
		}
		return !(modrm>>6 == 0 && modrm&7 == 5) // RIP-relative
	}
	return false
}

// fdReader reads a host descriptor without owning it.
type fdReader int

func (r fdReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := unix.Pread(int(r), p, off)
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

// patchMapping patches the executable sections of the ELF file behind
// host descriptor fd that lie in the mapping [lo, hi) of file offset
// fileOff, currently mapped with prot. Code is decoded from each section's
// start (a mapping starting inside a section is skipped there: its
// instruction boundaries are unknown). A file without section headers is
// left to trap.
func (rw *rewriter) patchMapping(t *tier, fd int, fileOff, lo, hi uint64, prot int, what string) {
	rw.patchSections(t, fd, fileOff, lo, hi, prot, what, true)
}

// patchMappingNoCache is patchMapping for code that may already be partly
// patched: its plan is neither taken from nor stored in the cache.
func (rw *rewriter) patchMappingNoCache(t *tier, fd int, fileOff, lo, hi uint64, prot int, what string) {
	rw.patchSections(t, fd, fileOff, lo, hi, prot, what, false)
}

func (rw *rewriter) patchSections(t *tier, fd int, fileOff, lo, hi uint64, prot int, what string, useCache bool) {
	ef, err := elf.NewFile(fdReader(fd))
	if err != nil {
		return
	}
	var st unix.Stat_t
	haveStat := unix.Fstat(fd, &st) == nil
	size := hi - lo
	patched, left := 0, 0
	for _, s := range ef.Sections {
		if s.Flags&elf.SHF_EXECINSTR == 0 || s.Type != elf.SHT_PROGBITS || s.Size == 0 {
			continue
		}
		if s.Offset < fileOff || s.Offset+s.Size > fileOff+size {
			continue
		}
		key := ""
		if haveStat && useCache {
			key = planKey(&st, s.Offset, s.Size)
		}
		p, l := rw.patchCode(t, lo+(s.Offset-fileOff), lo+(s.Offset-fileOff)+s.Size, lo, hi, prot, key)
		patched += p
		left += l
	}
	if patched+left > 0 {
		rw.mappings++
		t.eng.Verbosef("rewrite: %s: %d syscall sites patched, %d left to trap", what, patched, left)
	}
}

// site is one patch: the displaced instructions start at start, the
// syscall is at sys (offsets into the code decoded).
type site struct{ start, sys uint32 }

// planSites finds the sites of code that can be patched, and how many
// syscall instructions it has in all.
func planSites(code []byte) ([]site, int) {
	starts, _ := x86len.Boundaries(code)
	targets := x86len.BranchTargetBits(code, starts)
	isTarget := func(off int) bool { return targets[off/64]&(1<<(off%64)) != 0 }
	var plan []site
	found := 0
	for k, off := range starts {
		if off+2 > len(code) || code[off] != 0x0f || code[off+1] != 0x05 {
			continue
		}
		found++
		if isTarget(off) {
			continue
		}
		j, n := k, 0
		ok := false
		for j > 0 && n < 3 {
			j--
			insn := code[starts[j]:starts[j+1]]
			// The decoder skips undecodable bytes: the instruction must
			// fill the gap to the next boundary exactly.
			if l, err := x86len.Len(insn); err != nil || l != len(insn) {
				break
			}
			if !movable(insn) || (n > 0 && isTarget(starts[j+1])) {
				break
			}
			n += len(insn)
			if n >= 3 {
				ok = n <= maxDisplace
			}
		}
		if ok {
			plan = append(plan, site{uint32(starts[j]), uint32(off)})
		}
	}
	return plan, found
}

// validPlan re-checks a cached plan against the code: each site's
// displaced bytes decode, instruction by instruction, into relocatable
// instructions ending exactly at a syscall.
func validPlan(code []byte, plan []site) bool {
	for _, p := range plan {
		if int(p.sys)+2 > len(code) || p.start >= p.sys || p.sys-p.start < 3 || p.sys-p.start > maxDisplace ||
			code[p.sys] != 0x0f || code[p.sys+1] != 0x05 {
			return false
		}
		for off := int(p.start); off < int(p.sys); {
			n, err := x86len.Len(code[off:])
			if err != nil || !movable(code[off:off+n]) {
				return false
			}
			off += n
			if off > int(p.sys) {
				return false
			}
		}
	}
	return true
}

// patchCode patches the syscall sites in guest code [lo, hi), which lies in
// the mapping [mapLo, mapHi) currently mapped with prot. key names the
// code in the plan cache ("" for none). It returns the numbers of sites
// patched and left to trap.
func (rw *rewriter) patchCode(t *tier, lo, hi, mapLo, mapHi uint64, prot int, key string) (int, int) {
	if prot&unix.PROT_READ == 0 || hi <= lo || hi-lo > 1<<30 {
		return 0, 0
	}
	code := make([]byte, hi-lo)
	if (memory{}).Read(lo, code) != nil {
		return 0, 0
	}
	plan, found, cached := rw.cache.load(key)
	if cached && !validPlan(code, plan) {
		cached = false
	}
	if !cached {
		plan, found = planSites(code)
		rw.cache.store(key, plan, found)
	}
	if len(plan) == 0 {
		return 0, found
	}
	// Write the trampolines, then the jumps, keeping guest code W^X: its
	// pages are writable (and not executable) only while being patched.
	pageLo, pageHi := lo&^(pageSize-1), min(pageUp(hi), mapHi)
	pageLo = max(pageLo, mapLo)
	if _, _, en := unix.RawSyscall(unix.SYS_MPROTECT, uintptr(pageLo), uintptr(pageHi-pageLo), unix.PROT_READ|unix.PROT_WRITE); en != 0 {
		return 0, found
	}
	done := 0
	opened := map[*arena]bool{}
	var origins []uint64
	for _, p := range plan {
		at := lo + uint64(p.start)
		end := lo + uint64(p.sys) + 2
		a, tramp, err := rw.slot(at)
		if err != nil {
			t.verboseOnce("arena", "rewrite: %v; the remaining sites trap", err)
			break
		}
		if !opened[a] {
			unix.RawSyscall(unix.SYS_MPROTECT, uintptr(a.base), arenaSize, unix.PROT_READ|unix.PROT_WRITE)
			opened[a] = true
		}
		buf := trampoline(code[p.start:p.sys], at, tramp, end, rw.fast)
		if len(buf) > trampMax {
			continue // re-encoded jumps made it too long: leave it to trap
		}
		copy(guestBytes(tramp, len(buf)), buf)
		copy(guestBytes(at, int(end-at)), sitePatch(at, end, tramp))
		origins = append(origins, tailOf(buf, tramp))
		if int(p.sys)+2 < len(code) && code[p.sys+2] == 0xc3 {
			rw.wrappers++
		}
		done++
	}
	unix.RawSyscall(unix.SYS_MPROTECT, uintptr(pageLo), uintptr(pageHi-pageLo), uintptr(prot))
	for a := range opened {
		unix.RawSyscall(unix.SYS_MPROTECT, uintptr(a.base), arenaSize, unix.PROT_READ|unix.PROT_EXEC)
	}
	rw.origins.add(origins)
	rw.sites += done
	return done, found - done
}

// sitePatch is what replaces [site, end): a jump to the trampoline, then
// int3s (never reached: no branch lands inside the patched bytes).
func sitePatch(site, end, tramp uint64) []byte {
	b := make([]byte, end-site)
	b[0] = 0xe9
	binary.LittleEndian.PutUint32(b[1:], uint32(int32(int64(tramp)-int64(site+5))))
	for i := 5; i < len(b); i++ {
		b[i] = 0xcc
	}
	return b
}

// directJump decodes a direct jmp or jcc (rel8 or rel32): cond is the
// condition code, or -1 for an unconditional jmp; rel is the displacement
// from the end of the instruction.
func directJump(insn []byte) (cond int, rel int64, ok bool) {
	switch {
	case len(insn) == 2 && insn[0] >= 0x70 && insn[0] <= 0x7f:
		return int(insn[0] - 0x70), int64(int8(insn[1])), true
	case len(insn) == 2 && insn[0] == 0xeb:
		return -1, int64(int8(insn[1])), true
	case len(insn) == 6 && insn[0] == 0x0f && insn[1] >= 0x80 && insn[1] <= 0x8f:
		return int(insn[1] - 0x80), int64(int32(binary.LittleEndian.Uint32(insn[2:]))), true
	case len(insn) == 5 && insn[0] == 0xe9:
		return -1, int64(int32(binary.LittleEndian.Uint32(insn[1:]))), true
	}
	return 0, 0, false
}

// movable reports whether an instruction may be displaced into a
// trampoline: position-independent ones unchanged, direct jumps
// re-encoded with a 32-bit displacement to the same target (so glibc's
// `cmpb $0,single_threaded(%rip); je slow; xor %eax,%eax; syscall` is
// covered: the cmp stays, the je and xor move).
func movable(insn []byte) bool {
	if relocatable(insn) {
		return true
	}
	_, _, ok := directJump(insn)
	return ok
}

// trampoline encodes the trampoline for one site (see the comment at the
// top of this file) placed at addr. displaced holds the instructions
// moved from origin (their address in the guest).
func trampoline(displaced []byte, origin, addr, siteEnd, fast uint64) []byte {
	var b []byte
	for off := 0; off < len(displaced); {
		n, err := x86len.Len(displaced[off:])
		if err != nil || off+n > len(displaced) {
			n = len(displaced) - off // cannot happen: planSites decoded them
		}
		insn := displaced[off : off+n]
		if cond, rel, ok := directJump(insn); ok {
			target := int64(origin) + int64(off+n) + rel
			at := int64(addr) + int64(len(b))
			if cond < 0 {
				b = append(b, 0xe9)
				b = binary.LittleEndian.AppendUint32(b, uint32(int32(target-(at+5))))
			} else {
				b = append(b, 0x0f, byte(0x80+cond))
				b = binary.LittleEndian.AppendUint32(b, uint32(int32(target-(at+6))))
			}
		} else {
			b = append(b, insn...)
		}
		off += n
	}
	tail := addr + uint64(len(b)) + 23
	// rcx: where the fast path returns, the jump back after tail's
	// syscall; its fallback runs the syscall at rcx-2.
	b = append(b, 0x48, 0xb9) // movabs $tail+2, %rcx
	b = binary.LittleEndian.AppendUint64(b, tail+2)
	b = append(b, 0x49, 0xbb) // movabs $fast, %r11
	b = binary.LittleEndian.AppendUint64(b, fast)
	b = append(b, 0x41, 0xff, 0xe3) // jmp *%r11
	b = append(b, 0x0f, 0x05)       // tail: syscall
	b = append(b, 0xe9)             // jmp siteEnd
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(int64(siteEnd)-int64(addr+uint64(len(b))+4))))
	return b
}

// tailOf returns the address the trampoline's trapping syscall reports
// (the instruction after it) for a trampoline b placed at addr.
func tailOf(b []byte, addr uint64) uint64 { return addr + uint64(len(b)) - 5 }

// slot returns a free trampoline slot within reach of site, opening the
// arena it is in for writing.
func (rw *rewriter) slot(site uint64) (*arena, uint64, error) {
	for _, a := range rw.arenas {
		if a.used+trampMax <= arenaSize && dist(a.base, site) < arenaReach {
			return rw.take(a)
		}
	}
	for k := uint64(1); k <= 60; k++ {
		for _, cand := range []uint64{(site &^ (2<<20 - 1)) + k*(16<<20), (site &^ (2<<20 - 1)) - k*(16<<20)} {
			if cand < 1<<20 || cand > 1<<47 {
				continue
			}
			if _, err := mmapFixedNoReplace(cand, arenaSize, unix.PROT_READ|unix.PROT_WRITE); err != nil {
				continue
			}
			a := &arena{base: cand}
			rw.arenas = append(rw.arenas, a)
			return rw.take(a)
		}
	}
	return nil, 0, fmt.Errorf("no free space for trampolines within 1 GiB of %#x", site)
}

func (rw *rewriter) take(a *arena) (*arena, uint64, error) {
	p := a.base + a.used
	a.used += trampMax
	return a, p, nil
}

func dist(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// release unmaps every arena (at execve: the old program's code is gone).
func (rw *rewriter) release() {
	for _, a := range rw.arenas {
		unix.RawSyscall(unix.SYS_MUNMAP, uintptr(a.base), arenaSize, 0)
	}
	rw.arenas = nil
	rw.origins.reset()
}
