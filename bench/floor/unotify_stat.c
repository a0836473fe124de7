/*
 * unotify_stat - floor of a stat served the way kbox's seccomp tier must
 * serve it safely: the guest calls newfstatat(AT_FDCWD, FILE, &st, 0)
 * (fstatat on arm64); the supervisor receives the notification and makes
 * the host calls kbox's rules require, and no more:
 *   - pidfd_send_signal(pidfd, 0): the process the tid was entered as has
 *     not been reaped (kbox's process table, per notification);
 *   - process_vm_readv of the path (one 256-byte chunk, as kbox's first);
 *   - SECCOMP_IOCTL_NOTIF_ID_VALID: the path was read from the live
 *     caller, not from a process that took over its pid;
 *   - fstatat(dirfd, name) on the supervisor's open parent directory (a
 *     path kbox resolved earlier is cached);
 *   - pwrite of the result through the caller's /proc/<pid>/mem, opened
 *     once (writes never name a process by number);
 *   - SECCOMP_IOCTL_NOTIF_SEND.
 * Usage: unotify_stat [-n ITERATIONS] [-f FILE]   (default /etc/hostname)
 * Prints "unotify_stat NS N", "sync_wake_up yes|no" and, when the kernel
 * supports it, "unotify_stat_sync NS N".
 */
#include "unotify.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

#if defined(__x86_64__)
#define STAT_NR SYS_newfstatat
#else
#define STAT_NR SYS_fstatat
#endif

static const char *file = "/etc/hostname";
static int dirfd_ = -1, pidfd = -1, memfd = -1;
static const char *base;
/* FLOOR_STAT_SKIP (environment): a bit mask of steps to leave out, to
 * measure each one's share: 1 pidfd check, 2 path read, 4 ID_VALID,
 * 8 fstatat, 16 result write.  The harness never sets it. */
static unsigned skip;

static double guest(long n)
{
	struct stat st;
	double t0 = now_ns();
	for (long i = 0; i < n; i++)
		if (syscall(STAT_NR, AT_FDCWD, file, &st, 0) != 0)
			die("guest stat");
	return now_ns() - t0;
}

static void answer(int listener, const struct seccomp_notif *req)
{
	if (pidfd < 0) {
		char p[64];
		pidfd = (int)syscall(SYS_pidfd_open, req->pid, 0);
		snprintf(p, sizeof p, "/proc/%u/mem", req->pid);
		memfd = open(p, O_RDWR | O_CLOEXEC);
		if (pidfd < 0 || memfd < 0)
			die("pidfd_open or /proc/PID/mem");
	}
	if (!(skip & 1) && syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) != 0)
		die("pidfd_send_signal");
	/* One chunk, never past the page the path starts in (as kbox). */
	char path[256];
	uint64_t addr = req->data.args[1];
	size_t len = 4096 - addr % 4096;
	if (len > sizeof path)
		len = sizeof path;
	struct iovec local = {path, len};
	struct iovec remote = {(void *)(uintptr_t)addr, len};
	if (skip & 2)
		path[0] = 0;
	else if (process_vm_readv(req->pid, &local, 1, &remote, 1, 0) != (ssize_t)len)
		die("process_vm_readv");
	__u64 id = req->id;
	if (!(skip & 4) && ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0)
		die("SECCOMP_IOCTL_NOTIF_ID_VALID");
	if (memchr(path, 0, len) == NULL)
		die("path without NUL");
	struct stat st;
	struct seccomp_notif_resp resp = {.id = req->id};
	memset(&st, 0, sizeof st);
	if (!(skip & 8) && fstatat(dirfd_, base, &st, AT_SYMLINK_NOFOLLOW) != 0)
		resp.error = -errno;
	else if (!(skip & 16) && pwrite(memfd, &st, sizeof st, (off_t)req->data.args[2]) != (ssize_t)sizeof st)
		die("pwrite /proc/PID/mem");
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0)
		die("SECCOMP_IOCTL_NOTIF_SEND");
}

int main(int argc, char **argv)
{
	long n = 20000;
	parse_args(argc, argv, &n, &file);
	if (getenv("FLOOR_STAT_SKIP"))
		skip = (unsigned)strtoul(getenv("FLOOR_STAT_SKIP"), NULL, 0);
	char *dir = strdup(file), *b = strdup(file);
	dirfd_ = open(dirname(dir), O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd_ < 0)
		die("open the file's directory");
	base = basename(b);
	struct unotify_floor f = {"unotify_stat", STAT_NR, guest, answer};
	return run_unotify_floor(&f, n);
}
