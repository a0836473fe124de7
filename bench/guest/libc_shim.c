/*
 * libc_shim.c - lets tests/guest/bench.c run through libc wrappers.
 *
 * bench.c issues its calls with syscall(2), which LD_PRELOAD-based tools
 * such as fakechroot cannot see.  Compiled with -Dsyscall=bench_libc_syscall
 * and linked with this file, each call goes through the libc function that
 * makes the same system call (fstatat, openat, close, lseek, read, write,
 * getpid) and that such tools do wrap.  Anything else falls through to the
 * real syscall(2).
 */
#define _GNU_SOURCE
/* The -D that renames bench.c's calls must not rename the real one here. */
#undef syscall
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_newfstatat
#define SYS_newfstatat SYS_fstatat
#endif

long bench_libc_syscall(long nr, ...);

long bench_libc_syscall(long nr, ...)
{
	va_list ap;
	long a[4];
	va_start(ap, nr);
	for (int i = 0; i < 4; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	switch (nr) {
	case SYS_newfstatat:
		return fstatat((int)a[0], (const char *)a[1], (struct stat *)a[2], (int)a[3]);
	case SYS_openat:
		return openat((int)a[0], (const char *)a[1], (int)a[2], (mode_t)a[3]);
	case SYS_close:
		return close((int)a[0]);
	case SYS_lseek:
		return lseek((int)a[0], (off_t)a[1], (int)a[2]);
	case SYS_read:
		return read((int)a[0], (void *)a[1], (size_t)a[2]);
	case SYS_write:
		return write((int)a[0], (const void *)a[1], (size_t)a[2]);
	case SYS_getpid:
		return getpid();
	default:
		return syscall(nr, a[0], a[1], a[2], a[3]);
	}
}
