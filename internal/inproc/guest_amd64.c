//go:build cgo && linux && amd64

// x86-64's primitives for guest.c: raw syscalls, the FS base (the thread
// pointer), the interrupted instruction pointer, the blocking-syscall stub
// and the entry into the guest. Built like guest.c: no TLS, no stack
// protector.

#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <asm/prctl.h>
#include <ucontext.h>

#define KBOX_GUEST_INTERNAL
#include "guest.h"

long kbox_raw6(long nr, long a, long b, long c, long d, long e, long f) {
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

uint64_t kbox_get_tp(void) {
	uint64_t v;
	if (kbox_gs.fsgsbase) {
		__asm__ volatile("rdfsbase %0" : "=r"(v));
		return v;
	}
	kbox_raw6(SYS_arch_prctl, ARCH_GET_FS, (long)&v, 0, 0, 0, 0);
	return v;
}

void kbox_set_tp(uint64_t v) {
	if (kbox_gs.fsgsbase) {
		__asm__ volatile("wrfsbase %0" ::"r"(v) : "memory");
		return;
	}
	kbox_raw6(SYS_arch_prctl, ARCH_SET_FS, (long)v, 0, 0, 0, 0);
}

uintptr_t kbox_uc_pc(ucontext_t *uc) { return uc->uc_mcontext.gregs[REG_RIP]; }

void kbox_uc_set_pc(ucontext_t *uc, uintptr_t pc) { uc->uc_mcontext.gregs[REG_RIP] = (greg_t)pc; }

void kbox_arch_init(uint64_t hwcap2) { kbox_gs.fsgsbase = (hwcap2 & 2) != 0; } // HWCAP2_FSGSBASE

// x86-64 needs no instruction-cache maintenance after patching code.
void kbox_sync_icache(uint64_t lo, uint64_t hi) {
	(void)lo;
	(void)hi;
}

__asm__(".text\n"
	".globl kbox_bs_asm\n"
	".type kbox_bs_asm,@function\n"
	"kbox_bs_asm:\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rdi\n"
	"	mov %rdx, %rsi\n"
	"	mov %rcx, %rdx\n"
	"	mov %r8, %r10\n"
	"	mov %r9, %r8\n"
	"	mov 8(%rsp), %r9\n"
	".globl kbox_bs_start\n"
	"kbox_bs_start:\n"
	"	cmpb $0, kbox_kicked(%rip)\n"
	"	jne kbox_bs_eintr\n"
	".globl kbox_bs_syscall\n"
	"kbox_bs_syscall:\n"
	"	syscall\n"
	"	ret\n"
	".globl kbox_bs_eintr\n"
	"kbox_bs_eintr:\n"
	"	mov $-4, %rax\n"
	"	ret\n"
	".size kbox_bs_asm, .-kbox_bs_asm\n");

// The push writes just below sp, inside the guest's stack red zone, and
// the ret pops it: the guest starts with sp intact.
__asm__(".text\n"
	".globl kbox_enter_asm\n"
	".type kbox_enter_asm,@function\n"
	"kbox_enter_asm:\n"
	"	mov %rsi, %rsp\n"
	"	push %rdi\n"
	"	xor %eax, %eax\n"
	"	xor %ebx, %ebx\n"
	"	xor %ecx, %ecx\n"
	"	xor %edx, %edx\n"
	"	xor %esi, %esi\n"
	"	xor %edi, %edi\n"
	"	xor %ebp, %ebp\n"
	"	xor %r8d, %r8d\n"
	"	xor %r9d, %r9d\n"
	"	xor %r10d, %r10d\n"
	"	xor %r11d, %r11d\n"
	"	xor %r12d, %r12d\n"
	"	xor %r13d, %r13d\n"
	"	xor %r14d, %r14d\n"
	"	xor %r15d, %r15d\n"
	"	ret\n"
	".size kbox_enter_asm, .-kbox_enter_asm\n");
