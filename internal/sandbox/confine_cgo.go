//go:build cgo && linux

package sandbox

/*
#include "confine.h"
*/
import "C"

// Confined reports whether this process was confined by the constructor
// (confine_linux.c) before the Go runtime started.
func Confined() bool { return C.kbox_confined == 1 }

// droppedCaps reports whether the constructor dropped capabilities.
func droppedCaps() bool { return C.kbox_confine_flags&C.KBOX_CONFINE_DROP_CAPS != 0 }

// Supported reports whether this build can confine an in-process child.
func Supported() error { return nil }

// placeholders are confine.h's pid placeholders (a test checks them
// against internal/seccomp's).
func placeholders() (uint32, uint32) { return C.KBOX_SELF_PID, C.KBOX_SELF_NEG_PID }
