/*
 * sigsys_trap - floor of an in-process interception tier: getppid returns
 * SECCOMP_RET_TRAP, and a SIGSYS handler in the same process sets the
 * return register (kernel entry, filter, signal delivery, handler,
 * rt_sigreturn).
 * Usage: sigsys_trap [-n ITERATIONS]
 * Prints "sigsys_trap NS N".
 */
#include "floor.h"

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)si;
	set_result(ctx, 0);
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
	install_sigsys(on_sigsys);
	install_filter(SYS_getppid, SECCOMP_RET_TRAP, 0);
	run(n / 10 + 1); /* warm-up */
	double t = run(n);
	printf("sigsys_trap %.1f %ld\n", t / (double)n, n);
	return 0;
}
