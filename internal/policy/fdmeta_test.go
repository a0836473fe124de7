package policy_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/policy"
	"github.com/kbox-go/kbox/internal/seccomp"
)

// TestConfinementForms pins the argument forms the filter must hand to
// kbox: descriptor changes (read-only mounts), every setpgid, the terminal's
// foreground group, and the clones the exec race check must know about;
// and the common forms that stay in BPF.
func TestConfinementForms(t *testing.T) {
	for _, arch := range []*abi.Arch{abi.AMD64, abi.ARM64} {
		for _, virt := range []bool{false, true} {
			r, err := policy.Resolve(arch, policy.Options{VirtualIdentity: virt})
			if err != nil {
				t.Fatal(err)
			}
			prog, err := seccomp.Compile(r.Program())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name string
				args [6]uint64
				want uint32
			}{
				{"fchmod", [6]uint64{3, 0o777}, retNotify},
				{"fchown", [6]uint64{3, 0, 0}, retNotify},
				{"fsetxattr", [6]uint64{3}, retNotify},
				{"fremovexattr", [6]uint64{3}, retNotify},
				{"fgetxattr", [6]uint64{3}, retNotify},
				{"flistxattr", [6]uint64{3}, retNotify},
				{"fstat", [6]uint64{3}, map[bool]uint32{false: retAllow, true: retNotify}[virt]},
				{"ioctl", [6]uint64{3, unix.FS_IOC_SETFLAGS}, retNotify},
				{"ioctl", [6]uint64{3, 0x40046602}, retNotify}, // FS_IOC32_SETFLAGS
				{"ioctl", [6]uint64{3, 0x401c5820}, retNotify}, // FS_IOC_FSSETXATTR
				{"ioctl", [6]uint64{3, 0x40087602}, retNotify}, // FS_IOC_SETVERSION
				{"ioctl", [6]uint64{3, 0xffffffff00000000 | unix.FICLONE}, retNotify},
				{"ioctl", [6]uint64{3, unix.FIDEDUPERANGE}, retNotify},
				{"ioctl", [6]uint64{0, unix.TIOCSPGRP}, retNotify},
				{"ioctl", [6]uint64{0, unix.TCGETS}, retAllow},
				{"ioctl", [6]uint64{0, unix.TIOCGWINSZ}, retAllow},
				{"ioctl", [6]uint64{0, unix.TIOCGPGRP}, retAllow},
				{"ioctl", [6]uint64{0, unix.TIOCSTI}, retEPERM},
				{"setpgid", [6]uint64{0, 0}, retNotify},
				{"setpgid", [6]uint64{0, 1234}, retNotify},
				{"clone", [6]uint64{unix.CLONE_VM | uint64(unix.SIGCHLD)}, retNotify},
				{"clone", [6]uint64{unix.CLONE_FILES | uint64(unix.SIGCHLD)}, retNotify},
				{"clone", [6]uint64{unix.CLONE_FILES | unix.CLONE_VFORK | uint64(unix.SIGCHLD)}, retNotify},
				{"clone", [6]uint64{unix.CLONE_VM | unix.CLONE_SIGHAND | unix.CLONE_THREAD}, retNotify},
				{"clone", [6]uint64{unix.CLONE_VM | unix.CLONE_VFORK | uint64(unix.SIGCHLD)}, retAllow},
				{"clone", [6]uint64{unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD |
					unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID}, retAllow},
				{"clone", [6]uint64{unix.CLONE_CHILD_SETTID | unix.CLONE_CHILD_CLEARTID | uint64(unix.SIGCHLD)}, retAllow},
				{"clone", [6]uint64{unix.CLONE_VM | unix.CLONE_NEWUSER}, retEPERM},
			} {
				got, err := seccomp.Simulate(prog, seccomp.Data{Nr: int32(arch.MustNr(c.name)), Arch: arch.AuditArch, Args: c.args})
				if err != nil {
					t.Fatal(err)
				}
				if got != c.want {
					t.Errorf("%s virt=%v %s(%#x): %#x, want %#x", arch.Name, virt, c.name, c.args[:2], got, c.want)
				}
			}
		}
	}
}
