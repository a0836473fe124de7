package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kbox-go/kbox/internal/landlock"
)

// TestGuestPtrace: with Landlock, the seccomp tier lets the guest trace its
// own processes (the kernel confines ptrace to the guest's Landlock domain)
// and refuses a host process, even one of the same user; the in-process
// tiers refuse ptrace.
func TestGuestPtrace(t *testing.T) {
	t.Parallel()
	if landlock.ABI() == 0 {
		t.Skip("no Landlock: ptrace stays in the dangerous set (see TestDangerousSet)")
	}
	root := fixtureRoot(t)
	for _, tier := range allTiers {
		forEachVariant(t, tier+"/", func(t *testing.T, v variant) {
			// A host process of kbox's own user, which the guest must not reach.
			argv := []string{"sleep", "120"}
			if v.unpriv && isRoot() {
				argv = asUnprivileged(argv)
			}
			ctx, cancel := context.WithCancel(context.Background())
			host := exec.CommandContext(ctx, argv[0], argv[1:]...)
			if err := host.Start(); err != nil {
				cancel()
				t.Fatal(err)
			}
			defer func() {
				cancel()    // kills it
				host.Wait() //nolint:errcheck
			}()
			args := []string{"--syscall-mode=" + tier, "-r", root, "--", "/bin/sc", "ptrace_attach", fmt.Sprint(host.Process.Pid)}
			want := "ptrace_attach: err ESRCH\n"
			if tier == "seccomp" {
				args = append(args, ",", "ptrace_child")
				want += "ptrace_child: ok 42\n"
			} else {
				want = "ptrace_attach: err EPERM\n"
			}
			opts := runOpts{Args: args, Unpriv: v.unpriv}
			out, errOut := checkRun(t, opts, 0)
			if out != want {
				t.Errorf("%s\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", cmdline(opts), out, want, errOut)
			}
		})
	}
}

// TestLeakSanitizer: an AddressSanitizer program's leak check (which stops
// the program's threads with ptrace) runs under kbox as natively: the
// leak is reported and the exit status is the sanitizer's.
func TestLeakSanitizer(t *testing.T) {
	t.Parallel()
	if landlock.ABI() == 0 {
		t.Skip("no Landlock: ptrace stays in the dangerous set, LeakSanitizer cannot run")
	}
	dir := mkTempDir(t, "kbox-it-lsan-")
	src := filepath.Join(dir, "leak.c")
	os.WriteFile(src, []byte("#include <stdlib.h>\n#include <stdio.h>\nvoid *p;\nint main(void) { p = malloc(10); p = 0; puts(\"ran\"); fflush(stdout); return 0; }\n"), 0o644)
	bin := filepath.Join(dir, "leak")
	if out, err := exec.Command("gcc", "-fsanitize=address", "-g", "-o", bin, src).CombinedOutput(); err != nil {
		t.Skipf("gcc -fsanitize=address not available here: %v\n%s", err, out)
	}
	os.Chmod(dir, 0o755)
	native, nerr := exec.Command(bin).CombinedOutput()
	if ee, ok := nerr.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(native), "detected memory leaks") {
		t.Skipf("natively the leak check does not report (exit %v): %s", nerr, native)
	}
	forEachVariant(t, "", func(t *testing.T, v variant) {
		opts := runOpts{Args: []string{"--", bin}, Unpriv: v.unpriv}
		out, errOut := checkRun(t, opts, 1)
		if out != "ran\n" || !strings.Contains(errOut, "ERROR: LeakSanitizer: detected memory leaks") || strings.Contains(errOut, "fatal error") {
			t.Errorf("%s\nstdout:\n%s\nstderr:\n%s", cmdline(opts), out, errOut)
		}
	})
}
