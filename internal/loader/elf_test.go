package loader

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kbox-go/kbox/tests/fixture"
)

const testInterp = "/lib/ld.so"

// Program header field offsets.
const (
	phType   = 0
	phFlags  = 4
	phOff    = 8
	phVaddr  = 16
	phFilesz = 32
	phMemsz  = 40
	phAlign  = 48
)

// minimalELF returns a valid 784-byte ET_EXEC x86-64 file:
//
//	0 PT_PHDR      off 0x40  vaddr 0x400040  5 headers
//	1 PT_INTERP    off 0x200 vaddr 0x400200  "/lib/ld.so\0"
//	2 PT_LOAD R E  off 0     vaddr 0x400000  filesz 0x300 memsz 0x300
//	3 PT_LOAD RW   off 0x300 vaddr 0x401300  filesz 0x10  memsz 0x2000
//	4 PT_GNU_STACK RW
func minimalELF() []byte {
	b := make([]byte, 0x310)
	copy(b, elf.ELFMAG)
	b[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	b[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	b[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	le := binary.LittleEndian
	le.PutUint16(b[16:], uint16(elf.ET_EXEC))
	le.PutUint16(b[18:], uint16(elf.EM_X86_64))
	le.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(b[24:], 0x400100) // e_entry
	le.PutUint64(b[32:], 64)       // e_phoff
	le.PutUint16(b[52:], 64)       // e_ehsize
	le.PutUint16(b[54:], 56)       // e_phentsize
	le.PutUint16(b[56:], 5)        // e_phnum
	ph := func(i int, typ elf.ProgType, flags elf.ProgFlag, off, vaddr, filesz, memsz, align uint64) {
		p := b[64+56*i:]
		le.PutUint32(p[phType:], uint32(typ))
		le.PutUint32(p[phFlags:], uint32(flags))
		le.PutUint64(p[phOff:], off)
		le.PutUint64(p[phVaddr:], vaddr)
		le.PutUint64(p[24:], vaddr)
		le.PutUint64(p[phFilesz:], filesz)
		le.PutUint64(p[phMemsz:], memsz)
		le.PutUint64(p[phAlign:], align)
	}
	ph(0, elf.PT_PHDR, elf.PF_R, 64, 0x400040, 5*56, 5*56, 8)
	ph(1, elf.PT_INTERP, elf.PF_R, 0x200, 0x400200, uint64(len(testInterp)+1), uint64(len(testInterp)+1), 1)
	ph(2, elf.PT_LOAD, elf.PF_R|elf.PF_X, 0, 0x400000, 0x300, 0x300, 0x1000)
	ph(3, elf.PT_LOAD, elf.PF_R|elf.PF_W, 0x300, 0x401300, 0x10, 0x2000, 0x1000)
	ph(4, elf.PT_GNU_STACK, elf.PF_R|elf.PF_W, 0, 0, 0, 0, 16)
	copy(b[0x200:], testInterp)
	return b
}

func setPh64(b []byte, i, field int, v uint64) {
	binary.LittleEndian.PutUint64(b[64+56*i+field:], v)
}

func setPh32(b []byte, i, field int, v uint32) {
	binary.LittleEndian.PutUint32(b[64+56*i+field:], v)
}

func parseBytes(b []byte, arch string) (*Image, error) {
	return Parse(bytes.NewReader(b), int64(len(b)), arch)
}

func TestParseMinimal(t *testing.T) {
	im, err := parseBytes(minimalELF(), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	want := Image{
		Machine: elf.EM_X86_64, Type: elf.ET_EXEC, Entry: 0x400100,
		Phdrs: []Segment{
			{Vaddr: 0x400000, Memsz: 0x300, Filesz: 0x300, Off: 0, Prot: ProtRead | ProtExec, Align: 0x1000},
			{Vaddr: 0x401300, Memsz: 0x2000, Filesz: 0x10, Off: 0x300, Prot: ProtRead | ProtWrite, Align: 0x1000},
		},
		PhdrVaddr: 0x400040, Phnum: 5, Phentsize: 56, Interp: testInterp, Align: 0x1000,
	}
	if !equalImage(im, &want) {
		t.Fatalf("got %+v\nwant %+v", im, &want)
	}
	if _, err := parseBytes(minimalELF(), "x86_64"); err != nil {
		t.Errorf("arch x86_64: %v", err)
	}
}

func equalImage(a, b *Image) bool {
	if len(a.Phdrs) != len(b.Phdrs) {
		return false
	}
	for i := range a.Phdrs {
		if a.Phdrs[i] != b.Phdrs[i] {
			return false
		}
	}
	x, y := *a, *b
	x.Phdrs, y.Phdrs = nil, nil
	return x.Machine == y.Machine && x.Type == y.Type && x.Entry == y.Entry &&
		x.PhdrVaddr == y.PhdrVaddr && x.Phnum == y.Phnum && x.Phentsize == y.Phentsize &&
		x.Interp == y.Interp && x.ExecStack == y.ExecStack && x.Align == y.Align
}

func TestParseVariants(t *testing.T) {
	// Without PT_PHDR, the address comes from the PT_LOAD holding e_phoff.
	b := minimalELF()
	setPh32(b, 0, phType, uint32(elf.PT_NULL))
	im, err := parseBytes(b, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if im.PhdrVaddr != 0x400040 {
		t.Errorf("PhdrVaddr = %#x, want 0x400040", im.PhdrVaddr)
	}

	// Headers outside every PT_LOAD: not mapped.
	setPh64(b, 2, phFilesz, 0x40)
	if im, err = parseBytes(b, "amd64"); err != nil {
		t.Fatal(err)
	}
	if im.PhdrVaddr != 0 {
		t.Errorf("PhdrVaddr = %#x, want 0", im.PhdrVaddr)
	}

	// Static: no PT_INTERP. Executable stack from PT_GNU_STACK.
	b = minimalELF()
	setPh32(b, 1, phType, uint32(elf.PT_NOTE))
	setPh32(b, 4, phFlags, uint32(elf.PF_R|elf.PF_W|elf.PF_X))
	if im, err = parseBytes(b, "amd64"); err != nil {
		t.Fatal(err)
	}
	if im.Interp != "" || !im.ExecStack {
		t.Errorf("Interp %q ExecStack %v, want \"\" true", im.Interp, im.ExecStack)
	}

	// No PT_GNU_STACK: default non-executable.
	setPh32(b, 4, phType, uint32(elf.PT_NULL))
	if im, err = parseBytes(b, "amd64"); err != nil {
		t.Fatal(err)
	}
	if im.ExecStack {
		t.Error("ExecStack without PT_GNU_STACK")
	}

	// arm64.
	b = minimalELF()
	binary.LittleEndian.PutUint16(b[18:], uint16(elf.EM_AARCH64))
	if im, err = parseBytes(b, "arm64"); err != nil {
		t.Fatal(err)
	}
	if im.Machine != elf.EM_AARCH64 {
		t.Errorf("Machine = %v", im.Machine)
	}

	// Unknown arch is not ErrBadELF.
	if _, err := parseBytes(minimalELF(), "riscv64"); err == nil || errors.Is(err, ErrBadELF) {
		t.Errorf("riscv64: err = %v, want a non-ErrBadELF error", err)
	}
}

func TestParseRejects(t *testing.T) {
	le := binary.LittleEndian
	cases := []struct {
		name    string
		corrupt func(b []byte) []byte
		arch    string
		want    string
	}{
		{"empty", func(b []byte) []byte { return nil }, "", "truncated ELF header"},
		{"truncated", func(b []byte) []byte { return b[:63] }, "", "truncated ELF header"},
		{"magic", func(b []byte) []byte { b[1] = 'X'; return b }, "", "not an ELF file"},
		{"class32", func(b []byte) []byte { b[elf.EI_CLASS] = byte(elf.ELFCLASS32); return b }, "", "32-bit ELF not supported"},
		{"classbad", func(b []byte) []byte { b[elf.EI_CLASS] = 7; return b }, "", "invalid ELF class"},
		{"bigendian", func(b []byte) []byte { b[elf.EI_DATA] = byte(elf.ELFDATA2MSB); return b }, "", "big-endian"},
		{"databad", func(b []byte) []byte { b[elf.EI_DATA] = 0; return b }, "", "invalid ELF data encoding"},
		{"identversion", func(b []byte) []byte { b[elf.EI_VERSION] = 2; return b }, "", "invalid ELF ident version"},
		{"eversion", func(b []byte) []byte { le.PutUint32(b[20:], 0); return b }, "", "invalid e_version"},
		{"machine", func(b []byte) []byte { le.PutUint16(b[18:], uint16(elf.EM_AARCH64)); return b }, "", "wrong machine: EM_AARCH64, want EM_X86_64"},
		{"machine-arm64", func(b []byte) []byte { return b }, "arm64", "wrong machine: EM_X86_64, want EM_AARCH64"},
		{"rel", func(b []byte) []byte { le.PutUint16(b[16:], uint16(elf.ET_REL)); return b }, "", "not an executable (ET_REL)"},
		{"core", func(b []byte) []byte { le.PutUint16(b[16:], uint16(elf.ET_CORE)); return b }, "", "not an executable (ET_CORE)"},
		{"phentsize", func(b []byte) []byte { le.PutUint16(b[54:], 32); return b }, "", "e_phentsize != 56"},
		{"phnum0", func(b []byte) []byte { le.PutUint16(b[56:], 0); return b }, "", "no PT_LOAD segment"},
		{"phnum256", func(b []byte) []byte { le.PutUint16(b[56:], 256); return b }, "", "too many program headers"},
		{"phnumxnum", func(b []byte) []byte { le.PutUint16(b[56:], 0xffff); return b }, "", "too many program headers"},
		{"phoff", func(b []byte) []byte { le.PutUint64(b[32:], uint64(len(b))); return b }, "", "program headers beyond end of file"},
		{"phoffhuge", func(b []byte) []byte { le.PutUint64(b[32:], ^uint64(0)-8); return b }, "", "program headers beyond end of file"},
		{"phcut", func(b []byte) []byte { return b[:64+4*56] }, "", "program headers beyond end of file"},
		{"overlap", func(b []byte) []byte { setPh64(b, 2, phMemsz, 0x2000); return b }, "", "segment 3 overlaps segment 2"},
		{"order", func(b []byte) []byte { setPh64(b, 3, phVaddr, 0x100300); return b }, "", "segment 3: vaddr 0x100300 below segment 2"},
		{"filesz", func(b []byte) []byte { setPh64(b, 3, phFilesz, 0x3000); return b }, "", "segment 3: filesz > memsz"},
		{"offset", func(b []byte) []byte { setPh64(b, 3, phOff, 0x10300); return b }, "", "segment 3: segment offset beyond end of file"},
		{"offsetzero", func(b []byte) []byte { setPh64(b, 3, phOff, 0x10300); setPh64(b, 3, phFilesz, 0); return b }, "", "-"},
		{"offsetfilesz", func(b []byte) []byte { setPh64(b, 3, phFilesz, 0x11); return b }, "", "segment 3: segment offset beyond end of file"},
		{"offsetwrap", func(b []byte) []byte {
			setPh64(b, 3, phOff, ^uint64(0)-0xcff)
			setPh64(b, 3, phFilesz, 0x1000)
			setPh64(b, 3, phAlign, 0)
			return b
		}, "", "segment 3: segment offset beyond end of file"},
		{"interpnonul", func(b []byte) []byte { b[0x200+len(testInterp)] = 'x'; return b }, "", "segment 1: PT_INTERP not NUL-terminated or too long"},
		{"interplong", func(b []byte) []byte { setPh64(b, 1, phFilesz, 5000); return b }, "", "PT_INTERP not NUL-terminated or too long"},
		{"interpempty", func(b []byte) []byte { setPh64(b, 1, phFilesz, 1); return b }, "", "PT_INTERP too short"},
		{"interpnul", func(b []byte) []byte { b[0x203] = 0; return b }, "", "-"}, // as Linux: the name ends at the NUL (TestInterpEmbeddedNUL)
		{"interpeof", func(b []byte) []byte { setPh64(b, 1, phOff, 0x308); return b }, "", "segment 1: segment offset beyond end of file"},
		{"interp2", func(b []byte) []byte { setPh32(b, 4, phType, uint32(elf.PT_INTERP)); return b }, "", "more than one PT_INTERP"},
		{"phdr2", func(b []byte) []byte { setPh32(b, 4, phType, uint32(elf.PT_PHDR)); return b }, "", "more than one PT_PHDR"},
		{"noload", func(b []byte) []byte {
			setPh32(b, 2, phType, uint32(elf.PT_NOTE))
			setPh32(b, 3, phType, uint32(elf.PT_NOTE))
			return b
		}, "", "no PT_LOAD segment"},
		{"alignpow2", func(b []byte) []byte { setPh64(b, 3, phAlign, 0x1800); return b }, "", "segment 3: alignment 0x1800 not a power of two"},
		{"aligncongruent", func(b []byte) []byte { setPh64(b, 3, phAlign, 0x10000); return b }, "", "segment 3: vaddr % align != offset % align"},
		{"pagecongruent", func(b []byte) []byte {
			setPh64(b, 3, phVaddr, 0x401400)
			setPh64(b, 3, phAlign, 0)
			return b
		}, "", "segment 3: vaddr and offset not congruent modulo page size"},
		{"overflow", func(b []byte) []byte { setPh64(b, 3, phVaddr, 0xfffffffffffff300); return b }, "", "segment 3: address overflow"},
		{"overflowround", func(b []byte) []byte {
			setPh64(b, 3, phVaddr, 0xffffffffffff0300)
			setPh64(b, 3, phMemsz, 0xfc00)
			return b
		}, "", "segment 3: address overflow"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			arch := c.arch
			if arch == "" {
				arch = "amd64"
			}
			im, err := parseBytes(c.corrupt(minimalELF()), arch)
			if c.want == "-" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", im)
			}
			if !errors.Is(err, ErrBadELF) {
				t.Errorf("error %q does not wrap ErrBadELF", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

// errReader fails every read.
type errReader struct{}

func (errReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("boom") }

func TestParseReadError(t *testing.T) {
	_, err := Parse(errReader{}, 1000, "amd64")
	if err == nil || errors.Is(err, ErrBadELF) || !strings.Contains(err.Error(), "boom") {
		t.Errorf("err = %v, want the read error", err)
	}
	// A size larger than the data: the short read is an I/O error.
	b := minimalELF()
	_, err = Parse(bytes.NewReader(b[:100]), int64(len(b)), "amd64")
	if err == nil || errors.Is(err, ErrBadELF) {
		t.Errorf("short reader: err = %v", err)
	}
}

func TestParseRealFiles(t *testing.T) {
	files := []struct {
		path   string
		interp string // "-" means "don't check"
		typ    elf.Type
	}{
		{"/bin/busybox", "", 0},
		{"FIXTURE/bin/busybox", "-", 0},
		{"FIXTURE/bin/hello", "", 0},
		{"FIXTURE/bin/hello-glibc", "/lib64/ld-linux-x86-64.so.2", elf.ET_DYN},
		{"/lib/x86_64-linux-gnu/libc.so.6", "-", elf.ET_DYN}, // glibc's libc.so.6 is runnable: it has a PT_INTERP
		{"/lib64/ld-linux-x86-64.so.2", "", elf.ET_DYN},
	}
	for _, f := range files {
		t.Run(strings.ReplaceAll(f.path, "/", "_"), func(t *testing.T) {
			if rest, ok := strings.CutPrefix(f.path, "FIXTURE/"); ok {
				// The test programs' root (built once, shared).
				f.path = filepath.Join(fixture.Root(t), rest)
			}
			fh, err := os.Open(f.path)
			if err != nil {
				t.Skip(err)
			}
			defer fh.Close()
			st, err := fh.Stat()
			if err != nil {
				t.Fatal(err)
			}
			ef, err := elf.NewFile(fh)
			if err != nil {
				t.Skip(err)
			}
			if ef.Machine != elf.EM_X86_64 {
				t.Skipf("%v binary", ef.Machine)
			}
			im, err := Parse(fh, st.Size(), "amd64")
			if err != nil {
				t.Fatal(err)
			}
			if im.Entry != ef.Entry || im.Type != ef.Type || im.Machine != ef.Machine {
				t.Errorf("entry/type/machine %#x %v %v, debug/elf %#x %v %v", im.Entry, im.Type, im.Machine, ef.Entry, ef.Type, ef.Machine)
			}
			if f.typ != 0 && im.Type != f.typ {
				t.Errorf("type %v, want %v", im.Type, f.typ)
			}
			if im.Phnum != len(ef.Progs) {
				t.Errorf("Phnum %d, debug/elf %d", im.Phnum, len(ef.Progs))
			}
			var loads []*elf.Prog
			var phdr uint64
			for _, p := range ef.Progs {
				switch p.Type {
				case elf.PT_LOAD:
					loads = append(loads, p)
				case elf.PT_PHDR:
					phdr = p.Vaddr
				case elf.PT_GNU_STACK:
					if im.ExecStack != (p.Flags&elf.PF_X != 0) {
						t.Errorf("ExecStack %v, flags %v", im.ExecStack, p.Flags)
					}
				}
			}
			if len(loads) != len(im.Phdrs) {
				t.Fatalf("%d PT_LOAD, debug/elf %d", len(im.Phdrs), len(loads))
			}
			for i, p := range loads {
				s := im.Phdrs[i]
				if s.Vaddr != p.Vaddr || s.Off != p.Off || s.Filesz != p.Filesz || s.Memsz != p.Memsz || s.Align != p.Align || s.Prot != protOf(p.Flags) {
					t.Errorf("segment %d: %+v, debug/elf %+v", i, s, p.ProgHeader)
				}
			}
			if phdr != 0 && im.PhdrVaddr != phdr {
				t.Errorf("PhdrVaddr %#x, PT_PHDR %#x", im.PhdrVaddr, phdr)
			}
			if im.PhdrVaddr == 0 {
				t.Errorf("PhdrVaddr not found")
			}
			if f.interp != "-" && im.Interp != f.interp {
				t.Errorf("Interp %q, want %q", im.Interp, f.interp)
			}
			base := uint64(0)
			if im.Type == elf.ET_DYN {
				base = 0x7f0000000000
			}
			l, err := im.Layout(base)
			if err != nil {
				t.Fatal(err)
			}
			checkLayout(t, im, l)
			t.Logf("%s: %v entry %#x interp %q, %d PT_LOAD, brk %#x", f.path, im.Type, l.Entry, im.Interp, len(im.Phdrs), l.Brk)
		})
	}
}

// TestInterpEmbeddedNUL: a PT_INTERP with a NUL before its last byte names
// the string up to that NUL, as Linux opens it.
func TestInterpEmbeddedNUL(t *testing.T) {
	dyn := dynELF()
	copy(dyn[0x200:], "/li\x00/ld.so\x00")
	im, err := Parse(bytes.NewReader(dyn), int64(len(dyn)), "amd64")
	if err != nil || im.Interp != "/li" {
		t.Fatalf("Parse = %v, Interp %q; want the name up to the NUL, /li", err, im.Interp)
	}
}
