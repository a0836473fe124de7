package integration

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/kbox-go/kbox/tests/fixture"
)

// checkRun runs kbox and checks its exit status; it returns the output.
func checkRun(t *testing.T, opts runOpts, wantCode int) (string, string) {
	t.Helper()
	out, errOut, code := runKbox(t, opts)
	if code != wantCode {
		t.Errorf("%s\nexit status %d, want %d\nstdout:\n%s\nstderr:\n%s", cmdline(opts), code, wantCode, out, errOut)
	}
	return out, errOut
}

// checkCleanError checks that a kbox error is one clean line.
func checkCleanError(t *testing.T, opts runOpts, stderr string) {
	t.Helper()
	if n := len(lines(stderr)); n != 1 {
		t.Errorf("%s: stderr has %d lines, want exactly 1:\n%s", cmdline(opts), n, stderr)
	}
	for _, bad := range []string{"goroutine", "panic"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("%s: stderr mentions %q:\n%s", cmdline(opts), bad, stderr)
		}
	}
}

func TestCLIHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--help", "-h"} {
		opts := runOpts{Args: []string{arg}}
		out, _ := checkRun(t, opts, 0)
		for _, flag := range []string{
			"-r", "--root-dir", "-R", "--recommended-root", "-S", "--system-root",
			"-b", "--bind-mount", "-w", "--work-dir", "-c", "--command",
			"-0", "--root-id", "--change-id", "--syscall-mode", "-v", "--verbose",
			"-h", "--help", "--version", "--setenv", "--unsetenv", "--clearenv", "--keep-caps",
		} {
			re := regexp.MustCompile(`(^|[\s,\[])` + regexp.QuoteMeta(flag) + `($|[\s,=\[\]])`)
			if !re.MatchString(out) {
				t.Errorf("%s: help does not mention %s:\n%s", cmdline(opts), flag, out)
			}
		}
		for _, l := range lines(out) {
			if len(l) > 80 {
				t.Errorf("%s: a line of %d columns: %q", cmdline(opts), len(l), l)
			}
		}
		for _, want := range []string{"Examples:", "125 kbox itself failed"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: help does not say %q", cmdline(opts), want)
			}
		}
	}
}

func TestCLIVersion(t *testing.T) {
	t.Parallel()
	opts := runOpts{Args: []string{"--version"}}
	out, _ := checkRun(t, opts, 0)
	tiers := `seccomp, trap, rewrite`
	if runtime.GOARCH != "amd64" {
		// until internal/inproc is ported there (tiers_test.go)
		tiers = `seccomp(, trap, rewrite)?`
	}
	if !regexp.MustCompile(`^kbox \d+\.\d+\.\d+ .*; tiers: `+tiers+`\)\n$`).MatchString(out) || len(lines(out)) != 1 {
		t.Errorf("%s: got %q, want one line \"kbox X.Y.Z (...; tiers: %s)\"", cmdline(opts), out, tiers)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	cases := []struct {
		name    string
		args    []string
		code    int
		mention string // stderr must contain this (case-insensitive)
	}{
		{"unknown long flag", []string{"--bogus-flag", "--", "/bin/true"}, 125, "bogus-flag"},
		{"unknown short flag", []string{"-Z", "-r", root, "--", "/bin/true"}, 125, ""},
		{"missing flag argument", []string{"-r"}, 125, ""},
		{"syscall-mode bogus", []string{"--syscall-mode=bogus", "-r", root, "--", "/bin/true"}, 125, "bogus"},
		{"two roots", []string{"-r", root, "-R", root, "--", "/bin/true"}, 125, ""},
		{"change-id without gid", []string{"--change-id", "1000", "-r", root, "--", "/bin/true"}, 125, ""},
		{"change-id not numeric", []string{"--change-id", "a:b", "-r", root, "--", "/bin/true"}, 125, ""},
		{"change-id three fields", []string{"--change-id", "1:2:3", "-r", root, "--", "/bin/true"}, 125, ""},
		{"bind colon", []string{"-r", root, "-b", ":", "--", "/bin/true"}, 125, ""},
		{"bind no dst", []string{"-r", root, "-b", "/tmp:", "--", "/bin/true"}, 125, ""},
		{"bind no src", []string{"-r", root, "-b", ":/mnt", "--", "/bin/true"}, 125, ""},
		{"bind bad option", []string{"-r", root, "-b", "/tmp:/mnt:xx", "--", "/bin/true"}, 125, ""},
		{"bind relative dst", []string{"-r", root, "-b", "/tmp:rel", "--", "/bin/true"}, 125, ""},
		{"bind a:", []string{"-r", root, "-b", "a:", "--", "/bin/true"}, 125, ""},
		{"bind a:b:xx", []string{"-r", root, "-b", "a:b:xx", "--", "/bin/true"}, 125, ""},
		{"bind a:rel", []string{"-r", root, "-b", "a:rel", "--", "/bin/true"}, 125, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			opts := runOpts{Args: c.args}
			_, errOut := checkRun(t, opts, c.code)
			checkCleanError(t, opts, errOut)
			if c.mention != "" && !strings.Contains(strings.ToLower(errOut), strings.ToLower(c.mention)) {
				t.Errorf("%s: stderr does not mention %q:\n%s", cmdline(opts), c.mention, errOut)
			}
		})
	}
}

func TestCLISetupErrors(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	missing := filepath.Join(mkTempDir(t, "kbox-it-missing-"), "does-not-exist")
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"missing -r root", []string{"-r", missing, "--", "/bin/true"}, 125},
		{"missing -R root", []string{"-R", missing, "--", "/bin/true"}, 125},
		{"missing -S root", []string{"-S", missing, "--", "/bin/true"}, 125},
		{"root is a file", []string{"-r", filepath.Join(root, "etc/hostname"), "--", "/bin/true"}, 125},
		{"bind source missing", []string{"-r", root, "-b", missing + ":/mnt", "--", "/bin/true"}, 125},
		{"bind file over a directory", []string{"-r", root, "-b", filepath.Join(root, "etc/hostname") + ":/etc", "--", "/bin/true"}, 125},
		{"work dir missing", []string{"-r", root, "-w", "/no/such/dir", "--", "/bin/true"}, 125},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			opts := runOpts{Args: c.args}
			_, errOut := checkRun(t, opts, c.code)
			checkCleanError(t, opts, errOut)
		})
	}
}

func TestCLICommandErrors(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"absolute command missing", []string{"-r", root, "--", "/bin/no-such-command"}, 127},
		{"PATH command missing", []string{"-r", root, "--", "no-such-command"}, 127},
		{"command in missing dir", []string{"-r", root, "--", "/no/such/dir/cmd"}, 127},
		{"command not executable", []string{"-r", root, "--", "/etc/hostname"}, 126},
		{"command is a directory", []string{"-r", root, "--", "/etc"}, 126},
		{"-c missing", []string{"-r", root, "-c", "/bin/no-such-command"}, 127},
		{"-c not executable", []string{"-r", root, "-c", "/etc/passwd"}, 126},
		// The host has it, the guest root does not.
		{"host-only program", []string{"-r", root, "--", kboxBin}, 127},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			opts := runOpts{Args: c.args}
			_, errOut := checkRun(t, opts, c.code)
			checkCleanError(t, opts, errOut)
		})
	}
}

func TestCLIExitStatus(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	cases := []struct {
		script string
		code   int
	}{
		{"exit 0", 0},
		{"exit 7", 7},
		{"exit 255", 255},
		{"kill -9 $$", 137},
		{"kill -TERM $$", 143},
		{"false", 1},
	}
	for _, c := range cases {
		t.Run(c.script, func(t *testing.T) {
			t.Parallel()
			checkRun(t, runOpts{Args: []string{"-r", root, "--", "/bin/sh", "-c", c.script}}, c.code)
		})
	}
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestCLIDefaultRootIsHostReadOnly(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("host has no /bin/sh")
	}
	name := "/tmp/kbox-ro-test-" + randomHex(t, 6)
	os.Remove(name)
	t.Cleanup(func() { os.Remove(name) })
	opts := runOpts{Args: []string{"--", "/bin/sh", "-c", "echo x > " + name}}
	_, errOut, code := runKbox(t, opts)
	if code == 0 {
		t.Errorf("%s: exit 0, want failure", cmdline(opts))
	}
	if !strings.Contains(errOut, "Read-only file system") {
		t.Errorf("%s: stderr does not say \"Read-only file system\":\n%s", cmdline(opts), errOut)
	}
	if _, err := os.Lstat(name); err == nil {
		t.Errorf("%s: host file %s was created", cmdline(opts), name)
	}
}

func TestCLIDefaultRootSeesHostFiles(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile("/etc/hostname")
	if err != nil {
		t.Skip("host has no /etc/hostname")
	}
	if _, err := os.Stat("/bin/cat"); err != nil {
		t.Skip("host has no /bin/cat")
	}
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			if v.unpriv {
				requireUnpriv(t)
			}
			opts := runOpts{Args: []string{"--", "/bin/cat", "/etc/hostname"}, Unpriv: v.unpriv}
			out, _ := checkRun(t, opts, 0)
			if out != string(want) {
				t.Errorf("%s: got %q, want the host's %q", cmdline(opts), out, want)
			}
		})
	}
}

func TestCLIDefaultCommandIsShell(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	opts := runOpts{Args: []string{"-r", root}, Stdin: "echo hi\n"}
	out, _ := checkRun(t, opts, 0)
	if out != "hi\n" {
		t.Errorf("%s: got %q, want %q", cmdline(opts), out, "hi\n")
	}
}

func TestCLIWorkDir(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-r", root, "-w", "/etc", "--", "/bin/sh", "-c", "pwd; cat hostname"}, "/etc\nkbox-guest\n"},
		{[]string{"-r", root, "--work-dir=/home/user", "--", "/bin/sc", "getcwd"}, "getcwd: ok /home/user\n"},
		{[]string{"-r", root, "-w", "/etc/../bin/", "--", "/bin/sc", "getcwd"}, "getcwd: ok /bin\n"},
		{[]string{"-r", root, "--", "/bin/sc", "getcwd"}, "getcwd: ok /\n"},
		// a relative command is found relative to the work directory
		{[]string{"-r", root, "-w", "/bin", "--", "./sc", "getcwd"}, "getcwd: ok /bin\n"},
	}
	for _, c := range cases {
		opts := runOpts{Args: c.args}
		out, _ := checkRun(t, opts, 0)
		if out != c.want {
			t.Errorf("%s: got %q, want %q", cmdline(opts), out, c.want)
		}
	}
}

func TestCLICommandFlag(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-r", root, "-c", "/bin/echo", "a", "b"}, "a b\n"},
		{[]string{"-r", root, "-c", "echo", "via", "PATH"}, "via PATH\n"},
		{[]string{"-r", root, "--command=/bin/sh", "--", "-c", "echo $0"}, "/bin/sh\n"},
		{[]string{"-r", root, "--", "echo", "positional"}, "positional\n"},
	}
	for _, c := range cases {
		opts := runOpts{Args: c.args}
		out, _ := checkRun(t, opts, 0)
		if out != c.want {
			t.Errorf("%s: got %q, want %q", cmdline(opts), out, c.want)
		}
	}
}

func TestCLIVerbose(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	opts := runOpts{Args: []string{"-v", "-r", root, "--", "/bin/true"}}
	_, errOut := checkRun(t, opts, 0)
	if !strings.Contains(errOut, "seccomp") {
		t.Errorf("%s: verbose stderr does not mention the tier (seccomp):\n%s", cmdline(opts), errOut)
	}
	opts = runOpts{Args: []string{"-r", root, "--", "/bin/true"}}
	_, errOut = checkRun(t, opts, 0)
	if errOut != "" {
		t.Errorf("%s: non-verbose run wrote to stderr:\n%s", cmdline(opts), errOut)
	}
}

func TestCLIBindMount(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := freshRoot(t, v.uid())
		src := mkTempDir(t, "kbox-it-bind-")
		writeFile(t, filepath.Join(src, "in.txt"), "from host\n", 0o644)
		chownTree(t, src, v.uid())

		opts := runOpts{Unpriv: v.unpriv, Args: []string{"-r", root, "-b", src + ":/mnt/b", "--", "/bin/sh", "-c",
			"cat /mnt/b/in.txt && echo guest > /mnt/b/out.txt && ls /mnt/b"}}
		out, _ := checkRun(t, opts, 0)
		if out != "from host\nin.txt\nout.txt\n" {
			t.Errorf("%s: got %q", cmdline(opts), out)
		}
		if b, err := os.ReadFile(filepath.Join(src, "out.txt")); err != nil || string(b) != "guest\n" {
			t.Errorf("%s: host %s/out.txt = %q, %v; want \"guest\\n\"", cmdline(opts), src, b, err)
		}
		if _, err := os.Lstat(filepath.Join(root, "mnt/b/out.txt")); err == nil {
			t.Errorf("%s: the write landed under the root's mount point, not in the bind source", cmdline(opts))
		}

		opts = runOpts{Unpriv: v.unpriv, Args: []string{"-r", root, "-b", src + ":/mnt/b:ro", "--", "/bin/sc",
			"readfile", "/mnt/b/in.txt", ",", "open", "/mnt/b/new", "O_WRONLY|O_CREAT", "0644", ",",
			"unlink", "/mnt/b/in.txt", ",", "mkdir", "/mnt/b/d"}}
		out, _ = checkRun(t, opts, 0)
		want := "readfile: ok from host\nopen: err EROFS\nunlink: err EROFS\nmkdir: err EROFS\n"
		if out != want {
			t.Errorf("%s:\ngot:\n%swant:\n%s", cmdline(opts), out, want)
		}
		if _, err := os.Lstat(filepath.Join(src, "new")); err == nil {
			t.Errorf("%s: file created through a read-only bind", cmdline(opts))
		}
	})
}

// TestTrapBuildVariants checks what the trap tier says in the builds that
// cannot run every guest: a CGO_ENABLED=0 kbox has no trap tier (exit 125),
// a non-PIE kbox refuses a fixed-address guest naming -buildmode=pie; the
// test binary (PIE, cgo) runs it.
func TestTrapBuildVariants(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	build := func(name string, env []string, args ...string) string {
		t.Helper()
		if p := prebuilt(t, name); p != "" {
			return p
		}
		out := filepath.Join(buildDir, name)
		cmd := exec.Command("go", append(append([]string{"build"}, args...), "-o", out, "./cmd/kbox")...)
		cmd.Dir = fixture.RepoRoot()
		cmd.Env = append(os.Environ(), env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, b)
		}
		return out
	}
	static := build("kbox-nocgo", []string{"CGO_ENABLED=0"})
	if out, _, code := runKbox(t, runOpts{Bin: static, Args: []string{"--version"}}); code != 0 || !strings.HasSuffix(out, "; tiers: seccomp)\n") {
		t.Errorf("CGO_ENABLED=0 kbox --version: exit %d, %q; want the seccomp tier only", code, out)
	}
	_, errOut, code := runKbox(t, runOpts{Bin: static, Args: []string{"--syscall-mode=trap", "-r", root, "--", "/bin/true"}})
	if code != 125 || !strings.Contains(errOut, "cgo") || strings.Contains(errOut, "goroutine ") {
		t.Errorf("CGO_ENABLED=0 kbox --syscall-mode=trap: exit %d, stderr %q; want 125 and a message naming cgo", code, errOut)
	}
	// The rest is about the trap tier of a cgo build.
	requireTier(t, "trap")
	nopie := build("kbox-nopie", nil)
	_, errOut, code = runKbox(t, runOpts{Bin: nopie, Args: []string{"--syscall-mode=trap", "-r", root, "--", "/bin/busybox", "true"}})
	if code != 126 || !strings.Contains(errOut, "-buildmode=pie") || strings.Contains(errOut, "goroutine ") {
		t.Errorf("non-PIE kbox, fixed-address guest: exit %d, stderr %q; want 126 and a message naming -buildmode=pie", code, errOut)
	}
	// The private directories of -S are removed when the in-process
	// tier cannot start the guest.
	tmp := mkTempDir(t, "kbox-it-tmpdir-")
	_, errOut, code = runKbox(t, runOpts{Bin: nopie, Env: []string{"TMPDIR=" + tmp}, Args: []string{"--syscall-mode=trap", "-S", root, "--", "/bin/busybox", "true"}})
	if left := privateTmps(t, tmp); code != 126 || len(left) != 0 {
		t.Errorf("non-PIE kbox -S, fixed-address guest: exit %d (want 126), left in $TMPDIR: %q\nstderr: %s", code, left, errOut)
	}
	// auto falls back to seccomp when the in-process tier cannot load
	// the program (where the kernel confines in-process guests at all:
	// otherwise auto does not try, and says why).
	out, errOut, code := runKbox(t, runOpts{Bin: nopie, Args: []string{"-v", "-r", root, "--", "/bin/hello"}})
	if code != 0 || !strings.HasPrefix(out, "hello from musl") ||
		!(strings.Contains(errOut, "falling back to seccomp") || strings.Contains(errOut, "cannot confine an in-process guest")) {
		t.Errorf("non-PIE kbox, auto, fixed-address guest: exit %d, stdout %q, stderr %q; want the seccomp fallback", code, out, errOut)
	}
	out, errOut, code = runKbox(t, runOpts{Args: []string{"--syscall-mode=trap", "-r", root, "--", "/bin/busybox", "echo", "hi"}})
	if code != 0 || out != "hi\n" {
		t.Errorf("kbox --syscall-mode=trap busybox echo hi: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
