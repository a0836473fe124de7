// Shared between the constructor (confine_linux.c) and Go (confine_cgo.go).
#ifndef KBOX_CONFINE_H
#define KBOX_CONFINE_H

// argv[1] of a kbox process that must confine itself before Go starts.
#define KBOX_CONFINE_MARKER "__kbox_inproc__"

// Bits of the "flags" field.
#define KBOX_CONFINE_DROP_CAPS 1

// The capabilities a root-started child keeps: CAP_CHOWN, CAP_DAC_OVERRIDE,
// CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID (see drop_capabilities).
#define KBOX_FILE_CAPS 0x1fu

// Placeholders for the process's own pid and its negation in the filter
// (internal/seccomp SelfPID, SelfNegPID; checked equal by a Go test).
#define KBOX_SELF_PID 0x7ffbf00d
#define KBOX_SELF_NEG_PID 0x7ffbf00e

// BPF_MAXINSNS.
#define KBOX_MAX_FILTER 4096

extern int kbox_confined;
extern int kbox_confine_flags;

#endif
