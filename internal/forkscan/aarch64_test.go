package forkscan

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kbox-go/kbox/internal/vfs"
)

// AArch64 encodings for the synthetic programs.
const (
	a64Ret  = 0xd65f03c0
	a64Nop  = 0xd503201f
	a64Svc0 = 0xd4000001
)

func a64MovzX8(nr uint32) uint32   { return 0xd2800008 | nr<<5 }
func a64MovzX6(nr uint32) uint32   { return 0xd2800006 | nr<<5 }
func a64MovReg(d, m uint32) uint32 { return 0xaa0003e0 | m<<16 | d }
func a64B(insns int32) uint32      { return 0x14000000 | uint32(insns)&0x3ffffff }
func a64BL(insns int32) uint32     { return 0x94000000 | uint32(insns)&0x3ffffff }
func a64CbzX0(insns int32) uint32  { return 0xb4000000 | (uint32(insns)&0x7ffff)<<5 }

func a64(insns ...uint32) []byte {
	b := make([]byte, 4*len(insns))
	for i, in := range insns {
		binary.LittleEndian.PutUint32(b[4*i:], in)
	}
	return b
}

// a64Cancel is a cancellation point calling a validated
// __syscall_cancel-shaped function (four argument moves, then svc) with
// the number in x6.
func a64Cancel(nr uint32) []byte {
	return a64(a64MovzX6(nr), a64BL(2), a64Ret,
		a64MovReg(8, 6), a64MovReg(0, 1), a64MovReg(1, 2), a64MovReg(2, 3), a64MovReg(3, 4), a64Svc0, a64Ret)
}

// TestSyntheticARM64: the wrapper forms AArch64 code uses, and what
// hides a number, in AArch64 ELF files scanned on any host.
func TestSyntheticARM64(t *testing.T) {
	for _, tc := range []struct {
		name    string
		code    []byte
		sites   []wantSite
		unknown int
	}{
		{"clone wrapper", a64(a64MovzX8(220), a64Svc0, a64Ret),
			[]wantSite{{code0, code0 + 4, 220, Pair, false, "clone"}}, 0},
		{"clone3 after argument moves", a64(a64MovzX8(435), a64MovReg(0, 1), a64Nop, a64Svc0, a64Ret),
			[]wantSite{{code0, code0 + 12, 435, Traced, false, "clone3"}}, 0},
		{"w8 form", a64(0x52801b88, a64Svc0, a64Ret),
			[]wantSite{{code0, code0 + 4, 220, Pair, false, "clone"}}, 0},
		{"svc with an immediate", a64(a64MovzX8(221), 0xd4001001, a64Ret),
			[]wantSite{{code0, code0 + 4, 221, Pair, false, "execve"}}, 0},
		{"not a fork", a64(a64MovzX8(172), a64Svc0, a64Ret), nil, 0},
		// x86-64's fork number is an ordinary call here (57: close).
		{"x86 numbers mean nothing", a64(a64MovzX8(57), a64Svc0, a64MovzX8(58), a64Svc0, a64Ret), nil, 0},
		{"number from a register", a64(a64MovReg(8, 0), a64Svc0, a64Ret), nil, 1},
		{"x8 loaded by a pair", a64(a64MovzX8(220), 0xa94023e7 /* ldp x7, x8, [sp] */, a64Svc0, a64Ret), nil, 1},
		{"x8 rewritten", a64(a64MovzX8(220), a64MovReg(8, 1), a64Svc0, a64Ret), nil, 1},
		{"branch between", a64(a64MovzX8(220), a64B(1), a64Svc0, a64Ret), nil, 1},
		{"movz too far", a64(a64MovzX8(220), a64Nop, a64Nop, a64Nop, a64Nop, a64Svc0), nil, 1},
		{"branch into the window of another call", a64(a64CbzX0(3), a64MovzX8(63), a64Nop, a64Svc0, a64Ret), nil, 1},
		// A branch into a fork's window only adds paths: still a site.
		{"branch into the window of a clone", a64(a64CbzX0(3), a64MovzX8(220), a64Nop, a64Svc0, a64Ret),
			[]wantSite{{code0 + 4, code0 + 12, 220, Traced, false, "clone"}}, 0},
		// The cancellation function's own svc takes the number from x6.
		{"cancel call to clone", a64Cancel(220),
			[]wantSite{{code0, code0 + 4, 220, Cancel, false, "clone"}}, 1},
		{"cancel call to close", a64Cancel(57), nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testELF{code: tc.code, sections: true, machine: elf.EM_AARCH64}.bytes()
			r, err := Scan(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if r.Machine != elf.EM_AARCH64 {
				t.Errorf("machine %v", r.Machine)
			}
			checkSites(t, r.ForkSites, tc.sites)
			if r.UnknownSites != tc.unknown {
				t.Errorf("unknown sites %d, want %d", r.UnknownSites, tc.unknown)
			}
			if yes, why := r.CreatesProcesses(); yes != (len(tc.sites) > 0) {
				t.Errorf("CreatesProcesses = %v (%s)", yes, why)
			}
		})
	}
	// Code that does not start on an instruction boundary: the bytes
	// before the first aligned instruction are undecodable, the rest is
	// read.
	b := testELF{pre: []byte{0xff, 0xff}, code: a64(a64MovzX8(220), a64Svc0, a64Ret), sections: true, machine: elf.EM_AARCH64}.bytes()
	r, err := Scan(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if r.Undecodable == 0 {
		t.Errorf("misaligned code: undecodable %d", r.Undecodable)
	}
}

// TestARM64Programs scans AArch64 programs built with Debian's cross
// compiler: a static glibc program is clean, one that forks or starts a
// thread is not, and Checker{Arch: "arm64"} follows a dynamic program's
// libraries in an AArch64 layout (Debian's /lib/aarch64-linux-gnu, here
// the cross toolchain's libraries mounted there).
func TestARM64Programs(t *testing.T) {
	const gcc = "aarch64-linux-gnu-gcc"
	if _, err := exec.LookPath(gcc); err != nil {
		t.Skip(gcc + " not found (Debian's gcc-aarch64-linux-gnu; scripts/test.sh installs it)")
	}
	crossLibs := "/usr/aarch64-linux-gnu/lib"
	if _, err := os.Stat(filepath.Join(crossLibs, "ld-linux-aarch64.so.1")); err != nil {
		t.Skip("no AArch64 glibc under " + crossLibs)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name, src string
		creates   bool
		reason    string
	}{
		{"hello", "int main(void) { return 0; }\n", false, ""},
		{"fork", "#include <unistd.h>\nint main(void) { return fork(); }\n", true, "clone site"},
		{"thread", "#include <pthread.h>\nstatic void *f(void *a) { return a; }\nint main(void) { pthread_t t; return pthread_create(&t, 0, f, 0); }\n", true, "clone site"},
	} {
		p := cc(t, gcc, dir, "static/"+tc.name, tc.src, "-static")
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		r, err := Scan(f, st.Size())
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		yes, why := r.CreatesProcesses()
		t.Logf("static %s: %v (%s); %d unknown sites in %d bytes", tc.name, yes, why, r.UnknownSites, r.CodeBytes)
		if yes != tc.creates || !bytes.Contains([]byte(why), []byte(tc.reason)) {
			t.Errorf("static %s: CreatesProcesses = %v (%s), want %v (%q)", tc.name, yes, why, tc.creates, tc.reason)
		}
	}

	// A dynamic chain, in a guest laid out as an AArch64 Debian root.
	root := t.TempDir()
	for _, d := range []string{"lib/aarch64-linux-gnu", "opt/fs", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ns := vfs.NewNamespace()
	for _, m := range []struct{ at, host string }{{"/", root}, {"/lib", crossLibs}, {"/opt/fs", dir}} {
		if err := ns.Add(m.at, m.host, m.at != "/opt/fs", vfs.KindBind); err != nil {
			t.Fatal(err)
		}
	}
	ns.Seal()
	t.Cleanup(ns.Close)
	c := &Checker{Arch: "arm64"}
	build := func(src2 string) {
		cc(t, gcc, dir, "lib/liblevel2.so", src2, "-shared", "-fPIC")
		cc(t, gcc, dir, "lib/liblevel1.so", srcLevel1, "-shared", "-fPIC", "-llevel2", "-Wl,--enable-new-dtags,-rpath,$ORIGIN")
		cc(t, gcc, dir, "bin/prog", srcMain, "-llevel1", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib")
	}
	build(srcLevel2Clean)
	checkVerdict(t, ns, c, "/opt/fs/bin/prog", nil, NoProcesses)
	build(srcLevel2Fork)
	checkVerdict(t, ns, c, "/opt/fs/bin/prog", nil, CreatesProcesses, "liblevel2.so", "imports fork")
	// The host's (x86-64) programs are another architecture's.
	checkVerdict(t, ns, c, "/opt/fs/static/hello", nil, NoProcesses)
	if hostExe, err := os.Executable(); err == nil && hostArchIsX86() {
		if err := os.Link(hostExe, filepath.Join(dir, "x86prog")); err != nil {
			data, _ := os.ReadFile(hostExe)
			os.WriteFile(filepath.Join(dir, "x86prog"), data, 0o755) //nolint:errcheck
		}
		checkVerdict(t, ns, c, "/opt/fs/x86prog", nil, Unknown, "not an AArch64 ELF file")
	}
}

func hostArchIsX86() bool { return hostSpec() == amd64Spec }
