package unotify

import (
	"os"

	"github.com/kbox-go/kbox/internal/supervise"
)

// Early is kbox-init started before its launch config exists. kbox-init
// needs only its stdio, its pipes and the exec ruleset (built from the
// mount table's host directories) to start; it then reads its config to
// the end before it forks the launcher. Started as soon as the mount
// table is known (StartEarly), its exec overlaps kbox's remaining set-up
// (the policy table, the filter, the engine), and start writes the config
// once it exists.
type Early struct {
	rp       *reaper
	cfgW     *os.File
	stR, stW *os.File
	done     bool // consumed by start, or closed
}

// StartEarly starts kbox-init for a launch with this Landlock ABI and
// these exec roots, on kbox's own stdio. It returns nil when kbox-init
// cannot be started this way; start then does everything itself, as
// without it (and reports what fails).
func StartEarly(landlockABI int, execRoots []string) *Early {
	if os.Getenv("KBOX_INIT") == "self" {
		return nil
	}
	prog, err := initProgramPath()
	if err != nil {
		return nil
	}
	var ruleset *os.File
	if landlockABI > 0 {
		fd, err := execRuleset(execRoots, landlockABI)
		if err != nil {
			return nil
		}
		ruleset = os.NewFile(uintptr(fd), "landlock-ruleset")
		defer ruleset.Close()
	}
	stR, stW, err := os.Pipe()
	if err != nil {
		return nil
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		stR.Close()
		stW.Close()
		return nil
	}
	defer cfgR.Close()
	arg := "background"
	if supervise.ForegroundTTY(os.Stdin) {
		arg = "foreground"
	}
	rp, err := spawnReaper(prog, []string{"kbox-init", arg}, []*os.File{os.Stdin, os.Stdout, os.Stderr, cfgR, stW}, ruleset)
	if err != nil {
		stR.Close()
		stW.Close()
		cfgW.Close()
		return nil
	}
	return &Early{rp: rp, cfgW: cfgW, stR: stR, stW: stW}
}

// Close ends an early kbox-init that was not used (a failure before the
// launch): at the end of its config (nothing written), it forks a
// launcher that fails, and the reaper, its lifeline closed, exits.
func (e *Early) Close() {
	if e == nil || e.done {
		return
	}
	e.done = true
	e.cfgW.Close()
	e.rp.close()
	e.stR.Close()
	e.stW.Close()
}

// launch writes l's config to the early kbox-init and returns it with
// its launcher's pid and the status pipe; ok is false when it cannot be
// used (the config does not fit, or kbox-init died), the early kbox-init
// then closed.
func (e *Early) launch(l Launch) (rp *reaper, pid int, stR *os.File, ok bool) {
	cfg, err := launchConfig(l)
	if err != nil {
		e.Close()
		return nil, 0, nil, false
	}
	// kbox-init reads all of it (init.c): a pipe's buffer is no limit.
	_, err = e.cfgW.Write(cfg)
	e.cfgW.Close()
	if err != nil {
		e.done = true
		e.rp.close()
		e.stR.Close()
		e.stW.Close()
		return nil, 0, nil, false
	}
	e.done = true
	e.stW.Close()
	pid, err = e.rp.launcherPid() // closes the reaper on an error
	if err != nil {
		e.stR.Close()
		return nil, 0, nil, false
	}
	return e.rp, pid, e.stR, true
}
