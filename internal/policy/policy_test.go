package policy_test

import (
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/dispatch"
	"github.com/kbox-go/kbox/internal/policy"
	"github.com/kbox-go/kbox/internal/seccomp"
)

var (
	retAllow  = seccomp.Action{Kind: seccomp.ActAllow}.Ret()
	retNotify = seccomp.Action{Kind: seccomp.ActNotify}.Ret()
	retEPERM  = seccomp.Action{Kind: seccomp.ActErrno, Errno: uint16(unix.EPERM)}.Ret()
	retENOSYS = seccomp.Action{Kind: seccomp.ActErrno, Errno: uint16(unix.ENOSYS)}.Ret()
	retKill   = seccomp.Action{Kind: seccomp.ActKillProcess}.Ret()
)

// TestEveryNumberThroughTheFilter runs every syscall number of both
// architectures (and unknown ones) through the compiled program and checks
// the action against the table.
func TestEveryNumberThroughTheFilter(t *testing.T) {
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
			rng := rand.New(rand.NewPCG(1, uint64(arch.AuditArch)))
			for nr := 0; nr <= arch.MaxNr()+64; nr++ {
				argSets := [][6]uint64{{}}
				for i := 0; i < 8; i++ {
					var a [6]uint64
					for j := range a {
						switch rng.IntN(3) {
						case 0:
							a[j] = rng.Uint64()
						case 1:
							a[j] = uint64(rng.IntN(32))
						default:
							a[j] = 0xffffffff00000000 | uint64(rng.IntN(16))
						}
					}
					argSets = append(argSets, a)
				}
				for _, args := range argSets {
					got, err := seccomp.Simulate(prog, seccomp.Data{Nr: int32(nr), Arch: arch.AuditArch, Args: args})
					if err != nil {
						t.Fatal(err)
					}
					var want uint32
					switch r.Expect(nr, args) {
					case policy.Allow:
						want = retAllow
					case policy.Deny:
						want = retEPERM
					case policy.Unsupported:
						want = retENOSYS
					default:
						want = retNotify
					}
					if got != want {
						t.Errorf("%s virt=%v %s (%d) args %x: filter returns %#x, table says %#x", arch.Name, virt, arch.SyscallName(nr), nr, args, got, want)
					}
				}
			}
			// A foreign architecture is killed.
			other := abi.ARM64
			if arch == abi.ARM64 {
				other = abi.AMD64
			}
			if got, _ := seccomp.Simulate(prog, seccomp.Data{Nr: 0, Arch: other.AuditArch}); got != retKill {
				t.Errorf("%s: foreign arch gets %#x", arch.Name, got)
			}
		}
	}
}

func TestCloneNamespaceFlagsDenied(t *testing.T) {
	for _, arch := range []*abi.Arch{abi.AMD64, abi.ARM64} {
		r, _ := policy.Resolve(arch, policy.Options{})
		prog, err := seccomp.Compile(r.Program())
		if err != nil {
			t.Fatal(err)
		}
		clone := int32(arch.MustNr("clone"))
		for _, c := range []struct {
			flags uint64
			want  uint32
		}{
			{17, retAllow},
			{unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD, retAllow},
			{unix.CLONE_NEWUSER | 17, retEPERM},
			{unix.CLONE_NEWNS, retEPERM},
			{unix.CLONE_NEWNET | unix.CLONE_NEWPID, retEPERM},
			{0xffffffff00000011, retAllow},
		} {
			got, _ := seccomp.Simulate(prog, seccomp.Data{Nr: clone, Arch: arch.AuditArch, Args: [6]uint64{c.flags}})
			if got != c.want {
				t.Errorf("%s clone(%#x): %#x, want %#x", arch.Name, c.flags, got, c.want)
			}
		}
	}
}

// TestDangerousSetDenied pins the reference system's deny list.
func TestDangerousSetDenied(t *testing.T) {
	names := []string{"seccomp", "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise",
		"process_mrelease", "bpf", "perf_event_open", "kexec_load", "kexec_file_load", "init_module",
		"finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct", "sethostname", "setdomainname",
		"unshare", "setns", "keyctl", "add_key", "request_key", "io_uring_setup", "io_uring_enter",
		"io_uring_register", "io_setup", "io_submit", "io_getevents", "io_cancel", "io_destroy", "userfaultfd",
		"pidfd_getfd", "memfd_secret", "open_by_handle_at", "name_to_handle_at", "fanotify_init", "fanotify_mark",
		"open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "pivot_root",
		"iopl", "ioperm", "modify_ldt", "clock_settime", "settimeofday", "adjtimex", "clock_adjtime", "quotactl",
		"quotactl_fd", "personality", "kcmp", "landlock_create_ruleset", "landlock_add_rule",
		"landlock_restrict_self", "vhangup", "mount", "umount2"}
	for _, arch := range []*abi.Arch{abi.AMD64, abi.ARM64} {
		r, _ := policy.Resolve(arch, policy.Options{})
		for _, n := range names {
			nr, ok := arch.Nr(n)
			if !ok {
				continue // iopl, ioperm, modify_ldt are x86-only
			}
			if d := r.Disposition(nr); d != policy.Deny {
				t.Errorf("%s %s: %s, want deny", arch.Name, n, d)
			}
		}
	}
}

// TestPtraceInDomain: ptrace is denied unless the guest runs in a Landlock
// domain of its own (the seccomp tier with Landlock), where it is notified
// (and served between guest processes); never in the in-process filter.
func TestPtraceInDomain(t *testing.T) {
	for _, arch := range []*abi.Arch{abi.AMD64, abi.ARM64} {
		nr, _ := arch.Nr("ptrace")
		for _, c := range []struct {
			opts policy.Options
			want policy.Disposition
		}{
			{policy.Options{}, policy.Deny},
			{policy.Options{NotifyDenied: true}, policy.Notify},
			{policy.Options{GuestDomain: true}, policy.Notify},
		} {
			r, err := policy.Resolve(arch, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if d := r.Disposition(nr); d != c.want {
				t.Errorf("%s %+v: ptrace %s, want %s", arch.Name, c.opts, d, c.want)
			}
			_, denied := r.Denied()["ptrace"]
			if want := c.opts.NotifyDenied && !c.opts.GuestDomain; denied != want {
				t.Errorf("%s %+v: ptrace in Denied() %v, want %v", arch.Name, c.opts, denied, want)
			}
			prog, err := seccomp.Compile(r.Program())
			if err != nil {
				t.Fatal(err)
			}
			got, _ := seccomp.Simulate(prog, seccomp.Data{Nr: int32(nr), Arch: arch.AuditArch})
			if wantNotify := c.want == policy.Notify; (got == retNotify) != wantNotify {
				t.Errorf("%s %+v: filter returns %#x for ptrace", arch.Name, c.opts, got)
			}
		}
	}
}

// TestNotifiedCallsHaveHandlers: every call the table notifies by name has a
// handler, and every handler serves a notified call.
func TestNotifiedCallsHaveHandlers(t *testing.T) {
	handled := map[string]bool{}
	for _, n := range dispatch.HandledNames() {
		handled[n] = true
	}
	notified := map[string]bool{}
	for _, e := range policy.Table {
		if e.Notified() {
			notified[e.Name] = true
			if !handled[e.Name] {
				t.Errorf("%s is notified but has no handler", e.Name)
			}
		}
	}
	for n := range handled {
		if !notified[n] {
			t.Errorf("handler for %s, which the table never notifies", n)
		}
	}
}
