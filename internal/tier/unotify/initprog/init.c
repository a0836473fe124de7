// kbox-init: the seccomp tier's reaper and launcher in one small static
// program, so that starting a guest costs one exec of this (a few KB, no
// runtime to start) instead of two re-executions of kbox (see ../reaper.go
// and ../launch.go, which it replaces and which remain the fallback).
//
// Freestanding: no libc, raw syscalls, built by build.sh for each
// architecture into the embedded init_<arch>.bin (the Go test
// TestInitProgramUpToDate rebuilds and compares when the compilers are
// there).
//
// Descriptors on entry (set up by kbox): 0-2 the guest's stdio, 3 the launch
// config, 4 the status pipe, 5 the lifeline (read end; kbox holds the only
// write end), 6 the report pipe, 7 a Landlock ruleset or nothing.
// argv[1] is "foreground" or "background".
//
// The reaper (this process) is a child subreaper in a process group of its
// own; it forks the launcher, reports "P <pid>", and waits: when the
// launcher (the guest's first process) ends, it kills every process left
// below itself and reports "W <wait status>"; when the lifeline reads
// end-of-file (kbox is gone), it kills them all and exits. The launcher
// (the child) reads the config, confines itself (no_new_privs,
// capabilities, RLIMIT_RTPRIO 0, descriptors close-on-exec, Landlock,
// RLIMIT_NPROC), installs the notifying filter, sends the listener's number
// on the status pipe and execs the guest.
//
// Config (little-endian; written by launchConfig in ../initprog.go):
//   "KBI1" u32 flags (1 keep caps, 2 Landlock) u64 guest RLIMIT_NPROC
//   str exec_dir, bytes filter (struct sock_filter[]), str path,
//   u32 argc, str argv..., u32 envc, str env...
// where str and bytes are u32 length, then the bytes (strings without NUL).

#include <asm/unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/prctl.h>
#include <linux/resource.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <linux/signal.h>
#include <linux/wait.h>
#include <stddef.h>
#include <stdint.h>

#define FD_CONFIG 3
#define FD_STATUS 4
#define FD_LIFELINE 5
#define FD_REPORT 6
#define FD_LANDLOCK 7
#define EXIT_LAUNCH_FAILED 125
// The config's size limit (initConfigMax in ../initprog.go): the guest's argv
// and environment fit (the kernel allows at most a quarter of an 8 MiB stack).
#define maxConfig (4 << 20)

#if defined(__x86_64__)
static long sys6(long n, long a, long b, long c, long d, long e, long f) {
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
__asm__(".text\n.globl _start\n_start:\n"
	"	xor %rbp, %rbp\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call start_c\n"
	"	hlt\n");
// The signal trampoline: the kernel needs SA_RESTORER on x86-64.
__asm__(".text\n.globl restore_rt\nrestore_rt:\n"
	"	mov $" "15" ", %eax\n"
	"	syscall\n");
#define HAVE_RESTORER 1
#elif defined(__aarch64__)
static long sys6(long n, long a, long b, long c, long d, long e, long f) {
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
	return x0;
}
__asm__(".text\n.globl _start\n_start:\n"
	"	mov x29, #0\n"
	"	mov x30, #0\n"
	"	mov x0, sp\n"
	"	and sp, x0, #-16\n"
	"	bl start_c\n"
	"	brk #0\n");
#define HAVE_RESTORER 0
#else
#error "kbox-init: unsupported architecture"
#endif

#define sys0(n) sys6(n, 0, 0, 0, 0, 0, 0)
#define sys1(n, a) sys6(n, (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define sys5(n, a, b, c, d, e) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

// The compiler may emit calls to these for struct copies and zeroing.
void *memset(void *d, int c, size_t n) {
	unsigned char *p = d;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}
void *memcpy(void *d, const void *s, size_t n) {
	unsigned char *p = d;
	const unsigned char *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

static size_t slen(const char *s) {
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

static void put(int fd, const char *s, size_t n) {
	while (n > 0) {
		long r = sys3(__NR_write, fd, s, n);
		if (r == -4) // EINTR
			continue;
		if (r <= 0)
			return;
		s += r;
		n -= (size_t)r;
	}
}

static __attribute__((noreturn)) void exit_now(int code) {
	for (;;)
		sys1(__NR_exit_group, code);
}

// fmt_num appends the decimal of v to b and returns the new end.
static char *fmt_num(char *b, unsigned long v) {
	char t[24];
	int n = 0;
	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*b++ = t[--n];
	return b;
}

// ---- errno names for messages (the supervisor words most exec failures).
static const char *errname(long e) {
	switch (e) {
	case 1: return "operation not permitted";
	case 2: return "no such file or directory";
	case 7: return "argument list too long";
	case 8: return "exec format error";
	case 12: return "cannot allocate memory";
	case 13: return "permission denied";
	case 14: return "bad address";
	case 20: return "not a directory";
	case 22: return "invalid argument";
	case 26: return "text file busy";
	case 38: return "function not implemented";
	case 40: return "too many levels of symbolic links";
	}
	return "error";
}

// ---- the launcher

struct reader {
	const unsigned char *p, *end;
	int bad;
};

static uint32_t rd_u32(struct reader *r) {
	if (r->end - r->p < 4) {
		r->bad = 1;
		return 0;
	}
	uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
	r->p += 4;
	return v;
}

static uint64_t rd_u64(struct reader *r) {
	uint64_t lo = rd_u32(r);
	return lo | (uint64_t)rd_u32(r) << 32;
}

// rd_str returns a NUL-terminated copy in place: the config buffer keeps one
// spare byte after every string (the next length's first byte is read
// before it is overwritten).
static const unsigned char *rd_bytes(struct reader *r, uint32_t *n) {
	*n = rd_u32(r);
	if (r->bad || (size_t)(r->end - r->p) < *n) {
		r->bad = 1;
		return 0;
	}
	const unsigned char *b = r->p;
	r->p += *n;
	return b;
}

static char *arena_top, *arena_end;

static void *take(size_t n) {
	n = (n + 15) & ~(size_t)15;
	if ((size_t)(arena_end - arena_top) < n)
		return 0;
	void *p = arena_top;
	arena_top += n;
	return p;
}

static char *rd_str(struct reader *r) {
	uint32_t n;
	const unsigned char *b = rd_bytes(r, &n);
	char *s = b ? take(n + 1) : 0;
	if (!s) {
		r->bad = 1;
		return 0;
	}
	memcpy(s, b, n);
	s[n] = 0;
	return s;
}

static __attribute__((noreturn)) void fail(int code, const char *what, long err) {
	char buf[512], *b = buf;
	*b++ = 'E';
	size_t n = slen(what);
	if (n > 300)
		n = 300;
	memcpy(b, what, n);
	b += n;
	if (err) {
		const char *m = errname(-err);
		size_t k = slen(m);
		*b++ = ':';
		*b++ = ' ';
		memcpy(b, m, k);
		b += k;
	}
	put(FD_STATUS, buf, (size_t)(b - buf));
	exit_now(code);
}

// Securebits (linux/securebits.h): with NOROOT, uid 0 gains no capabilities
// at exec; the LOCKED bits make that permanent.
#define SECBITS_DROP ((1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 5))

static void drop_capabilities(void) {
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	if (sys2(__NR_capget, &hdr, data) != 0)
		fail(EXIT_LAUNCH_FAILED, "dropping capabilities: capget", 0);
	if (data[0].permitted == 0 && data[1].permitted == 0 && sys0(__NR_geteuid) != 0)
		return; // nothing to drop
	long r = sys5(__NR_prctl, PR_SET_SECUREBITS, SECBITS_DROP, 0, 0, 0);
	if (r)
		fail(EXIT_LAUNCH_FAILED, "dropping capabilities: PR_SET_SECUREBITS", r);
	for (int c = 0; c <= 63; c++) {
		r = sys5(__NR_prctl, PR_CAPBSET_DROP, c, 0, 0, 0);
		if (r == -22) // EINVAL: past the last capability
			break;
		if (r)
			fail(EXIT_LAUNCH_FAILED, "dropping capabilities: PR_CAPBSET_DROP", r);
	}
	r = sys5(__NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (r && r != -22)
		fail(EXIT_LAUNCH_FAILED, "dropping capabilities: PR_CAP_AMBIENT_CLEAR_ALL", r);
	memset(data, 0, sizeof data);
	r = sys2(__NR_capset, &hdr, data);
	if (r)
		fail(EXIT_LAUNCH_FAILED, "dropping capabilities: capset", r);
}

static __attribute__((noreturn)) void launcher(unsigned char *cfg, size_t n) {
	struct reader r = {cfg, cfg + n, 0};
	if (n < 4 || cfg[0] != 'K' || cfg[1] != 'B' || cfg[2] != 'I' || cfg[3] != '1')
		fail(EXIT_LAUNCH_FAILED, "reading launch config: bad magic", 0);
	r.p += 4;
	uint32_t flags = rd_u32(&r);
	uint64_t nproc = rd_u64(&r);
	char *dir = rd_str(&r);
	uint32_t flen;
	const unsigned char *filter = rd_bytes(&r, &flen);
	char *path = rd_str(&r);
	uint32_t argc = rd_u32(&r);
	char **argv = take(((size_t)argc + 1) * sizeof(char *));
	for (uint32_t i = 0; argv && i < argc && !r.bad; i++)
		argv[i] = rd_str(&r);
	uint32_t envc = rd_u32(&r);
	char **envp = take(((size_t)envc + 1) * sizeof(char *));
	for (uint32_t i = 0; envp && i < envc && !r.bad; i++)
		envp[i] = rd_str(&r);
	if (r.bad || !argv || !envp || flen % 8 || flen == 0 || flen / 8 > 4096)
		fail(EXIT_LAUNCH_FAILED, "reading launch config: truncated", 0);
	argv[argc] = 0;
	envp[envc] = 0;

	long e = sys1(__NR_chdir, dir);
	if (e)
		fail(EXIT_LAUNCH_FAILED, "chdir to the guest's directory", e);
	if ((e = sys5(__NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)))
		fail(EXIT_LAUNCH_FAILED, "PR_SET_NO_NEW_PRIVS", e);
	if (!(flags & 1))
		drop_capabilities();
	// Scheduling calls run natively: a guest must not take a real-time
	// priority and starve the host (the supervisor included).
	struct rlimit zero = {0, 0};
	if ((e = sys2(__NR_setrlimit, RLIMIT_RTPRIO, &zero)))
		fail(EXIT_LAUNCH_FAILED, "lowering RLIMIT_RTPRIO to 0", e);
	// No descriptor of kbox's may reach the guest.
	if (sys3(__NR_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) != 0)
		for (int fd = 3; fd < 1024; fd++)
			sys3(__NR_fcntl, fd, 2 /* F_SETFD */, 1 /* FD_CLOEXEC */);
	if (flags & 2) {
		if ((e = sys2(__NR_landlock_restrict_self, FD_LANDLOCK, 0)))
			fail(EXIT_LAUNCH_FAILED, "landlock: restricting the launcher", e);
		sys1(__NR_close, FD_LANDLOCK);
	}
	if (nproc) {
		struct rlimit l = {nproc, nproc};
		if ((e = sys2(__NR_setrlimit, RLIMIT_NPROC, &l)))
			fail(EXIT_LAUNCH_FAILED, "setting the guest's RLIMIT_NPROC", e);
	}
	struct sock_fprog prog = {.len = (unsigned short)(flen / 8), .filter = (struct sock_filter *)filter};
	long listener = sys3(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
			     SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
	if (listener == -22) // kernels before 5.19 lack WAIT_KILLABLE_RECV
		listener = sys3(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (listener < 0)
		fail(EXIT_LAUNCH_FAILED, "installing the seccomp filter", listener);
	unsigned char b[4] = {(unsigned char)listener, (unsigned char)(listener >> 8), (unsigned char)(listener >> 16),
			      (unsigned char)(listener >> 24)};
	put(FD_STATUS, (const char *)b, 4);
	e = sys3(__NR_execve, path, argv, envp);
	// The supervisor has said why; the status is a shell's: 127 not
	// found, 126 found but not executable.
	fail(e == -2 ? 127 : 126, "exec of the guest", e);
}

// ---- the reaper

#define MAX_KIDS 4096
static int kids[MAX_KIDS];

// children lists the processes whose parent is this one
// (/proc/self/task/<pid>/children: the reaper is single-threaded).
static int children(int self) {
	char path[64] = "/proc/self/task/", *p = path + slen(path);
	p = fmt_num(p, (unsigned long)self);
	memcpy(p, "/children", 10);
	int fd = (int)sys4(__NR_openat, -100, path, 0 /* O_RDONLY */ | 02000000 /* O_CLOEXEC */, 0);
	if (fd < 0)
		return 0;
	static char buf[65536];
	size_t got = 0;
	for (;;) {
		long r = sys3(__NR_read, fd, buf + got, sizeof buf - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got >= sizeof buf - 1)
			break;
	}
	sys1(__NR_close, fd);
	int n = 0;
	long v = -1;
	for (size_t i = 0; i <= got && n < MAX_KIDS; i++) {
		char c = i < got ? buf[i] : ' ';
		if (c >= '0' && c <= '9') {
			v = (v < 0 ? 0 : v * 10) + (c - '0');
		} else if (v >= 0) {
			kids[n++] = (int)v;
			v = -1;
		}
	}
	return n;
}

static void kill_descendants(int self) {
	// Killed processes' children are re-parented here (a subreaper) and
	// killed in the next round; give up after ten seconds.
	struct timespec {
		long sec, nsec;
	} ms = {0, 1000000};
	for (int round = 0; round < 10000; round++) {
		int n = children(self);
		for (int i = 0; i < n; i++)
			sys2(__NR_kill, kids[i], SIGKILL);
		int reaped = 0;
		for (;;) {
			long pid = sys4(__NR_wait4, -1, 0, WNOHANG | __WALL, 0);
			if (pid == -10) // ECHILD: no child left
				return;
			if (pid <= 0)
				break;
			reaped = 1;
		}
		if (!reaped)
			sys2(__NR_nanosleep, &ms, 0);
	}
}

static void report(char kind, unsigned long v) {
	char buf[32], *b = buf;
	*b++ = kind;
	*b++ = ' ';
	b = fmt_num(b, v);
	*b++ = '\n';
	put(FD_REPORT, buf, (size_t)(b - buf));
}

static void report_error(const char *what, long err) {
	char buf[256], *b = buf;
	*b++ = 'X';
	*b++ = ' ';
	size_t n = slen(what);
	memcpy(b, what, n);
	b += n;
	*b++ = ':';
	*b++ = ' ';
	const char *m = errname(-err);
	n = slen(m);
	memcpy(b, m, n);
	b += n;
	*b++ = '\n';
	put(FD_REPORT, buf, (size_t)(b - buf));
}

struct ksigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	uint64_t mask;
};
extern void restore_rt(void);

static volatile int got_chld;
static void on_signal(int sig) {
	if (sig == SIGCHLD)
		got_chld = 1;
}

static void catch_signal(int sig) {
	struct ksigaction old, sa = {.handler = on_signal, .flags = 0x04000000 /* SA_RESTORER */, .mask = ~0ULL};
#if HAVE_RESTORER
	sa.restorer = restore_rt;
#else
	sa.flags = 0;
#endif
	if (sys4(__NR_rt_sigaction, sig, 0, &old, 8) == 0 && old.handler == SIG_IGN && sig != SIGCHLD)
		return; // ignored when kbox started: stays ignored for the guest
	sys4(__NR_rt_sigaction, sig, &sa, 0, 8);
}

__attribute__((used)) void start_c(long *sp) {
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	int foreground = argc > 1 && argv[1][0] == 'f';
	int self = (int)sys0(__NR_getpid);
	// Executed from a memfd (/proc/self/fd/N), the process would be
	// named N in ps, top and perf; the launcher child inherits the name
	// until the guest's exec.
	static const char name[16] = "kbox-init";
	sys5(__NR_prctl, PR_SET_NAME, (long)name, 0, 0, 0);

	// Only kbox ends the reaper: a terminal's or a job's signals must not.
	// They are caught, not ignored (an ignored signal stays ignored across
	// exec; the guest starts with the dispositions kbox had).
	static const int drop[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGTSTP, SIGTTIN, SIGTTOU,
				   SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM};
	for (unsigned i = 0; i < sizeof drop / sizeof drop[0]; i++)
		catch_signal(drop[i]);
	catch_signal(SIGCHLD);
	long e = sys5(__NR_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	if (e) {
		report_error("PR_SET_CHILD_SUBREAPER", e);
		exit_now(EXIT_LAUNCH_FAILED);
	}

	// The config is read before the fork: a failure is reported once.
	static unsigned char cfg[maxConfig];
	size_t n = 0;
	for (;;) {
		long r = sys3(__NR_read, FD_CONFIG, cfg + n, sizeof cfg - n);
		if (r == -4)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == sizeof cfg)
			break;
	}
	sys1(__NR_close, FD_CONFIG);
	static char arena[maxConfig + (maxConfig >> 1)];
	arena_top = arena;
	arena_end = arena + sizeof arena;

	// Every signal blocked across the fork: the child sets its process
	// group and takes the terminal (SIGTTOU must not stop it) first.
	uint64_t all = ~0ULL, old = 0;
	sys4(__NR_rt_sigprocmask, SIG_SETMASK, &all, &old, 8);
	long pid = sys2(__NR_clone, SIGCHLD, 0);
	if (pid == 0) {
		sys5(__NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (sys0(__NR_getppid) != self)
			exit_now(EXIT_LAUNCH_FAILED); // the reaper died already
		sys2(__NR_setpgid, 0, 0);
		if (foreground) {
			int pg = (int)sys0(__NR_getpid);
			sys3(__NR_ioctl, 0, 0x5410 /* TIOCSPGRP */, &pg);
		}
		sys1(__NR_close, FD_LIFELINE);
		sys1(__NR_close, FD_REPORT);
		// The guest starts with kbox's dispositions: the caught ones
		// become default at exec; restore the mask kbox had.
		sys4(__NR_rt_sigprocmask, SIG_SETMASK, &old, 0, 8);
		launcher(cfg, n);
	}
	if (pid < 0) {
		report_error("starting the launcher", pid);
		exit_now(EXIT_LAUNCH_FAILED);
	}
	sys1(__NR_close, FD_STATUS);
	sys1(__NR_close, FD_LANDLOCK);
	report('P', (unsigned long)pid);

	// Wait for the launcher's end or kbox's: SIGCHLD is unblocked only
	// inside ppoll, so no wake-up is lost.
	uint64_t wait_mask = ~0ULL & ~(1ULL << (SIGCHLD - 1));
	for (;;) {
		struct {
			int fd;
			short events, revents;
		} pfd = {FD_LIFELINE, 1 /* POLLIN */, 0};
		long r = sys5(__NR_ppoll, &pfd, 1, 0, &wait_mask, 8);
		if (r > 0) {
			char b[64];
			if (sys3(__NR_read, FD_LIFELINE, b, sizeof b) <= 0) {
				// kbox is gone: nothing of the guest may remain.
				kill_descendants(self);
				exit_now(0);
			}
		}
		got_chld = 0;
		for (;;) {
			int ws = 0;
			long w = sys4(__NR_wait4, -1, &ws, WNOHANG | __WALL, 0);
			if (w <= 0)
				break;
			if (w == pid) {
				// The guest is over: nothing of it may remain.
				kill_descendants(self);
				report('W', (unsigned)ws);
				exit_now(0);
			}
			// an orphaned guest process re-parented here
		}
	}
}
