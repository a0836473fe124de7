package integration

import (
	"strings"
	"testing"
)

// TestBrkHuge: brk to an address beyond any user address (which rounding
// up to a page wraps to 0) leaves the break where it was, as the kernel
// does; the in-process tiers once "shrank" it over everything and died of
// SIGSEGV (found by sysfuzz).
func TestBrkHuge(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := freshRoot(t, v.uid())
		for _, tier := range testedTiers(t, allTiers) {
			opts := runOpts{Unpriv: v.unpriv, Args: []string{"--syscall-mode=" + tier, "-r", root, "--", "/bin/sc",
				"syscall", nr("brk"), "0", ",", "syscall", nr("brk"), "-2", ",", "syscall", nr("brk"), "0"}}
			out, errOut, code := runKbox(t, opts)
			got := lines(out)
			if code != 0 || len(got) != 3 || !strings.HasPrefix(got[0], "syscall: ok ") || got[1] != got[0] || got[2] != got[0] {
				t.Errorf("%s: exit %d, stdout %q, want three equal breaks\nstderr:\n%s", cmdline(opts), code, got, errOut)
			}
		}
	})
}
