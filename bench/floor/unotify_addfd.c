/*
 * unotify_addfd - floor of an emulated open under kbox's seccomp tier: the
 * guest calls openat(AT_FDCWD, FILE, O_RDONLY) + close; the supervisor
 * receives the notification, opens FILE itself and installs it in the guest
 * with SECCOMP_IOCTL_NOTIF_ADDFD + SECCOMP_ADDFD_FLAG_SEND (install and
 * reply in one step), then closes its own copy.  close is not notified.
 * Usage: unotify_addfd [-n ITERATIONS] [-f FILE]   (default /etc/hostname)
 * Prints "unotify_addfd NS N", "sync_wake_up yes|no" and, when the kernel
 * supports it, "unotify_addfd_sync NS N".
 */
#include "unotify.h"

#include <fcntl.h>

static const char *file = "/etc/hostname";

static double guest(long n)
{
	double t0 = now_ns();
	for (long i = 0; i < n; i++) {
		long fd = syscall(SYS_openat, AT_FDCWD, file, O_RDONLY);
		if (fd < 0)
			die("guest openat");
		syscall(SYS_close, fd);
	}
	return now_ns() - t0;
}

static void answer(int listener, const struct seccomp_notif *req)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("supervisor open");
	struct seccomp_notif_addfd addfd = {
		.id = req->id,
		.flags = SECCOMP_ADDFD_FLAG_SEND,
		.srcfd = (__u32)fd,
		.newfd = 0,
		.newfd_flags = 0,
	};
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) < 0)
		die("SECCOMP_IOCTL_NOTIF_ADDFD");
	close(fd);
}

int main(int argc, char **argv)
{
	long n = 20000;
	parse_args(argc, argv, &n, &file);
	struct unotify_floor f = {"unotify_addfd", SYS_openat, guest, answer};
	return run_unotify_floor(&f, n);
}
