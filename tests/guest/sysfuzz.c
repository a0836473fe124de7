/*
 * sysfuzz - a syscall fuzzer guest for kbox.
 *
 * It throws random and hostile system calls at whatever serves them and
 * checks nothing itself: the harness checks kbox (no panic, no hang, no
 * process left behind, the guest's exit status reported).
 *
 * Usage:
 *   sysfuzz fuzz SEED COUNT [OPTION...]
 *       COUNT calls derived from SEED. Options:
 *         exit:N     end with exit status N (default 0)
 *         signal:N   end by raising signal N instead
 *         batch:N    calls per batch (default 250)
 *         trace      print every call before making it
 *         known-bugs also make the calls that hit known, not yet fixed
 *                    bugs of the in-process tiers (they hang or kill
 *                    kbox): epoll_pwait with SIGSYS blocked, brk near
 *                    2^64, vmsplice waiting on an empty pipe; and
 *                    ".." from procfs directories, which lets a uid-0
 *                    guest change the host's /proc with -S (F3)
 *         mark=TEXT  ignored (lets a harness find its processes)
 *       Where fork works (the seccomp tier) every batch runs in a child
 *       process, so one that kills itself does not end the run; the parent
 *       makes no random call. Where it does not (the in-process tiers) the
 *       calls run in the process itself; a fault in it is caught and the
 *       run goes on from the next batch (a guest that dies anyway is fine:
 *       kbox must then report 128+signal).
 *       Output (stdout): "sysfuzz: seed=S count=N mode=fork|inprocess",
 *       one "batch I: seed=S calls=C end=exit:N|signal:N|fault:N" line per
 *       batch, and "sysfuzz: done calls=C status=exit:N|signal:N".
 *   sysfuzz case NAME
 *       One structured probe whose printed results are compared with a
 *       native run (see the list in run_case).
 *   sysfuzz fifo N readers|writers
 *       N threads block opening a FIFO (for reading or for writing) until
 *       the main thread opens the other end; prints "fifo: ..." lines.
 *   sysfuzz sendflood N
 *       N threads each block sending 1 MiB (sendmsg) on a full socket;
 *       prints "sendflood: N threads blocked", reads stdin to EOF, then
 *       drains the socket and prints "sendflood: N released".
 *   sysfuzz forkbomb MAX
 *       Fork sleeping children until fork fails or MAX are running, make
 *       notified calls meanwhile, then kill them all.
 *
 * Arguments are drawn from interesting values: 0, -1, 1, huge sizes,
 * NULL, unmapped (PROT_NONE), read-only, kernel and non-canonical
 * pointers, pointers into its own scratch memory (random bytes, valid
 * paths, valid msghdr/iovec/open_how/sockaddr structures), valid
 * descriptors (file, directory, pipe, sockets, /proc) and flags with every
 * bit. The calls kbox serves itself (the policy's Notify rows) get
 * structured arguments most of the time.
 *
 * What it avoids, since killing itself teaches nothing: exit, signals that
 * stop or kill it, changes to its own signal handling and timers, TLS,
 * rseq, seccomp and syscall user dispatch, unmapping or remapping its own
 * memory (memory calls get a sacrificial region), SysV IPC (host-wide),
 * clocks, hostname, modules, reboot and other host administration (kbox
 * denies them; a fuzzer run natively as root must not reach them), real
 * time scheduling and huge allocations. It keeps its descriptors
 * non-blocking and a 25 ms interval timer interrupts whatever blocks
 * natively.
 *
 * Never run "fuzz" outside kbox as root: it is a fuzzer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

/* ---- syscall numbers musl's headers may lack */
/* Random numbers are drawn from [0, NR_MAX], mostly outside the ranges
 * the architecture leaves unassigned (NR_HOLE_LO..NR_HOLE_HI). */
#if defined(__x86_64__)
#define NR_MAX 470
#define NR_HOLE_LO 337
#define NR_HOLE_HI 423
#define ARCH_X86_64 1
#ifndef SYS_statx
#define SYS_statx 332
#endif
#elif defined(__aarch64__)
#define NR_MAX 470
#define NR_HOLE_LO 244 /* arch-specific numbers, none on arm64 */
#define NR_HOLE_HI 259
#define ARCH_X86_64 0
#ifndef SYS_statx
#define SYS_statx 291
#endif
#else
#error "sysfuzz: add this architecture's syscall range"
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef SYS_futex_wake
#define SYS_futex_wake 454
#endif
#ifndef SYS_futex_wait
#define SYS_futex_wait 455
#endif
#ifndef SYS_futex_requeue
#define SYS_futex_requeue 456
#endif
#ifndef SYS_map_shadow_stack
#define SYS_map_shadow_stack 453
#endif
#ifndef SYS_mseal
#define SYS_mseal 462
#endif
#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif
#ifndef SYS_process_mrelease
#define SYS_process_mrelease 448
#endif
#ifndef SYS_set_mempolicy_home_node
#define SYS_set_mempolicy_home_node 450
#endif
#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif
#ifndef SYS_lsm_get_self_attr
#define SYS_lsm_get_self_attr 459
#endif
#ifndef SYS_lsm_set_self_attr
#define SYS_lsm_set_self_attr 460
#endif

/* ---- raw system calls: the result is -errno, errno is not touched */
static long raw6(long n, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
	return x0;
#endif
}
#define RAW(n, ...) raw_n(n, __VA_ARGS__, 0, 0, 0, 0, 0, 0)
#define raw_n(n, a, b, c, d, e, f, ...) raw6((long)(n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

/* ---- output: a descriptor of its own, far from the small numbers the
 * random calls close and dup over */
#define OUT_FD 700
static int out_fd = 1;

static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof buf - 1)
		n = sizeof buf - 1;
	for (int off = 0; off < n;) {
		long w = RAW(SYS_write, out_fd, buf + off, n - off);
		if (w <= 0)
			return;
		off += w;
	}
}

static int trace;   /* print every call before making it */
static int known_bugs; /* also make the calls of known, unfixed kbox bugs */
static long ncalls; /* calls made in this batch */

/* ---- random numbers (splitmix64) */
static uint64_t rng;
static uint64_t next64(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
static uint64_t below(uint64_t n) { return n ? next64() % n : 0; }
static int chance(int percent) { return (int)below(100) < percent; }
#define PICK(arr) ((arr)[below(sizeof(arr) / sizeof((arr)[0]))])

static uint64_t mix(uint64_t seed, uint64_t i)
{
	uint64_t save = rng;
	rng = seed ^ (i * 0xd1b54a32d192ed03ull);
	uint64_t v = next64();
	rng = save;
	return v;
}

/* ---- memory regions
 *   scratch: 64 KiB of random bytes with a PROT_NONE guard after it;
 *   arena:   structures built for one call (paths, msghdr, argv...),
 *            guard after it;
 *   sacrificial: what memory-management calls may map, unmap and protect;
 *   none, ro: a PROT_NONE and a read-only page. */
#define SCRATCH_SIZE (64 << 10)
#define ARENA_SIZE (256 << 10)
#define SACRIFICE_SIZE (1 << 20)
static unsigned char *scratch, *arena, *sacrifice, *none_page, *ro_page;
static size_t arena_used;

static void *map_guarded(size_t size)
{
	unsigned char *p = mmap(NULL, size + 65536, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p, size, PROT_READ | PROT_WRITE) != 0)
		return NULL;
	return p;
}

static void *arena_alloc(size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (arena_used + n > ARENA_SIZE)
		arena_used = 0;
	void *p = arena + arena_used;
	arena_used += n;
	return p;
}

static char *arena_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = arena_alloc(n);
	memcpy(p, s, n);
	return p;
}

static void fill_random(void *p, size_t n)
{
	unsigned char *b = p;
	while (n >= 8) {
		uint64_t v = next64();
		memcpy(b, &v, 8);
		b += 8;
		n -= 8;
	}
	while (n--)
		*b++ = (unsigned char)next64();
}

/* PROC_ROOT_FD stands for a descriptor of /proc opened for one call. */
#define PROC_ROOT_FD 0x7ffffff0ull

/* ---- the state a batch works on */
static char workdir[256];   /* absolute guest path of the work directory */
static int inprocess;       /* fork does not work: calls run in this process */
static int pool[24];        /* valid descriptors */
static int npool;
static int dirfd_pool = -1, filefd_pool = -1, procfd_pool = -1;
static int mypid, myppid;

/* The hostile files exec cases use, created by setup_files. */
static const char *exec_files[] = {
	"elf_interp_huge", "elf_interp_2g", "elf_interp_4097", "elf_interp_0", "elf_interp_1",
	"elf_interp_nonul", "elf_interp_missing", "elf_trunc", "elf_phoff_huge", "elf_phnum_huge",
	"sh_long", "sh_loop", "sh_missing", "sh_empty", "sh_nul", "d",
};
/* files only a child may exec: the kernel may accept them */
static const char *exec_files_risky[] = {"elf_overlap", "elf_interp_self", "elf_filesz_huge"};

static void put16(unsigned char *b, uint16_t v) { memcpy(b, &v, 2); }
static void put32(unsigned char *b, uint32_t v) { memcpy(b, &v, 4); }
static void put64(unsigned char *b, uint64_t v) { memcpy(b, &v, 8); }

/* elf writes a minimal ELF64 executable for this machine with a PT_LOAD
 * and, if interp_size is not ~0, a PT_INTERP of that p_filesz. */
static int elf_image(unsigned char *b, size_t cap, uint64_t interp_size, const char *interp, int overlap)
{
	memset(b, 0, cap);
	memcpy(b, "\177ELF", 4);
	b[4] = 2;
	b[5] = 1;
	b[6] = 1;
	put16(b + 16, 2); /* ET_EXEC */
	put16(b + 18, ARCH_X86_64 ? 62 : 183);
	put32(b + 20, 1);
	put64(b + 24, 0x400000 + 0x1000);
	put64(b + 32, 64);
	put16(b + 52, 64);
	put16(b + 54, 56);
	int ph = 0;
	unsigned char *p = b + 64;
	if (interp_size != ~0ull) {
		put32(p, 3); /* PT_INTERP */
		put32(p + 4, 4);
		put64(p + 8, 0x200);
		put64(p + 16, 0x400200);
		put64(p + 32, interp_size);
		put64(p + 40, interp_size);
		put64(p + 48, 1);
		if (interp)
			memcpy(b + 0x200, interp, strlen(interp));
		p += 56;
		ph++;
	}
	for (int i = 0; i < (overlap ? 2 : 1); i++) {
		put32(p, 1); /* PT_LOAD */
		put32(p + 4, 5);
		put64(p + 8, 0);
		put64(p + 16, 0x400000 + (uint64_t)i * 0x800);
		put64(p + 24, 0x400000);
		put64(p + 32, 0x2000);
		put64(p + 40, 0x2000);
		put64(p + 48, 0x1000);
		p += 56;
		ph++;
	}
	put16(b + 56, ph);
	/* the entry: an endless loop that faults (ud2) */
	b[0x1000] = 0x0f;
	b[0x1001] = 0x0b;
	return 0x2000;
}

static void write_file(const char *name, const void *data, size_t n, int mode)
{
	int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return;
	if (write(fd, data, n) < 0) {
	}
	fchmod(fd, mode);
	close(fd);
}

static void setup_files(void)
{
	static unsigned char b[0x2000];
	int n;
	struct {
		const char *name;
		uint64_t size;
		const char *interp;
	} elfs[] = {
		{"elf_interp_huge", 1ull << 63, "/lib/ld.so"},
		{"elf_interp_2g", 1ull << 31, "/lib/ld.so"},
		{"elf_interp_4097", 4097, "/lib/ld.so"},
		{"elf_interp_0", 0, NULL},
		{"elf_interp_1", 1, NULL},
		{"elf_interp_nonul", 8, "/bin/shX"},
		{"elf_interp_missing", 20, "/nonexistent/ld.so"},
	};
	for (size_t i = 0; i < sizeof elfs / sizeof elfs[0]; i++) {
		n = elf_image(b, sizeof b, elfs[i].size, elfs[i].interp, 0);
		write_file(elfs[i].name, b, n, 0755);
	}
	n = elf_image(b, sizeof b, ~0ull, NULL, 0);
	write_file("elf_trunc", b, 30, 0755);
	elf_image(b, sizeof b, ~0ull, NULL, 0);
	put64(b + 32, ~0ull - 8);
	write_file("elf_phoff_huge", b, n, 0755);
	elf_image(b, sizeof b, ~0ull, NULL, 0);
	put16(b + 56, 65535);
	write_file("elf_phnum_huge", b, n, 0755);
	n = elf_image(b, sizeof b, ~0ull, NULL, 1);
	write_file("elf_overlap", b, n, 0755);
	char self[300];
	snprintf(self, sizeof self, "%s/elf_interp_self", workdir);
	n = elf_image(b, sizeof b, strlen(self) + 1, self, 0);
	write_file("elf_interp_self", b, n, 0755);
	n = elf_image(b, sizeof b, ~0ull, NULL, 0);
	put64(b + 64 + 32, 1ull << 62); /* PT_LOAD filesz past the file */
	write_file("elf_filesz_huge", b, n, 0755);

	static char line[400];
	memcpy(line, "#!", 2);
	memset(line + 2, 'a', 390);
	write_file("sh_long", line, 392, 0755);
	snprintf(line, sizeof line, "#!%s/sh_loop\n", workdir);
	write_file("sh_loop", line, strlen(line), 0755);
	write_file("sh_missing", "#!/nonexistent/sh\n", 18, 0755);
	write_file("sh_empty", "#!\n", 3, 0755);
	write_file("sh_nul", "#!\0/bin/sh\n", 11, 0755);
	write_file("f", "hello\n", 6, 0644);
	mkdir("d", 0755);
	symlink("f", "l");
	symlink("loop", "loop");
	symlink("/", "lroot");
	mkfifo("p", 0644); /* opened only by structured cases, never blocking */
}

/* ---- descriptor pool */
static void set_nonblock(int fd)
{
	long fl = RAW(SYS_fcntl, fd, F_GETFL, 0);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		RAW(SYS_fcntl, fd, F_SETFL, fl | O_NONBLOCK);
}

static void pool_add(int fd)
{
	if (fd >= 0 && npool < (int)(sizeof pool / sizeof pool[0])) {
		set_nonblock(fd);
		pool[npool++] = fd;
	}
}

static void make_pool(void)
{
	/* Everything below 64 except the output is closed first, so the pool
	 * takes the small numbers random calls hit. */
	if (RAW(SYS_close_range, 0, out_fd - 1, 0) != 0 || RAW(SYS_close_range, out_fd + 1, ~0u, 0) != 0)
		for (int fd = 0; fd < 1024; fd++)
			if (fd != out_fd)
				close(fd);
	npool = 0;
	int p[2], s[2];
	filefd_pool = open("f", O_RDWR | O_CLOEXEC);
	pool_add(filefd_pool);
	dirfd_pool = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	pool_add(dirfd_pool);
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0) {
		pool_add(p[0]);
		pool_add(p[1]);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s) == 0) {
		pool_add(s[0]);
		pool_add(s[1]);
	}
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s) == 0) {
		pool_add(s[0]);
		pool_add(s[1]);
	}
	pool_add(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
	pool_add(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
	pool_add(socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
	procfd_pool = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	pool_add(procfd_pool);
	/* Not /proc itself: with -S it is the host's procfs, and a uid-0
	 * guest's fchmod of it succeeds (finding F3/F6): it made /proc 0007
	 * on the test machine. getdents of /proc opens it for one call. */
	pool_add(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	pool_add(open("p", O_RDWR | O_NONBLOCK | O_CLOEXEC));
	pool_add((int)RAW(SYS_eventfd2, 0, O_NONBLOCK | O_CLOEXEC));
	pool_add((int)RAW(SYS_epoll_create1, O_CLOEXEC));
	pool_add((int)RAW(SYS_memfd_create, "sysfuzz", 1 /* MFD_CLOEXEC */));
	pool_add((int)RAW(SYS_inotify_init1, O_NONBLOCK | O_CLOEXEC));
}

static void pool_nonblock(void)
{
	for (int fd = 0; fd < 64; fd++)
		if (fd != out_fd)
			set_nonblock(fd);
}

/* ---- interesting values */
static const uint64_t ints[] = {
	0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 32, 63, 64, 100, 127, 128, 255, 256, 1023, 1024, 4095,
	4096, 4097, 65535, 65536, 65537, 1u << 20, 0x7fffffff, 0x80000000u, 0xffffffffu, 1ull << 32,
	(1ull << 32) + 1, (1ull << 63) - 1, 1ull << 63, (1ull << 63) + 1, ~0ull, ~0ull - 1, (uint64_t)-100,
	(uint64_t)(int64_t)INT32_MIN, 0xffffffff00000000ull, 0x8000000080000000ull,
};
static const uint64_t sizes[] = {
	0, 1, 2, 7, 8, 15, 16, 17, 23, 24, 25, 32, 55, 56, 57, 64, 108, 109, 110, 128, 255, 256, 4095, 4096,
	4097, 8192, 65535, 65536, 65537, 1u << 20, (1u << 20) + 1, 0x7fffffff, 0x80000000u, 0xffffffffu,
	1ull << 32, (1ull << 63) - 1, 1ull << 63, ~0ull, ~0ull - 15, (uint64_t)INT64_MAX - 7,
};

static uint64_t rand_int(void)
{
	switch (below(8)) {
	case 0:
		return next64();
	case 1: {
		uint64_t v = next64() & 0xffffffff;
		if (v >= 0x400000 && v < 0x1000000)
			v ^= 0x40000000; /* not into this static binary */
		return v;
	}
	case 2:
		return below(64);
	default:
		return PICK(ints);
	}
}

static uint64_t rand_size(void) { return chance(85) ? PICK(sizes) : rand_int(); }

static uint64_t rand_flags(void)
{
	switch (below(6)) {
	case 0:
		return 0;
	case 1:
		return ~0ull;
	case 2:
		return 0xffffffffu;
	case 3:
		return 1ull << below(64);
	default:
		return next64() & next64();
	}
}

static uint64_t rand_fd(void)
{
	if (npool && chance(75))
		return (uint64_t)pool[below(npool)];
	static const uint64_t bad[] = {(uint64_t)-1, (uint64_t)-100, 0, 1, 2, 63, 64, 1000, 1u << 20, 0x7fffffff, 0xffffffffu, 1ull << 32};
	return PICK(bad);
}

static uint64_t rand_dirfd(void)
{
	if (chance(30))
		return (uint64_t)(int64_t)AT_FDCWD;
	if (chance(40) && dirfd_pool >= 0)
		return (uint64_t)dirfd_pool;
	return rand_fd();
}

static uint64_t bad_ptr(void)
{
	static const uint64_t bad[] = {
		0, 1, 0x1000, 0xffffffffffffffffull, 0xffff800000000000ull, 0xffffffff81000000ull, 0x0000800000000000ull,
		0x8000000000000000ull, 0xffffffffff600000ull /* vsyscall */, 0x00007ffffffff000ull,
	};
	switch (below(4)) {
	case 0:
		return (uint64_t)(uintptr_t)none_page;
	case 1:
		return (uint64_t)(uintptr_t)ro_page + below(4096);
	default:
		return PICK(bad);
	}
}

/* A buffer the kernel may read or write: scratch (possibly ending at the
 * guard), or a bad pointer. */
static uint64_t rand_buf(void)
{
	if (chance(20))
		return bad_ptr();
	if (chance(15))
		return (uint64_t)(uintptr_t)(scratch + SCRATCH_SIZE - below(64)); /* runs into the guard */
	return (uint64_t)(uintptr_t)(scratch + below(SCRATCH_SIZE / 2));
}

/* ---- paths */
static const char *path_names[] = {
	"f", "d", "l", "loop", "lroot", "p", "new", "new2", "d/new", "nodir/x", ".", "..", "", "/", "/tmp", "/proc/self",
	"/proc/self/exe", "/proc/self/cwd", "/proc/self/root", "/proc/self/fd", "/proc/self/status", "/proc/1",
	"/proc/self/fd/3", "/proc/self/fd/4", "/proc/thread-self", "../../../../..", "/..", "d/../f", "f/", "d/",
	"l/", "elf_interp_huge", "sh_loop", "//", "./f", "f\xff", "/proc/self/fd/99",
};

static char *long_path(size_t n, int terminated)
{
	char *p = arena_alloc(n + 1);
	for (size_t i = 0; i < n; i++)
		p[i] = (i % 4 == 3) ? '/' : 'a';
	if (terminated)
		p[n] = 0;
	else
		p[n] = 'b';
	return p;
}

static uint64_t rand_path(void)
{
	switch (below(20)) {
	case 0:
		return bad_ptr();
	case 1:
		return (uint64_t)(uintptr_t)long_path(PICK(((size_t[]){255, 256, 4095, 4096, 4097, 8192})), 1);
	case 2: {
		/* unterminated up to the scratch guard */
		char *p = (char *)scratch + SCRATCH_SIZE - 1 - below(5000);
		memset(p, 'x', (char *)scratch + SCRATCH_SIZE - p);
		return (uint64_t)(uintptr_t)p;
	}
	case 3: {
		char buf[300];
		snprintf(buf, sizeof buf, "%s/%s", workdir, PICK(path_names));
		return (uint64_t)(uintptr_t)arena_str(buf);
	}
	case 4: {
		char buf[64];
		int pid = chance(50) ? mypid : (int)rand_int();
		snprintf(buf, sizeof buf, "/proc/%d/%s", pid, chance(50) ? "fd/0" : "");
		return (uint64_t)(uintptr_t)arena_str(buf);
	}
	default:
		return (uint64_t)(uintptr_t)arena_str(PICK(path_names));
	}
}

/* ---- pids and signals */
static uint64_t rand_pid(void)
{
	switch (below(10)) {
	case 0:
		return 0;
	case 1:
		return (uint64_t)-1;
	case 2:
		return (uint64_t)mypid;
	case 3:
		return (uint64_t)myppid;
	case 4:
		return 1;
	case 5:
		return (uint64_t)(int64_t)-mypid;
	case 6:
		return (uint64_t)(int64_t)INT32_MIN;
	case 7:
		return below(40000);
	default:
		return rand_int();
	}
}

/* Signals that neither stop nor kill this process or another one. */
static uint64_t safe_sig(void)
{
	static const uint64_t s[] = {0, SIGURG, SIGWINCH, SIGCHLD, SIGCONT, 65, 0x100000000ull};
	return PICK(s);
}

/* ---- structures */
static uint64_t rand_sockaddr(uint64_t *len)
{
	struct sockaddr_un *a = arena_alloc(sizeof *a + 64);
	memset(a, 0, sizeof *a + 64);
	a->sun_family = chance(80) ? AF_UNIX : (uint16_t)rand_int();
	switch (below(6)) {
	case 0:
		if (strlen(workdir) + 3 <= sizeof a->sun_path) {
			memcpy(a->sun_path, workdir, strlen(workdir));
			memcpy(a->sun_path + strlen(workdir), chance(50) ? "/s" : "/f", 3);
		}
		break;
	case 1:
		memset(a->sun_path, 'z', sizeof a->sun_path); /* no NUL */
		break;
	case 2:
		a->sun_path[0] = 0; /* abstract */
		snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "sysfuzz%d", (int)below(4));
		break;
	case 3:
		snprintf(a->sun_path, sizeof a->sun_path, "%s", PICK(path_names));
		break;
	default:
		snprintf(a->sun_path, sizeof a->sun_path, "s%d", (int)below(3));
		break;
	}
	*len = chance(70) ? 2 + strlen(a->sun_path) + below(3) : rand_size();
	if (chance(10))
		return bad_ptr();
	return (uint64_t)(uintptr_t)a;
}

/* build_msghdr fills h (56 bytes) with a msghdr with hostile lengths and
 * control messages. */
static void build_msghdr(uint64_t *h)
{
	memset(h, 0, 56);
	uint64_t namelen = 0;
	if (chance(40))
		h[0] = rand_sockaddr(&namelen);
	h[1] = chance(80) ? namelen : rand_size();
	int niov = (int)below(5);
	uint64_t *iov = arena_alloc(16 * 8);
	for (int i = 0; i < niov; i++) {
		iov[2 * i] = chance(80) ? (uint64_t)(uintptr_t)(scratch + below(1024)) : bad_ptr();
		iov[2 * i + 1] = chance(60) ? below(512) : rand_size();
	}
	h[2] = chance(90) ? (uint64_t)(uintptr_t)iov : bad_ptr();
	h[3] = chance(80) ? (uint64_t)niov : PICK(((uint64_t[]){1024, 1025, 1ull << 32, 1ull << 63, ~0ull}));
	if (chance(60)) {
		unsigned char *c = arena_alloc(256);
		memset(c, 0, 256);
		size_t off = 0;
		int n = 1 + (int)below(3);
		for (int i = 0; i < n && off + 24 <= 256; i++) {
			uint64_t clen;
			int nfd = 1 + (int)below(3);
			switch (below(6)) {
			case 0:
				clen = (uint64_t)INT64_MAX - below(16);
				break;
			case 1:
				clen = rand_size();
				break;
			case 2:
				clen = below(16);
				break;
			default:
				clen = 16 + 4 * (uint64_t)nfd;
			}
			put64(c + off, clen);
			put32(c + off + 8, chance(70) ? SOL_SOCKET : (uint32_t)rand_int());
			put32(c + off + 12, chance(70) ? SCM_RIGHTS : (uint32_t)below(4));
			for (int k = 0; k < nfd && off + 16 + 4 * k + 4 <= 256; k++)
				put32(c + off + 16 + 4 * k, (uint32_t)rand_fd());
			off += 16 + ((4 * (size_t)nfd + 7) & ~(size_t)7);
		}
		h[4] = (uint64_t)(uintptr_t)c;
		h[5] = chance(70) ? off : rand_size();
	}
	h[6] = rand_flags();
}

static uint64_t rand_msghdr(void)
{
	if (chance(8))
		return bad_ptr();
	uint64_t *h = arena_alloc(56);
	build_msghdr(h);
	return (uint64_t)(uintptr_t)h;
}

/* argv/envp: NULL, small and valid, aliasing the path, huge and
 * unterminated (ends in the scratch guard), or a bad pointer. */
static uint64_t rand_argv(uint64_t path)
{
	switch (below(6)) {
	case 0:
		return 0;
	case 1:
		return bad_ptr();
	case 2: {
		uint64_t *v = arena_alloc(8 * 3);
		v[0] = path;
		v[1] = (uint64_t)(uintptr_t)arena_str("x");
		v[2] = 0;
		return (uint64_t)(uintptr_t)v;
	}
	case 3: {
		/* 6000 valid pointers, then the guard: EFAULT, not a NULL */
		size_t n = 6000;
		uint64_t *v = (uint64_t *)(scratch + SCRATCH_SIZE - 8 * n);
		for (size_t i = 0; i < n; i++)
			v[i] = (uint64_t)(uintptr_t)(scratch + 8 * below(64));
		memset(scratch, 'A', 600); /* the strings they point at */
		return (uint64_t)(uintptr_t)v;
	}
	case 4: {
		uint64_t *v = arena_alloc(8 * 4);
		v[0] = bad_ptr();
		v[1] = path;
		v[2] = (uint64_t)(uintptr_t)long_path(8192, 1);
		v[3] = 0;
		return (uint64_t)(uintptr_t)v;
	}
	default: {
		uint64_t *v = arena_alloc(8 * 2);
		v[0] = path;
		v[1] = 0;
		return (uint64_t)(uintptr_t)v;
	}
	}
}

/* ---- the calls */
enum { SKIP = 1, MEM = 2, RISKY_INPROC = 4, STRUCT = 8, NEWFD = 16 };

static unsigned char kind[NR_MAX + 1];
static long structured_nrs[NR_MAX + 1]; /* the STRUCT calls, drawn more often */
static int nstructured;

static void mark(long nr, int k)
{
	if (nr >= 0 && nr <= NR_MAX)
		kind[nr] |= k;
}

static void init_kinds(void)
{
	/* never at random: they end, stop or blind the fuzzer, reach the
	 * host (administration, SysV IPC), or are structured only */
	static const long skip[] = {
		SYS_exit, SYS_exit_group, SYS_rt_sigreturn, SYS_clone, SYS_clone3, SYS_execve, SYS_execveat,
		SYS_rt_sigsuspend, SYS_kill, SYS_tkill, SYS_tgkill, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo,
		SYS_pidfd_send_signal, SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_setitimer, SYS_timer_create,
		SYS_rseq, SYS_seccomp, SYS_sched_setscheduler, SYS_sched_setparam, SYS_sched_setattr,
		SYS_shmget, SYS_shmat, SYS_shmctl, SYS_shmdt, SYS_semget, SYS_semop, SYS_semctl, SYS_semtimedop,
		SYS_msgget, SYS_msgsnd, SYS_msgrcv, SYS_msgctl, SYS_settimeofday, SYS_clock_settime, SYS_adjtimex,
		SYS_clock_adjtime, SYS_sethostname, SYS_setdomainname, SYS_reboot, SYS_swapon, SYS_swapoff,
		SYS_kexec_load, SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_acct, SYS_mount,
		SYS_umount2, SYS_pivot_root, SYS_quotactl, SYS_syslog, SYS_vhangup, SYS_mq_unlink, SYS_ptrace,
		SYS_mlockall,
#ifdef SYS_fork
		SYS_fork, SYS_vfork, SYS_pause, SYS_alarm, SYS_iopl, SYS_ioperm, SYS_kexec_file_load,
#endif
#ifdef SYS_set_thread_area
		SYS_set_thread_area,
#endif
#ifdef SYS_arch_prctl
		SYS_arch_prctl,
#endif
#if defined(__x86_64__)
		335, 336, /* uretprobe, uprobe: SIGILL unless called from their trampolines (seccomp passes them) */
#endif
	};
	for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
		mark(skip[i], SKIP);
	static const long mem[] = {
		SYS_mmap, SYS_munmap, SYS_mprotect, SYS_mremap, SYS_madvise, SYS_msync, SYS_mincore, SYS_mlock,
		SYS_munlock, SYS_mlock2, SYS_remap_file_pages, SYS_pkey_mprotect, SYS_mbind, SYS_brk,
		SYS_map_shadow_stack, SYS_mseal, SYS_process_madvise, SYS_set_mempolicy_home_node,
	};
	for (size_t i = 0; i < sizeof mem / sizeof mem[0]; i++)
		mark(mem[i], MEM);
	/* irreversible for the rest of an in-process run */
	static const long risky[] = {
		SYS_chroot, SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid, SYS_setresgid,
		SYS_setgroups, SYS_setfsuid, SYS_setfsgid, SYS_setsid, SYS_setrlimit, SYS_prlimit64, SYS_prctl,
		SYS_unshare, SYS_close_range, SYS_sigaltstack, SYS_set_robust_list, SYS_personality,
	};
	for (size_t i = 0; i < sizeof risky / sizeof risky[0]; i++)
		mark(risky[i], RISKY_INPROC);
	/* kbox serves these itself: structured arguments most of the time */
	static const long st[] = {
		SYS_openat, SYS_openat2, SYS_newfstatat, SYS_statx, SYS_faccessat, SYS_faccessat2, SYS_readlinkat,
		SYS_mkdirat, SYS_mknodat, SYS_unlinkat, SYS_renameat, SYS_renameat2, SYS_linkat, SYS_symlinkat,
		SYS_fchmodat, SYS_fchmodat2, SYS_fchownat, SYS_utimensat, SYS_truncate, SYS_statfs, SYS_getxattr,
		SYS_lgetxattr, SYS_setxattr, SYS_lsetxattr, SYS_listxattr, SYS_llistxattr, SYS_removexattr,
		SYS_lremovexattr, SYS_fgetxattr, SYS_fsetxattr, SYS_flistxattr, SYS_inotify_add_watch, SYS_chdir,
		SYS_fchdir, SYS_getcwd, SYS_chroot, SYS_getdents64, SYS_bind, SYS_connect, SYS_sendmsg,
		SYS_sendmmsg, SYS_getsockname, SYS_getpeername, SYS_sendto, SYS_setpgid, SYS_prlimit64,
		SYS_sched_setaffinity, SYS_setpriority, SYS_ioprio_set, SYS_fstat, SYS_fchown, SYS_fchmod,
		SYS_fcntl, SYS_ioctl, SYS_setgroups, SYS_getgroups, SYS_setresuid, SYS_setresgid, SYS_readlinkat,
		SYS_fchmodat2, SYS_getxattr, SYS_migrate_pages, SYS_move_pages, SYS_setrlimit, SYS_prctl,
		SYS_futex, SYS_ppoll, SYS_pselect6, SYS_epoll_pwait, SYS_epoll_pwait2, SYS_fallocate,
		SYS_close_range,
#ifdef SYS_open
		SYS_open, SYS_creat, SYS_stat, SYS_lstat, SYS_access, SYS_readlink, SYS_mkdir, SYS_mknod, SYS_unlink,
		SYS_rmdir, SYS_rename, SYS_link, SYS_symlink, SYS_chmod, SYS_chown, SYS_lchown, SYS_utime, SYS_utimes,
		SYS_futimesat, SYS_getdents,
#endif
	};
	for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
		if (st[i] >= 0 && st[i] <= NR_MAX && !(kind[st[i]] & STRUCT))
			structured_nrs[nstructured++] = st[i];
		mark(st[i], STRUCT);
	}
	static const long newfd[] = {
		SYS_openat, SYS_openat2, SYS_socket, SYS_accept, SYS_accept4, SYS_eventfd2, SYS_epoll_create1,
		SYS_memfd_create, SYS_inotify_init1, SYS_signalfd4, SYS_timerfd_create, SYS_fcntl, SYS_dup,
		SYS_dup3, SYS_pidfd_open, SYS_open_tree, SYS_fsopen, SYS_fsmount, SYS_fspick,
#ifdef SYS_open
		SYS_open, SYS_creat, SYS_dup2, SYS_eventfd, SYS_epoll_create, SYS_inotify_init, SYS_signalfd,
#endif
	};
	for (size_t i = 0; i < sizeof newfd / sizeof newfd[0]; i++)
		mark(newfd[i], NEWFD);
}

static uint64_t sacrificial_addr(void)
{
	switch (below(4)) {
	case 0:
		return 0;
	case 1:
		return (uint64_t)(uintptr_t)sacrifice + 4096 * below(SACRIFICE_SIZE / 4096);
	case 2:
		return (uint64_t)(uintptr_t)sacrifice + below(SACRIFICE_SIZE);
	default:
		return (uint64_t)(uintptr_t)sacrifice;
	}
}

/* mm_args confines a memory-management call to the sacrificial region and
 * to at most 64 MiB. */
static void mm_args(long nr, uint64_t *a)
{
	uint64_t len = chance(70) ? 4096 * (1 + below(SACRIFICE_SIZE / 4096)) : below(64u << 20);
	if (nr == SYS_brk) {
		a[0] = chance(50) ? 0 : rand_int();
		/* In-process, a break within a page of 2^64 made the trap
		 * tier unmap the guest's program (a known bug, kept with
		 * "known-bugs"). */
		if (inprocess && !known_bugs && a[0] > 0xffff800000000000ull)
			a[0] = 0;
		return;
	}
	if (nr == SYS_mmap) {
		a[0] = sacrificial_addr();
		a[1] = len;
		a[2] = rand_flags() & 7;
		a[3] = rand_flags() & ~(uint64_t)(MAP_GROWSDOWN | MAP_POPULATE | MAP_LOCKED | 0x4000000 /* MAP_FIXED_NOREPLACE keeps */);
		if ((a[3] & 3) == 0)
			a[3] |= MAP_PRIVATE;
		if (a[0] == 0)
			a[3] &= ~(uint64_t)MAP_FIXED;
		else if (a[0] + len > (uint64_t)(uintptr_t)sacrifice + SACRIFICE_SIZE || a[0] < (uint64_t)(uintptr_t)sacrifice)
			a[3] &= ~(uint64_t)MAP_FIXED;
		if (a[0] + len > (uint64_t)(uintptr_t)sacrifice + SACRIFICE_SIZE)
			a[1] = (uint64_t)(uintptr_t)sacrifice + SACRIFICE_SIZE - a[0];
		a[4] = rand_fd();
		a[5] = chance(80) ? 4096 * below(4) : rand_int();
		return;
	}
	if (nr == SYS_mremap) {
		a[0] = (uint64_t)(uintptr_t)sacrifice + 4096 * below(SACRIFICE_SIZE / 4096);
		a[1] = 4096 * below(4);
		a[2] = a[1] + 4096 * below(4);
		a[3] = below(2) ? 1 /* MREMAP_MAYMOVE */ : 0;
		return;
	}
	do
		a[0] = sacrificial_addr();
	while (a[0] == 0);
	uint64_t room = (uint64_t)(uintptr_t)sacrifice + SACRIFICE_SIZE - a[0];
	a[1] = len < room ? len : room;
	if (nr == SYS_madvise)
		a[2] = below(30);
	if (nr == SYS_mprotect || nr == SYS_pkey_mprotect)
		a[2] = rand_flags() & 7;
}

/* An open_how with a hostile size. */
static void openat2_args(uint64_t *a)
{
	size_t room = 8192;
	unsigned char *h = arena_alloc(room);
	memset(h, 0, room);
	uint64_t flags = chance(50) ? (O_RDONLY | (chance(30) ? O_CLOEXEC : 0)) : rand_flags();
	flags &= ~(uint64_t)O_NONBLOCK;
	flags |= O_NONBLOCK;
	put64(h, flags);
	put64(h + 8, chance(70) ? 0 : rand_flags());
	put64(h + 16, chance(50) ? below(0x40) : rand_flags());
	if (chance(20))
		h[24 + below(64)] = 1; /* non-zero tail: E2BIG */
	a[0] = rand_dirfd();
	a[1] = rand_path();
	a[2] = chance(90) ? (uint64_t)(uintptr_t)h : bad_ptr();
	a[3] = chance(50) ? 24 : rand_size();
}

static uint64_t rand_open_flags(void)
{
	uint64_t f;
	if (chance(60))
		f = PICK(((uint64_t[]){O_RDONLY, O_WRONLY, O_RDWR, O_RDONLY | O_DIRECTORY, O_WRONLY | O_CREAT | O_TRUNC,
					 O_RDWR | O_CREAT | O_EXCL, O_PATH, O_RDONLY | O_NOFOLLOW, O_TMPFILE | O_RDWR,
					 O_WRONLY | O_APPEND}));
	else
		f = rand_flags();
	/* A FIFO or device opened blocking would wait uninterruptibly under
	 * kbox (the supervisor holds the call): always non-blocking. */
	return f | O_NONBLOCK;
}

static uint64_t rand_mode(void) { return chance(70) ? PICK(((uint64_t[]){0, 0644, 0755, 07777, 0600, 04755})) : rand_int(); }

/* mknod modes without FIFOs (a FIFO at a pool path would be opened
 * blocking by random calls). */
static uint64_t mknod_mode(void)
{
	uint64_t m = rand_mode();
	if ((m & S_IFMT) == S_IFIFO)
		m = (m & ~(uint64_t)S_IFMT) | S_IFREG;
	if (chance(30))
		m = (m & 07777) | PICK(((uint64_t[]){S_IFREG, S_IFSOCK, S_IFCHR, S_IFBLK, 0, S_IFDIR}));
	return m;
}

#ifdef SYS_creat
/* creat opens for writing without O_NONBLOCK: it gets names no other call
 * creates, which never become FIFOs. */
static void creat_path(uint64_t *a)
{
	char name[8] = "c0";
	name[1] = (char)('0' + below(8));
	a[0] = chance(90) ? (uint64_t)(uintptr_t)arena_str(name) : bad_ptr();
	a[1] = rand_mode();
}
#endif

/* structured fills the arguments of a call kbox serves. */
static void structured(long nr, uint64_t *a)
{
	switch (nr) {
#ifdef SYS_open
	case SYS_open:
		a[0] = rand_path(), a[1] = rand_open_flags(), a[2] = rand_mode();
		return;
	case SYS_mkdir:
	case SYS_chmod:
		a[0] = rand_path(), a[1] = rand_mode();
		return;
	case SYS_creat:
		creat_path(a);
		return;
	case SYS_stat:
	case SYS_lstat:
		a[0] = rand_path(), a[1] = rand_buf();
		return;
	case SYS_access:
		a[0] = rand_path(), a[1] = chance(80) ? below(8) : rand_flags();
		return;
	case SYS_readlink:
		a[0] = rand_path(), a[1] = rand_buf(), a[2] = rand_size();
		return;
	case SYS_mknod:
		a[0] = rand_path(), a[1] = mknod_mode(), a[2] = rand_int();
		return;
	case SYS_unlink:
	case SYS_rmdir:
		a[0] = rand_path();
		return;
	case SYS_rename:
	case SYS_link:
	case SYS_symlink:
		a[0] = rand_path(), a[1] = rand_path();
		return;
	case SYS_chown:
	case SYS_lchown:
		a[0] = rand_path(), a[1] = rand_int(), a[2] = rand_int();
		return;
	case SYS_utime:
	case SYS_utimes:
		a[0] = rand_path(), a[1] = chance(30) ? 0 : rand_buf();
		return;
	case SYS_futimesat:
		a[0] = rand_dirfd(), a[1] = chance(20) ? 0 : rand_path(), a[2] = chance(30) ? 0 : rand_buf();
		return;
	case SYS_getdents:
#endif
	case SYS_getdents64:
		a[0] = chance(40) && procfd_pool >= 0 ? (uint64_t)procfd_pool : rand_fd();
		if (chance(20))
			a[0] = PROC_ROOT_FD; /* opened for this call only (see one_call) */
		a[1] = rand_buf(), a[2] = rand_size();
		return;
	case SYS_openat:
		a[0] = rand_dirfd(), a[1] = rand_path(), a[2] = rand_open_flags(), a[3] = rand_mode();
		return;
	case SYS_openat2:
		openat2_args(a);
		return;
	case SYS_newfstatat:
		a[0] = rand_dirfd(), a[1] = rand_path(), a[2] = rand_buf(), a[3] = chance(70) ? PICK(((uint64_t[]){0, 0x100, 0x1000, 0x800})) : rand_flags();
		return;
	case SYS_statx:
		a[0] = rand_dirfd(), a[1] = chance(10) ? 0 : rand_path(), a[2] = chance(70) ? PICK(((uint64_t[]){0, 0x100, 0x1000, 0x2000, 0x6000})) : rand_flags();
		a[3] = rand_flags(), a[4] = rand_buf();
		return;
	case SYS_faccessat:
	case SYS_faccessat2:
		a[0] = rand_dirfd(), a[1] = rand_path(), a[2] = chance(80) ? below(8) : rand_flags();
		a[3] = chance(60) ? PICK(((uint64_t[]){0, 0x200, 0x100, 0x1000})) : rand_flags();
		return;
	case SYS_readlinkat:
		a[0] = rand_dirfd(), a[1] = rand_path(), a[2] = rand_buf(), a[3] = rand_size();
		return;
	case SYS_mkdirat:
	case SYS_fchmodat:
		a[0] = rand_dirfd(), a[1] = rand_path(), a[2] = rand_mode();
		return;
	case SYS_fchmodat2:
		a[0] = rand_dirfd(), a[1] = rand_path(), a[2] = rand_mode(), a[3] = rand_flags() & 0x1100;
		return;
	case SYS_mknodat:
		a[0] = rand_dirfd(), a[1] = rand_path(), a[2] = mknod_mode(), a[3] = rand_int();
		return;
	case SYS_unlinkat:
		a[0] = rand_dirfd(), a[1] = rand_path(), a[2] = chance(70) ? (chance(50) ? 0 : 0x200) : rand_flags();
		return;
	case SYS_renameat:
	case SYS_renameat2:
	case SYS_linkat:
		a[0] = rand_dirfd(), a[1] = rand_path(), a[2] = rand_dirfd(), a[3] = rand_path();
		a[4] = chance(60) ? below(8) | (chance(30) ? 0x1400 : 0) : rand_flags();
		return;
	case SYS_symlinkat:
		a[0] = rand_path(), a[1] = rand_dirfd(), a[2] = rand_path();
		return;
	case SYS_fchownat:
		a[0] = rand_dirfd(), a[1] = rand_path(), a[2] = rand_int(), a[3] = rand_int(), a[4] = rand_flags() & 0x1100;
		return;
	case SYS_utimensat:
		a[0] = rand_dirfd(), a[1] = chance(20) ? 0 : rand_path(), a[2] = chance(30) ? 0 : rand_buf(), a[3] = rand_flags() & 0x1100;
		return;
	case SYS_truncate:
		a[0] = rand_path(), a[1] = chance(60) ? below(1 << 16) : rand_int();
		return;
	case SYS_statfs:
		a[0] = rand_path(), a[1] = rand_buf();
		return;
	case SYS_getxattr:
	case SYS_lgetxattr:
	case SYS_fgetxattr:
	case SYS_setxattr:
	case SYS_lsetxattr:
	case SYS_fsetxattr: {
		static const char *names[] = {"user.x", "user.containers.override_stat", "", "trusted.x",
					      "security.capability", "system.posix_acl_access", "user."};
		a[0] = (nr == SYS_fgetxattr || nr == SYS_fsetxattr) ? rand_fd() : rand_path();
		a[1] = chance(80) ? (uint64_t)(uintptr_t)arena_str(PICK(names)) : (chance(50) ? (uint64_t)(uintptr_t)long_path(300, 1) : bad_ptr());
		a[2] = rand_buf();
		a[3] = rand_size();
		a[4] = chance(70) ? below(3) : rand_flags();
		return;
	}
	case SYS_listxattr:
	case SYS_llistxattr:
	case SYS_flistxattr:
		a[0] = nr == SYS_flistxattr ? rand_fd() : rand_path(), a[1] = rand_buf(), a[2] = rand_size();
		return;
	case SYS_removexattr:
	case SYS_lremovexattr:
		a[0] = rand_path(), a[1] = (uint64_t)(uintptr_t)arena_str("user.x");
		return;
	case SYS_inotify_add_watch:
		a[0] = rand_fd(), a[1] = rand_path(), a[2] = rand_flags();
		return;
	case SYS_chdir:
	case SYS_chroot:
		a[0] = rand_path();
		return;
	case SYS_fchdir:
		a[0] = rand_fd();
		return;
	case SYS_getcwd:
		a[0] = rand_buf(), a[1] = rand_size();
		return;
	case SYS_bind:
	case SYS_connect: {
		uint64_t len;
		a[0] = rand_fd(), a[1] = rand_sockaddr(&len), a[2] = len;
		return;
	}
	case SYS_sendto: {
		uint64_t len;
		a[0] = rand_fd(), a[1] = rand_buf(), a[2] = chance(60) ? below(600) : rand_size();
		a[3] = rand_flags() | MSG_DONTWAIT, a[4] = rand_sockaddr(&len), a[5] = len;
		if (chance(10))
			a[4] = 0;
		return;
	}
	case SYS_sendmsg:
		a[0] = rand_fd(), a[1] = rand_msghdr(), a[2] = (chance(50) ? 0 : rand_flags()) | MSG_DONTWAIT;
		return;
	case SYS_sendmmsg: {
		int n = (int)below(4);
		uint64_t *v = arena_alloc(64 * 4);
		for (int i = 0; i < n; i++) {
			build_msghdr(&v[8 * i]);
			v[8 * i + 7] = 0;
		}
		a[0] = rand_fd(), a[1] = chance(90) ? (uint64_t)(uintptr_t)v : bad_ptr();
		a[2] = chance(70) ? (uint64_t)n : rand_size(), a[3] = (chance(50) ? 0 : rand_flags()) | MSG_DONTWAIT;
		return;
	}
	case SYS_getsockname:
	case SYS_getpeername: {
		uint32_t *len = arena_alloc(4);
		*len = (uint32_t)(chance(60) ? below(200) : rand_size());
		a[0] = rand_fd(), a[1] = rand_buf(), a[2] = chance(85) ? (uint64_t)(uintptr_t)len : bad_ptr();
		return;
	}
	case SYS_setpgid:
		a[0] = rand_pid(), a[1] = rand_pid();
		return;
	case SYS_prlimit64:
	case SYS_setrlimit: {
		/* never CPU, FSIZE, DATA, STACK, AS, NOFILE, NPROC: they kill or
		 * cripple the fuzzer itself */
		static const uint64_t res[] = {RLIMIT_CORE, RLIMIT_MEMLOCK, RLIMIT_MSGQUEUE, RLIMIT_NICE,
					       RLIMIT_RTPRIO, RLIMIT_SIGPENDING, 16, 1000, (uint64_t)-1};
		uint64_t *lim = arena_alloc(16);
		lim[0] = rand_int(), lim[1] = rand_int();
		if (nr == SYS_setrlimit) {
			a[0] = PICK(res), a[1] = chance(80) ? (uint64_t)(uintptr_t)lim : bad_ptr();
		} else {
			a[0] = rand_pid(), a[1] = PICK(res), a[2] = chance(50) ? 0 : (uint64_t)(uintptr_t)lim, a[3] = chance(50) ? 0 : rand_buf();
			if (a[0] == 0 || a[0] == (uint64_t)mypid)
				a[2] = 0; /* the fuzzer's own limits: read only */
		}
		return;
	}
	case SYS_sched_setaffinity:
		a[0] = rand_pid(), a[1] = rand_size(), a[2] = rand_buf();
		return;
	case SYS_setpriority:
		a[0] = below(4), a[1] = rand_pid(), a[2] = chance(80) ? below(20) : rand_int();
		return;
	case SYS_ioprio_set:
		a[0] = below(4), a[1] = rand_pid(), a[2] = (2u << 13) | below(8); /* best effort class */
		return;
	case SYS_migrate_pages:
		a[0] = rand_pid(), a[1] = rand_size(), a[2] = rand_buf(), a[3] = rand_buf();
		return;
	case SYS_move_pages:
		a[0] = rand_pid(), a[1] = below(4), a[2] = rand_buf(), a[3] = chance(50) ? 0 : rand_buf(), a[4] = rand_buf(), a[5] = rand_flags();
		return;
	case SYS_fstat:
		a[0] = rand_fd(), a[1] = rand_buf();
		return;
	case SYS_fchown:
		a[0] = rand_fd(), a[1] = rand_int(), a[2] = rand_int();
		return;
	case SYS_fchmod:
		a[0] = rand_fd(), a[1] = rand_mode();
		return;
	case SYS_fcntl: {
		static const uint64_t cmds[] = {F_GETFL, F_SETFL, F_GETFD, F_SETFD, F_DUPFD, F_DUPFD_CLOEXEC, F_SETOWN,
						F_SETOWN_EX, F_GETOWN_EX, F_GETOWN, F_SETLK, F_GETLK, 1024 /* F_SETLEASE */,
						1033 /* F_ADD_SEALS */, 1034};
		a[0] = rand_fd(), a[1] = PICK(cmds);
		if (a[1] == F_SETOWN)
			a[2] = rand_pid();
		else if (a[1] == F_SETOWN_EX) {
			int32_t *ex = arena_alloc(8);
			ex[0] = chance(80) ? (int32_t)below(4) : (int32_t)rand_int();
			ex[1] = (int32_t)rand_pid();
			a[2] = chance(85) ? (uint64_t)(uintptr_t)ex : bad_ptr();
		} else if (a[1] == F_SETLK || a[1] == F_GETLK || a[1] == F_GETOWN_EX)
			a[2] = rand_buf();
		else
			a[2] = rand_int();
		return;
	}
	case SYS_ioctl: {
		int32_t *own = arena_alloc(4);
		*own = (int32_t)rand_pid();
		a[0] = rand_fd(), a[1] = chance(50) ? 0x8901 /* FIOSETOWN */ : 0x8902 /* SIOCSPGRP */;
		a[2] = chance(85) ? (uint64_t)(uintptr_t)own : bad_ptr();
		return;
	}
	case SYS_setgroups:
		a[0] = chance(60) ? below(70000) : rand_int(), a[1] = rand_buf();
		return;
	case SYS_getgroups:
		a[0] = chance(60) ? below(70000) : rand_int(), a[1] = rand_buf();
		return;
	case SYS_setresuid:
	case SYS_setresgid:
		a[0] = chance(50) ? (uint64_t)-1 : rand_int(), a[1] = chance(50) ? (uint64_t)-1 : rand_int(), a[2] = chance(50) ? (uint64_t)-1 : rand_int();
		return;
	case SYS_prctl: {
		/* not SECCOMP (22), MM (35), SYSCALL_USER_DISPATCH (59), TSC
		 * (26), MDWE (65), SET_SPECULATION... (53) */
		static const uint64_t ops[] = {1, 2, 3, 4, 15, 16, 23, 24, 36, 37, 38, 39, 40, 47, 0x59616d61, 1000};
		a[0] = PICK(ops), a[1] = rand_int(), a[2] = rand_buf(), a[3] = rand_int(), a[4] = rand_int();
		if (a[0] == 1 || a[0] == 0x59616d61)
			a[1] = safe_sig(); /* PDEATHSIG, SET_PTRACER */
		return;
	}
	case SYS_futex: {
		/* no PI operations: a PI lock owned by another task waits across
		 * every signal */
		static const uint64_t ops[] = {0, 1, 3, 4, 5, 9, 10, 128, 129, 137, 138};
		a[0] = (uint64_t)(uintptr_t)(scratch + 4 * below(256)), a[1] = PICK(ops), a[2] = rand_int();
		a[3] = chance(50) ? 0 : rand_buf(), a[4] = (uint64_t)(uintptr_t)(scratch + 4 * below(256)), a[5] = rand_int();
		return;
	}
	case SYS_ppoll:
	case SYS_pselect6:
	case SYS_epoll_pwait:
	case SYS_epoll_pwait2: {
		/* a signal mask that never blocks SIGALRM (the fuzzer's
		 * interruption). Nor SIGSYS: the in-process tiers then miss
		 * the guest's signals in epoll_pwait, which never returns
		 * (a known bug, kept with "known-bugs"). */
		uint64_t *mask = arena_alloc(8);
		*mask = next64() & ~(1ull << (SIGALRM - 1));
		if (!known_bugs)
			*mask &= ~(1ull << (SIGSYS - 1));
		for (int i = 0; i < 6; i++)
			a[i] = rand_int();
		if (nr == SYS_ppoll) {
			a[0] = rand_buf(), a[1] = below(8), a[2] = chance(50) ? 0 : rand_buf(), a[3] = (uint64_t)(uintptr_t)mask, a[4] = 8;
		} else if (nr == SYS_pselect6) {
			uint64_t *ss = arena_alloc(16);
			ss[0] = (uint64_t)(uintptr_t)mask, ss[1] = 8;
			a[0] = below(70), a[1] = rand_buf(), a[2] = rand_buf(), a[3] = rand_buf(), a[4] = chance(50) ? 0 : rand_buf();
			a[5] = (uint64_t)(uintptr_t)ss;
		} else {
			a[0] = rand_fd(), a[1] = rand_buf(), a[2] = below(8), a[3] = nr == SYS_epoll_pwait ? (uint64_t)(int64_t)-1 : 0;
			a[4] = (uint64_t)(uintptr_t)mask, a[5] = 8;
		}
		return;
	}
	case SYS_fallocate:
		a[0] = rand_fd(), a[1] = below(0x80), a[2] = below(1 << 20), a[3] = below(1 << 20);
		return;
	case SYS_close_range:
		a[0] = 40 + below(20), a[1] = a[0] + below(20), a[2] = below(8);
		return;
	}
}

/* sanitize keeps any call from harming the fuzzer in the ways listed at
 * the top. */
static void sanitize(long nr, uint64_t *a)
{
	/* A procfs directory as a dirfd with ".." reaches the procfs root:
	 * with -S that is the host's /proc, and kbox lets a uid-0 guest
	 * chmod it (finding F3; it made the test machine's /proc 0000). So
	 * /proc/self's descriptor serves getdents only (see also after). */
	if (!known_bugs && procfd_pool >= 0 && nr != SYS_getdents64
#ifdef SYS_getdents
	    && nr != SYS_getdents
#endif
	) {
		for (int i = 0; i < 6; i++)
			if (a[i] == (uint64_t)procfd_pool)
				a[i] = (uint64_t)dirfd_pool;
	}
	if (nr >= 0 && nr <= NR_MAX && (kind[nr] & MEM)) {
		mm_args(nr, a);
		return;
	}
	switch (nr) {
	case SYS_close_range:
	case SYS_fcntl:
	case SYS_ppoll:
	case SYS_pselect6:
	case SYS_epoll_pwait:
	case SYS_epoll_pwait2:
	case SYS_prctl:
	case SYS_futex:
	case SYS_prlimit64:
	case SYS_setrlimit:
	case SYS_fallocate:
		if (!(kind[nr] & STRUCT))
			return;
		structured(nr, a); /* always their safe form */
		return;
#ifdef SYS_dup2
	case SYS_dup2:
#endif
	case SYS_dup3:
		if (a[1] == (uint64_t)out_fd)
			a[1] = 5;
		return;
	case SYS_socket:
	case SYS_socketpair:
		/* no netlink or packet sockets: random bytes sent there by a
		 * fuzzer with capabilities could reconfigure the host */
		if (a[0] == 16 || a[0] == 17)
			a[0] = AF_UNIX;
		return;
	case SYS_ioctl:
		if ((kind[nr] & STRUCT) && ((a[1] & 0xff00) == 0x8900 || (a[1] & 0xff00) == 0x5400))
			structured(nr, a); /* no socket or terminal configuration */
		return;
	case SYS_close:
		if (a[0] == (uint64_t)out_fd)
			a[0] = 5;
		return;
	case SYS_mknodat:
		a[2] = mknod_mode();
		return;
#ifdef SYS_mknod
	case SYS_mknod:
		a[1] = mknod_mode();
		return;
#endif
	case SYS_openat:
		a[2] |= O_NONBLOCK;
		return;
#ifdef SYS_open
	case SYS_open:
		a[1] |= O_NONBLOCK;
		return;
	case SYS_creat:
		creat_path(a);
		return;
#endif
	case SYS_openat2: {
		uint64_t h = a[2];
		if (h >= (uint64_t)(uintptr_t)arena && h + 8 <= (uint64_t)(uintptr_t)arena + ARENA_SIZE) {
			uint64_t f;
			memcpy(&f, (void *)(uintptr_t)h, 8);
			f |= O_NONBLOCK;
			memcpy((void *)(uintptr_t)h, &f, 8);
		} else if (h >= (uint64_t)(uintptr_t)scratch && h + 8 <= (uint64_t)(uintptr_t)scratch + SCRATCH_SIZE) {
			uint64_t f;
			memcpy(&f, (void *)(uintptr_t)h, 8);
			f |= O_NONBLOCK;
			memcpy((void *)(uintptr_t)h, &f, 8);
		}
		return;
	}
	case SYS_sendto:
	case SYS_sendmsg:
		a[nr == SYS_sendto ? 3 : 2] |= MSG_DONTWAIT;
		return;
	case SYS_sendmmsg:
		a[3] |= MSG_DONTWAIT;
		return;
	case SYS_sched_setaffinity:
		return;
	}
}

/* close_proc_dir closes a new descriptor of a procfs directory (see
 * sanitize) unless known-bugs asks for them. */
static void close_proc_dir(int fd)
{
	struct stat st;
	struct statfs sfs;
	if (known_bugs || fd == procfd_pool)
		return;
	if (RAW(SYS_fstat, fd, &st) == 0 && S_ISDIR(st.st_mode) && RAW(SYS_fstatfs, fd, &sfs) == 0 && sfs.f_type == 0x9fa0)
		RAW(SYS_close, fd);
}

/* after restores what a call may have changed that the fuzzer relies on. */
static void after(long nr, long ret)
{
	switch (nr) {
	case SYS_chdir:
	case SYS_fchdir:
	case SYS_chroot:
		if (chdir(workdir) != 0 && dirfd_pool >= 0)
			RAW(SYS_fchdir, dirfd_pool);
		break;
	case SYS_fcntl:
	case SYS_ioctl:
#ifdef SYS_dup2
	case SYS_dup2:
#endif
	case SYS_dup3:
	case SYS_dup:
		pool_nonblock();
		break;
	default:
		if (nr >= 0 && nr <= NR_MAX && (kind[nr] & NEWFD) && ret >= 0 && ret < 1024 && ret != out_fd) {
			set_nonblock((int)ret);
			close_proc_dir((int)ret);
		}
	}
}

/* ---- exec cases: hostile programs, argv and envp */
static void exec_case(int risky)
{
	const char *name;
	if (risky && chance(30))
		name = PICK(exec_files_risky);
	else
		name = PICK(exec_files);
	uint64_t path = chance(85) ? (uint64_t)(uintptr_t)arena_str(name) : rand_path();
	if (!risky && path > 0x10000 && path < 0x800000000000ull) {
		/* in-process: the path must name a file the kernel refuses */
		path = (uint64_t)(uintptr_t)arena_str(name);
	}
	uint64_t argv = rand_argv(path), envp = chance(50) ? rand_argv(path) : 0;
	if (chance(50))
		RAW(SYS_execve, path, argv, envp);
	else
		RAW(SYS_execveat, rand_dirfd(), path, argv, envp, chance(70) ? 0 : rand_flags());
}

/* signal_call makes one of the skipped calls in a form that neither stops
 * nor kills anything nor takes the fuzzer's own signals away. */
static void on_other(int sig) { (void)sig; }
static void signal_call(void)
{
	uint64_t info = (uint64_t)(uintptr_t)(scratch + below(1024));
	int which = (int)below(12);
	if (trace)
		say("call %ld: signal case %d\n", ncalls, which);
	switch (which) {
	case 0:
		RAW(SYS_kill, rand_pid(), safe_sig());
		return;
	case 1:
		RAW(SYS_tkill, rand_pid(), safe_sig());
		return;
	case 2:
		RAW(SYS_tgkill, rand_pid(), rand_pid(), safe_sig());
		return;
	case 3:
		RAW(SYS_rt_sigqueueinfo, rand_pid(), safe_sig(), chance(80) ? info : bad_ptr());
		return;
	case 4:
		RAW(SYS_rt_tgsigqueueinfo, rand_pid(), rand_pid(), safe_sig(), chance(80) ? info : bad_ptr());
		return;
	case 5:
		RAW(SYS_pidfd_send_signal, rand_fd(), safe_sig(), chance(50) ? 0 : info, chance(70) ? 0 : rand_flags());
		return;
	case 6: {
		/* a timer whose signal is harmless */
		struct sigevent ev;
		memset(&ev, 0, sizeof ev);
		ev.sigev_notify = chance(50) ? SIGEV_NONE : SIGEV_SIGNAL;
		ev.sigev_signo = SIGURG;
		long id;
		if (RAW(SYS_timer_create, CLOCK_MONOTONIC, &ev, &id) == 0) {
			struct itimerspec its = {{0, 0}, {0, 1000 * (long)below(1000)}};
			RAW(SYS_timer_settime, id, 0, &its, NULL);
			RAW(SYS_timer_delete, id);
		}
		return;
	}
	case 7: {
#ifdef SYS_arch_prctl
		static const uint64_t codes[] = {0x1003, 0x1004, 0x1011, 0x9999, 0};
		RAW(SYS_arch_prctl, PICK(codes), rand_buf());
#else
		/* no arch_prctl (arm64): the thread pointer is TPIDR_EL0, not a call */
		RAW(SYS_getpid, 0);
#endif
		return;
	}
	case 8: {
		static const uint64_t pol[] = {0 /* OTHER */, 3 /* BATCH */, 5 /* IDLE */};
		uint64_t *param = arena_alloc(64);
		memset(param, 0, 64);
		switch (below(3)) {
		case 0:
			RAW(SYS_sched_setscheduler, rand_pid(), PICK(pol), chance(85) ? (uint64_t)(uintptr_t)param : bad_ptr());
			return;
		case 1:
			RAW(SYS_sched_setparam, rand_pid(), chance(85) ? (uint64_t)(uintptr_t)param : bad_ptr());
			return;
		default:
			((uint32_t *)param)[0] = (uint32_t)(chance(80) ? 48 : rand_size());
			((uint32_t *)param)[1] = (uint32_t)PICK(pol);
			RAW(SYS_sched_setattr, rand_pid(), chance(85) ? (uint64_t)(uintptr_t)param : bad_ptr(), chance(80) ? 0 : rand_flags());
			return;
		}
	}
	case 9: {
		/* rt_sigaction of signals the fuzzer does not depend on, to a
		 * handler of its own, SIG_IGN or SIG_DFL */
		static const int sigs[] = {SIGURG, SIGWINCH, SIGCHLD, SIGCONT, SIGUSR1, SIGUSR2, 40, 64, 65, 0, SIGKILL};
		struct {
			uint64_t handler, flags, restorer, mask;
		} *sa = arena_alloc(32);
		static const uint64_t handlers[] = {0, 1};
		int sig = PICK(sigs);
		if (chance(40)) {
			/* a handler needs libc's restorer */
			struct sigaction ls;
			memset(&ls, 0, sizeof ls);
			ls.sa_handler = on_other;
			ls.sa_flags = (int)(rand_flags() & (SA_RESTART | SA_NODEFER | SA_RESETHAND | SA_NOCLDSTOP));
			sigaction(sig, &ls, NULL);
			return;
		}
		sa->handler = PICK(handlers);
		sa->flags = rand_flags() & (SA_RESTART | SA_NODEFER | SA_RESETHAND | SA_NOCLDSTOP | SA_NOCLDWAIT);
		sa->restorer = 0;
		sa->mask = next64();
		if (sa->handler == 0 && (sig == SIGUSR1 || sig == SIGUSR2))
			sa->handler = 1; /* their default would kill */
		RAW(SYS_rt_sigaction, sig, chance(90) ? (uint64_t)(uintptr_t)sa : bad_ptr(), chance(50) ? 0 : rand_buf(), chance(85) ? 8 : rand_size());
		return;
	}
	case 10: {
		/* rt_sigprocmask that never blocks SIGALRM or a fault signal */
		uint64_t *m = arena_alloc(8);
		*m = next64() & ~((1ull << (SIGALRM - 1)) | (1ull << (SIGSEGV - 1)) | (1ull << (SIGBUS - 1)) |
				  (1ull << (SIGILL - 1)) | (1ull << (SIGFPE - 1)) | (1ull << (SIGTRAP - 1)));
		RAW(SYS_rt_sigprocmask, below(3), chance(90) ? (uint64_t)(uintptr_t)m : bad_ptr(), chance(50) ? 0 : rand_buf(), chance(85) ? 8 : rand_size());
		return;
	}
	default: {
		/* the guest's own identity calls with random ids */
		static const long ids[] = {SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setfsuid, SYS_setfsgid};
		if (inprocess)
			return;
		RAW(PICK(ids), rand_int(), rand_int());
		return;
	}
	}
}

/* ---- one call */

static void one_call(int allow_weird)
{
	long nr;
	uint64_t a[6];
	if (chance(3)) {
		/* exec: in a child where forking works */
		if (trace)
			say("call %ld: exec case\n", ncalls);
		if (!inprocess) {
			pid_t c = fork();
			if (c == 0) {
				exec_case(1);
				_exit(0);
			}
			if (c > 0) {
				/* 2 s for whatever the exec started, then it is killed */
				for (int i = 0; i < 1000 && waitpid(c, NULL, WNOHANG) == 0; i++) {
					struct timespec d = {0, 2000000};
					nanosleep(&d, NULL);
				}
				kill(c, SIGKILL);
				waitpid(c, NULL, 0);
			}
		} else {
			exec_case(0);
		}
		ncalls++;
		return;
	}
	if (chance(3)) {
		signal_call();
		ncalls++;
		return;
	}
	if (allow_weird) {
		/* numbers outside the table; -1 and x32 numbers make the
		 * seccomp tier's filter kill the process: last in a batch */
		static const long weird[] = {-1, NR_MAX + 1, 1000, 0x7fffffff, 0x40000000 + 2, 0x40000000 + 39};
		nr = PICK(weird);
	} else {
		do {
			if (nstructured && chance(40))
				nr = structured_nrs[below(nstructured)];
			else
				nr = (long)below(NR_MAX + 1);
			if (nr >= NR_HOLE_LO && nr <= NR_HOLE_HI && !chance(5))
				continue;
			if ((kind[nr] & SKIP) || (inprocess && (kind[nr] & RISKY_INPROC)) ||
			    (inprocess && !known_bugs && nr == SYS_vmsplice))
				continue;
			break;
		} while (1);
		/* (In-process, a vmsplice waiting on an empty pipe is not
		 * interrupted by a guest signal: a known bug.) */
	}
	for (int i = 0; i < 6; i++) {
		switch (below(4)) {
		case 0:
			a[i] = rand_buf();
			break;
		case 1:
			a[i] = rand_fd();
			break;
		case 2:
			a[i] = rand_path();
			break;
		default:
			a[i] = rand_int();
		}
	}
	if (nr >= 0 && nr <= NR_MAX && (kind[nr] & STRUCT) && chance(75))
		structured(nr, a);
	sanitize(nr, a);
	/* fresh random bytes where scratch pointers land */
	fill_random(scratch + below(SCRATCH_SIZE - 512), 512);
	if (trace) {
		/* the arguments, and the strings of those in the arena */
		char strs[200] = "";
		size_t used = 0;
		for (int i = 0; i < 6 && used < sizeof strs - 50; i++) {
			const char *p = (const char *)(uintptr_t)a[i];
			if (a[i] < (uint64_t)(uintptr_t)arena || a[i] >= (uint64_t)(uintptr_t)arena + ARENA_SIZE - 48)
				continue;
			int n = 0;
			while (n < 40 && p[n] >= 0x20 && p[n] < 0x7f)
				n++;
			if (n > 0 && p[n] == 0)
				used += (size_t)snprintf(strs + used, sizeof strs - used, " a%d=\"%.*s\"", i, n, p);
		}
		say("call %ld: nr=%ld %#llx %#llx %#llx %#llx %#llx %#llx%s\n", ncalls, nr, (unsigned long long)a[0],
		    (unsigned long long)a[1], (unsigned long long)a[2], (unsigned long long)a[3],
		    (unsigned long long)a[4], (unsigned long long)a[5], strs);
	}
	long procfd = -1;
	if (a[0] == PROC_ROOT_FD) {
		procfd = RAW(SYS_openat, AT_FDCWD, "/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		a[0] = (uint64_t)procfd;
	}
	long ret = raw6(nr, (long)a[0], (long)a[1], (long)a[2], (long)a[3], (long)a[4], (long)a[5]);
	if (procfd >= 0)
		RAW(SYS_close, procfd);
	after(nr, ret);
	ncalls++;
}

/* ---- signals */
static void on_alarm(int sig) { (void)sig; }
static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_armed;
static void on_fault(int sig, siginfo_t *si, void *ucv)
{
	if (trace) {
		uint64_t ip = 0;
#if defined(__x86_64__)
		ip = (uint64_t)((ucontext_t *)ucv)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
		ip = (uint64_t)((ucontext_t *)ucv)->uc_mcontext.pc;
#endif
		say("fault: signal %d code %d addr %p ip %#llx after call %ld\n", sig, si->si_code, si->si_addr,
		    (unsigned long long)ip, ncalls);
	}
	if (fault_armed) {
		fault_armed = 0;
		siglongjmp(fault_jmp, sig);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void setup_signals(int catch_faults)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm; /* no SA_RESTART: blocked calls return EINTR */
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGIO, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTSTP, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (catch_faults || trace) {
		sa.sa_sigaction = on_fault;
		sa.sa_flags = SA_NODEFER | SA_SIGINFO;
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
		sigaction(SIGILL, &sa, NULL);
		sigaction(SIGFPE, &sa, NULL);
		sigaction(SIGTRAP, &sa, NULL);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	struct itimerval it = {{0, 25000}, {0, 25000}};
	setitimer(ITIMER_REAL, &it, NULL);
}

/* ---- a batch */
static void run_batch(uint64_t seed, long n, int weird)
{
	rng = seed;
	arena_used = 0;
	make_pool();
	fill_random(scratch, SCRATCH_SIZE);
	for (long i = 0; i < n; i++)
		one_call(0);
	if (weird && chance(20))
		one_call(1);
}

static int setup_workdir(void)
{
	char cwd[200];
	if (!getcwd(cwd, sizeof cwd))
		strcpy(cwd, "/tmp");
	snprintf(workdir, sizeof workdir, "%s/sysfuzz.%d", strcmp(cwd, "/") ? cwd : "", (int)getpid());
	if (mkdir(workdir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "sysfuzz: mkdir %s: %s\n", workdir, strerror(errno));
		return -1;
	}
	if (chdir(workdir) != 0) {
		fprintf(stderr, "sysfuzz: chdir %s: %s\n", workdir, strerror(errno));
		return -1;
	}
	setup_files();
	return 0;
}

static int setup_memory(void)
{
	scratch = map_guarded(SCRATCH_SIZE);
	arena = map_guarded(ARENA_SIZE);
	sacrifice = mmap(NULL, SACRIFICE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	none_page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro_page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!scratch || !arena || sacrifice == MAP_FAILED || none_page == MAP_FAILED || ro_page == MAP_FAILED) {
		fprintf(stderr, "sysfuzz: mmap failed\n");
		return -1;
	}
	return 0;
}

static int fuzz_main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: sysfuzz fuzz SEED COUNT [exit:N|signal:N] [batch:N] [trace]\n");
		return 2;
	}
	uint64_t seed = strtoull(argv[2], NULL, 0);
	long count = strtol(argv[3], NULL, 0);
	long batch = 250;
	int end_signal = 0, end_status = 0;
	for (int i = 4; i < argc; i++) {
		if (!strncmp(argv[i], "exit:", 5))
			end_status = atoi(argv[i] + 5);
		else if (!strncmp(argv[i], "signal:", 7))
			end_signal = atoi(argv[i] + 7);
		else if (!strncmp(argv[i], "batch:", 6))
			batch = strtol(argv[i] + 6, NULL, 0);
		else if (!strcmp(argv[i], "trace"))
			trace = 1;
		else if (!strcmp(argv[i], "known-bugs"))
			known_bugs = 1;
	}
	if (batch < 1)
		batch = 1;
	init_kinds();
	if (setup_memory() || setup_workdir())
		return 1;
	/* The output descriptor, out of the way of random calls. */
	if (dup2(1, OUT_FD) == OUT_FD)
		out_fd = OUT_FD;
	/* Files stay small: a random fallocate or copy cannot fill the disk. */
	struct rlimit fs = {16 << 20, 16 << 20};
	setrlimit(RLIMIT_FSIZE, &fs);
	mypid = getpid();
	myppid = getppid();

	/* A batch may make this process the owner of a descriptor's SIGIO
	 * (F_SETOWN with its parent's pid, a lease): SIGIO would kill it. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigaction(SIGIO, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGTSTP, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);

	pid_t probe = fork();
	if (probe == 0)
		_exit(0);
	if (probe > 0) {
		waitpid(probe, NULL, 0);
		inprocess = 0;
	} else {
		inprocess = 1;
	}
	say("sysfuzz: seed=%llu count=%ld mode=%s\n", (unsigned long long)seed, count, inprocess ? "inprocess" : "fork");
	long done = 0;
	int faults = 0;
	for (long b = 0; done < count; b++) {
		long n = count - done < batch ? count - done : batch;
		uint64_t bseed = mix(seed, (uint64_t)b);
		if (!inprocess) {
			pid_t c = fork();
			if (c < 0) {
				say("batch %ld: fork: %s\n", b, strerror(errno));
				break;
			}
			if (c == 0) {
				mypid = getpid();
				myppid = getppid();
				setup_signals(0);
				ncalls = 0;
				run_batch(bseed, n, 1);
				_exit(0);
			}
			/* A batch gets 20 s; then it is killed (a call that
			 * blocks in the supervisor cannot be interrupted). */
			int st = 0;
			struct timespec t0, t1;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			for (;;) {
				pid_t w = waitpid(c, &st, WNOHANG | WUNTRACED);
				if (w == c && WIFSTOPPED(st)) {
					kill(c, SIGKILL);
					continue;
				}
				if (w == c || (w < 0 && errno != EINTR))
					break;
				clock_gettime(CLOCK_MONOTONIC, &t1);
				if (t1.tv_sec - t0.tv_sec > 20)
					kill(c, SIGKILL);
				struct timespec d = {0, 2000000};
				nanosleep(&d, NULL);
			}
			if (WIFSIGNALED(st))
				say("batch %ld: seed=%llu calls=%ld end=signal:%d\n", b, (unsigned long long)bseed, n, WTERMSIG(st));
			else
				say("batch %ld: seed=%llu calls=%ld end=exit:%d\n", b, (unsigned long long)bseed, n, WEXITSTATUS(st));
		} else {
			int sig = sigsetjmp(fault_jmp, 1);
			if (sig == 0) {
				fault_armed = 1;
				setup_signals(1);
				ncalls = 0;
				run_batch(bseed, n, 0);
				fault_armed = 0;
				say("batch %ld: seed=%llu calls=%ld end=exit:0\n", b, (unsigned long long)bseed, n);
			} else {
				say("batch %ld: seed=%llu calls=%ld end=fault:%d\n", b, (unsigned long long)bseed, ncalls, sig);
				if (++faults > 50)
					break;
			}
			chdir(workdir);
		}
		done += n;
	}
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	if (end_signal) {
		say("sysfuzz: done calls=%ld status=signal:%d\n", done, end_signal);
		signal(end_signal, SIG_DFL);
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, end_signal);
		sigprocmask(SIG_UNBLOCK, &s, NULL);
		raise(end_signal);
	}
	say("sysfuzz: done calls=%ld status=exit:%d\n", done, end_status);
	return end_status;
}

/* ---- structured probes, compared with a native run */
static const char *errname(int e)
{
	static const struct {
		int e;
		const char *n;
	} t[] = {
		{EPERM, "EPERM"}, {ENOENT, "ENOENT"}, {ESRCH, "ESRCH"}, {EINTR, "EINTR"}, {EIO, "EIO"},
		{E2BIG, "E2BIG"}, {ENOEXEC, "ENOEXEC"}, {EBADF, "EBADF"}, {EAGAIN, "EAGAIN"}, {ENOMEM, "ENOMEM"},
		{EACCES, "EACCES"}, {EFAULT, "EFAULT"}, {EEXIST, "EEXIST"}, {ENOTDIR, "ENOTDIR"}, {EISDIR, "EISDIR"},
		{EINVAL, "EINVAL"}, {EMFILE, "EMFILE"}, {ENOSPC, "ENOSPC"}, {ERANGE, "ERANGE"}, {ENAMETOOLONG, "ENAMETOOLONG"},
		{ENOSYS, "ENOSYS"}, {ELOOP, "ELOOP"}, {ENODATA, "ENODATA"}, {ENOTSOCK, "ENOTSOCK"}, {EMSGSIZE, "EMSGSIZE"},
		{EOPNOTSUPP, "EOPNOTSUPP"}, {ENOBUFS, "ENOBUFS"}, {ECONNREFUSED, "ECONNREFUSED"}, {EROFS, "EROFS"},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (t[i].e == e)
			return t[i].n;
	static char b[16];
	snprintf(b, sizeof b, "E%d", e);
	return b;
}

static void report(const char *what, long r)
{
	if (r < 0)
		printf("%s: err %s\n", what, errname((int)-r));
	else
		printf("%s: ok %ld\n", what, r);
	fflush(stdout);
}

/* reportn reports success without its value (which differs by machine). */
static void reportn(const char *what, long r) { report(what, r > 0 ? 0 : r); }

static int run_case(const char *name)
{
	static char buf[70000];
	if (!strcmp(name, "xattr")) {
		/* getxattr/listxattr/fgetxattr with sizes the kernel clamps */
		int fd = open("/bin/sysfuzz", O_RDONLY | O_CLOEXEC);
		uint64_t sz[] = {1ull << 63, ~0ull, (1ull << 63) + 1, 1ull << 32, 65537, 0};
		for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
			char what[64];
			snprintf(what, sizeof what, "getxattr size=%#llx", (unsigned long long)sz[i]);
			report(what, RAW(SYS_getxattr, "/bin/sysfuzz", "user.none", buf, sz[i]));
			snprintf(what, sizeof what, "lgetxattr size=%#llx", (unsigned long long)sz[i]);
			report(what, RAW(SYS_lgetxattr, "/bin/sysfuzz", "user.none", buf, sz[i]));
			snprintf(what, sizeof what, "fgetxattr size=%#llx", (unsigned long long)sz[i]);
			report(what, RAW(SYS_fgetxattr, fd, "user.none", buf, sz[i]));
			snprintf(what, sizeof what, "listxattr size=%#llx", (unsigned long long)sz[i]);
			/* the list itself differs by filesystem */
			reportn(what, RAW(SYS_listxattr, "/bin/sysfuzz", buf, sz[i]));
			snprintf(what, sizeof what, "llistxattr size=%#llx", (unsigned long long)sz[i]);
			reportn(what, RAW(SYS_llistxattr, "/bin/sysfuzz", buf, sz[i]));
			snprintf(what, sizeof what, "flistxattr size=%#llx", (unsigned long long)sz[i]);
			reportn(what, RAW(SYS_flistxattr, fd, buf, sz[i]));
			snprintf(what, sizeof what, "setxattr size=%#llx", (unsigned long long)sz[i]);
			report(what, sz[i] ? RAW(SYS_setxattr, "/nonexistent", "user.x", buf, sz[i], 0) : 0);
		}
		return 0;
	}
	if (!strcmp(name, "cmsg")) {
		/* sendmsg whose cmsg_len is near INT64_MAX, past the control
		 * buffer, or below the header */
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0)
			return 1;
		struct sockaddr_un addr = {.sun_family = AF_UNIX};
		memcpy(addr.sun_path, "\0sysfuzz-cmsg", 13);
		uint64_t lens[] = {(uint64_t)INT64_MAX, (uint64_t)INT64_MAX - 7, (uint64_t)INT64_MAX - 15, 1ull << 63, ~0ull, 65, 8};
		for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
			for (int second = 0; second < 2; second++) {
				unsigned char ctl[64] = {0};
				int32_t fd = 0;
				size_t off = 0;
				if (second) {
					put64(ctl, 20);
					put32(ctl + 8, SOL_SOCKET);
					put32(ctl + 12, SCM_RIGHTS);
					memcpy(ctl + 16, &fd, 4);
					off = 24;
				}
				put64(ctl + off, lens[i]);
				put32(ctl + off + 8, SOL_SOCKET);
				put32(ctl + off + 12, second ? 99 : SCM_RIGHTS);
				memcpy(ctl + off + 16, &fd, 4);
				struct iovec iov = {.iov_base = "x", .iov_len = 1};
				uint64_t h[7] = {(uint64_t)(uintptr_t)&addr, 15, (uint64_t)(uintptr_t)&iov, 1, (uint64_t)(uintptr_t)ctl, 64, 0};
				char what[80];
				snprintf(what, sizeof what, "sendmsg cmsg_len=%#llx at=%zu", (unsigned long long)lens[i], off);
				report(what, RAW(SYS_sendmsg, sv[0], h, MSG_DONTWAIT));
			}
		}
		return 0;
	}
	if (!strcmp(name, "interp")) {
		/* exec of ELF files whose PT_INTERP size is huge, tiny, or
		 * has no NUL */
		char cwd[256];
		if (!getcwd(cwd, sizeof cwd))
			return 1;
		snprintf(workdir, sizeof workdir, "%s", cwd);
		setup_files();
		const char *files[] = {"elf_interp_huge", "elf_interp_2g", "elf_interp_4097", "elf_interp_0",
				       "elf_interp_1", "elf_interp_nonul", "elf_interp_missing", "elf_trunc",
				       "elf_phoff_huge", "elf_phnum_huge", "sh_long", "sh_missing", "sh_empty", "sh_loop"};
		for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
			char *args[] = {(char *)files[i], NULL};
			char what[80];
			snprintf(what, sizeof what, "execve %s", files[i]);
			report(what, RAW(SYS_execve, files[i], args, NULL));
		}
		return 0;
	}
	if (!strcmp(name, "sizes")) {
		/* other sizes kbox reads from the guest */
		report("openat2 size=4097", RAW(SYS_openat2, AT_FDCWD, "/", buf, 4097));
		report("openat2 size=2^63", RAW(SYS_openat2, AT_FDCWD, "/", buf, 1ull << 63));
		report("openat2 size=23", RAW(SYS_openat2, AT_FDCWD, "/", buf, 23));
		reportn("getcwd size=2^63", RAW(SYS_getcwd, buf, 1ull << 63));
		report("getcwd size=1", RAW(SYS_getcwd, buf, 1));
		reportn("readlinkat size=2^63", RAW(SYS_readlinkat, AT_FDCWD, "/bin/sh", buf, 1ull << 63));
		reportn("readlinkat size=2^32+5", RAW(SYS_readlinkat, AT_FDCWD, "/bin/sh", buf, (1ull << 32) + 5));
		report("readlinkat size=-1", RAW(SYS_readlinkat, AT_FDCWD, "/bin/sh", buf, ~0ull));
		int d = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		reportn("getdents64 count=2^32-1", RAW(SYS_getdents64, d, buf, 0xffffffffull));
		report("getdents64 count=0", RAW(SYS_getdents64, d, buf, 0));
		report("getgroups size=-1", RAW(SYS_getgroups, ~0ull, buf));
		return 0;
	}
	fprintf(stderr, "sysfuzz: unknown case %s\n", name);
	return 2;
}

/* ---- FIFO threads */
static char fifo_path[256];
static volatile int fifo_started, fifo_done, fifo_failed;
static int fifo_writers;

static void *fifo_thread(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&fifo_started, 1, __ATOMIC_SEQ_CST);
	int fd = open(fifo_path, (fifo_writers ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		__atomic_add_fetch(&fifo_failed, 1, __ATOMIC_SEQ_CST);
	else
		close(fd);
	__atomic_add_fetch(&fifo_done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static int fifo_main(int n, int writers)
{
	fifo_writers = writers;
	snprintf(fifo_path, sizeof fifo_path, "/tmp/sysfuzz-fifo.%d", (int)getpid());
	unlink(fifo_path);
	if (mkfifo(fifo_path, 0600) != 0) {
		printf("fifo: mkfifo: %s\n", strerror(errno));
		return 1;
	}
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 16384);
	pthread_t *t = calloc((size_t)n, sizeof *t);
	int created = 0;
	for (int i = 0; i < n; i++) {
		int e = pthread_create(&t[i], &at, fifo_thread, NULL);
		if (e) {
			printf("fifo: pthread_create %d: %s\n", i, strerror(e));
			break;
		}
		created++;
	}
	while (__atomic_load_n(&fifo_started, __ATOMIC_SEQ_CST) < created)
		usleep(1000);
	usleep(300000); /* let them reach their open */
	/* kbox must still answer other calls while they wait */
	struct timespec t0, t1;
	struct stat st;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int sr = stat("/", &st);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
	printf("fifo: %d threads blocked; stat %s%s\n", created, sr == 0 ? "ok" : strerror(errno), ms < 2000 ? "" : " (slow)");
	fflush(stdout);
	int other = open(fifo_path, (writers ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
	if (other < 0) {
		printf("fifo: open other end: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 0; i < created; i++)
		pthread_join(t[i], NULL);
	close(other);
	unlink(fifo_path);
	printf("fifo: %d released, %d failed\n", fifo_done, fifo_failed);
	return created == n && fifo_failed == 0 ? 0 : 1;
}

/* ---- blocked senders */
static int flood_sock;
static char *flood_buf;
static volatile int flood_started, flood_done;

static void *flood_thread(void *arg)
{
	(void)arg;
	struct iovec iov = {flood_buf, 1 << 20};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	__atomic_add_fetch(&flood_started, 1, __ATOMIC_SEQ_CST);
	long left = 1 << 20;
	while (left > 0) {
		/* sendmsg is always notified: kbox copies the data */
		long n = RAW(SYS_sendmsg, flood_sock, &m, 0);
		if (n <= 0)
			break;
		left -= n;
		iov.iov_base = (char *)iov.iov_base + n;
		iov.iov_len = (size_t)left;
	}
	__atomic_add_fetch(&flood_done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* flood_main: N threads each send 1 MiB on a stream socket whose buffer is
 * full and that nobody reads, so every send blocks in kbox holding a copy
 * of its data. Once they wait it prints a line and reads its stdin to EOF
 * (the harness measures kbox meanwhile), then drains the socket. */
static int flood_main(int n)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		printf("sendflood: socketpair: %s\n", strerror(errno));
		return 1;
	}
	flood_sock = sv[0];
	flood_buf = calloc(1, 1 << 20);
	static char fill[65536];
	while (send(sv[0], fill, sizeof fill, MSG_DONTWAIT) > 0) {
	}
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 65536);
	pthread_t *t = calloc((size_t)n, sizeof *t);
	int created = 0;
	for (int i = 0; i < n; i++) {
		if (pthread_create(&t[i], &at, flood_thread, NULL) != 0)
			break;
		created++;
	}
	while (__atomic_load_n(&flood_started, __ATOMIC_SEQ_CST) < created)
		usleep(1000);
	usleep(500000);
	printf("sendflood: %d threads blocked\n", created);
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0) {
	}
	static char sink[1 << 16];
	while (__atomic_load_n(&flood_done, __ATOMIC_SEQ_CST) < created) {
		if (recv(sv[1], sink, sizeof sink, MSG_DONTWAIT) <= 0)
			usleep(1000);
	}
	for (int i = 0; i < created; i++)
		pthread_join(t[i], NULL);
	printf("sendflood: %d released\n", created);
	return created == n ? 0 : 1;
}

/* ---- fork bomb */
static int forkbomb_main(long max)
{
	pid_t *kids = calloc((size_t)max, sizeof *kids);
	long n = 0;
	int err = 0;
	for (; n < max; n++) {
		pid_t c = fork();
		if (c < 0) {
			err = errno;
			break;
		}
		if (c == 0) {
			/* notified calls while the user's task budget is spent */
			struct stat st;
			for (;;) {
				stat("/", &st);
				usleep(2000);
			}
		}
		kids[n] = c;
	}
	/* The parent keeps making notified calls at the limit. */
	struct stat st;
	int ok = 0;
	for (int i = 0; i < 200; i++)
		ok += stat("/", &st) == 0;
	printf("forkbomb: %s; %d of 200 stat calls answered\n", err == EAGAIN ? "stopped by EAGAIN" : n == max ? "reached max" : strerror(err), ok);
	fflush(stdout);
	for (long i = 0; i < n; i++)
		kill(kids[i], SIGKILL);
	for (long i = 0; i < n; i++)
		waitpid(kids[i], NULL, 0);
	printf("forkbomb: children reaped\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "fuzz"))
		return fuzz_main(argc, argv);
	if (argc >= 3 && !strcmp(argv[1], "case"))
		return run_case(argv[2]);
	if (argc >= 4 && !strcmp(argv[1], "fifo"))
		return fifo_main(atoi(argv[2]), !strcmp(argv[3], "writers"));
	if (argc >= 3 && !strcmp(argv[1], "sendflood"))
		return flood_main(atoi(argv[2]));
	if (argc >= 3 && !strcmp(argv[1], "forkbomb"))
		return forkbomb_main(strtol(argv[2], NULL, 0));
	fprintf(stderr, "usage: sysfuzz fuzz SEED COUNT [OPTION...] | case NAME | fifo N readers|writers | sendflood N | forkbomb MAX\n");
	return 2;
}
