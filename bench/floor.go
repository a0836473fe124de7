package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// floorRows are the results the floor programs print, per program.
var floorRows = map[string][]string{
	"plain":         {"plain", "plain_filtered"},
	"sigsys_trap":   {"sigsys_trap"},
	"sud_trap":      {"sud_trap", "sud_allowed"},
	"unotify_rt":    {"unotify_rt", "unotify_rt_sync"},
	"unotify_addfd": {"unotify_addfd", "unotify_addfd_sync"},
	"unotify_stat":  {"unotify_stat", "unotify_stat_sync"},
	"cgocallback":   {"cgo_call", "cgo_callback", "sigsys_cgo_callback"},
	"tp_switch":     {"tp_switch"},
}

// floorCalibration names, for a program whose rows do not each take N
// calls, the line giving its run time per unit of -n: cgocallback runs
// several rounds of several phases.
var floorCalibration = map[string]string{"cgocallback": "wall_per_n"}

// floorResult holds the floors' samples and whether the kernel has
// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP.
type floorResult struct {
	Series   []*series `json:"series"`
	SyncWake string    `json:"sync_wake_up"` // yes, no, or unknown

	progs []*floorProg
}

// floorProg is one floor program, sized by its calibration run.
type floorProg struct {
	name string
	argv []string // nil when calibration failed
	rows map[string]*series
}

func (f *floorResult) get(row string) *series {
	for _, s := range f.Series {
		if s.Row == row {
			return s
		}
	}
	return nil
}

// prepareFloors calibrates each floor program. The runs themselves are
// made by runOnce, interleaved with the per-call rows, so that floors and
// kbox see the same machine load.
func prepareFloors(e *env, p params) *floorResult {
	res := &floorResult{SyncWake: "unknown"}
	for _, name := range append(append([]string{}, floorPrograms...), goFloorPrograms...) {
		argv := func(n int64) []string {
			a := []string{filepath.Join(e.floorBin, name), "-n", itoa(n)}
			if name == "unotify_addfd" || name == "unotify_stat" {
				a = append(a, "-f", filepath.Join(e.root, "etc/hostname"))
			}
			return a
		}
		fp := &floorProg{name: name, rows: map[string]*series{}}
		for _, row := range floorRows[name] {
			fp.rows[row] = &series{Row: row, Runner: "floor", Unit: "µs"}
			res.Series = append(res.Series, fp.rows[row])
		}
		res.progs = append(res.progs, fp)
		if err := e.goFloorErr[name]; err != nil {
			fp.fail(err)
			continue
		}
		// Calibrate on the slowest line the program prints (or its
		// floorCalibration line), with more iterations than bench needs:
		// the floors' first calls are noticeably slower (cold caches,
		// first fault-ins).
		o := run(proc{argv: argv(5 * p.calN), timeout: 2 * time.Minute})
		if o.err != nil {
			fp.fail(o.err)
			continue
		}
		slowest := 0.0
		for row := range fp.rows {
			if ns, _, err := parseResult(o.stdout, row); err == nil {
				slowest = max(slowest, ns)
			}
		}
		if line := floorCalibration[name]; line != "" {
			slowest = 0
			if ns, _, err := parseResult(o.stdout, line); err == nil {
				slowest = ns
			} else {
				fp.fail(err)
			}
		}
		if slowest > 0 {
			fp.argv = argv(iterationsFor(p.floorTarget, slowest, p))
		}
	}
	return res
}

func (fp *floorProg) fail(err error) {
	for _, s := range fp.rows {
		s.fail(err)
	}
}

// runOnce runs every floor program once and records its results.
func (f *floorResult) runOnce() {
	for _, fp := range f.progs {
		if fp.argv == nil {
			continue
		}
		o := run(proc{argv: fp.argv, timeout: 2 * time.Minute})
		if o.err != nil {
			fp.fail(o.err)
			continue
		}
		if strings.Contains(o.stdout, "sync_wake_up yes") {
			f.SyncWake = "yes"
		} else if strings.Contains(o.stdout, "sync_wake_up no") {
			f.SyncWake = "no"
		}
		for row, s := range fp.rows {
			if ns, iters, err := parseResult(o.stdout, row); err == nil {
				s.add(ns / 1000)
				s.Iterations = append(s.Iterations, iters)
				s.Argv = fp.argv
			}
		}
	}
}

func (f *floorResult) finish() {
	for _, s := range f.Series {
		s.finish()
	}
}

// distance compares one kbox cell with the physical floor of its tier,
// on medians and on minima (the minimum is the run least disturbed by
// other work on the machine, for kbox and floor alike).
type distance struct {
	Tier     string  `json:"tier"`
	Row      string  `json:"row"`
	Kbox     float64 `json:"kbox_median_us"`
	Floor    float64 `json:"floor_median_us"`
	KboxMin  float64 `json:"kbox_min_us"`
	FloorMin float64 `json:"floor_min_us"`
	Formula  string  `json:"floor_formula"`
}

// syscallsPerIteration counts the calls one bench iteration makes.
var syscallsPerIteration = map[string]float64{"lseek_read": 2, "lseek_write": 2, "getpid": 1}

// trappedPerIteration counts the calls one bench iteration makes that the
// trap tier intercepts (all of them); answeredInKbox are the rows whose
// call kbox answers without a host call of the same cost.
var (
	trappedPerIteration = map[string]float64{"stat": 1, "open_close": 2, "lseek_read": 2, "lseek_write": 2, "getpid": 1, "enosys": 1}
	answeredInKbox      = map[string]bool{"getpid": true, "enosys": true}
)

// term is a summary with a name, for building floor formulas.
type term struct {
	name string
	s    summary
}

// distances computes, for each kbox tier, how far each row is from what
// the interception mechanism alone costs:
//   - seccomp: a notified call costs at least native + one round trip
//     (unotify_rt, with or without SYNC_WAKE_UP, whichever is cheaper);
//     and stat at least unotify_stat, the round trip with the host calls
//     kbox's safety rules require of a path call (a second stat line);
//     open_close at least unotify_addfd; enosys at least the bare round
//     trip; calls allowed in BPF at least native plus the filter's cost
//     per call (plain_filtered − plain).
//   - trap: every guest call traps and is served in Go, so each costs at
//     least sigsys_trap + tp_switch + sigsys_cgo_callback (the SIGSYS
//     round trip, the thread pointer switched to kbox's and back, and a
//     callback into Go from the handler); open_close and the lseek rows
//     add the native call(s) kbox makes for the guest, getpid and enosys
//     add nothing. stat is answered by the stat cache in the handler:
//     native + sigsys_trap. Without the tp_switch or cgocallback floor,
//     the others alone.
//   - rewrite: lseek+read and lseek+write run from the patched sites'
//     fast path, natively under the filter (native + the filter's cost
//     per call); stat from the fast path's stat cache (native); open_close
//     and enosys enter Go directly, without a signal: tp_switch +
//     cgo_callback per call, and open_close the native calls; getpid is
//     answered without a syscall (no floor).
func distances(perCall []*series, fl *floorResult) []distance {
	cell := func(row, runner string) term {
		for _, s := range perCall {
			if s.Row == row && s.Runner == runner && s.Summary.N > 0 {
				return term{runner, s.Summary}
			}
		}
		return term{}
	}
	floor := func(rows ...string) term {
		var best term
		for _, row := range rows {
			if s := fl.get(row); s != nil && s.Summary.N > 0 && (best.s.N == 0 || s.Summary.Median < best.s.Median) {
				best = term{row, s.Summary}
			}
		}
		return best
	}
	rt := floor("unotify_rt", "unotify_rt_sync")
	addfd := floor("unotify_addfd", "unotify_addfd_sync")
	safeStat := floor("unotify_stat", "unotify_stat_sync")
	trap := floor("sigsys_trap")
	cgoCB := floor("sigsys_cgo_callback")
	tpSwitch := floor("tp_switch")
	direct := floor("cgo_callback")
	plain, filtered := floor("plain"), floor("plain_filtered")
	filter := term{"filter", summary{
		Median: max(0, filtered.s.Median-plain.s.Median),
		Min:    max(0, filtered.s.Min-plain.s.Min), N: min(plain.s.N, filtered.s.N)}}

	var tiers []string
	for _, s := range perCall {
		if strings.HasPrefix(s.Runner, "kbox-") && !contains(tiers, s.Runner) {
			tiers = append(tiers, s.Runner)
		}
	}
	var out []distance
	add := func(tier, row string, parts []term, weights []float64) {
		k := cell(row, tier)
		if k.s.N == 0 {
			return
		}
		d := distance{Tier: tier, Row: row, Kbox: k.s.Median, KboxMin: k.s.Min}
		var names []string
		for i, t := range parts {
			if t.s.N == 0 {
				return
			}
			d.Floor += weights[i] * t.s.Median
			d.FloorMin += weights[i] * t.s.Min
			name := t.name
			if weights[i] != 1 {
				name = fmt.Sprintf("%g×%s", weights[i], name)
			}
			names = append(names, name)
		}
		d.Formula = strings.Join(names, " + ")
		out = append(out, d)
	}
	for _, tier := range tiers {
		if tier == "kbox-seccomp" || tier == "kbox-overlay" || tier == baselineRunner {
			add(tier, "stat", []term{cell("stat", "native"), rt}, []float64{1, 1})
			add(tier, "stat", []term{safeStat}, []float64{1})
			add(tier, "open_close", []term{addfd}, []float64{1})
			add(tier, "enosys", []term{rt}, []float64{1})
			for _, row := range []string{"lseek_read", "lseek_write", "getpid"} {
				add(tier, row, []term{cell(row, "native"), filter}, []float64{1, syscallsPerIteration[row]})
			}
			continue
		}
		// A trapped call costs sigsys_trap plus the callback into Go (when
		// its floor was measured); rows whose call kbox makes for the
		// guest add the native call.
		// entered adds the native calls of row and, per call that enters
		// Go, the entry's terms that were measured.
		entered := func(row string, entry ...term) {
			var parts []term
			var weights []float64
			if !answeredInKbox[row] {
				parts, weights = []term{cell(row, "native")}, []float64{1}
			}
			n := trappedPerIteration[row]
			for _, e := range entry {
				if e.s.N > 0 {
					parts, weights = append(parts, e), append(weights, n)
				}
			}
			add(tier, row, parts, weights)
		}
		if tier == "kbox-trap" {
			for _, row := range benchTests {
				if row == "stat" {
					add(tier, row, []term{cell(row, "native"), trap}, []float64{1, 1})
					continue
				}
				entered(row, trap, tpSwitch, cgoCB)
			}
			continue
		}
		// rewrite: descriptor-local calls run from the fast path (native
		// under the filter), stat from its stat cache; the others enter
		// Go directly.
		add(tier, "stat", []term{cell("stat", "native")}, []float64{1})
		for _, row := range []string{"open_close", "enosys"} {
			entered(row, tpSwitch, direct)
		}
		for _, row := range []string{"lseek_read", "lseek_write"} {
			add(tier, row, []term{cell(row, "native"), filter}, []float64{1, syscallsPerIteration[row]})
		}
	}
	return out
}
