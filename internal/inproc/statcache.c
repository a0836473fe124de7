//go:build cgo && linux && (amd64 || arm64)

// The in-process tiers' stat cache: a stat of a guest path the engine has
// already resolved twice is answered here, in C, by one fstat of an O_PATH
// descriptor of the object, without entering Go. Entering Go costs two
// thread-pointer switches, and on x86-64 without FSGSBASE each is an
// arch_prctl (3.4 µs on the development VM, two native stats' worth).
//
// What the cache may answer is decided in Go (statcache.go): only stats
// the engine served with one no-follow fstatat on a resolved parent in a
// plain mount (vfs.Lookup.Deferred: no procfs, no overlay, no mount point),
// of a non-symlink or with no-follow, with no recorded ownership, and only
// by AT_FDCWD and the exact path string the guest passed. An entry is
// valid for one generation: every guest call served outside the cache
// that is not in kbox_sc_keep (the policy table's PathStable column: calls
// that cannot change what a path names, a cwd, a root, a mount or a
// recorded owner) starts a new one, before it runs. So after a guest
// rename, unlink, chdir, chown, mount or exec the next stat of any path
// goes through the engine again.
//
// The object's own changes (content, mode, times, size) are live: fstat
// reads the inode. A host process that removes or replaces the object
// during the run leaves it with no links: that answer is a miss and the
// engine resolves again. What the cache does not see is a host process
// renaming the object or a directory above it while it still has links:
// the entry names the old object until the guest changes the tree or the
// entry is replaced (docs/architecture.md, "The in-process stat cache").
//
// Runs on the guest thread with the guest's thread pointer, from the
// rewrite tier's fast path (on the guest's stack) and from the SIGSYS
// handler (on the alternate stack): no TLS, no errno, raw syscalls, and
// guest memory only through the fault-guarded copies of guest_<arch>.c.

#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define KBOX_GUEST_INTERNAL
#include "guest.h"

// The rewrite tier's fast path calls kbox_stat_fast with the guest's vector
// registers live and saves only the general ones: no vector code here.
#pragma GCC target("general-regs-only")

struct kbox_sc_entry kbox_sc[KBOX_SC_SLOTS];
volatile uint64_t kbox_sc_gen = 1;
uint8_t kbox_sc_keep[KBOX_FAST_NR];
int32_t kbox_sc_on;
struct kbox_sc_owner kbox_sc_owner;
uint64_t kbox_sc_hits, kbox_sc_misses;

// The stat layout the kernel writes is the C library's on both
// architectures (x86-64's struct stat, arm64's asm-generic one).
#if defined(__x86_64__)
_Static_assert(offsetof(struct stat, st_nlink) == 16 && sizeof(((struct stat *)0)->st_nlink) == 8, "nlink");
_Static_assert(offsetof(struct stat, st_uid) == 28 && offsetof(struct stat, st_gid) == 32, "uid/gid");
_Static_assert(sizeof(struct stat) == 144, "struct stat");
#elif defined(__aarch64__)
_Static_assert(offsetof(struct stat, st_nlink) == 20 && sizeof(((struct stat *)0)->st_nlink) == 4, "nlink");
_Static_assert(offsetof(struct stat, st_uid) == 24 && offsetof(struct stat, st_gid) == 28, "uid/gid");
_Static_assert(sizeof(struct stat) == 128, "struct stat");
#endif

uint32_t kbox_sc_hash(const char *p, uint32_t n, uint32_t nofollow) {
	uint32_t h = 2166136261u ^ nofollow;
	for (uint32_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return h;
}

// kbox_sc_args picks a stat call's path, buffer and no-follow flag, or
// returns 0 for a form the cache does not serve (a directory descriptor
// other than AT_FDCWD, flags other than AT_SYMLINK_NOFOLLOW).
static int kbox_sc_args(long nr, long a0, long a1, long a2, long a3, long *path, long *buf, uint32_t *nofollow) {
	switch (nr) {
#ifdef SYS_stat
	case SYS_stat:
		*path = a0, *buf = a1, *nofollow = 0;
		return 1;
	case SYS_lstat:
		*path = a0, *buf = a1, *nofollow = 1;
		return 1;
#endif
	case SYS_newfstatat:
		if ((int)a0 != AT_FDCWD || (a3 & ~(long)AT_SYMLINK_NOFOLLOW) != 0)
			return 0;
		*path = a1, *buf = a2, *nofollow = (a3 & AT_SYMLINK_NOFOLLOW) != 0;
		return 1;
	}
	return 0;
}

// kbox_stat_fast answers a stat call from the cache: the call's result,
// or KBOX_SC_MISS when the engine must serve it.
long kbox_stat_fast(long nr, long a0, long a1, long a2, long a3) {
	long path, buf;
	uint32_t nofollow;
	if (!kbox_sc_on || !kbox_sc_args(nr, a0, a1, a2, a3, &path, &buf, &nofollow))
		return KBOX_SC_MISS; // not a form the cache answers: not counted
	char name[KBOX_SC_PATH];
	long n = kbox_gcopy_str(name, (const char *)path, sizeof name);
	if (n <= 0) // empty, too long for the cache, or a bad pointer
		goto miss;
	uint32_t h = kbox_sc_hash(name, (uint32_t)n, nofollow);
	uint64_t gen = kbox_sc_gen;
	for (uint32_t i = 0; i < KBOX_SC_PROBE; i++) {
		struct kbox_sc_entry *e = &kbox_sc[(h + i) & (KBOX_SC_SLOTS - 1)];
		if (e->gen != gen || e->hash != h || e->len != n || e->nofollow != nofollow)
			continue;
		int same = 1;
		for (long j = 0; j < n && same; j++)
			same = e->path[j] == name[j];
		if (!same)
			continue;
		struct stat st;
		int32_t fd = e->fd;
		if (kbox_raw6(SYS_fstat, fd, (long)&st, 0, 0, 0, 0) != 0 || st.st_nlink == 0)
			goto miss; // removed or replaced on the host: resolve again
		// Under rewrite a kick can run a guest signal handler between
		// the load of fd and the fstat; its calls may end the
		// generation, and Go then closes fd, whose number a new open
		// may take. The answer stands only if the entry did not change.
		if (e->gen != gen || e->fd != fd)
			goto miss;
		if (kbox_sc_owner.translate) {
			if (st.st_uid == kbox_sc_owner.host_uid)
				st.st_uid = kbox_sc_owner.guest_uid;
			if (st.st_gid == kbox_sc_owner.host_gid)
				st.st_gid = kbox_sc_owner.guest_gid;
		}
		if (kbox_gcopy_out((void *)buf, &st, sizeof st) != 0)
			goto miss; // the engine answers EFAULT
		kbox_sc_hits++;
		return 0;
	}
miss:
	kbox_sc_misses++;
	return KBOX_SC_MISS;
}

// kbox_sc_note is called with every guest call the engine is about to
// serve: one that may change what a path names ends the generation.
void kbox_sc_note(long nr, long a1, long a2) {
	if (nr >= 0 && nr < KBOX_FAST_NR && kbox_sc_keep[nr]) {
		long flags;
		switch (nr) {
#ifdef SYS_open
		case SYS_open:
			flags = a1;
			break;
#endif
		case SYS_openat:
			flags = a2;
			break;
		default:
			return;
		}
		// Only a read-only open that creates and truncates nothing
		// keeps names as they were.
		if ((flags & O_ACCMODE) == O_RDONLY && !(flags & (O_CREAT | O_TRUNC)))
			return;
	}
	kbox_sc_gen++;
}
