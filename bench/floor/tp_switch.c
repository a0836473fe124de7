/*
 * tp_switch - what entering kbox's Go code from guest code costs beyond the
 * callback itself: the thread pointer switched to kbox's and back to the
 * guest's. On x86-64 that is two wrfsbase instructions when the kernel
 * enables FSGSBASE (AT_HWCAP2 bit 1), and two arch_prctl(ARCH_SET_FS)
 * system calls when it does not; on arm64 two writes of TPIDR_EL0.
 * Usage: tp_switch [-n ITERATIONS]
 * Prints "tp_switch NS N" (per pair of switches).
 */
#include "floor.h"

#include <sys/auxv.h>

#if defined(__x86_64__)
#include <asm/prctl.h>

static int fsgsbase;

static unsigned long get_tp(void)
{
	unsigned long v;
	syscall(SYS_arch_prctl, ARCH_GET_FS, &v);
	return v;
}

static void set_tp(unsigned long v)
{
	if (fsgsbase)
		__asm__ volatile("wrfsbase %0" ::"r"(v) : "memory");
	else
		syscall(SYS_arch_prctl, ARCH_SET_FS, v);
}
#else
static unsigned long get_tp(void)
{
	unsigned long v;
	__asm__ volatile("mrs %0, tpidr_el0" : "=r"(v));
	return v;
}

static void set_tp(unsigned long v) { __asm__ volatile("msr tpidr_el0, %0" ::"r"(v) : "memory"); }
#endif

static double run(long n, unsigned long tp)
{
	double t0 = now_ns();
	for (long i = 0; i < n; i++) {
		/* Both switches set this thread's own value: libc's TLS
		   stays valid between them. */
		set_tp(tp);
		set_tp(tp);
	}
	return now_ns() - t0;
}

int main(int argc, char **argv)
{
	long n = 200000;
	parse_args(argc, argv, &n, NULL);
#if defined(__x86_64__)
	fsgsbase = (getauxval(AT_HWCAP2) & 2) != 0;
#endif
	unsigned long tp = get_tp();
	run(n / 10 + 1, tp);
	double t = run(n, tp);
	printf("tp_switch %.1f %ld\n", t / (double)n, n);
	return 0;
}
