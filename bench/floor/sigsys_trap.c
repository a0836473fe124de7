/*
 * sigsys_trap - floor of an in-process interception tier: getppid returns
 * SECCOMP_RET_TRAP, and a SIGSYS handler in the same process sets the
 * return register (kernel entry, filter, signal delivery, handler,
 * rt_sigreturn).
 * Usage: sigsys_trap [-n ITERATIONS]
 * Prints "sigsys_trap NS N".
 */
#include "floor.h"

#include <signal.h>
#include <ucontext.h>

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)si;
	ucontext_t *uc = ctx;
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = 0;
#else
	uc->uc_mcontext.regs[0] = 0;
#endif
}

static double run(long n)
{
	double t0 = now_ns();
	for (long i = 0; i < n; i++)
		if (syscall(SYS_getppid) != 0) {
			errno = EINVAL;
			die("getppid was not trapped");
		}
	return now_ns() - t0;
}

int main(int argc, char **argv)
{
	long n = 200000;
	parse_args(argc, argv, &n, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) != 0)
		die("sigaction(SIGSYS)");
	install_filter(SYS_getppid, SECCOMP_RET_TRAP, 0);
	run(n / 10 + 1); /* warm-up */
	double t = run(n);
	printf("sigsys_trap %.1f %ld\n", t / (double)n, n);
	return 0;
}
