// Package integration runs the kbox binary end to end against the fixture
// guest root (see tests/fixture) and compares what guest programs observe
// with what Linux does natively.
//
// Most tests run in several variants: as the invoking user (root on CI) and,
// when the tests run as root, as an unprivileged uid via setpriv(1).
package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kbox-go/kbox/tests/fixture"
)

// unprivUID is the uid/gid the unprivileged variants run as when the tests
// themselves run as root.
const unprivUID = 65534

// runTimeout bounds every kbox invocation: 30 s, times
// KBOX_TEST_TIMEOUT_SCALE where the tests run slowly (scripts/arm64-vm-test
// sets it under emulation).
var runTimeout = 30 * time.Second * time.Duration(timeoutScale)

// timeoutScale multiplies the tests' timeouts (KBOX_TEST_TIMEOUT_SCALE, a
// whole number, default 1).
var timeoutScale = func() int {
	if n, err := strconv.Atoi(os.Getenv("KBOX_TEST_TIMEOUT_SCALE")); err == nil && n > 1 {
		return n
	}
	return 1
}()

var (
	kboxBin  string // absolute path of the kbox binary built by TestMain
	buildDir string // world-traversable directory holding it
)

func TestMain(m *testing.M) {
	// Deterministic file modes for everything the guests create.
	syscall.Umask(0o022)
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kbox-it-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: ", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The unprivileged variants must be able to execute the binary.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "integration: ", err)
		return 1
	}
	buildDir = dir
	kboxBin = filepath.Join(dir, "kbox")
	if prebuiltDir != "" {
		// Cross-built elsewhere (scripts/arm64-vm-test): no Go
		// toolchain where the tests run.
		kboxBin = filepath.Join(prebuiltDir, "kbox")
		if _, err := os.Stat(kboxBin); err != nil {
			fmt.Fprintln(os.Stderr, "integration: KBOX_PREBUILT:", err)
			return 1
		}
		return m.Run()
	}
	// As the README builds it (scripts/build-kbox): cgo, linked at a fixed
	// address clear of 0x400000, where the trap tier loads non-PIE guests.
	cmd := exec.Command("bash", "scripts/build-kbox", "-o", kboxBin)
	cmd.Dir = fixture.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: building kbox failed: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// prebuiltDir (KBOX_PREBUILT) holds binaries built before the tests ran,
// for a machine without the toolchains (scripts/arm64-vm-test builds them
// for arm64 and runs the suite in a VM): kbox (scripts/build-kbox),
// kbox-nocgo, kbox-nopie, the vforkexec-glibc and vforkexec-musl guests
// and (arm64) cancelloop-glibc241. The fixture root comes from
// KBOX_FIXTURE_ROOT (tests/fixture).
var prebuiltDir = os.Getenv("KBOX_PREBUILT")

// prebuilt returns the path of a prebuilt binary, or "" when the tests
// build their own.
func prebuilt(t testing.TB, name string) string {
	t.Helper()
	if prebuiltDir == "" {
		return ""
	}
	p := filepath.Join(prebuiltDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("KBOX_PREBUILT: %v", err)
	}
	return p
}

// runOpts describes one kbox invocation.
type runOpts struct {
	Args   []string      // kbox's arguments (flags, --, command)
	Stdin  string        // guest standard input
	Unpriv bool          // run kbox as an unprivileged uid (see unprivRun)
	Env    []string      // extra environment entries (appended)
	Dir    string        // kbox's own working directory (default "/")
	Bin    string        // program to run instead of kbox (native oracle)
	Tout   time.Duration // timeout (default runTimeout)
}

// baseEnv is the environment given to kbox (and so to the guest).
func baseEnv() []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/",
		"LANG=C",
		"LC_ALL=C",
		"TMPDIR=/tmp",
		"TERM=dumb",
	}
}

// isRoot reports whether the tests run as uid 0.
func isRoot() bool { return os.Getuid() == 0 }

var (
	setprivOnce sync.Once
	setprivPath string
)

func findSetpriv() string {
	setprivOnce.Do(func() {
		if p, err := exec.LookPath("setpriv"); err == nil {
			setprivPath = p
		}
	})
	return setprivPath
}

// asUnprivileged prefixes argv with the setpriv(1) command that runs it as
// unprivUID with no supplementary groups.
func asUnprivileged(argv []string) []string {
	return append([]string{findSetpriv(), fmt.Sprintf("--reuid=%d", unprivUID), fmt.Sprintf("--regid=%d", unprivUID), "--clear-groups", "--"}, argv...)
}

// requireUnpriv skips t if an unprivileged variant cannot be run: the tests
// run as root but setpriv(1) is missing.  When the tests already run as a
// non-root user, the "unprivileged" variant is the normal run.
func requireUnpriv(t testing.TB) {
	t.Helper()
	if isRoot() && findSetpriv() == "" {
		t.Skip("unprivileged variant skipped: running as root but setpriv(1) is not installed (util-linux)")
	}
}

// guestUID is the uid the kbox process has in a given variant.
func guestUID(unpriv bool) int {
	if unpriv && isRoot() {
		return unprivUID
	}
	return os.Getuid()
}

func guestGID(unpriv bool) int {
	if unpriv && isRoot() {
		return unprivUID
	}
	return os.Getgid()
}

// runKbox runs kbox (or opts.Bin) and returns its output and exit status.
// A status of 128+N is returned when the process itself was killed by
// signal N; -1 when it could not be started.
func runKbox(t testing.TB, opts runOpts) (stdout, stderr string, code int) {
	t.Helper()
	bin := kboxBin
	if opts.Bin != "" {
		bin = opts.Bin
	}
	argv := append([]string{bin}, opts.Args...)
	if bin == kboxBin || slices.Contains(opts.Args, kboxBin) {
		requireTiersOf(t, argv)
	}
	if opts.Unpriv && isRoot() {
		sp := findSetpriv()
		if sp == "" {
			t.Skip("unprivileged variant skipped: setpriv(1) is not installed")
		}
		argv = asUnprivileged(argv)
	}
	tout := opts.Tout
	if tout == 0 {
		tout = runTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), tout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(baseEnv(), opts.Env...)
	cmd.Dir = opts.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.Stdin = strings.NewReader(opts.Stdin)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The whole process group: kbox and every guest process.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	stdout, stderr = so.String(), se.String()
	if ctx.Err() == context.DeadlineExceeded {
		t.Errorf("timeout after %v: %s\nstdout:\n%s\nstderr:\n%s", tout, shellQuote(argv), stdout, stderr)
	}
	code = 0
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			} else {
				code = ee.ExitCode()
			}
		} else {
			t.Errorf("running %s: %v", shellQuote(argv), err)
			code = -1
		}
	}
	return stdout, stderr, code
}

// cmdline renders a kbox invocation for failure messages.
func cmdline(opts runOpts) string {
	bin := "kbox"
	if opts.Bin != "" {
		bin = opts.Bin
	}
	s := shellQuote(append([]string{bin}, opts.Args...))
	if opts.Unpriv && isRoot() {
		s = fmt.Sprintf("setpriv --reuid=%d --regid=%d --clear-groups -- %s", unprivUID, unprivUID, s)
	}
	if opts.Stdin != "" {
		s = fmt.Sprintf("printf %%s %s | %s", shellQuote([]string{opts.Stdin}), s)
	}
	return s
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@,+%", r))
		}) < 0 {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// mkTempDir creates a world-traversable (0755) temporary directory removed
// at the end of the test.  (t.TempDir() is 0700 under a 0700 parent, which
// an unprivileged uid cannot enter.)
func mkTempDir(t testing.TB, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAll(t, dir) })
	return dir
}

// removeAll removes dir even when the guest left unsearchable directories.
func removeAll(t testing.TB, dir string) {
	if err := os.RemoveAll(dir); err == nil {
		return
	}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error { //nolint:errcheck
		if err == nil && fi.IsDir() {
			os.Chmod(p, 0o755) //nolint:errcheck
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		t.Logf("cleanup of %s: %v", dir, err)
	}
}

// fixtureRoot returns the shared, read-only fixture guest root.
func fixtureRoot(t testing.TB) string {
	t.Helper()
	return fixture.Root(t)
}

// freshRoot returns a private writable copy of the fixture root.  When
// owner differs from the invoking uid (tests running as root, unprivileged
// variant) the copy is chowned to owner:owner.
func freshRoot(t testing.TB, owner int) string {
	t.Helper()
	src := fixtureRoot(t)
	dir := mkTempDir(t, "kbox-it-root-")
	root := filepath.Join(dir, "root")
	if out, err := exec.Command("cp", "-a", src, root).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", src, root, err, out)
	}
	chownTree(t, root, owner)
	return root
}

// chownTree chowns path recursively (symlinks themselves, not their
// targets) to owner:owner when owner is not the invoking uid.
func chownTree(t testing.TB, path string, owner int) {
	t.Helper()
	if owner == os.Getuid() {
		return
	}
	if !isRoot() {
		t.Fatalf("cannot chown %s to %d: not root", path, owner)
	}
	if out, err := exec.Command("chown", "-R", "-h", fmt.Sprintf("%d:%d", owner, owner), path).CombinedOutput(); err != nil {
		t.Fatalf("chown -R %d %s: %v\n%s", owner, path, err, out)
	}
}

// variant is one way of running kbox: privileged or not.
type variant struct {
	name   string
	unpriv bool
}

func (v variant) uid() int { return guestUID(v.unpriv) }
func (v variant) gid() int { return guestGID(v.unpriv) }

// variants lists the privilege variants: as the invoking user, and (when
// that is root) as an unprivileged uid.
func variants() []variant {
	if isRoot() {
		if testing.Short() {
			// scripts/test.sh --quick: the user kbox exists for.
			return []variant{{"unpriv", true}}
		}
		return []variant{{"root", false}, {"unpriv", true}}
	}
	return []variant{{"user", false}}
}

// lines splits output into lines without the trailing empty one.
func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// writeFile writes a host file, failing the test on error.
func writeFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func getxattr(path, name string, buf []byte) (int, error) { return unix.Getxattr(path, name, buf) }

// forEachVariant runs f as a parallel subtest for each privilege variant,
// named prefix+variant, skipping the unprivileged one where it cannot run.
func forEachVariant(t *testing.T, prefix string, f func(t *testing.T, v variant)) {
	t.Helper()
	for _, v := range variants() {
		t.Run(prefix+v.name, func(t *testing.T) {
			t.Parallel()
			if v.unpriv {
				requireUnpriv(t)
			}
			f(t, v)
		})
	}
}

// allTiers are every interception tier, the seccomp tier first.
var allTiers = append([]string{"seccomp"}, inProcessTiers...)

// rootModes are the root flags the tier/mode/variant tests run under: -S
// alone with -short (scripts/test.sh --quick), which exercises -r's
// resolver and adds the private /dev, /proc, /tmp and the virtual root.
func rootModes() []string {
	if testing.Short() {
		return []string{"-S"}
	}
	return []string{"-r", "-S"}
}

// forEachTierModeVariant runs f as a parallel subtest for every tier, root
// flag (-r, -S) and privilege variant, named [tier/]mode/variant: the
// seccomp tier's subtests keep the names they had before the in-process
// tiers existed.
func forEachTierModeVariant(t *testing.T, f func(t *testing.T, tier, mode string, v variant)) {
	t.Helper()
	for _, tier := range allTiers {
		prefix := ""
		if tier != "seccomp" {
			prefix = tier + "/"
		}
		for _, mode := range rootModes() {
			forEachVariant(t, prefix+mode+"/", func(t *testing.T, v variant) {
				requireTier(t, tier)
				f(t, tier, mode, v)
			})
		}
	}
}
