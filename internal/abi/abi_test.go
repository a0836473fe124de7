package abi

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
)

func TestSpotValues(t *testing.T) {
	cases := []struct {
		a    *Arch
		name string
		nr   int
	}{
		{AMD64, "read", 0},
		{AMD64, "write", 1},
		{AMD64, "open", 2},
		{AMD64, "stat", 4},
		{AMD64, "fstat", 5},
		{AMD64, "pread64", 17},
		{AMD64, "execve", 59},
		{AMD64, "newfstatat", 262},
		{AMD64, "clone3", 435},
		{AMD64, "openat2", 437},
		{AMD64, "fchmodat2", 452},
		{ARM64, "openat", 56},
		{ARM64, "read", 63},
		{ARM64, "newfstatat", 79},
		{ARM64, "fstat", 80},
		{ARM64, "clone", 220},
		{ARM64, "execve", 221},
		{ARM64, "clone3", 435},
		{ARM64, "openat2", 437},
		{ARM64, "fchmodat2", 452},
	}
	for _, c := range cases {
		got, ok := c.a.Nr(c.name)
		if !ok || got != c.nr {
			t.Errorf("%s.Nr(%q) = %d, %v; want %d, true", c.a.Name, c.name, got, ok, c.nr)
		}
		if got := c.a.MustNr(c.name); got != c.nr {
			t.Errorf("%s.MustNr(%q) = %d; want %d", c.a.Name, c.name, got, c.nr)
		}
	}
}

func TestAuditArch(t *testing.T) {
	if AMD64.Name != "amd64" || AMD64.AuditArch != 0xc000003e {
		t.Errorf("AMD64 = %q %#x", AMD64.Name, AMD64.AuditArch)
	}
	if ARM64.Name != "arm64" || ARM64.AuditArch != 0xc00000b7 {
		t.Errorf("ARM64 = %q %#x", ARM64.Name, ARM64.AuditArch)
	}
}

// legacyNames are the pre-*at syscalls kbox must handle on amd64. None of
// them exists in the asm-generic table arm64 uses.
var legacyNames = []string{
	"open", "creat", "stat", "lstat", "access", "readlink", "mkdir", "rmdir",
	"unlink", "rename", "link", "symlink", "chmod", "chown", "lchown", "utime",
	"utimes", "futimesat", "mknod", "fork", "vfork", "pipe", "dup2", "select",
	"poll", "epoll_create", "eventfd", "signalfd", "inotify_init", "getdents",
	"alarm", "pause", "time", "arch_prctl", "iopl", "ioperm", "modify_ldt",
}

func TestAMD64Legacy(t *testing.T) {
	for _, n := range legacyNames {
		if _, ok := AMD64.Nr(n); !ok {
			t.Errorf("amd64 lacks legacy syscall %q", n)
		}
	}
}

func TestARM64NoLegacy(t *testing.T) {
	for _, n := range legacyNames {
		if nr, ok := ARM64.Nr(n); ok {
			t.Errorf("arm64 has unexpected legacy syscall %q = %d", n, nr)
		}
	}
	// Not syscalls, must not leak in from x/sys.
	for _, n := range []string{"arch_specific_syscall", "fstatat"} {
		if nr, ok := ARM64.Nr(n); ok {
			t.Errorf("arm64 has bogus entry %q = %d", n, nr)
		}
	}
}

func TestTablesWellFormed(t *testing.T) {
	for _, a := range []*Arch{AMD64, ARM64} {
		if len(a.Syscalls) < 300 {
			t.Errorf("%s: only %d syscalls", a.Name, len(a.Syscalls))
		}
		seen := map[int]string{}
		for name, nr := range a.Syscalls {
			if name == "" || name != strings.ToLower(name) {
				t.Errorf("%s: bad name %q", a.Name, name)
			}
			if nr < 0 {
				t.Errorf("%s: %q has negative number %d", a.Name, name, nr)
			}
			if prev, ok := seen[nr]; ok {
				t.Errorf("%s: number %d used by both %q and %q", a.Name, nr, prev, name)
			}
			seen[nr] = name
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, a := range []*Arch{AMD64, ARM64} {
		for name, nr := range a.Syscalls {
			if got := a.SyscallName(nr); got != name {
				t.Errorf("%s.SyscallName(%d) = %q; want %q", a.Name, nr, got, name)
			}
			if got, ok := a.Nr(a.SyscallName(nr)); !ok || got != nr {
				t.Errorf("%s.Nr(SyscallName(%d)) = %d, %v", a.Name, nr, got, ok)
			}
		}
	}
}

func TestUnknown(t *testing.T) {
	for _, a := range []*Arch{AMD64, ARM64} {
		for _, nr := range []int{-1, 400, 100000, a.MaxNr() + 1} {
			want := fmt.Sprintf("syscall_%d", nr)
			if got := a.SyscallName(nr); got != want {
				t.Errorf("%s.SyscallName(%d) = %q; want %q", a.Name, nr, got, want)
			}
		}
		if _, ok := a.Nr("no_such_syscall"); ok {
			t.Errorf("%s.Nr(no_such_syscall) reported ok", a.Name)
		}
	}
	// arm64's reserved arch-specific range 244..259 is empty.
	if got := ARM64.SyscallName(244); got != "syscall_244" {
		t.Errorf("ARM64.SyscallName(244) = %q", got)
	}
}

func TestMustNrPanics(t *testing.T) {
	defer func() {
		r := recover()
		msg, _ := r.(string)
		if !strings.Contains(msg, `"open"`) || !strings.Contains(msg, "arm64") {
			t.Errorf("panic = %v; want message naming syscall and arch", r)
		}
	}()
	ARM64.MustNr("open")
}

func TestNumbersAndMax(t *testing.T) {
	for _, a := range []*Arch{AMD64, ARM64} {
		nums := a.Numbers()
		if len(nums) != len(a.Syscalls) {
			t.Fatalf("%s: %d numbers for %d syscalls", a.Name, len(nums), len(a.Syscalls))
		}
		if !sort.IntsAreSorted(nums) {
			t.Errorf("%s: Numbers not sorted", a.Name)
		}
		if a.MaxNr() != nums[len(nums)-1] {
			t.Errorf("%s: MaxNr = %d, last number %d", a.Name, a.MaxNr(), nums[len(nums)-1])
		}
		if a.MaxNr() < 452 {
			t.Errorf("%s: MaxNr = %d, want >= 452 (fchmodat2)", a.Name, a.MaxNr())
		}
		// The caller owns the slice.
		nums[0] = -42
		if a.Numbers()[0] == -42 {
			t.Errorf("%s: Numbers returns shared storage", a.Name)
		}
	}
}

func TestHost(t *testing.T) {
	switch runtime.GOARCH {
	case "amd64":
		if Host() != AMD64 {
			t.Error("Host() != AMD64")
		}
	case "arm64":
		if Host() != ARM64 {
			t.Error("Host() != ARM64")
		}
	default:
		defer func() {
			if recover() == nil {
				t.Error("Host() did not panic on unsupported arch")
			}
		}()
		Host()
	}
}

func TestConcurrentIndex(t *testing.T) {
	// A fresh Arch so the lazy index is built under contention (go test -race).
	a := &Arch{Name: "amd64", AuditArch: AMD64.AuditArch, Syscalls: AMD64.Syscalls}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a.SyscallName(0) != "read" || a.MaxNr() != AMD64.MaxNr() || len(a.Numbers()) != len(a.Syscalls) {
				t.Error("inconsistent concurrent read")
			}
		}()
	}
	wg.Wait()
}
