/* vforkexec: does a child's exec leave the memory it shares with its parent
 * as the parent left it? kbox rewrites the exec path in the caller's memory;
 * for a vfork child (vfork, posix_spawn) that memory is the parent's, which
 * the kernel lets run again as soon as the exec has replaced the child's
 * address space.
 *
 *   vforkexec vfork N PROG   N times: vfork, the child execs PROG from a
 *                            heap buffer; the parent, once resumed, fills
 *                            that buffer and checks for 20 ms that it keeps
 *                            what it wrote. Prints "corrupted K of N".
 *   vforkexec spawn N PROG   N times: posix_spawn PROG (glibc and musl use
 *                            CLONE_VM|CLONE_VFORK) from a heap path, free
 *                            it, then churn the heap: allocate blocks of the
 *                            same size, fill them and check them, while the
 *                            child runs. Prints "spawn: K of N damaged".
 *
 *   vforkexec e2big N PROG   N times: vfork, the child execs PROG with an
 *                            argument longer than the kernel takes (E2BIG,
 *                            a failure after kbox's checks) and exits; the
 *                            parent checks the path buffer and the errno.
 *                            Prints "e2big: K of N damaged".
 *
 * PROG must exit 0; any other status is reported.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* base is argv[0] for PROG: its last path element (busybox picks its
 * applet by it). */
static const char *base(const char *prog)
{
	const char *s = strrchr(prog, '/');
	return s ? s + 1 : prog;
}

/* reap waits for pid and reports a status other than exit 0. */
static int reap(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid) {
		perror("vforkexec: waitpid");
		return 1;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("vforkexec: child status %#x\n", st);
		return 1;
	}
	return 0;
}

static int run_vfork(int n, const char *prog)
{
	/* volatile: the child runs in this frame until it execs. */
	volatile int damaged = 0, failed = 0;
	size_t len = strlen(prog) + 1;
	size_t size = len < 64 ? 64 : len;
	for (volatile int i = 0; i < n; i++) {
		char *path = malloc(size);
		if (!path)
			return 2;
		memcpy(path, prog, len);
		char *argv[] = {(char *)base(prog), NULL};
		pid_t pid = vfork();
		if (pid == 0) {
			execve(path, argv, environ);
			_exit(127);
		}
		if (pid < 0) {
			perror("vforkexec: vfork");
			return 2;
		}
		/* The buffer is the parent's again: it may reuse it at once. */
		memset(path, 'P', size - 1);
		path[size - 1] = 0;
		long long end = now_ns() + 20000000LL;
		do {
			size_t k;
			for (k = 0; k < size - 1 && path[k] == 'P'; k++)
				;
			if (k != size - 1 || path[size - 1] != 0) {
				printf("iteration %d: byte %zu changed after the parent resumed\n", i, k);
				damaged++;
				break;
			}
		} while (now_ns() < end);
		failed |= reap(pid);
		free(path);
	}
	printf("corrupted %d of %d\n", damaged, n);
	return damaged || failed;
}

static int run_spawn(int n, const char *prog)
{
	enum { BLOCKS = 64 };
	int damaged = 0, failed = 0;
	size_t len = strlen(prog) + 1;
	for (int i = 0; i < n; i++) {
		char *path = malloc(len);
		if (!path)
			return 2;
		memcpy(path, prog, len);
		char *argv[] = {(char *)base(prog), NULL};
		pid_t pid;
		int err = posix_spawn(&pid, path, NULL, NULL, argv, environ);
		if (err) {
			printf("vforkexec: posix_spawn: %s\n", strerror(err));
			return 2;
		}
		free(path);
		/* Heap churn: blocks of the path's size take its memory back. */
		char *blk[BLOCKS];
		for (int b = 0; b < BLOCKS; b++) {
			blk[b] = malloc(len);
			if (!blk[b])
				return 2;
			memset(blk[b], 'a' + b % 26, len);
		}
		int bad = 0;
		long long end = now_ns() + 5000000LL;
		do {
			for (int b = 0; b < BLOCKS && !bad; b++)
				for (size_t k = 0; k < len; k++)
					if (blk[b][k] != 'a' + b % 26) {
						printf("iteration %d: block %d byte %zu changed\n", i, b, k);
						bad = 1;
						break;
					}
		} while (!bad && now_ns() < end);
		damaged += bad;
		for (int b = 0; b < BLOCKS; b++)
			free(blk[b]);
		failed |= reap(pid);
	}
	printf("spawn: %d of %d damaged\n", damaged, n);
	return damaged || failed;
}

static int run_e2big(int n, const char *prog)
{
	volatile int damaged = 0, failed = 0;
	size_t len = strlen(prog) + 1;
	size_t big = 200 * 1024; /* over MAX_ARG_STRLEN (32 pages) */
	char *arg = malloc(big + 1);
	if (!arg)
		return 2;
	memset(arg, 'a', big);
	arg[big] = 0;
	for (volatile int i = 0; i < n; i++) {
		char *path = malloc(len);
		if (!path)
			return 2;
		memcpy(path, prog, len);
		char *argv[] = {(char *)base(prog), arg, NULL};
		volatile int err = 0;
		pid_t pid = vfork();
		if (pid == 0) {
			execve(path, argv, environ);
			err = errno;
			_exit(0);
		}
		if (pid < 0) {
			perror("vforkexec: vfork");
			return 2;
		}
		if (err != E2BIG) {
			printf("iteration %d: exec error %d, want E2BIG\n", i, err);
			failed = 1;
		}
		if (memcmp(path, prog, len) != 0) {
			printf("iteration %d: path buffer is %.*s after the failed exec\n", i, (int)len, path);
			damaged++;
		}
		failed |= reap(pid);
		free(path);
	}
	free(arg);
	printf("e2big: %d of %d damaged\n", damaged, n);
	return damaged || failed;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: vforkexec vfork|spawn|e2big N PROG\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	int n = atoi(argv[2]);
	if (strcmp(argv[1], "vfork") == 0)
		return run_vfork(n, argv[3]);
	if (strcmp(argv[1], "spawn") == 0)
		return run_spawn(n, argv[3]);
	if (strcmp(argv[1], "e2big") == 0)
		return run_e2big(n, argv[3]);
	fprintf(stderr, "vforkexec: unknown mode %s\n", argv[1]);
	return 2;
}
