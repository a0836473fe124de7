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
// execve fails. arch is the abi.Arch name: amd64 or arm64.
func trampoline(arch string, s loader.Script, script string) ([]byte, error) {
	const hdrSize = 64 + 56
	// The strings, in the order of the new argument vector's start.
	strs := []string{s.Interp}
	if s.HasArg {
		strs = append(strs, s.Arg)
	}
	strs = append(strs, script)
	for _, str := range strs {
		if strings.IndexByte(str, 0) >= 0 {
			return nil, unix.ENOEXEC
		}
	}
	var (
		body    []byte
		patches []int // offsets in body of each string's imm64/address slot, strs order
		machine uint16
		align   uint64
	)
	switch arch {
	case "amd64":
		body, patches = trampolineAMD64(len(strs))
		machine, align = 62, 0x1000 // EM_X86_64
	case "arm64":
		body, patches = trampolineARM64(len(strs))
		machine, align = 183, 0x10000 // EM_AARCH64; 64 KiB: any page size
	default:
		return nil, errors.New("script trampoline not built for " + arch)
	}
	var data bytes.Buffer
	for i, str := range strs {
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
	binary.Write(&img, le, uint16(2)) // e_type: ET_EXEC
	binary.Write(&img, le, machine)   // e_machine
	binary.Write(&img, le, uint32(1)) // e_version
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
	binary.Write(&img, le, align)
	img.Write(body)
	img.Write(data.Bytes())
	return img.Bytes(), nil
}

// trampolineAMD64 is the x86_64 code: it pushes NULL, the caller's
// argv[argc-1..1] and the n string addresses (patched in, last string
// first), then calls execve(interp, rsp, envp).
func trampolineAMD64(n int) ([]byte, []int) {
	var code bytes.Buffer
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
	patches := make([]int, n)
	for i := n - 1; i >= 0; i-- {
		code.Write([]byte{0x48, 0xb8}) // mov rax, imm64
		patches[i] = code.Len()
		code.Write(make([]byte, 8))
		code.WriteByte(0x50) // push rax
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
	return code.Bytes(), patches
}

// AArch64 instruction encodings the arm64 trampoline uses (64-bit forms).
func a64AddImm(rd, rn, imm uint32) uint32 { return 0x91000000 | imm<<10 | rn<<5 | rd } // add xd|sp, xn|sp, #imm
func a64CmpImm(rn, imm uint32) uint32     { return 0xf100001f | imm<<10 | rn<<5 }      // cmp xn, #imm
func a64AddLSL3(rd, rn, rm uint32) uint32 { return 0x8b000000 | rm<<16 | 3<<10 | rn<<5 | rd }
func a64LdrIdx(rt, rn, rm uint32) uint32  { return 0xf8607800 | rm<<16 | rn<<5 | rt } // ldr xt, [xn, xm, lsl #3]
func a64StrIdx(rt, rn, rm uint32) uint32  { return 0xf8207800 | rm<<16 | rn<<5 | rt } // str xt, [xn, xm, lsl #3]
func a64Movz(rd, imm uint32) uint32       { return 0xd2800000 | imm<<5 | rd }
func a64BGE(from, to int) uint32          { return 0x54000000 | uint32(to-from)&0x7ffff<<5 | 0xa }
func a64B(from, to int) uint32            { return 0x14000000 | uint32(to-from)&0x3ffffff }

// trampolineARM64 is the AArch64 code: below the caller's stack it builds
// the argument vector (the n strings from a literal pool, the caller's
// argv[1..argc-1], NULL), then calls execve(interp, that, envp).
func trampolineARM64(n int) ([]byte, []int) {
	k := uint32(n)
	const sp, xzr = 31, 31
	ins := []uint32{
		0:  0xf94003f3,             // ldr x19, [sp]            ; argc
		1:  a64AddImm(20, sp, 8),   // add x20, sp, #8          ; argv
		2:  a64AddLSL3(21, 20, 19), // add x21, x20, x19, lsl #3
		3:  a64AddImm(21, 21, 8),   // add x21, x21, #8         ; envp
		4:  a64CmpImm(19, 0),       // cmp x19, #0
		5:  0x9a9f1673,             // csinc x19, x19, xzr, ne  ; argc, at least 1
		6:  a64AddImm(9, 19, k+1),  // add x9, x19, #k+1        ; slots
		7:  a64AddLSL3(9, xzr, 9),  // lsl x9, x9, #3
		8:  a64AddImm(22, sp, 0),   // mov x22, sp
		9:  0xcb0902d6,             // sub x22, x22, x9
		10: 0x927ceed6,             // and x22, x22, #~15
		11: a64AddImm(sp, 22, 0),   // mov sp, x22
		12: 0,                      // adr x10, pool            (below)
		13: a64Movz(11, 0),         // mov x11, #0
		14: a64CmpImm(11, k),       // 1: cmp x11, #k
		15: a64BGE(15, 20),         // b.ge 2f
		16: a64LdrIdx(12, 10, 11),  // ldr x12, [x10, x11, lsl #3]
		17: a64StrIdx(12, 22, 11),  // str x12, [x22, x11, lsl #3]
		18: a64AddImm(11, 11, 1),   // add x11, x11, #1
		19: a64B(19, 14),           // b 1b
		20: a64Movz(11, 1),         // 2: mov x11, #1
		21: 0xeb13017f,             // 3: cmp x11, x19
		22: a64BGE(22, 28),         // b.ge 4f
		23: a64LdrIdx(12, 20, 11),  // ldr x12, [x20, x11, lsl #3] ; argv[i]
		24: a64AddImm(13, 11, k-1), // add x13, x11, #k-1
		25: a64StrIdx(12, 22, 13),  // str x12, [x22, x13, lsl #3]
		26: a64AddImm(11, 11, 1),   // add x11, x11, #1
		27: a64B(27, 21),           // b 3b
		28: a64AddImm(13, 19, k-1), // 4: add x13, x19, #k-1
		29: a64StrIdx(xzr, 22, 13), // str xzr, [x22, x13, lsl #3] ; NULL
		30: 0xf9400140,             // ldr x0, [x10]            ; interp
		31: 0xaa1603e1,             // mov x1, x22
		32: 0xaa1503e2,             // mov x2, x21
		33: a64Movz(8, 221),        // mov x8, #221 (execve)
		34: 0xd4000001,             // svc #0
		35: a64Movz(0, 127),        // mov x0, #127
		36: a64Movz(8, 94),         // mov x8, #94 (exit_group)
		37: 0xd4000001,             // svc #0
	}
	pool := len(ins) * 4
	if pool%8 != 0 {
		ins = append(ins, 0xd503201f) // nop: the pool 8-byte aligned
		pool += 4
	}
	off := uint32(pool - 12*4)
	ins[12] = 0x10000000 | (off&3)<<29 | (off>>2)&0x7ffff<<5 | 10
	code := make([]byte, pool+8*n)
	for i, w := range ins {
		binary.LittleEndian.PutUint32(code[4*i:], w)
	}
	patches := make([]int, n)
	for i := range patches {
		patches[i] = pool + 8*i
	}
	return code, patches
}

// scriptHead reads the start of file for the "#!" check.
func scriptHead(f *os.File) []byte {
	head := make([]byte, loader.ScriptBufSize)
	n, _ := f.ReadAt(head, 0)
	return head[:n]
}
