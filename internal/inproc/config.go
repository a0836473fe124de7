package inproc

import (
	"io"

	"github.com/kbox-go/kbox/internal/dispatch"
	"github.com/kbox-go/kbox/internal/policy"
)

// Config describes the run.
type Config struct {
	Engine *dispatch.Engine
	Policy *policy.Resolved
	Path   string // guest path of the program, as found on the guest's PATH
	Argv   []string
	Env    []string
	Log    io.Writer
	// AtExit runs just before the guest's exit ends the process (kbox's
	// deferred cleanups do not run: the exit comes from the guest thread).
	AtExit func()
	// OnStart runs once the guest thread runs guest code (the caller tells
	// its supervisor that the start succeeded).
	OnStart func()
	// PlanCacheReadOnly: the rewrite tier reads patch plans kbox's
	// supervisor stored but never writes any (a guest that controls this
	// process could plant plans that corrupt later runs).
	PlanCacheReadOnly bool
	// Rewrite patches the guest's syscall sites (the rewrite tier); without
	// it every guest syscall traps (the trap tier).
	Rewrite bool
}
