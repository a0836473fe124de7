package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// command is one whole-command row: a guest command line timed from fork
// to wait.
type command struct {
	Key   string   `json:"key"`
	Label string   `json:"label"`
	Argv  []string `json:"argv"`
	Dev   bool     `json:"needs_dev"` // writes /dev/null: kbox runs it with -R
	// Forks: the command starts other processes (a shell running external
	// commands), which a single-process runner (kbox-trap) cannot do.
	Forks bool `json:"forks"`
}

// commands returns the whole-command rows; loop is the shell loop's count.
func commands(loop int) []command {
	return []command{
		{Key: "true", Label: "/bin/true", Argv: []string{"/bin/true"}},
		{Key: "sh_true10", Label: "sh -c '/bin/true ×10'", Forks: true,
			Argv: []string{"/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do /bin/true; done"}},
		{Key: "glibc_start", Label: "bench-glibc -n 1 getpid (dynamic)",
			Argv: []string{"/bin/bench-glibc", "-n", "1", "getpid"}},
		{Key: "sh_loop", Label: fmt.Sprintf("sh loop ×%d echo>/tmp/x;cat", loop), Dev: true, Forks: true,
			Argv: []string{"/bin/sh", "-c", fmt.Sprintf("i=0; while [ $i -lt %d ]; do echo $i > /tmp/x; cat /tmp/x >/dev/null; i=$((i+1)); done", loop)}},
		// busybox tar forks only to run a compressor: not here.
		{Key: "tar", Label: "tar -cf /dev/null /bin /etc", Dev: true,
			Argv: []string{"/bin/tar", "-cf", "/dev/null", "-C", "/", "bin", "etc"}},
	}
}

// measureCommands times every command on every runner that can run them.
// Run 1 goes first everywhere; a cell whose first run is slow gets fewer
// runs (at least one) so that no cell takes much longer than p.cellBudget.
func measureCommands(e *env, runners []*runner, p params, log *logger) ([]command, []*series) {
	cmds := commands(p.loopIters)
	type cell struct {
		r    *runner
		c    command
		s    *series
		runs int
	}
	var cells []*cell
	for _, c := range cmds {
		for _, r := range runners {
			if !r.cmdUsable() {
				continue
			}
			argv := c.Argv
			if r.wrap != nil {
				argv = r.wrap(c.Argv, c.Dev)
			}
			cl := &cell{r: r, c: c, runs: p.runs,
				s: &series{Row: c.Key, Runner: r.Name, Unit: "ms", Argv: argv}}
			if c.Forks && r.NoFork != "" {
				cl.s.Skip = naForks
				cl.runs = 0
			}
			cells = append(cells, cl)
		}
	}
	for i := 0; i < p.runs; i++ {
		log.printf("whole-command rows: run %d/%d", i+1, p.runs)
		for _, cl := range cells {
			if i >= cl.runs {
				continue
			}
			o := cl.r.runCommand(cl.c.Argv, cl.c.Dev, 10*time.Minute)
			if o.err != nil {
				if cl.r.NoFork != "" && forkRefused(o.stderr) {
					// A row not marked Forks that forked after all.
					cl.s.Skip = naForks
				}
				cl.s.fail(o.err)
				cl.runs = 0
				continue
			}
			cl.s.add(float64(o.wall.Nanoseconds()) / 1e6)
			if i == 0 && o.wall > 0 {
				cl.runs = min(p.runs, max(1, int(p.cellBudget/o.wall)))
				if cl.runs < p.runs {
					log.printf("%s on %s took %v: %d run(s) only", cl.c.Key, cl.r.Name, o.wall.Round(time.Millisecond), cl.runs)
				}
			}
		}
	}
	os.Remove(filepath.Join(e.root, "tmp", "x"))
	var out []*series
	for _, cl := range cells {
		cl.s.finish()
		out = append(out, cl.s)
	}
	return cmds, out
}

// naForks is the cell of a row a single-process runner cannot run.
const naForks = "n/a: forks"

// forkRefused reports whether a kbox-trap run failed because the guest
// tried to fork or start a thread (kbox warns that clone is refused).
func forkRefused(stderr string) bool {
	return strings.Contains(stderr, "the guest called clone") || strings.Contains(stderr, "the guest called fork") ||
		strings.Contains(stderr, "the guest called vfork")
}
