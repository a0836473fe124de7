//go:build linux && amd64

package seccomp

import (
	"math/rand"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

const kernelChildEnv = "KBOX_SECCOMP_BPF_KERNEL_CHILD"

// TestCompileKernel installs a compiled 300-rule filter (with long jumps) in
// a child process and checks that the real kernel accepts it and agrees with
// the reference evaluator.  The rules only cover unassigned syscall numbers
// (600..999) and use ERRNO actions, so the outcome is visible as the errno
// of a raw syscall; foreign (x32) numbers get EXDEV.
func TestCompileKernel(t *testing.T) {
	if os.Getenv(kernelChildEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCompileKernel$", "-test.v")
		cmd.Env = append(os.Environ(), kernelChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		if strings.Contains(string(out), "SKIP:") {
			t.Skipf("child: %s", out)
		}
		if err != nil {
			t.Fatalf("child failed: %v\n%s", err, out)
		}
		t.Logf("child:\n%s", out)
		return
	}

	r := rand.New(rand.NewSource(7))
	act := func() Action {
		if r.Intn(4) == 0 {
			return allow
		}
		return Action{Kind: ActErrno, Errno: uint16(1 + r.Intn(130))}
	}
	p := Program{AuditArch: auditArchX86_64, BadArch: errno(unix.EXDEV), Default: allow}
	for i, nr := range r.Perm(400)[:300] {
		rule := Rule{Nr: 600 + nr, Action: act()}
		if i%2 == 0 {
			for range 1 + r.Intn(5) {
				c := randCond(r)
				c.Action = act()
				rule.Conds = append(rule.Conds, c)
			}
		}
		p.Rules = append(p.Rules, rule)
	}
	prog := mustCompile(t, p)
	t.Logf("%d instructions, %d JA trampolines", len(prog), countJA(prog))

	// The filter applies to this thread only (no TSYNC).
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		t.Skipf("SKIP: PR_SET_NO_NEW_PRIVS: %v", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	switch e {
	case 0:
	case unix.ENOSYS, unix.EPERM, unix.EACCES:
		t.Skipf("SKIP: seccomp: %v", e)
	default:
		t.Fatalf("kernel rejects the filter: %v", e)
	}

	byNr := map[int]Rule{}
	for _, rule := range p.Rules {
		byNr[rule.Nr] = rule
	}
	nrs := []int32{-1, 0x40000000 | unix.SYS_GETPID}
	for nr := int32(590); nr < 1010; nr++ {
		nrs = append(nrs, nr)
	}
	n := 0
	for _, nr := range nrs {
		argsets := [][6]uint64{{}}
		for _, c := range byNr[int(nr)].Conds {
			a := matchingArgs(r, c)
			argsets = append(argsets, a)
			a[c.Arg] ^= c.Mask & -c.Mask
			argsets = append(argsets, a)
		}
		for _, a := range argsets {
			d := Data{Nr: nr, Arch: auditArchX86_64, Args: a}
			want := refEval(p, d)
			if got := sim(t, prog, d); got != want {
				t.Fatalf("%+v: Simulate %#x, reference %#x", d, got, want)
			}
			wantErr := unix.ENOSYS // allowed, but no such syscall
			if want&0xffff0000 == retErrno {
				wantErr = syscall.Errno(want & 0xffff)
			}
			_, _, e := syscall.RawSyscall6(uintptr(int64(nr)), uintptr(a[0]), uintptr(a[1]),
				uintptr(a[2]), uintptr(a[3]), uintptr(a[4]), uintptr(a[5]))
			if e != wantErr {
				t.Errorf("nr %#x args %#x: kernel says %v (%d), want %v (%d)", nr, a, e, int(e), wantErr, int(wantErr))
			}
			n++
		}
	}
	t.Logf("%d syscalls checked against the kernel", n)
}
