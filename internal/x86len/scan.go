package x86len

// Boundaries walks code from offset 0 and returns the start offsets of all
// instructions. On an undecodable or truncated instruction it records the
// offending byte as undecodable and resynchronizes one byte later; those
// bytes are not reported as instruction starts.
func Boundaries(code []byte) (starts []int, undecodable int) {
	starts = make([]int, 0, len(code)/4)
	for off := 0; off < len(code); {
		n, err := Len(code[off:])
		if err != nil {
			undecodable++
			off++
			continue
		}
		starts = append(starts, off)
		off += n
	}
	return starts, undecodable
}

// SiteKind classifies a syscall site.
type SiteKind uint8

const (
	// MovSyscall is `mov $nr,%eax` (b8 imm32) immediately followed by a
	// `syscall` (0f 05) instruction; Site.Offset is the mov's offset.
	MovSyscall SiteKind = iota + 1
	// BareSyscall is a `syscall` instruction not preceded by b8 imm32.
	BareSyscall
)

func (k SiteKind) String() string {
	switch k {
	case MovSyscall:
		return "mov+syscall"
	case BareSyscall:
		return "syscall"
	}
	return "unknown"
}

// Site is one syscall site found at real instruction boundaries.
type Site struct {
	Offset  int      // offset of the mov (MovSyscall) or of the syscall (BareSyscall)
	Kind    SiteKind // MovSyscall or BareSyscall
	Nr      uint32   // syscall number loaded by the mov (MovSyscall only)
	Syscall int      // offset of the 0f 05 instruction
	// SyscallIsBranchTarget is set for a MovSyscall pair whose syscall
	// instruction is the target of a direct branch decoded in the same
	// buffer. Rewriting the 7-byte pair as a unit would break that branch,
	// so a rewriter must treat such a pair as two separate sites.
	SyscallIsBranchTarget bool
}

// Sites returns the syscall sites in code, found by walking instruction
// boundaries from offset 0 (never by raw byte matching): `b8 imm32 0f 05`
// pairs that start at an instruction boundary (reported at the mov's offset)
// and bare `0f 05` syscall instructions at boundaries. A syscall that is the
// second half of a reported pair is not reported again as a bare site.
func Sites(code []byte) []Site {
	starts, _ := Boundaries(code)
	targets := branchTargets(code, starts)
	var sites []Site
	for i := 0; i < len(starts); i++ {
		off := starts[i]
		if isSyscall(code, off) {
			sites = append(sites, Site{Offset: off, Kind: BareSyscall, Syscall: off})
			continue
		}
		if code[off] == 0xb8 && off+7 <= len(code) && i+1 < len(starts) &&
			starts[i+1] == off+5 && isSyscall(code, off+5) {
			nr := uint32(code[off+1]) | uint32(code[off+2])<<8 | uint32(code[off+3])<<16 | uint32(code[off+4])<<24
			sites = append(sites, Site{
				Offset:                off,
				Kind:                  MovSyscall,
				Nr:                    nr,
				Syscall:               off + 5,
				SyscallIsBranchTarget: targets[off+5],
			})
			i++ // the syscall belongs to the pair
		}
	}
	return sites
}

func isSyscall(code []byte, off int) bool {
	return off+2 <= len(code) && code[off] == 0x0f && code[off+1] == 0x05
}

// branchTargets returns the in-buffer targets of direct relative branches
// (jmp/jcc/call/loop/jrcxz), prefixed or not.
func branchTargets(code []byte, starts []int) map[int]bool {
	t := map[int]bool{}
	forEachBranchTarget(code, starts, func(dst int) { t[dst] = true })
	return t
}

// BranchTargetBits is BranchTargets as a bit set: bit i of word i/64 is
// set when offset i is a direct branch target. For large code it is much
// cheaper than the map.
func BranchTargetBits(code []byte, starts []int) []uint64 {
	bits := make([]uint64, (len(code)+63)/64)
	forEachBranchTarget(code, starts, func(dst int) { bits[dst/64] |= 1 << (dst % 64) })
	return bits
}

// forEachBranchTarget calls f with the target of every direct relative
// branch decoded at one of starts. Prefixes do not hide a branch: compilers
// emit `bnd jmp` (f2), branch hints (2e, 3e), notrack and REX bytes before
// them, and a rewriter that missed such a branch would move the
// instruction it lands on. The displacement is the instruction's last 1,
// 2 or 4 bytes (an operand-size prefix shortens a near branch's to 2), so
// the length Len decodes is what places it.
func forEachBranchTarget(code []byte, starts []int, f func(dst int)) {
	for _, off := range starts {
		p := off
		for p < len(code) && p-off < MaxLen && IsPrefix(code[p]) {
			p++
		}
		if p >= len(code) {
			continue
		}
		b := code[p]
		short := b == 0xeb || (b >= 0x70 && b <= 0x7f) || (b >= 0xe0 && b <= 0xe3)
		near := b == 0xe8 || b == 0xe9 || (b == 0x0f && p+1 < len(code) && code[p+1] >= 0x80 && code[p+1] <= 0x8f)
		if !short && !near {
			continue
		}
		n, err := Len(code[off:])
		if err != nil {
			continue
		}
		end := off + n
		var rel int
		switch k := end - p - 1; {
		case short:
			rel = int(int8(code[end-1]))
		case b == 0x0f && k-1 == 4, b != 0x0f && k == 4:
			rel = int(int32(le32(code[end-4:])))
		case b == 0x0f && k-1 == 2, b != 0x0f && k == 2:
			rel = int(int16(uint16(code[end-2]) | uint16(code[end-1])<<8))
		default:
			continue
		}
		if dst := end + rel; dst >= 0 && dst < len(code) {
			f(dst)
		}
	}
}

// IsPrefix reports whether b is a legacy prefix or a REX byte.
func IsPrefix(b byte) bool {
	switch b {
	case 0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65:
		return true
	}
	return b&0xf0 == 0x40
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// BranchTargets returns the offsets in code that a direct branch (jmp,
// jcc, call, loop/jcxz) decoded at one of starts jumps to. A rewriter must
// not move an instruction that is such a target.
func BranchTargets(code []byte, starts []int) map[int]bool { return branchTargets(code, starts) }
