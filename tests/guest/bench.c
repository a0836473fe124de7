/*
 * bench: per-call syscall latency, timed with CLOCK_MONOTONIC.
 *
 * Usage: bench [-n ITERATIONS] [-f FILE] [-w WFILE] [TEST...]
 * Tests: stat open_close lseek_read lseek_write getpid enosys (default: all).
 * Prints one line per test: "<test> <ns per call> <iterations>".
 *
 * Calls go through syscall(2) with explicit numbers where libc would
 * otherwise substitute a different call (musl issues legacy stat/open on
 * x86_64, glibc newfstatat/openat), so both builds measure the same calls:
 * stat is newfstatat(AT_FDCWD, path, &st, 0), open is openat(AT_FDCWD, ...).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_newfstatat
#define SYS_newfstatat SYS_fstatat
#endif

static const char *file = "/etc/hostname";
static const char *wfile = "/tmp/kbox-bench-write";

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double run_stat(long n)
{
	struct stat st;
	double t0 = now_ns();
	for (long i = 0; i < n; i++)
		if (syscall(SYS_newfstatat, AT_FDCWD, file, &st, 0) != 0)
			die("stat");
	return now_ns() - t0;
}

static double run_open_close(long n)
{
	double t0 = now_ns();
	for (long i = 0; i < n; i++) {
		long fd = syscall(SYS_openat, AT_FDCWD, file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("open");
		syscall(SYS_close, fd);
	}
	return now_ns() - t0;
}

static double run_lseek_read(long n)
{
	char buf[64];
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open for read");
	double t0 = now_ns();
	for (long i = 0; i < n; i++) {
		syscall(SYS_lseek, fd, 0L, SEEK_SET);
		if (syscall(SYS_read, fd, buf, sizeof buf) < 0)
			die("read");
	}
	double t = now_ns() - t0;
	close(fd);
	return t;
}

static double run_lseek_write(long n)
{
	char buf[64];
	memset(buf, 'x', sizeof buf);
	int fd = open(wfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open for write");
	double t0 = now_ns();
	for (long i = 0; i < n; i++) {
		syscall(SYS_lseek, fd, 0L, SEEK_SET);
		if (syscall(SYS_write, fd, buf, sizeof buf) != (long)sizeof buf)
			die("write");
	}
	double t = now_ns() - t0;
	close(fd);
	unlink(wfile);
	return t;
}

static double run_getpid(long n)
{
	double t0 = now_ns();
	for (long i = 0; i < n; i++)
		syscall(SYS_getpid);
	return now_ns() - t0;
}

/* A syscall number no kernel has: under kbox it makes one supervisor round
 * trip that the dispatcher answers with ENOSYS (the tier's floor). */
static double run_enosys(long n)
{
	double t0 = now_ns();
	for (long i = 0; i < n; i++)
		syscall(1000);
	return now_ns() - t0;
}

static const struct {
	const char *name;
	double (*fn)(long);
	int weight; /* iterations = n / weight: slow calls run fewer times */
} tests[] = {
	{"stat", run_stat, 1},
	{"open_close", run_open_close, 1},
	{"lseek_read", run_lseek_read, 1},
	{"lseek_write", run_lseek_write, 1},
	{"getpid", run_getpid, 1},
	{"enosys", run_enosys, 1},
};

int main(int argc, char **argv)
{
	long n = 20000;
	int opt;
	while ((opt = getopt(argc, argv, "n:f:w:")) != -1) {
		switch (opt) {
		case 'n':
			n = strtol(optarg, NULL, 10);
			break;
		case 'f':
			file = optarg;
			break;
		case 'w':
			wfile = optarg;
			break;
		default:
			fprintf(stderr, "usage: bench [-n N] [-f FILE] [-w WFILE] [TEST...]\n");
			return 2;
		}
	}
	if (n <= 0)
		n = 1;
	size_t ntests = sizeof tests / sizeof tests[0];
	for (size_t i = 0; i < ntests; i++) {
		int wanted = optind >= argc;
		for (int a = optind; a < argc; a++)
			if (strcmp(argv[a], tests[i].name) == 0)
				wanted = 1;
		if (!wanted)
			continue;
		long iters = n / tests[i].weight;
		if (iters < 1)
			iters = 1;
		tests[i].fn(iters / 10 + 1); /* warm-up */
		double t = tests[i].fn(iters);
		printf("%s %.1f %ld\n", tests[i].name, t / (double)iters, iters);
	}
	return 0;
}
