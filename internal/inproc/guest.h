// Shared between guest.c, the per-architecture C files (guest_<arch>.c,
// fastpath_<arch>.c) and the cgo preamble in cgo.go.
#ifndef KBOX_GUEST_H
#define KBOX_GUEST_H
#include <stdint.h>

#define KBOX_ALTSTACK_SIZE (256 * 1024)
#define KBOX_THREAD_STACK (8 * 1024 * 1024)
#define KBOX_DIRECT_STACK (128 * 1024) // direct entry (guest_<arch>.c)
#define KBOX_XAREA_MAX (16 * 1024)
#define KBOX_FDMAP_SIZE 65536
// The fast path's table: kbox_fast_kind[nr] is policy.FastKind of nr (the
// values below are that type's; TestFastKindsMatchPolicy checks them).
#define KBOX_FAST_NR 512
#define KBOX_FAST_FD 1
#define KBOX_FAST_FSTAT 2
#define KBOX_FAST_PID 3
#define KBOX_FAST_NATIVE 4
#define KBOX_FAST_STAT 5
// The kick: the signal kbox sends the guest thread to have pending guest
// signals delivered. Not SIGSYS: a seccomp trap raised while a SIGSYS kick
// is pending would be dropped (standard signals do not queue), and the
// trapped call skipped with its number (x86-64) or first argument (arm64)
// as its result. The last real-time signal; the guest's signals are
// kbox's virtual ones, so the guest never sees or sends this one.
#define KBOX_KICK_SIG 64
// The host signals blocked while kbox code must not be kicked.
#define KBOX_KICK_MASK ((1ULL << (SIGSYS - 1)) | (1ULL << (KBOX_KICK_SIG - 1)))
#define KBOX_STR2(x) #x
#define KBOX_STR(x) KBOX_STR2(x)

struct kbox_guest_state {
	uint64_t host_tp;	// the guest thread's own (glibc) thread pointer
	uint64_t guest_tp;	// the guest's thread pointer while kbox code runs
	uintptr_t alt_lo, alt_hi; // the guest thread's alternate signal stack
	volatile int in_guest;	// the guest thread is running guest code
	int fsgsbase;		// x86-64: rdfsbase/wrfsbase are usable
	int tid;
	int start_err;
};

struct kbox_filter {
	unsigned short len;
	void *insns;
};

struct kbox_start {
	uint64_t entry, sp, hwcap2;
	int landlock_fd; // ruleset to restrict the guest thread with, -1: none
	int nfilters;
	struct kbox_filter filters[2];
};

extern struct kbox_guest_state kbox_gs;
extern volatile char kbox_kicked;

int kbox_install_handlers(void);
int kbox_start_guest(struct kbox_start *a);
void kbox_enter(uint64_t entry, uint64_t sp, uint64_t tp);
long kbox_blocking_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5);
int kbox_guest_tid(void);
void kbox_arm_fault_stack(void);
extern volatile int kbox_fault_stack_armed;

extern int32_t kbox_fdmap[KBOX_FDMAP_SIZE];
extern int32_t kbox_fast_pid, kbox_fast_fstat;
extern uint8_t kbox_fast_kind[KBOX_FAST_NR];
extern uint64_t kbox_fast_hits, kbox_fast_misses;
extern uint64_t kbox_fast_cancel; // arm64: calls entered from a cancel slot
uint64_t kbox_fast_any_addr(void);
uint64_t kbox_fast_cancel_addr(void); // arm64
// Direct entry from patched sites (guest_<arch>.c).
extern uintptr_t kbox_direct_stack;
extern volatile char kbox_direct_on;
extern uint64_t kbox_direct_calls;
int kbox_direct_init(void);
uint64_t kbox_fast_syscall_ip(void);
long kbox_test_call3(void *fn, long a, long b, long c);
void kbox_sync_icache(uint64_t lo, uint64_t hi);

// The stat cache (statcache.c): KBOX_SC_SLOTS entries, looked up by the
// guest's path string in at most KBOX_SC_PROBE slots from its hash.
#define KBOX_SC_SLOTS 1024
#define KBOX_SC_PROBE 8
#define KBOX_SC_PATH 200
#define KBOX_SC_MISS 1 // a stat never returns 1
struct kbox_sc_entry {
	uint64_t gen; // valid while it is kbox_sc_gen (never 0)
	int32_t fd;   // O_PATH descriptor of the object, kbox's
	uint32_t hash;
	uint16_t len;
	uint8_t nofollow;
	char path[KBOX_SC_PATH];
};
struct kbox_sc_owner {
	int32_t translate; // the invoking user's files show as the guest identity's
	uint32_t host_uid, host_gid, guest_uid, guest_gid;
};
extern struct kbox_sc_entry kbox_sc[KBOX_SC_SLOTS];
extern volatile uint64_t kbox_sc_gen;
extern uint8_t kbox_sc_keep[KBOX_FAST_NR];
extern int32_t kbox_sc_on;
extern struct kbox_sc_owner kbox_sc_owner;
extern uint64_t kbox_sc_hits, kbox_sc_misses;
uint32_t kbox_sc_hash(const char *p, uint32_t n, uint32_t nofollow);
long kbox_stat_fast(long nr, long a0, long a1, long a2, long a3);
void kbox_sc_note(long nr, long a1, long a2);

// The per-architecture primitives guest.c builds on (guest_<arch>.c):
// raw syscalls, the thread pointer, the interrupted instruction pointer.
#ifdef KBOX_GUEST_INTERNAL
#include <ucontext.h>
long kbox_raw6(long nr, long a, long b, long c, long d, long e, long f);
uint64_t kbox_get_tp(void);
void kbox_set_tp(uint64_t v);
uintptr_t kbox_uc_pc(ucontext_t *uc);
void kbox_uc_set_pc(ucontext_t *uc, uintptr_t pc);
void kbox_arch_init(uint64_t hwcap2);
void kbox_enter_asm(uint64_t entry, uint64_t sp);
long kbox_bs_asm(long nr, long a0, long a1, long a2, long a3, long a4, long a5);
extern char kbox_bs_start[], kbox_bs_syscall[], kbox_bs_eintr[];
#include <signal.h>
extern stack_t kbox_trap_stack; // A, as armed (guest.c)
int kbox_direct_serve(ucontext_t *uc, int kick, long nr, long a1, long a2, int (*regs_changed)(void));
extern int kbox_tp_tracked;	  // guest_tp is kept by kbox: no read at entry
// Guest-memory copies that fail instead of faulting (guest_<arch>.c): a
// fault at kbox_gcopy_load or kbox_gcopy_store resumes at kbox_gcopy_fault.
// kbox_gcopy_str copies a NUL-terminated string of fewer than max bytes
// and returns its length; -1 when it is longer, -2 on a fault.
long kbox_gcopy_str(char *dst, const char *src, long max);
long kbox_gcopy_out(void *dst, const void *src, long n); // 0, or -2 on a fault
extern char kbox_gcopy_load[], kbox_gcopy_store[], kbox_gcopy_fault[];
long kbox_uc_arg(ucontext_t *uc, int i);
void kbox_uc_set_ret(ucontext_t *uc, long v);
#endif
#endif
