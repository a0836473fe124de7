//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"maps"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/policy"
	"github.com/kbox-go/kbox/internal/seccomp"
)

func TestFilterBytes(t *testing.T) {
	p := []unix.SockFilter{{Code: 0x20, Jt: 1, Jf: 2, K: 0x01020304}}
	b := seccomp.Bytes(p)
	want := []byte{0x20, 0, 1, 2, 4, 3, 2, 1}
	if string(b) != string(want) {
		t.Fatalf("filterBytes = %x, want %x", b, want)
	}
}

// TestMemoryFaults checks that the in-process accessor turns bad guest
// addresses into EFAULT under SetPanicOnFault, as the trap entry points
// run it.
func TestMemoryFaults(t *testing.T) {
	defer setPanicOnFault()()
	m := memory{}
	buf := make([]byte, 8)
	if err := m.Read(0x10, buf); err != unix.EFAULT {
		t.Errorf("read at 0x10: %v, want EFAULT", err)
	}
	if err := m.Write(0x10, buf); err != unix.EFAULT {
		t.Errorf("write at 0x10: %v, want EFAULT", err)
	}
	if _, err := m.ReadString(0x10, 100); err != unix.EFAULT {
		t.Errorf("string at 0x10: %v, want EFAULT", err)
	}
	// A string ending right before an unmapped page reads fine.
	mem, err := unix.Mmap(-1, 0, 2*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := unix.Mprotect(mem[pageSize:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	copy(mem[pageSize-4:], "abc\x00")
	addr := addrOf(mem)
	if s, err := m.ReadString(addr+pageSize-4, 4095); err != nil || s != "abc" {
		t.Errorf("string at a page end: %q, %v", s, err)
	}
	copy(mem[pageSize-3:], "xyz")
	if _, err := m.ReadString(addr+pageSize-3, 4095); err != unix.EFAULT {
		t.Errorf("unterminated string into PROT_NONE: %v, want EFAULT", err)
	}
	copy(mem[pageSize-8:], "wxyz")
	if s, err := m.ReadString(addr+pageSize-8, 2); err != unix.ENAMETOOLONG || s != "" {
		t.Errorf("string longer than max: %q, %v", s, err)
	}
}

// TestRulesMatchTable: the in-process core's own rules and the policy
// table's OwnRule column agree, for every architecture the table knows;
// a rule for a call the table does not give to the core, or the reverse,
// is refused.
func TestRulesMatchTable(t *testing.T) {
	for _, arch := range []*abi.Arch{abi.AMD64, abi.ARM64} {
		pol, err := policy.Resolve(arch, policy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		own := ownRules
		if arch.Name != runtime.GOARCH {
			// The other architecture's own rules this build lacks.
			own = maps.Clone(ownRules)
			for _, name := range otherArchRules {
				own[name] = notInProcess
			}
		}
		if _, err := buildRules(pol, own); err != nil {
			t.Errorf("%s: %v", arch.Name, err)
		}
		extra := maps.Clone(own)
		extra["openat"] = notInProcess
		if _, err := buildRules(pol, extra); err == nil {
			t.Errorf("%s: a rule for openat, which the table sends to the engine, was accepted", arch.Name)
		}
		missing := maps.Clone(own)
		delete(missing, "mmap")
		if _, err := buildRules(pol, missing); err == nil {
			t.Errorf("%s: no rule for mmap, which the table gives to the core, was accepted", arch.Name)
		}
	}
}

// TestFastKindsMatchPolicy: the fast path's C constants are policy.FastKind's.
func TestFastKindsMatchPolicy(t *testing.T) {
	for k, v := range fastKindValues() {
		if int(k) != v {
			t.Errorf("fast kind %d is %d in the C fast path", k, v)
		}
	}
}
