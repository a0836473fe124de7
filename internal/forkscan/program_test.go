package forkscan

import (
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kbox-go/kbox/internal/vfs"
)

// progRoot is a guest namespace for Program tests: the host's / read-only
// (its glibc, ld.so and /etc/ld.so.cache) with dir, where the test builds
// its programs and libraries, mounted at /opt/fs.
func progRoot(t testing.TB, dir string) *vfs.Namespace {
	t.Helper()
	ns := vfs.NewNamespace()
	if err := ns.Add("/", "/", true, vfs.KindBind); err != nil {
		t.Fatal(err)
	}
	if err := ns.Add("/opt/fs", dir, false, vfs.KindBind); err != nil {
		t.Fatal(err)
	}
	ns.Seal()
	t.Cleanup(ns.Close)
	return ns
}

// cc compiles C source src with compiler cc and args into dir/out.
func cc(t testing.TB, compiler, dir, out, src string, args ...string) string {
	t.Helper()
	c := filepath.Join(dir, "src-"+strings.ReplaceAll(out, "/", "_")+".c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, out)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(compiler, append(append([]string{"-O1", "-o", dst, c}, args...), "-L"+filepath.Join(dir, "lib"))...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", compiler, out, err, b)
	}
	return dst
}

func needGCC(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not found")
	}
	if _, err := os.Stat("/lib64/ld-linux-x86-64.so.2"); err != nil {
		t.Skip("no glibc loader on this host")
	}
}

const (
	srcLevel2Fork  = "#include <unistd.h>\nint level2(void) { return fork(); }\n"
	srcLevel2Clean = "int level2(void) { return 2; }\n"
	srcLevel1      = "int level2(void);\nint level1(void) { return level2() + 1; }\n"
	srcMain        = "int level1(void);\nint main(void) { return level1(); }\n"
	// A library whose only fork is its own raw syscall: no import says so.
	srcRawFork = "int level2(void) { long r; __asm__ volatile (\"mov $57, %%eax\\n\\tsyscall\" : \"=a\"(r) :: \"rcx\", \"r11\", \"memory\"); return (int)r; }\n"
	srcDlopen  = "#include <dlfcn.h>\nint level2(void) { return dlopen(\"libm.so.6\", RTLD_NOW) != 0; }\n"
	srcThread  = "#include <pthread.h>\nstatic void *f(void *a) { return a; }\nint level2(void) { pthread_t t; return pthread_create(&t, 0, f, 0); }\n"
	srcSpawn   = "#include <stdlib.h>\nint level2(void) { return system(\"true\"); }\n"
)

// buildChain builds dir/bin/prog -> dir/lib/liblevel1.so -> liblevel2.so
// (level2 from src2), found through DT_RUNPATH $ORIGIN entries, and
// returns the guest path of the program.
func buildChain(t testing.TB, dir, src2 string) string {
	t.Helper()
	cc(t, "gcc", dir, "lib/liblevel2.so", src2, "-shared", "-fPIC")
	cc(t, "gcc", dir, "lib/liblevel1.so", srcLevel1, "-shared", "-fPIC", "-llevel2", "-Wl,--enable-new-dtags,-rpath,$ORIGIN")
	cc(t, "gcc", dir, "bin/prog", srcMain, "-llevel1", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib")
	return "/opt/fs/bin/prog"
}

func checkVerdict(t *testing.T, ns *vfs.Namespace, c *Checker, prog string, env []string, want Verdict, wantIn ...string) {
	t.Helper()
	v, why := c.Program(ns, "/", prog, env)
	t.Logf("%s: %v: %s", prog, v, why)
	if v != want {
		t.Errorf("Program(%s) = %v (%s), want %v", prog, v, why, want)
	}
	for _, w := range wantIn {
		if !strings.Contains(why, w) {
			t.Errorf("reason %q does not mention %q", why, w)
		}
	}
}

// TestProgramLibraries checks that a fork, a thread or a dlopen two
// DT_NEEDED levels down decides the verdict.
func TestProgramLibraries(t *testing.T) {
	needGCC(t)
	base := t.TempDir()
	buildChain(t, base, srcLevel2Clean)
	for _, tc := range []struct {
		name   string
		src2   string
		want   Verdict
		wantIn []string
	}{
		{"clean", srcLevel2Clean, NoProcesses, []string{"no fork-family sites in the program and the 4 objects it loads"}},
		{"fork-import", srcLevel2Fork, CreatesProcesses, []string{"liblevel2.so", "needed by /opt/fs/lib/liblevel1.so", "imports fork"}},
		{"pthread", srcThread, CreatesProcesses, []string{"liblevel2.so", "imports pthread_create"}},
		{"system", srcSpawn, CreatesProcesses, []string{"liblevel2.so", "imports system"}},
		{"raw-fork-syscall", srcRawFork, CreatesProcesses, []string{"liblevel2.so", "fork site at 0x"}},
		{"dlopen", srcDlopen, Unknown, []string{"liblevel2.so", "imports dlopen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The program and liblevel1 are the same in every case.
			dir := t.TempDir()
			for _, f := range []string{"bin/prog", "lib/liblevel1.so"} {
				b, err := os.ReadFile(filepath.Join(base, f))
				if err != nil {
					t.Fatal(err)
				}
				os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cc(t, "gcc", dir, "lib/liblevel2.so", tc.src2, "-shared", "-fPIC")
			prog := "/opt/fs/bin/prog"
			ns := progRoot(t, dir)
			checkVerdict(t, ns, &Checker{}, prog, nil, tc.want, tc.wantIn...)
			if v, _ := (&Checker{}).Program(ns, "/", prog, nil); v.InProcess() != (tc.want == NoProcesses) {
				t.Errorf("InProcess = %v", v.InProcess())
			}
		})
	}
}

// TestProgramSearch covers how libraries are found: a missing one, one
// found only through LD_LIBRARY_PATH, LD_PRELOAD, another architecture's
// file first in the path, DT_RPATH of the loading object's loader, and
// the dynamic loader run as a program.
func TestProgramSearch(t *testing.T) {
	needGCC(t)
	dir := t.TempDir()
	prog := buildChain(t, dir, srcLevel2Clean)
	ns := progRoot(t, dir)
	c := &Checker{}
	checkVerdict(t, ns, c, prog, nil, NoProcesses)

	// A forking liblevel2.so in an LD_LIBRARY_PATH directory: searched
	// before DT_RUNPATH, so the loader would take it.
	cc(t, "gcc", dir, "alt/liblevel2.so", srcLevel2Fork, "-shared", "-fPIC")
	checkVerdict(t, ns, c, prog, []string{"LD_LIBRARY_PATH=/opt/fs/alt"}, CreatesProcesses, "/opt/fs/alt/liblevel2.so", "imports fork")
	// An empty LD_LIBRARY_PATH entry is the working directory.
	v, why := c.Program(ns, "/opt/fs/alt", prog, []string{"LD_LIBRARY_PATH=/nonexistent:"})
	if v != CreatesProcesses {
		t.Errorf("LD_LIBRARY_PATH with an empty entry from /opt/fs/alt: %v, %s", v, why)
	}
	// LD_PRELOAD, by path and by name.
	checkVerdict(t, ns, c, prog, []string{"LD_PRELOAD=/opt/fs/alt/liblevel2.so"}, CreatesProcesses, "preloaded", "imports fork")
	checkVerdict(t, ns, c, prog, []string{"LD_AUDIT=/opt/fs/alt/liblevel2.so"}, Unknown, "LD_AUDIT")

	// Another machine's file of the same name earlier in the path is
	// skipped, as the loader skips it.
	b, err := os.ReadFile(filepath.Join(dir, "alt/liblevel2.so"))
	if err != nil {
		t.Fatal(err)
	}
	b[4] = 1 // ELFCLASS32
	if err := os.WriteFile(filepath.Join(dir, "alt/liblevel2.so"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	checkVerdict(t, ns, c, prog, []string{"LD_LIBRARY_PATH=/opt/fs/alt"}, NoProcesses)
	// A file that is not ELF at all is not skipped by glibc: unknown.
	if err := os.WriteFile(filepath.Join(dir, "alt/liblevel2.so"), []byte("INPUT(-lc)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkVerdict(t, ns, c, prog, []string{"LD_LIBRARY_PATH=/opt/fs/alt"}, Unknown, "not a loadable object")

	// The library two levels down is gone.
	if err := os.Remove(filepath.Join(dir, "lib/liblevel2.so")); err != nil {
		t.Fatal(err)
	}
	checkVerdict(t, ns, c, prog, nil, Unknown, "liblevel2.so (needed by /opt/fs/lib/liblevel1.so) not found in the guest")

	// DT_RPATH (old tags) of the program is searched for its libraries'
	// needs too: liblevel1 has no path of its own here.
	d2 := t.TempDir()
	cc(t, "gcc", d2, "deep/liblevel2.so", srcLevel2Fork, "-shared", "-fPIC")
	cc(t, "gcc", d2, "lib/liblevel1.so", srcLevel1, "-shared", "-fPIC", "-L"+filepath.Join(d2, "deep"), "-llevel2")
	cc(t, "gcc", d2, "bin/prog", srcMain, "-llevel1", "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib:$ORIGIN/../deep")
	ns2 := progRoot(t, d2)
	checkVerdict(t, ns2, c, "/opt/fs/bin/prog", nil, CreatesProcesses, "deep/liblevel2.so", "imports fork")

	// The dynamic loader run as a program loads the program it is given.
	checkVerdict(t, ns, c, "/lib64/ld-linux-x86-64.so.2", nil, Unknown, "shared object run as a program")
	// A script is not a program the in-process tiers load.
	if err := os.WriteFile(filepath.Join(dir, "script"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	checkVerdict(t, ns, c, "/opt/fs/script", nil, Unknown, "not a program")
	checkVerdict(t, ns, c, "/opt/fs/nonexistent", nil, Unknown, "program not found")
}

// TestProgramPreloadFile: glibc loads /etc/ld.so.preload's objects into
// every program.
func TestProgramPreloadFile(t *testing.T) {
	needGCC(t)
	dir := t.TempDir()
	prog := buildChain(t, dir, srcLevel2Clean)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	cc(t, "gcc", dir, "pre/libpre.so", srcLevel2Fork, "-shared", "-fPIC")
	if err := os.WriteFile(filepath.Join(root, "etc/ld.so.preload"), []byte("/opt/fs/pre/libpre.so\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := vfs.NewNamespace()
	for _, m := range []struct{ guest, host string }{{"/", "/"}, {"/etc", filepath.Join(root, "etc")}, {"/opt/fs", dir}} {
		if err := ns.Add(m.guest, m.host, true, vfs.KindBind); err != nil {
			t.Fatal(err)
		}
	}
	ns.Seal()
	defer ns.Close()
	// /etc is now the test's, without ld.so.cache: the libc is found
	// through the default directories.
	checkVerdict(t, ns, &Checker{}, prog, nil, CreatesProcesses, "libpre.so", "preloaded", "imports fork")
}

// TestProgramMusl: musl's loader answers libc.so itself and searches
// DT_RUNPATH and its default path.
func TestProgramMusl(t *testing.T) {
	if _, err := exec.LookPath("musl-gcc"); err != nil {
		t.Skip("musl-gcc not found")
	}
	dir := t.TempDir()
	cc(t, "musl-gcc", dir, "lib/liblevel2.so", srcThread, "-shared", "-fPIC")
	cc(t, "musl-gcc", dir, "lib/liblevel1.so", srcLevel1, "-shared", "-fPIC", "-llevel2", "-Wl,-rpath,$ORIGIN")
	cc(t, "musl-gcc", dir, "bin/prog", srcMain, "-llevel1", "-Wl,-rpath,$ORIGIN/../lib")
	cc(t, "musl-gcc", dir, "bin/clean", "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n")
	ns := progRoot(t, dir)
	if v, why := (&Checker{}).Program(ns, "/", "/opt/fs/bin/clean", nil); v != NoProcesses {
		// Only where musl's loader is installed on the host.
		if _, err := os.Stat("/lib/ld-musl-x86_64.so.1"); err == nil {
			t.Errorf("clean musl program: %v, %s", v, why)
		} else {
			t.Logf("no /lib/ld-musl-x86_64.so.1 on this host: %v, %s", v, why)
			return
		}
	}
	checkVerdict(t, ns, &Checker{}, "/opt/fs/bin/prog", nil, CreatesProcesses, "liblevel2.so", "imports pthread_create")
}

// TestProgramStatic: a static program's verdict is Scan's.
func TestProgramStatic(t *testing.T) {
	if _, err := exec.LookPath("musl-gcc"); err != nil {
		t.Skip("musl-gcc not found")
	}
	dir := t.TempDir()
	cc(t, "musl-gcc", dir, "bin/hello", "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n", "-static")
	cc(t, "musl-gcc", dir, "bin/thr", "#include <pthread.h>\nstatic void *f(void *a) { return a; }\nint main(void) { pthread_t t; return pthread_create(&t, 0, f, 0); }\n", "-static", "-pthread")
	ns := progRoot(t, dir)
	checkVerdict(t, ns, &Checker{}, "/opt/fs/bin/hello", nil, NoProcesses, "no fork-family sites")
	checkVerdict(t, ns, &Checker{}, "/opt/fs/bin/thr", nil, CreatesProcesses, "clone site at 0x")
}

// TestProgramCache checks that the verdict is cached per file identity: a
// second run reads the cache, a corrupted entry is ignored, a rewritten
// library is scanned again, and a directory open to others is not used.
func TestProgramCache(t *testing.T) {
	needGCC(t)
	dir := t.TempDir()
	prog := buildChain(t, dir, srcLevel2Clean)
	ns := progRoot(t, dir)
	cdir := filepath.Join(t.TempDir(), "kbox", "forkscan")
	c := &Checker{CacheDir: cdir}
	checkVerdict(t, ns, c, prog, nil, NoProcesses)
	st, err := os.Stat(cdir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir: %v, %v", st, err)
	}
	entries, _ := os.ReadDir(cdir)
	if len(entries) != 5 { // prog, ld.so, libc, liblevel1, liblevel2
		t.Errorf("%d cache entries, want 5: %v", len(entries), entries)
	}
	// Warm: the same verdict, entries coded (the code scan is cached).
	checkVerdict(t, ns, c, prog, nil, NoProcesses)
	coded := 0
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(cdir, e.Name()))
		if strings.Contains(string(b), `"coded":true`) {
			coded++
		}
	}
	if coded != 3 { // prog, liblevel1, liblevel2: not the C library
		t.Errorf("%d entries with a code scan, want 3", coded)
	}
	// A cache entry that lies is the user's own business, but a corrupted
	// one is ignored.
	for _, e := range entries {
		if err := os.WriteFile(filepath.Join(cdir, e.Name()), []byte("{garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	checkVerdict(t, ns, c, prog, nil, NoProcesses)
	// The library rewritten with a fork: a new identity, scanned again.
	cc(t, "gcc", dir, "lib/liblevel2.so", srcRawFork, "-shared", "-fPIC")
	checkVerdict(t, ns, c, prog, nil, CreatesProcesses, "fork site at 0x")
	// A cache directory others may write is not used.
	if err := os.Chmod(cdir, 0o777); err != nil {
		t.Fatal(err)
	}
	if openCache(cdir) != nil {
		t.Error("openCache accepted a 0777 directory")
	}
}

func TestParseLdCache(t *testing.T) {
	// A synthetic cache: two x86-64 entries, one i386 entry.
	type ent struct {
		flags      uint32
		key, value string
	}
	ents := []ent{{0x0303, "libfoo.so.1", "/usr/lib/libfoo.so.1"}, {0x0303, "libfoo.so.1", "/opt/x/libfoo.so.1"}, {0x0803, "libfoo.so.1", "/usr/lib32/libfoo.so.1"}}
	const hdr = 48
	strOff := hdr + 24*len(ents)
	var strs []byte
	c := make([]byte, strOff)
	copy(c, ldCacheMagicNew)
	binary.LittleEndian.PutUint32(c[20:], uint32(len(ents)))
	add := func(s string) uint32 {
		off := uint32(strOff + len(strs))
		strs = append(append(strs, s...), 0)
		return off
	}
	for i, e := range ents {
		p := c[hdr+24*i:]
		binary.LittleEndian.PutUint32(p, e.flags)
		binary.LittleEndian.PutUint32(p[4:], add(e.key))
		binary.LittleEndian.PutUint32(p[8:], add(e.value))
	}
	c = append(c, strs...)
	binary.LittleEndian.PutUint32(c[24:], uint32(len(strs)))
	m, err := parseLdCache(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.lookup("libfoo.so.1", amd64Spec.ldCacheFlag); !slices.Equal(got, []string{"/usr/lib/libfoo.so.1", "/opt/x/libfoo.so.1"}) {
		t.Errorf("libfoo.so.1 -> %q", got)
	}
	// Truncations and bad offsets are errors, never panics.
	for n := 0; n < len(c); n += 7 {
		parseLdCache(c[:n])
	}
	bad := slices.Clone(c)
	binary.LittleEndian.PutUint32(bad[hdr+4:], 1<<30)
	if _, err := parseLdCache(bad); err == nil {
		t.Error("a string offset outside the cache was accepted")
	}
	if _, err := parseLdCache([]byte("garbage that is long enough to hold a header........")); err == nil {
		t.Error("garbage accepted")
	}
	// The host's own cache, if it has one, names its libc.
	if b, err := os.ReadFile("/etc/ld.so.cache"); err == nil {
		m, err := parseLdCache(b)
		if err != nil {
			t.Fatalf("host ld.so.cache: %v", err)
		}
		if len(m.lookup("libc.so.6", amd64Spec.ldCacheFlag)) == 0 {
			t.Errorf("host ld.so.cache has no libc.so.6 (%d entries)", m.n)
		}
	}
}

func TestExpandPaths(t *testing.T) {
	o := &object{path: "/opt/app/bin/prog", canon: "/srv/app/bin/prog"}
	got := amd64Spec.expandPaths([]string{"$ORIGIN/../lib:${ORIGIN}/x", "/a/$LIB"}, o)
	want := []string{"/opt/app/bin/../lib", "/srv/app/bin/../lib", "/opt/app/bin/x", "/srv/app/bin/x", "/a/lib", "/a/lib64", "/a/lib/x86_64-linux-gnu"}
	if !slices.Equal(got, want) {
		t.Errorf("expandPaths = %q, want %q", got, want)
	}
	got = arm64Spec.expandPaths([]string{"/a/$LIB/$PLATFORM"}, o)
	want = []string{"/a/lib/aarch64", "/a/lib64/aarch64", "/a/lib/aarch64-linux-gnu/aarch64"}
	if !slices.Equal(got, want) {
		t.Errorf("arm64 expandPaths = %q, want %q", got, want)
	}
}

// FuzzSummarize feeds arbitrary files to the per-object summary (the
// dynamic section and ld.so.cache readers): no panic, and a file without
// an ELF header is never a loadable object.
func FuzzSummarize(f *testing.F) {
	f.Add(fuzzBase())
	f.Add([]byte(ldCacheMagicNew))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := summarize(bytesReaderAt(b), int64(len(b)))
		if len(b) < 4 || string(b[:4]) != "\x7fELF" {
			if in.Err == "" {
				t.Fatalf("non-ELF input summarized as an object: %+v", in)
			}
		}
		parseLdCache(b)
	})
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, os.ErrInvalid
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// benchProgram runs Program on a program of the host's root (default
// /usr/bin/cat, which with its libraries is a full scan: nothing decides
// early; KBOX_BENCH_PROG names another, KBOX_BENCH_ROOT another root), with
// or without a warm cache.
func benchProgram(b *testing.B, warm bool) {
	prog := os.Getenv("KBOX_BENCH_PROG")
	if prog == "" {
		prog = "/usr/bin/cat"
	}
	root := os.Getenv("KBOX_BENCH_ROOT")
	if root == "" {
		root = "/"
	}
	ns := vfs.NewNamespace()
	if err := ns.Add("/", root, true, vfs.KindBind); err != nil {
		b.Fatal(err)
	}
	ns.Seal()
	defer ns.Close()
	c := &Checker{}
	if warm {
		c.CacheDir = filepath.Join(b.TempDir(), "forkscan")
	}
	v, why := c.Program(ns, "/", prog, nil)
	b.Logf("%s: %v: %s", prog, v, why)
	for b.Loop() {
		c.Program(ns, "/", prog, nil)
	}
}

// BenchmarkProgramCold: every run scans every object (no cache).
func BenchmarkProgramCold(b *testing.B) { benchProgram(b, false) }

// BenchmarkProgramWarm: every object's summary and code verdict come from
// the on-disk cache; what remains is resolving the libraries in the guest.
func BenchmarkProgramWarm(b *testing.B) { benchProgram(b, true) }

// TestProgramUnreadableHeaders: a library whose section headers debug/elf
// cannot read hides its imports; the loader does not need them, so the
// verdict must be Unknown, not "no processes".
func TestProgramUnreadableHeaders(t *testing.T) {
	needGCC(t)
	dir := t.TempDir()
	prog := buildChain(t, dir, srcLevel2Fork)
	ns := progRoot(t, dir)
	lib := filepath.Join(dir, "lib/liblevel2.so")
	b, err := os.ReadFile(lib)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(b[0x28:], 1<<40) // e_shoff far past the end
	if err := os.WriteFile(lib, b, 0o755); err != nil {
		t.Fatal(err)
	}
	checkVerdict(t, ns, &Checker{}, prog, nil, Unknown, "liblevel2.so", "unreadable")
}
