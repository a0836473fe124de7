package loader

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// layoutError checks the invariants every Layout must satisfy for im.
func layoutError(im *Image, l Layout, page uint64) error {
	if l.Entry != im.Entry+l.LoadBias {
		return fmt.Errorf("Entry %#x, want %#x", l.Entry, im.Entry+l.LoadBias)
	}
	if im.PhdrVaddr != 0 && l.PhdrAddr != im.PhdrVaddr+l.LoadBias {
		return fmt.Errorf("PhdrAddr %#x, want %#x", l.PhdrAddr, im.PhdrVaddr+l.LoadBias)
	}
	var end uint64
	for i, m := range l.Mappings {
		s := im.Phdrs[m.Segment]
		v := s.Vaddr + l.LoadBias
		for _, x := range []uint64{m.Start, m.FileEnd, m.End, m.Off} {
			if x%page != 0 {
				return fmt.Errorf("mapping %d: %#x not page-aligned: %+v", i, x, m)
			}
		}
		if m.Start > v || m.Start+page <= v || m.Start > m.FileEnd || m.FileEnd > m.End || m.End < v+s.Memsz || m.End-page >= v+s.Memsz {
			return fmt.Errorf("mapping %d: bounds %+v for segment %+v", i, m, s)
		}
		if m.FileEnd > m.Start && m.Off+(v-m.Start) != s.Off {
			return fmt.Errorf("mapping %d: offset %#x for segment %+v", i, m.Off, s)
		}
		if s.Filesz > 0 && m.FileEnd < v+s.Filesz {
			return fmt.Errorf("mapping %d: file part ends at %#x before %#x", i, m.FileEnd, v+s.Filesz)
		}
		if m.ZeroStart != 0 && (m.ZeroStart != v+s.Filesz || m.ZeroEnd != m.FileEnd || m.ZeroStart >= m.ZeroEnd) {
			return fmt.Errorf("mapping %d: zero range [%#x, %#x)", i, m.ZeroStart, m.ZeroEnd)
		}
		if i > 0 {
			p := l.Mappings[i-1]
			if m.Segment <= p.Segment || m.Start+page < p.End {
				return fmt.Errorf("mapping %d (%+v) not after mapping %d (%+v)", i, m, i-1, p)
			}
		}
		if m.Prot != s.Prot {
			return fmt.Errorf("mapping %d: prot %v, segment %v", i, m.Prot, s.Prot)
		}
		end = max(end, m.End)
	}
	if len(l.Mappings) == 0 || l.Start != l.Mappings[0].Start || l.End != end || l.Brk != end {
		return fmt.Errorf("Start %#x End %#x Brk %#x, mappings end %#x", l.Start, l.End, l.Brk, end)
	}
	return nil
}

func checkLayout(t *testing.T, im *Image, l Layout) {
	t.Helper()
	if err := layoutError(im, l, PageSize); err != nil {
		t.Error(err)
	}
}

func TestLayoutExec(t *testing.T) {
	im, err := parseBytes(minimalELF(), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	l, err := im.Layout(0)
	if err != nil {
		t.Fatal(err)
	}
	want := Layout{
		Mappings: []Mapping{
			{Start: 0x400000, FileEnd: 0x401000, End: 0x401000, Off: 0, Prot: ProtRead | ProtExec, Segment: 0},
			// vaddr 0x401300 / offset 0x300 are not page-aligned: both
			// round down; file bytes end at 0x401310, the rest of that
			// page is zeroed, and 0x402000..0x404000 is anonymous.
			{Start: 0x401000, FileEnd: 0x402000, End: 0x404000, Off: 0, Prot: ProtRead | ProtWrite,
				ZeroStart: 0x401310, ZeroEnd: 0x402000, Segment: 1},
		},
		LoadBias: 0, Entry: 0x400100, PhdrAddr: 0x400040,
		Start: 0x400000, End: 0x404000, Brk: 0x404000,
	}
	checkEqualLayout(t, l, want)
	checkLayout(t, im, l)

	if _, err := im.Layout(0x10000); err == nil {
		t.Error("ET_EXEC with nonzero base accepted")
	}
	if _, err := im.LayoutPage(0, 3000); err == nil {
		t.Error("page size 3000 accepted")
	}
	// With 64 KiB pages, vaddr 0x401300 and offset 0x300 are no longer
	// congruent: the file cannot be mapped.
	if _, err := im.LayoutPage(0, 0x10000); err == nil || !strings.Contains(err.Error(), "not congruent") {
		t.Errorf("64K pages: err = %v", err)
	}
}

func TestLayoutSharedPage(t *testing.T) {
	// With 64 KiB pages and congruent offsets, the two segments share a
	// page: the second mapping starts inside the first one's last page.
	b := minimalELF()
	setPh64(b, 3, phVaddr, 0x410300)
	im, err := parseBytes(b, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	l, err := im.LayoutPage(0, 0x10000)
	if err != nil {
		t.Fatal(err)
	}
	if err := layoutError(im, l, 0x10000); err != nil {
		t.Error(err)
	}
	if m := l.Mappings[1]; m.Start != 0x410000 || m.Off != 0 || m.ZeroStart != 0x410310 || m.ZeroEnd != 0x420000 || l.Brk != 0x420000 {
		t.Errorf("64K pages: %+v", l)
	}
	b = minimalELF()
	setPh64(b, 3, phVaddr, 0x400300)
	if im, err = parseBytes(b, "amd64"); err != nil {
		t.Fatal(err)
	}
	l, err = im.LayoutPage(0, 0x10000)
	if err != nil {
		t.Fatal(err)
	}
	if err := layoutError(im, l, 0x10000); err != nil {
		t.Error(err)
	}
	if m := l.Mappings[1]; m.Start != 0x400000 || l.Mappings[0].End != 0x410000 {
		t.Errorf("shared page: %+v", l)
	}
}

func checkEqualLayout(t *testing.T, got, want Layout) {
	t.Helper()
	if len(got.Mappings) != len(want.Mappings) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	for i := range got.Mappings {
		if got.Mappings[i] != want.Mappings[i] {
			t.Errorf("mapping %d: got %+v\nwant %+v", i, got.Mappings[i], want.Mappings[i])
		}
	}
	got.Mappings, want.Mappings = nil, nil
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// dynELF is minimalELF turned into an ET_DYN linked at 0.
func dynELF() []byte {
	b := minimalELF()
	binary.LittleEndian.PutUint16(b[16:], uint16(elf.ET_DYN))
	binary.LittleEndian.PutUint64(b[24:], 0x100)
	setPh64(b, 0, phVaddr, 0x40)
	setPh64(b, 1, phVaddr, 0x200)
	setPh64(b, 2, phVaddr, 0)
	setPh64(b, 3, phVaddr, 0x1300)
	return b
}

func TestLayoutDyn(t *testing.T) {
	im, err := parseBytes(dynELF(), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	const base = 0x7f1234560000
	l, err := im.Layout(base)
	if err != nil {
		t.Fatal(err)
	}
	want := Layout{
		Mappings: []Mapping{
			{Start: base, FileEnd: base + 0x1000, End: base + 0x1000, Off: 0, Prot: ProtRead | ProtExec, Segment: 0},
			{Start: base + 0x1000, FileEnd: base + 0x2000, End: base + 0x4000, Off: 0, Prot: ProtRead | ProtWrite,
				ZeroStart: base + 0x1310, ZeroEnd: base + 0x2000, Segment: 1},
		},
		LoadBias: base, Entry: base + 0x100, PhdrAddr: base + 0x40,
		Start: base, End: base + 0x4000, Brk: base + 0x4000,
	}
	checkEqualLayout(t, l, want)
	checkLayout(t, im, l)

	// Layout(0) gives the extent.
	if l, err = im.Layout(0); err != nil || l.Start != 0 || l.End != 0x4000 {
		t.Errorf("Layout(0) = %+v, %v", l, err)
	}
	if _, err := im.Layout(base + 0x10); err == nil {
		t.Error("unaligned base accepted")
	}
	if _, err := im.Layout(^uint64(0) &^ 0xfff); err == nil {
		t.Error("overflowing base accepted")
	}
}

func TestLayoutBssOnly(t *testing.T) {
	// A segment with no file bytes at an unaligned address, and one whose
	// memsz equals filesz ending mid-page (no zeroing: the page tail is
	// file content the kernel leaves alone too).
	b := dynELF()
	setPh64(b, 3, phFilesz, 0)
	setPh64(b, 3, phMemsz, 0x1800)
	im, err := parseBytes(b, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	l, err := im.Layout(0x10000)
	if err != nil {
		t.Fatal(err)
	}
	m := l.Mappings[1]
	want := Mapping{Start: 0x11000, FileEnd: 0x11000, End: 0x13000, Off: 0, Prot: ProtRead | ProtWrite, Segment: 1}
	if m != want {
		t.Errorf("got %+v\nwant %+v", m, want)
	}
	if l.Mappings[0].ZeroStart != 0 {
		t.Errorf("zeroing in a segment without bss: %+v", l.Mappings[0])
	}
	checkLayout(t, im, l)

	// Zero-size segments produce no mapping.
	setPh64(b, 3, phMemsz, 0)
	if im, err = parseBytes(b, "amd64"); err != nil {
		t.Fatal(err)
	}
	if l, err = im.Layout(0); err != nil || len(l.Mappings) != 1 || l.Brk != 0x1000 {
		t.Errorf("zero-size segment: %+v, %v", l, err)
	}
}
