/*
 * execrace - race kbox's exec path rewrite from a task sharing memory.
 *
 * Usage: execrace MODE N GUESTPATH HOSTPATH [ARG...]
 *
 * N times, a child execs GUESTPATH (argv: "prog" ARG...) from a buffer in
 * memory another task shares; that task watches the buffer and, as soon
 * as kbox has rewritten it (it no longer starts with '/'), writes HOSTPATH
 * over it, so that the kernel, reading the path after kbox, would execute
 * HOSTPATH. MODE:
 *   clonevm  the child is created with clone(CLONE_VM|SIGCHLD); the parent
 *            races while it runs.
 *   sibling  the parent creates a racing task with clone(CLONE_VM|SIGCHLD),
 *            then vforks the child that execs (the parent itself is
 *            suspended, as for posix_spawn).
 *   shared   the buffer is a MAP_SHARED mapping; the parent forks (no
 *            shared address space) a racing child, then vforks the exec.
 *   procmem  the parent forks the child (no shared memory) and writes its
 *            path through /proc/<child>/mem.
 *   vfork    no race: vfork and exec GUESTPATH (what posix_spawn does).
 *   spawn    no race: posix_spawn GUESTPATH.
 * The exec'd program prints what it prints; execrace then prints one line
 * per run whose exec failed, "execrace: exec failed: ERRNO" (procmem: or
 * "execrace: mem: ERRNO" when the memory file cannot be opened for
 * writing), and at the end "execrace: done N".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char *buf; /* the exec path, in memory the racer reaches */
static const char *host_path, *guest_path;
static char **child_argv;
static volatile int exec_errno, stop;

static const char *ename(int e)
{
	switch (e) {
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENOENT: return "ENOENT";
	case EIO: return "EIO";
	case EAGAIN: return "EAGAIN";
	}
	return "other";
}

/* race rewrites the path as soon as kbox has rewritten it. */
static void race(void)
{
	while (!stop) {
		if (((volatile char *)buf)[0] != '/')
			strcpy(buf, host_path);
	}
}

static int child_exec(void *arg)
{
	(void)arg;
	long rc = syscall(SYS_execve, buf, child_argv, environ);
	exec_errno = rc < 0 ? errno : 0;
	syscall(SYS_exit, 111);
	return 0;
}

static int racer(void *arg)
{
	(void)arg;
	race();
	syscall(SYS_exit, 0);
	return 0;
}

static char *new_stack(void)
{
	size_t sz = 256 * 1024;
	char *s = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return s + sz;
}

static void report(int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 111)
		printf("execrace: exec failed: %s\n", ename(exec_errno));
	fflush(stdout);
}

static void run_clonevm(void)
{
	static char *stack;
	int status;
	if (!stack)
		stack = new_stack();
	exec_errno = 0;
	pid_t pid = clone(child_exec, stack, CLONE_VM | SIGCHLD, NULL);
	if (pid < 0) {
		perror("clone");
		exit(2);
	}
	for (;;) {
		if (buf[0] != '/')
			strcpy(buf, host_path);
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
	}
	report(status);
}

static void run_sibling(void)
{
	static char *stack;
	int status;
	if (!stack)
		stack = new_stack();
	stop = 0;
	pid_t r = clone(racer, stack, CLONE_VM | SIGCHLD, NULL);
	if (r < 0) {
		perror("clone");
		exit(2);
	}
	exec_errno = 0;
	pid_t pid = vfork();
	if (pid == 0)
		child_exec(NULL);
	stop = 1;
	waitpid(pid, &status, 0);
	waitpid(r, NULL, 0);
	report(status);
}

static void run_shared(void)
{
	int status;
	stop = 0;
	pid_t r = fork();
	if (r == 0) {
		for (;;) /* the parent's stop flag is not shared: killed below */
			if (((volatile char *)buf)[0] != '/')
				strcpy(buf, host_path);
	}
	exec_errno = 0;
	pid_t pid = vfork();
	if (pid == 0)
		child_exec(NULL);
	kill(r, SIGKILL);
	waitpid(pid, &status, 0);
	waitpid(r, NULL, 0);
	report(status);
}

static void run_procmem(void)
{
	int status, sync[2];
	char path[64], c;
	if (pipe(sync) < 0) {
		perror("pipe");
		exit(2);
	}
	exec_errno = 0;
	pid_t pid = fork();
	if (pid == 0) {
		close(sync[1]);
		if (read(sync[0], &c, 1) != 1)
			_exit(112);
		child_exec(NULL);
	}
	close(sync[0]);
	snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
	int mem = open(path, O_RDWR);
	if (mem < 0) {
		printf("execrace: mem: %s\n", ename(errno));
		close(sync[1]); /* the child exits */
		waitpid(pid, &status, 0);
		return;
	}
	if (write(sync[1], "g", 1) != 1)
		exit(2);
	close(sync[1]);
	for (;;) {
		char b = '/';
		if (pread(mem, &b, 1, (off_t)(uintptr_t)buf) == 1 && b != '/')
			pwrite(mem, host_path, strlen(host_path) + 1, (off_t)(uintptr_t)buf);
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
	}
	close(mem);
	report(status);
}

static void run_vfork(void)
{
	int status;
	exec_errno = 0;
	pid_t pid = vfork();
	if (pid == 0)
		child_exec(NULL);
	waitpid(pid, &status, 0);
	report(status);
}

static void run_spawn(void)
{
	int status;
	pid_t pid;
	int e = posix_spawn(&pid, buf, NULL, NULL, child_argv, environ);
	if (e != 0) {
		printf("execrace: exec failed: %s\n", ename(e));
		return;
	}
	waitpid(pid, &status, 0);
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: execrace clonevm|sibling|shared|vfork|spawn N GUESTPATH HOSTPATH [ARG...]\n");
		return 2;
	}
	const char *mode = argv[1];
	int n = atoi(argv[2]), i;
	guest_path = argv[3];
	host_path = argv[4];
	child_argv = calloc((size_t)argc, sizeof *child_argv);
	child_argv[0] = "prog";
	for (i = 5; i < argc; i++)
		child_argv[i - 4] = argv[i];
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	if (strcmp(mode, "shared") == 0)
		flags = MAP_SHARED | MAP_ANONYMOUS;
	buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < n; i++) {
		strcpy(buf, guest_path);
		if (strcmp(mode, "clonevm") == 0)
			run_clonevm();
		else if (strcmp(mode, "sibling") == 0)
			run_sibling();
		else if (strcmp(mode, "shared") == 0)
			run_shared();
		else if (strcmp(mode, "procmem") == 0)
			run_procmem();
		else if (strcmp(mode, "vfork") == 0)
			run_vfork();
		else if (strcmp(mode, "spawn") == 0)
			run_spawn();
		else {
			fprintf(stderr, "execrace: unknown mode %s\n", mode);
			return 2;
		}
	}
	printf("execrace: done %d\n", n);
	return 0;
}
