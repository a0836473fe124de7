//go:build cgo && linux && arm64

// The rewrite tier's fast path on arm64. A patched svc site branches to
// its slot (internal/rewrite's arm64.go), which loads the fast path's
// entry into x16 and the address of its own trapping `svc #0` into x17 and
// branches here with the guest's registers otherwise intact: the number in
// x8, the arguments in x0..x5. x16 and x17 (IP0, IP1) are the registers
// any AAPCS64 branch veneer may clobber, and the planner patches only
// sites after which both are dead.
//
// As on x86-64 (fastpath_amd64.c), which calls run here is data:
// kbox_fast_kind[nr] is the policy table's Fast column. A hit returns to
// x17+4 (the slot's `ldr x16, back; br x16`) with the result in x0; a miss
// goes to direct entry (guest_arm64.c), which serves it through the trap
// tier's Go entry without a signal, or, before direct entry is on,
// branches to x17, the slot's svc, which traps like any guest syscall. The
// FAST_FD and FAST_FSTAT svc below is the one the interception filter lets
// through for those numbers; the FAST_NATIVE one is kbox code to the
// filter (the backstop). Linux/arm64 has no red zone: the fast path saves
// x17 just below the guest's sp. It touches no TLS (TPIDR_EL0 is the
// guest's here).
//
// kbox_fast_cancel_entry is the entry of the cancel slots (musl's promoted
// cancellation wrappers, which moved the number from x6 to x8): it counts
// the call and goes on as kbox_fast_any.

#include <stdint.h>

#include "guest.h"

int32_t kbox_fdmap[KBOX_FDMAP_SIZE];
int32_t kbox_fast_pid;
int32_t kbox_fast_fstat;
uint8_t kbox_fast_kind[KBOX_FAST_NR];
uint64_t kbox_fast_hits, kbox_fast_misses, kbox_fast_cancel;

// KBOX_INC(sym) adds one to the 64-bit counter sym with x16 as scratch and
// x17 saved around it.
#define KBOX_INC(sym)                               \
	"	str x17, [sp, #-16]!\n"                \
	"	adrp x16, " #sym "\n"                  \
	"	ldr x17, [x16, :lo12:" #sym "]\n"      \
	"	add x17, x17, #1\n"                    \
	"	str x17, [x16, :lo12:" #sym "]\n"      \
	"	ldr x17, [sp], #16\n"

__asm__(".text\n"
	".globl kbox_fast_cancel_entry\n"
	".type kbox_fast_cancel_entry,%function\n"
	"kbox_fast_cancel_entry:\n"
	KBOX_INC(kbox_fast_cancel)
	".size kbox_fast_cancel_entry, .-kbox_fast_cancel_entry\n"
	".globl kbox_fast_any\n"
	".type kbox_fast_any,%function\n"
	"kbox_fast_any:\n"
	"	cmp x8, #" KBOX_STR(KBOX_FAST_NR) "\n"
	"	b.hs 90f\n"
	"	adrp x16, kbox_fast_kind\n"
	"	add x16, x16, :lo12:kbox_fast_kind\n"
	"	ldrb w16, [x16, x8]\n"
	"	cmp w16, #" KBOX_STR(KBOX_FAST_FD) "\n"
	"	b.eq 10f\n"
	"	cmp w16, #" KBOX_STR(KBOX_FAST_FSTAT) "\n"
	"	b.eq 20f\n"
	"	cmp w16, #" KBOX_STR(KBOX_FAST_PID) "\n"
	"	b.eq 30f\n" // getpid, gettid: the guest is one thread
	"	cmp w16, #" KBOX_STR(KBOX_FAST_NATIVE) "\n"
	"	b.eq 40f\n" // getppid: native, no descriptor
	"	cmp w16, #" KBOX_STR(KBOX_FAST_STAT) "\n"
	"	b.eq 50f\n" // a path stat: the stat cache (statcache.c)
	"	b 90f\n"
	"20:	adrp x16, kbox_fast_fstat\n"
	"	ldr w16, [x16, :lo12:kbox_fast_fstat]\n"
	"	cbz w16, 90f\n"
	"10:	str x17, [sp, #-16]!\n"
	"	mov w16, w0\n" // the descriptor is an int
	"	cmp x16, #16, lsl #12\n" // KBOX_FDMAP_SIZE
	"	b.hs 80f\n"
	"	adrp x17, kbox_fdmap\n"
	"	add x17, x17, :lo12:kbox_fdmap\n"
	"	ldr w17, [x17, x16, lsl #2]\n"
	"	cbz w17, 80f\n"
	"	sub x0, x17, #1\n"
	"	svc #0\n"
	".globl kbox_fast_syscall_end\n"
	"kbox_fast_syscall_end:\n"
	"	adrp x16, kbox_fast_hits\n"
	"	ldr x17, [x16, :lo12:kbox_fast_hits]\n"
	"	add x17, x17, #1\n"
	"	str x17, [x16, :lo12:kbox_fast_hits]\n"
	"	ldr x17, [sp], #16\n"
	"	add x17, x17, #4\n"
	"	br x17\n"
	"40:	svc #0\n"
	KBOX_INC(kbox_fast_hits)
	"	add x17, x17, #4\n"
	"	br x17\n"
	"30:	adrp x16, kbox_fast_pid\n"
	"	ldr w0, [x16, :lo12:kbox_fast_pid]\n"
	KBOX_INC(kbox_fast_hits)
	"	add x17, x17, #4\n"
	"	br x17\n"
	// kbox_stat_fast(nr, a0, a1, a2, a3) with every register the C call
	// may clobber saved: x0..x18 and x30 (x16 is scratch here anyway).
	"50:	sub sp, sp, #160\n"
	"	stp x0, x1, [sp, #0]\n"
	"	stp x2, x3, [sp, #16]\n"
	"	stp x4, x5, [sp, #32]\n"
	"	stp x6, x7, [sp, #48]\n"
	"	stp x8, x9, [sp, #64]\n"
	"	stp x10, x11, [sp, #80]\n"
	"	stp x12, x13, [sp, #96]\n"
	"	stp x14, x15, [sp, #112]\n"
	"	stp x17, x18, [sp, #128]\n"
	"	str x30, [sp, #144]\n"
	"	mov x4, x3\n"
	"	mov x3, x2\n"
	"	mov x2, x1\n"
	"	mov x1, x0\n"
	"	mov x0, x8\n"
	"	bl kbox_stat_fast\n"
	"	ldp x2, x3, [sp, #16]\n"
	"	ldp x4, x5, [sp, #32]\n"
	"	ldp x6, x7, [sp, #48]\n"
	"	ldp x8, x9, [sp, #64]\n"
	"	ldp x10, x11, [sp, #80]\n"
	"	ldp x12, x13, [sp, #96]\n"
	"	ldp x14, x15, [sp, #112]\n"
	"	ldp x17, x18, [sp, #128]\n"
	"	ldr x30, [sp, #144]\n"
	"	cmp x0, #" KBOX_STR(KBOX_SC_MISS) "\n"
	"	b.eq 51f\n"
	"	ldr x1, [sp, #8]\n"
	"	add sp, sp, #160\n"
	KBOX_INC(kbox_fast_hits)
	"	add x17, x17, #4\n"
	"	br x17\n"
	"51:	ldp x0, x1, [sp, #0]\n"
	"	add sp, sp, #160\n"
	"	b 90f\n"
	"80:	ldr x17, [sp], #16\n"
	"90:\n"
	KBOX_INC(kbox_fast_misses)
	"	adrp x16, kbox_direct_on\n"
	"	ldrb w16, [x16, :lo12:kbox_direct_on]\n"
	"	cbz w16, 91f\n"
	// Served without a signal (guest_arm64.c); through x16, not a b
	// whose veneer could clobber x17.
	"	adrp x16, kbox_direct_entry\n"
	"	add x16, x16, :lo12:kbox_direct_entry\n"
	"	br x16\n"
	"91:	br x17\n" // the slot's own svc: traps
	".size kbox_fast_any, .-kbox_fast_any\n");

void kbox_fast_any(void);
void kbox_fast_cancel_entry(void);

uint64_t kbox_fast_any_addr(void) { return (uint64_t)(uintptr_t)kbox_fast_any; }

uint64_t kbox_fast_cancel_addr(void) { return (uint64_t)(uintptr_t)kbox_fast_cancel_entry; }

extern char kbox_fast_syscall_end[];

// The address the kernel reports for the fast path's svc (the instruction
// after it): the filter lets it through first thing.
uint64_t kbox_fast_syscall_ip(void) { return (uint64_t)(uintptr_t)kbox_fast_syscall_end; }
