package policy_test

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/policy"
	"github.com/kbox-go/kbox/internal/seccomp"
)

var retEAFNOSUPPORT = seccomp.Action{Kind: seccomp.ActErrno, Errno: uint16(unix.EAFNOSUPPORT)}.Ret()

// TestNetNoneFilter: under --net=none socket and socketpair create
// AF_UNIX sockets only; every other family fails with EAFNOSUPPORT in
// BPF (notified under -v, for the engine to name), in the notifying
// filter and in the in-process tiers' backstop, and the table's own
// evaluation agrees with the compiled programs.
func TestNetNoneFilter(t *testing.T) {
	families := []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK, unix.AF_PACKET, unix.AF_VSOCK,
		unix.AF_BLUETOOTH, unix.AF_ALG, 0, 255, 0xffffffff00000000 | unix.AF_UNIX, 0x100000000 | unix.AF_INET}
	for _, arch := range []*abi.Arch{abi.AMD64, abi.ARM64} {
		for _, verbose := range []bool{false, true} {
			r, err := policy.Resolve(arch, policy.Options{NetNone: true, NotifyDenied: verbose})
			if err != nil {
				t.Fatal(err)
			}
			prog, err := seccomp.Compile(r.Program())
			if err != nil {
				t.Fatal(err)
			}
			back, err := seccomp.Compile(r.Backstop())
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"socket", "socketpair"} {
				nr := arch.MustNr(name)
				for _, fam := range families {
					args := [6]uint64{fam, unix.SOCK_STREAM, 0}
					unixFam := uint32(fam) == unix.AF_UNIX
					want, wantBack := retEAFNOSUPPORT, retEAFNOSUPPORT
					if verbose {
						want = retNotify
					}
					if unixFam {
						want, wantBack = retAllow, retAllow
					}
					got, _ := seccomp.Simulate(prog, seccomp.Data{Nr: int32(nr), Arch: arch.AuditArch, Args: args})
					if got != want {
						t.Errorf("%s -v=%v %s(%#x): filter %#x, want %#x", arch.Name, verbose, name, fam, got, want)
					}
					gotBack, _ := seccomp.Simulate(back, seccomp.Data{Nr: int32(nr), Arch: arch.AuditArch, Args: args})
					if gotBack != wantBack {
						t.Errorf("%s -v=%v %s(%#x): backstop %#x, want %#x", arch.Name, verbose, name, fam, gotBack, wantBack)
					}
					if r.NoNetworkFor(nr, args) == unixFam {
						t.Errorf("%s %s(%#x): NoNetworkFor = %v", arch.Name, name, fam, !unixFam)
					}
					exp := r.Expect(nr, args)
					if (exp == policy.Allow) != unixFam || (!unixFam && exp != map[bool]policy.Disposition{false: policy.NoNetwork, true: policy.Notify}[verbose]) {
						t.Errorf("%s -v=%v %s(%#x): Expect %s", arch.Name, verbose, name, fam, exp)
					}
				}
			}
			if refused := r.NetRefused(); verbose != (len(refused) == 2) {
				t.Errorf("%s -v=%v: NetRefused %v", arch.Name, verbose, refused)
			}
		}
		// --net=host: every family, as before.
		r, _ := policy.Resolve(arch, policy.Options{})
		prog, _ := seccomp.Compile(r.Program())
		got, _ := seccomp.Simulate(prog, seccomp.Data{Nr: int32(arch.MustNr("socket")), Arch: arch.AuditArch, Args: [6]uint64{unix.AF_INET}})
		if got != retAllow || r.NoNetworkFor(arch.MustNr("socket"), [6]uint64{unix.AF_INET}) {
			t.Errorf("%s --net=host: socket(AF_INET) %#x, want allowed", arch.Name, got)
		}
	}
}

// TestNetUserFilter: under --net=user socket and socketpair create
// AF_UNIX and AF_INET sockets only (AF_INET6, netlink and the rest fail
// with EAFNOSUPPORT in BPF, notified under -v), and listen is notified
// (an unbound AF_INET listener is bound inside the guest's network
// first); under the other modes listen stays in BPF.
func TestNetUserFilter(t *testing.T) {
	for _, arch := range []*abi.Arch{abi.AMD64, abi.ARM64} {
		for _, verbose := range []bool{false, true} {
			r, err := policy.Resolve(arch, policy.Options{NetUser: true, NotifyDenied: verbose})
			if err != nil {
				t.Fatal(err)
			}
			prog, err := seccomp.Compile(r.Program())
			if err != nil {
				t.Fatal(err)
			}
			for _, fam := range []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK, unix.AF_PACKET, 0x100000000 | unix.AF_INET6} {
				args := [6]uint64{fam, unix.SOCK_STREAM, 0}
				want := retEAFNOSUPPORT
				if verbose {
					want = retNotify
				}
				if f := uint32(fam); f == unix.AF_UNIX || f == unix.AF_INET {
					want = retAllow
				}
				got, _ := seccomp.Simulate(prog, seccomp.Data{Nr: int32(arch.MustNr("socket")), Arch: arch.AuditArch, Args: args})
				if got != want {
					t.Errorf("%s -v=%v socket(%#x): %#x, want %#x", arch.Name, verbose, fam, got, want)
				}
			}
			got, _ := seccomp.Simulate(prog, seccomp.Data{Nr: int32(arch.MustNr("listen")), Arch: arch.AuditArch})
			if got != retNotify {
				t.Errorf("%s --net=user: listen %#x, want notified", arch.Name, got)
			}
			if refused := r.NetRefused(); verbose != (len(refused) == 2) || (verbose && !strings.Contains(refused["socket"], "--net=user")) {
				t.Errorf("%s -v=%v: NetRefused %v", arch.Name, verbose, refused)
			}
		}
		for _, o := range []policy.Options{{}, {NetNone: true}} {
			r, _ := policy.Resolve(arch, o)
			prog, _ := seccomp.Compile(r.Program())
			if got, _ := seccomp.Simulate(prog, seccomp.Data{Nr: int32(arch.MustNr("listen")), Arch: arch.AuditArch}); got != retAllow {
				t.Errorf("%s %+v: listen %#x, want allowed", arch.Name, o, got)
			}
		}
	}
}
