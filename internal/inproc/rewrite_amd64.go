//go:build cgo && linux && amd64

package inproc

import (
	"debug/elf"

	"github.com/kbox-go/kbox/internal/rewrite"
)

// hostISA plans and encodes the patches.
var hostISA rewrite.ISA = rewrite.X86_64

// arenaReach keeps arenas within 1 GiB of their sites (a jmp rel32
// reaches 2 GiB).
const arenaReach = 1 << 30

// arenaTop bounds arena addresses: the 47-bit user address space (kbox
// never asks for 5-level paging's upper half).
const arenaTop = 1 << 47

// cancelState: x86-64 has no cancel slots (musl's x86-64 cancellation
// wrappers are planned as ordinary syscall sites).
type cancelState struct{}

func (rw *rewriter) patchCancel(code []byte, lo uint64, place func(uint64) (uint64, bool), origins *[]uint64) {
}

func (rw *rewriter) program(t *tier, p *program) {}

func (rw *rewriter) report(t *tier) {}

// x86-64 needs no veneers: arenas are within a jmp's reach.
type bridgeState struct{}

func (rw *rewriter) setSlack(ef *elf.File, fileOff, lo, hi uint64, prot int) {}

func (rw *rewriter) bridge(at, tramp uint64) (uint64, bool) { return 0, false }

func (rw *rewriter) closeBridges() error { return nil }
