//go:build cgo && linux && arm64

// arm64's primitives for guest.c: raw syscalls (svc #0), the thread
// pointer (TPIDR_EL0, which the guest's libc sets with msr without a
// syscall: the SIGSYS and fault handlers save it at every entry and put it
// back on the way out, as the FS base on x86-64), the interrupted
// instruction pointer, instruction-cache maintenance after patching, the
// blocking-syscall stub and the entry into the guest. Built like guest.c:
// no TLS, no stack protector.

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <ucontext.h>

#define KBOX_GUEST_INTERNAL
#include "guest.h"

long kbox_raw6(long nr, long a, long b, long c, long d, long e, long f) {
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc #0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
}

uint64_t kbox_get_tp(void) {
	uint64_t v;
	__asm__ volatile("mrs %0, tpidr_el0" : "=r"(v));
	return v;
}

void kbox_set_tp(uint64_t v) { __asm__ volatile("msr tpidr_el0, %0" ::"r"(v) : "memory"); }

uintptr_t kbox_uc_pc(ucontext_t *uc) { return uc->uc_mcontext.pc; }

void kbox_uc_set_pc(ucontext_t *uc, uintptr_t pc) { uc->uc_mcontext.pc = pc; }

void kbox_arch_init(uint64_t hwcap2) { (void)hwcap2; }

// kbox_sync_icache makes code written through the data side visible to
// instruction fetch: clean the data cache to the point of unification,
// then invalidate the instruction cache, by line (CTR_EL0 gives the
// sizes; Linux lets EL0 run both and read CTR_EL0).
void kbox_sync_icache(uint64_t lo, uint64_t hi) {
	uint64_t ctr;
	__asm__ volatile("mrs %0, ctr_el0" : "=r"(ctr));
	uint64_t dline = 4ULL << ((ctr >> 16) & 15), iline = 4ULL << (ctr & 15);
	if (!(ctr & (1ULL << 28))) { // IDC: no clean needed for coherence
		for (uint64_t p = lo & ~(dline - 1); p < hi; p += dline)
			__asm__ volatile("dc cvau, %0" ::"r"(p) : "memory");
	}
	__asm__ volatile("dsb ish" ::: "memory");
	if (!(ctr & (1ULL << 29))) { // DIC: no invalidation needed
		for (uint64_t p = lo & ~(iline - 1); p < hi; p += iline)
			__asm__ volatile("ic ivau, %0" ::"r"(p) : "memory");
	}
	__asm__ volatile("dsb ish\n\tisb" ::: "memory");
}

__asm__(".text\n"
	".globl kbox_bs_asm\n"
	".type kbox_bs_asm,%function\n"
	"kbox_bs_asm:\n"
	"	mov x8, x0\n"
	"	mov x0, x1\n"
	"	mov x1, x2\n"
	"	mov x2, x3\n"
	"	mov x3, x4\n"
	"	mov x4, x5\n"
	"	mov x5, x6\n"
	".globl kbox_bs_start\n"
	"kbox_bs_start:\n"
	"	adrp x9, kbox_kicked\n"
	"	ldrb w9, [x9, :lo12:kbox_kicked]\n"
	"	cbnz w9, kbox_bs_eintr\n"
	".globl kbox_bs_syscall\n"
	"kbox_bs_syscall:\n"
	"	svc #0\n"
	"	ret\n"
	".globl kbox_bs_eintr\n"
	"kbox_bs_eintr:\n"
	"	mov x0, #-4\n"
	"	ret\n"
	".size kbox_bs_asm, .-kbox_bs_asm\n");

// Every general register zero but sp, as the kernel starts a process
// (x16 carries the entry to the final br).
__asm__(".text\n"
	".globl kbox_enter_asm\n"
	".type kbox_enter_asm,%function\n"
	"kbox_enter_asm:\n"
	"	mov sp, x1\n"
	"	mov x16, x0\n"
	"	mov x0, #0\n"
	"	mov x1, #0\n"
	"	mov x2, #0\n"
	"	mov x3, #0\n"
	"	mov x4, #0\n"
	"	mov x5, #0\n"
	"	mov x6, #0\n"
	"	mov x7, #0\n"
	"	mov x8, #0\n"
	"	mov x9, #0\n"
	"	mov x10, #0\n"
	"	mov x11, #0\n"
	"	mov x12, #0\n"
	"	mov x13, #0\n"
	"	mov x14, #0\n"
	"	mov x15, #0\n"
	"	mov x17, #0\n"
	"	mov x18, #0\n"
	"	mov x19, #0\n"
	"	mov x20, #0\n"
	"	mov x21, #0\n"
	"	mov x22, #0\n"
	"	mov x23, #0\n"
	"	mov x24, #0\n"
	"	mov x25, #0\n"
	"	mov x26, #0\n"
	"	mov x27, #0\n"
	"	mov x28, #0\n"
	"	mov x29, #0\n"
	"	mov x30, #0\n"
	"	br x16\n"
	".size kbox_enter_asm, .-kbox_enter_asm\n");

// Direct entry from patched sites is x86-64's so far (guest_amd64.c): on
// arm64 a call the fast path does not serve traps.
int kbox_direct_init(void) { return ENOSYS; }
