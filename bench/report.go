package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// report is everything one harness run measured; --json prints it.
type report struct {
	Machine       machine      `json:"machine"`
	Command       string       `json:"command"`
	Runs          int          `json:"runs"`
	Quick         bool         `json:"quick"`
	Root          string       `json:"guest_root"`
	Tiers         []tierStatus `json:"kbox_tiers"`
	Runners       []*runner    `json:"runners"`
	PerCall       []*series    `json:"per_call"`
	Commands      []command    `json:"commands"`
	CommandSeries []*series    `json:"command_series"`
	Floors        *floorResult `json:"floors"`
	Distances     []distance   `json:"floor_distances"`
	Seconds       float64      `json:"seconds"`
	RunscBuildSec float64      `json:"runsc_build_seconds,omitempty"`
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *report) writeText(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "kbox benchmarks — %s\n", m.Date)
	fmt.Fprintf(w, "machine: %s, %d cores, %s, kernel %s, %s, uid %d, load average %s at start, %s at end\n",
		m.CPU, m.Cores, m.Arch, m.Kernel, m.Go, m.UID, m.LoadStart, m.LoadEnd)
	fmt.Fprintf(w, "command: %s   (%s built from the working tree; guest root %s)\n", r.Command, m.Kbox, r.Root)
	for _, t := range r.Tiers {
		state := "available"
		if !t.Available {
			state = "skipped: " + t.Message
		}
		fmt.Fprintf(w, "kbox tier %s: %s\n", t.Tier, state)
	}
	for _, rn := range r.Runners {
		switch {
		case rn.Skip != "":
			fmt.Fprintf(w, "%s: not measured: %s\n", rn.Name, rn.Skip)
		case rn.CmdSkip != "":
			fmt.Fprintf(w, "%s: whole commands not measured: %s\n", rn.Name, rn.CmdSkip)
		}
		if rn.Note != "" && rn.Skip == "" {
			fmt.Fprintf(w, "%s: %s\n", rn.Name, rn.Note)
		}
	}

	cols := r.columns(func(rn *runner) bool { return rn.usable() })
	fmt.Fprintf(w, "\nPer call, µs: median [min–max] of %d runs (one process each), ×ratio of medians to native\n", r.Runs)
	fmt.Fprint(w, r.grid(benchTests, nil, cols, r.PerCall))

	cmdCols := r.columns(func(rn *runner) bool { return rn.cmdUsable() })
	var keys, labels []string
	for _, c := range r.Commands {
		keys = append(keys, c.Key)
		labels = append(labels, c.Label)
	}
	fmt.Fprintf(w, "\nWhole command, ms (fork to wait, measured in Go): median [min–max] of %d runs, ×ratio to native; (n=K): fewer runs to bound the time\n", r.Runs)
	fmt.Fprint(w, r.grid(keys, labels, cmdCols, r.CommandSeries))
	fmt.Fprintln(w, "kbox runs sh_loop and tar with -R ROOT (host /dev for /dev/null, private /tmp), the other rows with -r ROOT")
	for _, rn := range r.Runners {
		if rn.cmdUsable() && rn.NoFork != "" {
			fmt.Fprintf(w, "%s: %s: the command forks, and %s\n", rn.Name, naForks, rn.NoFork)
		}
	}

	if r.Floors != nil {
		fmt.Fprintf(w, "\nFloors, µs per call (bench/floor/*.c; SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: %s)\n", r.Floors.SyncWake)
		rows := [][]string{{"floor", "median [min–max]"}}
		for _, s := range r.Floors.Series {
			rows = append(rows, []string{s.Row, fmtSummary(s.Summary, r.Runs) + errNote(s)})
		}
		fmt.Fprint(w, table(rows))
	}
	if len(r.Distances) > 0 {
		fmt.Fprintln(w, "\nDistance to floor, µs per call: medians, and minima (the least disturbed runs)")
		rows := [][]string{{"tier", "row", "floor is", "kbox", "floor", "kbox/floor", "kbox min", "floor min", "min/min"}}
		for _, d := range r.Distances {
			rows = append(rows, []string{d.Tier, d.Row, d.Formula,
				fmtNum(d.Kbox), fmtNum(d.Floor), fmtRatio(d.Kbox, d.Floor),
				fmtNum(d.KboxMin), fmtNum(d.FloorMin), fmtRatio(d.KboxMin, d.FloorMin)})
		}
		fmt.Fprint(w, table(rows))
	}
	fmt.Fprintf(w, "\ntook %s", time.Duration(r.Seconds*float64(time.Second)).Round(time.Second))
	if r.RunscBuildSec > 0 {
		fmt.Fprintf(w, " (of which %s building runsc, a one-time cost)", time.Duration(r.RunscBuildSec*float64(time.Second)).Round(time.Second))
	}
	fmt.Fprintln(w)
}

func (r *report) columns(keep func(*runner) bool) []string {
	var cols []string
	for _, rn := range r.Runners {
		if keep(rn) {
			cols = append(cols, rn.Name)
		}
	}
	return cols
}

// grid renders rows × runner columns, ratios against the native column.
func (r *report) grid(rows, labels, cols []string, all []*series) string {
	find := func(row, runner string) *series {
		for _, s := range all {
			if s.Row == row && s.Runner == runner {
				return s
			}
		}
		return nil
	}
	out := [][]string{append([]string{"benchmark"}, cols...)}
	var notes []string
	for i, row := range rows {
		label := row
		if labels != nil {
			label = labels[i]
		}
		line := []string{label}
		var base summary
		if s := find(row, "native"); s != nil {
			base = s.Summary
		}
		for _, c := range cols {
			s := find(row, c)
			switch {
			case s == nil:
				line = append(line, "-")
			case s.Skip != "":
				line = append(line, s.Skip)
				if len(s.Errors) > 0 {
					notes = append(notes, fmt.Sprintf("%s on %s: %s", row, c, s.Errors[0]))
				}
			case s.Summary.N == 0 && len(s.Errors) > 0:
				line = append(line, "error")
				notes = append(notes, fmt.Sprintf("%s on %s: %s", row, c, s.Errors[0]))
			default:
				line = append(line, fmtCell(s.Summary, r.Runs, base, c == "native"))
			}
		}
		out = append(out, line)
	}
	text := table(out)
	for _, n := range notes {
		text += "  error: " + n + "\n"
	}
	return text
}

func errNote(s *series) string {
	if len(s.Errors) == 0 {
		return ""
	}
	return "  (error: " + strings.TrimSpace(s.Errors[0]) + ")"
}
