/*
 * unotify.h - a minimal seccomp user-notification supervisor, shared by
 * unotify_rt.c and unotify_addfd.c.
 *
 * The child installs a filter returning SECCOMP_RET_USER_NOTIF for one
 * syscall (SECCOMP_FILTER_FLAG_NEW_LISTENER) and tells the parent the
 * listener's number through a pipe (write(2) is not filtered); the parent
 * takes the listener with pidfd_open + pidfd_getfd, so nothing but the one
 * measured syscall ever reaches the supervisor.  Two rounds are timed: one
 * without and one with SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (when the kernel
 * has it, Linux 6.6+).  The child times its own calls and sends the result
 * back through the pipe.
 */
#ifndef KBOX_UNOTIFY_H
#define KBOX_UNOTIFY_H

#include "floor.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

struct unotify_floor {
	const char *name; /* result lines: NAME and NAME_sync */
	int nr;           /* the notified syscall */
	/* guest runs n calls in the child and returns the elapsed ns. */
	double (*guest)(long n);
	/* answer replies to one notification on listener. */
	void (*answer)(int listener, const struct seccomp_notif *req);
};

static void xwrite(int fd, const void *buf, size_t len)
{
	if (write(fd, buf, len) != (ssize_t)len)
		die("write to pipe");
}

static void xread(int fd, void *buf, size_t len)
{
	ssize_t r;
	do
		r = read(fd, buf, len);
	while (r < 0 && errno == EINTR);
	if (r != (ssize_t)len) {
		if (r >= 0)
			errno = EPIPE;
		die("read from pipe");
	}
}

static void serve(int listener, const struct unotify_floor *f, long count)
{
	struct seccomp_notif req;
	for (long i = 0; i < count; i++) {
		memset(&req, 0, sizeof req);
		while (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
			if (errno != EINTR)
				die("SECCOMP_IOCTL_NOTIF_RECV");
			memset(&req, 0, sizeof req);
		}
		f->answer(listener, &req);
	}
}

static void child_main(const struct unotify_floor *f, long n, int tx, int rx)
{
	int listener = install_filter(f->nr, SECCOMP_RET_USER_NOTIF,
				      SECCOMP_FILTER_FLAG_NEW_LISTENER);
	xwrite(tx, &listener, sizeof listener);
	for (;;) {
		char go;
		xread(rx, &go, 1);
		if (!go)
			_exit(0);
		f->guest(n / 10 + 1); /* warm-up */
		double t = f->guest(n);
		xwrite(tx, &t, sizeof t);
	}
}

static int run_unotify_floor(const struct unotify_floor *f, long n)
{
	int c2p[2], p2c[2];
	if (pipe(c2p) != 0 || pipe(p2c) != 0)
		die("pipe");
	alarm(120); /* never hang the harness */
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(c2p[0]);
		close(p2c[1]);
		child_main(f, n, c2p[1], p2c[0]);
	}
	close(c2p[1]);
	close(p2c[0]);

	int child_listener;
	xread(c2p[0], &child_listener, sizeof child_listener);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		die("pidfd_open");
	int listener = (int)syscall(SYS_pidfd_getfd, pidfd, child_listener, 0);
	if (listener < 0)
		die("pidfd_getfd");

	long count = n / 10 + 1 + n;
	char go = 1;
	double t;

	xwrite(p2c[1], &go, 1);
	serve(listener, f, count);
	xread(c2p[0], &t, sizeof t);
	printf("%s %.1f %ld\n", f->name, t / (double)n, n);

	__u64 flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
	int sync = ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags) == 0;
	printf("sync_wake_up %s\n", sync ? "yes" : "no");
	if (sync) {
		xwrite(p2c[1], &go, 1);
		serve(listener, f, count);
		xread(c2p[0], &t, sizeof t);
		printf("%s_sync %.1f %ld\n", f->name, t / (double)n, n);
	}
	go = 0;
	xwrite(p2c[1], &go, 1);
	int status;
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "floor: %s: child failed (status %#x)\n", f->name, status);
		return 1;
	}
	return 0;
}

#endif
