package main

import (
	"bufio"
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const modulePath = "github.com/kbox-go/kbox"

//go:embed floor/*.c floor/*.h guest/*.c
var cSources embed.FS

// libcBench is where the libc-routed build of tests/guest/bench.c goes
// inside the guest root (for fakechroot, see bench/guest/libc_shim.c).
const libcBench = "/tmp/kbox-bench-libc"

// env is what the harness built and where.
type env struct {
	repo     string // module root
	work     string // private temp dir, removed at exit
	kbox     string // freshly built kbox binary
	root     string // guest root (cached across runs)
	floorBin string // directory of the floor programs
	goTool   string
	// goFloorErr says why a Go floor program (goFloorPrograms) did not build.
	goFloorErr map[string]error
}

// findRepo locates the kbox module root from the working directory.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if moduleName(filepath.Join(dir, "go.mod")) == modulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the %s module (run from the repository)", modulePath)
		}
		dir = parent
	}
}

func moduleName(gomod string) string {
	f, err := os.Open(gomod)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], "\"`")
		}
	}
	return ""
}

// goTool returns the go command: the one `go run` put first on PATH
// (GOROOT/bin), else plain "go".
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// setup builds kbox, the guest root and the floor programs.
func setup(log *logger) (*env, error) {
	repo, err := findRepo()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "kbox-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{repo: repo, work: work, goTool: goTool()}

	log.printf("building kbox from %s", repo)
	e.kbox = filepath.Join(work, "kbox")
	if err := e.buildKbox(); err != nil {
		return e, err
	}

	e.root = filepath.Join(os.TempDir(), fmt.Sprintf("kbox-bench-root-%d", os.Getuid()))
	log.printf("building the guest root %s (tests/fixture/mkroot.sh)", e.root)
	if err := buildRoot(repo, e.root); err != nil {
		return e, err
	}

	log.printf("building the floor programs")
	e.floorBin = filepath.Join(work, "floor")
	if err := buildFloors(e.floorBin); err != nil {
		return e, err
	}
	e.goFloorErr = e.buildGoFloors()
	return e, buildLibcBench(e)
}

// buildKbox builds kbox into e.kbox as the README does
// (scripts/build-kbox): cgo (the in-process tiers' guest thread and SIGSYS
// handler are C), linked at a fixed address clear of where non-PIE guests
// load, so that no start pays the dynamic loader's relocations of a PIE.
// The seccomp tier runs from the same binary.
func (e *env) buildKbox() error {
	if err := needCC(cgoCC()); err != nil {
		return fmt.Errorf("building kbox for the benchmarks: %w", err)
	}
	build := exec.Command("bash", filepath.Join(e.repo, "scripts/build-kbox"), "-o", e.kbox)
	// scripts/build-kbox runs the go command found on PATH: put the one
	// running the benchmarks first.
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if filepath.IsAbs(e.goTool) {
		build.Env = append(build.Env, "PATH="+filepath.Dir(e.goTool)+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	build.Dir = e.repo
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("scripts/build-kbox -o %s: %v\n%s", e.kbox, err, out)
	}
	return nil
}

// cgoCC is the C compiler cgo uses: $CC, else gcc.
func cgoCC() string {
	if f := strings.Fields(os.Getenv("CC")); len(f) > 0 {
		return f[0]
	}
	return "gcc"
}

// needCC checks that the C compiler cc is on PATH.
func needCC(cc string) error {
	if _, err := exec.LookPath(cc); err != nil {
		return fmt.Errorf("no C compiler: %s is not on PATH (%v); kbox is built with cgo (the trap tier needs it) and the floor programs are C: install gcc (apt-get install gcc) or set CC", cc, err)
	}
	return nil
}

// buildError drops the "# package" headers of go build's output.
func buildError(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "# ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// goFloorPrograms are the floor programs written in Go (with cgo), built
// with go build from bench/floor/NAME in the working tree.
var goFloorPrograms = []string{"cgocallback"}

// buildGoFloors builds the Go floor programs into e.floorBin. A program
// that fails to build is reported in its floor rows; the run goes on.
func (e *env) buildGoFloors() map[string]error {
	errs := map[string]error{}
	for _, p := range goFloorPrograms {
		args := []string{"build", "-o", filepath.Join(e.floorBin, p), "./bench/floor/" + p}
		build := exec.Command(e.goTool, args...)
		build.Env = append(os.Environ(), "CGO_ENABLED=1")
		build.Dir = e.repo
		if out, err := build.CombinedOutput(); err != nil {
			errs[p] = fmt.Errorf("CGO_ENABLED=1 go %s: %v%s", strings.Join(args, " "), err, stderrSuffix(buildError(string(out))))
		}
	}
	return errs
}

// buildRoot runs mkroot.sh (idempotent) under a lock so concurrent
// harness runs do not rebuild the same tree at once.
func buildRoot(repo, root string) error {
	lock, err := os.OpenFile(root+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	for {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	script := filepath.Join(repo, "tests", "fixture", "mkroot.sh")
	o := run(proc{argv: []string{"bash", script, root}, timeout: 5 * time.Minute})
	if o.err != nil {
		return fmt.Errorf("%v\n%s", o.err, o.stderr)
	}
	return nil
}

// floorPrograms are the C programs under bench/floor, built with gcc -O2.
var floorPrograms = []string{"plain", "sigsys_trap", "sud_trap", "unotify_rt", "unotify_addfd", "unotify_stat", "tp_switch"}

// writeSources copies the embedded directory dir into dst.
func writeSources(dir, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := cSources.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, ent := range entries {
		data, err := cSources.ReadFile(dir + "/" + ent.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, ent.Name()), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func gcc(args ...string) error {
	o := run(proc{argv: append([]string{"gcc", "-O2", "-Wall", "-Wextra"}, args...), timeout: 2 * time.Minute})
	if o.err != nil {
		return fmt.Errorf("%v\n%s", o.err, o.stderr)
	}
	return nil
}

func buildFloors(dir string) error {
	if err := needCC("gcc"); err != nil {
		return fmt.Errorf("building the floor programs: %w", err)
	}
	src := filepath.Join(dir, "src")
	if err := writeSources("floor", src); err != nil {
		return err
	}
	for _, p := range floorPrograms {
		if err := gcc("-o", filepath.Join(dir, p), filepath.Join(src, p+".c")); err != nil {
			return fmt.Errorf("building floor program %s: %w", p, err)
		}
	}
	return nil
}

// buildLibcBench builds tests/guest/bench.c with its syscall(2) calls
// routed through libc wrappers, as ROOT/tmp/kbox-bench-libc (removed by
// cleanup): fakechroot, an LD_PRELOAD library, sees only those.
func buildLibcBench(e *env) error {
	src := filepath.Join(e.work, "guest-src")
	if err := writeSources("guest", src); err != nil {
		return err
	}
	out := filepath.Join(e.root, libcBench)
	err := gcc("-Dsyscall=bench_libc_syscall", "-o", out,
		filepath.Join(e.repo, "tests", "guest", "bench.c"), filepath.Join(src, "libc_shim.c"))
	if err != nil {
		return fmt.Errorf("building the libc-routed bench: %w", err)
	}
	return nil
}

// cleanup removes what the harness left in the guest root and its work
// directory.
func (e *env) cleanup() {
	if e.root != "" {
		os.Remove(filepath.Join(e.root, libcBench))
		os.Remove(filepath.Join(e.root, "tmp", "x"))
	}
	os.RemoveAll(e.work)
}
