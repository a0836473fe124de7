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

long kbox_uc_arg(ucontext_t *uc, int i) { return uc->uc_mcontext.regs[i]; }

void kbox_uc_set_ret(ucontext_t *uc, long v) { uc->uc_mcontext.regs[0] = v; }

// The guarded guest-memory copies (guest.h). Only the load of
// kbox_gcopy_str and the store of kbox_gcopy_out touch guest memory; a
// fault there is sent on to kbox_gcopy_fault by the fault handler
// (guest.c), with x30 as at entry, so its ret returns -2 to the caller.
// Byte by byte, in x0..x4 only: the rewrite tier's fast path saves no
// other register around them.
__asm__(".text\n"
	".globl kbox_gcopy_str\n"
	".type kbox_gcopy_str,%function\n"
	"kbox_gcopy_str:\n"
	"	mov x3, #0\n"
	"1:	cmp x3, x2\n"
	"	b.hs 3f\n"
	".globl kbox_gcopy_load\n"
	"kbox_gcopy_load:\n"
	"	ldrb w4, [x1, x3]\n"
	"	strb w4, [x0, x3]\n"
	"	cbz w4, 2f\n"
	"	add x3, x3, #1\n"
	"	b 1b\n"
	"2:	mov x0, x3\n"
	"	ret\n"
	"3:	mov x0, #-1\n"
	"	ret\n"
	".size kbox_gcopy_str, .-kbox_gcopy_str\n"
	".globl kbox_gcopy_out\n"
	".type kbox_gcopy_out,%function\n"
	"kbox_gcopy_out:\n"
	"	mov x3, #0\n"
	"1:	cmp x3, x2\n"
	"	b.hs 2f\n"
	"	ldrb w4, [x1, x3]\n"
	".globl kbox_gcopy_store\n"
	"kbox_gcopy_store:\n"
	"	strb w4, [x0, x3]\n"
	"	add x3, x3, #1\n"
	"	b 1b\n"
	"2:	mov x0, #0\n"
	"	ret\n"
	".globl kbox_gcopy_fault\n"
	"kbox_gcopy_fault:\n"
	"	mov x0, #-2\n"
	"	ret\n"
	".size kbox_gcopy_out, .-kbox_gcopy_out\n");

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

// Direct entry (arm64): the rewrite tier's signal-free path into kbox, by
// x86-64's rules (guest_amd64.c). A patched site's slot enters the fast
// path (fastpath_arm64.c) with x17 = the slot's own svc; a call the fast
// path does not serve comes here instead of taking that svc. The guest's
// registers are saved into kbox_dframe, laid out as the kernel's signal
// frame (struct rt_sigframe at a 16-byte aligned sp: a siginfo, then the
// ucontext): x0..x30, sp, pc (x17 + 4, the instruction after the slot's
// svc, where the kernel reports a trap of that svc), pstate (the condition
// flags as the fast path left them, and the PSTATE fields EL0 can read:
// SSBS, DIT, TCO where present), and in __reserved the FP/SIMD record
// (magic 0x46508001, 528 bytes: fpsr, fpcr, v0..v31) and the empty record
// that ends the list. No ESR record (no fault) and no SVE record: what SVE
// adds to the V registers does not survive a syscall either (the kernel
// discards it at svc; on the fast way back the V reloads zero the Z
// registers' upper bits, and only the predicate registers and FFR keep
// values a real svc would zero). TPIDR_EL0 is read at every entry (the guest sets it
// with msr, no syscall) and put back on the way out, as on the trap path.
// The call is served by the same Go entry as a trap (kboxTrap), on stack D
// (carved from this thread's stack, so Go's view of the C stack holds).
//
// Two ways back. When the call left every register but x0 as it was (x1..
// x30, sp, pc, pstate), the FP/SIMD and general registers are reloaded and
// `br x16` goes to the slot's resume (`ldr x16, back; br x16`: x16 and x17
// are dead there, the planner's condition for a site; x17 is left as the
// slot's svc, as a re-entry expects). When it set registers (a guest
// signal handler entered, rt_sigreturn, execve, a restarted call) or was
// rt_sigreturn (whose FP/SIMD state came from guest memory and must be
// checked by the kernel, never loaded by kbox code), SIGSYS is blocked and
// the kernel's rt_sigreturn loads the frame: every register, the FP/SIMD
// state, the signal mask (SIGSYS unblocked again) and the alternate stack
// A.
//
// Kicks are handled as on x86-64: while kbox_gs.in_guest is 0 a kick only
// sets kbox_kicked; kbox_direct serves the flagged ones before returning,
// and the last instructions of the fast way back, which run with in_guest
// set again, re-enter with a kick when one landed in between. One guest
// thread exists and guest code never runs while the frame or D is live.

#include <stddef.h>
#include <string.h>
#include <sys/auxv.h>
#include "_cgo_export.h"

#define KBOX_DF_REGS 312   // offsetof(struct kbox_dframe, uc.uc_mcontext.regs)
#define KBOX_DF_SP 560	   // ... sp, pc, pstate follow regs[30]
#define KBOX_DF_PC 568
#define KBOX_DF_PSTATE 576
#define KBOX_DF_RESERVED 592 // __reserved: the FP/SIMD record first
#define KBOX_DF_VREGS 608    // its v0..v31
#define KBOX_GS_IN_GUEST 32

struct kbox_dframe {
	uint8_t info[128]; // struct rt_sigframe's siginfo
	ucontext_t uc;	   // glibc's ucontext_t is the kernel's struct ucontext
};

// The FP/SIMD record (asm/sigcontext.h struct fpsimd_context).
struct kbox_fpsimd {
	uint32_t magic, size, fpsr, fpcr;
	__uint128_t vregs[32];
};
#define KBOX_FPSIMD_MAGIC 0x46508001

_Static_assert(sizeof(ucontext_t) == 4560, "ucontext size");
_Static_assert(offsetof(struct kbox_dframe, uc.uc_mcontext.regs) == KBOX_DF_REGS, "regs offset");
_Static_assert(offsetof(struct kbox_dframe, uc.uc_mcontext.sp) == KBOX_DF_SP, "sp offset");
_Static_assert(offsetof(struct kbox_dframe, uc.uc_mcontext.pc) == KBOX_DF_PC, "pc offset");
_Static_assert(offsetof(struct kbox_dframe, uc.uc_mcontext.pstate) == KBOX_DF_PSTATE, "pstate offset");
_Static_assert(offsetof(struct kbox_dframe, uc.uc_mcontext.__reserved) == KBOX_DF_RESERVED, "__reserved offset");
_Static_assert(KBOX_DF_RESERVED + offsetof(struct kbox_fpsimd, vregs) == KBOX_DF_VREGS, "vregs offset");
_Static_assert(sizeof(struct kbox_fpsimd) == 528, "fpsimd_context size");
_Static_assert(offsetof(ucontext_t, uc_sigmask) == 40, "uc_sigmask offset");
// The entry's stores address sp, pc and pstate past regs[30].
_Static_assert(KBOX_DF_SP - KBOX_DF_REGS == 248 && KBOX_DF_PC - KBOX_DF_REGS == 256 &&
		       KBOX_DF_PSTATE - KBOX_DF_REGS == 264, "sp, pc, pstate after regs");
_Static_assert(offsetof(struct kbox_guest_state, in_guest) == KBOX_GS_IN_GUEST, "in_guest offset");

struct kbox_dframe kbox_dframe __attribute__((aligned(64)));

// PSTATE fields EL0 reads with mrs, where the CPU has them (SPSR bit
// positions): SSBS, DIT, MTE's TCO.
#define PSR_NZCV 0xf0000000ULL
#define PSR_SSBS (1ULL << 12)
#define PSR_DIT (1ULL << 24)
#define PSR_TCO (1ULL << 25)
static uint64_t pstate_fields;

// kbox_direct_init writes the frame's record list (the FP/SIMD record,
// whose registers each entry stores, then the empty record that ends the
// list) and notes which PSTATE fields this CPU has.
int kbox_direct_init(void) {
	struct kbox_fpsimd *fp = (struct kbox_fpsimd *)kbox_dframe.uc.uc_mcontext.__reserved;
	fp->magic = KBOX_FPSIMD_MAGIC;
	fp->size = sizeof *fp;
	memset(kbox_dframe.uc.uc_mcontext.__reserved + sizeof *fp, 0, 16);
	unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
	pstate_fields = 0;
	if (hw & (1UL << 28)) // HWCAP_SSBS
		pstate_fields |= PSR_SSBS;
	if (hw & (1UL << 24)) // HWCAP_DIT
		pstate_fields |= PSR_DIT;
	if (hw2 & (1UL << 18)) // HWCAP2_MTE
		pstate_fields |= PSR_TCO;
	return 0;
}

static uint64_t read_pstate_fields(void) {
	uint64_t v = 0, x;
	if (pstate_fields & PSR_SSBS) {
		__asm__ volatile("mrs %0, s3_3_c4_c2_6" : "=r"(x)); // SSBS
		v |= x & PSR_SSBS;
	}
	if (pstate_fields & PSR_DIT) {
		__asm__ volatile("mrs %0, s3_3_c4_c2_5" : "=r"(x)); // DIT
		v |= x & PSR_DIT;
	}
	if (pstate_fields & PSR_TCO) {
		__asm__ volatile("mrs %0, s3_3_c4_c2_7" : "=r"(x)); // TCO
		v |= x & PSR_TCO;
	}
	return v;
}

// The words compared before and after the call: x1..x30, sp, pc, pstate
// (direct_regs_changed: did the call set any but x0? kbox_direct_serve).
#define KBOX_DF_KEPT 33
static uint64_t direct_before[KBOX_DF_KEPT];

static int direct_regs_changed(void) {
	return memcmp(direct_before, &kbox_dframe.uc.uc_mcontext.regs[1], sizeof direct_before) != 0;
}

// kbox_direct serves the call saved in kbox_dframe (kick: the call was
// served already, a kick landed on the way back); it runs on stack D and
// is entered with the guest's TPIDR_EL0. It returns 1 when the frame must
// be loaded by rt_sigreturn (SIGSYS is then blocked), 0 for the fast way
// back.
int kbox_direct(int kick) {
	kbox_gs.guest_tp = kbox_get_tp();
	kbox_set_tp(kbox_gs.host_tp);
	// A stays armed and idle during a direct call: a fault in Go code is
	// delivered there, on no live frame (see kbox_arm_fault_stack).
	kbox_fault_stack_armed = 1;
	ucontext_t *uc = &kbox_dframe.uc;
	mcontext_t *m = &uc->uc_mcontext;
	m->fault_address = 0;
	m->pstate = (m->pstate & PSR_NZCV) | read_pstate_fields();
	long nr = (long)m->regs[8];
	memcpy(direct_before, &m->regs[1], sizeof direct_before);
	int slow = kbox_direct_serve(uc, kick, nr, (long)m->regs[1], (long)m->regs[2], direct_regs_changed);
	kbox_set_tp(kbox_gs.guest_tp);
	return slow;
}

#define DF_REGS KBOX_STR(KBOX_DF_REGS)
#define DF_V KBOX_STR(KBOX_DF_VREGS) "-" KBOX_STR(KBOX_DF_REGS) // v0 past regs
#define IN_GUEST "kbox_gs+" KBOX_STR(KBOX_GS_IN_GUEST)
// DIRECT_SAVE stores the guest's registers with x17 = the slot's svc and
// x16 free. x16 is the frame's base: regs at 0 (x0..x30 at 8*i), sp 248,
// pc 256, pstate 264; then it moves to v0 (DF_V past it), with fpsr and
// fpcr just below.
#define DIRECT_SAVE \
	"	adrp x16, kbox_dframe\n" \
	"	add x16, x16, :lo12:kbox_dframe\n" \
	"	add x16, x16, #" DF_REGS "\n" \
	"	stp x0, x1, [x16, #0]\n" \
	"	stp x2, x3, [x16, #16]\n" \
	"	stp x4, x5, [x16, #32]\n" \
	"	stp x6, x7, [x16, #48]\n" \
	"	stp x8, x9, [x16, #64]\n" \
	"	stp x10, x11, [x16, #80]\n" \
	"	stp x12, x13, [x16, #96]\n" \
	"	stp x14, x15, [x16, #112]\n" \
	"	stp xzr, x17, [x16, #128]\n" /* x16: scratch */ \
	"	stp x18, x19, [x16, #144]\n" \
	"	stp x20, x21, [x16, #160]\n" \
	"	stp x22, x23, [x16, #176]\n" \
	"	stp x24, x25, [x16, #192]\n" \
	"	stp x26, x27, [x16, #208]\n" \
	"	stp x28, x29, [x16, #224]\n" \
	"	mov x0, sp\n" \
	"	stp x30, x0, [x16, #240]\n" \
	"	add x0, x17, #4\n" \
	"	mrs x1, nzcv\n" \
	"	stp x0, x1, [x16, #256]\n" \
	"	add x16, x16, #" DF_V "\n" \
	"	mrs x0, fpsr\n" \
	"	mrs x1, fpcr\n" \
	"	stp w0, w1, [x16, #-8]\n" \
	"	stp q0, q1, [x16, #0]\n" \
	"	stp q2, q3, [x16, #32]\n" \
	"	stp q4, q5, [x16, #64]\n" \
	"	stp q6, q7, [x16, #96]\n" \
	"	stp q8, q9, [x16, #128]\n" \
	"	stp q10, q11, [x16, #160]\n" \
	"	stp q12, q13, [x16, #192]\n" \
	"	stp q14, q15, [x16, #224]\n" \
	"	stp q16, q17, [x16, #256]\n" \
	"	stp q18, q19, [x16, #288]\n" \
	"	stp q20, q21, [x16, #320]\n" \
	"	stp q22, q23, [x16, #352]\n" \
	"	stp q24, q25, [x16, #384]\n" \
	"	stp q26, q27, [x16, #416]\n" \
	"	stp q28, q29, [x16, #448]\n" \
	"	stp q30, q31, [x16, #480]\n"
// The fast way back sets in_guest again once every register but x16 and
// x17 is the guest's, and from then on reads nothing from the frame: a
// kick landing there interrupts the guest, and a handler it runs may
// enter directly itself, over the frame. So the resume address waits in
// x17 and in_guest gets a nonzero value without a third register: the
// low 32 bits of in_guest's address plus one, odd (C code only tests it
// for zero).
__asm__(".text\n"
	".globl kbox_direct_entry\n"
	".type kbox_direct_entry,%function\n"
	"kbox_direct_entry:\n"
	"	adrp x16, " IN_GUEST "\n"
	"	str wzr, [x16, :lo12:" IN_GUEST "]\n"
	DIRECT_SAVE
	"	mov w0, #0\n" // a call
	"1:	adrp x1, kbox_direct_stack\n"
	"	ldr x1, [x1, :lo12:kbox_direct_stack]\n"
	"	mov sp, x1\n"
	"	mov x29, #0\n" // no frame record above this one
	"	bl kbox_direct\n"
	"	cbnz w0, 5f\n"
	"	adrp x16, kbox_dframe\n"
	"	add x16, x16, :lo12:kbox_dframe\n"
	"	add x16, x16, #" KBOX_STR(KBOX_DF_VREGS) "\n"
	"	ldp q0, q1, [x16, #0]\n"
	"	ldp q2, q3, [x16, #32]\n"
	"	ldp q4, q5, [x16, #64]\n"
	"	ldp q6, q7, [x16, #96]\n"
	"	ldp q8, q9, [x16, #128]\n"
	"	ldp q10, q11, [x16, #160]\n"
	"	ldp q12, q13, [x16, #192]\n"
	"	ldp q14, q15, [x16, #224]\n"
	"	ldp q16, q17, [x16, #256]\n"
	"	ldp q18, q19, [x16, #288]\n"
	"	ldp q20, q21, [x16, #320]\n"
	"	ldp q22, q23, [x16, #352]\n"
	"	ldp q24, q25, [x16, #384]\n"
	"	ldp q26, q27, [x16, #416]\n"
	"	ldp q28, q29, [x16, #448]\n"
	"	ldp q30, q31, [x16, #480]\n"
	"	ldp w0, w1, [x16, #-8]\n"
	"	msr fpsr, x0\n"
	"	msr fpcr, x1\n"
	"	sub x16, x16, #" DF_V "\n"
	"	ldp x0, x1, [x16, #256]\n" // pc, pstate
	"	mov x17, x0\n"
	"	and x1, x1, #0xf0000000\n"
	"	msr nzcv, x1\n"
	"	ldr x0, [x16, #248]\n"
	"	mov sp, x0\n"
	"	ldp x0, x1, [x16, #0]\n"
	"	ldp x2, x3, [x16, #16]\n"
	"	ldp x4, x5, [x16, #32]\n"
	"	ldp x6, x7, [x16, #48]\n"
	"	ldp x8, x9, [x16, #64]\n"
	"	ldp x10, x11, [x16, #80]\n"
	"	ldp x12, x13, [x16, #96]\n"
	"	ldp x14, x15, [x16, #112]\n"
	"	ldp x18, x19, [x16, #144]\n"
	"	ldp x20, x21, [x16, #160]\n"
	"	ldp x22, x23, [x16, #176]\n"
	"	ldp x24, x25, [x16, #192]\n"
	"	ldp x26, x27, [x16, #208]\n"
	"	ldp x28, x29, [x16, #224]\n"
	"	ldr x30, [x16, #240]\n"
	"	adrp x16, " IN_GUEST "+1\n"
	"	add x16, x16, :lo12:" IN_GUEST "+1\n"
	"	stur w16, [x16, #-1]\n" // in_guest: odd, so not zero
	"	adrp x16, kbox_kicked\n"
	"	ldrb w16, [x16, :lo12:kbox_kicked]\n"
	"	cbnz w16, 6f\n"
	"	mov x16, x17\n"
	"	sub x17, x17, #4\n" // the slot's svc, as at entry
	"	br x16\n"
	"5:	adrp x16, kbox_dframe\n" // rt_sigreturn reads the rt_sigframe at sp
	"	add x16, x16, :lo12:kbox_dframe\n"
	"	mov sp, x16\n"
	"	adrp x16, " IN_GUEST "+1\n"
	"	add x16, x16, :lo12:" IN_GUEST "+1\n"
	"	stur w16, [x16, #-1]\n" // SIGSYS is blocked until it returns
	"	mov x8, #" KBOX_STR(SYS_rt_sigreturn) "\n"
	"	svc #0\n"
	"	brk #0\n"
	"6:	adrp x16, " IN_GUEST "\n" // a kick landed on the way back
	"	str wzr, [x16, :lo12:" IN_GUEST "]\n"
	"	sub x17, x17, #4\n"
	DIRECT_SAVE
	"	mov w0, #1\n" // a kick: the call was served
	"	b 1b\n"
	".size kbox_direct_entry, .-kbox_direct_entry\n");

// The frame and its ucontext (for the tests).
void *kbox_direct_frame(void) { return &kbox_dframe; }
void *kbox_direct_uc(void) { return &kbox_dframe.uc; }
