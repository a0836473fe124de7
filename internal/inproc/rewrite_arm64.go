//go:build cgo && linux && arm64

package inproc

/*
#include "guest.h"
void *kbox_direct_frame(void);
void *kbox_direct_uc(void);
*/
import "C"

import (
	"debug/elf"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/forkscan"
	"github.com/kbox-go/kbox/internal/rewrite"
)

// hostISA plans and encodes the patches.
var hostISA rewrite.ISA = rewrite.ARM64

// arenaReach keeps arenas within 100 MiB of their sites: a b reaches
// ±128 MiB.
const arenaReach = 100 << 20

// arenaTop bounds arena addresses: the 48-bit user address space (a
// 52-bit one is used only by mappings that ask for it).
const arenaTop = 1 << 48

// rewriterArch is arm64's part of the rewriter: the cancel-wrapper
// promotion and the veneers.
type rewriterArch struct {
	cancel  cancelState
	bridges bridgeState
	veneers int
}

// cancelState is the cancel-wrapper promotion (docs/cancel-wrapper.md):
// musl's cancellation wrappers call __syscall_cancel(a..f, nr) instead of
// issuing svc, so their calls never reach a patchable svc and would all
// trap. When the gate is on, each `bl __syscall_cancel` whose target
// internal/rewrite validated becomes `b` to a cancel slot that takes the
// number from x6 and enters the fast path like an svc slot. What is lost
// is the cancellation point, which is why the gate requires a program
// that cannot start a thread to cancel it.
type cancelState struct {
	on       bool
	reason   string
	sites    int // bl sites promoted
	entry    uint64
	programs int // programs the gate was decided for
}

// program decides the gate for the program about to be mapped: on only
// for a static program (no PT_INTERP: no library the scan has not seen)
// whose code has no clone or clone3 wrapper site.
func (rw *rewriter) program(t *tier, p *program) {
	c := &rw.cancel
	c.on, c.reason = rw.cancelGate(p)
	c.programs++
	c.entry = fastCancelAddr()
	state := "off"
	if c.on {
		state = "on"
	}
	t.eng.Verbosef("cancel promotion: %s (%s)", state, c.reason)
}

func (rw *rewriter) cancelGate(p *program) (bool, string) {
	if p.im.Interp != "" {
		return false, "dynamic: " + p.im.Interp + " and its libraries are not scanned"
	}
	st, err := p.file.Stat()
	if err != nil {
		return false, "unreadable program: " + err.Error()
	}
	// The scan auto uses: one reading of wrapper numbers for both.
	rep, err := forkscan.Scan(p.file, st.Size())
	if err != nil {
		return false, "unreadable ELF: " + err.Error()
	}
	if ok, why := forkscan.ThreadSite(rep); ok {
		return false, why + ": the program can start threads or processes"
	}
	return true, "static, no clone/clone3 wrapper sites"
}

// patchCancel promotes the validated cancellation calls of code at lo
// while the gate is on.
func (rw *rewriter) patchCancel(code []byte, lo uint64, place func(uint64) (uint64, bool), origins *[]uint64) {
	if !rw.cancel.on {
		return
	}
	for _, s := range rewrite.ARM64.PlanCancel(code) {
		at := lo + uint64(s.BL)
		tramp, ok := place(at)
		if !ok {
			return
		}
		buf := rewrite.ARM64.CancelTrampoline(at, tramp, rw.cancel.entry)
		patch := rewrite.ARM64.SitePatch(at, at+4, tramp)
		if patch == nil {
			continue // out of reach: the call stays a call
		}
		copy(guestBytes(tramp, len(buf)), buf)
		copy(guestBytes(at, 4), patch)
		*origins = append(*origins, rewrite.ARM64.TrapAddr(buf, tramp))
		rw.cancel.sites++
	}
}

func (rw *rewriter) report(t *tier) {
	if rw.veneers > 0 {
		t.eng.Verbosef("rewrite: %d sites reach their trampolines through veneers", rw.veneers)
	}
	c := &rw.cancel
	t.eng.Verbosef("cancel promotion: %d cancellation calls promoted; %d calls entered the cancel slots", c.sites, fastCancelEntries())
}

// fastCancelAddr and fastCancelEntries are the cancel slots' entry and
// count (for the tests).
func fastCancelAddr() uint64    { return uint64(C.kbox_fast_cancel_addr()) }
func fastCancelEntries() uint64 { return uint64(C.kbox_fast_cancel) }

// directFrame returns direct entry's frame (guest_arm64.c: the kernel's
// struct rt_sigframe, which rt_sigreturn reads at sp) and its ucontext,
// for the tests; directInit is kbox_direct_init without turning direct
// entry on.
func directFrame() (frame, uc unsafe.Pointer) { return C.kbox_direct_frame(), C.kbox_direct_uc() }

func directInit() int { return int(C.kbox_direct_init()) }

// Veneers. When no arena can be placed within a b's reach of a site (the
// kernel packs the libraries a dynamic guest maps next to kbox's own
// mappings and the Go runtime's reservations), the trampoline goes in an
// arena anywhere and the site branches to a 16-byte veneer (`ldr x16, #8;
// br x16; .quad slot`) in its segment's slack: the bytes from the end of
// the executable segment to the end of its last page, mapped with it and
// used by nothing. A site for which no veneer fits keeps its svc.

// bridgeState: the slack pages opened for writing during one patchCode,
// and the protection they get back.
type bridgeState struct {
	prot   int
	opened []uint64
}

// setSlack finds the slack of the executable segment that the mapping
// [lo, hi) of file offset fileOff holds (ef nil: none).
func (rw *rewriter) setSlack(ef *elf.File, fileOff, lo, hi uint64, prot int) {
	rw.slack, rw.bridges.prot = span{}, prot
	if ef == nil {
		return
	}
	for _, p := range ef.Progs {
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_X == 0 || p.Off < fileOff || p.Off-fileOff >= hi-lo {
			continue
		}
		end := lo + (p.Off - fileOff) + max(p.Filesz, p.Memsz)
		if end < lo || end >= hi {
			return
		}
		rw.slack = span{(end + 15) &^ 15, min(pageUp(end), hi)}
		return
	}
}

// bridge writes a veneer to tramp in the slack, within reach of at.
func (rw *rewriter) bridge(at, tramp uint64) (uint64, bool) {
	v := rw.slack.lo
	if v+16 > rw.slack.hi || dist(v, at) >= 128<<20-4 {
		return 0, false
	}
	page := v &^ (pageSize - 1)
	open := false
	for _, p := range rw.bridges.opened {
		open = open || p == page
	}
	if !open {
		if rw.mprotect(page, pageSize, unix.PROT_READ|unix.PROT_WRITE) != nil {
			return 0, false
		}
		rw.bridges.opened = append(rw.bridges.opened, page)
	}
	copy(guestBytes(v, 16), rewrite.ARM64.Veneer(tramp))
	rw.slack.lo = v + 16
	rw.veneers++
	return v, true
}

// closeBridges gives the slack pages back their protection and makes
// the veneers visible to instruction fetch.
func (rw *rewriter) closeBridges() error {
	var err error
	for _, p := range rw.bridges.opened {
		if e := rw.mprotect(p, pageSize, rw.bridges.prot); e != nil {
			err = fmt.Errorf("restoring the protection of veneers at %#x: %w", p, e)
			continue
		}
		syncICache(p, p+pageSize)
	}
	rw.bridges.opened = nil
	return err
}
