//go:build cgo && linux && amd64

package inproc

import (
	"testing"
	"unsafe"
)

func TestUcontextLayout(t *testing.T) {
	if got := unsafe.Sizeof(ucontext{}); got != sizeofUcontext {
		t.Fatalf("sizeof(ucontext) = %d, want %d", got, sizeofUcontext)
	}
	// Offsets the kernel's struct ucontext has on x86-64.
	var u ucontext
	for _, c := range []struct {
		name string
		off  uintptr
		want uintptr
	}{
		{"uc_stack", unsafe.Offsetof(u.SsSp), 16},
		{"gregs", unsafe.Offsetof(u.Gregs), 40},
		{"fpregs", unsafe.Offsetof(u.Fpregs), 224},
		{"uc_sigmask", unsafe.Offsetof(u.Sigmask), 296},
	} {
		if c.off != c.want {
			t.Errorf("offset of %s = %d, want %d", c.name, c.off, c.want)
		}
	}
}

// otherArchRules are the own rules only the other architecture's build
// has (TestRulesMatchTable).
var otherArchRules = []string(nil)
