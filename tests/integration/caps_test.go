package integration

import (
	"os"
	"strings"
	"testing"
)

// TestRealRootHasNoCapabilities: started by uid 0, kbox runs the guest with
// empty capability sets (bounding set included), so raw sockets, device
// nodes and chroot fail; --keep-caps gives them back.
func TestRealRootHasNoCapabilities(t *testing.T) {
	t.Parallel()
	if !isRoot() {
		t.Skip("needs real root")
	}
	root := freshRoot(t, 0)
	script := `grep -E '^Cap(Prm|Eff|Bnd|Amb)' /proc/self/status; ` +
		`exec /bin/sc syscall ` + nr("socket") + ` 2 3 1 , mknod /tmp/null chr 0666 1 3 , chroot /tmp , getuid`
	out, errOut, code := runKbox(t, runOpts{Args: []string{"-R", root, "--", "/bin/sh", "-c", script}})
	want := []string{"CapPrm:\t0000000000000000", "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000",
		"CapAmb:\t0000000000000000", "syscall: err EPERM", "mknod: err EPERM", "chroot: err EPERM", "getuid: ok 0"}
	if code != 0 || strings.Join(lines(out), "\n") != strings.Join(want, "\n") {
		t.Errorf("exit %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", code, out, strings.Join(want, "\n"), errOut)
	}

	out, errOut, code = runKbox(t, runOpts{Args: []string{"--keep-caps", "-R", root, "--", "/bin/sc", "syscall", nr("socket"), "2", "3", "1", ",", "chroot", "/tmp"}})
	want = []string{"syscall: ok *", "chroot: ok 0"}
	got := lines(out)
	if code != 0 || len(got) != 2 || !strings.HasPrefix(got[0], "syscall: ok ") || got[1] != want[1] {
		t.Errorf("--keep-caps: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestTerminalInjectionDenied: TIOCSTI (and TIOCLINUX) would let a guest
// type into the user's terminal; the filter refuses them for everyone.
func TestTerminalInjectionDenied(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := freshRoot(t, v.uid())
		for _, tier := range testedTiers(t, allTiers) {
			// ioctl(0, TIOCSTI, "x"); ioctl(0, TIOCLINUX, &subcode)
			out, errOut, code := runKbox(t, runOpts{Unpriv: v.unpriv, Args: []string{"--syscall-mode=" + tier, "-r", root, "--", "/bin/sc",
				"syscall", nr("ioctl"), "0", "21522", "s:x", ",", "syscall", nr("ioctl"), "0", "21532", "s:\x06"}})
			want := "syscall: err EPERM\nsyscall: err EPERM\n"
			if code != 0 || out != want {
				t.Errorf("%s: exit %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", tier, code, out, want, errOut)
			}
		}
	})
}

// TestInProcessRootCapabilities: started by uid 0, the in-process tiers'
// process keeps only the capabilities over file permissions and ownership
// (what the seccomp tier's supervisor uses for a root guest, inside the
// guest's mounts): raw sockets, chroot, device nodes and the kernel log
// are refused, as in the seccomp tier; --keep-caps gives them back.
func TestInProcessRootCapabilities(t *testing.T) {
	t.Parallel()
	if !isRoot() {
		t.Skip("needs real root")
	}
	root := freshRoot(t, 0)
	for _, tier := range testedTiers(t, inProcessTiers) {
		args := []string{"--syscall-mode=" + tier, "-R", root, "--", "/bin/sc",
			"syscall", nr("socket"), "17", "3", "0", ",", // socket(AF_PACKET, SOCK_RAW): CAP_NET_RAW
			"syscall", nr("socket"), "2", "3", "1", ",", // socket(AF_INET, SOCK_RAW, ICMP)
			"chroot", "/tmp", ",", "mknod", "/tmp/null", "chr", "0666", "1", "3", ",",
			"syscall", nr("syslog"), "3", "0", "0", ",", // syslog(READ_ALL): CAP_SYSLOG under dmesg_restrict
			"chown", "/tmp", "1234", "1234"} // CAP_CHOWN stays: the guest is root in its root
		want := []string{"syscall: err EPERM", "syscall: err EPERM", "chroot: err EPERM", "mknod: err EPERM",
			"syscall: err EPERM", "chown: ok 0"}
		if b, err := os.ReadFile("/proc/sys/kernel/dmesg_restrict"); err == nil && strings.TrimSpace(string(b)) == "0" {
			want[4] = "syscall: *"
		}
		out, errOut, code := runKbox(t, runOpts{Args: args})
		if code != 0 {
			t.Errorf("%s: exit %d\nstderr:\n%s", tier, code, errOut)
		}
		if diff := compareLines(want, lines(out)); diff != "" {
			t.Errorf("%s:\n%s\nstderr:\n%s", tier, diff, errOut)
		}
		out, errOut, code = runKbox(t, runOpts{Args: []string{"--keep-caps", "--syscall-mode=" + tier, "-R", root, "--",
			"/bin/sc", "syscall", nr("socket"), "2", "3", "1"}})
		if code != 0 || !strings.HasPrefix(strings.Join(lines(out), ""), "syscall: ok ") {
			t.Errorf("%s --keep-caps: exit %d\nstdout:\n%s\nstderr:\n%s", tier, code, out, errOut)
		}
	}
}
