package trap

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
	// Mounts are the host directories of the guest's mounts: the guest
	// thread restricts itself to them with Landlock (landlock.go).
	Mounts []Rule
	// Rewrite patches the guest's syscall sites (the rewrite tier); without
	// it every guest syscall traps (the trap tier).
	Rewrite bool
}

// Rule is one host directory the guest thread may reach.
type Rule struct {
	Host     string
	ReadOnly bool
}
