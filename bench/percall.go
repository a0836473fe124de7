package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// benchTests are the per-call rows: the tests of tests/guest/bench.c.
// enosys (a syscall number no kernel has) is kbox's bare round trip.
var benchTests = []string{"stat", "open_close", "lseek_read", "lseek_write", "getpid", "enosys"}

// series is one cell of a table: all samples of one row on one runner.
type series struct {
	Row        string    `json:"row"`
	Runner     string    `json:"runner"`
	Unit       string    `json:"unit"`
	Samples    []float64 `json:"samples"`
	Iterations []int64   `json:"iterations,omitempty"`
	Argv       []string  `json:"argv,omitempty"`
	Errors     []string  `json:"errors,omitempty"`
	Skip       string    `json:"skip,omitempty"` // not applicable on this runner (shown instead of a number)
	Summary    summary   `json:"summary"`
}

func (s *series) add(v float64) { s.Samples = append(s.Samples, v) }

func (s *series) fail(err error) {
	if len(s.Errors) < 3 {
		s.Errors = append(s.Errors, err.Error())
	}
}

func (s *series) finish() { s.Summary = summarize(s.Samples) }

// parseResult finds "<name> <ns per call> <iterations>" in out.
func parseResult(out, name string) (ns float64, iters int64, err error) {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != name {
			continue
		}
		ns, err = strconv.ParseFloat(f[1], 64)
		if err == nil {
			iters, err = strconv.ParseInt(f[2], 10, 64)
		}
		if err == nil && ns > 0 {
			return ns, iters, nil
		}
	}
	return 0, 0, fmt.Errorf("no %q result in output %q", name, strings.TrimSpace(out))
}

// iterationsFor sizes a run so it takes about target at nsPerCall.
func iterationsFor(target time.Duration, nsPerCall float64, p params) int64 {
	n := int64(float64(target.Nanoseconds()) / nsPerCall)
	return min(max(n, p.minN), p.maxN)
}

// measurePerCall runs every bench test on every usable runner: one
// calibration invocation each, then p.runs invocations, interleaved across
// runners (and with one run of each floor program per round) so that drift
// in the machine's load spreads over all columns.
func measurePerCall(e *env, runners []*runner, floors *floorResult, p params, log *logger) []*series {
	type cell struct {
		r *runner
		s *series
		n int64
	}
	var cells [][]*cell // [test][runner]
	var out []*series
	for _, test := range benchTests {
		var row []*cell
		for _, r := range runners {
			if !r.usable() {
				continue
			}
			c := &cell{r: r, s: &series{Row: test, Runner: r.Name, Unit: "µs"}}
			o := run(r.benchProc(e, test, p.calN))
			ns, _, err := parseResult(o.stdout, test)
			if o.err != nil || err != nil {
				c.s.fail(firstErr(o.err, err))
			} else {
				c.n = iterationsFor(p.perCallTarget, ns, p)
			}
			row = append(row, c)
			out = append(out, c.s)
		}
		cells = append(cells, row)
	}
	for i := 0; i < p.runs; i++ {
		log.printf("per-call rows and floors: run %d/%d", i+1, p.runs)
		for _, row := range cells {
			for _, c := range row {
				if c.n == 0 {
					continue
				}
				pr := c.r.benchProc(e, c.s.Row, c.n)
				c.s.Argv = pr.argv
				o := run(pr)
				ns, iters, err := parseResult(o.stdout, c.s.Row)
				if o.err != nil || err != nil {
					c.s.fail(firstErr(o.err, err))
					continue
				}
				c.s.add(ns / 1000)
				c.s.Iterations = append(c.s.Iterations, iters)
			}
		}
		floors.runOnce()
	}
	floors.finish()
	for _, s := range out {
		s.finish()
	}
	return out
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
