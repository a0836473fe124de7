// Package forkscan owns the static analysis that decides whether an x86-64
// or AArch64 ELF program can create processes or threads: the fork-site scanner that
// gates kbox's in-process tiers (trap and rewrite run only programs that
// never fork, vfork, clone or start threads; DESIGN.md §4.3–§4.4).
//
// [Scan] validates the file with [loader.Parse] (so it accepts exactly what
// the loader would load), reads the executable PT_LOAD segments and decodes
// x86-64 code with [x86len] at real instruction boundaries, never by raw
// byte matching (AArch64 code is fixed-width: scan_arm64.go). It reports:
//
//   - fork-family syscall sites whose number is a literal the scanner can
//     see: the `mov $nr,%eax; syscall` pairs [x86len.Sites] finds (which
//     include the 8-byte `mov; syscall; ret` wrapper), plus bare syscalls
//     whose number is traced back through a few straight-line instructions
//     (musl's __clone, which pthread_create uses, does `xor %eax,%eax; mov
//     $56,%al`, then nine instructions of argument shuffling, then
//     `syscall`: the pair pattern alone misses it);
//   - the number of syscall instructions whose number it cannot see;
//   - for dynamically linked files, the undefined dynamic symbols that
//     create processes or threads (fork, pthread_create, system, the
//     generic syscall() wrapper, ...);
//   - whether the file is a Go program (the Go runtime always starts
//     threads).
//
// [Report.CreatesProcesses] turns that into a verdict for one file.
// [Program] applies it to a program and every shared object the dynamic
// loader maps with it at start, resolved in the guest's mount table, with
// an on-disk cache per file; it is what --syscall-mode=auto asks. The
// package reads files only; it maps, patches and runs nothing.
package forkscan

import (
	"bytes"
	"cmp"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/kbox-go/kbox/internal/loader"
	"github.com/kbox-go/kbox/internal/x86len"
)

// MaxCodeBytes bounds the total size of the executable segments Scan reads
// (segments may share file bytes, so this is not bounded by the file size).
const MaxCodeBytes = 1 << 30

// SiteKind says how the scanner saw a site's syscall number.
type SiteKind uint8

const (
	// Pair is `mov $nr,%eax` (b8 imm32) immediately followed by
	// `syscall`, as found by [x86len.Sites]; this includes the 8-byte
	// `mov; syscall; ret` wrapper.
	Pair SiteKind = iota + 1
	// Traced is a syscall instruction whose number was traced backwards
	// through straight-line code to a literal: `mov $nr,%eax` some
	// instructions earlier, `xor %eax,%eax; mov $nr,%al`, `mov $nr,%r9d;
	// mov %r9,%rax`, `push $nr; pop %rax`, ...; on AArch64 a `movz x8,
	// #nr` a few instructions before the svc (right before it: a Pair).
	Traced
	// Cancel is an AArch64 call of a cancellation wrapper: `movz x6, #nr`
	// then `bl __syscall_cancel` (rewrite.ARM64.PlanCancel validates the
	// target); Syscall is the bl's address.
	Cancel
)

func (k SiteKind) String() string {
	switch k {
	case Pair:
		return "pair"
	case Traced:
		return "traced"
	case Cancel:
		return "cancel"
	}
	return "unknown"
}

// Site is one fork-family syscall site.
type Site struct {
	// Offset is the file offset of the instruction where the syscall
	// number comes from: the mov of a Pair; for a Traced site the start
	// of the traced sequence (the `mov $nr`, the `xor %eax,%eax` of
	// `xor; mov $nr,%al`, the `push $nr` of `push; pop`).
	Offset int64
	// Addr is the virtual address of that instruction, as linked
	// (unbiased for ET_DYN).
	Addr uint64
	// Syscall is the virtual address of the syscall instruction itself
	// (Addr+5 for a Pair).
	Syscall uint64
	// Nr is the syscall number loaded into %eax. For a 64-bit syscall it
	// may carry the x32 bit (0x40000000): the kernel runs x32 syscalls for
	// 64-bit processes too.
	Nr uint32
	// Kind says how the number was found.
	Kind SiteKind
	// Compat is set for `int $0x80` and `sysenter` sites, which use the
	// i386 syscall table (fork 2, clone 120, vfork 190, clone3 435).
	Compat bool
	// Machine is the file's (EM_X86_64 or EM_AARCH64), whose syscall
	// table Nr is in.
	Machine elf.Machine
}

// isExec reports an execve or execveat site.
func (s Site) isExec() bool {
	n := s.Name()
	return n == "execve" || n == "execveat"
}

// Name returns the syscall's name: "clone", "fork", "vfork", "clone3",
// "execve" or "execveat".
func (s Site) Name() string {
	spec := specForMachine(s.Machine)
	if spec == nil {
		spec = amd64Spec
	}
	if name, ok := spec.forkName(s.Nr, s.Compat); ok {
		return name
	}
	return fmt.Sprintf("syscall %d", s.Nr)
}

// Report is what [Scan] found in one ELF file.
type Report struct {
	// ForkSites lists the clone, fork, vfork and clone3 syscall sites
	// whose number is a literal, in file order.
	ForkSites []Site

	// UnknownSites counts syscall instructions (syscall, and int $0x80 or
	// sysenter) whose number is not a literal the scanner can see: the
	// number comes from memory or an argument register, or from code the
	// backward trace does not follow. libc's generic syscall(nr, ...)
	// wrapper is one (musl: `mov %rdi,%rax; ...; syscall`), and so are
	// musl's futex and cancellable-syscall paths. A Pair whose syscall is
	// also the target of a direct branch counts here too, since the
	// branch brings its own %eax. Any of these could issue clone; they
	// are reported, not used by CreatesProcesses.
	UnknownSites int

	// Imports lists, sorted, the undefined dynamic symbols that create
	// processes or threads: fork, vfork, _Fork, __fork, forkpty, clone,
	// __clone, clone3, posix_spawn, posix_spawnp, pidfd_spawn,
	// pidfd_spawnp, pthread_create, thrd_create, system, popen, daemon,
	// wordexp; timer_create, mq_notify, aio_read, aio_write, aio_fsync,
	// lio_listio (and their 64 variants) and getaddrinfo_a, which glibc
	// implements with helper threads; and syscall, libc's generic
	// wrapper, which can issue clone with a number from a register. exec*
	// is not among them: exec replaces the process without creating one.
	// Empty for static files.
	Imports []string

	// DynsymUnreadable is set when the file has a PT_INTERP but its
	// dynamic symbol table could not be read (no section headers, or no
	// .dynsym): Imports is then unknown rather than empty.
	DynsymUnreadable bool

	// Machine is the file's: EM_X86_64 or EM_AARCH64.
	Machine elf.Machine
	// Interp is the PT_INTERP path ("" for a static file).
	Interp string
	// Static is true when the file has no PT_INTERP (static or
	// static-pie): nothing but its own code runs in the process.
	Static bool
	// Go is true for a Go program (a .go.buildinfo or .note.go.buildid
	// section, a runtime.main symbol, or the build-info magic at the start
	// of a writable segment). The Go runtime always starts threads.
	Go bool

	// DefinesSyscall is set for a static file that contains libc's
	// generic syscall(nr, ...) function (its symbol table names it): the
	// program may issue any call, clone included, with a number the scan
	// cannot see. (A stripped file hides this.)
	DefinesSyscall bool

	// dlopen lists the imports of dlopen and dlmopen (for Program);
	// dynsymErr is set when .dynsym could not be read (for a shared
	// object too, which DynsymUnreadable leaves out).
	dlopen    []string
	dynsymErr bool

	// CodeBytes is the number of executable bytes decoded.
	CodeBytes int64
	// Undecodable counts the bytes of executable segments the decoder
	// skipped (data or padding inside executable segments).
	Undecodable int
}

// processImportNames are the dynamic symbols whose import makes a program
// able to create processes or threads (documented at Report.Imports).
var processImportNames = []string{
	"fork", "vfork", "_Fork", "__fork", "forkpty",
	"clone", "__clone", "clone3",
	"posix_spawn", "posix_spawnp", "pidfd_spawn", "pidfd_spawnp",
	"pthread_create", "thrd_create",
	"system", "popen", "daemon", "wordexp",
	// glibc implements these with helper threads (SIGEV_THREAD
	// notification, POSIX AIO, asynchronous name lookup).
	"timer_create", "mq_notify",
	"aio_read", "aio_read64", "aio_write", "aio_write64",
	"aio_fsync", "aio_fsync64", "lio_listio", "lio_listio64",
	"getaddrinfo_a",
	"syscall",
	// exec replaces the program in place; the in-process tiers load the
	// new one in the same process, where it may fork.
	"execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "fexecve", "execveat",
}

// goBuildInfoMagic starts the Go build information blob (.go.buildinfo).
var goBuildInfoMagic = []byte("\xff Go buildinf:")

const (
	// x32Bit is __X32_SYSCALL_BIT: a 64-bit process may issue x32
	// syscalls, whose numbers carry this bit.
	x32Bit = 0x40000000
	// goMagicWindow is how far into a writable segment the Go build-info
	// magic is looked for (debug/buildinfo searches the same window).
	goMagicWindow = 64 << 10
)

// i386 numbers (arch/x86/entry/syscalls/syscall_32.tbl), for int $0x80 and
// sysenter sites. internal/abi has no i386 table.
const (
	i386Fork   = 2
	i386Clone  = 120
	i386Vfork  = 190
	i386Clone3 = 435
	i386Execve = 11
	i386Execat = 358
)

// forkName reports whether nr is a fork-family syscall, or an exec (the
// program it runs may fork, and the in-process tiers would run it in the
// same process), and names it.
func (a *archSpec) forkName(nr uint32, compat bool) (string, bool) {
	if compat {
		switch nr {
		case i386Fork:
			return "fork", true
		case i386Clone:
			return "clone", true
		case i386Vfork:
			return "vfork", true
		case i386Clone3:
			return "clone3", true
		case i386Execve:
			return "execve", true
		case i386Execat:
			return "execveat", true
		}
		return "", false
	}
	if a == amd64Spec {
		nr &^= x32Bit
	}
	name, ok := a.forkNrs[nr]
	return name, ok
}

func (a *archSpec) isFork(nr uint32) bool {
	_, ok := a.forkName(nr, false)
	return ok
}

// Scan analyses the x86-64 or AArch64 ELF executable or shared object r
// of the given size (ET_EXEC or ET_DYN), whatever the host's machine. Files the loader would refuse are rejected with
// an error wrapping [loader.ErrBadELF] that says why (not an ELF file,
// wrong machine, truncated, ...); read errors are returned wrapped.
//
// Scan decodes every byte of every executable PT_LOAD segment. When the
// file has section headers, each executable section is decoded from its
// own start (a known instruction boundary) and the bytes between them
// (headers, padding, data placed in the segment) are decoded as separate
// runs, so data before code cannot desynchronise the decoder; without
// section headers each segment is decoded from its first byte, and the
// decoder resynchronises after data.
func Scan(r io.ReaderAt, size int64) (*Report, error) {
	rep, _, err := scan(r, size, true)
	return rep, err
}

// scan is Scan, which also returns the file's debug/elf view (nil when
// debug/elf cannot read it). Without code, it skips decoding the
// executable segments: ForkSites, UnknownSites, CodeBytes and Undecodable
// stay zero, the rest of the report is complete.
func scan(r io.ReaderAt, size int64, code bool) (*Report, *elf.File, error) {
	spec := hostSpec()
	var eh [20]byte
	if n, _ := r.ReadAt(eh[:], 0); n == len(eh) {
		if s := specForMachine(elf.Machine(binary.LittleEndian.Uint16(eh[18:]))); s != nil {
			spec = s
		}
	}
	im, err := loader.Parse(r, size, spec.name)
	if err != nil {
		return nil, nil, fmt.Errorf("forkscan: %w", err)
	}
	rep := &Report{Machine: spec.machine, Interp: im.Interp, Static: im.Interp == ""}

	// Section headers and symbols are optional (the kernel ignores them):
	// a file debug/elf cannot read is scanned by its segments alone.
	f, err := elf.NewFile(io.NewSectionReader(r, 0, size))
	if err != nil {
		f = nil
	}

	var total uint64
	for _, seg := range im.Phdrs {
		if !code || seg.Prot&loader.ProtExec == 0 || seg.Filesz == 0 {
			continue
		}
		total += seg.Filesz
		if total > MaxCodeBytes {
			return nil, nil, fmt.Errorf("forkscan: executable segments total more than %d bytes", MaxCodeBytes)
		}
		text := make([]byte, seg.Filesz)
		if err := readFull(r, text, seg.Off); err != nil {
			return nil, nil, err
		}
		for _, rg := range regions(f, seg) {
			region, off, addr := text[rg.start-seg.Off:rg.end-seg.Off], int64(rg.start), seg.Vaddr+(rg.start-seg.Off)
			if spec == arm64Spec {
				rep.scanRegionARM64(region, off, addr)
			} else {
				rep.scanRegion(region, off, addr)
			}
		}
	}
	slices.SortStableFunc(rep.ForkSites, func(a, b Site) int { return cmp.Compare(a.Offset, b.Offset) })

	if f != nil {
		rep.Imports, rep.dlopen, err = processImports(f)
		if err != nil {
			rep.dynsymErr = true
			if !rep.Static {
				rep.DynsymUnreadable = true
			}
		}
		rep.Go = isGoELF(f)
		rep.DefinesSyscall = rep.Static && definesSymbol(f, "syscall")
	} else if !rep.Static {
		rep.DynsymUnreadable = true
	}
	if !rep.Go {
		rep.Go, err = hasGoMagic(r, im)
		if err != nil {
			return nil, nil, err
		}
	}
	return rep, f, nil
}

// CreatesProcesses reports whether the program can create processes or
// threads, with a short reason: "Go binary (the runtime starts threads)",
// "clone site at 0x4123ab", "imports pthread_create", "dynamic: libc's
// syscall() wrapper imported", "dynamic: dynamic symbols unreadable", or,
// when it returns false, "no fork-family sites".
//
// The answer is a static approximation for this one file, sound for
// ordinary compiled code but not for everything. It does not see:
//   - the shared libraries of a dynamic program (ld.so loads them later):
//     only the program's own imports are checked, so a library that creates
//     threads or processes behind an innocent-looking import (a GLib or
//     OpenMP call, an NSS module) is missed; [Program] scans them;
//   - dlopen'ed code;
//   - a raw syscall whose number is in a register or in memory (counted in
//     UnknownSites but not used here: musl and glibc have such sites in
//     every static program). In particular a static program that calls
//     libc's generic syscall(SYS_clone, ...) is not detected: the wrapper's
//     own syscall is one of the UnknownSites, and its callers are not
//     traced (a dynamic program importing syscall is flagged instead);
//   - self-modifying or JIT-generated code, and code reached only by
//     indirect branches into the middle of a traced sequence.
func (r *Report) CreatesProcesses() (bool, string) {
	if r.Go {
		return true, "Go binary (the runtime starts threads)"
	}
	if len(r.ForkSites) > 0 {
		// Name a site that creates a process if there is one; an exec
		// site only may (through the program it runs).
		s := r.ForkSites[0]
		for _, f := range r.ForkSites {
			if !f.isExec() {
				s = f
				break
			}
		}
		reason := fmt.Sprintf("%s site at %#x", s.Name(), s.Addr)
		if s.isExec() {
			reason += " (the program it runs may fork)"
		}
		if n := len(r.ForkSites); n > 1 {
			reason += fmt.Sprintf(" (%d fork-family sites)", n)
		}
		return true, reason
	}
	named, execs, wrapper := splitImports(r.Imports)
	if len(named) > 0 || len(execs) > 0 {
		return true, importReason(r.Imports)
	}
	if wrapper {
		return true, "dynamic: libc's syscall() wrapper imported"
	}
	if r.DynsymUnreadable {
		return true, "dynamic: dynamic symbols unreadable"
	}
	if r.DefinesSyscall {
		return true, "static: contains libc's syscall() wrapper (any call, clone included, with a number from a register)"
	}
	return false, "no fork-family sites"
}

// ThreadSite reports whether a program's own code (the report of a
// static file) has a wrapper that starts a thread or a process, exec
// sites not counted, or is Go code, with the reason: the cancel-wrapper
// promotion's gate (docs/cancel-wrapper.md). A clone through libc's
// generic syscall(), its number in a register, is not seen (the gate's
// documented gap; the in-process tiers refuse clone anyway).
func ThreadSite(r *Report) (bool, string) {
	if r.Go {
		return true, "Go binary (the runtime starts threads)"
	}
	for _, s := range r.ForkSites {
		if !s.isExec() {
			return true, fmt.Sprintf("a %s wrapper site at %#x", s.Name(), s.Addr)
		}
	}
	return false, "no clone/clone3 wrapper sites"
}

// region is a run of file bytes [start, end) decoded from its start.
type region struct{ start, end uint64 }

// regions splits an executable segment into decoding runs: its executable
// sections, and the gaps between them. Without usable sections the whole
// segment is one run.
func regions(f *elf.File, seg loader.Segment) []region {
	lo, hi := seg.Off, seg.Off+seg.Filesz
	var secs []region
	if f != nil {
		for _, s := range f.Sections {
			if s.Flags&elf.SHF_EXECINSTR == 0 || s.Type == elf.SHT_NOBITS || s.Size == 0 {
				continue
			}
			start, end := s.Offset, s.Offset+s.Size
			if end < start { // overflow
				end = ^uint64(0)
			}
			start, end = max(start, lo), min(end, hi)
			if start < end {
				secs = append(secs, region{start, end})
			}
		}
	}
	if len(secs) == 0 {
		return []region{{lo, hi}}
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i].start < secs[j].start })
	var out []region
	cur := lo
	for _, s := range secs {
		start := max(s.start, cur) // overlapping sections: keep the first
		if start >= s.end {
			continue
		}
		if start > cur {
			out = append(out, region{cur, start})
		}
		out = append(out, region{start, s.end})
		cur = s.end
	}
	if cur < hi {
		out = append(out, region{cur, hi})
	}
	return out
}

// scanRegion decodes one run of code that starts at file offset off and
// virtual address addr.
//
// The syscall sites include the ones x86len.Sites reports (the same `b8
// imm32` + `0f 05` pairs at consecutive boundaries, and bare `0f 05` at
// boundaries; TestSitesMatchX86len checks this on real binaries), found on
// the one set of boundaries that the backward trace needs too, rather than
// by calling Sites, which would decode the region a second time (Sites
// took over half of the scan time of busybox).
func (r *Report) scanRegion(code []byte, off int64, addr uint64) {
	r.CodeBytes += int64(len(code))
	starts, bad := x86len.Boundaries(code)
	r.Undecodable += bad
	targets := branchTargets(code, starts)
	add := func(from, sc int, nr uint32, kind SiteKind, compat bool) {
		r.ForkSites = append(r.ForkSites, Site{
			Offset:  off + int64(from),
			Addr:    addr + uint64(from),
			Syscall: addr + uint64(sc),
			Nr:      nr,
			Kind:    kind,
			Compat:  compat,
			Machine: elf.EM_X86_64,
		})
	}
	for _, s := range syscallSites(code, starts) {
		o := starts[s.i]
		if s.pair {
			if amd64Spec.isFork(s.nr) {
				add(o, o+5, s.nr, Pair, false)
			}
			if targets.has(o + 5) {
				r.UnknownSites++ // a branch brings its own %eax
			}
			continue
		}
		nr, from, ok := traceNr(code, starts, s.i)
		switch {
		case !ok:
			r.UnknownSites++
		case isForkX86(nr, s.compat):
			// A branch into the traced window only adds paths.
			add(starts[from], o, nr, Traced, s.compat)
		case targets.hasIn(starts[from]+1, o):
			r.UnknownSites++ // another path may bring another number
		}
	}
}

// rawSite is a syscall instruction, or a `mov $nr,%eax; syscall` pair, at
// starts[i].
type rawSite struct {
	i        int
	pair     bool   // `b8 imm32` + `0f 05` at consecutive boundaries
	nr       uint32 // the imm32 of a pair
	prefixed bool   // a syscall with prefixes (not a pair)
	compat   bool   // int $0x80 or sysenter
}

// syscallSites lists the syscall sites of a decoded region: the pairs and
// bare syscalls x86len.Sites reports, plus syscalls with prefixes (which
// Sites does not report; compilers never emit a prefix, the CPU ignores
// it) and the 32-bit entry points int $0x80 and sysenter.
func syscallSites(code []byte, starts []int) []rawSite {
	var out []rawSite
	for i := 0; i < len(starts); i++ {
		o := starts[i]
		if nr, ok := pairAt(code, starts, i); ok {
			out = append(out, rawSite{i: i, pair: true, nr: nr})
			i++ // the syscall belongs to the pair
			continue
		}
		p := o
		for p < len(code) && p-o < x86len.MaxLen && x86len.IsPrefix(code[p]) {
			p++
		}
		if p+2 > len(code) {
			continue
		}
		switch {
		case code[p] == 0x0f && code[p+1] == 0x05:
			out = append(out, rawSite{i: i, prefixed: p > o})
		case code[p] == 0xcd && code[p+1] == 0x80, code[p] == 0x0f && code[p+1] == 0x34:
			out = append(out, rawSite{i: i, compat: true})
		}
	}
	return out
}

func isForkX86(nr uint32, compat bool) bool {
	_, ok := amd64Spec.forkName(nr, compat)
	return ok
}

// pairAt reports whether starts[i] begins a `mov $nr,%eax; syscall` pair
// exactly as x86len.Sites defines it, and returns nr.
func pairAt(code []byte, starts []int, i int) (uint32, bool) {
	o := starts[i]
	if code[o] != 0xb8 || o+7 > len(code) || i+1 >= len(starts) || starts[i+1] != o+5 ||
		code[o+5] != 0x0f || code[o+6] != 0x05 {
		return 0, false
	}
	return le32(code[o+1:]), true
}

// bitset is a set of offsets into one code region.
type bitset []uint64

func (b bitset) has(i int) bool { return i >= 0 && i/64 < len(b) && b[i/64]&(1<<(i%64)) != 0 }

// hasIn reports whether any offset in [lo, hi] is in b.
func (b bitset) hasIn(lo, hi int) bool {
	for i := lo; i <= hi; i++ {
		if b.has(i) {
			return true
		}
	}
	return false
}

// branchTargets returns the in-buffer targets of direct relative branches
// (jmp, jcc, call, loop, jrcxz), with or without prefixes: x86len's, the
// one branch-target scanner the rewrite planner uses too.
func branchTargets(code []byte, starts []int) bitset {
	return bitset(x86len.BranchTargetBits(code, starts))
}

// processImports returns the sorted undefined dynamic symbols of f that are
// in processImportNames, and those that load code at run time (dlopen,
// dlmopen). It returns an error when f has no readable .dynsym.
func processImports(f *elf.File) (imports, dlopen []string, err error) {
	syms, err := f.DynamicSymbols()
	if err != nil {
		return nil, nil, err
	}
	for _, s := range syms {
		if s.Section != elf.SHN_UNDEF || s.Name == "" {
			continue
		}
		if b := elf.ST_BIND(s.Info); b != elf.STB_GLOBAL && b != elf.STB_WEAK {
			continue
		}
		switch {
		case slices.Contains(processImportNames, s.Name):
			if !slices.Contains(imports, s.Name) {
				imports = append(imports, s.Name)
			}
		case s.Name == "dlopen" || s.Name == "dlmopen":
			if !slices.Contains(dlopen, s.Name) {
				dlopen = append(dlopen, s.Name)
			}
		}
	}
	sort.Strings(imports)
	sort.Strings(dlopen)
	return imports, dlopen, nil
}

// definesSymbol reports whether f's symbol table defines a function name.
func definesSymbol(f *elf.File, name string) bool {
	syms, err := f.Symbols()
	if err != nil {
		return false
	}
	for _, s := range syms {
		if s.Name == name && s.Section != elf.SHN_UNDEF && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			return true
		}
	}
	return false
}

// isGoELF looks for the sections and symbol the Go linker always emits.
func isGoELF(f *elf.File) bool {
	if f.Section(".go.buildinfo") != nil || f.Section(".note.go.buildid") != nil {
		return true
	}
	syms, err := f.Symbols()
	if err != nil {
		return false
	}
	for _, s := range syms {
		if s.Name == "runtime.main" {
			return true
		}
	}
	return false
}

// hasGoMagic looks for the Go build-info magic at a 16-byte aligned offset
// near the start of each writable segment, where the Go linker puts
// .go.buildinfo; it finds Go programs whose section headers are gone.
func hasGoMagic(r io.ReaderAt, im *loader.Image) (bool, error) {
	for _, seg := range im.Phdrs {
		if seg.Prot&loader.ProtWrite == 0 || seg.Filesz < uint64(len(goBuildInfoMagic)) {
			continue
		}
		buf := make([]byte, min(seg.Filesz, goMagicWindow))
		if err := readFull(r, buf, seg.Off); err != nil {
			return false, err
		}
		// The section is 16-aligned in memory; the segment may start
		// mid-page, so align relative to the virtual address.
		first := int((16 - seg.Vaddr%16) % 16)
		for i := first; i+len(goBuildInfoMagic) <= len(buf); i += 16 {
			if bytes.Equal(buf[i:i+len(goBuildInfoMagic)], goBuildInfoMagic) {
				return true, nil
			}
		}
	}
	return false, nil
}

func readFull(r io.ReaderAt, b []byte, off uint64) error {
	n, err := r.ReadAt(b, int64(off))
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("forkscan: reading %d bytes at %#x: %w", len(b), off, err)
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
