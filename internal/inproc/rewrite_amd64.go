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

// rewriterArch: x86-64 has no cancel slots (musl's x86-64 cancellation
// wrappers are planned as ordinary syscall sites) and needs no veneers
// (arenas are within a jmp's reach); its hooks do nothing.
type rewriterArch struct{}

func (*rewriterArch) patchCancel(code []byte, lo uint64, place func(uint64) (uint64, bool), origins *[]uint64) {
}

func (*rewriterArch) program(t *tier, p *program) {}

func (*rewriterArch) report(t *tier) {}

func (*rewriterArch) setSlack(ef *elf.File, fileOff, lo, hi uint64, prot int) {}

func (*rewriterArch) bridge(at, tramp uint64) (uint64, bool) { return 0, false }

func (*rewriterArch) closeBridges() error { return nil }
