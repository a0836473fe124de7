//go:build !(cgo && linux && (amd64 || arm64))

package inproc

import (
	"errors"
)

// Available reports whether this build of kbox has the in-process tiers.
func Available() error {
	return errors.New("this kbox was built without cgo (or not for linux/amd64 or linux/arm64): the trap tier needs a cgo build on x86_64 or arm64; use --syscall-mode=seccomp")
}

// Run is not available in this build.
func Run(cfg Config) (int, error) { return 125, Available() }
