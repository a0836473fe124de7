//go:build cgo && linux

// The confinement of a kbox process that hosts an in-process guest, applied
// by an ELF constructor: it runs before the Go runtime starts, while the
// process has exactly one thread, so everything set here (NO_NEW_PRIVS, the
// dropped capabilities, the Landlock domain and the seccomp filter) is
// inherited by every thread the runtime or the guest creates afterwards.
// Go code cannot do this: by the time main.init runs, the runtime already
// has several threads, and landlock_restrict_self restricts only its caller.
//
// The constructor does nothing unless argv[1] is the marker. The parent
// (internal/sandbox, Spawn) prepared everything that needs decisions: the
// Landlock ruleset (a descriptor) and the filter (a memfd holding the BPF
// instructions). This file only applies them, in the one order that works
// for an unprivileged process: no_new_privs, capabilities, Landlock, seccomp
// (the filter denies the calls the steps before it make).
//
// Invariant relied on by Go (confine.go): kbox_confined is set to 1 only when
// every step succeeded; on any failure the process exits 125 with a message
// on stderr before Go runs at all.

#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

#include "confine.h"

int kbox_confined;
int kbox_confine_flags;

static void die(const char *what, int err) {
	char buf[256];
	size_t n = 0;
	const char *parts[] = {"kbox: confining the in-process guest: ", what, ": ", strerror(err), "\n"};
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		size_t l = strlen(parts[i]);
		if (n + l >= sizeof buf)
			l = sizeof buf - 1 - n;
		memcpy(buf + n, parts[i], l);
		n += l;
	}
	ssize_t w = write(2, buf, n);
	(void)w;
	_exit(125);
}

// parse reads "key=value,key=value" integers from the marker's argument.
static long field(const char *spec, const char *key, long def) {
	size_t kl = strlen(key);
	for (const char *p = spec; p && *p;) {
		if (strncmp(p, key, kl) == 0 && p[kl] == '=')
			return strtol(p + kl + 1, NULL, 10);
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return def;
}

// drop_capabilities keeps, of root's capabilities, only those over file
// permissions and ownership (KBOX_FILE_CAPS): what kbox's supervisor
// exercises for a root guest in the seccomp tier, inside the guest's
// mounts (Landlock holds for root too). Everything else goes: raw and
// administrative networking, the console, the kernel log, device nodes,
// set*id, kill...
static void drop_capabilities(void) {
	// Securebits first (they need CAP_SETPCAP, which goes below): uid 0
	// gains nothing at a later exec, permanently.
	unsigned long bits = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 5);
	if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0)
		die("PR_SET_SECUREBITS", errno);
	for (int c = 0; c <= 63; c++) {
		if (c < 32 && (KBOX_FILE_CAPS & (1u << c)))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
			die("PR_CAPBSET_DROP", errno);
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
		die("PR_CAP_AMBIENT_CLEAR_ALL", errno);
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	if (syscall(SYS_capget, &hdr, data) != 0)
		die("capget", errno);
	data[0].effective &= KBOX_FILE_CAPS;
	data[0].permitted &= KBOX_FILE_CAPS;
	data[0].inheritable = 0;
	data[1].effective = data[1].permitted = data[1].inheritable = 0;
	if (syscall(SYS_capset, &hdr, data) != 0)
		die("capset", errno);
}

static void install_filter(int fd) {
	static struct sock_filter insns[KBOX_MAX_FILTER];
	ssize_t n = pread(fd, insns, sizeof insns, 0);
	if (n <= 0 || n % sizeof insns[0] != 0)
		die("reading the filter", n < 0 ? errno : EINVAL);
	// The filter was compiled before this process existed: its own pid
	// comes in place of the placeholders (internal/seccomp, SelfPID).
	pid_t self = getpid();
	for (size_t i = 0; i < n / sizeof insns[0]; i++) {
		if (insns[i].code != (BPF_JMP | BPF_JEQ | BPF_K))
			continue;
		if (insns[i].k == KBOX_SELF_PID)
			insns[i].k = (uint32_t)self;
		else if (insns[i].k == KBOX_SELF_NEG_PID)
			insns[i].k = (uint32_t)-self;
	}
	struct sock_fprog prog = {(unsigned short)(n / sizeof insns[0]), insns};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
		die("installing the seccomp filter", errno);
}

__attribute__((constructor)) static void kbox_confine(int argc, char **argv, char **envp) {
	(void)envp;
	if (argc < 3 || strcmp(argv[1], KBOX_CONFINE_MARKER) != 0)
		return;
	const char *spec = argv[2];
	long ruleset = field(spec, "ruleset", -1);
	long filter = field(spec, "filter", -1);
	long flags = field(spec, "flags", 0);
	long parent = field(spec, "parent", -1);
	if (filter < 0 || parent <= 0)
		die("bad confinement arguments", EINVAL);
	// Dies with kbox's supervisor; the filter below keeps the guest from
	// undoing this (prctl PR_SET_PDEATHSIG is denied).
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
		die("PR_SET_PDEATHSIG", errno);
	if (getppid() != parent)
		die("the supervisor is gone", ESRCH);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		die("PR_SET_NO_NEW_PRIVS", errno);
	if (flags & KBOX_CONFINE_DROP_CAPS)
		drop_capabilities();
	if (ruleset >= 0) {
		if (syscall(SYS_landlock_restrict_self, (int)ruleset, 0) != 0)
			die("landlock_restrict_self", errno);
		close((int)ruleset);
	}
	install_filter((int)filter);
	close((int)filter);
	kbox_confine_flags = (int)flags;
	kbox_confined = 1;
}
