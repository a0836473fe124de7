package integration

import (
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kbox-go/kbox/internal/abi"
)

// The in-process tiers (trap, rewrite) exist where internal/inproc has a
// port: x86_64 today. On another architecture (arm64, run by
// scripts/arm64-vm-test) a kbox without them answers
// --syscall-mode=trap|rewrite with a usage error, and the tests of those
// tiers skip, naming the missing port. On amd64 nothing is skipped: a
// missing in-process tier there is a failure.

var (
	tiersOnce sync.Once
	kboxTiers map[string]bool // tiers the kbox under test reports (kbox --version)
	tiersLine string
)

// builtTiers returns the tiers kbox --version lists, e.g. "tiers: seccomp,
// trap, rewrite".
func builtTiers(t testing.TB) map[string]bool {
	t.Helper()
	tiersOnce.Do(func() {
		kboxTiers = map[string]bool{}
		out, err := exec.Command(kboxBin, "--version").Output()
		tiersLine = strings.TrimSpace(string(out))
		if err != nil {
			return
		}
		_, list, ok := strings.Cut(tiersLine, "tiers: ")
		if !ok {
			return
		}
		for _, f := range strings.Split(strings.TrimSuffix(list, ")"), ",") {
			kboxTiers[strings.TrimSpace(f)] = true
		}
	})
	return kboxTiers
}

// requireTier skips t when tier is an in-process tier the kbox under test
// lacks and this is not amd64 (where every tier must be present).
func requireTier(t testing.TB, tier string) {
	t.Helper()
	if tier != "trap" && tier != "rewrite" || runtime.GOARCH == "amd64" {
		return
	}
	if !builtTiers(t)[tier] {
		t.Skipf("the %s tier is not available on %s: internal/inproc has no %s port in this kbox yet (%s)",
			tier, runtime.GOARCH, runtime.GOARCH, tiersLine)
	}
}

// requireTiersOf applies requireTier to the --syscall-mode of a kbox
// command line (argv may start with setpriv and its options).
func requireTiersOf(t testing.TB, argv []string) {
	t.Helper()
	for _, a := range argv {
		if mode, ok := strings.CutPrefix(a, "--syscall-mode="); ok {
			requireTier(t, mode)
		}
	}
}

// nr is the host architecture's number of the named syscall, as a string
// for sc's "syscall NR ..." op: the tables name calls, never x86 numbers.
func nr(name string) string { return strconv.Itoa(abi.Host().MustNr(name)) }

// hasSyscall reports whether the named syscall exists on this
// architecture (arm64 has no legacy open, stat, dup2, fork...).
func hasSyscall(name string) bool {
	_, ok := abi.Host().Nr(name)
	return ok
}

// testedTiers returns the tiers of tiers this kbox has, for a test that
// loops over tiers in one body: the missing in-process tiers (not amd64,
// see requireTier) are left out with a log line naming them, and when none
// is left the test skips, saying why.
func testedTiers(t testing.TB, tiers []string) []string {
	t.Helper()
	if runtime.GOARCH == "amd64" {
		return tiers
	}
	var have []string
	for _, tier := range tiers {
		if (tier == "trap" || tier == "rewrite") && !builtTiers(t)[tier] {
			t.Logf("the %s tier is left out: not available on %s (internal/inproc has no %s port in this kbox yet: %s)",
				tier, runtime.GOARCH, runtime.GOARCH, tiersLine)
			continue
		}
		have = append(have, tier)
	}
	if len(have) == 0 {
		t.Skipf("none of the tiers %v is available on %s: internal/inproc has no %s port in this kbox yet (%s)",
			tiers, runtime.GOARCH, runtime.GOARCH, tiersLine)
	}
	return have
}
