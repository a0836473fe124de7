package abi

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Errno is the one mapping from a Go error to the errno a guest sees,
// shared by every tier: nil is 0; an error that wraps an errno (an
// *os.PathError, a fmt.Errorf("...: %w", en)) is that errno; any other
// error is def, which callers choose for what the failed step means
// (EIO for an I/O step, EBADF for a descriptor that could not be fetched).
func Errno(err error, def unix.Errno) unix.Errno {
	if err == nil {
		return 0
	}
	var en unix.Errno
	if errors.As(err, &en) {
		return en
	}
	return def
}
