//go:build cgo && linux && amd64

// The guest thread and its signal path, in C because these run where Go
// cannot: on a thread whose FS base is the guest's (so no TLS, no errno, no
// stack protector: the file is built with -fno-stack-protector and makes
// its own syscalls in inline assembly).
//
// One guest thread exists. Its signal handlers run on an alternate stack
// carved from the thread's own pthread stack; a handler knows it is on the
// guest thread when its frame lies on that stack, and knows the guest was
// running when kbox_in_guest is set. Everything else (Go threads, or the
// guest thread while kbox code runs) is chained to the handler Go
// installed before us.

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <asm/prctl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <ucontext.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31) // linux/signal.h, Linux 4.7
#endif
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 // si_code of a seccomp SIGSYS
#endif

#include "guest_amd64.h"
#include "_cgo_export.h"

struct kbox_guest_state kbox_gs;
volatile char kbox_kicked;

static struct sigaction go_sigsegv, go_sigbus, go_sigfpe, go_sigill, go_sigtrap, go_sigsys;

static inline long raw6(long nr, long a, long b, long c, long d, long e, long f) {
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

static inline uint64_t get_fs(void) {
	uint64_t v;
	if (kbox_gs.fsgsbase) {
		__asm__ volatile("rdfsbase %0" : "=r"(v));
		return v;
	}
	raw6(SYS_arch_prctl, ARCH_GET_FS, (long)&v, 0, 0, 0, 0);
	return v;
}

static inline void set_fs(uint64_t v) {
	if (kbox_gs.fsgsbase) {
		__asm__ volatile("wrfsbase %0" ::"r"(v) : "memory");
		return;
	}
	raw6(SYS_arch_prctl, ARCH_SET_FS, (long)v, 0, 0, 0, 0);
}

static inline int on_guest_thread(void) {
	char here;
	uintptr_t sp = (uintptr_t)&here;
	return sp >= kbox_gs.alt_lo && sp < kbox_gs.alt_hi;
}

static void chain(struct sigaction *old, int sig, siginfo_t *si, void *uc) {
	if (old->sa_flags & SA_SIGINFO) {
		if (old->sa_sigaction) {
			old->sa_sigaction(sig, si, uc);
			return;
		}
	} else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
		old->sa_handler(sig);
		return;
	}
	// No handler to chain to: die of the signal as the kernel would.
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	raw6(SYS_rt_sigaction, sig, (long)&dfl, 0, 8, 0, 0);
}

// Blocking host syscalls made on behalf of the guest run here with SIGSYS
// (the kick) unblocked. A kick that lands before the syscall instruction
// executes moves the thread to kbox_bs_eintr, so it cannot be lost between
// the unblock and the sleep; one that lands during the call makes it
// return EINTR (the handler has no SA_RESTART).
extern char kbox_bs_start[], kbox_bs_syscall[], kbox_bs_eintr[];
long kbox_bs_asm(long nr, long a0, long a1, long a2, long a3, long a4, long a5);
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

long kbox_blocking_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
	uint64_t set = 1ULL << (SIGSYS - 1);
	raw6(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&set, 0, 8, 0, 0);
	long r = kbox_bs_asm(nr, a0, a1, a2, a3, a4, a5);
	raw6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&set, 0, 8, 0, 0);
	kbox_kicked = 0;
	return r;
}

// A signal is delivered at the top of the alternate stack unless the
// thread is already running on it. While Go serves a trap, the thread runs
// on a goroutine stack: a fault there (a bad guest pointer, recovered as
// EFAULT by SetPanicOnFault) would be delivered at the top of A, over the
// trap handler's live frame. So before Go touches guest memory, B becomes
// the alternate stack. A is disarmed by then (SS_AUTODISARM), which is what
// allows the change, and the trap's sigreturn restores A.
static stack_t fault_stack;
volatile int kbox_fault_stack_armed; // read by Go too: no cgo call once armed

void kbox_arm_fault_stack(void) {
	if (kbox_fault_stack_armed || fault_stack.ss_size == 0)
		return;
	raw6(SYS_sigaltstack, (long)&fault_stack, 0, 0, 0, 0, 0);
	kbox_fault_stack_armed = 1;
}

static void on_sigsys(int sig, siginfo_t *si, void *ucv) {
	if (!on_guest_thread()) {
		chain(&go_sigsys, sig, si, ucv);
		return;
	}
	ucontext_t *uc = ucv;
	if (!kbox_gs.in_guest) {
		// A kick while kbox code runs: only the blocking stub unblocks
		// SIGSYS. Before its syscall instruction, skip the call.
		uintptr_t ip = uc->uc_mcontext.gregs[REG_RIP];
		kbox_kicked = 1;
		if (ip >= (uintptr_t)kbox_bs_start && ip <= (uintptr_t)kbox_bs_syscall)
			uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)kbox_bs_eintr;
		return;
	}
	kbox_gs.guest_fs = get_fs();
	set_fs(kbox_gs.host_fs);
	kbox_gs.in_guest = 0;
	kbox_fault_stack_armed = 0;
	int kick = si->si_code != SYS_SECCOMP;
	kboxTrap(ucv, kick ? 0 : si->si_syscall, kick);
	kbox_gs.in_guest = 1;
	set_fs(kbox_gs.guest_fs);
}

static void on_fault(int sig, siginfo_t *si, void *ucv) {
	if (!on_guest_thread() || !kbox_gs.in_guest) {
		struct sigaction *old = sig == SIGSEGV ? &go_sigsegv : sig == SIGBUS ? &go_sigbus
								 : sig == SIGFPE ? &go_sigfpe
								 : sig == SIGILL ? &go_sigill
										 : &go_sigtrap;
		chain(old, sig, si, ucv);
		return;
	}
	kbox_gs.guest_fs = get_fs();
	set_fs(kbox_gs.host_fs);
	kbox_gs.in_guest = 0;
	kbox_fault_stack_armed = 0;
	kboxFault(ucv, sig, si);
	kbox_gs.in_guest = 1;
	set_fs(kbox_gs.guest_fs);
}

// Signals the guest thread keeps unblocked while the guest runs: the
// synchronous ones its own code raises, and SIGSYS (traps and kicks).
static void guest_mask(sigset_t *s) {
	sigfillset(s);
	sigdelset(s, SIGSYS);
	sigdelset(s, SIGSEGV);
	sigdelset(s, SIGBUS);
	sigdelset(s, SIGFPE);
	sigdelset(s, SIGILL);
	sigdelset(s, SIGTRAP);
}

static int install(int sig, void (*fn)(int, siginfo_t *, void *), struct sigaction *old) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	// While a handler runs only the synchronous signals get through: a
	// fault in kbox's own code must still reach Go.
	sigfillset(&sa.sa_mask);
	sigdelset(&sa.sa_mask, SIGSEGV);
	sigdelset(&sa.sa_mask, SIGBUS);
	sigdelset(&sa.sa_mask, SIGFPE);
	sigdelset(&sa.sa_mask, SIGILL);
	sigdelset(&sa.sa_mask, SIGTRAP);
	return sigaction(sig, &sa, old);
}

int kbox_install_handlers(void) {
	if (install(SIGSYS, on_sigsys, &go_sigsys) || install(SIGSEGV, on_fault, &go_sigsegv) ||
	    install(SIGBUS, on_fault, &go_sigbus) || install(SIGFPE, on_fault, &go_sigfpe) ||
	    install(SIGILL, on_fault, &go_sigill) || install(SIGTRAP, on_fault, &go_sigtrap))
		return errno;
	return 0;
}

static struct kbox_start start_args;

// The guest thread: set up the alternate stack inside this thread's own
// stack (so the Go runtime's view of the stack on callbacks stays right),
// install the filters, and jump into the guest. It never returns: the guest
// ends the process with exit_group.
static void *guest_thread(void *unused) {
	(void)unused;
	size_t alt_size = KBOX_ALTSTACK_SIZE;
	char *alt = __builtin_alloca(2 * alt_size);
	memset(alt, 0, 4096);
	// Two halves: the upper one (A) takes the guest's traps and is
	// disarmed while a handler runs (SS_AUTODISARM; sigreturn re-arms
	// it); the lower one (B) is armed before kbox code may fault, so a
	// nested fault never lands on A's live frame (see on_sigsys).
	fault_stack = (stack_t){.ss_sp = alt, .ss_size = alt_size, .ss_flags = 0};
	stack_t ss = {.ss_sp = alt + alt_size, .ss_size = alt_size, .ss_flags = SS_AUTODISARM};
	kbox_gs.alt_lo = (uintptr_t)alt;
	kbox_gs.alt_hi = (uintptr_t)alt + 2 * alt_size;
	if (sigaltstack(&ss, NULL) != 0) {
		kbox_gs.start_err = errno;
		kboxStarted();
		return NULL;
	}
	kbox_gs.tid = (int)raw6(SYS_gettid, 0, 0, 0, 0, 0, 0);
	kbox_gs.host_fs = get_fs();

	sigset_t m;
	guest_mask(&m);
	pthread_sigmask(SIG_SETMASK, &m, NULL);

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		kbox_gs.start_err = errno;
		kboxStarted();
		return NULL;
	}
	// Landlock on this thread only (no TSYNC): kbox's other threads keep
	// their access; the backstop filter below then denies landlock_*.
	if (start_args.landlock_fd >= 0) {
		long r = raw6(SYS_landlock_restrict_self, start_args.landlock_fd, 0, 0, 0, 0, 0);
		if (r != 0) {
			kbox_gs.start_err = (int)-r;
			kboxStarted();
			return NULL;
		}
	}
	for (int i = 0; i < start_args.nfilters; i++) {
		struct sock_fprog prog = {.len = start_args.filters[i].len, .filter = start_args.filters[i].insns};
		long r = raw6(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, (long)&prog, 0, 0, 0);
		if (r != 0) {
			kbox_gs.start_err = (int)-r;
			kboxStarted();
			return NULL;
		}
	}
	kboxStarted();
	// The first callback bound a Go M to this thread and set its signal
	// mask to Go's liking (SIGURG, the preemption signal, unblocked). While
	// the guest runs, only the guest mask may apply: an asynchronous signal
	// must never reach Go's handler with the guest's FS base.
	pthread_sigmask(SIG_SETMASK, &m, NULL);
	kbox_enter(start_args.entry, start_args.sp, 0);
	return NULL;
}

int kbox_start_guest(struct kbox_start *a) {
	start_args = *a;
	uint64_t hw2 = a->hwcap2;
	kbox_gs.fsgsbase = (hw2 & 2) != 0; // HWCAP2_FSGSBASE
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, KBOX_THREAD_STACK);
	pthread_t t;
	int err = pthread_create(&t, &attr, guest_thread, NULL);
	pthread_attr_destroy(&attr);
	return err;
}

// kbox_enter starts (or, after an in-place execve, restarts) the guest at
// entry with the stack pointer sp and FS base fs, every other register
// zero, as the kernel starts a process.
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
void kbox_enter_asm(uint64_t entry, uint64_t sp);

void kbox_enter(uint64_t entry, uint64_t sp, uint64_t fs) {
	// The push in kbox_enter_asm writes just below sp, inside the guest's
	// stack red zone, and the ret pops it: the guest starts with sp intact.
	kbox_gs.guest_fs = fs;
	kbox_gs.in_guest = 1;
	set_fs(fs);
	kbox_enter_asm(entry, sp);
}

int kbox_guest_tid(void) { return kbox_gs.tid; }
