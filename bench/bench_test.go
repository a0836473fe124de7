package main

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

// These tests cover the harness's pure helpers only; no benchmark runs
// from go test.

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in            []float64
		med, min, max float64
	}{
		{[]float64{3}, 3, 3, 3},
		{[]float64{5, 1, 3}, 3, 1, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
		{[]float64{2, 2, 9, 1, 2}, 2, 1, 9},
	} {
		s := summarize(tc.in)
		if s.Median != tc.med || s.Min != tc.min || s.Max != tc.max || s.N != len(tc.in) {
			t.Errorf("summarize(%v) = %+v, want median %v min %v max %v", tc.in, s, tc.med, tc.min, tc.max)
		}
	}
	if s := summarize(nil); s != (summary{}) {
		t.Errorf("summarize(nil) = %+v, want zero", s)
	}
	if got := fmtCell(summarize(nil), 5, summarize([]float64{1}), false); got != "-" {
		t.Errorf("fmtCell of no samples = %q", got)
	}
	in := []float64{3, 1, 2}
	if median(in) != 2 || in[0] != 3 {
		t.Errorf("median must not reorder its input: %v", in)
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0.1234, "0.123"}, {1.234, "1.23"}, {12.34, "12.3"}, {123.4, "123"}, {math.NaN(), "-"},
	} {
		if got := fmtNum(tc.v); got != tc.want {
			t.Errorf("fmtNum(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
	for _, tc := range []struct {
		v, base float64
		want    string
	}{
		{2, 1, "×2.00"}, {1.5, 3, "×0.50"}, {250, 2, "×125"}, {1, 0, ""}, {math.NaN(), 1, ""},
	} {
		if got := fmtRatio(tc.v, tc.base); got != tc.want {
			t.Errorf("fmtRatio(%v, %v) = %q, want %q", tc.v, tc.base, got, tc.want)
		}
	}
	s := summarize([]float64{1.5, 1.25, 2})
	if got := fmtSummary(s, 3); got != "1.50 [1.25–2.00]" {
		t.Errorf("fmtSummary = %q", got)
	}
	if got := fmtSummary(s, 5); got != "1.50 [1.25–2.00] (n=3)" {
		t.Errorf("fmtSummary with fewer runs = %q", got)
	}
	if got := fmtSummary(summarize([]float64{7}), 1); got != "7.00" {
		t.Errorf("fmtSummary of one sample = %q", got)
	}
	base := summarize([]float64{0.5})
	if got := fmtCell(s, 3, base, false); got != "1.50 [1.25–2.00] ×3.00" {
		t.Errorf("fmtCell = %q", got)
	}
	if got := fmtCell(base, 1, base, true); got != "0.500" {
		t.Errorf("fmtCell of the baseline = %q", got)
	}
}

func TestTableAlignsRunes(t *testing.T) {
	out := table([][]string{{"a", "µs–×", "z"}, {"long", "b", "c"}})
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("table lines = %q", lines)
	}
	if i, j := strings.Index(lines[0], "z"), strings.Index(lines[1], "c"); len([]rune(lines[0][:i])) != len([]rune(lines[1][:j])) {
		t.Errorf("columns not aligned:\n%s", out)
	}
}

func TestParseResult(t *testing.T) {
	ns, n, err := parseResult("stat 1921.3 20000\ngetpid 264.9 20000\n", "getpid")
	if err != nil || ns != 264.9 || n != 20000 {
		t.Errorf("parseResult = %v, %v, %v", ns, n, err)
	}
	if _, _, err := parseResult("sync_wake_up yes\n", "unotify_rt_sync"); err == nil {
		t.Error("parseResult found a missing row")
	}
}

func TestParseArgs(t *testing.T) {
	c, err := parseArgs([]string{"--quick"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.quick || c.runs != 1 || !c.noInstall || c.json {
		t.Errorf("--quick: %+v, want quick, 1 run, no installs", c)
	}
	if len(c.peers) != len(allPeers) {
		t.Errorf("--quick peers = %v, want all", c.peers)
	}
	p := paramsFor(c)
	if p.runs != 1 || p.loopIters >= 2000 {
		t.Errorf("quick params = %+v, want 1 run and a short loop", p)
	}

	c, err = parseArgs(nil)
	if err != nil || c.quick || c.runs != 5 || c.noInstall {
		t.Errorf("defaults: %+v, %v; want 5 runs, installs allowed", c, err)
	}
	c, err = parseArgs([]string{"--json", "--runs", "7", "--no-install", "--peers", "bwrap,proot,bwrap"})
	if err != nil || !c.json || c.runs != 7 || !c.noInstall || strings.Join(c.peers, ",") != "bwrap,proot" {
		t.Errorf("flags: %+v, %v", c, err)
	}
	c, err = parseArgs([]string{"--quick", "--runs=3", "--peers=none"})
	if err != nil || c.runs != 3 || len(c.peers) != 0 {
		t.Errorf("--quick --runs=3 --peers=none: %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"--peers", "docker"}, {"--runs", "-1"}, {"--bogus"}, {"extra"}} {
		if _, err := parseArgs(bad); err == nil {
			t.Errorf("parseArgs(%q) accepted", bad)
		}
	}
}

func TestShortCause(t *testing.T) {
	long := "setCapsAndCallSelf([" + strings.Repeat("--flag=value ", 20) + "], &{[CAP_CHOWN]}): error executing /proc/self/exe: no such file or directory"
	if got := shortCause(long); got != "setCapsAndCallSelf(...): error executing /proc/self/exe: no such file or directory" {
		t.Errorf("shortCause = %q", got)
	}
	if got := shortCause("error executing umounter: x"); got != "error executing umounter: x" {
		t.Errorf("shortCause of a short message = %q", got)
	}
}

func TestDistances(t *testing.T) {
	mk := func(row, runner string, xs ...float64) *series {
		s := &series{Row: row, Runner: runner, Samples: xs}
		s.finish()
		return s
	}
	perCall := []*series{
		mk("stat", "native", 2, 1), mk("stat", "kbox-seccomp", 20, 10),
		mk("getpid", "native", 0.2), mk("getpid", "kbox-seccomp", 0.5),
		mk("enosys", "kbox-seccomp", 9),
	}
	fl := &floorResult{Series: []*series{
		mk("unotify_rt", "floor", 6, 5), mk("unotify_rt_sync", "floor", 7),
		mk("plain", "floor", 0.2), mk("plain_filtered", "floor", 0.3),
	}}
	got := map[string]distance{}
	for _, d := range distances(perCall, fl) {
		got[d.Row] = d
	}
	if d := got["stat"]; d.Formula != "native + unotify_rt" || d.Floor != 1.5+5.5 || d.FloorMin != 1+5 || d.KboxMin != 10 {
		t.Errorf("stat distance = %+v", d)
	}
	if d := got["getpid"]; d.Formula != "native + filter" || math.Abs(d.Floor-0.3) > 1e-9 {
		t.Errorf("getpid distance = %+v", d)
	}
	if d := got["enosys"]; d.Floor != 5.5 {
		t.Errorf("enosys distance = %+v", d)
	}
	if _, ok := got["open_close"]; ok {
		t.Error("open_close distance without an unotify_addfd floor")
	}
}

func TestTrapDistances(t *testing.T) {
	mk := func(row, runner string, xs ...float64) *series {
		s := &series{Row: row, Runner: runner, Samples: xs}
		s.finish()
		return s
	}
	perCall := []*series{
		mk("stat", "native", 1), mk("stat", "kbox-trap", 9),
		mk("open_close", "native", 3), mk("open_close", "kbox-trap", 30),
		mk("getpid", "native", 0.2), mk("getpid", "kbox-trap", 4, 5),
		mk("enosys", "kbox-trap", 4),
	}
	trapFloor := mk("sigsys_trap", "floor", 3, 2)
	fl := &floorResult{Series: []*series{trapFloor, mk("sigsys_cgo_callback", "floor", 0.5, 0.25)}}
	got := map[string]distance{}
	for _, d := range distances(perCall, fl) {
		got[d.Row] = d
	}
	if d := got["getpid"]; d.Formula != "sigsys_trap + sigsys_cgo_callback" || d.Floor != 2.5+0.375 || d.FloorMin != 2.25 || d.Kbox != 4.5 {
		t.Errorf("getpid distance = %+v", d)
	}
	if d := got["enosys"]; d.Formula != "sigsys_trap + sigsys_cgo_callback" {
		t.Errorf("enosys distance = %+v", d)
	}
	if d := got["stat"]; d.Formula != "native + sigsys_trap" || d.Floor != 1+2.5 {
		t.Errorf("stat distance (the stat cache in the handler) = %+v", d)
	}
	if d := got["open_close"]; d.Formula != "native + 2×sigsys_trap + 2×sigsys_cgo_callback" || d.Floor != 3+5+0.75 {
		t.Errorf("open_close distance = %+v", d)
	}
	// Without the cgo floor, sigsys_trap alone.
	fl = &floorResult{Series: []*series{trapFloor}}
	for _, d := range distances(perCall, fl) {
		if d.Row == "getpid" && (d.Formula != "sigsys_trap" || d.Floor != 2.5) {
			t.Errorf("getpid distance without the cgo floor = %+v", d)
		}
	}
}

// TestEntryDistances: with the thread-pointer floor measured, a call
// that enters Go costs tp_switch besides the callback: after a SIGSYS
// in the trap tier, directly (cgo_callback) in the rewrite tier; a stat
// under rewrite is answered by the fast path's stat cache (native).
func TestEntryDistances(t *testing.T) {
	mk := func(row, runner string, xs ...float64) *series {
		s := &series{Row: row, Runner: runner, Samples: xs}
		s.finish()
		return s
	}
	perCall := []*series{
		mk("stat", "native", 1), mk("stat", "kbox-rewrite", 1.2),
		mk("open_close", "native", 3), mk("open_close", "kbox-rewrite", 20), mk("open_close", "kbox-trap", 30),
		mk("enosys", "kbox-rewrite", 8), mk("getpid", "kbox-trap", 12),
	}
	fl := &floorResult{Series: []*series{mk("sigsys_trap", "floor", 3), mk("sigsys_cgo_callback", "floor", 0.5),
		mk("cgo_callback", "floor", 0.25), mk("tp_switch", "floor", 7)}}
	got := map[string]distance{}
	for _, d := range distances(perCall, fl) {
		got[d.Tier+"/"+d.Row] = d
	}
	for key, want := range map[string]struct {
		formula string
		floor   float64
	}{
		"kbox-trap/getpid":        {"sigsys_trap + tp_switch + sigsys_cgo_callback", 10.5},
		"kbox-trap/open_close":    {"native + 2×sigsys_trap + 2×tp_switch + 2×sigsys_cgo_callback", 3 + 21},
		"kbox-rewrite/stat":       {"native", 1},
		"kbox-rewrite/enosys":     {"tp_switch + cgo_callback", 7.25},
		"kbox-rewrite/open_close": {"native + 2×tp_switch + 2×cgo_callback", 3 + 14.5},
	} {
		if d := got[key]; d.Formula != want.formula || d.Floor != want.floor {
			t.Errorf("%s: %q = %g, want %q = %g", key, d.Formula, d.Floor, want.formula, want.floor)
		}
	}
}

func TestNotApplicableCell(t *testing.T) {
	r := &report{Runs: 1, Runners: []*runner{{Name: "native"}, {Name: "kbox-trap", NoFork: "single-process"}}}
	native := &series{Row: "sh_true10", Runner: "native", Samples: []float64{10}}
	native.finish()
	out := r.grid([]string{"sh_true10"}, nil, []string{"native", "kbox-trap"},
		[]*series{native, {Row: "sh_true10", Runner: "kbox-trap", Skip: naForks}})
	if !strings.Contains(out, "n/a: forks") || strings.Contains(out, "error") {
		t.Errorf("grid with a not-applicable cell:\n%s", out)
	}
	forks := 0
	for _, c := range commands(10) {
		if c.Forks {
			forks++
		}
	}
	if forks != 2 {
		t.Errorf("%d commands marked Forks, want 2 (the shell rows)", forks)
	}
	if !forkRefused("kbox: warning: the guest called clone: --syscall-mode=trap runs single-process ...") || forkRefused("tar: short write") {
		t.Error("forkRefused misclassifies kbox's clone warning")
	}
}

// TestSafeStatDistance: with the unotify_stat floor measured, the seccomp
// tiers (and --baseline's column, also seccomp) get a second stat line
// against it, and the baseline is not taken for an in-process tier.
func TestSafeStatDistance(t *testing.T) {
	mk := func(row, runner string, xs ...float64) *series {
		s := &series{Row: row, Runner: runner, Samples: xs}
		s.finish()
		return s
	}
	perCall := []*series{
		mk("stat", "native", 2), mk("stat", "kbox-seccomp", 20), mk("stat", baselineRunner, 24),
	}
	fl := &floorResult{Series: []*series{
		mk("unotify_rt", "floor", 6), mk("unotify_stat", "floor", 19), mk("unotify_stat_sync", "floor", 16),
		mk("sigsys_trap", "floor", 3),
	}}
	got := map[string][]string{}
	for _, d := range distances(perCall, fl) {
		got[d.Tier] = append(got[d.Tier], fmt.Sprintf("%s %s %g", d.Row, d.Formula, d.Floor))
	}
	want := []string{"stat native + unotify_rt 8", "stat unotify_stat_sync 16"}
	for _, tier := range []string{"kbox-seccomp", baselineRunner} {
		if !reflect.DeepEqual(got[tier], want) {
			t.Errorf("%s distances = %q, want %q", tier, got[tier], want)
		}
	}
}
