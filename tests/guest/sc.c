/*
 * sc - raw syscall probe for kbox guest tests.
 *
 * Usage: sc OP ARG... [, OP ARG...]...
 *
 * Every op is performed with syscall(SYS_xxx, ...) so libc cannot substitute
 * a different syscall, and prints exactly one line:
 *     <op>: ok <value>        or        <op>: err <ERRNAME>
 * Legacy path ops (open, stat, mkdir, rename, utime...) make their *at
 * call on an architecture without the legacy one (arm64), as libc does, so
 * that the same tables run there; other ops whose syscall does not exist on
 * this architecture print "<op>: err ENOSYS-NOTBUILT".  Exit status is 0 unless usage is wrong (2).
 *
 * ptrace_attach PID attaches, waits, detaches (0); ptrace_child forks a child
 * that asks to be traced and stops, continues it and returns its status (42).
 *
 * Argument conventions:
 *   FD/DIRFD  "@N" = descriptor returned by op number N (1-based), "cwd" =
 *             AT_FDCWD, otherwise a decimal (or 0x hex) integer.
 *   FLAGS     symbolic names joined by '|' (O_WRONLY|O_CREAT, AT_REMOVEDIR,
 *             RESOLVE_IN_ROOT, R_OK|W_OK, ...) or numbers; "0" for none.
 *   MODE      octal.
 *   PATH      a string; the literal "(null)" passes a NULL pointer.
 *   TEXT      (write, setxattr) backslash escapes \n \t \r \0 \\ \xNN.
 * Output values: read/getxattr/readfile data escapes bytes outside 0x21..0x7e
 * (except space) and the backslash as \xNN.  Empty lists print just "ok".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

/* ---- constants that older/minimal headers (musl, no linux/ headers) may lack ---- */
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_statx
#if defined(__x86_64__)
#define SYS_statx 332
#elif defined(__aarch64__)
#define SYS_statx 291
#endif
#endif
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef RENAME_WHITEOUT
#define RENAME_WHITEOUT (1 << 2)
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif
#ifndef AT_NO_AUTOMOUNT
#define AT_NO_AUTOMOUNT 0x800
#endif
#ifndef AT_STATX_SYNC_AS_STAT
#define AT_STATX_SYNC_AS_STAT 0x0000
#endif
#ifndef AT_STATX_FORCE_SYNC
#define AT_STATX_FORCE_SYNC 0x2000
#endif
#ifndef AT_STATX_DONT_SYNC
#define AT_STATX_DONT_SYNC 0x4000
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef O_PATH
#define O_PATH 010000000
#endif
#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif
#ifndef UMOUNT_NOFOLLOW
#define UMOUNT_NOFOLLOW 8
#endif
#ifndef MNT_EXPIRE
#define MNT_EXPIRE 4
#endif
/* glibc defines O_LARGEFILE as 0 on 64-bit; raw syscalls want the kernel value. */
#if defined(__x86_64__)
#define K_O_LARGEFILE 0100000
#elif defined(__aarch64__)
#define K_O_LARGEFILE 0400000
#else
#define K_O_LARGEFILE O_LARGEFILE
#endif
#define K_RESOLVE_NO_XDEV 0x01
#define K_RESOLVE_NO_MAGICLINKS 0x02
#define K_RESOLVE_NO_SYMLINKS 0x04
#define K_RESOLVE_BENEATH 0x08
#define K_RESOLVE_IN_ROOT 0x10
#define K_RESOLVE_CACHED 0x20
#define K_STATX_BASIC_STATS 0x7ffU
/* SysV IPC commands minimal headers may lack */
#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#endif
#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20
#endif
#ifndef MSG_STAT_ANY
#define MSG_STAT_ANY 13
#endif
/* offsets in the kernel's shmid64_ds, semid64_ds, msqid64_ds (64-bit) */
#define K_SHM_SEGSZ 48
#define K_SHM_NATTCH 88
#if defined(__x86_64__)
#define K_SEM_NSEMS 80
#else
#define K_SEM_NSEMS 64
#endif
#define K_MSG_QNUM 80

struct k_open_how { uint64_t flags, mode, resolve; };
struct k_statx_ts { int64_t tv_sec; uint32_t tv_nsec; int32_t reserved; };
struct k_statx {
	uint32_t stx_mask, stx_blksize;
	uint64_t stx_attributes;
	uint32_t stx_nlink, stx_uid, stx_gid;
	uint16_t stx_mode, spare0;
	uint64_t stx_ino, stx_size, stx_blocks, stx_attributes_mask;
	struct k_statx_ts stx_atime, stx_btime, stx_ctime, stx_mtime;
	uint32_t stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
	uint64_t spare2[14];
};
struct k_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* ---- errno names ---- */
struct name_val { const char *name; long long val; };
#define NV(x) { #x, (long long)(x) }
static const struct name_val errnames[] = {
	NV(EPERM), NV(ENOENT), NV(ESRCH), NV(EINTR), NV(EIO), NV(ENXIO), NV(E2BIG),
	NV(ENOEXEC), NV(EBADF), NV(ECHILD), NV(EAGAIN), NV(ENOMEM), NV(EACCES),
	NV(EFAULT), NV(ENOTBLK), NV(EBUSY), NV(EEXIST), NV(EXDEV), NV(ENODEV),
	NV(ENOTDIR), NV(EISDIR), NV(EINVAL), NV(ENFILE), NV(EMFILE), NV(ENOTTY),
	NV(ETXTBSY), NV(EFBIG), NV(ENOSPC), NV(ESPIPE), NV(EROFS), NV(EMLINK),
	NV(EPIPE), NV(EDOM), NV(ERANGE), NV(EDEADLK), NV(ENAMETOOLONG), NV(ENOLCK),
	NV(ENOSYS), NV(ENOTEMPTY), NV(ELOOP), NV(ENOMSG), NV(EIDRM), NV(ENOSTR),
	NV(ENODATA), NV(ETIME), NV(ENOSR), NV(EREMOTE), NV(ENOLINK), NV(EPROTO),
	NV(EMULTIHOP), NV(EBADMSG), NV(EOVERFLOW), NV(EBADFD), NV(EILSEQ),
	NV(ERESTART), NV(EUSERS), NV(ENOTSOCK), NV(EDESTADDRREQ), NV(EMSGSIZE),
	NV(EPROTOTYPE), NV(ENOPROTOOPT), NV(EPROTONOSUPPORT), NV(ESOCKTNOSUPPORT),
	NV(EOPNOTSUPP), NV(EPFNOSUPPORT), NV(EAFNOSUPPORT), NV(EADDRINUSE),
	NV(EADDRNOTAVAIL), NV(ENETDOWN), NV(ENETUNREACH), NV(ENETRESET),
	NV(ECONNABORTED), NV(ECONNRESET), NV(ENOBUFS), NV(EISCONN), NV(ENOTCONN),
	NV(ESHUTDOWN), NV(ETOOMANYREFS), NV(ETIMEDOUT), NV(ECONNREFUSED),
	NV(EHOSTDOWN), NV(EHOSTUNREACH), NV(EALREADY), NV(EINPROGRESS), NV(ESTALE),
	NV(EUCLEAN), NV(EREMOTEIO), NV(EDQUOT), NV(ENOMEDIUM), NV(EMEDIUMTYPE),
	NV(ECANCELED), NV(ENOKEY), NV(EKEYEXPIRED), NV(EKEYREVOKED),
	NV(EKEYREJECTED), NV(EOWNERDEAD), NV(ENOTRECOVERABLE), NV(ERFKILL),
	NV(EHWPOISON),
};

static const char *errname(int e)
{
	static char buf[32];
	size_t i;
	for (i = 0; i < sizeof errnames / sizeof errnames[0]; i++)
		if (errnames[i].val == e)
			return errnames[i].name;
	snprintf(buf, sizeof buf, "E%d", e);
	return buf;
}

/* ---- symbolic flags ---- */
static const struct name_val flagnames[] = {
	NV(O_RDONLY), NV(O_WRONLY), NV(O_RDWR), NV(O_CREAT), NV(O_EXCL),
	NV(O_NOCTTY), NV(O_TRUNC), NV(O_APPEND), NV(O_NONBLOCK), NV(O_DSYNC),
	NV(O_SYNC), NV(O_DIRECTORY), NV(O_NOFOLLOW), NV(O_CLOEXEC), NV(O_PATH),
	NV(O_TMPFILE), NV(O_NOATIME), NV(O_DIRECT), NV(O_ASYNC),
	{ "O_LARGEFILE", K_O_LARGEFILE },
	NV(AT_SYMLINK_NOFOLLOW), NV(AT_SYMLINK_FOLLOW), NV(AT_REMOVEDIR),
	NV(AT_EACCESS), NV(AT_EMPTY_PATH), NV(AT_NO_AUTOMOUNT),
	NV(AT_STATX_SYNC_AS_STAT), NV(AT_STATX_FORCE_SYNC), NV(AT_STATX_DONT_SYNC),
	NV(AT_RECURSIVE),
	NV(RENAME_NOREPLACE), NV(RENAME_EXCHANGE), NV(RENAME_WHITEOUT),
	{ "RESOLVE_NO_XDEV", K_RESOLVE_NO_XDEV },
	{ "RESOLVE_NO_MAGICLINKS", K_RESOLVE_NO_MAGICLINKS },
	{ "RESOLVE_NO_SYMLINKS", K_RESOLVE_NO_SYMLINKS },
	{ "RESOLVE_BENEATH", K_RESOLVE_BENEATH },
	{ "RESOLVE_IN_ROOT", K_RESOLVE_IN_ROOT },
	{ "RESOLVE_CACHED", K_RESOLVE_CACHED },
	NV(F_OK), NV(R_OK), NV(W_OK), NV(X_OK),
	NV(MNT_FORCE), NV(MNT_DETACH), NV(MNT_EXPIRE), NV(UMOUNT_NOFOLLOW),
	NV(MS_RDONLY), NV(MS_NOSUID), NV(MS_NODEV), NV(MS_NOEXEC), NV(MS_REMOUNT),
	NV(MS_BIND), NV(MS_REC), NV(MS_PRIVATE),
	NV(XATTR_CREATE), NV(XATTR_REPLACE),
	NV(IPC_CREAT), NV(IPC_EXCL), NV(IPC_NOWAIT), NV(IPC_RMID), NV(IPC_SET),
	NV(IPC_STAT), NV(IPC_INFO), NV(SHM_RDONLY), NV(SHM_STAT), NV(SHM_INFO),
	NV(SHM_STAT_ANY), NV(SHM_LOCK), NV(SHM_UNLOCK), NV(GETPID), NV(GETVAL),
	NV(GETALL), NV(GETNCNT), NV(GETZCNT), NV(SETVAL), NV(SETALL), NV(SEM_STAT),
	NV(SEM_INFO), NV(SEM_STAT_ANY), NV(SEM_UNDO), NV(MSG_STAT), NV(MSG_INFO),
	NV(MSG_STAT_ANY), NV(MSG_NOERROR),
};

#define MAXOPS 256
#define NOTBUILT (-100000L) /* handler sentinel: syscall absent on this arch */

static long op_fds[MAXOPS + 1]; /* descriptor returned by each op, or -1 */
static int cur_op;

static void usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("sc: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	fflush(stdout);
	exit(2);
}

/* ---- argument parsing ---- */
static long long parse_num(const char *s, int base)
{
	char *end;
	long long v;
	if (base == 10 && (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0))
		base = 16;
	errno = 0;
	v = strtoll(s, &end, base);
	if (*s == '\0' || *end != '\0' || errno)
		usage_error("bad number '%s'", s);
	return v;
}

/* integer or descriptor: "@N", "cwd", or a number */
static long I(const char *s)
{
	if (s[0] == '@') {
		long long n = parse_num(s + 1, 10);
		if (n < 1 || n >= cur_op)
			usage_error("'%s' does not name an earlier op", s);
		return op_fds[n];
	}
	if (strcmp(s, "cwd") == 0 || strcmp(s, "AT_FDCWD") == 0)
		return AT_FDCWD;
	return (long)parse_num(s, 10);
}

static long M(const char *s) { return (long)parse_num(s, 8); }

static const char *P(const char *s) { return strcmp(s, "(null)") == 0 ? NULL : s; }

static long F(const char *s)
{
	long long v = 0;
	char tok[64];
	while (*s) {
		size_t n = strcspn(s, "|"), i;
		int found = 0;
		if (n == 0 || n >= sizeof tok)
			usage_error("bad flag expression");
		memcpy(tok, s, n);
		tok[n] = '\0';
		s += n + (s[n] == '|');
		if ((tok[0] >= '0' && tok[0] <= '9') || tok[0] == '-') {
			v |= parse_num(tok, 0);
			continue;
		}
		for (i = 0; i < sizeof flagnames / sizeof flagnames[0]; i++) {
			if (strcmp(flagnames[i].name, tok) == 0) {
				v |= flagnames[i].val;
				found = 1;
				break;
			}
		}
		if (!found)
			usage_error("unknown flag '%s'", tok);
	}
	return (long)v;
}

static unsigned long mkdev(long maj, long min)
{
	return ((unsigned long)(min & 0xff)) | ((unsigned long)(maj & 0xfff) << 8) |
	       ((unsigned long)(min & ~0xffL) << 12);
}

/* unescape \n \t \r \0 \\ \xNN in place; returns length */
static size_t unescape(char *s)
{
	char *o = s, *i = s;
	while (*i) {
		if (*i == '\\' && i[1]) {
			i++;
			switch (*i) {
			case 'n': *o++ = '\n'; i++; break;
			case 't': *o++ = '\t'; i++; break;
			case 'r': *o++ = '\r'; i++; break;
			case '0': *o++ = '\0'; i++; break;
			case 'x': {
				char h[3] = { 0, 0, 0 };
				if (i[1] && i[2]) {
					h[0] = i[1];
					h[1] = i[2];
					*o++ = (char)strtol(h, NULL, 16);
					i += 3;
				} else {
					*o++ = *i++;
				}
				break;
			}
			default: *o++ = *i++; break;
			}
		} else {
			*o++ = *i++;
		}
	}
	*o = '\0';
	return (size_t)(o - s);
}

/* ---- result buffer ---- */
typedef struct {
	char *buf;
	size_t len, cap;
	int set;  /* custom output present */
	long fd;  /* descriptor to remember for @N */
} res_t;

static void outf(res_t *r, const char *fmt, ...)
{
	va_list ap;
	int n;
	r->set = 1;
	for (;;) {
		size_t room = r->cap - r->len;
		va_start(ap, fmt);
		n = vsnprintf(r->buf ? r->buf + r->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			r->len += (size_t)n;
			return;
		}
		r->cap = (r->cap + (size_t)n + 64) * 2;
		r->buf = realloc(r->buf, r->cap);
		if (!r->buf) {
			perror("sc: realloc");
			exit(2);
		}
	}
}

static void out_esc(res_t *r, const char *d, size_t n)
{
	size_t i;
	outf(r, "%s", "");
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d[i];
		if ((c > 0x20 && c < 0x7f && c != '\\') || c == ' ')
			outf(r, "%c", c);
		else
			outf(r, "\\x%02x", c);
	}
}

static const char *ftype(unsigned mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "reg";
	case S_IFDIR: return "dir";
	case S_IFLNK: return "lnk";
	case S_IFCHR: return "chr";
	case S_IFBLK: return "blk";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "sock";
	default: return "unknown";
	}
}

static void out_stat6(res_t *r, unsigned mode, unsigned long long uid, unsigned long long gid,
		      long long size, unsigned long long nlink, unsigned long long ino)
{
	outf(r, "type=%s mode=%04o uid=%llu gid=%llu size=%lld nlink=%llu ino=%llu", ftype(mode),
	     mode & 07777, uid, gid, size, nlink, ino);
}

static long out_stat(res_t *r, long rc, const struct stat *st)
{
	if (rc == 0)
		out_stat6(r, st->st_mode, st->st_uid, st->st_gid, (long long)st->st_size,
			  (unsigned long long)st->st_nlink, (unsigned long long)st->st_ino);
	return rc;
}

static long fdres(res_t *r, long rc)
{
	if (rc >= 0)
		r->fd = rc;
	return rc;
}

/* times: seconds, "now" (UTIME_NOW), "omit" (UTIME_OMIT) */
static void ts_arg(const char *s, struct timespec *ts)
{
	ts->tv_sec = 0;
	if (strcmp(s, "now") == 0)
		ts->tv_nsec = UTIME_NOW;
	else if (strcmp(s, "omit") == 0)
		ts->tv_nsec = UTIME_OMIT;
	else {
		ts->tv_sec = (time_t)parse_num(s, 10);
		ts->tv_nsec = 0;
	}
}

static int is_null_times(char **a, int n, int i) { return n <= i || strcmp(a[i], "null") == 0; }

/* ---- handlers ---- */
#define U __attribute__((unused))
#define OP(fn) static long fn(char **a U, int n U, res_t *r U)
#define SC syscall

OP(op_open)
{
#ifdef SYS_open
	return fdres(r, SC(SYS_open, P(a[0]), F(a[1]), n > 2 ? M(a[2]) : 0L));
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	return fdres(r, SC(SYS_openat, (long)AT_FDCWD, P(a[0]), F(a[1]), n > 2 ? M(a[2]) : 0L));
#endif
}
OP(op_openat) { return fdres(r, SC(SYS_openat, I(a[0]), P(a[1]), F(a[2]), n > 3 ? M(a[3]) : 0L)); }
OP(op_openat2)
{
	struct k_open_how how;
	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)F(a[2]);
	how.mode = (uint64_t)M(a[3]);
	how.resolve = (uint64_t)F(a[4]);
	return fdres(r, SC(SYS_openat2, I(a[0]), P(a[1]), &how, sizeof how));
}
OP(op_creat)
{
#ifdef SYS_creat
	return fdres(r, SC(SYS_creat, P(a[0]), M(a[1])));
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	return fdres(r, SC(SYS_openat, (long)AT_FDCWD, P(a[0]), (long)(O_CREAT | O_WRONLY | O_TRUNC), M(a[1])));
#endif
}
OP(op_close) { return SC(SYS_close, I(a[0])); }
OP(op_read)
{
	long cnt = I(a[1]), rc;
	char *buf;
	if (cnt < 0 || cnt > (1L << 24))
		usage_error("bad read count");
	buf = malloc((size_t)cnt + 1);
	rc = SC(SYS_read, I(a[0]), buf, cnt);
	if (rc >= 0) {
		outf(r, "%ld", rc);
		if (rc > 0) {
			outf(r, " ");
			out_esc(r, buf, (size_t)rc);
		}
	}
	free(buf);
	return rc;
}
OP(op_write)
{
	size_t len = unescape(a[1]);
	return SC(SYS_write, I(a[0]), a[1], len);
}
OP(op_stat)
{
#ifdef SYS_stat
	struct stat st;
	return out_stat(r, SC(SYS_stat, P(a[0]), &st), &st);
#else
	struct stat st;
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	return out_stat(r, SC(SYS_newfstatat, (long)AT_FDCWD, P(a[0]), &st, 0L), &st);
#endif
}
OP(op_lstat)
{
#ifdef SYS_lstat
	struct stat st;
	return out_stat(r, SC(SYS_lstat, P(a[0]), &st), &st);
#else
	struct stat st;
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	return out_stat(r, SC(SYS_newfstatat, (long)AT_FDCWD, P(a[0]), &st, (long)AT_SYMLINK_NOFOLLOW), &st);
#endif
}
OP(op_fstat)
{
	struct stat st;
	return out_stat(r, SC(SYS_fstat, I(a[0]), &st), &st);
}
OP(op_fstatat)
{
	struct stat st;
#if defined(SYS_newfstatat)
	return out_stat(r, SC(SYS_newfstatat, I(a[0]), P(a[1]), &st, F(a[2])), &st);
#elif defined(SYS_fstatat)
	return out_stat(r, SC(SYS_fstatat, I(a[0]), P(a[1]), &st, F(a[2])), &st);
#else
	(void)st;
	return NOTBUILT;
#endif
}
OP(op_statx)
{
#ifdef SYS_statx
	struct k_statx sx;
	long rc;
	memset(&sx, 0, sizeof sx);
	rc = SC(SYS_statx, I(a[0]), P(a[1]), F(a[2]), K_STATX_BASIC_STATS, &sx);
	if (rc == 0)
		out_stat6(r, sx.stx_mode, sx.stx_uid, sx.stx_gid, (long long)sx.stx_size,
			  sx.stx_nlink, sx.stx_ino);
	return rc;
#else
	return NOTBUILT;
#endif
}
OP(op_access)
{
#ifdef SYS_access
	return SC(SYS_access, P(a[0]), F(a[1]));
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	return SC(SYS_faccessat, (long)AT_FDCWD, P(a[0]), F(a[1]), 0L);
#endif
}
OP(op_faccessat) { return SC(SYS_faccessat, I(a[0]), P(a[1]), F(a[2]), n > 3 ? F(a[3]) : 0L); }
OP(op_faccessat2) { return SC(SYS_faccessat2, I(a[0]), P(a[1]), F(a[2]), n > 3 ? F(a[3]) : 0L); }

static long link_result(res_t *r, long rc, const char *buf)
{
	if (rc >= 0)
		out_esc(r, buf, (size_t)rc);
	return rc;
}
OP(op_readlink)
{
#ifdef SYS_readlink
	char buf[8192];
	return link_result(r, SC(SYS_readlink, P(a[0]), buf, sizeof buf), buf);
#else
	char buf[8192];
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	return link_result(r, SC(SYS_readlinkat, (long)AT_FDCWD, P(a[0]), buf, sizeof buf), buf);
#endif
}
OP(op_readlinkat)
{
	char buf[8192];
	return link_result(r, SC(SYS_readlinkat, I(a[0]), P(a[1]), buf, sizeof buf), buf);
}
OP(op_mkdir)
{
#ifdef SYS_mkdir
	return SC(SYS_mkdir, P(a[0]), n > 1 ? M(a[1]) : 0755L);
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	return SC(SYS_mkdirat, (long)AT_FDCWD, P(a[0]), n > 1 ? M(a[1]) : 0755L);
#endif
}
OP(op_mkdirat) { return SC(SYS_mkdirat, I(a[0]), P(a[1]), n > 2 ? M(a[2]) : 0755L); }

static long mknod_mode(const char *type, const char *mode)
{
	static const struct { const char *n; long t; } types[] = {
		{ "reg", S_IFREG }, { "fifo", S_IFIFO }, { "sock", S_IFSOCK },
		{ "chr", S_IFCHR }, { "blk", S_IFBLK }, { "0", 0 },
	};
	size_t i;
	for (i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strcmp(types[i].n, type) == 0)
			return types[i].t | M(mode);
	usage_error("bad mknod type '%s' (reg|fifo|sock|chr|blk)", type);
	return 0;
}
OP(op_mknod)
{
#ifdef SYS_mknod
	if (n != 3 && n != 5)
		usage_error("mknod PATH TYPE MODE [MAJ MIN]");
	return SC(SYS_mknod, P(a[0]), mknod_mode(a[1], a[2]), n == 5 ? mkdev(I(a[3]), I(a[4])) : 0UL);
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	if (n != 3 && n != 5)
		usage_error("mknod PATH TYPE MODE [MAJ MIN]");
	return SC(SYS_mknodat, (long)AT_FDCWD, P(a[0]), mknod_mode(a[1], a[2]), n == 5 ? mkdev(I(a[3]), I(a[4])) : 0UL);
#endif
}
OP(op_mknodat)
{
	if (n != 4 && n != 6)
		usage_error("mknodat DIRFD PATH TYPE MODE [MAJ MIN]");
	return SC(SYS_mknodat, I(a[0]), P(a[1]), mknod_mode(a[2], a[3]),
		  n == 6 ? mkdev(I(a[4]), I(a[5])) : 0UL);
}
OP(op_unlink)
{
#ifdef SYS_unlink
	return SC(SYS_unlink, P(a[0]));
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	return SC(SYS_unlinkat, (long)AT_FDCWD, P(a[0]), 0L);
#endif
}
OP(op_unlinkat) { return SC(SYS_unlinkat, I(a[0]), P(a[1]), n > 2 ? F(a[2]) : 0L); }
OP(op_rmdir)
{
#ifdef SYS_rmdir
	return SC(SYS_rmdir, P(a[0]));
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	return SC(SYS_unlinkat, (long)AT_FDCWD, P(a[0]), (long)AT_REMOVEDIR);
#endif
}
OP(op_rename)
{
#ifdef SYS_rename
	return SC(SYS_rename, P(a[0]), P(a[1]));
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	return SC(SYS_renameat, (long)AT_FDCWD, P(a[0]), (long)AT_FDCWD, P(a[1]));
#endif
}
OP(op_renameat)
{
#ifdef SYS_renameat
	return SC(SYS_renameat, I(a[0]), P(a[1]), I(a[2]), P(a[3]));
#else
	return SC(SYS_renameat2, I(a[0]), P(a[1]), I(a[2]), P(a[3]), 0L);
#endif
}
OP(op_renameat2) { return SC(SYS_renameat2, I(a[0]), P(a[1]), I(a[2]), P(a[3]), F(a[4])); }
OP(op_link)
{
#ifdef SYS_link
	return SC(SYS_link, P(a[0]), P(a[1]));
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	return SC(SYS_linkat, (long)AT_FDCWD, P(a[0]), (long)AT_FDCWD, P(a[1]), 0L);
#endif
}
OP(op_linkat) { return SC(SYS_linkat, I(a[0]), P(a[1]), I(a[2]), P(a[3]), n > 4 ? F(a[4]) : 0L); }
OP(op_symlink)
{
#ifdef SYS_symlink
	return SC(SYS_symlink, P(a[0]), P(a[1]));
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	return SC(SYS_symlinkat, P(a[0]), (long)AT_FDCWD, P(a[1]));
#endif
}
OP(op_symlinkat) { return SC(SYS_symlinkat, P(a[0]), I(a[1]), P(a[2])); }
OP(op_chmod)
{
#ifdef SYS_chmod
	return SC(SYS_chmod, P(a[0]), M(a[1]));
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	return SC(SYS_fchmodat, (long)AT_FDCWD, P(a[0]), M(a[1]), 0L);
#endif
}
OP(op_fchmod) { return SC(SYS_fchmod, I(a[0]), M(a[1])); }
OP(op_fchmodat) { return SC(SYS_fchmodat, I(a[0]), P(a[1]), M(a[2]), n > 3 ? F(a[3]) : 0L); }
OP(op_fchmodat2) { return SC(SYS_fchmodat2, I(a[0]), P(a[1]), M(a[2]), n > 3 ? F(a[3]) : 0L); }
OP(op_chown)
{
#ifdef SYS_chown
	return SC(SYS_chown, P(a[0]), I(a[1]), I(a[2]));
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	return SC(SYS_fchownat, (long)AT_FDCWD, P(a[0]), I(a[1]), I(a[2]), 0L);
#endif
}
OP(op_lchown)
{
#ifdef SYS_lchown
	return SC(SYS_lchown, P(a[0]), I(a[1]), I(a[2]));
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	return SC(SYS_fchownat, (long)AT_FDCWD, P(a[0]), I(a[1]), I(a[2]), (long)AT_SYMLINK_NOFOLLOW);
#endif
}
OP(op_fchown) { return SC(SYS_fchown, I(a[0]), I(a[1]), I(a[2])); }
OP(op_fchownat)
{
	return SC(SYS_fchownat, I(a[0]), P(a[1]), I(a[2]), I(a[3]), n > 4 ? F(a[4]) : 0L);
}
OP(op_utime)
{
#ifdef SYS_utime
	struct utimbuf ub;
	if (is_null_times(a, n, 1) || is_null_times(a, n, 2))
		return SC(SYS_utime, P(a[0]), NULL);
	ub.actime = (time_t)I(a[1]);
	ub.modtime = (time_t)I(a[2]);
	return SC(SYS_utime, P(a[0]), &ub);
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	struct timespec ts[2];
	if (is_null_times(a, n, 1) || is_null_times(a, n, 2))
		return SC(SYS_utimensat, (long)AT_FDCWD, P(a[0]), NULL, 0L);
	ts[0].tv_sec = (time_t)I(a[1]);
	ts[1].tv_sec = (time_t)I(a[2]);
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	return SC(SYS_utimensat, (long)AT_FDCWD, P(a[0]), ts, 0L);
#endif
}
static struct timeval *tv_args(char **a, int n, int i, struct timeval tv[2])
{
	if (is_null_times(a, n, i) || is_null_times(a, n, i + 1))
		return NULL;
	tv[0].tv_sec = (time_t)I(a[i]);
	tv[1].tv_sec = (time_t)I(a[i + 1]);
	tv[0].tv_usec = tv[1].tv_usec = 0;
	return tv;
}
OP(op_utimes)
{
#ifdef SYS_utimes
	struct timeval tv[2];
	return SC(SYS_utimes, P(a[0]), tv_args(a, n, 1, tv));
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	struct timeval tv[2], *tp = tv_args(a, n, 1, tv);
	struct timespec ts[2];
	for (int k = 0; tp && k < 2; k++) {
		ts[k].tv_sec = tv[k].tv_sec;
		ts[k].tv_nsec = tv[k].tv_usec * 1000;
	}
	return SC(SYS_utimensat, (long)AT_FDCWD, P(a[0]), tp ? ts : NULL, 0L);
#endif
}
OP(op_futimesat)
{
#ifdef SYS_futimesat
	struct timeval tv[2];
	return SC(SYS_futimesat, I(a[0]), P(a[1]), tv_args(a, n, 2, tv));
#else
	/* no legacy call on this arch (arm64): the *at form, as libc does */
	struct timeval tv[2], *tp = tv_args(a, n, 2, tv);
	struct timespec ts[2];
	for (int k = 0; tp && k < 2; k++) {
		ts[k].tv_sec = tv[k].tv_sec;
		ts[k].tv_nsec = tv[k].tv_usec * 1000;
	}
	return SC(SYS_utimensat, I(a[0]), P(a[1]), tp ? ts : NULL, 0L);
#endif
}
OP(op_utimensat)
{
	struct timespec ts[2], *tp = ts;
	if (is_null_times(a, n, 2) || is_null_times(a, n, 3))
		tp = NULL;
	else {
		ts_arg(a[2], &ts[0]);
		ts_arg(a[3], &ts[1]);
	}
	return SC(SYS_utimensat, I(a[0]), P(a[1]), tp, n > 4 ? F(a[4]) : 0L);
}
OP(op_truncate) { return SC(SYS_truncate, P(a[0]), I(a[1])); }
OP(op_ftruncate) { return SC(SYS_ftruncate, I(a[0]), I(a[1])); }
OP(op_chdir) { return SC(SYS_chdir, P(a[0])); }
OP(op_fchdir) { return SC(SYS_fchdir, I(a[0])); }
OP(op_getcwd)
{
	char buf[8192];
	long rc = SC(SYS_getcwd, buf, sizeof buf);
	if (rc >= 0)
		outf(r, "%s", buf);
	return rc;
}
OP(op_statfs)
{
	struct statfs sf;
	long rc = SC(SYS_statfs, P(a[0]), &sf);
	if (rc == 0)
		outf(r, "type=0x%lx", (unsigned long)sf.f_type);
	return rc;
}

/* xattrs: l-variants share handlers via the op name */
static long xget(res_t *r, long nr, char **a)
{
	static char buf[65536];
	long rc = SC(nr, P(a[0]), P(a[1]), buf, sizeof buf);
	if (rc >= 0)
		out_esc(r, buf, (size_t)rc);
	return rc;
}
static long xlist(res_t *r, long nr, char **a)
{
	static char buf[65536];
	long rc = SC(nr, P(a[0]), buf, sizeof buf), i;
	if (rc >= 0) {
		outf(r, "%s", "");
		for (i = 0; i < rc; i += (long)strlen(buf + i) + 1)
			outf(r, "%s%s", i ? "," : "", buf + i);
	}
	return rc;
}
static long xset(long nr, char **a, int n)
{
	size_t len = unescape(a[2]);
	return SC(nr, P(a[0]), P(a[1]), a[2], len, n > 3 ? F(a[3]) : 0L);
}
OP(op_getxattr) { return xget(r, SYS_getxattr, a); }
OP(op_lgetxattr) { return xget(r, SYS_lgetxattr, a); }
OP(op_setxattr) { return xset(SYS_setxattr, a, n); }
OP(op_lsetxattr) { return xset(SYS_lsetxattr, a, n); }
OP(op_listxattr) { return xlist(r, SYS_listxattr, a); }
OP(op_llistxattr) { return xlist(r, SYS_llistxattr, a); }
OP(op_removexattr) { return SC(SYS_removexattr, P(a[0]), P(a[1])); }
OP(op_lremovexattr) { return SC(SYS_lremovexattr, P(a[0]), P(a[1])); }
/* descriptor forms: FD NAME ... */
OP(op_fgetxattr)
{
	static char buf[65536];
	long rc = SC(SYS_fgetxattr, I(a[0]), P(a[1]), buf, sizeof buf);
	if (rc >= 0)
		out_esc(r, buf, (size_t)rc);
	return rc;
}
OP(op_flistxattr)
{
	static char buf[65536];
	long rc = SC(SYS_flistxattr, I(a[0]), buf, sizeof buf), i;
	if (rc >= 0) {
		outf(r, "%s", "");
		for (i = 0; i < rc; i += (long)strlen(buf + i) + 1)
			outf(r, "%s%s", i ? "," : "", buf + i);
	}
	return rc;
}
OP(op_fsetxattr)
{
	size_t len = unescape(a[2]);
	return SC(SYS_fsetxattr, I(a[0]), P(a[1]), a[2], len, n > 3 ? F(a[3]) : 0L);
}
OP(op_fremovexattr) { return SC(SYS_fremovexattr, I(a[0]), P(a[1])); }
/* inode flags (FS_IOC_GETFLAGS / FS_IOC_SETFLAGS, which read an int) */
#define K_FS_IOC_GETFLAGS 0x80086601UL
#define K_FS_IOC_SETFLAGS 0x40086602UL
#define K_FS_IOC_FSGETXATTR 0x801c581fUL
#define K_FS_IOC_FSSETXATTR 0x401c5820UL
struct k_fsxattr { uint32_t xflags, extsize, nextents, projid, cowextsize; unsigned char pad[8]; };
OP(op_getflags)
{
	int v = 0;
	long rc = SC(SYS_ioctl, I(a[0]), K_FS_IOC_GETFLAGS, &v);
	if (rc >= 0)
		outf(r, "%#x", (unsigned)v);
	return rc;
}
/* chattr FD BITS: FS_IOC_GETFLAGS, then FS_IOC_SETFLAGS with BITS added */
OP(op_chattr)
{
	int v = 0;
	if (SC(SYS_ioctl, I(a[0]), K_FS_IOC_GETFLAGS, &v) < 0)
		return -1;
	v |= (int)I(a[1]);
	return SC(SYS_ioctl, I(a[0]), K_FS_IOC_SETFLAGS, &v);
}
/* fsxattr FD XFLAGS: FS_IOC_FSGETXATTR, then FS_IOC_FSSETXATTR with xflags */
OP(op_fsxattr)
{
	struct k_fsxattr x;
	memset(&x, 0, sizeof x);
	if (SC(SYS_ioctl, I(a[0]), K_FS_IOC_FSGETXATTR, &x) < 0)
		return -1;
	x.xflags = (uint32_t)I(a[1]);
	return SC(SYS_ioctl, I(a[0]), K_FS_IOC_FSSETXATTR, &x);
}
/* ioctl_int FD REQ VALUE: a request taking a pointer to an int */
OP(op_ioctl_int)
{
	int v = (int)I(a[2]);
	return SC(SYS_ioctl, I(a[0]), (unsigned long)I(a[1]), &v);
}
OP(op_fallocate) { return SC(SYS_fallocate, I(a[0]), 0L, 0L, I(a[1])); }
/* process groups and signals */
OP(op_setpgid) { return SC(SYS_setpgid, I(a[0]), I(a[1])); }
OP(op_getpgid) { return SC(SYS_getpgid, I(a[0])); }
OP(op_kill) { return SC(SYS_kill, I(a[0]), I(a[1])); }
/* ptrace_attach PID: PTRACE_ATTACH, wait for the stop, detach; returns 0 */
OP(op_ptrace_attach)
{
	long pid = I(a[0]);
	long rc = SC(SYS_ptrace, 16L /* PTRACE_ATTACH */, pid, 0L, 0L);
	if (rc < 0)
		return rc;
	int st;
	waitpid((pid_t)pid, &st, __WALL);
	return SC(SYS_ptrace, 17L /* PTRACE_DETACH */, pid, 0L, 0L);
}
/* ptrace_child: a child asks to be traced and stops; the parent sees the
 * stop, reads the child's pid from its registers' view (PEEKUSER of offset
 * 0 must work), continues it and reaps it; returns the child's exit code */
OP(op_ptrace_child)
{
	fflush(stdout);
	/* A raw clone, not fork(): sc imports no process-creating libc
	 * function (forkscan's tests classify it by its syscall() import). */
	pid_t pid = (pid_t)SC(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (SC(SYS_ptrace, 0L /* PTRACE_TRACEME */, 0L, 0L, 0L) < 0)
			SC(SYS_exit, 10L);
		SC(SYS_kill, (long)SC(SYS_getpid), (long)SIGSTOP);
		SC(SYS_exit, 42L);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		errno = EPROTO;
		return -1;
	}
	long word = 0;
	if (SC(SYS_ptrace, 3L /* PTRACE_PEEKUSER */, (long)pid, 0L, &word) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		return -1;
	}
	if (SC(SYS_ptrace, 7L /* PTRACE_CONT */, (long)pid, 0L, 0L) < 0)
		return -1;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
		errno = EPROTO;
		return -1;
	}
	return WEXITSTATUS(st);
}
/* capget [PID]: prints eff= prm= inh= (64-bit hex, version 3 header);
 * capset EFF PRM INH (hex) on the caller */
struct capdata { unsigned int eff, prm, inh; };
OP(op_capget)
{
	struct { unsigned int version; int pid; } h = { 0x20080522, n > 0 ? (int)I(a[0]) : 0 };
	struct capdata d[2];
	long rc = SC(SYS_capget, &h, d);
	if (rc == 0)
		outf(r, "eff=%llx prm=%llx inh=%llx", (unsigned long long)d[1].eff << 32 | d[0].eff,
		     (unsigned long long)d[1].prm << 32 | d[0].prm, (unsigned long long)d[1].inh << 32 | d[0].inh);
	return rc;
}
OP(op_capset)
{
	struct { unsigned int version; int pid; } h = { 0x20080522, 0 };
	unsigned long long v[3];
	struct capdata d[2];
	int i;
	for (i = 0; i < 3; i++)
		v[i] = strtoull(a[i], NULL, 16);
	d[0].eff = (unsigned int)v[0], d[1].eff = (unsigned int)(v[0] >> 32);
	d[0].prm = (unsigned int)v[1], d[1].prm = (unsigned int)(v[1] >> 32);
	d[0].inh = (unsigned int)v[2], d[1].inh = (unsigned int)(v[2] >> 32);
	return SC(SYS_capset, &h, d);
}

OP(op_inotify)
{
	long fd = SC(SYS_inotify_init1, 0L), wd;
	if (fd < 0)
		return fd;
	wd = SC(SYS_inotify_add_watch, fd, P(a[0]), (long)IN_ALL_EVENTS);
	if (wd < 0) {
		int e = errno;
		SC(SYS_close, fd);
		errno = e;
		return wd;
	}
	r->fd = fd;
	return wd;
}
OP(op_chroot) { return SC(SYS_chroot, P(a[0])); }
OP(op_mount)
{
	return SC(SYS_mount, P(a[0]), P(a[1]), P(a[2]), n > 3 ? F(a[3]) : 0L, n > 4 ? P(a[4]) : NULL);
}
OP(op_umount2) { return SC(SYS_umount2, P(a[0]), n > 1 ? F(a[1]) : 0L); }

static long unix_sock(res_t *r, long nr, const char *path)
{
	struct sockaddr_un sa;
	long fd, rc;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = SC(SYS_socket, (long)AF_UNIX, (long)(SOCK_STREAM | SOCK_CLOEXEC), 0L);
	if (fd < 0)
		return fd;
	rc = SC(nr, fd, &sa, (long)sizeof sa);
	if (rc < 0) {
		int e = errno;
		SC(SYS_close, fd);
		errno = e;
		return rc;
	}
	r->fd = fd;
	return fd;
}
OP(op_unix_bind) { return unix_sock(r, SYS_bind, a[0]); }
OP(op_unix_connect) { return unix_sock(r, SYS_connect, a[0]); }
/* umask MODE: prints the previous mask (decimal) */
OP(op_umask) { return SC(SYS_umask, M(a[0])); }

OP(op_getuid) { return SC(SYS_getuid); }
OP(op_geteuid) { return SC(SYS_geteuid); }
OP(op_getgid) { return SC(SYS_getgid); }
OP(op_getegid) { return SC(SYS_getegid); }
static long getres(res_t *r, long nr)
{
	unsigned int v[3] = { 0, 0, 0 };
	long rc = SC(nr, &v[0], &v[1], &v[2]);
	if (rc == 0)
		outf(r, "%u,%u,%u", v[0], v[1], v[2]);
	return rc;
}
OP(op_getresuid) { return getres(r, SYS_getresuid); }
OP(op_getresgid) { return getres(r, SYS_getresgid); }
OP(op_getgroups)
{
	static unsigned int g[65536];
	long rc = SC(SYS_getgroups, 65536L, g), i;
	if (rc >= 0) {
		outf(r, "%s", "");
		for (i = 0; i < rc; i++)
			outf(r, "%s%u", i ? "," : "", g[i]);
	}
	return rc;
}
OP(op_setuid) { return SC(SYS_setuid, I(a[0])); }
OP(op_setgid) { return SC(SYS_setgid, I(a[0])); }
OP(op_setresuid) { return SC(SYS_setresuid, I(a[0]), I(a[1]), I(a[2])); }
OP(op_setresgid) { return SC(SYS_setresgid, I(a[0]), I(a[1]), I(a[2])); }
OP(op_setgroups)
{
	static unsigned int g[65536];
	long cnt = 0;
	char *s = a[0], *tok;
	if (strcmp(s, "none") != 0 && strcmp(s, "-") != 0)
		for (tok = strtok(s, ","); tok && cnt < 65536; tok = strtok(NULL, ","))
			g[cnt++] = (unsigned int)I(tok);
	return SC(SYS_setgroups, cnt, g);
}
OP(op_getpid) { return SC(SYS_getpid); }
OP(op_getppid) { return SC(SYS_getppid); }
OP(op_uname)
{
	struct utsname u;
	long rc = SC(SYS_uname, &u);
	if (rc == 0)
		outf(r, "%s %s", u.sysname, u.machine);
	return rc;
}
OP(op_readfile)
{
	long fd = SC(SYS_openat, (long)AT_FDCWD, P(a[0]), (long)(O_RDONLY | O_CLOEXEC), 0L), rc;
	size_t len = 0, cap = 65536;
	char *buf, *nl;
	if (fd < 0)
		return fd;
	buf = malloc(cap);
	while ((rc = SC(SYS_read, fd, buf + len, (long)(cap - len))) > 0) {
		len += (size_t)rc;
		if (len == cap && cap < (64u << 20))
			buf = realloc(buf, cap *= 2);
		if (len == cap)
			break;
	}
	if (rc < 0) {
		int e = errno;
		SC(SYS_close, fd);
		free(buf);
		errno = e;
		return rc;
	}
	SC(SYS_close, fd);
	nl = memchr(buf, '\n', len);
	out_esc(r, buf, nl ? (size_t)(nl - buf) : len);
	free(buf);
	return 0;
}
/* readline PATH PREFIX: the first line of PATH that starts with PREFIX */
OP(op_readline)
{
	static char buf[1 << 16];
	size_t len = 0, plen = strlen(a[1]);
	long rc, fd = SC(SYS_openat, (long)AT_FDCWD, P(a[0]), (long)(O_RDONLY | O_CLOEXEC), 0L);
	char *p, *end;
	if (fd < 0)
		return fd;
	while (len < sizeof buf - 1 && (rc = SC(SYS_read, fd, buf + len, (long)(sizeof buf - 1 - len))) > 0)
		len += (size_t)rc;
	SC(SYS_close, fd);
	buf[len] = 0;
	for (p = buf; p < buf + len; p = end + 1) {
		end = memchr(p, '\n', (size_t)(buf + len - p));
		if (!end)
			end = buf + len;
		if ((size_t)(end - p) >= plen && memcmp(p, a[1], plen) == 0) {
			out_esc(r, p, (size_t)(end - p));
			return 0;
		}
	}
	errno = ENOENT;
	return -1;
}
static int cmpstr(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}
OP(op_ls)
{
	static char buf[32768];
	char **names = NULL;
	size_t cnt = 0, cap = 0, i;
	long fd, rc;
	fd = SC(SYS_openat, (long)AT_FDCWD, P(a[0]), (long)(O_RDONLY | O_DIRECTORY | O_CLOEXEC), 0L);
	if (fd < 0)
		return fd;
	while ((rc = SC(SYS_getdents64, fd, buf, (long)sizeof buf)) > 0) {
		long off;
		for (off = 0; off < rc;) {
			struct k_dirent64 *d = (struct k_dirent64 *)(buf + off);
			off += d->d_reclen;
			if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
				continue;
			if (cnt == cap)
				names = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
			names[cnt++] = strdup(d->d_name);
		}
	}
	if (rc < 0) {
		int e = errno;
		SC(SYS_close, fd);
		errno = e;
		return rc;
	}
	SC(SYS_close, fd);
	if (cnt)
		qsort(names, cnt, sizeof *names, cmpstr);
	outf(r, "%s", "");
	for (i = 0; i < cnt; i++) {
		outf(r, "%s%s", i ? "," : "", names[i]);
		free(names[i]);
	}
	free(names);
	return 0;
}
/* lstypes PATH: the directory's entries with their d_type, name=type, sorted */
OP(op_lstypes)
{
	static char buf[32768];
	static const char *dt[16] = { "unknown", "fifo", "chr", "?3", "dir", "?5", "blk", "?7",
				      "reg", "?9", "lnk", "?11", "sock", "?13", "?14", "?15" };
	char **names = NULL;
	size_t cnt = 0, cap = 0, i;
	long fd, rc;
	fd = SC(SYS_openat, (long)AT_FDCWD, P(a[0]), (long)(O_RDONLY | O_DIRECTORY | O_CLOEXEC), 0L);
	if (fd < 0)
		return fd;
	while ((rc = SC(SYS_getdents64, fd, buf, (long)sizeof buf)) > 0) {
		long off;
		for (off = 0; off < rc;) {
			struct k_dirent64 *d = (struct k_dirent64 *)(buf + off);
			char *e;
			off += d->d_reclen;
			if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
				continue;
			if (cnt == cap)
				names = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
			e = malloc(strlen(d->d_name) + 16);
			sprintf(e, "%s=%s", d->d_name, dt[d->d_type & 15]);
			names[cnt++] = e;
		}
	}
	SC(SYS_close, fd);
	if (rc < 0)
		return rc;
	if (cnt)
		qsort(names, cnt, sizeof *names, cmpstr);
	outf(r, "%s", "");
	for (i = 0; i < cnt; i++) {
		outf(r, "%s%s", i ? "," : "", names[i]);
		free(names[i]);
	}
	free(names);
	return 0;
}
/* syscall NR [ARG...]: ints, @N, cwd, or "s:TEXT" (pointer to TEXT) */
OP(op_syscall)
{
	long v[6] = { 0, 0, 0, 0, 0, 0 };
	int i;
	for (i = 1; i < n && i <= 6; i++)
		v[i - 1] = strncmp(a[i], "s:", 2) == 0 ? (long)(a[i] + 2) : I(a[i]);
	return fdres(r, SC(I(a[0]), v[0], v[1], v[2], v[3], v[4], v[5]));
}
OP(op_exec)
{
	char **argv = calloc((size_t)n + 1, sizeof *argv);
	int i;
	for (i = 0; i < n; i++)
		argv[i] = a[i];
	fflush(stdout);
	SC(SYS_execve, P(a[0]), argv, environ);
	free(argv);
	return -1;
}

/* ---- SysV IPC: KEY and ID are numbers (or @N), CMD and FLAGS symbolic ---- */
/* the kernel's *id64_ds as key=K uid=U gid=G cuid= cgid= mode=MODE plus the kind's size field */
static void out_ipc(res_t *r, const unsigned char *ds, const char *what, int off)
{
	const int32_t *p = (const int32_t *)ds;
	outf(r, "key=%d uid=%u gid=%u cuid=%u cgid=%u mode=%04o %s=%lu", p[0], (unsigned)p[1], (unsigned)p[2],
	     (unsigned)p[3], (unsigned)p[4], (unsigned)p[5] & 07777, what, *(const unsigned long *)(ds + off));
}
static int ipc_is_stat(long cmd, long a, long b, long c)
{
	return cmd == IPC_STAT || cmd == a || cmd == b || cmd == c;
}
OP(op_shmget) { return fdres(r, SC(SYS_shmget, I(a[0]), I(a[1]), F(a[2]))); }
OP(op_shmat)
{
	long addr = SC(SYS_shmat, I(a[0]), 0L, F(a[1]));
	if (addr == -1)
		return -1;
	r->fd = addr;
	outf(r, "%s", "");
	return 0;
}
OP(op_shmdt) { return SC(SYS_shmdt, I(a[0])); }
/* memwrite ADDR TEXT / memread ADDR LEN: plain memory access at an attached address */
OP(op_memwrite)
{
	size_t len = unescape(a[1]);
	memcpy((void *)I(a[0]), a[1], len);
	return (long)len;
}
OP(op_memread)
{
	out_esc(r, (const char *)I(a[0]), (size_t)I(a[1]));
	return 0;
}
OP(op_shmctl)
{
	static unsigned char ds[256];
	long cmd = F(a[1]), rc = SC(SYS_shmctl, I(a[0]), cmd, ds);
	if (rc >= 0 && ipc_is_stat(cmd, SHM_STAT, SHM_STAT_ANY, IPC_STAT)) {
		out_ipc(r, ds, "size", K_SHM_SEGSZ);
		outf(r, " nattch=%lu", *(unsigned long *)(ds + K_SHM_NATTCH));
		if (cmd != IPC_STAT)
			outf(r, " id=%ld", rc);
	}
	return rc;
}
OP(op_semget) { return fdres(r, SC(SYS_semget, I(a[0]), I(a[1]), F(a[2]))); }
/* semctl ID NUM CMD [VALUE] */
OP(op_semctl)
{
	static unsigned char ds[256];
	long cmd = F(a[2]), arg = n > 3 ? I(a[3]) : (long)ds, rc;
	if (cmd == IPC_STAT || cmd == SEM_STAT || cmd == SEM_STAT_ANY || cmd == IPC_SET)
		arg = (long)ds;
	rc = SC(SYS_semctl, I(a[0]), I(a[1]), cmd, arg);
	if (rc >= 0 && ipc_is_stat(cmd, SEM_STAT, SEM_STAT_ANY, IPC_STAT)) {
		out_ipc(r, ds, "nsems", K_SEM_NSEMS);
		if (cmd != IPC_STAT)
			outf(r, " id=%ld", rc);
	}
	return rc;
}
/* semop ID NUM OP FLAGS: one operation */
OP(op_semop)
{
	struct sembuf sb;
	sb.sem_num = (unsigned short)I(a[1]);
	sb.sem_op = (short)I(a[2]);
	sb.sem_flg = (short)F(a[3]);
	return SC(SYS_semop, I(a[0]), &sb, 1L);
}
OP(op_msgget) { return fdres(r, SC(SYS_msgget, I(a[0]), F(a[1]))); }
/* msgsnd ID TYPE TEXT FLAGS */
OP(op_msgsnd)
{
	static struct { long type; char text[4096]; } m;
	size_t len;
	strncpy(m.text, a[2], sizeof m.text - 1);
	len = unescape(m.text);
	m.type = I(a[1]);
	return SC(SYS_msgsnd, I(a[0]), &m, (long)len, F(a[3]));
}
/* msgrcv ID TYPE FLAGS */
OP(op_msgrcv)
{
	static struct { long type; char text[4096]; } m;
	long rc = SC(SYS_msgrcv, I(a[0]), &m, (long)sizeof m.text, I(a[1]), F(a[2]));
	if (rc >= 0) {
		outf(r, "type=%ld text=", m.type);
		out_esc(r, m.text, (size_t)rc);
	}
	return rc;
}
OP(op_msgctl)
{
	static unsigned char ds[256];
	long cmd = F(a[1]), rc = SC(SYS_msgctl, I(a[0]), cmd, ds);
	if (rc >= 0 && ipc_is_stat(cmd, MSG_STAT, MSG_STAT_ANY, IPC_STAT)) {
		out_ipc(r, ds, "qnum", K_MSG_QNUM);
		if (cmd != IPC_STAT)
			outf(r, " id=%ld", rc);
	}
	return rc;
}
/* shmfork ID TEXT: a child process attaches segment ID and writes TEXT into
 * it; the parent, once the child has exited, attaches it and prints what it
 * reads. */
OP(op_shmfork)
{
	long id = I(a[0]), addr;
	size_t len = unescape(a[1]);
	int st;
	pid_t pid;
	fflush(stdout);
	/* a raw fork (clone with SIGCHLD), so that sc imports no libc fork */
	pid = (pid_t)SC(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
	if (pid < 0)
		return -1;
	if (pid == 0) {
		long c = SC(SYS_shmat, id, 0L, 0L);
		if (c == -1)
			SC(SYS_exit_group, 10L);
		memcpy((void *)c, a[1], len);
		SC(SYS_shmdt, c);
		SC(SYS_exit_group, 0L);
	}
	if (SC(SYS_wait4, (long)pid, &st, 0L, 0L) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		errno = ECHILD;
		return -1;
	}
	addr = SC(SYS_shmat, id, 0L, (long)SHM_RDONLY);
	if (addr == -1)
		return -1;
	out_esc(r, (const char *)addr, len);
	SC(SYS_shmdt, addr);
	return 0;
}
/* openpty: /dev/ptmx, unlock, open the slave by its name, pass a line
 * through; prints pty=N line=TEXT */
OP(op_openpty)
{
	char name[64], buf[64];
	int ptn = 0, unlock = 0;
	long m, s, rc;
	m = SC(SYS_openat, (long)AT_FDCWD, "/dev/ptmx", (long)(O_RDWR | O_NOCTTY | O_CLOEXEC), 0L);
	if (m < 0)
		return m;
	if (SC(SYS_ioctl, m, (long)TIOCSPTLCK, &unlock) < 0 || SC(SYS_ioctl, m, (long)TIOCGPTN, &ptn) < 0)
		return -1;
	snprintf(name, sizeof name, "/dev/pts/%d", ptn);
	s = SC(SYS_openat, (long)AT_FDCWD, name, (long)(O_RDWR | O_NOCTTY | O_CLOEXEC), 0L);
	if (s < 0)
		return s;
	if (SC(SYS_write, m, "ping\n", 5L) != 5)
		return -1;
	rc = SC(SYS_read, s, buf, (long)sizeof buf);
	if (rc < 0)
		return rc;
	outf(r, "pty=%d line=", ptn);
	out_esc(r, buf, (size_t)rc);
	r->fd = m;
	return 0;
}
/* ---- op table ---- */
typedef long (*handler_t)(char **, int, res_t *);
struct op {
	const char *name;
	handler_t fn;
	int min, max; /* argument counts; max -1 = unlimited */
};
static const struct op ops[] = {
	{ "open", op_open, 2, 3 },           { "openat", op_openat, 3, 4 },
	{ "openat2", op_openat2, 5, 5 },     { "creat", op_creat, 2, 2 },
	{ "close", op_close, 1, 1 },         { "read", op_read, 2, 2 },
	{ "write", op_write, 2, 2 },         { "stat", op_stat, 1, 1 },
	{ "lstat", op_lstat, 1, 1 },         { "fstat", op_fstat, 1, 1 },
	{ "fstatat", op_fstatat, 3, 3 },     { "statx", op_statx, 3, 3 },
	{ "access", op_access, 2, 2 },       { "faccessat", op_faccessat, 3, 4 },
	{ "faccessat2", op_faccessat2, 3, 4 }, { "readlink", op_readlink, 1, 1 },
	{ "readlinkat", op_readlinkat, 2, 2 }, { "mkdir", op_mkdir, 1, 2 },
	{ "mkdirat", op_mkdirat, 2, 3 },     { "mknod", op_mknod, 3, 5 },
	{ "mknodat", op_mknodat, 4, 6 },     { "unlink", op_unlink, 1, 1 },
	{ "unlinkat", op_unlinkat, 2, 3 },   { "rmdir", op_rmdir, 1, 1 },
	{ "rename", op_rename, 2, 2 },       { "renameat", op_renameat, 4, 4 },
	{ "renameat2", op_renameat2, 5, 5 }, { "link", op_link, 2, 2 },
	{ "linkat", op_linkat, 4, 5 },       { "symlink", op_symlink, 2, 2 },
	{ "symlinkat", op_symlinkat, 3, 3 }, { "chmod", op_chmod, 2, 2 },
	{ "fchmod", op_fchmod, 2, 2 },       { "fchmodat", op_fchmodat, 3, 4 },
	{ "fchmodat2", op_fchmodat2, 3, 4 }, { "chown", op_chown, 3, 3 },
	{ "lchown", op_lchown, 3, 3 },       { "fchown", op_fchown, 3, 3 },
	{ "fchownat", op_fchownat, 4, 5 },   { "utime", op_utime, 1, 3 },
	{ "utimes", op_utimes, 1, 3 },       { "futimesat", op_futimesat, 2, 4 },
	{ "utimensat", op_utimensat, 2, 5 }, { "truncate", op_truncate, 2, 2 },
	{ "ftruncate", op_ftruncate, 2, 2 }, { "chdir", op_chdir, 1, 1 },
	{ "fchdir", op_fchdir, 1, 1 },       { "getcwd", op_getcwd, 0, 0 },
	{ "statfs", op_statfs, 1, 1 },       { "getxattr", op_getxattr, 2, 2 },
	{ "lgetxattr", op_lgetxattr, 2, 2 }, { "setxattr", op_setxattr, 3, 4 },
	{ "lsetxattr", op_lsetxattr, 3, 4 }, { "listxattr", op_listxattr, 1, 1 },
	{ "llistxattr", op_llistxattr, 1, 1 }, { "removexattr", op_removexattr, 2, 2 },
	{ "lremovexattr", op_lremovexattr, 2, 2 }, { "inotify", op_inotify, 1, 1 },
	{ "chroot", op_chroot, 1, 1 },       { "mount", op_mount, 3, 5 },
	{ "umount2", op_umount2, 1, 2 },     { "unix_bind", op_unix_bind, 1, 1 },
	{ "unix_connect", op_unix_connect, 1, 1 }, { "getuid", op_getuid, 0, 0 },
	{ "geteuid", op_geteuid, 0, 0 },     { "getgid", op_getgid, 0, 0 },
	{ "getegid", op_getegid, 0, 0 },     { "getresuid", op_getresuid, 0, 0 },
	{ "getresgid", op_getresgid, 0, 0 }, { "getgroups", op_getgroups, 0, 0 },
	{ "setuid", op_setuid, 1, 1 },       { "setgid", op_setgid, 1, 1 },
	{ "setresuid", op_setresuid, 3, 3 }, { "setresgid", op_setresgid, 3, 3 },
	{ "setgroups", op_setgroups, 1, 1 }, { "getpid", op_getpid, 0, 0 },
	{ "getppid", op_getppid, 0, 0 },     { "uname", op_uname, 0, 0 },
	{ "readfile", op_readfile, 1, 1 },   { "ls", op_ls, 1, 1 },
	{ "syscall", op_syscall, 1, 7 },     { "exec", op_exec, 1, -1 },
	{ "shmget", op_shmget, 3, 3 },       { "shmat", op_shmat, 2, 2 },
	{ "shmdt", op_shmdt, 1, 1 },         { "memwrite", op_memwrite, 2, 2 },
	{ "memread", op_memread, 2, 2 },     { "shmctl", op_shmctl, 2, 2 },
	{ "semget", op_semget, 3, 3 },       { "semctl", op_semctl, 3, 4 },
	{ "semop", op_semop, 4, 4 },         { "msgget", op_msgget, 2, 2 },
	{ "msgsnd", op_msgsnd, 4, 4 },       { "msgrcv", op_msgrcv, 3, 3 },
	{ "msgctl", op_msgctl, 2, 2 },       { "shmfork", op_shmfork, 2, 2 },
	{ "openpty", op_openpty, 0, 0 },     { "lstypes", op_lstypes, 1, 1 },
	{ "fgetxattr", op_fgetxattr, 2, 2 }, { "flistxattr", op_flistxattr, 1, 1 },
	{ "fsetxattr", op_fsetxattr, 3, 4 }, { "fremovexattr", op_fremovexattr, 2, 2 },
	{ "getflags", op_getflags, 1, 1 },   { "chattr", op_chattr, 2, 2 },
	{ "fsxattr", op_fsxattr, 2, 2 },     { "ioctl_int", op_ioctl_int, 3, 3 },
	{ "fallocate", op_fallocate, 2, 2 }, { "setpgid", op_setpgid, 2, 2 },
	{ "getpgid", op_getpgid, 1, 1 },     { "kill", op_kill, 2, 2 },
	{ "ptrace_attach", op_ptrace_attach, 1, 1 }, { "ptrace_child", op_ptrace_child, 0, 0 },
	{ "capget", op_capget, 0, 1 },       { "capset", op_capset, 3, 3 },
	{ "readline", op_readline, 2, 2 },
	{ "umask", op_umask, 1, 1 },
};

static const struct op *find_op(const char *name)
{
	size_t i;
	for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (strcmp(ops[i].name, name) == 0)
			return &ops[i];
	return NULL;
}

static void usage(void)
{
	size_t i;
	fputs("usage: sc OP ARG... [, OP ARG...]...\nops:", stderr);
	for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
		fprintf(stderr, " %s", ops[i].name);
	fputc('\n', stderr);
	exit(2);
}

/* split argv at lone "," arguments; returns number of ops */
static int split(int argc, char **argv, int *start, int *len)
{
	int i = 1, nops = 0;
	while (i < argc) {
		int j = i;
		while (j < argc && strcmp(argv[j], ",") != 0)
			j++;
		if (j == i || nops >= MAXOPS)
			usage();
		start[nops] = i;
		len[nops] = j - i;
		nops++;
		i = j + 1;
		if (j < argc && i == argc)
			usage(); /* trailing "," */
	}
	return nops;
}

int main(int argc, char **argv)
{
	static int start[MAXOPS], len[MAXOPS];
	int nops, k;

	if (argc < 2)
		usage();
	nops = split(argc, argv, start, len);
	for (k = 0; k < nops; k++) { /* validate everything before running anything */
		const struct op *o = find_op(argv[start[k]]);
		int na = len[k] - 1;
		if (!o) {
			fprintf(stderr, "sc: unknown op '%s'\n", argv[start[k]]);
			usage();
		}
		int j;
		if (na < o->min || (o->max >= 0 && na > o->max))
			usage_error("op %s: wrong number of arguments (%d)", o->name, na);
		for (j = 1; j <= na; j++) { /* "@N" must name an earlier op */
			const char *s = argv[start[k] + j];
			if (s[0] == '@' && s[1] && strspn(s + 1, "0123456789") == strlen(s + 1) &&
			    (atoi(s + 1) < 1 || atoi(s + 1) > k))
				usage_error("op %d (%s): '%s' does not name an earlier op", k + 1, o->name, s);
		}
	}
	for (k = 0; k < nops; k++) {
		const struct op *o = find_op(argv[start[k]]);
		res_t r;
		long rc;
		int err;

		memset(&r, 0, sizeof r);
		r.fd = -1;
		cur_op = k + 1;
		errno = 0;
		rc = o->fn(argv + start[k] + 1, len[k] - 1, &r);
		err = errno;
		op_fds[k + 1] = r.fd;
		if (rc == NOTBUILT)
			printf("%s: err ENOSYS-NOTBUILT\n", o->name);
		else if (rc < 0)
			printf("%s: err %s\n", o->name, errname(err));
		else if (r.set)
			printf("%s: ok%s%.*s\n", o->name, r.len ? " " : "", (int)r.len, r.buf ? r.buf : "");
		else
			printf("%s: ok %ld\n", o->name, rc);
		fflush(stdout);
		free(r.buf);
	}
	return 0;
}
