package integration

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The host's /proc, /sys and /dev as the guest sees them (F3 in the
// hostile-guest report): read-only except what a process legitimately
// writes, /dev reduced to a private set. Run as the real root, these are
// the writes and opens a uid-0 guest without capabilities could otherwise
// make (DAC lets uid 0 open root-owned objects).

// guestDevNames is what ls /dev shows in the guest: the private /dev's
// links and directories and the host's device nodes of the allowed set.
func guestDevNames() string {
	names := []string{"fd", "pts", "shm", "stderr", "stdin", "stdout"}
	for _, n := range []string{"null", "zero", "full", "random", "urandom", "tty", "ptmx"} {
		if fi, err := os.Stat("/dev/" + n); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// guestDevTypes is what sc lstypes /dev shows: the directory entries'
// types are those of what the guest reaches (the device nodes, not their
// placeholders).
func guestDevTypes() string {
	types := map[string]string{"fd": "lnk", "pts": "dir", "shm": "dir", "stderr": "lnk", "stdin": "lnk", "stdout": "lnk"}
	var out []string
	for _, n := range strings.Split(guestDevNames(), ",") {
		t := types[n]
		if t == "" {
			t = "chr"
		}
		out = append(out, n+"="+t)
	}
	return strings.Join(out, ",")
}

// hostBlockDevice returns a block device of the host's /dev (/dev/loop0
// when present), or "".
func hostBlockDevice() string {
	if fi, err := os.Stat("/dev/loop0"); err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 {
		return "/dev/loop0"
	}
	ents, _ := os.ReadDir("/dev")
	for _, e := range ents {
		if fi, err := os.Stat("/dev/" + e.Name()); err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 {
			return "/dev/" + e.Name()
		}
	}
	return ""
}

// scOps joins sc operations into one argument list.
func scOps(ops ...[]string) []string {
	var out []string
	for i, op := range ops {
		if i > 0 {
			out = append(out, ",")
		}
		out = append(out, op...)
	}
	return out
}

// forEachTierRootVariant runs f for every tier, root flag of modes and
// privilege variant, as parallel subtests named tier/mode/variant.
func forEachTierRootVariant(t *testing.T, modes []string, f func(t *testing.T, tier, mode string, v variant)) {
	t.Helper()
	for _, tier := range testedTiers(t, allTiers) {
		for _, mode := range modes {
			forEachVariant(t, tier+"/"+mode+"/", func(t *testing.T, v variant) { f(t, tier, mode, v) })
		}
	}
}

// TestProcSysDevConfined: with -R and -S, in every tier, as root and
// unprivileged, the guest cannot write /proc/sys or /sys, cannot reach
// the host's other devices, and still uses its own /proc entries, the
// ordinary devices, a pty and /dev/shm.
func TestProcSysDevConfined(t *testing.T) {
	t.Parallel()
	core, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Skipf("no /proc/sys/kernel/core_pattern: %v", err)
	}
	// Writing back the current value: harmless even if the guest got
	// through.
	coreValue := strings.TrimRight(string(core), "\n")
	block := hostBlockDevice()
	// A host pty the guest does not hold: it must not exist for the guest.
	hostPty := ""
	if m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0); err == nil {
		t.Cleanup(func() { m.Close() })
		if n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN); err == nil {
			hostPty = "/dev/pts/" + strconv.Itoa(n)
		}
	}
	forEachTierRootVariant(t, []string{"-R", "-S"}, func(t *testing.T, tier, mode string, v variant) {
		root := freshRoot(t, v.uid())
		ops := [][]string{
			{"open", "/proc/sys/kernel/core_pattern", "O_WRONLY"},
			{"write", "@1", coreValue},
			{"chmod", "/proc/sys/kernel/core_pattern", "0644"},
			{"open", "/proc/sys/vm/drop_caches", "O_WRONLY"},
			{"open", "/proc/sys/fs/binfmt_misc/register", "O_WRONLY"},
			{"mkdir", "/proc/sys/kbox", "0755"},
			{"open", "/proc/self/comm", "O_WRONLY"},
			{"write", "@7", "kbox-comm"},
			{"readfile", "/proc/self/comm"},
			{"open", "/proc/self/oom_score_adj", "O_WRONLY"},
			{"write", "@10", "1000"},
			{"readfile", "/proc/thread-self/oom_score_adj"},
			{"open", "/sys/kernel/uevent_seqnum", "O_WRONLY"},
			{"chmod", "/sys/kernel", "0755"},
			{"open", "/dev/kmsg", "O_RDWR"},
			{"open", "/dev/userfaultfd", "O_RDWR"},
			{"open", "/dev/pts/ptmx", "O_RDWR"},
			{"ls", "/dev"},
			{"open", "/dev/null", "O_WRONLY"},
			{"write", "@19", "discarded"},
			{"open", "/dev/zero", "O_RDONLY"},
			{"read", "@21", "4"},
			{"open", "/dev/urandom", "O_RDONLY"},
			{"read", "@23", "4"},
			{"chmod", "/dev/null", "0666"},
			{"mknod", "/dev/kbox", "reg", "0644"},
			{"readlink", "/dev/stdout"},
			{"openpty"},
			{"ls", "/dev/pts"},
			{"lstypes", "/dev"},
		}
		want := []string{
			"open: err EROFS",
			"write: err EBADF",
			"chmod: err EROFS",
			"open: err EROFS",
			"open: err EROFS",
			"mkdir: err EROFS",
			"open: ok *",
			"write: ok 9",
			"readfile: ok kbox-comm",
			"open: ok *",
			"write: ok 4",
			"readfile: ok 1000",
			"open: err EROFS",
			"chmod: err EROFS",
			"open: err ENOENT",
			"open: err ENOENT",
			"open: err ENOENT",
			"ls: ok " + guestDevNames(),
			"open: ok *",
			"write: ok 9",
			"open: ok *",
			`read: ok 4 \x00\x00\x00\x00`,
			"open: ok *",
			"read: ok *",
			"chmod: err EROFS",
			"mknod: err EROFS",
			"readlink: ok /proc/self/fd/1",
			"openpty: ok *",
			"ls: ok *",
			"lstypes: ok " + guestDevTypes(),
		}
		inProcess := tier != "seccomp"
		if inProcess {
			// The guest's /proc/self is the process that hosts it, whose
			// /proc the kernel keeps read-only to it (Landlock: no
			// /proc/self/mem, nor any other /proc file, for writing;
			// docs/security.md), and whose devpts it reaches only for
			// kbox's own terminals: new ptys cannot be opened by path.
			want[6], want[7], want[8] = "open: err EACCES", "write: err EBADF", "readfile: ok sc"
			want[9], want[10], want[11] = "open: err EACCES", "write: err EBADF", "readfile: ok *"
			want[27], want[28] = "openpty: err EACCES", "ls: err EACCES"
		}
		if _, err := os.Stat("/sys/kernel/uevent_seqnum"); err != nil {
			want[12] = "open: err ENOENT"
		}
		if _, err := os.Stat("/proc/sys/fs/binfmt_misc/register"); err != nil {
			want[4] = "open: err ENOENT"
		}
		if _, err := os.Stat("/proc/sysrq-trigger"); err == nil {
			ops = append(ops, []string{"open", "/proc/sysrq-trigger", "O_WRONLY"})
			want = append(want, "open: err EROFS")
		}
		if block != "" {
			ops = append(ops, []string{"open", block, "O_RDWR"})
			want = append(want, "open: err ENOENT")
		}
		if hostPty != "" {
			ops = append(ops, []string{"open", hostPty, "O_RDWR"}, []string{"stat", hostPty})
			want = append(want, "open: err ENOENT", "stat: err ENOENT")
		}
		opts := runOpts{Unpriv: v.unpriv, Args: append([]string{"--syscall-mode=" + tier, mode, root, "--", "/bin/sc"}, scOps(ops...)...)}
		out, errOut, code := runKbox(t, opts)
		got := lines(out)
		if code != 0 {
			t.Errorf("%s: exit status %d\nstderr:\n%s", cmdline(opts), code, errOut)
		}
		if diff := compareLines(want, got); diff != "" {
			t.Fatalf("%s\n%sstderr:\n%s", cmdline(opts), diff, errOut)
		}
		// The guest sees exactly the pty it opened, none of the host's.
		if !inProcess {
			if pty := strings.TrimPrefix(strings.Fields(got[27])[2], "pty="); got[27] != "openpty: ok pty="+pty+` line=ping\x0a` || got[28] != "ls: ok "+pty {
				t.Errorf("%s: openpty %q, then ls /dev/pts %q: want only that pty", cmdline(opts), got[27], got[28])
			}
		}
		if b, _ := os.ReadFile("/proc/sys/kernel/core_pattern"); string(b) != string(core) {
			t.Errorf("the host's core_pattern changed: %q, was %q", b, core)
		}
	})
}

// TestDevShmPrivate: /dev/shm is a private writable directory (shm_open
// style create, write, read, unlink works), invisible on the host's
// /dev/shm and removed when kbox exits.
func TestDevShmPrivate(t *testing.T) {
	t.Parallel()
	forEachTierRootVariant(t, []string{"-R", "-S"}, func(t *testing.T, tier, mode string, v variant) {
		root := freshRoot(t, v.uid())
		tmp := mkTempDir(t, "kbox-it-tmpdir-")
		chownTree(t, tmp, v.uid())
		name := "kbox-it-shm-" + randomHex(t, 6)
		t.Cleanup(func() { os.Remove("/dev/shm/" + name); os.Remove("/dev/shm/" + name + ".left") })
		ops := [][]string{
			{"open", "/dev/shm/" + name, "O_RDWR|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC", "0600"},
			{"write", "@1", "segment"},
			{"readfile", "/dev/shm/" + name},
			{"unlink", "/dev/shm/" + name},
			{"open", "/dev/shm/" + name + ".left", "O_WRONLY|O_CREAT", "0600"},
			{"ls", "/dev/shm"},
			{"stat", "/dev/shm"},
		}
		want := []string{"open: ok *", "write: ok 7", "readfile: ok segment", "unlink: ok 0", "open: ok *",
			"ls: ok " + name + ".left", "stat: ok type=dir mode=1777"}
		opts := runOpts{Unpriv: v.unpriv, Env: []string{"TMPDIR=" + tmp},
			Args: append([]string{"--syscall-mode=" + tier, mode, root, "--", "/bin/sc"}, scOps(ops...)...)}
		out, errOut, code := runKbox(t, opts)
		if code != 0 {
			t.Errorf("%s: exit status %d\nstderr:\n%s", cmdline(opts), code, errOut)
		}
		if diff := compareLines(want, lines(out)); diff != "" {
			t.Errorf("%s\n%sstderr:\n%s", cmdline(opts), diff, errOut)
		}
		if _, err := os.Lstat("/dev/shm/" + name + ".left"); err == nil {
			t.Errorf("%s: the guest's file appeared in the host's /dev/shm", cmdline(opts))
		}
		// Every private directory (/dev, /dev/shm, /tmp, the exec
		// directory) is gone: nothing of the run is left in TMPDIR (the
		// in-process tiers end the process from their Landlock-confined
		// guest thread: vfs removes them from a thread of its own).
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("%s: left in TMPDIR %s after exit: %v", cmdline(opts), tmp, names)
		}
	})
}

// TestDevTty: /dev/tty exists and opens as the caller's controlling
// terminal: kbox's guests here have none, so the kernel answers ENXIO
// (not ENOENT: the node is there).
func TestDevTty(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	forEachVariant(t, "", func(t *testing.T, v variant) {
		opts := runOpts{Unpriv: v.unpriv, Args: []string{"-R", root, "--", "/bin/sc", "open", "/dev/tty", "O_RDWR|O_NOCTTY", ",", "stat", "/dev/tty"}}
		out, errOut, code := runKbox(t, opts)
		got := lines(out)
		if code != 0 || len(got) != 2 || (got[0] != "open: err ENXIO" && !matchLine("open: ok *", got[0])) ||
			!strings.HasPrefix(got[1], "stat: ok type=chr mode=0666 ") {
			t.Errorf("%s: exit %d, got:\n%s\nwant open ok or ENXIO, and a character device\nstderr:\n%s", cmdline(opts), code, out, errOut)
		}
	})
}

// TestDefaultRootDevProc: the default root (the host's / read-only) gets
// the same private /dev and the same /proc rule.
func TestDefaultRootDevProc(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(fixtureRoot(t), "bin")
	core, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Skipf("no /proc/sys/kernel/core_pattern: %v", err)
	}
	forEachVariant(t, "", func(t *testing.T, v variant) {
		ops := [][]string{
			{"ls", "/dev"},
			{"open", "/dev/null", "O_WRONLY"},
			{"open", "/dev/kmsg", "O_RDONLY"},
			{"open", "/proc/sys/kernel/core_pattern", "O_WRONLY"},
			{"write", "@4", strings.TrimRight(string(core), "\n")},
			{"open", "/proc/self/comm", "O_WRONLY"},
			{"write", "@6", "kbox-default"},
			{"readfile", "/proc/self/comm"},
			{"open", "/etc/kbox-" + strconv.Itoa(os.Getpid()), "O_WRONLY|O_CREAT", "0644"},
		}
		want := []string{"ls: ok " + guestDevNames(), "open: ok *", "open: err ENOENT", "open: err EROFS", "write: err EBADF",
			"open: ok *", "write: ok 12", "readfile: ok kbox-default", "open: err EROFS"}
		opts := runOpts{Unpriv: v.unpriv, Args: append([]string{"-b", bin + ":/kbox-it-bin:ro", "--", "/kbox-it-bin/sc"}, scOps(ops...)...)}
		out, errOut, code := runKbox(t, opts)
		if code != 0 {
			t.Errorf("%s: exit status %d\nstderr:\n%s", cmdline(opts), code, errOut)
		}
		if diff := compareLines(want, lines(out)); diff != "" {
			t.Errorf("%s\n%sstderr:\n%s", cmdline(opts), diff, errOut)
		}
		if b, _ := os.ReadFile("/proc/sys/kernel/core_pattern"); string(b) != string(core) {
			t.Errorf("the host's core_pattern changed: %q, was %q", b, core)
		}
	})
}

// TestProcOtherProcessReadOnly: a guest process may write its own /proc
// entries but not another process's (a guest child's, here).
func TestProcOtherProcessReadOnly(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := freshRoot(t, v.uid())
		script := `sleep 5 & p=$!; ` +
			`if echo other > /proc/$p/comm; then echo other-written; else echo other-refused; fi; ` +
			`if printf self > /proc/$$/comm; then echo self-written; fi; cat /proc/$$/comm; kill $p`
		opts := runOpts{Unpriv: v.unpriv, Args: []string{"-S", root, "--", "/bin/sh", "-c", script}}
		out, errOut, code := runKbox(t, opts)
		want := "other-refused\nself-written\nself\n"
		if code != 0 || out != want {
			t.Errorf("%s: exit %d\ngot:\n%s\nwant:\n%s\nstderr:\n%s", cmdline(opts), code, out, want, errOut)
		}
		if !strings.Contains(errOut, "Read-only file system") {
			t.Errorf("%s: the refusal is not EROFS:\n%s", cmdline(opts), errOut)
		}
	})
}

// TestSysProcWritePaths: every path-based way of modifying something in
// /sys or /proc/sys (and /proc outside the caller's own entries) fails
// with EROFS, in every tier, with -R and -S, as root and unprivileged.
// The objects are existing ones (/sys/kernel/profiling, the host's
// core_pattern); every operation would leave them as they are if it got
// through (same mode, same owner, same times, same name).
func TestSysProcWritePaths(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"/sys/kernel/profiling", "/proc/sys/kernel/core_pattern"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s: %v", p, err)
		}
	}
	forEachTierRootVariant(t, []string{"-R", "-S"}, func(t *testing.T, tier, mode string, v variant) {
		root := fixtureRoot(t)
		var ops [][]string
		var want []string
		for _, dir := range []string{"/sys/kernel", "/proc/sys/kernel", "/proc/1"} {
			obj := dir + "/profiling"
			switch dir {
			case "/proc/sys/kernel":
				obj = dir + "/core_pattern"
			case "/proc/1":
				obj = dir + "/comm"
			}
			for _, op := range [][]string{
				{"open", obj, "O_WRONLY"},
				{"open", obj, "O_RDONLY|O_TRUNC"},
				{"open", dir + "/kbox-new", "O_WRONLY|O_CREAT", "0644"},
				{"truncate", obj, "4096"},
				{"chmod", obj, "0644"},
				{"chown", obj, "0", "0"},
				{"utimes", obj, "null"},
				{"setxattr", obj, "user.kbox", "x"},
				{"removexattr", obj, "user.kbox"},
				{"mknod", dir + "/kbox-fifo", "fifo", "0644"},
				{"mkdir", dir + "/kbox-dir", "0755"},
				{"symlink", "x", dir + "/kbox-link"},
				{"link", obj, dir + "/kbox-hard"},
				{"rename", obj, obj},
				{"unlink", obj},
				{"access", obj, "W_OK"},
			} {
				ops = append(ops, op)
				want = append(want, op[0]+": err EROFS")
			}
		}
		// /proc/1 is not a guest process: it does not exist for the guest.
		for i := 32; i < len(want); i++ {
			want[i] = ops[i][0] + ": err ENOENT"
		}
		opts := runOpts{Unpriv: v.unpriv, Args: append([]string{"--syscall-mode=" + tier, mode, root, "--", "/bin/sc"}, scOps(ops...)...)}
		out, errOut, code := runKbox(t, opts)
		if code != 0 {
			t.Errorf("%s: exit status %d\nstderr:\n%s", cmdline(opts), code, errOut)
		}
		if diff := compareLines(want, lines(out)); diff != "" {
			t.Errorf("%s\n%sstderr:\n%s", cmdline(opts), diff, errOut)
		}
	})
}
