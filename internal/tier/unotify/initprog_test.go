package unotify

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestInitProgramUpToDate rebuilds kbox-init from initprog/init.c and
// compares it with the embedded programs, for each architecture whose
// compiler is the one recorded in initprog/COMPILERS (another compiler
// version makes other bytes: the test says so and skips that one).
func TestInitProgramUpToDate(t *testing.T) {
	rec, err := os.ReadFile("initprog/COMPILERS")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(rec)), "\n") {
		arch, want, _ := strings.Cut(line, " ")
		t.Run(arch, func(t *testing.T) {
			cc := map[string]string{"amd64": "x86_64-linux-gnu-gcc", "arm64": "aarch64-linux-gnu-gcc"}[arch]
			ver, err := exec.Command(cc, "--version").Output()
			if err != nil {
				t.Skipf("%s not installed: kbox-init for %s not checked", cc, arch)
			}
			if got, _, _ := strings.Cut(string(ver), "\n"); got != want {
				t.Skipf("%s is %q, kbox-init was built with %q: not compared", cc, got, want)
			}
			dir := t.TempDir()
			if out, err := exec.Command("sh", "initprog/build.sh", dir, arch).CombinedOutput(); err != nil {
				t.Fatalf("build.sh: %v\n%s", err, out)
			}
			built, err := os.ReadFile(filepath.Join(dir, "init_"+arch+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			embedded, err := os.ReadFile("initprog/init_" + arch + ".bin")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(built, embedded) {
				t.Errorf("initprog/init_%s.bin is not built from initprog/init.c: run go generate ./internal/tier/unotify", arch)
			}
		})
	}
}

// TestLaunchConfig decodes launchConfig's output as init.c reads it.
func TestLaunchConfig(t *testing.T) {
	l := Launch{
		Filter:   []unix.SockFilter{{Code: 0x20, Jt: 1, Jf: 2, K: 4}, {Code: 6, K: 0x7fff0000}},
		Path:     "/bin/sh",
		Argv:     []string{"sh", "", "a b"},
		Env:      []string{"A=1"},
		ExecDir:  "/srv/root/tmp",
		KeepCaps: true, Landlock: 6, GuestNproc: 77,
	}
	b, err := launchConfig(l)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(b)
	var magic [4]byte
	r.Read(magic[:])
	u32 := func() uint32 { var v uint32; binary.Read(r, binary.LittleEndian, &v); return v }
	str := func() string { n := u32(); s := make([]byte, n); r.Read(s); return string(s) }
	var nproc uint64
	flags := u32()
	binary.Read(r, binary.LittleEndian, &nproc)
	dir := str()
	filter := str()
	path := str()
	var argv, env []string
	for n := u32(); n > 0; n-- {
		argv = append(argv, str())
	}
	for n := u32(); n > 0; n-- {
		env = append(env, str())
	}
	if string(magic[:]) != "KBI1" || flags != 3 || nproc != 77 || dir != l.ExecDir || path != l.Path ||
		strings.Join(argv, "|") != "sh||a b" || strings.Join(env, "|") != "A=1" || r.Len() != 0 {
		t.Errorf("decoded %q %d %d %q %q %q %q, %d bytes left", magic, flags, nproc, dir, path, argv, env, r.Len())
	}
	wantFilter := []byte{0x20, 0, 1, 2, 4, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0xff, 0x7f}
	if filter != string(wantFilter) {
		t.Errorf("filter bytes % x, want % x", filter, wantFilter)
	}
	l.Env = []string{strings.Repeat("x", initConfigMax)}
	if _, err := launchConfig(l); err == nil {
		t.Errorf("a config beyond %d bytes was accepted", initConfigMax)
	}
}
