//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"bytes"
	"crypto/rand"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/dispatch"
	"github.com/kbox-go/kbox/internal/loader"
	"github.com/kbox-go/kbox/internal/seccomp"
)

// program is a guest program ready to map: the ELF (and its interpreter)
// opened and validated, and the final argv after "#!" processing.
type program struct {
	file       *os.File
	im         *loader.Image
	interp     *os.File
	interpIm   *loader.Image
	argv       []string
	execfn     string // the path the caller gave (AT_EXECFN)
	exe        string // canonical guest path of the program (or script)
	script     bool
	interpPath string
}

func (p *program) close() {
	p.file.Close()
	if p.interp != nil {
		p.interp.Close()
	}
}

// emptyPathFD asks prepare to open the program behind descriptor dirfd
// (fexecve); a bit no AT_* flag uses.
const emptyPathFD = 1 << 30

// loadError is a program the loader refuses: the errno execve returns
// (ENOEXEC for a file that is not a loadable program, ENOENT for a missing
// interpreter, as Linux) and why, keeping the loader's error.
type loadError struct {
	errno unix.Errno
	err   error
}

func (e *loadError) Error() string { return e.err.Error() }

// Unwrap gives the errno first, so that errors.As and abi.Errno find it,
// then the loader's error.
func (e *loadError) Unwrap() []error { return []error{e.errno, e.err} }

func notExecutable(err error) *loadError { return &loadError{errno: unix.ENOEXEC, err: err} }

// prepare resolves path, follows "#!" as deep as Linux does, and opens and
// validates the ELF and its interpreter. Nothing of the running guest is
// touched, so an execve that fails here returns to the caller.
func (t *tier) prepare(req *dispatch.Request, dirfd int, path string, flags int, argv []string) (*program, error) {
	p := &program{execfn: path, argv: argv}
	for depth := 0; ; depth++ {
		var f *os.File
		var canon string
		var err error
		if flags&emptyPathFD != 0 {
			f, canon, err = t.eng.OpenProgramFD(req, dirfd)
		} else {
			f, canon, err = t.eng.OpenProgram(req, dirfd, path, flags)
		}
		if err != nil {
			if depth > 0 {
				err = &loader.InterpError{Interp: path, Err: err}
			}
			return nil, err
		}
		if p.exe == "" {
			p.exe = canon
		}
		if depth > loader.MaxScriptDepth {
			f.Close()
			return nil, &loader.InterpError{Interp: path, Err: unix.ELOOP}
		}
		head := make([]byte, loader.ScriptBufSize)
		n, _ := f.ReadAt(head, 0)
		head = head[:n]
		if loader.IsScript(head) {
			f.Close()
			s, err := loader.ParseScript(head)
			if err != nil {
				if depth > 0 {
					err = &loader.InterpError{Interp: path, Err: err}
				}
				return nil, err
			}
			p.argv, p.script = s.Argv(path, p.argv), true
			path, dirfd, flags = s.Interp, unix.AT_FDCWD, 0
			continue
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		im, err := loader.Parse(f, st.Size(), runtime.GOARCH)
		if err != nil {
			f.Close()
			if !bytes.HasPrefix(head, []byte("\x7fELF")) {
				err = &loader.NotELF{}
			} else {
				err = &loader.NotELF{Detail: err.Error()}
			}
			if depth > 0 {
				err = &loader.InterpError{Interp: path, Err: err}
			}
			return nil, err
		}
		p.file, p.im = f, im
		break
	}
	if p.im.Interp != "" {
		f, _, err := t.eng.OpenProgram(req, unix.AT_FDCWD, p.im.Interp, 0)
		if err != nil {
			p.close()
			return nil, &loader.InterpError{Interp: p.im.Interp, ELF: true, Err: err}
		}
		st, err := f.Stat()
		if err == nil {
			p.interpIm, err = loader.Parse(f, st.Size(), runtime.GOARCH)
		}
		if err != nil {
			f.Close()
			p.close()
			return nil, notExecutable(fmt.Errorf("interpreter %s: %w", p.im.Interp, err))
		}
		if p.interpIm.Interp != "" || p.interpIm.Type != elf.ET_DYN {
			f.Close()
			p.close()
			return nil, notExecutable(fmt.Errorf("interpreter %s is not a static shared object", p.im.Interp))
		}
		p.interp, p.interpPath = f, p.im.Interp
	}
	return p, nil
}

// Placement of ET_DYN programs: far below the Go heap (0xc000000000), with
// room for the break after them. Interpreters go wherever the kernel
// places a mapping.
const dynProgramHint = 0x10000000000 >> 4 // 64 GiB

// mapImage maps im from f as the kernel's ELF loader would and returns
// its layout. For ET_DYN, hint is a preferred base (0: any).
func (t *tier) mapImage(f *os.File, im *loader.Image, hint uint64, what string) (loader.Layout, error) {
	// The layout at base 0: an ET_DYN image's extent, an ET_EXEC's final
	// addresses.
	extent, err := im.Layout(0)
	if err != nil {
		return loader.Layout{}, notExecutable(err)
	}
	var base uint64
	switch im.Type {
	case elf.ET_DYN:
		align := max(im.Align, pageSize)
		size := extent.End - extent.Start + align
		r, _, en := unix.RawSyscall6(unix.SYS_MMAP, uintptr(hint), uintptr(size), unix.PROT_NONE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE, ^uintptr(0), 0)
		if en != 0 {
			return loader.Layout{}, fmt.Errorf("reserving %d bytes for %s: %v", size, what, en)
		}
		start := (uint64(r) + align - 1) &^ (align - 1)
		base = start - extent.Start
		// Give back the alignment slack on both sides.
		if start > uint64(r) {
			unix.RawSyscall(unix.SYS_MUNMAP, r, uintptr(start-uint64(r)), 0)
		}
		if end, rend := start+(extent.End-extent.Start), uint64(r)+size; rend > end {
			unix.RawSyscall(unix.SYS_MUNMAP, uintptr(end), uintptr(rend-end), 0)
		}
	case elf.ET_EXEC:
		if _, err := mmapFixedNoReplace(extent.Start, extent.End-extent.Start, unix.PROT_NONE); err != nil {
			return loader.Layout{}, notExecutable(fmt.Errorf("%s must be loaded at %#x-%#x, which kbox itself occupies (a kbox linked at the Go default address? build it with scripts/build-kbox or go build -buildmode=pie)", what, extent.Start, extent.End))
		}
	}
	l, err := im.Layout(base)
	if err != nil {
		return loader.Layout{}, notExecutable(err)
	}
	t.vm.add(l.Start, l.End)
	for _, m := range l.Mappings {
		prot := protOf(m.Prot)
		if prot&protWX == protWX {
			return loader.Layout{}, notExecutable(fmt.Errorf("%s has a writable and executable segment; the trap tier keeps guest memory W^X", what))
		}
		if m.FileEnd > m.Start {
			mp := prot
			if m.ZeroStart != 0 {
				mp |= unix.PROT_WRITE
				if mp&protWX == protWX {
					mp &^= unix.PROT_EXEC
				}
			}
			r, _, en := unix.RawSyscall6(unix.SYS_MMAP, uintptr(m.Start), uintptr(m.FileEnd-m.Start), uintptr(mp),
				unix.MAP_PRIVATE|unix.MAP_FIXED, f.Fd(), uintptr(m.Off))
			if en != 0 || uint64(r) != m.Start {
				return loader.Layout{}, fmt.Errorf("mapping %s at %#x: %v", what, m.Start, en)
			}
			if m.ZeroStart != 0 {
				clear(guestBytes(m.ZeroStart, int(m.ZeroEnd-m.ZeroStart)))
				if mp != prot {
					unix.RawSyscall(unix.SYS_MPROTECT, uintptr(m.Start), uintptr(m.FileEnd-m.Start), uintptr(prot))
				}
			}
		}
		if m.End > m.FileEnd {
			r, _, en := unix.RawSyscall6(unix.SYS_MMAP, uintptr(m.FileEnd), uintptr(m.End-m.FileEnd), uintptr(prot),
				unix.MAP_PRIVATE|unix.MAP_FIXED|unix.MAP_ANONYMOUS, ^uintptr(0), 0)
			if en != 0 || uint64(r) != m.FileEnd {
				return loader.Layout{}, fmt.Errorf("mapping the bss of %s at %#x: %v", what, m.FileEnd, en)
			}
		}
	}
	if t.rw != nil {
		for _, m := range l.Mappings {
			if m.Prot&loader.ProtExec != 0 && m.FileEnd > m.Start {
				t.rw.patchMapping(t, int(f.Fd()), m.Off, m.Start, m.FileEnd, protOf(m.Prot), what)
			}
		}
	}
	return l, nil
}

func protOf(p loader.Prot) int {
	prot := 0
	if p&loader.ProtRead != 0 {
		prot |= unix.PROT_READ
	}
	if p&loader.ProtWrite != 0 {
		prot |= unix.PROT_WRITE
	}
	if p&loader.ProtExec != 0 {
		prot |= unix.PROT_EXEC
	}
	return prot
}

const stackSize = 8 << 20

// load maps p, builds its stack, sets up the break and returns the entry
// point and initial stack pointer.
func (t *tier) load(p *program, env []string) (entry, sp uint64, err error) {
	defer p.close()
	hint := uint64(0)
	if p.im.Type == elf.ET_DYN {
		hint = dynProgramHint
	}
	if t.rw != nil {
		t.rw.program(t, p)
	}
	l, err := t.mapImage(p.file, p.im, hint, p.exe)
	if err != nil {
		return 0, 0, err
	}
	if l.PhdrAddr == 0 {
		return 0, 0, notExecutable(errors.New(p.exe + ": program headers are not in a loaded segment"))
	}
	entry = l.Entry
	var base uint64
	if p.interp != nil {
		il, err := t.mapImage(p.interp, p.interpIm, 0, p.interpPath)
		if err != nil {
			return 0, 0, err
		}
		entry, base = il.Entry, il.LoadBias
	}
	t.brk = brkState{start: l.Brk, cur: l.Brk}

	prot := unix.PROT_READ | unix.PROT_WRITE
	if p.im.ExecStack {
		t.eng.Verbosef("%s asks for an executable stack (PT_GNU_STACK); the trap tier maps it non-executable (W^X)", p.exe)
	}
	r, _, en := unix.RawSyscall6(unix.SYS_MMAP, 0, stackSize+pageSize, uintptr(prot),
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE, ^uintptr(0), 0)
	if en != 0 {
		return 0, 0, fmt.Errorf("mapping the guest stack: %v", en)
	}
	lo := uint64(r)
	unix.RawSyscall(unix.SYS_MPROTECT, uintptr(lo), pageSize, unix.PROT_NONE) // guard page
	t.vm.add(lo, lo+stackSize+pageSize)
	top := lo + stackSize + pageSize

	creds := t.proc.Creds()
	sp0 := loader.StackParams{
		Top: top, Argv: p.argv, Envp: env, ExecFn: p.execfn, Platform: platform,
		Phdr: l.PhdrAddr, Phent: uint64(p.im.Phentsize), Phnum: uint64(p.im.Phnum), Base: base,
		Entry: l.Entry, UID: uint64(creds.RUID), EUID: uint64(creds.EUID), GID: uint64(creds.RGID), EGID: uint64(creds.EGID),
		Hwcap: t.auxv.hwcap, Hwcap2: t.auxv.hwcap2, Clktck: 100, SysinfoEhdr: t.auxv.vdso,
	}
	rand.Read(sp0.Random[:])
	data, sp, err := loader.BuildStack(sp0)
	if err != nil {
		return 0, 0, notExecutable(err)
	}
	if uint64(len(data)) > stackSize/4 {
		return 0, 0, unix.E2BIG
	}
	copy(guestBytes(sp, len(data)), data)
	return entry, sp, nil
}

// hostAuxv holds the values of kbox's own auxiliary vector the guest
// inherits (the vDSO is shared: it is the same process).
type hostAuxv struct{ hwcap, hwcap2, vdso uint64 }

func readHostAuxv() (hostAuxv, error) {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return hostAuxv{}, fmt.Errorf("reading /proc/self/auxv: %w", err)
	}
	var a hostAuxv
	for i := 0; i+16 <= len(b); i += 16 {
		k, v := binary.LittleEndian.Uint64(b[i:]), binary.LittleEndian.Uint64(b[i+8:])
		switch k {
		case loader.AT_HWCAP:
			a.hwcap = v
		case loader.AT_HWCAP2:
			a.hwcap2 = v
		case loader.AT_SYSINFO_EHDR:
			a.vdso = v
		}
	}
	return a, nil
}

// hostCode lists kbox's executable mappings: every syscall issued from
// them is kbox's own.
func hostCode() ([]seccomp.Range, error) {
	maps, err := readMaps()
	if err != nil {
		return nil, err
	}
	var out []seccomp.Range
	for _, m := range maps {
		if !strings.Contains(m.perms, "x") || m.path == "[vsyscall]" {
			continue // the legacy vsyscall page is the guest's too
		}
		out = append(out, seccomp.Range{Lo: m.lo, Hi: m.hi})
	}
	return out, nil
}

// filters returns the filter the guest thread installs: calls from
// outside kbox's code raise SIGSYS; calls from kbox's code pass through
// the backstop, where the dangerous set fails with EPERM. It is built
// before the guest is mapped, so no guest code counts as kbox's.
func (t *tier) filters() ([][]byte, error) {
	back, err := seccomp.Compile(t.pol.Backstop())
	if err != nil {
		return nil, fmt.Errorf("compiling the backstop filter: %w", err)
	}
	code, err := hostCode()
	if err != nil {
		return nil, fmt.Errorf("reading kbox's mappings: %w", err)
	}
	var fast seccomp.FastPath
	if t.rw != nil {
		fast.IP = fastSyscallIP()
		fast.Nrs = t.pol.FastPathCalls()
	}
	prog, err := seccomp.IPTrapThen(t.eng.Arch().AuditArch, code, back, fast)
	if err != nil {
		return nil, err
	}
	t.eng.Verbosef("filter: syscalls from %d kbox code ranges go on to the backstop (%d instructions in all), the guest's trap", len(code), len(prog))
	// One filter: every syscall of the thread (kbox's too, and the
	// rewrite tier's fast path) runs one BPF program, not two.
	return [][]byte{seccomp.Bytes(prog)}, nil
}
