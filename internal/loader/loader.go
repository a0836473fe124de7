// Package loader owns the in-process tiers' ELF loading plan: it validates a
// guest ELF (and its interpreter), computes where each PT_LOAD segment goes,
// and builds the initial process stack (argv, envp, auxv). It maps nothing
// itself: the tier applies the plan.
//
// The package is pure Go. [Parse] reads the ELF header and program headers
// with encoding/binary (not debug/elf, which accepts some files the kernel
// would refuse) and rejects anything the tier could not load safely, with an
// error wrapping [ErrBadELF] that names the problem. [Image.Layout] turns the
// segments into page-aligned mappings using the kernel's binfmt_elf
// arithmetic, and [BuildStack] lays out the bytes of the initial stack.
package loader

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/kbox-go/kbox/internal/abi"
)

// ErrBadELF is wrapped by every error [Parse] returns for a file that is not
// a loadable ELF executable for the requested architecture.
var ErrBadELF = errors.New("bad ELF")

// Limits enforced by [Parse].
const (
	// MaxPhnum bounds e_phnum: files with this many program headers or more
	// are rejected.
	MaxPhnum = 256
	// MaxInterpLen is the largest PT_INTERP size accepted, NUL included
	// (PATH_MAX, as the kernel uses).
	MaxInterpLen = 4096
	// PageSize is the page size [Image.Layout] uses and the granularity at
	// which [Parse] requires p_vaddr and p_offset to be congruent.
	PageSize = abi.PageSize

	ehdrSize  = 64
	phdrSize  = 56
	maxUint64 = ^uint64(0)
)

// Prot is a set of memory protections. Its bits have the values of the
// host's PROT_READ, PROT_WRITE and PROT_EXEC.
type Prot uint8

// Protection bits.
const (
	ProtRead  Prot = 1
	ProtWrite Prot = 2
	ProtExec  Prot = 4
)

// String returns the protections in readelf's style, e.g. "R E".
func (p Prot) String() string {
	b := []byte("   ")
	if p&ProtRead != 0 {
		b[0] = 'R'
	}
	if p&ProtWrite != 0 {
		b[1] = 'W'
	}
	if p&ProtExec != 0 {
		b[2] = 'E'
	}
	return string(b)
}

// Segment is one PT_LOAD program header, as found in the file.
type Segment struct {
	Vaddr  uint64 // p_vaddr
	Memsz  uint64 // p_memsz
	Filesz uint64 // p_filesz, never above Memsz
	Off    uint64 // p_offset; Off+Filesz is within the file
	Prot   Prot   // from p_flags
	Align  uint64 // p_align; 0 or a power of two
}

// Image is a validated ELF executable or shared object: everything the tier
// needs to map it, with nothing read beyond the headers and PT_INTERP.
type Image struct {
	Machine elf.Machine // EM_X86_64 or EM_AARCH64, matching the arch asked for
	Type    elf.Type    // ET_EXEC or ET_DYN
	Entry   uint64      // e_entry, unbiased

	// Phdrs holds the PT_LOAD segments only, in file order, which Parse
	// has checked is ascending by Vaddr with no two segments overlapping.
	Phdrs []Segment

	// PhdrVaddr is the unbiased address of the program headers in memory:
	// the PT_PHDR segment's p_vaddr if there is one, else computed from the
	// PT_LOAD whose file range contains them. It is 0 if they are not
	// mapped at all; the tier must then provide its own copy for AT_PHDR.
	PhdrVaddr uint64
	Phnum     int // e_phnum
	Phentsize int // e_phentsize (always 56)

	// Interp is the PT_INTERP path without its NUL, "" for a static file;
	// InterpOff and InterpSize locate the PT_INTERP bytes in the file.
	Interp                string
	InterpOff, InterpSize uint64

	// ExecStack reports whether PT_GNU_STACK asks for an executable stack;
	// without PT_GNU_STACK it is the arch's default (false on amd64 and
	// arm64).
	ExecStack bool

	// Align is the largest PT_LOAD p_align (at least PageSize). A caller
	// choosing a base for an ET_DYN image should align it to this.
	Align uint64
}

// machineFor maps a Go arch name (or its kernel spelling) to the ELF machine.
func machineFor(arch string) (elf.Machine, error) {
	switch arch {
	case "amd64", "x86_64":
		return elf.EM_X86_64, nil
	case "arm64", "aarch64":
		return elf.EM_AARCH64, nil
	}
	return 0, fmt.Errorf("loader: unsupported arch %q", arch)
}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadELF, fmt.Sprintf(format, args...))
}

// Parse reads and validates the ELF file r of the given size for arch
// ("amd64" or "arm64"). Every rejection wraps [ErrBadELF] except an unknown
// arch and I/O errors from r, which are returned as they are (wrapped).
// Errors about a program header name it by its index in the program header
// table (readelf -l order).
func Parse(r io.ReaderAt, size int64, arch string) (*Image, error) {
	want, err := machineFor(arch)
	if err != nil {
		return nil, err
	}
	if size < ehdrSize {
		return nil, bad("truncated ELF header (%d bytes, need %d)", max(size, 0), ehdrSize)
	}
	var eh [ehdrSize]byte
	if err := readFull(r, eh[:], 0); err != nil {
		return nil, err
	}
	if string(eh[:4]) != elf.ELFMAG {
		return nil, bad("not an ELF file (bad magic %q)", eh[:4])
	}
	switch elf.Class(eh[elf.EI_CLASS]) {
	case elf.ELFCLASS64:
	case elf.ELFCLASS32:
		return nil, bad("32-bit ELF not supported")
	default:
		return nil, bad("invalid ELF class %d", eh[elf.EI_CLASS])
	}
	switch elf.Data(eh[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
	case elf.ELFDATA2MSB:
		return nil, bad("big-endian ELF not supported")
	default:
		return nil, bad("invalid ELF data encoding %d", eh[elf.EI_DATA])
	}
	if v := elf.Version(eh[elf.EI_VERSION]); v != elf.EV_CURRENT {
		return nil, bad("invalid ELF ident version %d", v)
	}
	le := binary.LittleEndian
	typ := elf.Type(le.Uint16(eh[16:]))
	mach := elf.Machine(le.Uint16(eh[18:]))
	version := le.Uint32(eh[20:])
	entry := le.Uint64(eh[24:])
	phoff := le.Uint64(eh[32:])
	phentsize := le.Uint16(eh[54:])
	phnum := le.Uint16(eh[56:])

	if typ != elf.ET_EXEC && typ != elf.ET_DYN {
		return nil, bad("not an executable (%v)", typ)
	}
	if mach != want {
		return nil, bad("wrong machine: %v, want %v", mach, want)
	}
	if version != uint32(elf.EV_CURRENT) {
		return nil, bad("invalid e_version %d", version)
	}
	if phentsize != phdrSize {
		return nil, bad("e_phentsize != %d (got %d)", phdrSize, phentsize)
	}
	if phnum == 0 {
		return nil, bad("no PT_LOAD segment (no program headers)")
	}
	if phnum >= MaxPhnum {
		return nil, bad("too many program headers (%d, limit %d)", phnum, MaxPhnum-1)
	}
	phlen := uint64(phnum) * phdrSize
	if phoff > uint64(size) || phlen > uint64(size)-phoff {
		return nil, bad("program headers beyond end of file (offset %#x, %d bytes, file %d bytes)", phoff, phlen, size)
	}
	ph := make([]byte, phlen)
	if err := readFull(r, ph, int64(phoff)); err != nil {
		return nil, err
	}

	im := &Image{
		Machine:   mach,
		Type:      typ,
		Entry:     entry,
		Phnum:     int(phnum),
		Phentsize: int(phentsize),
		Align:     PageSize,
	}
	var (
		havePhdr, haveInterp, haveStack bool
		lastLoad                        = -1
		interpOff, interpSize           uint64
		interpIdx                       int
	)
	for i := range int(phnum) {
		b := ph[i*phdrSize:]
		ptype := elf.ProgType(le.Uint32(b[0:]))
		flags := elf.ProgFlag(le.Uint32(b[4:]))
		off := le.Uint64(b[8:])
		vaddr := le.Uint64(b[16:])
		filesz := le.Uint64(b[32:])
		memsz := le.Uint64(b[40:])
		align := le.Uint64(b[48:])
		switch ptype {
		case elf.PT_LOAD:
			if filesz > memsz {
				return nil, bad("segment %d: filesz > memsz (%#x > %#x)", i, filesz, memsz)
			}
			if filesz > 0 && (off > uint64(size) || filesz > uint64(size)-off) {
				return nil, bad("segment %d: segment offset beyond end of file (offset %#x + filesz %#x > file size %#x)", i, off, filesz, size)
			}
			if vaddr > maxUint64-memsz || pageUp(vaddr+memsz, maxAlignCheck) == 0 && vaddr+memsz != 0 {
				return nil, bad("segment %d: address overflow (vaddr %#x + memsz %#x)", i, vaddr, memsz)
			}
			if align > 1 {
				if align&(align-1) != 0 {
					return nil, bad("segment %d: alignment %#x not a power of two", i, align)
				}
				if vaddr%align != off%align {
					return nil, bad("segment %d: vaddr %% align != offset %% align (vaddr %#x, offset %#x, align %#x)", i, vaddr, off, align)
				}
			}
			if vaddr%PageSize != off%PageSize {
				return nil, bad("segment %d: vaddr and offset not congruent modulo page size (vaddr %#x, offset %#x)", i, vaddr, off)
			}
			if lastLoad >= 0 {
				prev := im.Phdrs[len(im.Phdrs)-1]
				if vaddr < prev.Vaddr+prev.Memsz && prev.Vaddr < vaddr+memsz ||
					memsz == 0 && vaddr > prev.Vaddr && vaddr < prev.Vaddr+prev.Memsz {
					return nil, bad("segment %d overlaps segment %d", i, lastLoad)
				}
				if vaddr < prev.Vaddr+prev.Memsz || vaddr < prev.Vaddr {
					return nil, bad("segment %d: vaddr %#x below segment %d (PT_LOAD not in ascending order)", i, vaddr, lastLoad)
				}
			}
			if align > im.Align {
				im.Align = align
			}
			im.Phdrs = append(im.Phdrs, Segment{
				Vaddr: vaddr, Memsz: memsz, Filesz: filesz, Off: off,
				Prot: protOf(flags), Align: align,
			})
			lastLoad = i
		case elf.PT_INTERP:
			if haveInterp {
				return nil, bad("segment %d: more than one PT_INTERP", i)
			}
			haveInterp = true
			interpOff, interpSize, interpIdx = off, filesz, i
		case elf.PT_PHDR:
			if havePhdr {
				return nil, bad("segment %d: more than one PT_PHDR", i)
			}
			havePhdr = true
			im.PhdrVaddr = vaddr
		case elf.PT_GNU_STACK:
			if !haveStack {
				haveStack = true
				im.ExecStack = flags&elf.PF_X != 0
			}
		}
	}
	if len(im.Phdrs) == 0 {
		return nil, bad("no PT_LOAD segment")
	}
	if haveInterp {
		if interpSize < 2 {
			return nil, bad("segment %d: PT_INTERP too short (%d bytes)", interpIdx, interpSize)
		}
		if interpSize > MaxInterpLen {
			return nil, bad("segment %d: PT_INTERP not NUL-terminated or too long (%d bytes, limit %d)", interpIdx, interpSize, MaxInterpLen)
		}
		if interpOff > uint64(size) || interpSize > uint64(size)-interpOff {
			return nil, bad("segment %d: segment offset beyond end of file (PT_INTERP at %#x, %d bytes)", interpIdx, interpOff, interpSize)
		}
		buf := make([]byte, interpSize)
		if err := readFull(r, buf, int64(interpOff)); err != nil {
			return nil, err
		}
		if buf[len(buf)-1] != 0 {
			return nil, bad("segment %d: PT_INTERP not NUL-terminated or too long", interpIdx)
		}
		// Linux checks only the last byte and opens the string up to the
		// first NUL (binfmt_elf's open_exec of a C string): an embedded
		// NUL shortens the name, it does not make the file unloadable.
		im.Interp = string(buf[:bytes.IndexByte(buf, 0)])
		im.InterpOff, im.InterpSize = interpOff, interpSize
	}
	if !havePhdr {
		for _, s := range im.Phdrs {
			if s.Off <= phoff && phoff-s.Off <= s.Filesz && phlen <= s.Filesz-(phoff-s.Off) {
				im.PhdrVaddr = s.Vaddr + (phoff - s.Off)
				break
			}
		}
	}
	return im, nil
}

// maxAlignCheck is the rounding Parse guarantees cannot overflow for a
// segment end: any page size up to 64 KiB is safe in Layout.
const maxAlignCheck = 1 << 16

func protOf(f elf.ProgFlag) Prot {
	var p Prot
	if f&elf.PF_R != 0 {
		p |= ProtRead
	}
	if f&elf.PF_W != 0 {
		p |= ProtWrite
	}
	if f&elf.PF_X != 0 {
		p |= ProtExec
	}
	return p
}

func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("loader: reading %d bytes at %#x: %w", len(b), off, err)
}

// pageUp rounds v up to a multiple of page (a power of two); it returns 0
// if that overflows.
func pageUp(v, page uint64) uint64 {
	s, carry := bits.Add64(v, page-1, 0)
	if carry != 0 {
		return 0
	}
	return s &^ (page - 1)
}

func pageDown(v, page uint64) uint64 { return v &^ (page - 1) }
