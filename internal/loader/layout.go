package loader

import (
	"debug/elf"
	"fmt"
)

// Mapping is one PT_LOAD segment placed in memory. All bounds are absolute
// (biased) addresses. The tier applies it as the kernel does:
//
//   - if FileEnd > Start, map file bytes [Off, Off+FileEnd-Start) at Start
//     with Prot (MAP_PRIVATE|MAP_FIXED);
//   - zero [ZeroStart, ZeroEnd), the bss tail in the last file-backed page
//     (writing through a temporarily writable view if Prot lacks ProtWrite);
//   - map anonymous zero pages [FileEnd, End) with Prot.
//
// Start, FileEnd, End and Off are page-aligned. Mappings are listed in
// ascending address order and must be applied in that order: as with the
// kernel, a mapping may begin in the last page of the previous one, and the
// later mapping then wins for that page.
type Mapping struct {
	Start     uint64 // page-aligned start
	FileEnd   uint64 // page-aligned end of the file-backed part (== Start if none)
	End       uint64 // page-aligned end, anonymous pages included
	Off       uint64 // page-aligned file offset mapped at Start
	Prot      Prot
	ZeroStart uint64 // first byte past the segment's file data; 0 if no zeroing
	ZeroEnd   uint64 // == FileEnd when ZeroStart != 0
	Segment   int    // index into Image.Phdrs
}

// Layout is the loading plan for an Image at a given load bias.
type Layout struct {
	Mappings []Mapping
	LoadBias uint64 // added to every p_vaddr (0 for ET_EXEC)
	Entry    uint64 // e_entry + LoadBias
	PhdrAddr uint64 // PhdrVaddr + LoadBias, or 0 if the headers are not mapped
	Start    uint64 // lowest mapped address (page-aligned)
	End      uint64 // end of the highest mapping (page-aligned)
	Brk      uint64 // initial program break: page-aligned end of the highest segment
}

// Layout computes the plan with [PageSize] pages. For ET_DYN, base is the
// load bias the caller chose (page-aligned; ideally aligned to Image.Align);
// for ET_EXEC it must be 0. Layout(0) of an ET_DYN image gives its extent,
// for choosing a base.
func (im *Image) Layout(base uint64) (Layout, error) {
	return im.LayoutPage(base, PageSize)
}

// LayoutPage is [Image.Layout] for a host page size other than [PageSize]
// (a power of two, at least 4096 and at most 64 KiB).
func (im *Image) LayoutPage(base, page uint64) (Layout, error) {
	if page < PageSize || page > maxAlignCheck || page&(page-1) != 0 {
		return Layout{}, fmt.Errorf("loader: invalid page size %#x", page)
	}
	switch im.Type {
	case elf.ET_EXEC:
		if base != 0 {
			return Layout{}, fmt.Errorf("loader: ET_EXEC image needs base 0, got %#x", base)
		}
	case elf.ET_DYN:
		if base%page != 0 {
			return Layout{}, fmt.Errorf("loader: base %#x not page-aligned", base)
		}
	default:
		return Layout{}, fmt.Errorf("loader: cannot lay out %v image", im.Type)
	}
	l := Layout{LoadBias: base, Entry: base + im.Entry}
	if im.PhdrVaddr != 0 {
		l.PhdrAddr = base + im.PhdrVaddr
	}
	first := true
	for i, s := range im.Phdrs {
		if s.Memsz == 0 {
			continue
		}
		if s.Vaddr%page != s.Off%page {
			return Layout{}, fmt.Errorf("loader: segment %d: vaddr %#x and offset %#x not congruent modulo page size %#x", i, s.Vaddr, s.Off, page)
		}
		vaddr := base + s.Vaddr
		if vaddr < base || vaddr > maxUint64-s.Memsz {
			return Layout{}, fmt.Errorf("loader: segment %d: address overflow with base %#x", i, base)
		}
		memEnd := vaddr + s.Memsz
		end := pageUp(memEnd, page)
		if end == 0 {
			return Layout{}, fmt.Errorf("loader: segment %d: address overflow with base %#x", i, base)
		}
		m := Mapping{
			Start:   pageDown(vaddr, page),
			Off:     s.Off - vaddr%page,
			Prot:    s.Prot,
			End:     end,
			Segment: i,
		}
		m.FileEnd = m.Start
		if s.Filesz > 0 {
			fileEnd := vaddr + s.Filesz
			m.FileEnd = pageUp(fileEnd, page)
			if s.Memsz > s.Filesz && fileEnd < m.FileEnd {
				m.ZeroStart, m.ZeroEnd = fileEnd, m.FileEnd
			}
		}
		if first {
			l.Start = m.Start
			first = false
		}
		l.End = max(l.End, m.End)
		l.Brk = max(l.Brk, m.End)
		l.Mappings = append(l.Mappings, m)
	}
	if first {
		return Layout{}, fmt.Errorf("loader: no PT_LOAD segment with nonzero size")
	}
	return l, nil
}
