// Package inproc owns the in-process core that both in-process tiers run
// on. kbox loads the guest program into its own address space (in a
// confined child process: internal/launch, internal/sandbox), runs it on a
// thread of its own, and receives every guest syscall as SIGSYS from a
// seccomp filter keyed on the instruction pointer (syscalls from kbox's
// own code pass; the guest's trap). The handler (guest.c) switches to
// kbox's thread pointer (the FS base on x86-64, TPIDR_EL0 on arm64) and
// calls into Go, which answers through the rule set the
// policy table gives the core (rules.go: native with descriptors
// translated, the core's own rules, or the dispatch engine shared with the
// seccomp tier), with the guest's descriptors virtualized by
// internal/fdtable, its memory map confined to what it mapped itself
// (mm.go, vmranges.go) and its signals emulated (signals.go).
//
// The trap tier is that core alone. The rewrite tier adds patched syscall
// sites (rewrite.go: arenas and live patching; the planning and encodings
// are internal/rewrite's) and the assembly fast path the trampolines enter
// (fastpath_<arch>.c), which serves the policy table's Fast calls without
// a signal.
//
// The core is shared by x86-64 and arm64; per-architecture files hold
// only the ISA-bound parts: the raw syscall, thread-pointer and entry
// primitives (guest_<arch>.c), the fast path, the ucontext layout and
// register accessors (ucontext_<arch>_unsafe.go), signal frames
// (signals_<arch>.go), arch_prctl (process_amd64.go) and the rewrite
// tier's ISA, arena reach and arm64's cancel-wrapper promotion
// (rewrite_<arch>.go). Builds without cgo, or for another architecture,
// get stub.go: the package then reports the tiers unavailable.
//
// docs/interception-tiers.md describes the design, the hazards of sharing
// one process with the guest and what the core refuses.
package inproc
