/*
 * cgocallback.h - the C half of the cgo callback floor (see main.go).
 */
#ifndef KBOX_FLOOR_CGOCALLBACK_H
#define KBOX_FLOOR_CGOCALLBACK_H

#define CB_MAX_ROUNDS 64

/* cb_run is one measurement on a C-created pthread: the inputs, then per
 * round the time of one call, in ns. */
struct cb_run {
	long n;      /* trapped getppid calls per round and mode */
	long ncb;    /* plain callbacks per round */
	int rounds;  /* at most CB_MAX_ROUNDS */
	double callback_ns[CB_MAX_ROUNDS]; /* C->Go callback, normal stack */
	double trap_ns[CB_MAX_ROUNDS];     /* trapped getppid, handler sets the result only */
	double trap_cb_ns[CB_MAX_ROUNDS];  /* the same, the handler also calls Go */
	int err;          /* errno of the failed step, 0 if none */
	const char *what; /* the failed step */
};

/* floor_empty is the empty C function the Go->C row calls. */
void floor_empty(void);

/* floor_run creates the measuring pthread, waits for it and returns
 * pthread_create's or pthread_join's error (r->err has the thread's). */
int floor_run(struct cb_run *r);

#endif
