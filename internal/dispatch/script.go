package dispatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"

	"golang.org/x/sys/unix"

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
// resolves the interpreter in the guest namespace. The interpreter is
// checked before the caller's exec succeeds, so a missing interpreter is
// ENOENT to the caller, as on Linux; nesting deeper than Linux allows is
// ELOOP.

// scriptMaxLine is the kernel's BINPRM_BUF_SIZE: the "#!" line must fit.
const scriptMaxLine = 256

// scriptMaxDepth is how many interpreters may themselves be scripts
// (Linux: 5 nested scripts, the sixth is ELOOP).
const scriptMaxDepth = 5

// parseShebang parses a "#!" line as binfmt_script does: the interpreter
// is the first word, the optional argument the rest of the line trimmed.
func parseShebang(head []byte) (interp, arg string, err error) {
	if len(head) < 2 || head[0] != '#' || head[1] != '!' {
		return "", "", unix.ENOEXEC
	}
	line := head[2:]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	} else if len(head) >= scriptMaxLine {
		return "", "", unix.ENOEXEC // the line does not fit
	}
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	s := strings.Trim(string(line), " \t")
	if s == "" {
		return "", "", unix.ENOEXEC
	}
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		interp, arg = s[:i], strings.Trim(s[i:], " \t")
	} else {
		interp = s
	}
	return interp, arg, nil
}

// checkInterpreter resolves a script's interpreter chain in the guest as
// the kernel would when executing it; scripts counts the scripts so far.
func (e *Engine) checkInterpreter(r *Request, interp string, scripts int) error {
	l, err := e.ns.Resolve(e.ctx(r), "", interp, vfs.FollowFinal)
	if err != nil {
		return err
	}
	defer l.Release()
	f, err := e.openExecutable(l)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, scriptMaxLine)
	n, _ := f.ReadAt(head, 0)
	if next, _, err := parseShebang(head[:n]); err == nil {
		if scripts+1 > scriptMaxDepth {
			return unix.ELOOP
		}
		return e.checkInterpreter(r, next, scripts+1)
	}
	return nil
}

// scriptImage builds the trampoline for a script and returns a sealed,
// read-only descriptor of it.
func (e *Engine) scriptImage(r *Request, head []byte, scriptPath string) (int, error) {
	interp, arg, err := parseShebang(head)
	if err != nil {
		return -1, err
	}
	if err := e.checkInterpreter(r, interp, 1); err != nil {
		return -1, err
	}
	img, err := trampoline(e.arch.Name, interp, arg, scriptPath)
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

// trampoline returns a static ELF that executes interp with argv
// [interp, arg (if any), script, argv[1:]...] and its own envp, and exits
// with status 127 if that execve fails.
func trampoline(arch, interp, arg, script string) ([]byte, error) {
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
	if arg != "" {
		strs = append(strs, arg)
	}
	strs = append(strs, interp)
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
	for i, s := range strs {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, unix.ENOEXEC
		}
		addr := uint64(trampolineBase + hdrSize + len(body) + data.Len())
		binary.LittleEndian.PutUint64(body[patches[i]:], addr)
		data.WriteString(s)
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
	head := make([]byte, scriptMaxLine)
	n, _ := f.ReadAt(head, 0)
	return head[:n]
}
