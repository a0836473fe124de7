/*
 * unotify_rt - floor of kbox's seccomp tier: one user-notification round
 * trip (guest traps, supervisor receives and answers 0) for getppid.
 * Usage: unotify_rt [-n ITERATIONS]
 * Prints "unotify_rt NS N", "sync_wake_up yes|no" and, when the kernel
 * supports it, "unotify_rt_sync NS N".
 */
#include "unotify.h"

static double guest(long n)
{
	double t0 = now_ns();
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	return now_ns() - t0;
}

static void answer(int listener, const struct seccomp_notif *req)
{
	struct seccomp_notif_resp resp = {.id = req->id, .val = 0, .error = 0, .flags = 0};
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0)
		die("SECCOMP_IOCTL_NOTIF_SEND");
}

int main(int argc, char **argv)
{
	long n = 20000;
	parse_args(argc, argv, &n, NULL);
	struct unotify_floor f = {"unotify_rt", SYS_getppid, guest, answer};
	return run_unotify_floor(&f, n);
}
