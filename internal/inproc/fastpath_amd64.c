//go:build cgo && linux && amd64

// The rewrite tier's fast path. A patched syscall site jumps to its
// trampoline (rewrite.go), which re-executes the instructions the patch
// displaced, loads the address of its own `syscall; jmp back` tail into
// rcx and jumps here with the guest's registers otherwise intact (rcx and
// r11 are the two registers the syscall instruction clobbers anyway).
//
// Which calls run from here is data, not code: kbox_fast_kind[nr] is the
// policy table's Fast column for nr (internal/policy/serve.go), written once
// before the guest starts. Descriptor-local calls (FAST_FD, FAST_FSTAT) on
// regular files and directories run on the host descriptor kbox_fdmap
// names; FAST_PID answers the guest's pid; FAST_NATIVE runs unchanged.
// Everything else goes to direct entry (guest_amd64.c), which serves it
// through the trap tier's Go entry without a signal; before direct entry
// is on (or where it cannot be), it returns to the trampoline's `syscall`,
// which traps like any guest syscall. The `syscall` below is in
// kbox's code, so the interception filter lets it through for the FAST_FD
// and FAST_FSTAT numbers only (from the same column); any other number
// there, and the FAST_NATIVE syscall, go to the backstop filter like any
// call from kbox's code. The guest shares this memory and can rewrite the
// kind table: it then reaches nothing it could not reach by jumping into
// kbox's code, which the filters already bound.
// The fast path runs with the guest's FS base and stack: it touches no
// TLS, and skips the 128-byte red zone before pushing.

#include <stdint.h>

#include "guest.h"

// kbox_fdmap[g] is 1 + the host descriptor of guest descriptor g when g is
// a regular file or directory (calls on it cannot sleep), 0 otherwise.
// Written only from the fdtable's observer (rewrite.go).
int32_t kbox_fdmap[KBOX_FDMAP_SIZE];
int32_t kbox_fast_pid;
int32_t kbox_fast_fstat; // fstat needs no owner translation
uint8_t kbox_fast_kind[KBOX_FAST_NR];
uint64_t kbox_fast_hits, kbox_fast_misses;

__asm__(".text\n"
	".globl kbox_fast_any\n"
	".type kbox_fast_any,@function\n"
	"kbox_fast_any:\n"
	"	cmp $" KBOX_STR(KBOX_FAST_NR) ", %rax\n"
	"	jae 90f\n"
	"	lea kbox_fast_kind(%rip), %r11\n"
	"	movzbl (%r11,%rax), %r11d\n"
	"	cmp $" KBOX_STR(KBOX_FAST_FD) ", %r11d\n"
	"	je 10f\n"
	"	cmp $" KBOX_STR(KBOX_FAST_FSTAT) ", %r11d\n"
	"	je 20f\n"
	"	cmp $" KBOX_STR(KBOX_FAST_PID) ", %r11d\n"
	"	je 30f\n" // getpid, gettid: the guest is one thread
	"	cmp $" KBOX_STR(KBOX_FAST_NATIVE) ", %r11d\n"
	"	je 40f\n" // getppid: native, no descriptor
	"	cmp $" KBOX_STR(KBOX_FAST_STAT) ", %r11d\n"
	"	je 50f\n" // a path stat: the stat cache (statcache.c)
	"	jmp 90f\n"
	"20:	cmpl $0, kbox_fast_fstat(%rip)\n"
	"	je 90f\n"
	"10:	lea -128(%rsp), %rsp\n"
	"	push %rcx\n"
	"	push %rdi\n"
	"	mov %edi, %edi\n" // the descriptor is an int
	"	cmp $" KBOX_STR(KBOX_FDMAP_SIZE) ", %rdi\n"
	"	jae 80f\n"
	"	lea kbox_fdmap(%rip), %r11\n"
	"	mov (%r11,%rdi,4), %r11d\n"
	"	test %r11d, %r11d\n"
	"	jz 80f\n"
	"	lea -1(%r11), %rdi\n"
	"	syscall\n"
	".globl kbox_fast_syscall_end\n"
	"kbox_fast_syscall_end:\n"
	"	incq kbox_fast_hits(%rip)\n"
	"	pop %rdi\n"
	"	pop %rcx\n"
	"	lea 128(%rsp), %rsp\n"
	"	jmp *%rcx\n"
	"40:	lea -128(%rsp), %rsp\n"
	"	push %rcx\n"
	"	syscall\n"
	".globl kbox_fast_syscall2_end\n"
	"kbox_fast_syscall2_end:\n"
	"	incq kbox_fast_hits(%rip)\n"
	"	pop %rcx\n"
	"	lea 128(%rsp), %rsp\n"
	"	jmp *%rcx\n"
	"30:	mov kbox_fast_pid(%rip), %eax\n"
	"	incq kbox_fast_hits(%rip)\n"
	"	jmp *%rcx\n"
	// kbox_stat_fast(nr, a0, a1, a2, a3) with every register the C call
	// may clobber saved (rbx keeps the unaligned stack pointer); r11 is
	// the flags register of a syscall, which the guest cannot rely on.
	"50:	lea -128(%rsp), %rsp\n"
	"	push %rax\n"
	"	push %rcx\n"
	"	push %rdx\n"
	"	push %rsi\n"
	"	push %rdi\n"
	"	push %r8\n"
	"	push %r9\n"
	"	push %r10\n"
	"	push %rbx\n"
	"	mov %rsp, %rbx\n"
	"	and $-16, %rsp\n"
	"	mov %rdx, %rcx\n"
	"	mov %rsi, %rdx\n"
	"	mov %rdi, %rsi\n"
	"	mov %rax, %rdi\n"
	"	mov %r10, %r8\n"
	"	call kbox_stat_fast\n"
	"	mov %rbx, %rsp\n"
	"	pop %rbx\n"
	"	pop %r10\n"
	"	pop %r9\n"
	"	pop %r8\n"
	"	pop %rdi\n"
	"	pop %rsi\n"
	"	pop %rdx\n"
	"	cmp $" KBOX_STR(KBOX_SC_MISS) ", %rax\n"
	"	je 51f\n"
	"	pop %rcx\n"
	"	lea 136(%rsp), %rsp\n" // the saved rax and the red zone
	"	incq kbox_fast_hits(%rip)\n"
	"	jmp *%rcx\n"
	"51:	pop %rcx\n"
	"	pop %rax\n"
	"	lea 128(%rsp), %rsp\n"
	"	jmp 90f\n"
	"80:	pop %rdi\n"
	"	pop %rcx\n"
	"	lea 128(%rsp), %rsp\n"
	"90:	incq kbox_fast_misses(%rip)\n"
	"	cmpb $0, kbox_direct_on(%rip)\n"
	"	jne kbox_direct_entry\n" // served without a signal (guest_amd64.c)
	"	sub $2, %rcx\n" // the trampoline's own syscall: traps
	"	jmp *%rcx\n"
	".size kbox_fast_any, .-kbox_fast_any\n");

void kbox_fast_any(void);

uint64_t kbox_fast_any_addr(void) { return (uint64_t)(uintptr_t)kbox_fast_any; }

extern char kbox_fast_syscall_end[];

// The address the kernel reports for the fast path's syscall (the
// instruction after it): the filter lets it through first thing.
uint64_t kbox_fast_syscall_ip(void) { return (uint64_t)(uintptr_t)kbox_fast_syscall_end; }
