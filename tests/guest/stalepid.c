/*
 * stalepid - pid-reuse probe for kbox guest tests
 * (tests/integration/stalepid_test.go).
 *
 * Usage: stalepid N
 *
 * Forks N children one after another; each makes one call kbox serves
 * (getcwd), exits, and is reaped at once. Prints "pid P" for each child,
 * then "spawned N usec U" (U: the time the N children took) and flushes.
 * Then reads commands from standard input, one per line, until its end:
 *
 *   probe P   tries pid P as a hostile guest would and prints
 *             "probe P kill=E environ=E mem=E cwd=E listed=L", E being "ok"
 *             or the errno name of kill(P, 0), open /proc/P/environ,
 *             open /proc/P/mem O_RDWR and readlink /proc/P/cwd, L 1 when
 *             /proc lists P;
 *   check     kill(P, 0) of every child: prints "check N esrch=K" (K: how
 *             many answered ESRCH).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int e)
{
	switch (e) {
	case 0: return "ok";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EIO: return "EIO";
	case EACCES: return "EACCES";
	case EINVAL: return "EINVAL";
	case ELOOP: return "ELOOP";
	case ENOTDIR: return "ENOTDIR";
	case EXDEV: return "EXDEV";
	default: return "EOTHER";
	}
}

static const char *try_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return errname(errno);
	close(fd);
	return "ok";
}

static int listed(long pid)
{
	char want[32];
	snprintf(want, sizeof want, "%ld", pid);
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	struct dirent *de;
	int found = 0;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, want) == 0)
			found = 1;
	closedir(d);
	return found;
}

static void probe(long pid)
{
	char path[64], buf[4096];
	const char *k = kill((pid_t)pid, 0) == 0 ? "ok" : errname(errno);
	snprintf(path, sizeof path, "/proc/%ld/environ", pid);
	const char *env = try_open(path, O_RDONLY);
	snprintf(path, sizeof path, "/proc/%ld/mem", pid);
	const char *mem = try_open(path, O_RDWR);
	snprintf(path, sizeof path, "/proc/%ld/cwd", pid);
	const char *cwd = readlink(path, buf, sizeof buf) >= 0 ? "ok" : errname(errno);
	printf("probe %ld kill=%s environ=%s mem=%s cwd=%s listed=%d\n", pid, k, env, mem, cwd, listed(pid));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: stalepid N\n");
		return 2;
	}
	long n = strtol(argv[1], NULL, 10);
	if (n <= 0) {
		fprintf(stderr, "stalepid: bad count\n");
		return 2;
	}
	pid_t *kids = calloc((size_t)n, sizeof *kids);
	if (!kids)
		return 1;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		pid_t p = fork();
		if (p < 0) {
			perror("fork");
			return 1;
		}
		if (p == 0) {
			char cwd[256];
			syscall(SYS_getcwd, cwd, sizeof cwd);
			_exit(0);
		}
		int st;
		if (waitpid(p, &st, 0) != p) {
			perror("waitpid");
			return 1;
		}
		kids[i] = p;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (long i = 0; i < n; i++)
		printf("pid %d\n", (int)kids[i]);
	long usec = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
	printf("spawned %ld usec %ld\n", n, usec);
	fflush(stdout);

	char line[128];
	while (fgets(line, sizeof line, stdin)) {
		long pid;
		if (sscanf(line, "probe %ld", &pid) == 1) {
			probe(pid);
		} else if (strncmp(line, "check", 5) == 0) {
			long esrch = 0;
			for (long i = 0; i < n; i++)
				if (kill(kids[i], 0) < 0 && errno == ESRCH)
					esrch++;
			printf("check %ld esrch=%ld\n", n, esrch);
		} else {
			fprintf(stderr, "stalepid: bad command: %s", line);
			return 2;
		}
		fflush(stdout);
	}
	return 0;
}
