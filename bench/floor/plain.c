/*
 * plain - native getppid, first with no seccomp filter, then with a small
 * filter installed that allows it (the cost every allowed call pays for
 * running under a filter, including any speculation mitigation the kernel
 * turns on for filtered tasks).
 * Usage: plain [-n ITERATIONS]
 * Prints "plain NS N" and "plain_filtered NS N".
 */
#include "floor.h"

static double run(long n)
{
	double t0 = now_ns();
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	return now_ns() - t0;
}

int main(int argc, char **argv)
{
	long n = 1000000;
	parse_args(argc, argv, &n, NULL);
	run(n / 10 + 1);
	double t = run(n);
	printf("plain %.1f %ld\n", t / (double)n, n);
	/* A filter that acts on getpid only, which this loop never calls. */
	install_filter(SYS_getpid, SECCOMP_RET_ERRNO | EPERM, 0);
	run(n / 10 + 1);
	t = run(n);
	printf("plain_filtered %.1f %ld\n", t / (double)n, n);
	return 0;
}
