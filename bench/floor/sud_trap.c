/*
 * sud_trap - the other in-process interception mechanism: Syscall User
 * Dispatch (PR_SET_SYSCALL_USER_DISPATCH, Linux 5.11).  With the selector
 * byte set to BLOCK, a syscall raises SIGSYS; the handler flips the
 * selector to ALLOW (so its rt_sigreturn runs) and sets the result.
 *   sud_trap     a trapped getppid (selector store + SIGSYS round trip)
 *   sud_allowed  a getppid with dispatch on but the selector at ALLOW:
 *                what every syscall the tier lets through pays
 * Compare with sigsys_trap and plain_filtered (seccomp RET_TRAP and a
 * filter's allow path): the trap tier uses whichever is cheaper.
 * Usage: sud_trap [-n ITERATIONS]
 * Prints "sud_trap NS N" and "sud_allowed NS N".
 */
#include "floor.h"

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_ON 1
#endif
#define SELECTOR_ALLOW 0
#define SELECTOR_BLOCK 1

static volatile char selector = SELECTOR_ALLOW;

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)si;
	selector = SELECTOR_ALLOW;
	set_result(ctx, 0);
}

static double run_trapped(long n)
{
	double t0 = now_ns();
	for (long i = 0; i < n; i++) {
		selector = SELECTOR_BLOCK;
		if (syscall(SYS_getppid) != 0) {
			errno = EINVAL;
			die("getppid was not dispatched");
		}
	}
	return now_ns() - t0;
}

static double run_allowed(long n)
{
	double t0 = now_ns();
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	return now_ns() - t0;
}

int main(int argc, char **argv)
{
	long n = 200000;
	parse_args(argc, argv, &n, NULL);
	install_sigsys(on_sigsys);
	/* No always-allowed code range: the selector alone decides. */
	if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, 0, 0, &selector) != 0)
		die("PR_SET_SYSCALL_USER_DISPATCH");
	run_trapped(n / 10 + 1); /* warm-up */
	double t = run_trapped(n);
	double a = run_allowed(n);
	printf("sud_trap %.1f %ld\n", t / (double)n, n);
	printf("sud_allowed %.1f %ld\n", a / (double)n, n);
	return 0;
}
