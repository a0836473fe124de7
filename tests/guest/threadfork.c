/*
 * threadfork - fork and exec from a multi-threaded guest program.
 *
 * threadfork (no argument): four worker threads each create, write, stat,
 * read back and unlink /tmp/tf-N in a loop while the main thread forks
 * children that exec and waits for each: execl("/bin/hello", "hello", "x",
 * NULL) (string literals: the toolchain usually stores "hello" as the tail
 * of "/bin/hello", so argv[0] points inside the path string), the same with
 * the dynamic /bin/hello-glibc, and /bin/hello with argv[0] in a stack
 * buffer.  Then a fifth thread forks a child that _exit(3)s (a fork from a
 * thread other than the main one).  A fork() child of a threaded program is
 * single-threaded and has its own memory, so its exec must be allowed.
 *
 * Output (stdout), in this order:
 *   hello's output (hello from musl, argv[0]=hello, argv[1]=x, cwd=...)
 *   exec-literal: status=0
 *   hello-glibc's output (hello from glibc, argv[0]=hello-glibc, argv[1]=x)
 *   exec-literal-glibc: status=0
 *   hello's output (argv[0]=hello-stack, argv[1]=y)
 *   exec-stack: status=0
 *   thread-fork: status=3
 *   worker N: ok iterations=M        (N = 0..3)
 *   threadfork: ok
 *
 * threadfork spawn [PROG] (single-threaded; PROG defaults to /bin/hello):
 * posix_spawn of PROG held in a static array, three times (musl spawns
 * with CLONE_VM|CLONE_VFORK: the child shares the parent's memory),
 * printing PROG's output and "spawn N: err=E path=P"; then
 * system("echo sys-N") twice ("system N: status=S"); then a fork+execv of
 * another array holding PROG whose argv[1] points at that array's last 4
 * bytes, argv[0] being "hello-tail" ("exec-tail: status=0").  Ends with
 * "threadfork: ok".
 *
 * Failures are reported on stdout as "FAIL ..." and the exit status is 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NWORKERS 4
#define MIN_ITER 20

static volatile int stop;
static volatile int failed;

struct worker {
	int n;
	int iterations;
	char err[160];
};

static void fail(struct worker *w, const char *what, int err)
{
	snprintf(w->err, sizeof w->err, "%s: %s", what, strerror(err));
	failed = 1;
}

static int one_round(struct worker *w)
{
	char path[64], buf[64], want[64];
	struct stat st;
	int fd, len;
	ssize_t r;

	snprintf(path, sizeof path, "/tmp/tf-%d", w->n);
	len = snprintf(want, sizeof want, "thread %d round %d\n", w->n, w->iterations);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(w, "open for writing", errno), -1;
	if (write(fd, want, len) != len)
		return fail(w, "write", errno), close(fd), -1;
	close(fd);
	if (stat(path, &st) < 0)
		return fail(w, "stat", errno), -1;
	if (st.st_size != len || !S_ISREG(st.st_mode)) {
		snprintf(w->err, sizeof w->err, "stat: size %lld, want %d", (long long)st.st_size, len);
		failed = 1;
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(w, "open for reading", errno), -1;
	r = read(fd, buf, sizeof buf);
	close(fd);
	if (r != len || memcmp(buf, want, len) != 0) {
		snprintf(w->err, sizeof w->err, "read back %zd bytes, want %d", r, len);
		failed = 1;
		return -1;
	}
	if (unlink(path) < 0)
		return fail(w, "unlink", errno), -1;
	if (access(path, F_OK) == 0 || errno != ENOENT) {
		snprintf(w->err, sizeof w->err, "%s still exists after unlink", path);
		failed = 1;
		return -1;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	/* At least MIN_ITER rounds, and until the main thread is done. */
	while (!failed && (w->iterations < MIN_ITER || !stop)) {
		if (one_round(w) < 0)
			break;
		w->iterations++;
	}
	return NULL;
}

static void *forking_thread(void *arg)
{
	int *status = arg;
	pid_t pid = fork();
	if (pid < 0) {
		*status = -errno;
		return NULL;
	}
	if (pid == 0)
		_exit(3);
	if (waitpid(pid, status, 0) < 0)
		*status = -errno;
	return NULL;
}

extern char **environ;

/* wait_child waits for pid and prints "label: status=N"; it returns 1 when
 * the child exited with 0. */
static int wait_child(const char *label, pid_t pid)
{
	int ws;
	if (pid < 0) {
		printf("FAIL %s: fork: %s\n", label, strerror(errno));
		return 0;
	}
	if (waitpid(pid, &ws, 0) < 0) {
		printf("FAIL %s: waitpid: %s\n", label, strerror(errno));
		return 0;
	}
	if (WIFEXITED(ws)) {
		printf("%s: status=%d\n", label, WEXITSTATUS(ws));
		return WEXITSTATUS(ws) == 0;
	}
	printf("%s: signal=%d\n", label, WTERMSIG(ws));
	return 0;
}

/* run_child forks a child that runs execv(path, argv), waits for it and
 * prints "label: status=N"; it returns 1 when the child exited with 0. */
static int run_child(const char *label, const char *path, char *const argv[])
{
	pid_t pid = fork();
	if (pid == 0) {
		execv(path, argv);
		printf("FAIL %s: execv %s: %s\n", label, path, strerror(errno));
		_exit(127);
	}
	return wait_child(label, pid);
}

/* fork_literal forks a child that execs /bin/hello (or /bin/hello-glibc)
 * with string literals for the path and argv[0]. */
static pid_t fork_literal(int glibc)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	if (glibc)
		execl("/bin/hello-glibc", "hello-glibc", "x", (char *)NULL);
	else
		execl("/bin/hello", "hello", "x", (char *)NULL);
	printf("FAIL execl: %s\n", strerror(errno));
	_exit(127);
}

static int spawn_main(const char *prog)
{
	static char path[256], tpath[256];
	char *argv[] = {"hello-spawn", NULL};
	char *tail[] = {"hello-tail", tpath, NULL};
	int i, ok = 1, ws, err;
	pid_t pid;

	if (strlen(prog) < 5 || strlen(prog) >= sizeof path) {
		printf("FAIL bad program path %s\n", prog);
		return 1;
	}
	strcpy(path, prog);
	strcpy(tpath, prog);
	tail[1] = tpath + strlen(tpath) - 4;

	for (i = 0; i < 3; i++) {
		err = posix_spawn(&pid, path, NULL, NULL, argv, environ);
		if (!err && (waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)) {
			printf("FAIL spawn %d: child status 0x%x\n", i, ws);
			ok = 0;
		}
		printf("spawn %d: err=%d path=%s\n", i, err, path);
		ok &= err == 0;
	}
	for (i = 0; i < 2; i++) {
		char cmd[32];
		snprintf(cmd, sizeof cmd, "echo sys-%d", i);
		ws = system(cmd);
		printf("system %d: status=%d\n", i, ws);
		ok &= ws == 0;
	}
	ok &= run_child("exec-tail", tpath, tail);
	printf("threadfork: %s\n", ok ? "ok" : "FAIL");
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	pthread_t th[NWORKERS], ft;
	struct worker w[NWORKERS];
	int i, ok = 1, status = -1;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc > 1 && strcmp(argv[1], "spawn") == 0)
		return spawn_main(argc > 2 ? argv[2] : "/bin/hello");
	for (i = 0; i < NWORKERS; i++) {
		memset(&w[i], 0, sizeof w[i]);
		w[i].n = i;
		if ((errno = pthread_create(&th[i], NULL, worker_main, &w[i]))) {
			printf("FAIL pthread_create: %s\n", strerror(errno));
			return 1;
		}
	}

	/* Fork + exec from the main thread while the workers run, first with
	 * string literals (see the top of the file): a static and a dynamic
	 * program. */
	ok &= wait_child("exec-literal", fork_literal(0));
	ok &= wait_child("exec-literal-glibc", fork_literal(1));
	{
		char a0[] = "hello-stack", a1[] = "y";
		char *av[] = {a0, a1, NULL};
		ok &= run_child("exec-stack", "/bin/hello", av);
	}

	/* Fork from a thread other than the main one. */
	if ((errno = pthread_create(&ft, NULL, forking_thread, &status))) {
		printf("FAIL pthread_create: %s\n", strerror(errno));
		ok = 0;
	} else {
		pthread_join(ft, NULL);
		if (status < 0) {
			printf("FAIL fork/waitpid in a thread: %s\n", strerror(-status));
			ok = 0;
		} else if (WIFEXITED(status)) {
			printf("thread-fork: status=%d\n", WEXITSTATUS(status));
			ok &= WEXITSTATUS(status) == 3;
		} else {
			printf("thread-fork: signal=%d\n", WTERMSIG(status));
			ok = 0;
		}
	}

	stop = 1;
	for (i = 0; i < NWORKERS; i++) {
		pthread_join(th[i], NULL);
		if (w[i].err[0]) {
			printf("FAIL worker %d: %s\n", i, w[i].err);
			ok = 0;
		} else {
			printf("worker %d: ok iterations=%d\n", i, w[i].iterations);
		}
	}
	printf("threadfork: %s\n", ok ? "ok" : "FAIL");
	return ok ? 0 : 1;
}
