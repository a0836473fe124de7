package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestCancelPromotionLive runs a static arm64 program linked against
// glibc 2.41 (tests/guest/cancelloop.c, built by scripts/arm64-vm-test as
// the prebuilt cancelloop-glibc241) under the rewrite tier: -v shows the
// cancel-wrapper gate on, the `movz x6, #nr; bl __syscall_cancel` calls
// promoted, and every open and close of the loop entering a cancel slot
// (docs/cancel-wrapper.md).
func TestCancelPromotionLive(t *testing.T) {
	requireTier(t, "rewrite")
	bin := prebuilt(t, "cancelloop-glibc241")
	if bin == "" {
		t.Skip("needs the prebuilt cancelloop-glibc241 (scripts/arm64-vm-test links it against Debian 13's arm64 glibc)")
	}
	t.Parallel()
	root := fixtureRoot(t)
	host := mkTempDir(t, "kbox-it-cancel-")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(host, "cancelloop"), string(b), 0o755)
	const n = 500
	gate := regexp.MustCompile(`cancel promotion: on \(static, no clone/clone3 wrapper sites\)`)
	counts := regexp.MustCompile(`cancel promotion: (\d+) cancellation calls promoted; (\d+) calls entered the cancel slots`)
	forEachVariant(t, "", func(t *testing.T, v variant) {
		opts := runOpts{Unpriv: v.unpriv, Args: []string{"--syscall-mode=rewrite", "-v", "-S", root,
			"-b", host + ":/var:ro", "--", "/var/cancelloop", "/var/cancelloop", strconv.Itoa(n)}}
		out, errOut, code := runKbox(t, opts)
		if code != 0 || out != strconv.Itoa(n)+" opens, "+strconv.Itoa(64*n)+" bytes\n" {
			t.Fatalf("%s: exit %d, stdout %q\nstderr:\n%s", cmdline(opts), code, out, tail(errOut, 3000))
		}
		if !gate.MatchString(errOut) {
			t.Errorf("%s: no 'cancel promotion: on' line:\n%s", cmdline(opts), tail(errOut, 3000))
		}
		m := counts.FindStringSubmatch(errOut)
		if m == nil {
			t.Fatalf("%s: no cancel promotion counters:\n%s", cmdline(opts), tail(errOut, 3000))
		}
		sites, _ := strconv.Atoi(m[1])
		entered, _ := strconv.Atoi(m[2])
		t.Logf("%d cancellation calls promoted, %d calls entered the cancel slots", sites, entered)
		// open and close: two promoted calls per iteration at least.
		if sites < 2 || entered < 2*n {
			t.Errorf("%d sites promoted, %d slot entries; want >= 2 and >= %d", sites, entered, 2*n)
		}
	})
}
