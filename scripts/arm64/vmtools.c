/*
 * vmtools: the few util-linux/coreutils commands the integration tests run,
 * with only the options they use, as one static binary for the arm64 test VM
 * (scripts/arm64-vm-test), where busybox's versions lack those options.
 * Called by its name:
 *   setpriv --reuid=U --regid=G --clear-groups [--] CMD...
 *   chroot [--userspec=U:G] [--groups=G[,G...]] ROOT [CMD...]
 *   prlimit --nproc=N [--] CMD...
 *   setsid-wait CMD...   (runs CMD in a new session and returns its status)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "vmtools: %s: %s\n", what, strerror(errno));
	exit(125);
}

static void usage(const char *prog, const char *arg)
{
	fprintf(stderr, "vmtools %s: unsupported argument %s\n", prog, arg ? arg : "(none)");
	exit(125);
}

static void run(char **argv)
{
	execvp(argv[0], argv);
	fprintf(stderr, "vmtools: exec %s: %s\n", argv[0], strerror(errno));
	exit(errno == ENOENT ? 127 : 126);
}

static int do_setpriv(int argc, char **argv)
{
	long uid = -1, gid = -1;
	int clear = 0, i;
	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strncmp(argv[i], "--reuid=", 8) == 0)
			uid = atol(argv[i] + 8);
		else if (strncmp(argv[i], "--regid=", 8) == 0)
			gid = atol(argv[i] + 8);
		else if (strcmp(argv[i], "--clear-groups") == 0)
			clear = 1;
		else
			usage("setpriv", argv[i]);
	}
	if (i >= argc)
		usage("setpriv", NULL);
	if (clear && setgroups(0, NULL) != 0)
		die("setgroups");
	if (gid >= 0 && setresgid(gid, gid, gid) != 0)
		die("setresgid");
	if (uid >= 0 && setresuid(uid, uid, uid) != 0)
		die("setresuid");
	run(argv + i);
	return 125;
}

static int do_chroot(int argc, char **argv)
{
	long uid = -1, gid = -1;
	gid_t groups[64];
	int ngroups = -1, i;
	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strncmp(argv[i], "--userspec=", 11) == 0) {
			char *colon = strchr(argv[i] + 11, ':');
			uid = atol(argv[i] + 11);
			if (colon)
				gid = atol(colon + 1);
		} else if (strncmp(argv[i], "--groups=", 9) == 0) {
			char *p = argv[i] + 9;
			ngroups = 0;
			while (*p && ngroups < 64) {
				groups[ngroups++] = (gid_t)strtol(p, &p, 10);
				if (*p == ',')
					p++;
				else if (*p)
					usage("chroot", argv[i]);
			}
		} else
			usage("chroot", argv[i]);
	}
	if (i >= argc)
		usage("chroot", NULL);
	if (chroot(argv[i]) != 0)
		die("chroot");
	if (chdir("/") != 0)
		die("chdir");
	if (ngroups >= 0 && setgroups(ngroups, groups) != 0)
		die("setgroups");
	if (gid >= 0 && setresgid(gid, gid, gid) != 0)
		die("setresgid");
	if (uid >= 0 && setresuid(uid, uid, uid) != 0)
		die("setresuid");
	i++;
	if (i >= argc) {
		char *sh[] = { "/bin/sh", "-i", NULL };
		run(sh);
	}
	run(argv + i);
	return 125;
}

static int do_prlimit(int argc, char **argv)
{
	int i;
	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strncmp(argv[i], "--nproc=", 8) == 0) {
			struct rlimit rl;
			rl.rlim_cur = rl.rlim_max = (rlim_t)atol(argv[i] + 8);
			if (setrlimit(RLIMIT_NPROC, &rl) != 0)
				die("setrlimit");
		} else
			usage("prlimit", argv[i]);
	}
	if (i >= argc)
		usage("prlimit", NULL);
	run(argv + i);
	return 125;
}

static int do_setsid_wait(int argc, char **argv)
{
	int st;
	pid_t pid;
	if (argc < 2)
		usage("setsid-wait", NULL);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		if (setsid() < 0)
			die("setsid");
		run(argv + 1);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
	const char *name = basename(argv[0]);
	if (strcmp(name, "setpriv") == 0)
		return do_setpriv(argc, argv);
	if (strcmp(name, "chroot") == 0)
		return do_chroot(argc, argv);
	if (strcmp(name, "prlimit") == 0)
		return do_prlimit(argc, argv);
	if (strcmp(name, "setsid-wait") == 0)
		return do_setsid_wait(argc, argv);
	fprintf(stderr, "vmtools: called as %s: want setpriv, chroot or prlimit\n", name);
	return 125;
}
