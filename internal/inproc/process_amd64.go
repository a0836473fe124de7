//go:build cgo && linux && amd64

package inproc

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

func init() {
	own(sysArchPrctl, "arch_prctl")
}

// The guest's FS base is its TLS pointer. kbox's own thread state lives in
// the host FS base, which the signal path swaps in while kbox code runs.
func sysArchPrctl(t *tier, c *call) int64 {
	switch c.int(0) {
	case abi.ArchSetFS:
		if c.args[1] >= 1<<47 {
			return -int64(unix.EPERM)
		}
		setGuestTP(c.args[1])
		return 0
	case abi.ArchGetFS:
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], guestTP())
		if (memory{}).Write(c.args[1], b[:]) != nil {
			return -int64(unix.EFAULT)
		}
		return 0
	case abi.ArchSetGS, abi.ArchGetGS, archGetCPUID, archGetXcompSupp, archGetXcompPerm, archReqXcompPerm,
		archGetXcompGuestPerm, archReqXcompGuestPerm:
		return rawSyscall(c.nr, c.args)
	}
	t.verboseOnce("arch_prctl", "pid %d: arch_prctl(%#x) refused (EINVAL): it would change kbox's own thread", t.pid, c.args[0])
	return -int64(unix.EINVAL)
}

// arch_prctl codes not all in x/sys.
const (
	archGetCPUID          = 0x1011
	archGetXcompSupp      = 0x1021
	archGetXcompPerm      = 0x1022
	archReqXcompPerm      = 0x1023
	archGetXcompGuestPerm = 0x1024
	archReqXcompGuestPerm = 0x1025
)
