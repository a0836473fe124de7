package integration

import (
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// rewritePathsRE is the rewrite tier's -v exit line on calls from patched
// sites (internal/inproc tier.go).
var rewritePathsRE = regexp.MustCompile(`from patched sites (\d+) calls took the fast path, (\d+) direct entry into kbox, (\d+) a trap`)

// rewritePaths reads that line: calls that took the fast path, entered
// kbox directly and trapped; ok=false when -v printed no such line.
func rewritePaths(errOut string) (fast, direct, trapped int, ok bool) {
	m := rewritePathsRE.FindStringSubmatch(errOut)
	if m == nil {
		return 0, 0, 0, false
	}
	fast, _ = strconv.Atoi(m[1])
	direct, _ = strconv.Atoi(m[2])
	trapped, _ = strconv.Atoi(m[3])
	return fast, direct, trapped, true
}

// TestBenchGuestEveryTier runs the benchmark guest's rows (tests/guest/
// bench.c, musl static and glibc dynamic) in every tier, for correctness:
// each row prints its line and the guest exits 0. Under rewrite, -v's
// exit line splits the calls from patched sites into fast path, direct
// entry and trap, and the static bench must take the fast path; on arm64
// the cancel-wrapper gate is on for the static musl bench and off for the
// dynamic glibc one (docs/cancel-wrapper.md).
func TestBenchGuestEveryTier(t *testing.T) {
	root := fixtureRoot(t)
	rows := []string{"stat", "open_close", "lseek_read", "lseek_write", "getpid", "enosys"}
	forEachTierModeVariant(t, func(t *testing.T, tier, mode string, v variant) {
		if mode != "-S" {
			t.Skip("the rows read the fixture's /etc/hostname and write /tmp: -S")
		}
		for _, bin := range []string{"bench", "bench-glibc"} {
			opts := runOpts{Unpriv: v.unpriv, Args: []string{"--syscall-mode=" + tier, "-v", mode, root, "--",
				"/bin/" + bin, "-n", "200", "-w", "/tmp/kbox-bench-" + strconv.Itoa(v.uid())}}
			out, errOut, code := runKbox(t, opts)
			if code != 0 {
				t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", cmdline(opts), code, out, tail(errOut, 3000))
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != len(rows) {
				t.Fatalf("%s: %d lines, want %d:\n%s", cmdline(opts), len(lines), len(rows), out)
			}
			for i, l := range lines {
				f := strings.Fields(l)
				if len(f) != 3 || f[0] != rows[i] || f[2] != "200" {
					t.Errorf("%s: line %q, want %q <ns> 200", cmdline(opts), l, rows[i])
				}
				if ns, err := strconv.ParseFloat(f[len(f)-2], 64); err != nil || ns <= 0 {
					t.Errorf("%s: line %q: no time per call", cmdline(opts), l)
				}
			}
			if tier != "rewrite" {
				continue
			}
			fast, direct, trapped, ok := rewritePaths(errOut)
			if !ok {
				t.Fatalf("%s: no per-path counts under -v:\n%s", cmdline(opts), tail(errOut, 3000))
			}
			t.Logf("%s: from patched sites: %d fast path, %d direct entry, %d trap", bin, fast, direct, trapped)
			if fast == 0 {
				t.Errorf("%s: no call took the fast path (direct %d, trapped %d)", bin, direct, trapped)
			}
			if runtime.GOARCH == "arm64" {
				want := "cancel promotion: on (static"
				if bin == "bench-glibc" {
					want = "cancel promotion: off (dynamic"
				}
				if !strings.Contains(errOut, want) {
					t.Errorf("%s: no %q line:\n%s", bin, want, tail(errOut, 3000))
				}
			}
		}
	})
}
