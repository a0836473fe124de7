package dispatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/loader"
	"github.com/kbox-go/kbox/internal/vfs"
)

// "#!" scripts.
//
// The kernel's own script handler would open the interpreter named in the
// "#!" line on the host. kbox instead executes a tiny generated program,
// the script trampoline, that re-executes the interpreter with the argument
// vector the kernel would have built — interpreter, optional argument,
// script path as the caller gave it, then the caller's argv[1:] — and the
// caller's environment. That execve is an ordinary guest exec: kbox
// resolves the interpreter in the guest namespace. The "#!" line is read
// by loader.ParseScript, which every tier uses. The interpreter chain is
// checked before the caller's exec succeeds, as the kernel opens it before
// the point of no return: a missing interpreter is ENOENT to the caller, a
// chain deeper than Linux allows ELOOP, a final interpreter that is no
// program for this machine ENOEXEC.

// checkInterpreter resolves and checks a script's interpreter chain in the
// guest as the kernel would when executing it; depth is the interpreter's
// (the caller's file is at depth 0, loader.MaxScriptDepth).
// Errors name the interpreter concerned (loader.InterpError).
func (e *Engine) checkInterpreter(r *Request, interp string, depth int) error {
	fail := func(err error) error { return &loader.InterpError{Interp: interp, Err: err} }
	l, err := e.ns.Resolve(e.ctx(r), "", interp, vfs.FollowFinal)
	if err != nil {
		return fail(err)
	}
	defer l.Release()
	f, err := e.openExecutable(l)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	if depth > loader.MaxScriptDepth {
		return fail(unix.ELOOP)
	}
	head := scriptHead(f)
	if loader.IsScript(head) {
		s, err := loader.ParseScript(head)
		if err != nil {
			return fail(err)
		}
		return e.checkInterpreter(r, s.Interp, depth+1)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fail(err)
	}
	key := imageKey{dev: st.Dev, ino: st.Ino, size: uint64(st.Size), mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(), interpFD: -1}
	if _, err = e.elfFacts(f, &st, key); err != nil {
		return fail(err)
	}
	return nil
}

// scriptImage builds the trampoline for a script and returns a sealed,
// read-only descriptor of it.
func (e *Engine) scriptImage(r *Request, head []byte, scriptPath string) (int, error) {
	s, err := loader.ParseScript(head)
	if err != nil {
		return -1, err
	}
	if err := e.checkInterpreter(r, s.Interp, 1); err != nil {
		return -1, err
	}
	img, err := trampoline(e.arch.Name, s, scriptPath)
	if err != nil {
		return -1, err
	}
	return sealedBytes(img)
}

// sealedBytes puts b in a sealed memfd and returns a read-only descriptor.
func sealedBytes(b []byte) (int, error) {
	mfd, err := unix.MemfdCreate("kbox-script", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, err
	}
	defer unix.Close(mfd)
	if _, err := unix.Pwrite(mfd, b, 0); err != nil {
		return -1, err
	}
	if _, err := unix.FcntlInt(uintptr(mfd), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_GROW|unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL); err != nil {
		return -1, err
	}
	return unix.Open(procFD(mfd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
}

// trampolineBase is where the trampoline is linked (a static ET_EXEC).
const trampolineBase = 0x400000

// trampoline returns a static ELF that executes s.Interp with argv
// s.Argv(script, argv) and its own envp, and exits with status 127 if that
// execve fails.
func trampoline(arch string, s loader.Script, script string) ([]byte, error) {
	if arch != "amd64" {
		return nil, errors.New("script trampoline not built for " + arch)
	}
	const hdrSize = 64 + 56
	var code bytes.Buffer
	// Layout: code, then the three strings; their addresses are patched in.
	code.Write([]byte{
		0x4c, 0x8b, 0x24, 0x24, // mov r12, [rsp]            ; argc
		0x4c, 0x8d, 0x6c, 0x24, 0x08, // lea r13, [rsp+8]    ; argv
		0x4f, 0x8d, 0x74, 0xe5, 0x08, // lea r14, [r13+r12*8+8] ; envp
		0x31, 0xc0, // xor eax, eax
		0x50,             // push rax                    ; NULL
		0x4c, 0x89, 0xe1, // mov rcx, r12
		// loop:
		0x48, 0x83, 0xf9, 0x01, // cmp rcx, 1
		0x7e, 0x0a, // jle done
		0x48, 0xff, 0xc9, // dec rcx
		0x41, 0xff, 0x74, 0xcd, 0x00, // push qword [r13+rcx*8] ; argv[rcx]
		0xeb, 0xf0, // jmp loop
		// done:
	})
	var patches []int // offsets of imm64 string addresses, in push order
	pushString := func() {
		code.Write([]byte{0x48, 0xb8}) // mov rax, imm64
		patches = append(patches, code.Len())
		code.Write(make([]byte, 8))
		code.WriteByte(0x50) // push rax
	}
	strs := []string{script}
	if s.HasArg {
		strs = append(strs, s.Arg)
	}
	strs = append(strs, s.Interp)
	for range strs {
		pushString()
	}
	code.Write([]byte{
		0x48, 0x89, 0xc7, // mov rdi, rax                ; path = interp
		0x48, 0x89, 0xe6, // mov rsi, rsp                ; argv
		0x4c, 0x89, 0xf2, // mov rdx, r14                ; envp
		0xb8, 0x3b, 0x00, 0x00, 0x00, // mov eax, 59 (execve)
		0x0f, 0x05, // syscall
		0xbf, 0x7f, 0x00, 0x00, 0x00, // mov edi, 127
		0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231 (exit_group)
		0x0f, 0x05, // syscall
	})
	body := code.Bytes()
	var data bytes.Buffer
	for i, str := range strs {
		if strings.IndexByte(str, 0) >= 0 {
			return nil, unix.ENOEXEC
		}
		addr := uint64(trampolineBase + hdrSize + len(body) + data.Len())
		binary.LittleEndian.PutUint64(body[patches[i]:], addr)
		data.WriteString(str)
		data.WriteByte(0)
	}
	total := hdrSize + len(body) + data.Len()

	var img bytes.Buffer
	le := binary.LittleEndian
	ident := [16]byte{0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* LE */, 1 /* version */}
	img.Write(ident[:])
	binary.Write(&img, le, uint16(2))  // e_type: ET_EXEC
	binary.Write(&img, le, uint16(62)) // e_machine: EM_X86_64
	binary.Write(&img, le, uint32(1))  // e_version
	binary.Write(&img, le, uint64(trampolineBase+hdrSize))
	binary.Write(&img, le, uint64(64)) // e_phoff
	binary.Write(&img, le, uint64(0))  // e_shoff
	binary.Write(&img, le, uint32(0))  // e_flags
	binary.Write(&img, le, uint16(64)) // e_ehsize
	binary.Write(&img, le, uint16(56)) // e_phentsize
	binary.Write(&img, le, uint16(1))  // e_phnum
	binary.Write(&img, le, uint16(64)) // e_shentsize
	binary.Write(&img, le, uint16(0))  // e_shnum
	binary.Write(&img, le, uint16(0))  // e_shstrndx
	binary.Write(&img, le, uint32(1))  // p_type: PT_LOAD
	binary.Write(&img, le, uint32(5))  // p_flags: R|X
	binary.Write(&img, le, uint64(0))  // p_offset
	binary.Write(&img, le, uint64(trampolineBase))
	binary.Write(&img, le, uint64(trampolineBase))
	binary.Write(&img, le, uint64(total)) // p_filesz
	binary.Write(&img, le, uint64(total)) // p_memsz
	binary.Write(&img, le, uint64(0x1000))
	img.Write(body)
	img.Write(data.Bytes())
	return img.Bytes(), nil
}

// scriptHead reads the start of file for the "#!" check.
func scriptHead(f *os.File) []byte {
	head := make([]byte, loader.ScriptBufSize)
	n, _ := f.ReadAt(head, 0)
	return head[:n]
}
