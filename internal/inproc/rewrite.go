//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/rewrite"
)

// The rewrite tier is the trap tier plus patched call sites. Before guest
// code can run (at load, and whenever a mapping becomes executable), every
// syscall site internal/rewrite plans is patched to jump to a trampoline
// (internal/rewrite has the patch and trampoline encodings); here is the
// live half: arenas for the trampolines, writing the patches under W^X,
// and the origin map of trampoline syscalls.
//
// Trampolines live in arenas within a branch's reach of their sites
// (arenaReach: ±2 GiB on x86-64, ±128 MiB on arm64), which kbox maps,
// writes and then seals read-only and executable (the origin map: only the
// trampolines kbox wrote exist; the guest cannot change them — they are
// not guest memory, so its mprotect and munmap are refused). On arm64 the
// patched code and the trampolines are then made visible to instruction
// fetch (syncICache), and musl's cancellation wrapper calls may be
// promoted too (rewrite_arm64.go).

const arenaSize = 256 << 10

type arena struct{ base, used uint64 }

type rewriter struct {
	isa rewrite.ISA
	// mprotect changes guest memory's protection (a test replaces it).
	mprotect func(addr, n uint64, prot int) error
	cache    rewrite.Cache
	fast     uint64
	arenas   []*arena
	sites    int // patched
	wrappers int // of which WRAPPER sites: the syscall is followed by ret
	mappings int // mappings with sites
	// slack is the free tail of the executable segment being patched,
	// where veneers go (arm64; empty elsewhere).
	slack span
	// rewriterArch is the architecture's part (arm64: the cancel-wrapper
	// promotion and the veneers).
	rewriterArch
	// origins holds, for every trampoline kbox wrote, the address its
	// trapping syscall reports (tail+2): a trap from an arena at any other
	// address did not come from a trampoline, and is fatal.
	origins originMap
}

func newRewriter(cacheReadOnly bool) *rewriter {
	return &rewriter{isa: hostISA, fast: fastPathAddr(), cache: rewrite.NewCache(cacheReadOnly), mprotect: rawMprotect}
}

// rawMprotect is mprotect(2) on [addr, addr+n).
func rawMprotect(addr, n uint64, prot int) error {
	if _, _, en := unix.RawSyscall(unix.SYS_MPROTECT, uintptr(addr), uintptr(n), uintptr(prot)); en != 0 {
		return en
	}
	return nil
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
	rw.setSlack(ef, fileOff, lo, hi, prot)
	defer rw.setSlack(nil, 0, 0, 0, 0)
	for _, s := range ef.Sections {
		if s.Flags&elf.SHF_EXECINSTR == 0 || s.Type != elf.SHT_PROGBITS || s.Size == 0 {
			continue
		}
		if s.Offset < fileOff || s.Offset+s.Size > fileOff+size {
			continue
		}
		key := ""
		if haveStat && useCache {
			key = rewrite.Key(&st, s.Offset, s.Size)
		}
		p, l, err := rw.patchCode(t, lo+(s.Offset-fileOff), lo+(s.Offset-fileOff)+s.Size, lo, hi, prot, key)
		if err != nil {
			// Half-patched code, pages left writable or trampolines
			// not sealed: the guest cannot go on safely.
			t.eng.Warnf("rewrite: %s: %v; the guest is stopped", what, err)
			t.exit(125)
		}
		patched += p
		left += l
	}
	if patched+left > 0 {
		rw.mappings++
		t.eng.Verbosef("rewrite: %s: %d syscall sites patched, %d left to trap", what, patched, left)
	}
}

// patchCode patches the syscall sites in guest code [lo, hi), which lies in
// the mapping [mapLo, mapHi) currently mapped with prot. key names the
// code in the plan cache ("" for none). It returns the numbers of sites
// patched and left to trap, and an error when the code or its trampolines
// could not be put back under W^X (the guest must not run on).
func (rw *rewriter) patchCode(t *tier, lo, hi, mapLo, mapHi uint64, prot int, key string) (int, int, error) {
	if prot&unix.PROT_READ == 0 || hi <= lo || hi-lo > 1<<30 {
		return 0, 0, nil
	}
	code := make([]byte, hi-lo)
	if (memory{}).Read(lo, code) != nil {
		return 0, 0, nil
	}
	plan, found, cached := rw.cache.Load(key)
	if cached && !rw.isa.Valid(code, plan) {
		cached = false
	}
	if !cached {
		plan, found = rw.isa.Plan(code)
		rw.cache.Store(key, plan, found)
	}
	if len(plan) == 0 {
		return 0, found, nil
	}
	// Write the trampolines, then the jumps, keeping guest code W^X: its
	// pages are writable (and not executable) only while being patched.
	pageLo, pageHi := lo&^(pageSize-1), min(pageUp(hi), mapHi)
	pageLo = max(pageLo, mapLo)
	if rw.mprotect(pageLo, pageHi-pageLo, unix.PROT_READ|unix.PROT_WRITE) != nil {
		return 0, found, nil // nothing changed: every site traps
	}
	var errs []error
	done := 0
	opened := map[*arena]bool{}
	var origins []uint64
	// place returns a trampoline slot within reach of the site at, its
	// arena opened for writing; ok is false when none is left (the
	// remaining sites trap).
	full := false
	place := func(at uint64) (uint64, bool) {
		if full {
			return 0, false
		}
		a, tramp, err := rw.slot(at)
		if err != nil {
			t.verboseOnce("arena", "rewrite: %v; the remaining sites trap", err)
			full = true
			return 0, false
		}
		if !opened[a] {
			if err := rw.mprotect(a.base, arenaSize, unix.PROT_READ|unix.PROT_WRITE); err != nil {
				t.verboseOnce("arena", "rewrite: opening a trampoline arena: %v; the remaining sites trap", err)
				full = true
				return 0, false
			}
			opened[a] = true
		}
		return tramp, true
	}
	for _, p := range plan {
		at := lo + uint64(p.Start)
		end := lo + uint64(p.Sys) + syscallInsnLen
		tramp, ok := place(at)
		if !ok {
			break
		}
		buf := rw.isa.Trampoline(code[p.Start:p.Sys], at, tramp, end, rw.fast)
		patch := rw.isa.SitePatch(at, end, tramp)
		if patch == nil {
			// Out of the jump's reach: through a veneer, if one fits.
			if v, ok := rw.bridge(at, tramp); ok {
				patch = rw.isa.SitePatch(at, end, v)
			}
		}
		if len(buf) > rewrite.TrampMax || patch == nil {
			continue // re-encoded jumps made it too long, or out of reach: leave it to trap
		}
		copy(guestBytes(tramp, len(buf)), buf)
		copy(guestBytes(at, int(end-at)), patch)
		origins = append(origins, rw.isa.TrapAddr(buf, tramp))
		if rw.isa.SyscallReturns(code, p.Sys) {
			rw.wrappers++
		}
		done++
	}
	rw.patchCancel(code, lo, place, &origins)
	if err := rw.closeBridges(); err != nil {
		errs = append(errs, err)
	}
	if err := rw.mprotect(pageLo, pageHi-pageLo, prot); err != nil {
		errs = append(errs, fmt.Errorf("restoring the protection of patched code at %#x: %w", pageLo, err))
	} else {
		syncICache(lo, hi)
	}
	for a := range opened {
		if err := rw.mprotect(a.base, arenaSize, unix.PROT_READ|unix.PROT_EXEC); err != nil {
			errs = append(errs, fmt.Errorf("sealing the trampoline arena at %#x: %w", a.base, err))
		} else {
			syncICache(a.base, a.base+a.used)
		}
	}
	if err := rw.origins.add(origins); err != nil {
		errs = append(errs, err)
	}
	rw.sites += done
	return done, found - done, errors.Join(errs...)
}

// slot returns a free trampoline slot within reach of site, opening the
// arena it is in for writing.
func (rw *rewriter) slot(site uint64) (*arena, uint64, error) {
	for _, a := range rw.arenas {
		if a.used+rewrite.TrampMax <= arenaSize && dist(a.base, site) < arenaReach {
			return rw.take(a)
		}
	}
	for k := uint64(1); k*(16<<20)+(4<<20) <= arenaReach; k++ {
		for _, cand := range []uint64{(site &^ (2<<20 - 1)) + k*(16<<20), (site &^ (2<<20 - 1)) - k*(16<<20)} {
			if cand < 1<<20 || cand+arenaSize > arenaTop {
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
	if rw.slack.hi > rw.slack.lo {
		// Anywhere: the site reaches it through a veneer in the
		// segment's slack (bridge).
		for _, a := range rw.arenas {
			if a.used+rewrite.TrampMax <= arenaSize {
				return rw.take(a)
			}
		}
		if base, err := mmapAnywhere(arenaSize, unix.PROT_READ|unix.PROT_WRITE); err == nil {
			a := &arena{base: base}
			rw.arenas = append(rw.arenas, a)
			return rw.take(a)
		}
	}
	return nil, 0, fmt.Errorf("no free space for trampolines within %d MiB of %#x", arenaReach>>20, site)
}

// mmapAnywhere maps n bytes wherever the kernel places them.
func mmapAnywhere(n uint64, prot int) (uint64, error) {
	r, _, en := unix.RawSyscall6(unix.SYS_MMAP, 0, uintptr(n), uintptr(prot),
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uintptr(0), 0)
	if en != 0 {
		return 0, en
	}
	return uint64(r), nil
}

func (rw *rewriter) take(a *arena) (*arena, uint64, error) {
	p := a.base + a.used
	a.used += rewrite.TrampMax
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
