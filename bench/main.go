// Command bench is kbox's benchmark harness: it builds kbox and the guest
// root from the working tree, then measures per-call syscall latency
// (tests/guest/bench.c) and whole commands natively, under every kbox tier
// that is available and under peer sandboxes (proot, bwrap, gVisor's runsc,
// fakechroot), plus the physical floors of the interception mechanisms
// (bench/floor/*.c). It prints a table, or with --json every raw sample.
//
// Usage: go run ./bench [--quick] [--json] [--runs N] [--no-install] [--peers LIST] [--baseline KBOX]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// config is the command line.
type config struct {
	quick     bool
	json      bool
	runs      int
	noInstall bool
	peers     []string
	baseline  string // another kbox binary measured in its seccomp tier
}

// parseArgs parses the command line; runs defaults to 5 (1 with --quick).
func parseArgs(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&c.quick, "quick", false, "CI smoke run: 1 run each, small iteration counts, no installs, no runsc build (< 60 s)")
	fs.BoolVar(&c.json, "json", false, "print one JSON document with every raw sample instead of the tables")
	fs.IntVar(&c.runs, "runs", 0, "runs per cell (default 5, or 1 with --quick)")
	fs.BoolVar(&c.noInstall, "no-install", false, "never apt-get install peers nor go install runsc")
	fs.StringVar(&c.baseline, "baseline", "", "also measure this kbox `binary` (e.g. one built from main) in the seccomp tier, as column "+baselineRunner+", in the same run")
	peers := fs.String("peers", strings.Join(allPeers, ","), "comma-separated peers to compare (proot,bwrap,runsc,fakechroot), or none")
	if err := fs.Parse(args); err != nil {
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		return c, fmt.Errorf("%v\nusage: go run ./bench [flags]\n%s", err, b.String())
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.quick {
		c.noInstall = true
	}
	switch {
	case c.runs < 0:
		return c, fmt.Errorf("--runs must be at least 1")
	case c.runs == 0 && c.quick:
		c.runs = 1
	case c.runs == 0:
		c.runs = 5
	}
	for _, p := range strings.Split(*peers, ",") {
		p = strings.TrimSpace(p)
		switch {
		case p == "" || p == "none":
		case contains(allPeers, p):
			if !contains(c.peers, p) {
				c.peers = append(c.peers, p)
			}
		default:
			return c, fmt.Errorf("unknown peer %q (known: %s)", p, strings.Join(allPeers, ", "))
		}
	}
	return c, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// params are the sizes derived from the config.
type params struct {
	runs          int
	calN          int64         // iterations of a calibration invocation
	minN, maxN    int64         // bounds of a run's iterations
	perCallTarget time.Duration // one per-call run
	floorTarget   time.Duration // one round of a floor program
	loopIters     int           // the shell loop's count
	cellBudget    time.Duration // whole-command time per cell before runs are cut
}

func paramsFor(c config) params {
	if c.quick {
		return params{runs: c.runs, calN: 100, minN: 50, maxN: 200000,
			perCallTarget: 20 * time.Millisecond, floorTarget: 20 * time.Millisecond,
			loopIters: 100, cellBudget: 5 * time.Second}
	}
	return params{runs: c.runs, calN: 1000, minN: 200, maxN: 5000000,
		perCallTarget: 300 * time.Millisecond, floorTarget: 300 * time.Millisecond,
		loopIters: 2000, cellBudget: 60 * time.Second}
}

// logger prints progress on stderr with the elapsed time.
type logger struct{ start time.Time }

func (l *logger) printf(format string, args ...any) {
	d := time.Since(l.start).Round(time.Second)
	fmt.Fprintf(os.Stderr, "[%02d:%02d] %s\n", int(d.Minutes()), int(d.Seconds())%60, fmt.Sprintf(format, args...))
}

func main() {
	cfg, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := benchmark(cfg, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func benchmark(cfg config, args []string) error {
	log := &logger{start: time.Now()}
	p := paramsFor(cfg)
	rep := &report{Machine: describeMachine(), Runs: cfg.runs, Quick: cfg.quick,
		Command: strings.TrimSpace("go run ./bench " + strings.Join(args, " "))}

	e, err := setup(log)
	if e != nil {
		defer e.cleanup()
	}
	if err != nil {
		return err
	}
	rep.Root = e.root
	if o := run(proc{argv: []string{e.kbox, "--version"}, timeout: 10 * time.Second}); o.err == nil {
		rep.Machine.Kbox = strings.TrimSpace(o.stdout)
	}

	nat := newNativeRunner(e)
	defer nat.native.close()
	runners := []*runner{nat}
	log.printf("discovering kbox tiers")
	tiers, status := discoverTiers(e)
	rep.Tiers = status
	for _, r := range tiers {
		r.probe(e)
	}
	runners = append(runners, tiers...)
	if cfg.baseline != "" {
		b, err := baselineRunnerFor(e, cfg.baseline)
		if err != nil {
			return err
		}
		b.probe(e)
		runners = append(runners, b)
	}
	ps := setupPeers(e, cfg, log)
	runners = append(runners, ps.runners...)
	rep.Runners = runners
	rep.RunscBuildSec = ps.runscBuild.Seconds()

	log.printf("calibrating the floor programs")
	rep.Floors = prepareFloors(e, p)
	rep.PerCall = measurePerCall(e, runners, rep.Floors, p, log)
	rep.Commands, rep.CommandSeries = measureCommands(e, runners, p, log)
	rep.Distances = distances(rep.PerCall, rep.Floors)
	rep.Machine.LoadEnd = loadavg()
	rep.Seconds = time.Since(log.start).Seconds()
	log.printf("done")
	if cfg.json {
		return rep.writeJSON(os.Stdout)
	}
	rep.writeText(os.Stdout)
	return nil
}
