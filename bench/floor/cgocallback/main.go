//go:build cgo && linux

// Command cgocallback is the floor of the Go side of kbox's trap tier: what
// crossing between C and Go costs, measured on an empty function, in ns per
// call. Each result is the median of R rounds of N calls (trapped calls) or
// 10×N calls (the others):
//
//	cgo_call             a Go->C call of an empty C function
//	cgo_callback         a C->Go call of an empty exported Go function from a
//	                     C-created pthread, after the first callback bound a
//	                     Go M to the thread
//	sigsys_cgo_callback  the same callback made from a SIGSYS handler (getppid
//	                     returns SECCOMP_RET_TRAP on that thread) running on
//	                     an alternate stack inside the thread's own stack:
//	                     the time a trapped call takes with the callback
//	                     minus without it, so that sigsys_trap +
//	                     sigsys_cgo_callback is an in-process trap served in Go
//
// It also prints, for reference, the two trapped-call times on the pthread
// (sigsys_trap_pthread, sigsys_trap_pthread_cb) and wall_per_n, the
// program's run time per unit of N, by which the harness sizes N.
//
// Usage: cgocallback [-n N] [-r ROUNDS]
package main

/*
#cgo CFLAGS: -O2 -Wall
#include <stdlib.h>
#include "cgocallback.h"
*/
import "C"

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"syscall"
	"time"
	"unsafe"
)

//export floorGoEmpty
func floorGoEmpty() {}

func main() {
	n := flag.Int64("n", 20000, "trapped calls per round (the other rows make 10×N calls)")
	rounds := flag.Int("r", 5, "rounds; each row prints the median")
	flag.Parse()
	if *n < 1 {
		*n = 1
	}
	*rounds = min(max(*rounds, 1), C.CB_MAX_ROUNDS)
	start := time.Now()

	ncall := 10 * *n
	for i := int64(0); i < ncall/10+1; i++ { // warm-up
		C.floor_empty()
	}
	var call []float64
	for k := 0; k < *rounds; k++ {
		t0 := time.Now()
		for i := int64(0); i < ncall; i++ {
			C.floor_empty()
		}
		call = append(call, float64(time.Since(t0).Nanoseconds())/float64(ncall))
	}

	r := (*C.struct_cb_run)(C.calloc(1, C.sizeof_struct_cb_run))
	defer C.free(unsafe.Pointer(r))
	r.n, r.ncb, r.rounds = C.long(*n), C.long(ncall), C.int(*rounds)
	if en := C.floor_run(r); en != 0 {
		fail("pthread", syscall.Errno(en))
	}
	if r.err != 0 {
		fail(C.GoString(r.what), syscall.Errno(r.err))
	}
	var cb, trap, trapCB, delta []float64
	for k := 0; k < *rounds; k++ {
		cb = append(cb, float64(r.callback_ns[k]))
		trap = append(trap, float64(r.trap_ns[k]))
		trapCB = append(trapCB, float64(r.trap_cb_ns[k]))
		delta = append(delta, float64(r.trap_cb_ns[k]-r.trap_ns[k]))
	}
	fmt.Printf("cgo_call %.1f %d\n", median(call), ncall)
	fmt.Printf("cgo_callback %.1f %d\n", median(cb), ncall)
	fmt.Printf("sigsys_cgo_callback %.1f %d\n", median(delta), *n)
	fmt.Printf("sigsys_trap_pthread %.1f %d\n", median(trap), *n)
	fmt.Printf("sigsys_trap_pthread_cb %.1f %d\n", median(trapCB), *n)
	fmt.Printf("wall_per_n %.1f %d\n", float64(time.Since(start).Nanoseconds())/float64(*n), *n)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "cgocallback: %s: %v\n", what, err)
	os.Exit(1)
}
