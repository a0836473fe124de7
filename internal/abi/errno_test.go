package abi

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestErrno(t *testing.T) {
	_, statErr := os.Stat("/nonexistent/kbox-errno-test")
	for _, c := range []struct {
		err  error
		want unix.Errno
	}{
		{nil, 0},
		{unix.EACCES, unix.EACCES},
		{fmt.Errorf("opening: %w", unix.ELOOP), unix.ELOOP},
		{statErr, unix.ENOENT},
		{errors.New("no errno here"), unix.EIO},
	} {
		if got := Errno(c.err, unix.EIO); got != c.want {
			t.Errorf("Errno(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
