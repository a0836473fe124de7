/*
 * floor.h - shared helpers of the kbox benchmark floor programs.
 *
 * Each floor program measures the bare kernel cost of one interception
 * mechanism and prints "<name> <ns per call> <iterations>" lines, like
 * tests/guest/bench.c.  Usage: PROG [-n ITERATIONS] [-f FILE].
 */
#ifndef KBOX_FLOOR_H
#define KBOX_FLOOR_H

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <ucontext.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#define FLOOR_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FLOOR_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "floor programs support x86_64 and aarch64 only"
#endif

/* Newer than the 6.1 uapi headers of Debian 12. */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

static inline double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline void die(const char *what)
{
	fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* parse_args reads -n ITERATIONS and -f FILE. */
static inline void parse_args(int argc, char **argv, long *n, const char **file)
{
	int opt;
	while ((opt = getopt(argc, argv, "n:f:")) != -1) {
		switch (opt) {
		case 'n':
			*n = strtol(optarg, NULL, 10);
			break;
		case 'f':
			if (file)
				*file = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [-n N] [-f FILE]\n", argv[0]);
			exit(2);
		}
	}
	if (*n < 1)
		*n = 1;
}

/*
 * install_filter installs, on the calling thread, a filter that returns
 * ACTION for syscall NR and allows everything else.  It returns what
 * seccomp(2) returns: the listener descriptor with
 * SECCOMP_FILTER_FLAG_NEW_LISTENER, else 0.
 */
static inline int install_filter(int nr, unsigned int action, unsigned int flags)
{
	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FLOOR_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, action),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof insns / sizeof insns[0],
		.filter = insns,
	};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		die("PR_SET_NO_NEW_PRIVS");
	long ret = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (ret < 0)
		die("seccomp(SECCOMP_SET_MODE_FILTER)");
	return (int)ret;
}

/* set_result makes a trapped syscall return v (the SIGSYS handler's
 * ucontext argument). */
static inline void set_result(void *ctx, long v)
{
	ucontext_t *uc = ctx;
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = v;
#else
	uc->uc_mcontext.regs[0] = v;
#endif
}

/* install_sigsys installs handler for SIGSYS (SA_SIGINFO). */
static inline void install_sigsys(void (*handler)(int, siginfo_t *, void *))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) != 0)
		die("sigaction(SIGSYS)");
}

#endif
