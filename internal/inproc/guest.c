//go:build cgo && linux && (amd64 || arm64)

// The guest thread and its signal path, in C because these run where Go
// cannot: on a thread whose thread pointer (the FS base on x86-64,
// TPIDR_EL0 on arm64) is the guest's (so no TLS, no errno, no stack
// protector: the file is built with -fno-stack-protector and makes its own
// syscalls through kbox_raw6). The architecture's primitives (raw
// syscalls, the thread pointer, the instruction pointer of a ucontext, the
// blocking-syscall stub and the entry into the guest) are in
// guest_<arch>.c.
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

#define KBOX_GUEST_INTERNAL
#include "guest.h"
#include "_cgo_export.h"

struct kbox_guest_state kbox_gs;
volatile char kbox_kicked;
int kbox_tp_tracked;
uintptr_t kbox_direct_stack;
volatile char kbox_direct_on;
uint64_t kbox_direct_calls;

static struct sigaction go_sigsegv, go_sigbus, go_sigfpe, go_sigill, go_sigtrap, go_sigsys, go_kick;

#define raw6 kbox_raw6

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

// Blocking host syscalls made on behalf of the guest run here with the
// kick (KBOX_KICK_SIG, and SIGSYS) unblocked. A kick that lands before the syscall instruction
// executes moves the thread to kbox_bs_eintr, so it cannot be lost between
// the unblock and the sleep; one that lands during the call makes it
// return EINTR (the handler has no SA_RESTART). kbox_bs_asm is per
// architecture: kbox_bs_start checks kbox_kicked, kbox_bs_syscall is the
// syscall instruction, kbox_bs_eintr returns -EINTR.
long kbox_blocking_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
	// The mask is put back as it was, not the kick blocked: a call served
	// by direct entry (guest_<arch>.c) runs with it unblocked, and the
	// guest must never run with SIGSYS blocked (a seccomp trap would kill
	// it).
	uint64_t set = KBOX_KICK_MASK, old = 0;
	raw6(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&set, (long)&old, 8, 0, 0);
	long r = kbox_bs_asm(nr, a0, a1, a2, a3, a4, a5);
	raw6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8, 0, 0);
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
stack_t kbox_trap_stack; // A, as armed: a direct entry's sigreturn re-arms it
volatile int kbox_fault_stack_armed; // read by Go too: no cgo call once armed

void kbox_arm_fault_stack(void) {
	if (kbox_fault_stack_armed || fault_stack.ss_size == 0)
		return;
	raw6(SYS_sigaltstack, (long)&fault_stack, 0, 0, 0, 0, 0);
	kbox_fault_stack_armed = 1;
}

// leave_guest switches from the interrupted guest to kbox's thread
// pointer, and back_to_guest returns, around a handler's call into Go.
static inline void leave_guest(void) {
	if (!kbox_tp_tracked)
		kbox_gs.guest_tp = kbox_get_tp();
	kbox_set_tp(kbox_gs.host_tp);
	kbox_gs.in_guest = 0;
	kbox_fault_stack_armed = 0;
}

static inline void back_to_guest(void) {
	kbox_gs.in_guest = 1;
	kbox_set_tp(kbox_gs.guest_tp);
}

// kbox_direct_serve is the part of direct entry both architectures share
// (guest_<arch>.c saves the guest's registers into the frame uc, switches
// to kbox's thread pointer and returns through the frame): it serves the
// call nr (a1 and a2: its second and third arguments, for the stat
// cache), or with kick set only the guest's pending signals, then every
// kick that landed meanwhile, and decides how the guest resumes. It
// returns 1 when the frame must be loaded by the kernel's rt_sigreturn
// (rt_sigreturn itself, or regs_changed: the call set registers besides
// the result), with SIGSYS and the kick blocked and the frame's mask
// unblocking them; 0 for the fast way back.
int kbox_direct_serve(ucontext_t *uc, int kick, long nr, long a1, long a2, int (*regs_changed)(void)) {
	int slow = 0;
	if (kick) {
		kboxTrap(uc, 0, 1);
	} else {
		kbox_direct_calls++;
		kbox_sc_note(nr, a1, a2);
		kboxTrap(uc, (int)nr, 0);
		slow = nr == SYS_rt_sigreturn;
	}
	for (;;) {
		while (kbox_kicked) {
			kbox_kicked = 0;
			kboxTrap(uc, 0, 1);
		}
		if (!slow)
			slow = regs_changed();
		if (!slow)
			return 0;
		uint64_t set = KBOX_KICK_MASK, old = 0;
		raw6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&set, (long)&old, 8, 0, 0);
		if (kbox_kicked) {
			raw6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8, 0, 0);
			continue;
		}
		uc->uc_flags = 0;
		uc->uc_link = 0;
		uc->uc_stack = kbox_trap_stack;
		memset(&uc->uc_sigmask, 0, sizeof uc->uc_sigmask);
		memcpy(&uc->uc_sigmask, &old, 8); // the kernel's sigset: SIGSYS and the kick unblocked
		return 1;
	}
}

// kicked_in_kbox notes a kick that lands while kbox code runs (only the
// blocking stub and direct entry leave it unblocked there): before the
// stub's syscall instruction, the call is skipped.
static void kicked_in_kbox(ucontext_t *uc) {
	uintptr_t ip = kbox_uc_pc(uc);
	kbox_kicked = 1;
	if (ip >= (uintptr_t)kbox_bs_start && ip <= (uintptr_t)kbox_bs_syscall)
		kbox_uc_set_pc(uc, (uintptr_t)kbox_bs_eintr);
}

static void on_sigsys(int sig, siginfo_t *si, void *ucv) {
	if (!on_guest_thread()) {
		chain(&go_sigsys, sig, si, ucv);
		return;
	}
	// A SIGSYS that is not a seccomp trap (sent from outside) is taken
	// as a kick: it can only make pending signals be looked at.
	int kick = si->si_code != SYS_SECCOMP;
	if (!kbox_gs.in_guest) {
		if (kick)
			kicked_in_kbox(ucv);
		return;
	}
	if (!kick) {
		// A cached stat is answered with the guest's thread pointer
		// still in place; any other call may end the cache's
		// generation (statcache.c).
		ucontext_t *uc = ucv;
		long nr = si->si_syscall;
		long r = kbox_stat_fast(nr, kbox_uc_arg(uc, 0), kbox_uc_arg(uc, 1), kbox_uc_arg(uc, 2),
					kbox_uc_arg(uc, 3));
		if (r != KBOX_SC_MISS) {
			kbox_uc_set_ret(uc, r);
			return;
		}
		kbox_sc_note(nr, kbox_uc_arg(uc, 1), kbox_uc_arg(uc, 2));
	}
	leave_guest();
	kboxTrap(ucv, kick ? 0 : si->si_syscall, kick);
	back_to_guest();
}

static void on_kick(int sig, siginfo_t *si, void *ucv) {
	if (!on_guest_thread()) {
		chain(&go_kick, sig, si, ucv);
		return;
	}
	if (!kbox_gs.in_guest) {
		kicked_in_kbox(ucv);
		return;
	}
	leave_guest();
	kboxTrap(ucv, 0, 1);
	back_to_guest();
}

// gcopy_fixup sends a fault in a guarded guest-memory copy (guest.h) on
// to the copy's failure return.
static int gcopy_fixup(int sig, ucontext_t *uc) {
	uintptr_t ip = kbox_uc_pc(uc);
	if ((sig != SIGSEGV && sig != SIGBUS) || !on_guest_thread() ||
	    (ip != (uintptr_t)kbox_gcopy_load && ip != (uintptr_t)kbox_gcopy_store))
		return 0;
	kbox_uc_set_pc(uc, (uintptr_t)kbox_gcopy_fault);
	return 1;
}

static void on_fault(int sig, siginfo_t *si, void *ucv) {
	if (gcopy_fixup(sig, ucv))
		return;
	if (!on_guest_thread() || !kbox_gs.in_guest) {
		struct sigaction *old = sig == SIGSEGV ? &go_sigsegv : sig == SIGBUS ? &go_sigbus
								 : sig == SIGFPE ? &go_sigfpe
								 : sig == SIGILL ? &go_sigill
										 : &go_sigtrap;
		chain(old, sig, si, ucv);
		return;
	}
	leave_guest();
	kboxFault(ucv, sig, si);
	back_to_guest();
}

// Signals the guest thread keeps unblocked while the guest runs: the
// synchronous ones its own code raises, SIGSYS (traps) and the kick.
static void guest_mask(sigset_t *s) {
	sigfillset(s);
	sigdelset(s, SIGSYS);
	sigdelset(s, KBOX_KICK_SIG);
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
	if (install(SIGSYS, on_sigsys, &go_sigsys) || install(KBOX_KICK_SIG, on_kick, &go_kick) ||
	    install(SIGSEGV, on_fault, &go_sigsegv) ||
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
	// Above the two alternate-stack halves: the direct-entry stack D
	// (guest_<arch>.c).
	char *alt = __builtin_alloca(2 * alt_size + KBOX_DIRECT_STACK);
	kbox_direct_stack = ((uintptr_t)alt + 2 * alt_size + KBOX_DIRECT_STACK) & ~(uintptr_t)15;
	memset(alt, 0, 4096);
	// Two halves: the upper one (A) takes the guest's traps and is
	// disarmed while a handler runs (SS_AUTODISARM; sigreturn re-arms
	// it); the lower one (B) is armed before kbox code may fault, so a
	// nested fault never lands on A's live frame (see on_sigsys).
	fault_stack = (stack_t){.ss_sp = alt, .ss_size = alt_size, .ss_flags = 0};
	stack_t ss = {.ss_sp = alt + alt_size, .ss_size = alt_size, .ss_flags = SS_AUTODISARM};
	kbox_trap_stack = ss;
	kbox_gs.alt_lo = (uintptr_t)alt;
	kbox_gs.alt_hi = (uintptr_t)alt + 2 * alt_size;
	if (sigaltstack(&ss, NULL) != 0) {
		kbox_gs.start_err = errno;
		kboxStarted();
		return NULL;
	}
	kbox_gs.tid = (int)raw6(SYS_gettid, 0, 0, 0, 0, 0, 0);
	kbox_gs.host_tp = kbox_get_tp();

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
	// must never reach Go's handler with the guest's thread pointer.
	pthread_sigmask(SIG_SETMASK, &m, NULL);
	kbox_enter(start_args.entry, start_args.sp, 0);
	return NULL;
}

int kbox_start_guest(struct kbox_start *a) {
	start_args = *a;
	kbox_arch_init(a->hwcap2);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, KBOX_THREAD_STACK);
	pthread_t t;
	int err = pthread_create(&t, &attr, guest_thread, NULL);
	pthread_attr_destroy(&attr);
	return err;
}

// kbox_enter starts (or, after an in-place execve, restarts) the guest at
// entry with the stack pointer sp and thread pointer tp, every other
// register zero, as the kernel starts a process (kbox_enter_asm, per
// architecture).
void kbox_enter(uint64_t entry, uint64_t sp, uint64_t tp) {
	kbox_gs.guest_tp = tp;
	kbox_gs.in_guest = 1;
	kbox_set_tp(tp);
	kbox_enter_asm(entry, sp);
}

int kbox_guest_tid(void) { return kbox_gs.tid; }

// kbox_test_call3 calls code at fn with three arguments (the first three
// syscall argument registers, as the C calling convention puts them):
// the rewrite tests run patched code through it.
long kbox_test_call3(void *fn, long a, long b, long c) {
	return ((long (*)(long, long, long))fn)(a, b, c);
}
