package forkscan

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/kbox-go/kbox/internal/loader"
	"github.com/kbox-go/kbox/internal/x86len"
	"github.com/kbox-go/kbox/tests/fixture"
)

// Layout of the synthetic files built by testELF.bytes. They are small (a
// few hundred bytes) so that the fuzzer's minimisation stays fast: each
// segment's p_vaddr is congruent to its p_offset modulo the page size, one
// page apart.
const (
	baseAddr  = 0x400000 // vaddr of file offset 0
	interpAt  = 0x140    // file offset of the PT_INTERP string
	textOff   = 0x200    // file offset of the executable segment
	textVaddr = baseAddr + 0x1000 + textOff
)

// testELF describes a synthetic x86-64 ELF executable:
//
//	PT_INTERP     at 0x140 (if interp is set)
//	PT_LOAD R     off 0      vaddr 0x400000  the headers
//	PT_LOAD R E   off 0x200  vaddr 0x401200  pre, then code
//	PT_LOAD RW    data (if any), 16-aligned after the code, vaddr + 0x2000
//
// followed, when sections is set, by .dynstr, .dynsym, .shstrtab and the
// section headers; .text covers code only (not pre).
type testELF struct {
	pre      []byte // data before the code, in the executable segment
	code     []byte
	sections bool
	interp   string
	imports  []string // undefined dynamic symbols (needs sections)
	defined  []string // defined dynamic symbols (needs sections)
	goSect   bool     // a .go.buildinfo section (needs sections)
	data     []byte   // contents of a writable segment
	machine  elf.Machine
}

func (e testELF) bytes() []byte {
	le := binary.LittleEndian
	textLen := len(e.pre) + len(e.code)
	dataOff := (textOff + textLen + 15) &^ 15
	if dataOff+len(e.data) >= 0x1000 {
		panic("testELF: code and data must fit in a page")
	}
	end := textOff + textLen
	if len(e.data) > 0 {
		end = dataOff + len(e.data)
	}
	b := make([]byte, end)
	copy(b[textOff:], e.pre)
	copy(b[textOff+len(e.pre):], e.code)
	if len(e.data) > 0 {
		copy(b[dataOff:], e.data)
	}

	// Program headers.
	type phdr struct {
		typ                elf.ProgType
		flags              elf.ProgFlag
		off, vaddr, filesz uint64
		memsz, align       uint64
	}
	var phs []phdr
	if e.interp != "" {
		n := uint64(len(e.interp) + 1)
		phs = append(phs, phdr{elf.PT_INTERP, elf.PF_R, interpAt, baseAddr + interpAt, n, n, 1})
		copy(b[interpAt:], e.interp)
	}
	phs = append(phs,
		phdr{elf.PT_LOAD, elf.PF_R, 0, baseAddr, textOff, textOff, 0x1000},
		phdr{elf.PT_LOAD, elf.PF_R | elf.PF_X, textOff, textVaddr, uint64(textLen), uint64(textLen), 0x1000})
	if len(e.data) > 0 {
		n := uint64(len(e.data))
		phs = append(phs, phdr{elf.PT_LOAD, elf.PF_R | elf.PF_W, uint64(dataOff), uint64(baseAddr + 0x2000 + dataOff), n, n, 0x1000})
	}
	copy(b, elf.ELFMAG)
	b[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	b[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	b[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	machine := e.machine
	if machine == 0 {
		machine = elf.EM_X86_64
	}
	le.PutUint16(b[16:], uint16(elf.ET_EXEC))
	le.PutUint16(b[18:], uint16(machine))
	le.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(b[24:], textVaddr) // e_entry
	le.PutUint64(b[32:], 64)        // e_phoff
	le.PutUint16(b[52:], 64)        // e_ehsize
	le.PutUint16(b[54:], 56)        // e_phentsize
	le.PutUint16(b[56:], uint16(len(phs)))
	for i, p := range phs {
		h := b[64+56*i:]
		le.PutUint32(h[0:], uint32(p.typ))
		le.PutUint32(h[4:], uint32(p.flags))
		le.PutUint64(h[8:], p.off)
		le.PutUint64(h[16:], p.vaddr)
		le.PutUint64(h[24:], p.vaddr)
		le.PutUint64(h[32:], p.filesz)
		le.PutUint64(h[40:], p.memsz)
		le.PutUint64(h[48:], p.align)
	}
	if !e.sections {
		return b
	}

	// Sections.
	type shdr struct {
		name            string
		typ             elf.SectionType
		flags           elf.SectionFlag
		addr, off, size uint64
		link, info      uint32
		entsize         uint64
	}
	appendBlob := func(blob []byte) uint64 {
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
		off := uint64(len(b))
		b = append(b, blob...)
		return off
	}
	codeOff := uint64(textOff + len(e.pre))
	shs := []shdr{{}, {name: ".text", typ: elf.SHT_PROGBITS, flags: elf.SHF_ALLOC | elf.SHF_EXECINSTR,
		addr: textVaddr + uint64(len(e.pre)), off: codeOff, size: uint64(len(e.code))}}
	if e.goSect {
		shs = append(shs, shdr{name: ".go.buildinfo", typ: elf.SHT_NOBITS, flags: elf.SHF_ALLOC | elf.SHF_WRITE})
	}
	if len(e.imports)+len(e.defined) > 0 {
		strtab := []byte{0}
		syms := make([]byte, 24) // symbol 0 is the null symbol
		sym := func(name string, shndx uint16) {
			s := make([]byte, 24)
			le.PutUint32(s[0:], uint32(len(strtab)))
			s[4] = byte(elf.STB_GLOBAL)<<4 | byte(elf.STT_FUNC)
			le.PutUint16(s[6:], shndx)
			if shndx != 0 {
				le.PutUint64(s[8:], textVaddr+uint64(len(e.pre)))
			}
			strtab = append(append(strtab, name...), 0)
			syms = append(syms, s...)
		}
		for _, n := range e.imports {
			sym(n, uint16(elf.SHN_UNDEF))
		}
		for _, n := range e.defined {
			sym(n, 1) // .text
		}
		strIdx := uint32(len(shs))
		shs = append(shs,
			shdr{name: ".dynstr", typ: elf.SHT_STRTAB, flags: elf.SHF_ALLOC, off: appendBlob(strtab), size: uint64(len(strtab))},
			shdr{name: ".dynsym", typ: elf.SHT_DYNSYM, flags: elf.SHF_ALLOC, off: appendBlob(syms), size: uint64(len(syms)),
				link: strIdx, info: 1, entsize: 24})
	}
	shstr := []byte{0}
	nameOff := make([]uint32, len(shs)+1)
	for i, s := range shs {
		if s.name != "" {
			nameOff[i] = uint32(len(shstr))
			shstr = append(append(shstr, s.name...), 0)
		}
	}
	nameOff[len(shs)] = uint32(len(shstr))
	shstr = append(shstr, ".shstrtab\x00"...)
	shs = append(shs, shdr{name: ".shstrtab", typ: elf.SHT_STRTAB, off: appendBlob(shstr), size: uint64(len(shstr))})
	shoff := appendBlob(nil)
	for i, s := range shs {
		h := make([]byte, 64)
		le.PutUint32(h[0:], nameOff[i])
		le.PutUint32(h[4:], uint32(s.typ))
		le.PutUint64(h[8:], uint64(s.flags))
		le.PutUint64(h[16:], s.addr)
		le.PutUint64(h[24:], s.off)
		le.PutUint64(h[32:], s.size)
		le.PutUint32(h[40:], s.link)
		le.PutUint32(h[44:], s.info)
		le.PutUint64(h[48:], 1)
		le.PutUint64(h[56:], s.entsize)
		b = append(b, h...)
	}
	le.PutUint64(b[40:], shoff)            // e_shoff
	le.PutUint16(b[58:], 64)               // e_shentsize
	le.PutUint16(b[60:], uint16(len(shs))) // e_shnum
	le.PutUint16(b[62:], uint16(len(shs)-1))
	return b
}

func scanBytes(t testing.TB, b []byte) *Report {
	t.Helper()
	r, err := Scan(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return r
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// Code fragments.
var (
	cloneWrapper = []byte{0xb8, 0x38, 0, 0, 0, 0x0f, 0x05, 0xc3}                         // mov $56,%eax; syscall; ret
	forkEndbr    = []byte{0xf3, 0x0f, 0x1e, 0xfa, 0xb8, 0x39, 0, 0, 0, 0x0f, 0x05, 0xc3} // endbr64; mov $57,%eax; syscall; ret
	vforkPair    = []byte{0xb8, 0x3a, 0, 0, 0, 0x0f, 0x05}                               // mov $58,%eax; syscall
	syscallInImm = cat(
		[]byte{0x48, 0xb8, 0xb8, 0x38, 0, 0, 0, 0x0f, 0x05, 0xc3}, // movabs $0xc3050f00000038b8,%rax
		[]byte{0xb8, 0x0f, 0x05, 0, 0},                            // mov $0x50f,%eax
		[]byte{0xc7, 0x44, 0x24, 0x08, 0x0f, 0x05, 0, 0},          // movl $0x50f,8(%rsp)
		[]byte{0x8b, 0x80, 0x0f, 0x05, 0, 0},                      // mov 0x50f(%rax),%eax
		[]byte{0xc3})
	noSyscalls = []byte{0x55, 0x48, 0x89, 0xe5, 0x31, 0xc0, 0x5d, 0xc3} // push %rbp; mov %rsp,%rbp; xor %eax,%eax; pop %rbp; ret
	// musl's __clone (from a musl-gcc -static build): the number is set
	// by xor %eax,%eax; mov $56,%al, nine instructions before the
	// syscall; the child's exit(60) is the second syscall.
	muslClone = []byte{
		0x31, 0xc0, 0xb0, 0x38, 0x49, 0x89, 0xfb, 0x48, 0x89, 0xd7, 0x4c, 0x89, 0xc2, 0x4d, 0x89, 0xc8,
		0x4c, 0x8b, 0x54, 0x24, 0x08, 0x4d, 0x89, 0xd9, 0x48, 0x83, 0xe6, 0xf0, 0x48, 0x83, 0xee, 0x08,
		0x48, 0x89, 0x0e, 0x0f, 0x05, 0x85, 0xc0, 0x75, 0x0f, 0x31, 0xed, 0x5f, 0x41, 0xff, 0xd1, 0x89,
		0xc7, 0x31, 0xc0, 0xb0, 0x3c, 0x0f, 0x05, 0xf4, 0xc3,
	}
)

type wantSite struct {
	addr, syscall uint64
	nr            uint32
	kind          SiteKind
	compat        bool
	name          string
}

func checkSites(t *testing.T, got []Site, want []wantSite) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d fork sites %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i, w := range want {
		g := got[i]
		if g.Addr != w.addr || g.Syscall != w.syscall || g.Nr != w.nr || g.Kind != w.kind || g.Compat != w.compat ||
			g.Name() != w.name || g.Offset != int64(g.Addr-textVaddr+textOff) {
			t.Errorf("site %d = %+v (%s), want %+v", i, g, g.Name(), w)
		}
	}
}

const code0 = textVaddr // vaddr of the first code byte

func TestSynthetic(t *testing.T) {
	tests := []struct {
		name    string
		elf     testELF
		sites   []wantSite
		unknown int
		reason  string // CreatesProcesses reason; "" for "no fork-family sites"
	}{
		{
			name:   "clone wrapper",
			elf:    testELF{code: cloneWrapper},
			sites:  []wantSite{{code0, code0 + 5, 56, Pair, false, "clone"}},
			reason: "clone site at 0x401200",
		},
		{
			name:   "fork wrapper after endbr64",
			elf:    testELF{code: forkEndbr},
			sites:  []wantSite{{code0 + 4, code0 + 9, 57, Pair, false, "fork"}},
			reason: "fork site at 0x401204",
		},
		{
			name: "syscall bytes inside immediates and displacements",
			elf:  testELF{code: syscallInImm},
		},
		{
			name:   "vfork pair at the very end of the segment",
			elf:    testELF{code: cat(bytes.Repeat([]byte{0x90}, 20), vforkPair)},
			sites:  []wantSite{{code0 + 20, code0 + 25, 58, Pair, false, "vfork"}},
			reason: "vfork site at 0x401214",
		},
		{
			name: "no syscalls",
			elf:  testELF{code: noSyscalls},
		},
		{
			name:   "several sites",
			elf:    testELF{code: cat(cloneWrapper, forkEndbr, []byte{0xb8, 0xb3, 0x01, 0, 0, 0x0f, 0x05, 0xc3})},
			sites:  []wantSite{{code0, code0 + 5, 56, Pair, false, "clone"}, {code0 + 12, code0 + 17, 57, Pair, false, "fork"}, {code0 + 20, code0 + 25, 435, Pair, false, "clone3"}},
			reason: "clone site at 0x401200 (3 fork-family sites)",
		},
		{
			name:   "musl __clone: xor; mov $56,%al; six moves; syscall",
			elf:    testELF{code: muslClone},
			sites:  []wantSite{{code0, code0 + 0x23, 56, Traced, false, "clone"}},
			reason: "clone site at 0x401200",
		},
		{
			name:   "traced through a register copy",
			elf:    testELF{code: []byte{0x41, 0xb9, 0x38, 0, 0, 0, 0x4c, 0x89, 0xc8, 0x0f, 0x05, 0xc3}}, // mov $56,%r9d; mov %r9,%rax; syscall
			sites:  []wantSite{{code0, code0 + 9, 56, Traced, false, "clone"}},
			reason: "clone site at 0x401200",
		},
		{
			name:  "push $57; pop %rax",
			elf:   testELF{code: []byte{0x6a, 0x39, 0x58, 0x0f, 0x05, 0xc3}},
			sites: []wantSite{{code0, code0 + 3, 57, Traced, false, "fork"}},
		},
		{
			name:  "mov $57,%rax (c7) then argument setup",
			elf:   testELF{code: []byte{0x48, 0xc7, 0xc0, 0x39, 0, 0, 0, 0x31, 0xff, 0xbe, 1, 0, 0, 0, 0x0f, 0x05}},
			sites: []wantSite{{code0, code0 + 14, 57, Traced, false, "fork"}},
		},
		{
			name:  "the later mov $imm8,%al wins",
			elf:   testELF{code: []byte{0x31, 0xc0, 0xb0, 0x38, 0xb0, 0x39, 0x0f, 0x05}},
			sites: []wantSite{{code0, code0 + 6, 57, Traced, false, "fork"}},
		},
		{
			name:    "non-fork numbers are resolved, not unknown",
			elf:     testELF{code: []byte{0xb8, 0x27, 0, 0, 0, 0x48, 0x89, 0xc7, 0x0f, 0x05, 0xb8, 0x3c, 0, 0, 0, 0x0f, 0x05}},
			unknown: 0,
		},
		{
			name:    "generic syscall() wrapper: number from a register",
			elf:     testELF{code: []byte{0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x0f, 0x05, 0xc3}}, // mov %rdi,%rax; mov %rsi,%rdi; syscall
			unknown: 1,
		},
		{
			name:    "number loaded from memory",
			elf:     testELF{code: []byte{0x8b, 0x07, 0x0f, 0x05}},
			unknown: 1,
		},
		{
			name:    "a call between mov and syscall",
			elf:     testELF{code: []byte{0xb8, 0x39, 0, 0, 0, 0xe8, 0, 0, 0, 0, 0x0f, 0x05}},
			unknown: 1,
		},
		{
			name:    "mov $56,%al with unknown upper bits",
			elf:     testELF{code: []byte{0x48, 0x8b, 0x07, 0xb0, 0x38, 0x0f, 0x05}},
			unknown: 1,
		},
		{
			name:    "mov $56,%ah is not %al",
			elf:     testELF{code: []byte{0x31, 0xc0, 0xb4, 0x38, 0x0f, 0x05}},
			unknown: 1,
		},
		{
			name: "a branch into the traced window makes a non-fork number unknown",
			// jmp +8 (to the syscall); mov $39,%eax; mov %rdi,%rsi; syscall; ret
			elf:     testELF{code: []byte{0xeb, 0x08, 0xb8, 0x27, 0, 0, 0, 0x48, 0x89, 0xfe, 0x0f, 0x05, 0xc3}},
			unknown: 1,
		},
		{
			name:   "a branch into the traced window keeps a fork number",
			elf:    testELF{code: []byte{0xeb, 0x08, 0xb8, 0x38, 0, 0, 0, 0x48, 0x89, 0xfe, 0x0f, 0x05, 0xc3}},
			sites:  []wantSite{{code0 + 2, code0 + 10, 56, Traced, false, "clone"}},
			reason: "clone site at 0x401202",
		},
		{
			name:    "a pair whose syscall is a branch target",
			elf:     testELF{code: []byte{0xeb, 0x05, 0xb8, 0x3a, 0, 0, 0, 0x0f, 0x05}}, // jmp +5 (to the syscall)
			sites:   []wantSite{{code0 + 2, code0 + 7, 58, Pair, false, "vfork"}},
			unknown: 1,
		},
		{
			name:   "x32 clone",
			elf:    testELF{code: []byte{0xb8, 0x38, 0, 0, 0x40, 0x0f, 0x05}},
			sites:  []wantSite{{code0, code0 + 5, 0x40000038, Pair, false, "clone"}},
			reason: "clone site at 0x401200",
		},
		{
			name:  "syscall with a REX prefix",
			elf:   testELF{code: []byte{0xb8, 0x39, 0, 0, 0, 0x40, 0x0f, 0x05}},
			sites: []wantSite{{code0, code0 + 5, 57, Traced, false, "fork"}},
		},
		{
			name:   "int $0x80 fork (i386 number 2)",
			elf:    testELF{code: []byte{0xb8, 0x02, 0, 0, 0, 0xcd, 0x80, 0xc3}},
			sites:  []wantSite{{code0, code0 + 5, 2, Traced, true, "fork"}},
			reason: "fork site at 0x401200",
		},
		{
			name: "int $0x80 getpid (i386 number 20) and sysenter with an unknown number",
			elf:  testELF{code: []byte{0xb8, 0x14, 0, 0, 0, 0xcd, 0x80, 0x89, 0xf8, 0x0f, 0x34}},
			// mov $56,%eax would be i386 setpgid: not a fork.
			unknown: 1,
		},
		{
			name: "data before the code hides a pair without section headers",
			// movabs's opcode swallows the mov and the syscall as its
			// imm64: decoding from the segment start cannot know where the
			// code starts. This is the documented limit of segment-only
			// decoding.
			elf: testELF{pre: []byte{0x48, 0xb8}, code: cloneWrapper},
		},
		{
			name:   "section headers put the decoder back on the code",
			elf:    testELF{pre: []byte{0x48, 0xb8}, code: cloneWrapper, sections: true},
			sites:  []wantSite{{code0 + 2, code0 + 7, 56, Pair, false, "clone"}},
			reason: "clone site at 0x401202",
		},
		{
			name:  "executable bytes outside the sections are scanned too",
			elf:   testELF{pre: forkEndbr, code: noSyscalls, sections: true},
			sites: []wantSite{{code0 + 4, code0 + 9, 57, Pair, false, "fork"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := scanBytes(t, tc.elf.bytes())
			checkSites(t, r.ForkSites, tc.sites)
			if r.UnknownSites != tc.unknown {
				t.Errorf("UnknownSites = %d, want %d", r.UnknownSites, tc.unknown)
			}
			if !r.Static || r.Interp != "" || r.Go || len(r.Imports) != 0 || r.DynsymUnreadable {
				t.Errorf("report = %+v, want a static non-Go file", r)
			}
			if want := int64(len(tc.elf.pre) + len(tc.elf.code)); r.CodeBytes != want {
				t.Errorf("CodeBytes = %d, want %d", r.CodeBytes, want)
			}
			yes, why := r.CreatesProcesses()
			if yes != (len(tc.sites) > 0) {
				t.Errorf("CreatesProcesses = %v (%s), want %v", yes, why, len(tc.sites) > 0)
			}
			want := tc.reason
			if want == "" && len(tc.sites) == 0 {
				want = "no fork-family sites"
			}
			if want != "" && why != want {
				t.Errorf("reason = %q, want %q", why, want)
			}
		})
	}
}

// TestTraceStopsAtRAXWriters checks that every instruction that writes %rax
// (or might) between `mov $57,%eax` and the syscall stops the trace: the
// site is unknown, never a fork and never a wrong literal.
func TestTraceStopsAtRAXWriters(t *testing.T) {
	writers := map[string][]byte{
		"cpuid":                {0x0f, 0xa2},
		"rdtsc":                {0x0f, 0x31},
		"rdpkru":               {0x0f, 0x01, 0xee},
		"xgetbv":               {0x0f, 0x01, 0xd0},
		"call":                 {0xe8, 0, 0, 0, 0},
		"call *%rdx":           {0xff, 0xd2},
		"xchg %eax,%edx":       {0x92},
		"xchg %r8,%rax":        {0x49, 0x90},
		"xchg %rax,(%rdi)":     {0x48, 0x87, 0x07},
		"lodsb":                {0xac},
		"lahf":                 {0x9f},
		"in $0,%al":            {0xe4, 0x00},
		"cmpxchg %rdx,(%rdi)":  {0xf0, 0x48, 0x0f, 0xb1, 0x17},
		"xadd %eax,(%rdi)":     {0x0f, 0xc1, 0x07},
		"mul %rdx":             {0x48, 0xf7, 0xe2},
		"cdqe":                 {0x48, 0x98},
		"pop %rax":             {0x58},
		"mov (%rdi),%eax":      {0x8b, 0x07},
		"mov %fs:0,%rax":       {0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0},
		"mov %edx,%eax":        {0x89, 0xd0},
		"mov %dx,%ax":          {0x66, 0x89, 0xd0},
		"mov $1,%ax":           {0x66, 0xb8, 0x01, 0x00},
		"mov $1,%ah":           {0xb4, 0x01},
		"lea 8(%rdi),%eax":     {0x8d, 0x47, 0x08},
		"add $1,%eax":          {0x83, 0xc0, 0x01},
		"add $1,%al":           {0x04, 0x01},
		"inc %eax":             {0xff, 0xc0},
		"neg %rax":             {0x48, 0xf7, 0xd8},
		"shl $1,%rax":          {0x48, 0xd1, 0xe0},
		"sete %al":             {0x0f, 0x94, 0xc0},
		"sete %ah":             {0x0f, 0x94, 0xc4},
		"cmove %edx,%eax":      {0x0f, 0x44, 0xc2},
		"movzbl %dl,%eax":      {0x0f, 0xb6, 0xc2},
		"imul %edx,%eax":       {0x0f, 0xaf, 0xc2},
		"bsf %edx,%eax":        {0x0f, 0xbc, 0xc2},
		"popcnt %edx,%eax":     {0xf3, 0x0f, 0xb8, 0xc2},
		"bswap %eax":           {0x0f, 0xc8},
		"bts $1,%eax":          {0x0f, 0xba, 0xe8, 0x01},
		"movd %xmm0,%eax":      {0x66, 0x0f, 0x7e, 0xc0},
		"pmovmskb %xmm0,%eax":  {0x66, 0x0f, 0xd7, 0xc0},
		"movmskps %xmm0,%eax":  {0x0f, 0x50, 0xc0},
		"cvttsd2si %xmm0,%eax": {0xf2, 0x0f, 0x2c, 0xc0},
		"pextrw $0,%xmm0,%eax": {0x66, 0x0f, 0xc5, 0xc0, 0x00},
		"pextrd $0,%xmm0,%eax": {0x66, 0x0f, 0x3a, 0x16, 0xc0, 0x00},
		"vmovd %xmm0,%eax":     {0xc5, 0xf9, 0x7e, 0xc0},
		"rdfsbase %rax":        {0xf3, 0x48, 0x0f, 0xae, 0xc0},
		"rdsspq %rax":          {0xf3, 0x48, 0x0f, 0x1e, 0xc8},
		"fnstsw %ax":           {0xdf, 0xe0},
		"leave":                {0xc9},
		"ret":                  {0xc3},
		"jmp":                  {0xeb, 0x00},
		"undecodable byte":     {0x06},
	}
	for name, ins := range writers {
		t.Run(name, func(t *testing.T) {
			code := cat([]byte{0xb8, 0x39, 0, 0, 0}, ins, []byte{0x0f, 0x05})
			r := scanBytes(t, testELF{code: code}.bytes())
			if len(r.ForkSites) != 0 || r.UnknownSites < 1 {
				t.Errorf("% x: ForkSites %+v, UnknownSites %d; want no site and an unknown one", code, r.ForkSites, r.UnknownSites)
			}
		})
	}
}

// TestTraceWalksPastNeutral checks the instructions that compilers put
// between the mov of the number and the syscall.
func TestTraceWalksPastNeutral(t *testing.T) {
	neutral := map[string][]byte{
		"mov %rdi,%rsi":         {0x48, 0x89, 0xfe},
		"mov $1,%edi":           {0xbf, 0x01, 0, 0, 0},
		"mov $-1,%r8":           {0x49, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff},
		"mov $0x38,%sil":        {0x40, 0xb6, 0x38},
		"mov $0x38,%r9b":        {0x41, 0xb1, 0x38},
		"lea 8(%rsp),%rsi":      {0x48, 0x8d, 0x74, 0x24, 0x08},
		"movaps %xmm0,(%rsp)":   {0x0f, 0x29, 0x04, 0x24},
		"movl $2,0x10(%rsp)":    {0xc7, 0x44, 0x24, 0x10, 0x02, 0, 0, 0},
		"mov %eax,(%rdi)":       {0x89, 0x07},
		"test %rsi,%rsi":        {0x48, 0x85, 0xf6},
		"cmp $-4095,%rax":       {0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff},
		"cmp %eax,%edx":         {0x39, 0xc2},
		"je (forward, outside)": {0x74, 0x7f},
		"jne rel32 (outside)":   {0x0f, 0x85, 0, 1, 0, 0},
		"nop":                   {0x90},
		"pause":                 {0xf3, 0x90},
		"nopw 0(%rax,%rax)":     {0x66, 0x0f, 0x1f, 0x44, 0, 0},
		"endbr64":               {0xf3, 0x0f, 0x1e, 0xfa},
		"vzeroupper":            {0xc5, 0xf8, 0x77},
		"mov %fs:0,%rdx":        {0x64, 0x48, 0x8b, 0x14, 0x25, 0, 0, 0, 0},
		"xor %r10d,%r10d":       {0x45, 0x31, 0xd2},
		"movslq %edx,%rdx":      {0x48, 0x63, 0xd2},
		"push %rbx; pop %rbx":   {0x53, 0x5b},
		"sub $8,%rsp":           {0x48, 0x83, 0xec, 0x08},
		"and $-16,%rsi":         {0x48, 0x83, 0xe6, 0xf0},
		"setne %cl":             {0x0f, 0x95, 0xc1},
		"pxor %xmm0,%xmm0":      {0x66, 0x0f, 0xef, 0xc0},
		"movq %xmm0,(%rdi)":     {0x66, 0x0f, 0xd6, 0x07},
		"mfence":                {0x0f, 0xae, 0xf0},
		"bt $1,%eax":            {0x0f, 0xba, 0xe0, 0x01},
		"cmov into %edx":        {0x0f, 0x44, 0xd1},
		"lock incl (%rdi)":      {0xf0, 0xff, 0x07},
		"prefetcht0 (%rdi)":     {0x0f, 0x18, 0x0f},
	}
	for name, ins := range neutral {
		t.Run(name, func(t *testing.T) {
			code := cat([]byte{0xb8, 0x39, 0, 0, 0}, ins, []byte{0x0f, 0x05})
			r := scanBytes(t, testELF{code: code}.bytes())
			checkSites(t, r.ForkSites, []wantSite{{code0, code0 + uint64(5+len(ins)), 57, Traced, false, "fork"}})
			if r.UnknownSites != 0 {
				t.Errorf("UnknownSites = %d, want 0", r.UnknownSites)
			}
		})
	}
}

func TestTraceLimit(t *testing.T) {
	for _, n := range []int{maxTrace - 1, maxTrace} {
		code := cat([]byte{0xb8, 0x39, 0, 0, 0}, bytes.Repeat([]byte{0x90}, n), []byte{0x0f, 0x05})
		r := scanBytes(t, testELF{code: code}.bytes())
		found := len(r.ForkSites) == 1
		if want := n < maxTrace; found != want {
			t.Errorf("%d nops between mov and syscall: found = %v, want %v", n, found, want)
		}
	}
}

func TestGo(t *testing.T) {
	magicAt := func(off int) []byte {
		d := make([]byte, 64)
		copy(d[off:], goBuildInfoMagic)
		return d
	}
	tests := []struct {
		name string
		elf  testELF
		want bool
	}{
		{"go.buildinfo section", testELF{code: noSyscalls, sections: true, goSect: true}, true},
		{"build-info magic, no sections", testELF{code: noSyscalls, data: magicAt(16)}, true},
		{"misaligned magic", testELF{code: noSyscalls, data: magicAt(3)}, false},
		{"no data", testELF{code: noSyscalls, sections: true}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := scanBytes(t, tc.elf.bytes())
			if r.Go != tc.want {
				t.Fatalf("Go = %v, want %v", r.Go, tc.want)
			}
			yes, why := r.CreatesProcesses()
			if yes != tc.want || tc.want && why != "Go binary (the runtime starts threads)" {
				t.Errorf("CreatesProcesses = %v, %q", yes, why)
			}
		})
	}
}

func TestImports(t *testing.T) {
	const interp = "/lib64/ld-linux-x86-64.so.2"
	tests := []struct {
		name    string
		elf     testELF
		imports []string
		yes     bool
		reason  string
	}{
		{
			name:    "fork and pthread_create",
			elf:     testELF{code: noSyscalls, interp: interp, sections: true, imports: []string{"printf", "pthread_create", "fork", "execve"}, defined: []string{"system"}},
			imports: []string{"execve", "fork", "pthread_create"},
			yes:     true,
			reason:  "imports fork, pthread_create",
		},
		{
			name:    "syscall wrapper only",
			elf:     testELF{code: noSyscalls, interp: interp, sections: true, imports: []string{"puts", "syscall"}},
			imports: []string{"syscall"},
			yes:     true,
			reason:  "dynamic: libc's syscall() wrapper imported",
		},
		{
			name:    "syscall wrapper and popen",
			elf:     testELF{code: noSyscalls, interp: interp, sections: true, imports: []string{"syscall", "popen"}},
			imports: []string{"popen", "syscall"},
			yes:     true,
			reason:  "imports popen",
		},
		{
			// exec creates no process, but the in-process tiers would
			// run the new program in theirs, where it may fork.
			name:    "exec imports",
			elf:     testELF{code: noSyscalls, interp: interp, sections: true, imports: []string{"puts", "execve", "execvp", "__libc_start_main"}},
			imports: []string{"execve", "execvp"},
			yes:     true,
			reason:  "imports execve, execvp (the program it runs may fork)",
		},
		{
			name:   "harmless imports",
			elf:    testELF{code: noSyscalls, interp: interp, sections: true, imports: []string{"puts", "__libc_start_main"}},
			reason: "no fork-family sites",
		},
		{
			name:   "no section headers",
			elf:    testELF{code: noSyscalls, interp: interp},
			yes:    true,
			reason: "dynamic: dynamic symbols unreadable",
		},
		{
			name:    "a fork site wins over imports",
			elf:     testELF{code: cloneWrapper, interp: interp, sections: true, imports: []string{"fork"}},
			imports: []string{"fork"},
			yes:     true,
			reason:  "clone site at 0x401200",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := scanBytes(t, tc.elf.bytes())
			if r.Interp != interp || r.Static {
				t.Errorf("Interp %q Static %v", r.Interp, r.Static)
			}
			if !slices.Equal(r.Imports, tc.imports) {
				t.Errorf("Imports = %q, want %q", r.Imports, tc.imports)
			}
			yes, why := r.CreatesProcesses()
			if yes != tc.yes || why != tc.reason {
				t.Errorf("CreatesProcesses = %v, %q; want %v, %q", yes, why, tc.yes, tc.reason)
			}
		})
	}
}

type errReaderAt struct{}

func (errReaderAt) ReadAt([]byte, int64) (int, error) { return 0, errors.New("disk on fire") }

// cutReaderAt serves b but fails reads that reach past n bytes, like a file
// truncated after its size was taken.
type cutReaderAt struct {
	b []byte
	n int64
}

func (c cutReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > c.n {
		return 0, errors.New("short read")
	}
	return copy(p, c.b[off:]), nil
}

func TestErrors(t *testing.T) {
	good := testELF{code: cloneWrapper, sections: true}.bytes()
	riscv := testELF{code: cloneWrapper, machine: elf.EM_RISCV}.bytes()
	elf32 := slices.Clone(good)
	elf32[elf.EI_CLASS] = byte(elf.ELFCLASS32)
	core := slices.Clone(good)
	binary.LittleEndian.PutUint16(core[16:], uint16(elf.ET_CORE))
	script := append([]byte("#!/bin/sh\necho hello\n"), make([]byte, 64)...)
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"shell script", script, "not an ELF file"},
		{"empty", nil, "truncated ELF header"},
		{"truncated header", good[:40], "truncated ELF header"},
		{"truncated code", good[:textOff+4], "beyond end of file"},
		{"risc-v", riscv, "wrong machine: EM_RISCV, want "},
		{"32-bit", elf32, "32-bit ELF not supported"},
		{"core file", core, "not an executable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Scan(bytes.NewReader(tc.b), int64(len(tc.b)))
			if err == nil {
				t.Fatalf("Scan succeeded: %+v", r)
			}
			if !errors.Is(err, loader.ErrBadELF) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "forkscan: ") {
				t.Errorf("error %q: want forkscan: ... %q wrapping loader.ErrBadELF", err, tc.want)
			}
		})
	}
	if _, err := Scan(errReaderAt{}, 4096); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("read error: got %v", err)
	}
	// Headers readable, code not.
	if _, err := Scan(cutReaderAt{good, textOff}, int64(len(good))); err == nil || !strings.Contains(err.Error(), "short read") {
		t.Errorf("code read error: got %v", err)
	}
}

// TestSitesMatchX86len checks that the scanner's pairs and unprefixed bare
// syscalls are exactly what x86len.Sites reports, on real code.
func TestSitesMatchX86len(t *testing.T) {
	hostProgramsAMD64(t)
	files := []string{"/bin/busybox", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"}
	checked := 0
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		im, err := loader.Parse(bytes.NewReader(data), int64(len(data)), "amd64")
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, seg := range im.Phdrs {
			if seg.Prot&loader.ProtExec == 0 {
				continue
			}
			for _, rg := range regions(f, seg) {
				code := data[rg.start:rg.end]
				starts, _ := x86len.Boundaries(code)
				var mine []x86len.Site
				for _, s := range syscallSites(code, starts) {
					o := starts[s.i]
					switch {
					case s.pair:
						mine = append(mine, x86len.Site{Offset: o, Kind: x86len.MovSyscall, Nr: s.nr, Syscall: o + 5})
					case !s.prefixed && !s.compat:
						mine = append(mine, x86len.Site{Offset: o, Kind: x86len.BareSyscall, Syscall: o})
					}
				}
				var theirs []x86len.Site
				for _, s := range x86len.Sites(code) {
					s.SyscallIsBranchTarget = false
					theirs = append(theirs, s)
				}
				if !slices.Equal(mine, theirs) {
					t.Errorf("%s region %#x-%#x: scanner sites differ from x86len.Sites:\n%+v\n%+v", path, rg.start, rg.end, mine, theirs)
				}
				checked += len(theirs)
			}
		}
	}
	if checked == 0 {
		t.Skip("no real x86-64 binary found (install busybox-static)")
	}
	t.Logf("%d sites compared", checked)
}

func scanFile(t testing.TB, path string) *Report {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("%s not available: %v", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Scan(f, fi.Size())
	if err != nil {
		t.Fatalf("Scan %s: %v", path, err)
	}
	yes, why := r.CreatesProcesses()
	t.Logf("%s: %d fork sites, %d unknown sites, imports %q, interp %q, static %v, Go %v, %d code bytes (%d undecodable) => %v: %s",
		filepath.Base(path), len(r.ForkSites), r.UnknownSites, r.Imports, r.Interp, r.Static, r.Go, r.CodeBytes, r.Undecodable, yes, why)
	for _, s := range r.ForkSites {
		t.Logf("  %s (%d) %s at %#x, syscall at %#x", s.Name(), s.Nr, s.Kind, s.Addr, s.Syscall)
	}
	return r
}

func siteNames(r *Report) map[string]SiteKind {
	m := map[string]SiteKind{}
	for _, s := range r.ForkSites {
		m[s.Name()] = s.Kind
	}
	return m
}

func TestBusybox(t *testing.T) {
	hostProgramsAMD64(t)
	r := scanFile(t, "/bin/busybox")
	if !r.Static {
		t.Skipf("/bin/busybox is dynamically linked (interpreter %s): install busybox-static", r.Interp)
	}
	if r.Go || len(r.Imports) != 0 {
		t.Errorf("want a static non-Go file: %+v", r)
	}
	// glibc's clone, vfork and fork (which is clone(SIGCHLD) in glibc).
	names := siteNames(r)
	for _, n := range []string{"clone", "vfork"} {
		if _, ok := names[n]; !ok {
			t.Errorf("no %s site in busybox (sites %+v)", n, r.ForkSites)
		}
	}
	if yes, why := r.CreatesProcesses(); !yes || !strings.Contains(why, " site at 0x") {
		t.Errorf("CreatesProcesses = %v, %q", yes, why)
	}
}

func TestFixturePrograms(t *testing.T) {
	hostProgramsAMD64(t)
	root := fixture.Root(t)
	bin := func(name string) string { return filepath.Join(root, "bin", name) }
	check := func(t *testing.T, r *Report, yes bool, reason string) {
		t.Helper()
		got, why := r.CreatesProcesses()
		if got != yes || !strings.HasPrefix(why, reason) {
			t.Errorf("CreatesProcesses = %v, %q; want %v, %q...", got, why, yes, reason)
		}
	}

	t.Run("hello", func(t *testing.T) {
		// Static musl. A static link takes only the archive members the
		// program references: printf, getcwd and perror pull in stdio,
		// exit and the TLS setup, nothing that forks, clones or starts a
		// thread. Its syscalls with a non-literal number (UnknownSites)
		// are musl's futex and stdio paths, `mov %r9,%rax; syscall`
		// after a branch.
		r := scanFile(t, bin("hello"))
		if !r.Static || r.Go || len(r.ForkSites) != 0 {
			t.Errorf("report %+v", r)
		}
		check(t, r, false, "no fork-family sites")
	})
	t.Run("hello-glibc", func(t *testing.T) {
		// Dynamic glibc: the program imports printf, getcwd, perror,
		// puts; its libc.so.6 has clone, fork and vfork sites, but that
		// library is loaded by ld.so and not scanned here (documented).
		r := scanFile(t, bin("hello-glibc"))
		if r.Static || r.Interp == "" || r.DynsymUnreadable || len(r.Imports) != 0 || len(r.ForkSites) != 0 {
			t.Errorf("report %+v", r)
		}
		check(t, r, false, "no fork-family sites")
	})
	t.Run("escape", func(t *testing.T) {
		// Static musl with fork and pthread_create: fork is the pair in
		// _Fork, the thread's clone is musl's __clone, found by tracing.
		r := scanFile(t, bin("escape"))
		names := siteNames(r)
		if names["fork"] != Pair || names["clone"] != Traced {
			t.Errorf("want a fork pair and a traced clone, got %+v", r.ForkSites)
		}
		check(t, r, true, "clone site at 0x")
	})
	t.Run("threadfork", func(t *testing.T) {
		r := scanFile(t, bin("threadfork"))
		names := siteNames(r)
		if names["fork"] != Pair || names["clone"] != Traced {
			t.Errorf("want a fork pair and a traced clone, got %+v", r.ForkSites)
		}
		check(t, r, true, "clone site at 0x")
	})
	t.Run("gochild", func(t *testing.T) {
		r := scanFile(t, bin("gochild"))
		if !r.Go || !r.Static {
			t.Errorf("report %+v", r)
		}
		// runtime.clone is a plain `MOVL $SYS_clone, AX; SYSCALL` pair.
		if _, ok := siteNames(r)["clone"]; !ok {
			t.Errorf("no clone site in a Go binary: %+v", r.ForkSites)
		}
		check(t, r, true, "Go binary (the runtime starts threads)")
	})
	t.Run("sc-glibc", func(t *testing.T) {
		r := scanFile(t, bin("sc-glibc"))
		if !slices.Equal(r.Imports, []string{"syscall"}) {
			t.Errorf("Imports = %q", r.Imports)
		}
		check(t, r, true, "dynamic: libc's syscall() wrapper imported")
	})
	t.Run("trapsig-glibc", func(t *testing.T) {
		r := scanFile(t, bin("trapsig-glibc"))
		if !slices.Contains(r.Imports, "fork") {
			t.Errorf("Imports = %q", r.Imports)
		}
		check(t, r, true, "imports fork")
	})
}

// TestMuslThreadOnly builds a static musl program that starts a thread and
// never forks: its only clone is musl's __clone (`xor %eax,%eax; mov
// $56,%al; ...; syscall`), which the `mov $nr,%eax; syscall` pair pattern
// does not match. The backward trace must find it.
func TestMuslThreadOnly(t *testing.T) {
	cc, err := exec.LookPath("musl-gcc")
	if err != nil {
		t.Skip("musl-gcc not found (install the Debian package musl-tools)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "thr.c")
	const prog = `#include <pthread.h>
static void *run(void *a) { return a; }
int main(void) { pthread_t t; void *r; pthread_create(&t, 0, run, 0); pthread_join(t, &r); return 0; }
`
	if err := os.WriteFile(src, []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "thr")
	if b, err := exec.Command(cc, "-static", "-O2", "-pthread", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("musl-gcc: %v\n%s", err, b)
	}
	r := scanFile(t, out)
	for _, s := range r.ForkSites {
		if s.Kind == Pair {
			t.Errorf("unexpected pair %+v: this program should not fork", s)
		}
	}
	if k, ok := siteNames(r)["clone"]; !ok || k != Traced {
		t.Errorf("want a traced clone site, got %+v", r.ForkSites)
	}
	if yes, why := r.CreatesProcesses(); !yes {
		t.Errorf("CreatesProcesses = false, %q", why)
	}
}

// fuzzBase is a valid file with section headers and room for 256 bytes of
// code, into which FuzzScan splices its input.
func fuzzBase() []byte {
	return testELF{code: make([]byte, 256), sections: true, interp: "/lib/ld.so", imports: []string{"fork"}, data: make([]byte, 32)}.bytes()
}

func FuzzScan(f *testing.F) {
	seeds := []testELF{
		{code: cloneWrapper},
		{code: forkEndbr, sections: true},
		{code: syscallInImm},
		{code: cat(bytes.Repeat([]byte{0x90}, 20), vforkPair)},
		{code: noSyscalls},
		{code: muslClone, sections: true, goSect: true},
		{code: noSyscalls, interp: "/lib/ld.so", sections: true, imports: []string{"fork", "syscall"}},
		{code: a64(a64MovzX8(220), a64Svc0, a64Ret), machine: elf.EM_AARCH64},
		{code: a64Cancel(435), sections: true, machine: elf.EM_AARCH64},
	}
	for _, s := range seeds {
		f.Add(s.bytes())
	}
	f.Add(muslClone)
	f.Add([]byte{0x31, 0xc0, 0xb0, 0x38, 0xeb, 0xfe, 0x0f, 0x05})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkScan(t, b)
		// Splice the input over the code, and over the section headers,
		// of a valid file, so that mutations reach the decoder, the
		// trace and debug/elf rather than dying in the ELF header.
		m := fuzzBase()
		copy(m[textOff:textOff+256], b)
		checkScan(t, m)
		m = fuzzBase()
		shoff := binary.LittleEndian.Uint64(m[40:])
		copy(m[shoff:], b)
		checkScan(t, m)
	})
}

// checkScan scans b, which must not panic, and checks the report's
// invariants when b is accepted.
func checkScan(t *testing.T, b []byte) {
	t.Helper()
	r, err := Scan(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return
	}
	for _, s := range r.ForkSites {
		if s.Offset < 0 || s.Offset >= int64(len(b)) || s.Syscall < s.Addr || strings.HasPrefix(s.Name(), "syscall ") {
			t.Fatalf("bad site %+v in a %d-byte file", s, len(b))
		}
	}
	if r.Static != (r.Interp == "") || r.CodeBytes < 0 || r.UnknownSites < 0 {
		t.Fatalf("bad report %+v", r)
	}
	yes, why := r.CreatesProcesses()
	if why == "" || yes != (r.Go || len(r.ForkSites) > 0 || len(r.Imports) > 0 || r.DynsymUnreadable) {
		t.Fatalf("CreatesProcesses = %v, %q for %+v", yes, why, r)
	}
}

// BenchmarkScanBusybox scans busybox-static from the page cache, as the tier
// selection would.
func BenchmarkScanBusybox(b *testing.B) {
	f, err := os.Open("/bin/busybox")
	if err != nil {
		b.Skipf("/bin/busybox not available (install busybox-static): %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	for b.Loop() {
		if _, err := Scan(f, fi.Size()); err != nil {
			b.Fatal(err)
		}
	}
}

// hostProgramsAMD64 skips a test that scans the host's (or the fixture's)
// programs when they are not x86_64 code: the scanner reads x86_64 code
// only (on arm64 the fixture is arm64 code).
func hostProgramsAMD64(t *testing.T) {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skipf("forkscan scans x86_64 code only; this host's programs are %s code", runtime.GOARCH)
	}
}
