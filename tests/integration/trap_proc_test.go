package integration

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTrapProcSelfFD checks /proc/self/fd under the trap tier, where the
// guest's descriptor numbers are virtual: the links and the listing name
// the guest's numbers, not kbox's.
func TestTrapProcSelfFD(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	for _, tier := range testedTiers(t, inProcessTiers) {
		forEachVariant(t, tier+"/", func(t *testing.T, v variant) {
			// dup3(3, 7, 0) (dup2's arm64 form); sc's ls holds its
			// directory descriptor (the lowest free number) while listing.
			opts := runOpts{Unpriv: v.unpriv, Args: []string{"--syscall-mode=" + tier, "-R", root, "--", "/bin/sc",
				"open", "/etc/hostname", "O_RDONLY", ",", "syscall", nr("dup3"), "3", "7", "0", ",", "ls", "/proc/self/fd", ",",
				"readlink", "/proc/self/fd/7", ",", "readfile", "/proc/self/fd/7", ",", "close", "3", ",",
				"ls", "/proc/self/fd", ",", "readlink", "/proc/self/fd/9"}}
			out, errOut, code := runKbox(t, opts)
			want := []string{"open: ok 3", "syscall: ok 7", "ls: ok 0,1,2,3,4,7", "readlink: ok /etc/hostname",
				"readfile: ok kbox-guest", "close: ok 0", "ls: ok 0,1,2,3,7", "readlink: err ENOENT"}
			if code != 0 {
				t.Errorf("%s: exit %d\nstderr:\n%s", cmdline(opts), code, errOut)
			}
			if diff := compareLines(want, lines(out)); diff != "" {
				t.Errorf("%s\n%s", cmdline(opts), diff)
			}
		})
	}
}

// TestTrapBadPointers passes unmapped addresses to calls kbox serves
// itself (newfstatat's buffer, openat's path), to one it runs natively
// (write's buffer) and to one whose result kbox writes: each must fail
// with EFAULT and the guest go on, as natively.
func TestTrapBadPointers(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	for _, sc := range []string{"/bin/sc", "/bin/sc-glibc", "rewrite:/bin/sc", "rewrite:/bin/sc-glibc"} {
		tier := "trap"
		if p, ok := strings.CutPrefix(sc, "rewrite:"); ok {
			tier, sc = "rewrite", p
		}
		opts := runOpts{Args: []string{"--syscall-mode=" + tier, "-r", root, "--", sc,
			"syscall", nr("newfstatat"), "-100", "s:/etc/hostname", "1", "0", ",", // statbuf 1
			"syscall", nr("openat"), "-100", "1", "0", "0", ",", // path 1
			"syscall", nr("write"), "1", "1", "5", ",", // buffer 1
			"syscall", nr("newfstatat"), "-100", "s:/etc/hostname", "0x10", "0", ","}}
		want := []string{"syscall: err EFAULT", "syscall: err EFAULT", "syscall: err EFAULT", "syscall: err EFAULT"}
		if hasSyscall("stat") {
			// the legacy stat, path in the first page
			opts.Args = append(opts.Args, "syscall", nr("stat"), "0x7ff0", "0", ",")
			want = append(want, "syscall: err EFAULT")
		}
		opts.Args = append(opts.Args, "uname")
		want = append(want, "uname: ok *")
		out, errOut, code := runKbox(t, opts)
		if code != 0 {
			t.Errorf("%s: exit %d\nstderr:\n%s", cmdline(opts), code, errOut)
		}
		if diff := compareLines(want, lines(out)); diff != "" {
			t.Errorf("%s\n%s\nstderr:\n%s", cmdline(opts), diff, errOut)
		}
	}
}

// TestTrapKillAll checks kill(-1, sig) under the trap tier: Linux never
// signals the caller for -1, and the guest has no other process.
func TestTrapKillAll(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	opts := runOpts{Args: []string{"--syscall-mode=trap", "-r", root, "--", "/bin/sh", "-c",
		`trap "echo handler ran" USR1; kill -USR1 -1; echo rc=$?; kill -USR1 $$; echo rc=$?`}}
	out, errOut, code := runKbox(t, opts)
	want := []string{"rc=1", "handler ran", "rc=0"}
	if code != 0 {
		t.Errorf("%s: exit %d\nstderr:\n%s", cmdline(opts), code, errOut)
	}
	if diff := compareLines(want, lines(out)); diff != "" {
		t.Errorf("%s\n%s\nstderr:\n%s", cmdline(opts), diff, errOut)
	}
}

// TestAutoTier checks --syscall-mode=auto (the default): a program that
// cannot create processes would run in the rewrite tier, but no kernel yet
// confines everything an in-process guest could reach (file metadata,
// pathname sockets: docs/security.md), so every program runs in the
// seccomp tier, -v says why, and the program is not scanned at all (the
// scan costs tens of milliseconds). On a kernel with no such gap, a
// shell, a forking program and a static program carrying libc's generic
// syscall() wrapper run in the seccomp tier for their own reasons.
func TestAutoTier(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	for _, c := range []struct {
		argv []string
		tier string
		why  string
	}{
		{[]string{"/bin/hello"}, "rewrite", "no fork-family sites"},
		{[]string{"/bin/hello-glibc"}, "rewrite", "no fork-family sites"},
		{[]string{"/bin/sh", "-c", "echo hi | cat"}, "seccomp", "site at"},
		{[]string{"/bin/sc", "getpid"}, "seccomp", "syscall() wrapper"},
		{[]string{"/bin/trapsig-glibc", "raise"}, "seccomp", "imports"},
	} {
		opts := runOpts{Args: append([]string{"-v", "-r", root, "--"}, c.argv...)}
		_, errOut, code := runKbox(t, opts)
		if code != 0 {
			t.Errorf("%s: exit %d\nstderr:\n%s", cmdline(opts), code, errOut)
		}
		tier, why := c.tier, c.why
		if runtime.GOARCH != "amd64" && !builtTiers(t)["rewrite"] {
			tier, why = "seccomp", "no in-process tier in this build"
		} else if strings.Contains(errOut, "(auto: the kernel cannot confine an in-process guest here: ") {
			tier, why = "seccomp", "Landlock does not confine file metadata"
		}
		want := "tier: " + tier + " (auto: "
		if !strings.Contains(errOut, want) || !strings.Contains(errOut, why) {
			t.Errorf("%s: want %q and %q in -v output:\n%s", cmdline(opts), want, why, errOut)
		}
	}
}

// TestTrapSIGINTIgnoredAtStart starts kbox with SIGINT ignored (as a
// background job of a non-interactive shell is): a guest that installs a
// SIGINT handler still gets the signal, as it would natively.
func TestTrapSIGINTIgnoredAtStart(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	for _, tier := range testedTiers(t, inProcessTiers) {
		t.Run(tier, func(t *testing.T) {
			t.Parallel()
			requireTier(t, tier)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "/bin/sh", "-c", `trap "" INT; exec "$@"`, "sh",
				kboxBin, "--syscall-mode="+tier, "-r", root, "--", "/bin/trapsig", "sigint")
			cmd.Env = baseEnv()
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(out)
			line, _ := r.ReadString('\n')
			if line != "sigint: ready\n" {
				t.Fatalf("first line %q", line)
			}
			cmd.Process.Signal(syscall.SIGINT)
			rest, _ := io.ReadAll(r)
			err = cmd.Wait()
			if string(rest) != "sigint: handled\n" || err != nil {
				t.Errorf("after SIGINT: %q, %v; want \"sigint: handled\" and exit 0", rest, err)
			}
		})
	}
}

// TestSignalsSentToKbox: a signal sent to kbox reaches the guest, in every
// tier, and kbox reports the guest's death by it as 128+N — the
// synchronous ones too when sent by kill, without a Go crash report.
func TestSignalsSentToKbox(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	for _, tier := range testedTiers(t, allTiers) {
		for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGSEGV, syscall.SIGABRT, syscall.SIGTERM} {
			t.Run(tier+"/"+sig.String(), func(t *testing.T) {
				requireTier(t, tier)
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, kboxBin, "--syscall-mode="+tier, "-r", root, "--", "/bin/trapsig", "pause")
				cmd.Env = baseEnv()
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				var stderr strings.Builder
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				r := bufio.NewReader(out)
				if line, _ := r.ReadString('\n'); line != "pause: ready\n" {
					t.Fatalf("first line %q", line)
				}
				cmd.Process.Signal(sig)
				io.ReadAll(r)
				err = cmd.Wait()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 128+int(sig) {
					t.Errorf("after %v: %v, want exit status %d", sig, err, 128+int(sig))
				}
				if strings.Contains(stderr.String(), "goroutine ") {
					t.Errorf("Go crash report on stderr:\n%s", stderr.String())
				}
			})
		}
	}
}
