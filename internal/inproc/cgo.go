//go:build cgo && linux && (amd64 || arm64)

package inproc

/*
#cgo CFLAGS: -O2 -Wall -fno-stack-protector
#include <stdlib.h>
#include "guest.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/policy"
)

// Available reports whether this build of kbox has the in-process tiers.
func Available() error { return nil }

// kickSignal is the signal kbox sends the guest thread to have pending
// guest signals delivered (KBOX_KICK_SIG, guest.h: not SIGSYS, whose
// seccomp traps a pending SIGSYS kick would swallow).
const kickSignal = unix.Signal(C.KBOX_KICK_SIG)

// kboxTrap is called by the SIGSYS handler on the guest thread after it has
// switched to kbox's thread pointer: a seccomp trap (nr is the syscall) or, with
// kick set, a request to deliver pending guest signals.
//
//export kboxTrap
func kboxTrap(uc unsafe.Pointer, nr C.int, kick C.int) {
	// An external lock makes the runtime create any new thread from its
	// template thread, not by cloning this one (which would inherit the
	// guest's filters).
	runtime.LockOSThread()
	old := debug.SetPanicOnFault(true)
	t := current
	ctx := ucontextAt(uc)
	if kick == 0 {
		t.syscallRecovering(ctx, int(nr))
	}
	t.sig.deliverPending(t, ctx)
	debug.SetPanicOnFault(old)
	runtime.UnlockOSThread()
}

// kboxFault is called by the fault handlers (SIGSEGV, SIGBUS, SIGFPE,
// SIGILL, SIGTRAP) when guest code faulted.
//
//export kboxFault
func kboxFault(uc unsafe.Pointer, sig C.int, si unsafe.Pointer) {
	runtime.LockOSThread()
	old := debug.SetPanicOnFault(true)
	t := current
	t.fault(ucontextAt(uc), int(sig), C.GoBytes(si, 128))
	debug.SetPanicOnFault(old)
	runtime.UnlockOSThread()
}

// kboxStarted is the guest thread's first call into Go, before it enters
// the guest: it binds a Go M to the thread outside any signal handler.
//
//export kboxStarted
func kboxStarted() {
	if en := int(C.kbox_gs.start_err); en == 0 && current.onStart != nil {
		current.onStart()
	}
	current.started <- int(C.kbox_gs.start_err)
}

func installHandlers() error {
	if en := C.kbox_install_handlers(); en != 0 {
		return errnoErr(int(en))
	}
	return nil
}

// startGuest creates the guest thread, which installs filters (in order)
// and enters the guest at entry with stack pointer sp.
func startGuest(entry, sp, hwcap2 uint64, filters [][]byte, landlockFD int) error {
	var a C.struct_kbox_start
	a.landlock_fd = C.int(landlockFD)
	a.entry = C.uint64_t(entry)
	a.sp = C.uint64_t(sp)
	a.hwcap2 = C.uint64_t(hwcap2)
	a.nfilters = C.int(len(filters))
	for i, f := range filters {
		p := C.CBytes(f) // freed never: the kernel copies, but the guest thread reads it after we return
		a.filters[i].len = C.ushort(len(f) / 8)
		a.filters[i].insns = p
	}
	if en := C.kbox_start_guest(&a); en != 0 {
		return errnoErr(int(en))
	}
	return nil
}

// blockingSyscall runs a host syscall that may sleep, interruptible by a
// kick (see guest.c). It returns the raw result (-errno on failure).
func blockingSyscall(nr int, a [6]uint64) int64 {
	return int64(C.kbox_blocking_syscall(C.long(nr), C.long(a[0]), C.long(a[1]), C.long(a[2]), C.long(a[3]), C.long(a[4]), C.long(a[5])))
}

func guestTid() int { return int(C.kbox_guest_tid()) }

// setGuestTP sets the thread pointer (the FS base, TPIDR_EL0) the guest
// resumes with.
func setGuestTP(v uint64) { C.kbox_gs.guest_tp = C.uint64_t(v) }

func guestTP() uint64 { return uint64(C.kbox_gs.guest_tp) }

// armFaultStack makes a fault in kbox code during this trap safe to take
// (see kbox_arm_fault_stack); the memory accessor calls it before touching
// guest memory.
func armFaultStack() {
	// Every guest-memory access calls this; after the first in a trap it
	// is a plain load, not a cgo call.
	if C.kbox_fault_stack_armed == 0 {
		C.kbox_arm_fault_stack()
	}
}

// The rewrite tier's view of the C fast path (fastpath_<arch>.c).

const fdmapSize = C.KBOX_FDMAP_SIZE

func fastPathAddr() uint64 { return uint64(C.kbox_fast_any_addr()) }

// fastSyscallIP is the instruction pointer the kernel reports for the
// fast path's syscall.
func fastSyscallIP() uint64 { return uint64(C.kbox_fast_syscall_ip()) }

func setFastFD(guest, host int) {
	if guest >= 0 && guest < fdmapSize {
		C.kbox_fdmap[guest] = C.int32_t(host + 1)
	}
}

// setFastKinds writes the policy table's Fast column into the fast path's
// table; calls numbered beyond it always trap.
func setFastKinds(pol *policy.Resolved) error {
	for nr, e := range pol.ByNr {
		if e.Fast == policy.FastNone {
			continue
		}
		if nr >= C.KBOX_FAST_NR {
			return fmt.Errorf("fast path: %s (%d) beyond the fast path's table", e.Name, nr)
		}
		C.kbox_fast_kind[nr] = C.uint8_t(e.Fast)
	}
	return nil
}

// fastKindValues are the fast path's kind constants, for the test that
// they match policy.FastKind.
func fastKindValues() map[policy.FastKind]int {
	return map[policy.FastKind]int{policy.FastFD: C.KBOX_FAST_FD, policy.FastFstat: C.KBOX_FAST_FSTAT,
		policy.FastPid: C.KBOX_FAST_PID, policy.FastNative: C.KBOX_FAST_NATIVE}
}

func setFastIdentity(pid int, fstat bool) {
	C.kbox_fast_pid = C.int32_t(pid)
	C.kbox_fast_fstat = 0
	if fstat {
		C.kbox_fast_fstat = 1
	}
}

// enableDirect turns on direct entry: calls from patched sites that the
// fast path does not serve reach kbox without a signal (guest_<arch>.c).
func enableDirect() error {
	if en := C.kbox_direct_init(); en != 0 {
		return errnoErr(int(en))
	}
	C.kbox_direct_on = 1
	return nil
}

// directCalls counts the calls served by direct entry.
func directCalls() uint64 { return uint64(C.kbox_direct_calls) }

func fastCounts() (hits, misses uint64) {
	return uint64(C.kbox_fast_hits), uint64(C.kbox_fast_misses)
}

// syncICache makes patched code [lo, hi) visible to instruction fetch
// (arm64: dc cvau, dsb ish, ic ivau, dsb ish, isb; nothing on x86-64).
func syncICache(lo, hi uint64) { C.kbox_sync_icache(C.uint64_t(lo), C.uint64_t(hi)) }

// callCode runs the code at addr as a C function of three arguments (for
// the rewrite tests).
func callCode(addr uint64, a, b, c int64) int64 {
	p := *(*unsafe.Pointer)(unsafe.Pointer(&addr))
	return int64(C.kbox_test_call3(p, C.long(a), C.long(b), C.long(c)))
}

// The stat cache's C side (statcache.c).

const (
	statCacheSlots = C.KBOX_SC_SLOTS
	statCacheProbe = C.KBOX_SC_PROBE
	statCachePath  = C.KBOX_SC_PATH
)

// setStatCache writes which calls keep the cache's generation (the policy
// table's PathStable column) and the owner translation, then turns the
// cache on or off.
func setStatCache(pol *policy.Resolved, on, translate bool, hostUID, hostGID, guestUID, guestGID uint32) error {
	C.kbox_sc_on = 0
	for nr := range C.kbox_sc_keep {
		C.kbox_sc_keep[nr] = 0
	}
	for nr, e := range pol.ByNr {
		if !e.PathStable {
			continue
		}
		if nr >= C.KBOX_FAST_NR {
			return fmt.Errorf("stat cache: %s (%d) beyond the cache's table", e.Name, nr)
		}
		C.kbox_sc_keep[nr] = 1
	}
	C.kbox_sc_owner.translate = 0
	if translate {
		C.kbox_sc_owner.translate = 1
	}
	C.kbox_sc_owner.host_uid, C.kbox_sc_owner.host_gid = C.uint32_t(hostUID), C.uint32_t(hostGID)
	C.kbox_sc_owner.guest_uid, C.kbox_sc_owner.guest_gid = C.uint32_t(guestUID), C.uint32_t(guestGID)
	if on {
		C.kbox_sc_on = 1
	}
	return nil
}

func statCacheGen() uint64 { return uint64(C.kbox_sc_gen) }

// statCacheSlot reads slot i: its generation, descriptor, hash, and
// whether it holds path (no-follow as given).
func statCacheSlot(i int, path string, nofollow bool) (gen uint64, fd int, hash uint32, same bool) {
	e := &C.kbox_sc[i]
	gen, fd, hash = uint64(e.gen), int(e.fd), uint32(e.hash)
	if int(e.len) != len(path) || (e.nofollow != 0) != nofollow {
		return gen, fd, hash, false
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&e.path[0])), len(path))
	return gen, fd, hash, string(b) == path
}

// setStatCacheSlot fills slot i (gen 0 empties it).
func setStatCacheSlot(i int, gen uint64, fd int, hash uint32, path string, nofollow bool) {
	e := &C.kbox_sc[i]
	e.gen = 0
	e.fd = C.int32_t(fd)
	e.hash = C.uint32_t(hash)
	e.len = C.uint16_t(len(path))
	e.nofollow = 0
	if nofollow {
		e.nofollow = 1
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&e.path[0])), len(e.path)), path)
	e.gen = C.uint64_t(gen)
}

func statCacheCounts() (hits, misses uint64) {
	return uint64(C.kbox_sc_hits), uint64(C.kbox_sc_misses)
}

// statCacheHashC is the C side's hash, for the test that Go's matches.
func statCacheHashC(p string, nofollow bool) uint32 {
	cs := C.CString(p)
	defer C.free(unsafe.Pointer(cs))
	nf := C.uint32_t(0)
	if nofollow {
		nf = 1
	}
	return uint32(C.kbox_sc_hash(cs, C.uint32_t(len(p)), nf))
}

// statFast calls the C cache as the fast path and the trap handler do:
// the call's result, or statCacheMiss.
func statFast(nr int, a0, a1, a2, a3 uint64) int64 {
	return int64(C.kbox_stat_fast(C.long(nr), C.long(a0), C.long(a1), C.long(a2), C.long(a3)))
}

const statCacheMiss = C.KBOX_SC_MISS

func statCacheNote(nr int, a1, a2 uint64) { C.kbox_sc_note(C.long(nr), C.long(a1), C.long(a2)) }
