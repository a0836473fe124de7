//go:build cgo && linux && amd64

// x86-64's primitives for guest.c: raw syscalls, the FS base (the thread
// pointer), the interrupted instruction pointer, the blocking-syscall stub
// and the entry into the guest. Built like guest.c: no TLS, no stack
// protector.

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <asm/prctl.h>
#include <ucontext.h>

#define KBOX_GUEST_INTERNAL
#include "guest.h"
#include "_cgo_export.h"

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

void kbox_arch_init(uint64_t hwcap2) {
	kbox_gs.fsgsbase = (hwcap2 & 2) != 0; // HWCAP2_FSGSBASE
	// Without FSGSBASE the guest changes its FS base only through
	// arch_prctl, which kbox serves (sysArchPrctl keeps guest_tp): reading
	// it back at each entry would be an arch_prctl (a read of the MSR, on
	// a paravirtualized machine a third of a trap's cost) for nothing. A
	// guest that loads a segment selector into %fs to zero its base gets
	// its old base back at the next entry; kbox's own is set regardless.
	kbox_tp_tracked = !kbox_gs.fsgsbase;
}

static const int kbox_arg_regs[6] = {REG_RDI, REG_RSI, REG_RDX, REG_R10, REG_R8, REG_R9};

long kbox_uc_arg(ucontext_t *uc, int i) { return uc->uc_mcontext.gregs[kbox_arg_regs[i]]; }

void kbox_uc_set_ret(ucontext_t *uc, long v) { uc->uc_mcontext.gregs[REG_RAX] = v; }

// The guarded guest-memory copies (guest.h). Only the load of
// kbox_gcopy_str and the store of kbox_gcopy_out touch guest memory; a
// fault there is sent on to kbox_gcopy_fault by the fault handler
// (guest.c), with the stack as at entry, so its ret returns -2 to the
// caller. Byte by byte, and no vector register: the rewrite tier's fast
// path calls these with the guest's vector state live.
__asm__(".text\n"
	".globl kbox_gcopy_str\n"
	".type kbox_gcopy_str,@function\n"
	"kbox_gcopy_str:\n"
	"	xor %eax, %eax\n"
	"1:	cmp %rdx, %rax\n"
	"	jae 3f\n"
	".globl kbox_gcopy_load\n"
	"kbox_gcopy_load:\n"
	"	movzbl (%rsi,%rax), %ecx\n"
	"	mov %cl, (%rdi,%rax)\n"
	"	test %cl, %cl\n"
	"	jz 2f\n"
	"	inc %rax\n"
	"	jmp 1b\n"
	"2:	ret\n"
	"3:	mov $-1, %rax\n"
	"	ret\n"
	".size kbox_gcopy_str, .-kbox_gcopy_str\n"
	".globl kbox_gcopy_out\n"
	".type kbox_gcopy_out,@function\n"
	"kbox_gcopy_out:\n"
	"	xor %eax, %eax\n"
	"1:	cmp %rdx, %rax\n"
	"	jae 2f\n"
	"	movzbl (%rsi,%rax), %ecx\n"
	".globl kbox_gcopy_store\n"
	"kbox_gcopy_store:\n"
	"	mov %cl, (%rdi,%rax)\n"
	"	inc %rax\n"
	"	jmp 1b\n"
	"2:	xor %eax, %eax\n"
	"	ret\n"
	".globl kbox_gcopy_fault\n"
	"kbox_gcopy_fault:\n"
	"	mov $-2, %rax\n"
	"	ret\n"
	".size kbox_gcopy_out, .-kbox_gcopy_out\n");

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

// Direct entry (x86-64): the rewrite tier's signal-free path into kbox. A patched
// site's trampoline enters the fast path (fastpath_amd64.c); a call the
// fast path does not serve comes here instead of trapping. The guest's
// registers are saved into a frame laid out as the kernel's signal frame
// (kbox_dframe: the rt_sigframe's return-address slot, then the ucontext),
// its FPU/SSE/AVX state into kbox_xarea with xsave (the kernel's signal
// frame format, sw_reserved filled in by kbox_direct_init), and the call is
// served by the same Go entry as a trap (kboxTrap), on stack D (carved from
// this thread's stack, so Go's view of the C stack holds). The syscall
// instruction's own effects are kept: rcx holds the return address and r11
// the flags, and the condition flags are not preserved (the fast path
// already compares).
//
// Two ways back. When the call left every register but rax as it was, the
// registers are reloaded and `jmp *%rcx` returns. When it set registers
// (a guest signal handler entered, rt_sigreturn, execve, a restarted call)
// or was rt_sigreturn (whose FPU state came from guest memory and must be
// checked by the kernel, not loaded by xrstor here), SIGSYS is blocked and
// the kernel's rt_sigreturn loads the frame: every register, the FPU state,
// the signal mask (SIGSYS unblocked again) and the alternate stack A.
//
// Kicks (SIGSYS sent to deliver a guest signal) are handled as on the trap
// path: while kbox_gs.in_guest is 0 a kick only sets kbox_kicked; kbox_direct
// serves the flagged ones before returning, and the last instructions of
// the fast way back, which run with in_guest set again, re-enter with a
// kick when one landed in between. Only one guest thread exists and guest
// code never runs while the frame or D is live, so neither needs to be
// reentrant: a kick taken as a guest interruption happens either before
// the frame is written or after every register is back.

#define KBOX_DF_GREGS 48 // offsetof(struct kbox_dframe, uc.uc_mcontext.gregs)
#define KBOX_GS_IN_GUEST 32

struct kbox_dframe {
	uint64_t pretcode; // the slot rt_sigreturn expects below the ucontext
	ucontext_t uc;	   // the kernel's struct ucontext is its first 304 bytes
};
_Static_assert(offsetof(struct kbox_dframe, uc.uc_mcontext.gregs) == KBOX_DF_GREGS, "gregs offset");
_Static_assert(offsetof(struct kbox_guest_state, in_guest) == KBOX_GS_IN_GUEST, "in_guest offset");
_Static_assert(offsetof(ucontext_t, uc_sigmask) == 296, "uc_sigmask offset");

struct kbox_dframe kbox_dframe __attribute__((aligned(64)));
static uint8_t kbox_xarea[KBOX_XAREA_MAX] __attribute__((aligned(64)));
volatile char kbox_direct_kick;
char kbox_direct_xsave;

// The kernel's software-reserved bytes of an extended FPU frame
// (asm/sigcontext.h struct _fpx_sw_bytes), at offset 464 of the legacy area.
#define FP_XSTATE_MAGIC1 0x46505853U
#define FP_XSTATE_MAGIC2 0x46505845U
struct fpx_sw_bytes {
	uint32_t magic1, extended_size;
	uint64_t xfeatures;
	uint32_t xstate_size, padding[7];
};

// kbox_direct_init prepares the FPU frame; it returns an errno when direct
// entry cannot be used (the tier then traps as before).
int kbox_direct_init(void) {
	unsigned a, b, c, d;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
	if (!(c & (1U << 27))) { // OSXSAVE: fxsave's 512 bytes only
		kbox_direct_xsave = 0;
		return 0;
	}
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0xd), "c"(0));
	uint32_t size = b; // for the features enabled in XCR0
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	if (size < 576 || size + 4 > sizeof kbox_xarea)
		return EOVERFLOW;
	struct fpx_sw_bytes sw = {.magic1 = FP_XSTATE_MAGIC1, .extended_size = size + 4,
				  .xfeatures = (uint64_t)hi << 32 | lo, .xstate_size = size};
	memcpy(kbox_xarea + 464, &sw, sizeof sw);
	uint32_t m2 = FP_XSTATE_MAGIC2;
	memcpy(kbox_xarea + size, &m2, 4);
	kbox_direct_xsave = 1;
	return 0;
}

// direct_before holds the frame's registers as the guest left them, for
// direct_regs_changed: did the call set any but rax (kbox_direct_serve)?
static greg_t direct_before[NGREG];

static int direct_regs_changed(void) {
	greg_t *g = kbox_dframe.uc.uc_mcontext.gregs;
	for (int i = 0; i < NGREG; i++)
		if (i != REG_RAX && g[i] != direct_before[i])
			return 1;
	return 0;
}

// kbox_direct serves the call saved in kbox_dframe; it runs on stack D and
// is entered with the guest's FS base. It returns 1 when the frame must be
// loaded by rt_sigreturn (SIGSYS is then blocked), 0 for the fast way back.
int kbox_direct(void) {
	// With FSGSBASE the guest may have moved its FS base by wrfsbase,
	// which kbox never sees: keep it, as leave_guest does for a trap.
	if (!kbox_tp_tracked)
		kbox_gs.guest_tp = kbox_get_tp();
	kbox_set_tp(kbox_gs.host_tp);
	// A stays armed and idle during a direct call: a fault in Go code is
	// delivered there, on no live frame (see kbox_arm_fault_stack).
	kbox_fault_stack_armed = 1;
	ucontext_t *uc = &kbox_dframe.uc;
	greg_t *g = uc->uc_mcontext.gregs;
	g[REG_CSGSFS] = 0x002b000000000033; // cs __USER_CS, ss __USER_DS
	g[REG_ERR] = g[REG_TRAPNO] = g[REG_OLDMASK] = g[REG_CR2] = 0;
	uc->uc_mcontext.fpregs = (fpregset_t)kbox_xarea;
	int kick = kbox_direct_kick;
	kbox_direct_kick = 0;
	long nr = g[REG_RAX];
	memcpy(direct_before, g, sizeof direct_before);
	int slow = kbox_direct_serve(uc, kick, nr, g[REG_RSI], g[REG_RDX], direct_regs_changed);
	kbox_set_tp(kbox_gs.guest_tp);
	return slow;
}

#define DG(i) "kbox_dframe+" KBOX_STR(KBOX_DF_GREGS) "+8*" #i "(%rip)"
#define IN_GUEST "kbox_gs+" KBOX_STR(KBOX_GS_IN_GUEST) "(%rip)"
// Register indexes in gregs: r8..r15 0-7, rdi 8, rsi 9, rbp 10, rbx 11,
// rdx 12, rax 13, rcx 14, rsp 15, rip 16, eflags 17.
__asm__(".text\n"
	".globl kbox_direct_entry\n"
	".type kbox_direct_entry,@function\n"
	"kbox_direct_entry:\n"
	"	movl $0, " IN_GUEST "\n"
	"kbox_direct_save:\n"
	"	mov %r8, " DG(0) "\n"
	"	mov %r9, " DG(1) "\n"
	"	mov %r10, " DG(2) "\n"
	"	mov %r12, " DG(4) "\n"
	"	mov %r13, " DG(5) "\n"
	"	mov %r14, " DG(6) "\n"
	"	mov %r15, " DG(7) "\n"
	"	mov %rdi, " DG(8) "\n"
	"	mov %rsi, " DG(9) "\n"
	"	mov %rbp, " DG(10) "\n"
	"	mov %rbx, " DG(11) "\n"
	"	mov %rdx, " DG(12) "\n"
	"	mov %rax, " DG(13) "\n"
	"	mov %rcx, " DG(14) "\n"
	"	mov %rsp, " DG(15) "\n"
	"	mov %rcx, " DG(16) "\n"
	"	mov kbox_direct_stack(%rip), %rsp\n"
	"	pushfq\n"
	"	pop %r11\n"
	"	mov %r11, " DG(17) "\n"
	"	mov %r11, " DG(3) "\n"
	"	mov $-1, %eax\n"
	"	mov $-1, %edx\n"
	"	lea kbox_xarea(%rip), %rbx\n"
	"	cmpb $0, kbox_direct_xsave(%rip)\n"
	"	je 1f\n"
	"	xsave64 (%rbx)\n"
	"	jmp 2f\n"
	"1:	fxsave64 (%rbx)\n"
	"2:	call kbox_direct\n"
	"	test %eax, %eax\n"
	"	jnz 5f\n"
	"	lea kbox_xarea(%rip), %rbx\n"
	"	mov $-1, %eax\n"
	"	mov $-1, %edx\n"
	"	cmpb $0, kbox_direct_xsave(%rip)\n"
	"	je 3f\n"
	"	xrstor64 (%rbx)\n"
	"	jmp 4f\n"
	"3:	fxrstor64 (%rbx)\n"
	"4:	mov " DG(0) ", %r8\n"
	"	mov " DG(1) ", %r9\n"
	"	mov " DG(2) ", %r10\n"
	"	mov " DG(3) ", %r11\n"
	"	mov " DG(4) ", %r12\n"
	"	mov " DG(5) ", %r13\n"
	"	mov " DG(6) ", %r14\n"
	"	mov " DG(7) ", %r15\n"
	"	mov " DG(8) ", %rdi\n"
	"	mov " DG(9) ", %rsi\n"
	"	mov " DG(10) ", %rbp\n"
	"	mov " DG(11) ", %rbx\n"
	"	mov " DG(12) ", %rdx\n"
	"	mov " DG(13) ", %rax\n"
	"	mov " DG(16) ", %rcx\n"
	"	mov " DG(15) ", %rsp\n"
	"	movl $1, " IN_GUEST "\n"
	"	cmpb $0, kbox_kicked(%rip)\n"
	"	jne 6f\n"
	"	jmp *%rcx\n"
	"5:	lea kbox_dframe+8(%rip), %rsp\n" // rt_sigreturn reads the ucontext at rsp
	"	movl $1, " IN_GUEST "\n"	     // SIGSYS is blocked until it returns
	"	mov $" KBOX_STR(SYS_rt_sigreturn) ", %eax\n"
	"	syscall\n"
	"	ud2\n"
	"6:	movl $0, " IN_GUEST "\n" // a kick landed on the way back
	"	movb $1, kbox_direct_kick(%rip)\n"
	"	jmp kbox_direct_save\n"
	".size kbox_direct_entry, .-kbox_direct_entry\n");
