//go:build cgo && linux

/*
 * The C half of the cgo callback floor: a C-created pthread calls an empty
 * exported Go function, first from its own stack, then from a SIGSYS
 * handler (getppid returns SECCOMP_RET_TRAP from a filter installed on
 * this thread only) running on an alternate stack carved from the
 * thread's own stack, as kbox's trap tier does: the Go runtime then finds
 * the handler's frames inside the g0 stack bounds it took from
 * pthread_getattr_np on the thread's first callback.
 */
#include "../floor.h"

#include <pthread.h>

#include "cgocallback.h"
#include "_cgo_export.h"

#define ALTSTACK_SIZE (64 * 1024)
/* The trapped calls alternate between the two handler modes in chunks of
 * this many, so that drift in the machine's load hits both alike. */
#define CHUNK 256

void floor_empty(void)
{
	__asm__ volatile("" ::: "memory");
}

static volatile int call_go;

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)si;
	if (call_go)
		floorGoEmpty();
	set_result(ctx, 0);
}

static int trapped(long n)
{
	for (long i = 0; i < n; i++)
		if (syscall(SYS_getppid) != 0)
			return -1;
	return 0;
}

static void *measure(void *arg)
{
	struct cb_run *r = arg;
	char *alt = __builtin_alloca(ALTSTACK_SIZE);
	memset(alt, 0, ALTSTACK_SIZE);
	stack_t ss = {.ss_sp = alt, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
	if (sigaltstack(&ss, NULL) != 0) {
		r->err = errno;
		r->what = "sigaltstack";
		return NULL;
	}
	/* The first callback binds a Go M to this thread (and adopts the
	 * alternate stack as its signal stack); it is not measured. */
	floorGoEmpty();
	for (long i = 0; i < r->ncb / 10 + 1; i++)
		floorGoEmpty();
	for (int k = 0; k < r->rounds; k++) {
		double t0 = now_ns();
		for (long i = 0; i < r->ncb; i++)
			floorGoEmpty();
		r->callback_ns[k] = (now_ns() - t0) / (double)r->ncb;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	/* As in kbox: only synchronous signals while the handler runs. An
	 * asynchronous one (the Go runtime's SIGURG) arriving while the
	 * callback runs on its goroutine stack would be delivered at the top
	 * of the alternate stack, over this handler's own frame. */
	sigfillset(&sa.sa_mask);
	sigdelset(&sa.sa_mask, SIGSEGV);
	sigdelset(&sa.sa_mask, SIGBUS);
	sigdelset(&sa.sa_mask, SIGFPE);
	sigdelset(&sa.sa_mask, SIGILL);
	sigdelset(&sa.sa_mask, SIGTRAP);
	if (sigaction(SIGSYS, &sa, NULL) != 0) {
		r->err = errno;
		r->what = "sigaction(SIGSYS)";
		return NULL;
	}
	install_filter(SYS_getppid, SECCOMP_RET_TRAP, 0); /* this thread only */
	for (int m = 0; m < 2; m++) { /* warm-up */
		call_go = m;
		if (trapped(r->n / 10 + 1) != 0)
			goto untrapped;
	}
	for (int k = 0; k < r->rounds; k++) {
		double t[2] = {0, 0};
		for (long done = 0; done < r->n; done += CHUNK) {
			long c = r->n - done < CHUNK ? r->n - done : CHUNK;
			for (int m = 0; m < 2; m++) {
				call_go = (m + done / CHUNK) % 2; /* alternate which goes first */
				double t0 = now_ns();
				if (trapped(c) != 0)
					goto untrapped;
				t[call_go] += now_ns() - t0;
			}
		}
		r->trap_ns[k] = t[0] / (double)r->n;
		r->trap_cb_ns[k] = t[1] / (double)r->n;
	}
	return NULL;
untrapped:
	r->err = EINVAL;
	r->what = "getppid was not trapped";
	return NULL;
}

int floor_run(struct cb_run *r)
{
	pthread_t t;
	int err = pthread_create(&t, NULL, measure, r);
	if (err == 0)
		err = pthread_join(t, NULL);
	return err;
}
