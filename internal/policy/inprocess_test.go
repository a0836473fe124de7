package policy

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/seccomp"
)

// TestInProcessFilter runs the in-process filter, with its pid
// placeholders patched, through the BPF simulator: what the process that
// hosts an in-process guest may do, whichever of its threads asks.
func TestInProcessFilter(t *testing.T) {
	const self = 4242
	for _, arch := range []*abi.Arch{abi.AMD64, abi.ARM64} {
		r, err := Resolve(arch, Options{})
		if err != nil {
			t.Fatal(err)
		}
		prog, err := seccomp.Compile(r.InProcess())
		if err != nil {
			t.Fatal(err)
		}
		seccomp.PatchSelfPID(prog, self)
		allow := seccomp.Action{Kind: seccomp.ActAllow}.Ret()
		eperm := seccomp.Action{Kind: seccomp.ActErrno, Errno: uint16(unix.EPERM)}.Ret()
		enosys := seccomp.Action{Kind: seccomp.ActErrno, Errno: uint16(unix.ENOSYS)}.Ret()
		negSelf := int32(-self)
		neg := uint64(uint32(negSelf))
		for _, c := range []struct {
			name string
			args [6]uint64
			want uint32
		}{
			{"read", [6]uint64{}, allow},
			{"fork", [6]uint64{}, eperm},
			{"vfork", [6]uint64{}, eperm},
			{"clone", [6]uint64{unix.CLONE_VM | unix.CLONE_THREAD | unix.CLONE_SIGHAND}, allow},
			{"clone", [6]uint64{uint64(unix.SIGCHLD)}, eperm},
			{"clone", [6]uint64{unix.CLONE_THREAD | unix.CLONE_NEWUSER}, eperm},
			{"clone3", [6]uint64{}, enosys},
			{"execve", [6]uint64{}, eperm},
			{"execveat", [6]uint64{}, eperm},
			{"shmget", [6]uint64{}, enosys},
			{"msgrcv", [6]uint64{}, enosys},
			{"kill", [6]uint64{self, 9}, allow},
			{"kill", [6]uint64{0, 9}, allow},
			{"kill", [6]uint64{neg, 9}, allow},
			{"kill", [6]uint64{1, 9}, eperm},
			{"kill", [6]uint64{self + 1, 9}, eperm},
			{"kill", [6]uint64{^uint64(0), 9}, eperm}, // kill(-1): every process of the user
			{"tgkill", [6]uint64{self, 77, 23}, allow},
			{"tgkill", [6]uint64{self + 1, 77, 23}, eperm},
			{"tkill", [6]uint64{77, 9}, eperm},
			{"pidfd_send_signal", [6]uint64{3, 9}, eperm},
			{"rt_sigqueueinfo", [6]uint64{1, 9}, eperm},
			{"setpgid", [6]uint64{0, 0}, eperm},
			{"prlimit64", [6]uint64{0, 7}, allow},
			{"prlimit64", [6]uint64{self, 7}, allow},
			{"prlimit64", [6]uint64{1, 7}, eperm},
			{"setpriority", [6]uint64{unix.PRIO_PROCESS, 0, 10}, allow},
			{"setpriority", [6]uint64{unix.PRIO_PROCESS, 1, 10}, eperm},
			{"setpriority", [6]uint64{unix.PRIO_USER, 0, 10}, eperm},
			{"prctl", [6]uint64{unix.PR_SET_NAME}, allow},
			{"prctl", [6]uint64{unix.PR_SET_PDEATHSIG, 0}, eperm},
			{"seccomp", [6]uint64{unix.SECCOMP_SET_MODE_FILTER}, allow},
			{"seccomp", [6]uint64{unix.SECCOMP_SET_MODE_STRICT}, eperm},
			{"unshare", [6]uint64{unix.CLONE_FS}, allow},
			{"unshare", [6]uint64{unix.CLONE_NEWUSER}, eperm},
			{"unshare", [6]uint64{unix.CLONE_FS | unix.CLONE_NEWNS}, eperm},
			{"ptrace", [6]uint64{unix.PTRACE_TRACEME}, eperm},
			{"keyctl", [6]uint64{}, eperm},
			{"ioctl", [6]uint64{0, unix.TIOCSTI}, eperm},
			{"mprotect", [6]uint64{}, allow},
		} {
			nr, ok := arch.Nr(c.name)
			if !ok {
				continue // fork and vfork on arm64
			}
			got, err := seccomp.Simulate(prog, seccomp.Data{Nr: int32(nr), Arch: arch.AuditArch, Args: c.args})
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("%s: %s%v: %#x, want %#x", arch.Name, c.name, c.args, got, c.want)
			}
		}
	}
}
