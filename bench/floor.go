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
	"unotify_rt":    {"unotify_rt", "unotify_rt_sync"},
	"unotify_addfd": {"unotify_addfd", "unotify_addfd_sync"},
}

// floorResult holds the floors' samples and whether the kernel has
// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP.
type floorResult struct {
	Series   []*series `json:"series"`
	SyncWake string    `json:"sync_wake_up"` // yes, no, or unknown
}

func (f *floorResult) get(row string) *series {
	for _, s := range f.Series {
		if s.Row == row {
			return s
		}
	}
	return nil
}

// measureFloors runs each floor program p.runs times, sized by one
// calibration run.
func measureFloors(e *env, p params, log *logger) *floorResult {
	res := &floorResult{SyncWake: "unknown"}
	for _, prog := range floorPrograms {
		argv := func(n int64) []string {
			a := []string{filepath.Join(e.floorBin, prog), "-n", itoa(n)}
			if prog == "unotify_addfd" {
				a = append(a, "-f", filepath.Join(e.root, "etc/hostname"))
			}
			return a
		}
		rows := map[string]*series{}
		for _, name := range floorRows[prog] {
			rows[name] = &series{Row: name, Runner: "floor", Unit: "µs"}
			res.Series = append(res.Series, rows[name])
		}
		// Calibrate on the slowest line the program prints, with more
		// iterations than bench needs: the floors' first calls are
		// noticeably slower (cold caches, first fault-ins).
		o := run(proc{argv: argv(5 * p.calN), timeout: 2 * time.Minute})
		if o.err != nil {
			for _, s := range rows {
				s.fail(o.err)
			}
			continue
		}
		slowest := 0.0
		for name := range rows {
			if ns, _, err := parseResult(o.stdout, name); err == nil {
				slowest = max(slowest, ns)
			}
		}
		if slowest == 0 {
			continue
		}
		n := iterationsFor(p.floorTarget, slowest, p)
		log.printf("floor %s: %d runs of %d iterations", prog, p.runs, n)
		for i := 0; i < p.runs; i++ {
			o := run(proc{argv: argv(n), timeout: 2 * time.Minute})
			if o.err != nil {
				for _, s := range rows {
					s.fail(o.err)
				}
				continue
			}
			if strings.Contains(o.stdout, "sync_wake_up yes") {
				res.SyncWake = "yes"
			} else if strings.Contains(o.stdout, "sync_wake_up no") {
				res.SyncWake = "no"
			}
			for name, s := range rows {
				if ns, iters, err := parseResult(o.stdout, name); err == nil {
					s.add(ns / 1000)
					s.Iterations = append(s.Iterations, iters)
					s.Argv = argv(n)
				}
			}
		}
	}
	for _, s := range res.Series {
		s.finish()
	}
	return res
}

// distance compares one kbox cell with the physical floor of its tier.
type distance struct {
	Tier    string  `json:"tier"`
	Row     string  `json:"row"`
	Kbox    float64 `json:"kbox_us"`
	Floor   float64 `json:"floor_us"`
	Formula string  `json:"floor_formula"`
	Ratio   float64 `json:"ratio"`
}

// syscallsPerIteration counts the calls one bench iteration makes.
var syscallsPerIteration = map[string]float64{"lseek_read": 2, "lseek_write": 2, "getpid": 1}

// distances computes, for each kbox tier, how far each row is from what
// the interception mechanism alone costs:
//   - seccomp: a notified call costs at least native + one round trip
//     (unotify_rt); open_close at least unotify_addfd; enosys at least the
//     bare round trip; calls allowed in BPF at least native plus the
//     filter's cost per call (plain_filtered − plain).
//   - trap / rewrite (in-process tiers): native + sigsys_trap per
//     intercepted call.
func distances(perCall []*series, fl *floorResult) []distance {
	get := func(row, runner string) float64 {
		for _, s := range perCall {
			if s.Row == row && s.Runner == runner && s.Summary.N > 0 {
				return s.Summary.Median
			}
		}
		return 0
	}
	fget := func(row string) float64 {
		if s := fl.get(row); s != nil && s.Summary.N > 0 {
			return s.Summary.Median
		}
		return 0
	}
	rt, addfd, rtName, addfdName := fget("unotify_rt"), fget("unotify_addfd"), "unotify_rt", "unotify_addfd"
	if fl.SyncWake == "yes" && fget("unotify_rt_sync") > 0 {
		// kbox turns SYNC_WAKE_UP on where the kernel has it.
		rt, addfd, rtName, addfdName = fget("unotify_rt_sync"), fget("unotify_addfd_sync"), "unotify_rt_sync", "unotify_addfd_sync"
	}
	filterCost := max(0, fget("plain_filtered")-fget("plain"))
	trap := fget("sigsys_trap")

	runners := map[string]bool{}
	var tiers []string
	for _, s := range perCall {
		if strings.HasPrefix(s.Runner, "kbox-") && !runners[s.Runner] {
			runners[s.Runner] = true
			tiers = append(tiers, s.Runner)
		}
	}
	var out []distance
	add := func(tier, row string, floor float64, formula string) {
		k := get(row, tier)
		if k == 0 || floor <= 0 {
			return
		}
		out = append(out, distance{Tier: tier, Row: row, Kbox: k, Floor: floor, Formula: formula, Ratio: k / floor})
	}
	for _, tier := range tiers {
		if tier == "kbox-seccomp" {
			nat := get("stat", "native")
			add(tier, "stat", nat+rt, fmt.Sprintf("native %s + %s %s", fmtNum(nat), rtName, fmtNum(rt)))
			add(tier, "open_close", addfd, addfdName)
			add(tier, "enosys", rt, rtName)
			for _, row := range []string{"lseek_read", "lseek_write", "getpid"} {
				nat := get(row, "native")
				k := syscallsPerIteration[row]
				add(tier, row, nat+k*filterCost, fmt.Sprintf("native %s + %g×filter %s", fmtNum(nat), k, fmtNum(filterCost)))
			}
			continue
		}
		for _, row := range []string{"stat", "open_close"} {
			nat := get(row, "native")
			add(tier, row, nat+trap, fmt.Sprintf("native %s + sigsys_trap %s", fmtNum(nat), fmtNum(trap)))
		}
		add(tier, "enosys", trap, "sigsys_trap")
	}
	return out
}
