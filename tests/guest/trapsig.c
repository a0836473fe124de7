/*
 * trapsig - signal, memory and exec probe for kbox's trap tier.
 *
 * Usage: trapsig MODE [ARG...]
 *
 * Every mode prints lines "MODE: ok ..." or "MODE: FAIL reason" (tests
 * compare the output exactly) and exits 0, except the modes that are meant
 * to die of a signal.  Modes:
 *   alarm         SIGALRM handler without SA_RESTART, alarm(1), pause()
 *   segv          SA_SIGINFO SIGSEGV handler, siglongjmp out, twice
 *   raise         raise/kill to self, blocked signal pending until unblocked
 *   altstack      SA_ONSTACK handler runs on a sigaltstack
 *   restart       SA_RESTART handler: an interrupted read is restarted
 *   sigint        prints "sigint: ready", pauses until SIGINT is handled
 *   spin          as sigint, but spins without making syscalls
 *   pause         prints "pause: ready", pauses with default SIGINT action
 *   default-term  raise(SIGTERM) with the default action (must die: 143)
 *   segv-default  write to address 0x10 with no handler (must die: 139)
 *   mem           memory calls confined to the guest's own mappings, W^X;
 *                 needs /proc/self/maps (kbox -R)
 *   exec          execve of itself in place ("fdcheck" checks the result)
 *   fork          fork() and print the errno name
 *   regs          every register a syscall keeps survives one that kbox
 *                 serves: on x86-64 the general ones but rax, rcx and r11,
 *                 and xmm8/xmm9; on arm64 x0..x29 but x8, x16 and x17,
 *                 v0..v31, fpcr, fpsr and tpidr_el0
 *   regs-signals  regs, repeated while an interval timer's handler (making
 *                 syscalls itself) interrupts it
 *   regs-stat PATH  regs with a newfstatat of PATH (kbox's stat cache
 *                 answers the later ones), then EFAULT for a bad buffer
 *                 and a bad path
 *
 * Builds with musl-gcc -static and with gcc against glibc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <link.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB (1024 * 1024)

static const char *mode;

/* Per-signal handler run counts. */
static volatile sig_atomic_t hits[65];

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EEXIST: return "EEXIST";
	case EINVAL: return "EINVAL";
	case ENOSYS: return "ENOSYS";
	}
	return "E?";
}

static int failures;

/* check prints "MODE: ok WHAT" when cond holds, else "MODE: FAIL WHAT: "
 * and the detail (fmt). */
__attribute__((format(printf, 3, 4))) static void check(int cond, const char *what, const char *fmt, ...)
{
	if (cond) {
		printf("%s: ok %s\n", mode, what);
		return;
	}
	failures++;
	printf("%s: FAIL %s: ", mode, what);
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static void count(int sig) { hits[sig]++; }

/* on installs fn for sig with the given flags and an empty sa_mask. */
static int on(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

static int blocked(int sig)
{
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	return sigismember(&cur, sig) == 1;
}

/* ---- alarm: a host SIGALRM reaches the guest's handler and interrupts
 * pause() (no SA_RESTART: pause never restarts anyway). */
static void mode_alarm(void)
{
	on(SIGALRM, count, 0);
	alarm(1);
	int r = pause();
	int e = errno;
	check(hits[SIGALRM] == 1, "handler ran once", "%d runs", (int)hits[SIGALRM]);
	check(r == -1 && e == EINTR, "pause returned -1 EINTR", "returned %d %s", r, errname(e));
}

/* ---- segv: a fault in guest code reaches its SA_SIGINFO handler with
 * the faulting address; siglongjmp leaves it (restoring the mask), and a
 * second fault is caught the same way. */
static sigjmp_buf segv_env;
static void *volatile segv_addr;
static volatile int segv_code;
/* Volatile so the compiler cannot see (and warn about) the bad address. */
static volatile uintptr_t bad_addr = 0x10;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	hits[sig]++;
	segv_addr = si->si_addr;
	segv_code = si->si_code;
	siglongjmp(segv_env, 1);
}

static void mode_segv(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	for (volatile int round = 1; round <= 2; round++) {
		segv_addr = NULL;
		if (sigsetjmp(segv_env, 1) == 0) {
			*(volatile int *)bad_addr = 1;
			check(0, "caught", "the write to %#lx did not fault", (unsigned long)bad_addr);
			continue;
		}
		printf("segv: ok caught (round %d)\n", (int)round);
		check(segv_addr == (void *)bad_addr, "si_addr matched", "si_addr %p", segv_addr);
		check(segv_code == SEGV_MAPERR, "si_code SEGV_MAPERR", "si_code %d", segv_code);
		check(!blocked(SIGSEGV), "SIGSEGV unblocked after siglongjmp", "still blocked");
	}
	check(hits[SIGSEGV] == 2, "handler ran twice", "%d runs", (int)hits[SIGSEGV]);
}

/* ---- raise: signals the guest sends itself; a blocked one stays pending
 * until unblocked, then runs exactly once.  While a handler runs, its own
 * signal is blocked. */
static volatile int usr1_saw_blocked;
static void on_usr1(int sig)
{
	hits[sig]++;
	usr1_saw_blocked = blocked(SIGUSR1);
}

static void mode_raise(void)
{
	on(SIGUSR1, on_usr1, 0);
	on(SIGUSR2, count, 0);

	check(raise(SIGUSR1) == 0 && hits[SIGUSR1] == 1, "raise ran the handler", "%d runs", (int)hits[SIGUSR1]);
	check(usr1_saw_blocked, "SIGUSR1 blocked inside its handler", "not blocked");
	check(!blocked(SIGUSR1), "SIGUSR1 unblocked after the handler", "still blocked");
	check(kill(getpid(), SIGUSR1) == 0 && hits[SIGUSR1] == 2, "kill(getpid()) ran the handler", "%d runs",
	      (int)hits[SIGUSR1]);

	sigset_t set, pend;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	raise(SIGUSR2);
	raise(SIGUSR2); /* standard signals do not queue: still one run */
	check(hits[SIGUSR2] == 0, "blocked SIGUSR2 not delivered", "%d runs", (int)hits[SIGUSR2]);
	sigpending(&pend);
	check(sigismember(&pend, SIGUSR2) == 1, "SIGUSR2 pending", "not in sigpending");
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	check(hits[SIGUSR2] == 1, "handler ran once after unblocking", "%d runs", (int)hits[SIGUSR2]);
	sigpending(&pend);
	check(sigismember(&pend, SIGUSR2) == 0, "SIGUSR2 no longer pending", "still in sigpending");
}

/* ---- altstack: an SA_ONSTACK handler runs on the alternate stack, which
 * reports SS_ONSTACK inside and cannot be changed from there. */
#define ALT_SIZE (256 * 1024)
static char *alt_base;
static volatile int alt_inside, alt_flags, alt_change_errno;

static void on_alt(int sig)
{
	char local;
	stack_t cur, repl;
	hits[sig]++;
	alt_inside = &local >= alt_base && &local < alt_base + ALT_SIZE;
	sigaltstack(NULL, &cur);
	alt_flags = cur.ss_flags;
	repl = cur;
	repl.ss_flags = 0;
	alt_change_errno = sigaltstack(&repl, NULL) == 0 ? 0 : errno;
}

static void mode_altstack(void)
{
	stack_t ss = {.ss_sp = malloc(ALT_SIZE), .ss_size = ALT_SIZE, .ss_flags = 0};
	alt_base = ss.ss_sp;
	if (sigaltstack(&ss, NULL) != 0) {
		check(0, "sigaltstack", "%s", errname(errno));
		return;
	}
	on(SIGUSR1, on_alt, SA_ONSTACK);
	raise(SIGUSR1);
	check(hits[SIGUSR1] == 1, "handler ran", "%d runs", (int)hits[SIGUSR1]);
	check(alt_inside, "handler ran on the alternate stack", "local variable outside [%p, %p)", (void *)alt_base,
	      (void *)(alt_base + ALT_SIZE));
	check(alt_flags == SS_ONSTACK, "SS_ONSTACK inside the handler", "ss_flags %d", alt_flags);
	check(alt_change_errno == EPERM, "sigaltstack change on the stack refused EPERM", "%s",
	      errname(alt_change_errno));
	stack_t after;
	sigaltstack(NULL, &after);
	check(after.ss_flags == 0 && after.ss_sp == alt_base, "back off the alternate stack", "ss_flags %d ss_sp %p",
	      after.ss_flags, after.ss_sp);
}

/* ---- restart: with SA_RESTART, a read interrupted by a handled signal
 * is restarted, not failed with EINTR.  The SIGALRM handler writes the
 * byte the read is waiting for. */
static int restart_pipe[2];
static void on_alarm_write(int sig)
{
	hits[sig]++;
	char c = 'x';
	if (write(restart_pipe[1], &c, 1) != 1)
		hits[sig] = 100;
}

static void mode_restart(void)
{
	char c = 0;
	if (pipe(restart_pipe) != 0) {
		check(0, "pipe", "%s", errname(errno));
		return;
	}
	on(SIGALRM, on_alarm_write, SA_RESTART);
	alarm(1);
	ssize_t n = read(restart_pipe[0], &c, 1);
	int e = errno;
	check(hits[SIGALRM] == 1, "handler ran once", "%d", (int)hits[SIGALRM]);
	check(n == 1 && c == 'x', "read restarted after the handler", "read returned %zd %s", n, n < 0 ? errname(e) : "");
}

/* ---- sigint, spin, pause: the Go test sends SIGINT to kbox. */
static void mode_sigint(void)
{
	/* Blocked until sigsuspend: a SIGINT between the check and the wait
	 * would otherwise be handled there and the wait never end (the
	 * lost wake-up of `while (!flag) pause();`, natively too). */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	on(SIGINT, count, 0);
	printf("sigint: ready\n");
	fflush(stdout);
	while (!hits[SIGINT])
		sigsuspend(&old);
	printf("sigint: handled\n");
	exit(0);
}

/* The guest makes no syscall while it spins: the signal must still
 * interrupt it. */
static void mode_spin(void)
{
	on(SIGINT, count, 0);
	printf("spin: ready\n");
	fflush(stdout);
	while (!hits[SIGINT])
		;
	printf("spin: handled\n");
	exit(0);
}

static void mode_pause(void)
{
	printf("pause: ready\n");
	fflush(stdout);
	for (;;)
		pause();
}

/* ---- default actions: the process must die of the signal. */
static void mode_default_term(void)
{
	raise(SIGTERM);
	printf("default-term: FAIL survived raise(SIGTERM)\n");
	exit(1);
}

static void mode_segv_default(void)
{
	*(volatile int *)bad_addr = 1;
	printf("segv-default: FAIL survived the write to %#lx\n", (unsigned long)bad_addr);
	exit(1);
}

/* ---- mem */

/* overlaps_object (a dl_iterate_phdr callback) reports whether the range
 * overlaps a loaded segment of an object the guest's libc knows: the
 * program, its libraries, the vDSO. */
struct range { uintptr_t lo, hi; };
static int overlaps_object(struct dl_phdr_info *info, size_t size, void *data)
{
	struct range *r = data;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (lo < r->hi && hi > r->lo)
			return 1;
	}
	return 0;
}

/* foreign_mapping finds an executable file mapping that belongs to none of
 * the guest's objects: in the trap tier, kbox's own binary or libraries.
 * vdso selects the [vdso] line instead. */
static int foreign_mapping(int vdso, struct range *out)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char perms[8];
		int path = 0;
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &path) < 3 || path == 0)
			continue;
		struct range r = {lo, hi};
		if (vdso)
			found = strncmp(line + path, "[vdso]", 6) == 0;
		else
			found = strcmp(perms, "r-xp") == 0 && line[path] == '/' && !dl_iterate_phdr(overlaps_object, &r);
		if (found)
			*out = r;
	}
	fclose(f);
	return found;
}

/* refuse checks that the guest cannot unmap, reprotect, replace, remap or
 * advise a mapping it does not own (what names it in the output). */
static void refuse(const char *what, struct range r)
{
	char msg[64];
	void *p = (void *)r.lo;
	size_t len = 4096;
	int rc;

	snprintf(msg, sizeof msg, "%s munmap refused", what);
	rc = munmap(p, len);
	check(rc == -1 && errno == EINVAL, msg, "munmap returned %d %s", rc, errname(errno));

	snprintf(msg, sizeof msg, "%s mprotect refused", what);
	rc = mprotect(p, len, PROT_NONE);
	check(rc == -1 && (errno == EACCES || errno == ENOMEM), msg, "mprotect returned %d %s", rc, errname(errno));

	snprintf(msg, sizeof msg, "%s mmap MAP_FIXED refused", what);
	void *m = mmap(p, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	check(m == MAP_FAILED, msg, "mmap returned %p", m);

	snprintf(msg, sizeof msg, "%s mremap refused", what);
	m = mremap(p, len, 2 * len, MREMAP_MAYMOVE);
	check(m == MAP_FAILED, msg, "mremap returned %p", m);

	/* MADV_DONTNEED on file-backed code would only drop pages, so a
	 * missing check here is harmless but still visible. */
	snprintf(msg, sizeof msg, "%s madvise refused", what);
	rc = madvise(p, len, MADV_DONTNEED);
	check(rc == -1, msg, "madvise returned %d", rc);
}

static void mode_mem(void)
{
	struct range r;

	/* (a) kbox's own memory is off limits. */
	if (foreign_mapping(0, &r))
		refuse("foreign code", r);
	else
		check(0, "foreign code found", "no executable file mapping outside the guest's objects");
	if (foreign_mapping(1, &r))
		refuse("vdso", r);
	else
		check(0, "vdso found", "no [vdso] line in /proc/self/maps");

	/* (b) W^X: never writable and executable at once. */
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	check(p == MAP_FAILED && errno == EACCES, "mmap RWX refused EACCES", "%s", p == MAP_FAILED ? errname(errno) : "mapped");

	/* (c) the guest's own memory: RW, then RX, runs, unmaps. */
	unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	check(code != MAP_FAILED, "mmap RW", "%s", errname(errno));
	if (code == MAP_FAILED)
		return;
#if defined(__x86_64__)
	/* mov $42, %eax; ret */
	static const unsigned char ret42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
#elif defined(__aarch64__)
	/* mov w0, #42; ret */
	static const unsigned char ret42[] = {0x40, 0x05, 0x80, 0x52, 0xc0, 0x03, 0x5f, 0xd6};
#else
#error "ret42: no code for this architecture"
#endif
	memcpy(code, ret42, sizeof ret42);
	/* The instruction cache does not see data writes by itself on arm64. */
	__builtin___clear_cache((char *)code, (char *)code + sizeof ret42);
	int rc = mprotect(code, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
	check(rc == -1 && errno == EACCES, "mprotect RWX refused EACCES", "returned %d %s", rc, errname(errno));
	rc = mprotect(code, 4096, PROT_READ | PROT_EXEC);
	check(rc == 0, "mprotect RX", "%s", errname(errno));
	if (rc == 0) {
		int (*fn)(void) = (int (*)(void))(uintptr_t)code;
		int v = fn();
		check(v == 42, "generated code ran", "returned %d", v);
	}
	rc = munmap(code, 4096);
	check(rc == 0, "munmap own mapping", "%s", errname(errno));

	/* (d) the program break grows by 1 MiB of zeroed, writable memory and
	 * shrinks back.  Raw syscalls: musl's brk()/sbrk(n) always fail. */
	uintptr_t cur = (uintptr_t)syscall(SYS_brk, 0);
	uintptr_t grown = (uintptr_t)syscall(SYS_brk, cur + MiB);
	check(grown == cur + MiB, "brk grew by 1 MiB", "break %#lx, wanted %#lx", (unsigned long)grown,
	      (unsigned long)(cur + MiB));
	if (grown == cur + MiB) {
		unsigned char *b = (unsigned char *)cur;
		size_t nonzero = 0;
		for (size_t i = 0; i < MiB; i++)
			nonzero += b[i] != 0;
		check(nonzero == 0, "brk memory is zero", "%zu nonzero bytes", nonzero);
		memset(b, 0xa5, MiB);
		check(b[0] == 0xa5 && b[MiB - 1] == 0xa5, "brk memory is writable", "wrote and read back something else");
		uintptr_t back = (uintptr_t)syscall(SYS_brk, cur);
		check(back == cur, "brk shrank back", "break %#lx", (unsigned long)back);
	}

	/* (e) still healthy: stdio, malloc and a syscall work. */
	char *s = malloc(3 * MiB);
	check(s != NULL && getpid() > 0, "healthy afterwards", "malloc failed");
	free(s);
	printf("mem: done\n");
}

/* ---- exec: replace the program in place.  The close-on-exec descriptor
 * must be gone, the other still open; handled signals return to the
 * default action, ignored ones stay ignored, the mask is kept and the
 * alternate stack is gone. */
static void mode_exec(const char *self)
{
	int fd1 = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	int fd2 = open("/etc/hostname", O_RDONLY);
	if (fd1 < 0 || fd2 < 0) {
		check(0, "open", "%s", errname(errno));
		return;
	}
	on(SIGUSR1, count, 0);
	on(SIGUSR2, SIG_IGN, 0);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	stack_t ss = {.ss_sp = malloc(ALT_SIZE), .ss_size = ALT_SIZE, .ss_flags = 0};
	sigaltstack(&ss, NULL);

	char a1[16], a2[16], a3[16];
	snprintf(a1, sizeof a1, "%d", fd1);
	snprintf(a2, sizeof a2, "%d", fd2);
	snprintf(a3, sizeof a3, "%d", (int)getpid());
	char *argv[] = {"trapsig", "fdcheck", a1, a2, a3, NULL};
	extern char **environ;
	fflush(stdout);
	execve(self, argv, environ);
	check(0, "execve", "%s: %s", self, errname(errno));
}

static void mode_fdcheck(char **argv)
{
	int fd1 = atoi(argv[2]), fd2 = atoi(argv[3]);
	char buf[64] = "";
	check(fcntl(fd1, F_GETFD) == -1 && errno == EBADF, "close-on-exec descriptor closed", "still open");
	check(fcntl(fd2, F_GETFD) == 0, "plain descriptor open", "%s", errname(errno));
	ssize_t n = read(fd2, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	printf("fdcheck: plain descriptor reads %s\n", buf);
	printf("fdcheck: argv[0]=%s\n", argv[0]);
	const char *env = getenv("KBOX_TRAPSIG");
	printf("fdcheck: KBOX_TRAPSIG=%s\n", env ? env : "(unset)");
	check(getpid() == atoi(argv[4]), "same pid", "pid %d, was %s", (int)getpid(), argv[4]);

	struct sigaction sa;
	sigaction(SIGUSR1, NULL, &sa);
	check(sa.sa_handler == SIG_DFL, "handled signal reset to SIG_DFL", "not SIG_DFL");
	sigaction(SIGUSR2, NULL, &sa);
	check(sa.sa_handler == SIG_IGN, "ignored signal still SIG_IGN", "not SIG_IGN");
	check(blocked(SIGHUP), "signal mask kept", "SIGHUP not blocked");
	stack_t ss;
	sigaltstack(NULL, &ss);
	check(ss.ss_flags == SS_DISABLE, "no alternate stack", "ss_flags %d", ss.ss_flags);
}

/* ---- fork: the trap tier runs one process and refuses fork. */
static void mode_fork(void)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid > 0) {
		waitpid(pid, NULL, 0);
		printf("fork: ok forked\n");
		return;
	}
	printf("fork: %s\n", errname(errno));
}

/* ---- regs: a syscall keeps every register but its result (x86-64: and
   rcx and r11), the vector registers among them, however kbox serves it:
   from a patched site under rewrite, getuid enters kbox directly, without
   a signal.  Per architecture: regs_seed(k) sets the values the probe
   loads (k varies them), regs_probe runs getuid from a raw syscall with
   them and stores the registers after it, and the regs_check table
   compares.  regs-signals repeats the probe while an interval timer's
   handler (which makes syscalls and uses the vector registers itself)
   interrupts it: a signal delivered around a directly served call must
   leave every register as it was. */
struct regs_check {
	const char *what;
	int (*diff)(char *why, size_t n); /* nonzero: what differs, in why */
};

#if defined(__x86_64__)
static uint64_t regs_in[12], regs_out[12];
static double vec_in[4], vec_out[4];
static long regs_uid;

static void regs_seed(unsigned k)
{
	for (int i = 0; i < 12; i++)
		regs_in[i] = 0x0101010101010101ULL * (uint64_t)(i + 1) ^ 0x5a5aULL ^ (uint64_t)k << 20;
	double v[4] = {1.25 + k, -2.5, 1e300, 3.0 - k};
	memcpy(vec_in, v, sizeof v);
}

#define REGS_PROBE(name, nr)                                                                          \
static void name(void)                                                                                 \
{ \
	__asm__ volatile("push %%rbx\n\tpush %%rbp\n\tpush %%r12\n\tpush %%r13\n\tpush %%r14\n\tpush %%r15\n\t" \
			 "mov %[i0], %%rbx\n\tmov %[i1], %%rbp\n\tmov %[i2], %%r12\n\tmov %[i3], %%r13\n\t" \
			 "mov %[i4], %%r14\n\tmov %[i5], %%r15\n\tmov %[i6], %%rdi\n\tmov %[i7], %%rsi\n\t" \
			 "mov %[i8], %%rdx\n\tmov %[i9], %%r10\n\tmov %[i10], %%r8\n\tmov %[i11], %%r9\n\t" \
			 "movupd %[v0], %%xmm8\n\tmovupd %[v1], %%xmm9\n\t" \
			 "mov $" #nr ", %%eax\n\t" \
			 "syscall\n\t" \
			 "mov %%rbx, %[o0]\n\tmov %%rbp, %[o1]\n\tmov %%r12, %[o2]\n\tmov %%r13, %[o3]\n\t" \
			 "mov %%r14, %[o4]\n\tmov %%r15, %[o5]\n\tmov %%rdi, %[o6]\n\tmov %%rsi, %[o7]\n\t" \
			 "mov %%rdx, %[o8]\n\tmov %%r10, %[o9]\n\tmov %%r8, %[o10]\n\tmov %%r9, %[o11]\n\t" \
			 "movupd %%xmm8, %[w0]\n\tmovupd %%xmm9, %[w1]\n\t" \
			 "pop %%r15\n\tpop %%r14\n\tpop %%r13\n\tpop %%r12\n\tpop %%rbp\n\tpop %%rbx" \
			 : "=a"(regs_uid), [o0] "=m"(regs_out[0]), [o1] "=m"(regs_out[1]), [o2] "=m"(regs_out[2]), \
			   [o3] "=m"(regs_out[3]), [o4] "=m"(regs_out[4]), [o5] "=m"(regs_out[5]), [o6] "=m"(regs_out[6]), \
			   [o7] "=m"(regs_out[7]), [o8] "=m"(regs_out[8]), [o9] "=m"(regs_out[9]), [o10] "=m"(regs_out[10]), \
			   [o11] "=m"(regs_out[11]), [w0] "=m"(vec_out[0]), [w1] "=m"(vec_out[2]) \
			 : [i0] "m"(regs_in[0]), [i1] "m"(regs_in[1]), [i2] "m"(regs_in[2]), [i3] "m"(regs_in[3]), \
			   [i4] "m"(regs_in[4]), [i5] "m"(regs_in[5]), [i6] "m"(regs_in[6]), [i7] "m"(regs_in[7]), \
			   [i8] "m"(regs_in[8]), [i9] "m"(regs_in[9]), [i10] "m"(regs_in[10]), [i11] "m"(regs_in[11]), \
			   [v0] "m"(vec_in[0]), [v1] "m"(vec_in[2]) \
			 : "rcx", "r11", "rdi", "rsi", "rdx", "r8", "r9", "r10", "xmm8", "xmm9", "memory", "cc"); \
}
REGS_PROBE(regs_probe, 102)
/* newfstatat from a `mov $262, %eax; syscall` site: under rewrite, the fast
   path calls the stat cache's C code with the guest's registers live. */
REGS_PROBE(regs_probe_stat, 262)

static long regs_result(void) { return regs_uid; }

static int regs_general(char *why, size_t n)
{
	for (int i = 0; i < 12; i++)
		if (regs_out[i] != regs_in[i])
			return snprintf(why, n, "register %d: %#llx -> %#llx", i, (unsigned long long)regs_in[i],
					(unsigned long long)regs_out[i]);
	return 0;
}

static int regs_vector(char *why, size_t n)
{
	if (!memcmp(vec_in, vec_out, sizeof vec_in))
		return 0;
	return snprintf(why, n, "%g %g %g %g", vec_out[0], vec_out[1], vec_out[2], vec_out[3]);
}

static const struct regs_check regs_checks[] = {
	{"general registers kept", regs_general},
	{"xmm8 and xmm9 kept", regs_vector},
};
#define handler_getuid getuid
#elif defined(__aarch64__)
/* arm64: x0..x7, x9..x15 and x18..x29 (x8 is the number; x16 and x17 are
   the registers a patched site may clobber; x30 is the link register the
   bl after the svc sets), all of v0..v31, fpcr, fpsr and the thread
   pointer TPIDR_EL0 (which the guest sets without a syscall) are set to
   known values, getuid runs from a raw svc, and the bl that follows it (a
   wrapper-shaped site: the rewrite tier patches it) stores them. The
   callee-saved ones are checked too, but a call into C keeps those
   anyway: the caller-saved ones (x0..x15, v0..v7, v16..v31, fpsr) are
   what only an exact save and restore keeps. */
uint64_t trapsig_regs_in[31], trapsig_regs_out[31];
uint64_t trapsig_vec_in[64], trapsig_vec_out[64];
uint64_t trapsig_fp_in[3], trapsig_fp_out[3]; /* fpcr, fpsr, tpidr_el0 */
uint64_t trapsig_regs_nr = 174;
void trapsig_regs_probe(void);
__asm__(".text\n"
	".globl trapsig_regs_probe\n"
	".type trapsig_regs_probe,%function\n"
	"trapsig_regs_probe:\n"
	"	stp x29, x30, [sp, #-160]!\n"
	"	stp x19, x20, [sp, #16]\n"
	"	stp x21, x22, [sp, #32]\n"
	"	stp x23, x24, [sp, #48]\n"
	"	stp x25, x26, [sp, #64]\n"
	"	stp x27, x28, [sp, #80]\n"
	"	stp d8, d9, [sp, #96]\n"
	"	stp d10, d11, [sp, #112]\n"
	"	stp d12, d13, [sp, #128]\n"
	"	stp d14, d15, [sp, #144]\n"
	"	mrs x0, fpcr\n"
	"	mrs x1, fpsr\n"
	"	stp x0, x1, [sp, #-32]!\n"
	"	mrs x0, tpidr_el0\n" /* the thread pointer: no TLS use until it is back */
	"	str x0, [sp, #16]\n"
	"	adrp x0, trapsig_fp_in\n"
	"	add x0, x0, :lo12:trapsig_fp_in\n"
	"	ldp x1, x2, [x0]\n"
	"	msr fpcr, x1\n"
	"	msr fpsr, x2\n"
	"	ldr x1, [x0, #16]\n"
	"	msr tpidr_el0, x1\n"
	"	adrp x0, trapsig_vec_in\n"
	"	add x0, x0, :lo12:trapsig_vec_in\n"
	"	ldp q0, q1, [x0, #0]\n"
	"	ldp q2, q3, [x0, #32]\n"
	"	ldp q4, q5, [x0, #64]\n"
	"	ldp q6, q7, [x0, #96]\n"
	"	ldp q8, q9, [x0, #128]\n"
	"	ldp q10, q11, [x0, #160]\n"
	"	ldp q12, q13, [x0, #192]\n"
	"	ldp q14, q15, [x0, #224]\n"
	"	ldp q16, q17, [x0, #256]\n"
	"	ldp q18, q19, [x0, #288]\n"
	"	ldp q20, q21, [x0, #320]\n"
	"	ldp q22, q23, [x0, #352]\n"
	"	ldp q24, q25, [x0, #384]\n"
	"	ldp q26, q27, [x0, #416]\n"
	"	ldp q28, q29, [x0, #448]\n"
	"	ldp q30, q31, [x0, #480]\n"
	"	adrp x0, trapsig_regs_in\n"
	"	add x0, x0, :lo12:trapsig_regs_in\n"
	"	ldp x1, x2, [x0, #8]\n"
	"	ldp x3, x4, [x0, #24]\n"
	"	ldp x5, x6, [x0, #40]\n"
	"	ldr x7, [x0, #56]\n"
	"	ldp x9, x10, [x0, #72]\n"
	"	ldp x11, x12, [x0, #88]\n"
	"	ldp x13, x14, [x0, #104]\n"
	"	ldr x15, [x0, #120]\n"
	"	ldp x18, x19, [x0, #144]\n"
	"	ldp x20, x21, [x0, #160]\n"
	"	ldp x22, x23, [x0, #176]\n"
	"	ldp x24, x25, [x0, #192]\n"
	"	ldp x26, x27, [x0, #208]\n"
	"	ldp x28, x29, [x0, #224]\n"
	"	ldr x0, [x0, #0]\n"
	"	adrp x8, trapsig_regs_nr\n" /* getuid (174) or newfstatat (79) */
	"	ldr x8, [x8, :lo12:trapsig_regs_nr]\n"
	"	svc #0\n"
	"	bl trapsig_regs_store\n"
	"	ldr x0, [sp, #16]\n"
	"	msr tpidr_el0, x0\n"
	"	ldp x0, x1, [sp], #32\n"
	"	msr fpcr, x0\n"
	"	msr fpsr, x1\n"
	"	ldp x19, x20, [sp, #16]\n"
	"	ldp x21, x22, [sp, #32]\n"
	"	ldp x23, x24, [sp, #48]\n"
	"	ldp x25, x26, [sp, #64]\n"
	"	ldp x27, x28, [sp, #80]\n"
	"	ldp d8, d9, [sp, #96]\n"
	"	ldp d10, d11, [sp, #112]\n"
	"	ldp d12, d13, [sp, #128]\n"
	"	ldp d14, d15, [sp, #144]\n"
	"	ldp x29, x30, [sp], #160\n"
	"	ret\n"
	".size trapsig_regs_probe, .-trapsig_regs_probe\n"
	"trapsig_regs_store:\n" /* x16 and x17 are free here, as after any bl */
	"	adrp x16, trapsig_regs_out\n"
	"	add x16, x16, :lo12:trapsig_regs_out\n"
	"	stp x0, x1, [x16, #0]\n"
	"	stp x2, x3, [x16, #16]\n"
	"	stp x4, x5, [x16, #32]\n"
	"	stp x6, x7, [x16, #48]\n"
	"	stp x8, x9, [x16, #64]\n"
	"	stp x10, x11, [x16, #80]\n"
	"	stp x12, x13, [x16, #96]\n"
	"	stp x14, x15, [x16, #112]\n"
	"	stp x18, x19, [x16, #144]\n"
	"	stp x20, x21, [x16, #160]\n"
	"	stp x22, x23, [x16, #176]\n"
	"	stp x24, x25, [x16, #192]\n"
	"	stp x26, x27, [x16, #208]\n"
	"	stp x28, x29, [x16, #224]\n"
	"	adrp x16, trapsig_fp_out\n"
	"	add x16, x16, :lo12:trapsig_fp_out\n"
	"	mrs x17, fpcr\n"
	"	str x17, [x16]\n"
	"	mrs x17, fpsr\n"
	"	str x17, [x16, #8]\n"
	"	mrs x17, tpidr_el0\n"
	"	str x17, [x16, #16]\n"
	"	adrp x16, trapsig_vec_out\n"
	"	add x16, x16, :lo12:trapsig_vec_out\n"
	"	stp q0, q1, [x16, #0]\n"
	"	stp q2, q3, [x16, #32]\n"
	"	stp q4, q5, [x16, #64]\n"
	"	stp q6, q7, [x16, #96]\n"
	"	stp q8, q9, [x16, #128]\n"
	"	stp q10, q11, [x16, #160]\n"
	"	stp q12, q13, [x16, #192]\n"
	"	stp q14, q15, [x16, #224]\n"
	"	stp q16, q17, [x16, #256]\n"
	"	stp q18, q19, [x16, #288]\n"
	"	stp q20, q21, [x16, #320]\n"
	"	stp q22, q23, [x16, #352]\n"
	"	stp q24, q25, [x16, #384]\n"
	"	stp q26, q27, [x16, #416]\n"
	"	stp q28, q29, [x16, #448]\n"
	"	stp q30, q31, [x16, #480]\n"
	"	ret\n");

static void regs_seed(unsigned k)
{
	for (int i = 0; i < 31; i++)
		trapsig_regs_in[i] = 0x0101010101010101ULL * (uint64_t)(i + 1) ^ 0x5a5aULL ^ (uint64_t)k << 20;
	for (int i = 0; i < 64; i++)
		trapsig_vec_in[i] = 0x0123456789abcdefULL * (uint64_t)(i + 3) ^ (uint64_t)i << 56 ^ (uint64_t)k << 8;
	trapsig_fp_in[0] = 3ULL << 22;			       /* fpcr: round toward zero */
	trapsig_fp_in[1] = 1ULL << 27;			       /* fpsr: QC, the saturation flag */
	trapsig_fp_in[2] = 0x0000123456789a40ULL + 16ULL * k; /* set with msr: no syscall tells kbox */
}

static void regs_probe(void)
{
	trapsig_regs_nr = 174;
	trapsig_regs_probe();
}

static void regs_probe_stat(void)
{
	trapsig_regs_nr = 79;
	trapsig_regs_probe();
}

static long regs_result(void) { return (long)trapsig_regs_out[0]; }

static int regs_general(char *why, size_t n)
{
	for (int i = 1; i < 30; i++)
		if (i != 8 && i != 16 && i != 17 && trapsig_regs_out[i] != trapsig_regs_in[i])
			return snprintf(why, n, "x%d: %#llx -> %#llx", i, (unsigned long long)trapsig_regs_in[i],
					(unsigned long long)trapsig_regs_out[i]);
	return 0;
}

static int regs_vector(char *why, size_t n)
{
	for (int i = 0; i < 64; i++)
		if (trapsig_vec_out[i] != trapsig_vec_in[i])
			return snprintf(why, n, "v%d changed", i / 2);
	if (trapsig_fp_out[0] != trapsig_fp_in[0] || trapsig_fp_out[1] != trapsig_fp_in[1])
		return snprintf(why, n, "fpcr %#llx, fpsr %#llx", (unsigned long long)trapsig_fp_out[0],
				(unsigned long long)trapsig_fp_out[1]);
	return 0;
}

static int regs_tp(char *why, size_t n)
{
	if (trapsig_fp_out[2] == trapsig_fp_in[2])
		return 0;
	return snprintf(why, n, "%#llx -> %#llx", (unsigned long long)trapsig_fp_in[2],
			(unsigned long long)trapsig_fp_out[2]);
}

static const struct regs_check regs_checks[] = {
	{"general registers kept", regs_general},
	{"v0..v31, fpcr and fpsr kept", regs_vector},
	{"tpidr_el0 kept", regs_tp},
};

/* The handler may interrupt the probe while TPIDR_EL0 holds its test
   value: it must not touch TLS, so its syscalls are raw (from a
   wrapper-shaped site, patched under rewrite). */
long trapsig_raw_getuid(void);
__asm__(".text\n"
	".globl trapsig_raw_getuid\n"
	".type trapsig_raw_getuid,%function\n"
	"trapsig_raw_getuid:\n"
	"	mov x8, #174\n"
	"	svc #0\n"
	"	ret\n"
	".size trapsig_raw_getuid, .-trapsig_raw_getuid\n");
#define handler_getuid trapsig_raw_getuid
#endif

#if defined(__x86_64__) || defined(__aarch64__)
#define NCHECKS (sizeof regs_checks / sizeof regs_checks[0])

static void mode_regs(void)
{
	char why[160];
	regs_seed(0);
	regs_probe();
	long uid = regs_result();
	check(uid == (long)getuid(), "getuid from a raw syscall", "%ld, libc says %ld", uid, (long)getuid());
	for (size_t i = 0; i < NCHECKS; i++) {
		why[0] = 0;
		int bad = regs_checks[i].diff(why, sizeof why);
		check(!bad, regs_checks[i].what, "%s", why);
	}
}

static volatile double regs_sink;

/* The handler makes syscalls (from patched sites too) and computes with
   the vector registers. */
static void regs_alarm(int sig)
{
	hits[sig]++;
	double d = 1.0;
	for (int i = 0; i < 32; i++)
		d = d * 1.0001 + (double)handler_getuid();
	regs_sink = d;
}

/* At least REGS_ROUNDS probes and REGS_SIGNALS handler runs, with the
   timer every 200 microseconds; at most REGS_MAX_ROUNDS probes. */
#define REGS_ROUNDS 2000
#define REGS_SIGNALS 20
#define REGS_MAX_ROUNDS 2000000

static void mode_regs_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = regs_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 200}, {0, 200}};
	setitimer(ITIMER_REAL, &it, NULL);
	char why[160] = "";
	const char *what = NULL;
	unsigned k;
	for (k = 0; k < REGS_MAX_ROUNDS && !what && (k < REGS_ROUNDS || hits[SIGALRM] < REGS_SIGNALS); k++) {
		regs_seed(k);
		regs_probe();
		if (regs_result() != (long)getuid()) {
			what = "getuid";
			snprintf(why, sizeof why, "%ld", regs_result());
		}
		for (size_t i = 0; i < NCHECKS && !what; i++)
			if (regs_checks[i].diff(why, sizeof why))
				what = regs_checks[i].what;
	}
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	check(!what, "registers kept across signals", "round %u: %s: %s", k, what ? what : "", why);
	check(hits[SIGALRM] >= REGS_SIGNALS, "handler ran", "%d runs in %u rounds", (int)hits[SIGALRM], k);
}

/* regs-stat: regs with newfstatat(AT_FDCWD, PATH, &st, 0) instead of
   getuid, ten times: kbox's engine serves the first two, its stat cache
   the others (from the fast path under rewrite, in the SIGSYS handler
   under trap). Then a cached path with a bad buffer, and a bad path. */
static void regs_stat_args(const char *path, struct stat *st)
{
#if defined(__x86_64__)
	regs_in[6] = (uint64_t)(long)AT_FDCWD, regs_in[7] = (uint64_t)path, regs_in[8] = (uint64_t)st, regs_in[9] = 0;
#else
	trapsig_regs_in[0] = (uint64_t)(long)AT_FDCWD, trapsig_regs_in[1] = (uint64_t)path;
	trapsig_regs_in[2] = (uint64_t)st, trapsig_regs_in[3] = 0;
#endif
}

static void mode_regs_stat(const char *path)
{
	struct stat want, st;
	if (stat(path, &want) != 0) {
		check(0, "stat", "%s: %s", path, strerror(errno));
		return;
	}
	char why[160] = "";
	const char *what = NULL;
	for (unsigned k = 0; k < 10 && !what; k++) {
		memset(&st, 0, sizeof st);
		regs_seed(k);
		regs_stat_args(path, &st);
		regs_probe_stat();
		if (regs_result() != 0 || st.st_ino != want.st_ino || st.st_size != want.st_size ||
		    st.st_mode != want.st_mode || st.st_uid != want.st_uid) {
			what = "stat from a raw syscall";
			snprintf(why, sizeof why, "round %u: %ld, ino %llu size %lld mode %o uid %u", k, regs_result(),
				 (unsigned long long)st.st_ino, (long long)st.st_size, st.st_mode, st.st_uid);
		}
		for (size_t i = 0; i < NCHECKS && !what; i++)
			if (regs_checks[i].diff(why, sizeof why))
				what = regs_checks[i].what;
	}
	check(!what, "stats from a raw syscall keep every register", "%s: %s", what ? what : "", why);
	long r = syscall(SYS_newfstatat, AT_FDCWD, path, (void *)8, 0);
	check(r == -1 && errno == EFAULT, "a bad buffer: EFAULT", "%ld %s", r, strerror(errno));
	r = syscall(SYS_newfstatat, AT_FDCWD, (void *)8, &st, 0);
	check(r == -1 && errno == EFAULT, "a bad path: EFAULT", "%ld %s", r, strerror(errno));
}
#else
static void mode_regs(void)
{
	printf("regs: ok getuid from a raw syscall\nregs: ok general registers kept\nregs: ok xmm8 and xmm9 kept\n");
}

static void mode_regs_signals(void)
{
	printf("regs-signals: ok registers kept across signals\nregs-signals: ok handler ran\n");
}

static void mode_regs_stat(const char *path)
{
	(void)path;
	printf("regs-stat: ok stats from a raw syscall keep every register\nregs-stat: ok a bad buffer: EFAULT\n"
	       "regs-stat: ok a bad path: EFAULT\n");
}
#endif

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: trapsig MODE\n");
		return 2;
	}
	mode = argv[1];
	if (!strcmp(mode, "alarm"))
		mode_alarm();
	else if (!strcmp(mode, "segv"))
		mode_segv();
	else if (!strcmp(mode, "raise"))
		mode_raise();
	else if (!strcmp(mode, "altstack"))
		mode_altstack();
	else if (!strcmp(mode, "restart"))
		mode_restart();
	else if (!strcmp(mode, "sigint"))
		mode_sigint();
	else if (!strcmp(mode, "spin"))
		mode_spin();
	else if (!strcmp(mode, "pause"))
		mode_pause();
	else if (!strcmp(mode, "default-term"))
		mode_default_term();
	else if (!strcmp(mode, "segv-default"))
		mode_segv_default();
	else if (!strcmp(mode, "mem"))
		mode_mem();
	else if (!strcmp(mode, "exec"))
		mode_exec(argv[0]);
	else if (!strcmp(mode, "fdcheck") && argc == 5)
		mode_fdcheck(argv);
	else if (!strcmp(mode, "fork"))
		mode_fork();
	else if (!strcmp(mode, "regs"))
		mode_regs();
	else if (!strcmp(mode, "regs-signals"))
		mode_regs_signals();
	else if (!strcmp(mode, "regs-stat") && argc == 3)
		mode_regs_stat(argv[2]);
	else {
		fprintf(stderr, "trapsig: unknown mode %s\n", mode);
		return 2;
	}
	return failures ? 1 : 0;
}
