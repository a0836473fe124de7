package unotify

import (
	"fmt"
	"os"

	"github.com/kbox-go/kbox/internal/supervise"
)

// Early is kbox-init started before its launch config exists. kbox-init
// needs only its stdio, its pipes and the exec ruleset (built from the
// mount table's host directories) to start; it then reads its config to
// the end before it forks the launcher. Started as soon as the mount
// table is known (StartEarly), its exec overlaps kbox's remaining set-up
// (the policy table, the filter, the engine), and start writes the config
// once it exists. start itself starts kbox-init this way, then writes at
// once, when kbox did not start it early.
type Early struct {
	err      error // why kbox-init could not be started; the rest is unset
	rp       *reaper
	cfgW     *os.File
	stR, stW *os.File
	done     bool // consumed by launch, or closed
}

// StartEarly starts kbox-init for a launch with this Landlock ABI and
// these exec roots, on kbox's own stdio. When it cannot, the Early holds
// the reason, and start re-executes kbox instead and says why.
func StartEarly(landlockABI int, execRoots []string) *Early {
	return startInit(landlockABI, execRoots, [3]*os.File{os.Stdin, os.Stdout, os.Stderr})
}

// startInit starts kbox-init as the reaper, waiting for its config.
func startInit(landlockABI int, execRoots []string, stdio [3]*os.File) *Early {
	if os.Getenv("KBOX_INIT") == "self" {
		return &Early{err: fmt.Errorf("KBOX_INIT=self")}
	}
	prog, err := initProgramPath()
	if err != nil {
		return &Early{err: err}
	}
	var ruleset *os.File
	if landlockABI > 0 {
		fd, err := execRuleset(execRoots, landlockABI)
		if err != nil {
			return &Early{err: fmt.Errorf("landlock: %w", err)}
		}
		ruleset = os.NewFile(uintptr(fd), "landlock-ruleset")
		defer ruleset.Close()
	}
	stR, stW, err := os.Pipe()
	if err != nil {
		return &Early{err: err}
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		stR.Close()
		stW.Close()
		return &Early{err: err}
	}
	defer cfgR.Close()
	// The guest gets a process group of its own, so that a signal to a
	// guest group never reaches kbox or a host process beside it, and, on a
	// terminal where kbox is in the foreground, that group becomes the
	// terminal's foreground: Ctrl-C, Ctrl-Z and ^\ go to the guest only.
	// The reaper between kbox and the launcher (reaper.go) sees that no
	// guest process outlives kbox.
	arg := "background"
	if supervise.ForegroundTTY(stdio[0]) {
		arg = "foreground"
	}
	rp, err := spawnReaper(prog, []string{"kbox-init", arg}, []*os.File{stdio[0], stdio[1], stdio[2], cfgR, stW}, ruleset)
	if err != nil {
		stR.Close()
		stW.Close()
		cfgW.Close()
		return &Early{err: err}
	}
	return &Early{rp: rp, cfgW: cfgW, stR: stR, stW: stW}
}

// Close ends a kbox-init that was not used (a failure before the launch):
// at the end of its config (nothing written), it forks a launcher that
// fails, and the reaper, its lifeline closed, exits.
func (e *Early) Close() {
	if e == nil || e.err != nil || e.done {
		return
	}
	e.done = true
	e.cfgW.Close()
	e.rp.close()
	e.stR.Close()
	e.stW.Close()
}

// launch writes l's config to kbox-init and returns it with its
// launcher's pid and the status pipe; on an error (the config does not
// fit, or kbox-init died) it is closed.
func (e *Early) launch(l Launch) (rp *reaper, pid int, stR *os.File, err error) {
	if e.err != nil {
		return nil, 0, nil, e.err
	}
	cfg, err := launchConfig(l)
	if err != nil {
		e.Close()
		return nil, 0, nil, err
	}
	// kbox-init reads all of it (init.c): a pipe's buffer is no limit.
	if _, err := e.cfgW.Write(cfg); err != nil {
		e.Close()
		return nil, 0, nil, fmt.Errorf("writing the launch config: %w", err)
	}
	e.done = true
	e.cfgW.Close()
	e.stW.Close()
	pid, err = e.rp.launcherPid() // closes the reaper on an error
	if err != nil {
		e.stR.Close()
		return nil, 0, nil, err
	}
	return e.rp, pid, e.stR, nil
}
