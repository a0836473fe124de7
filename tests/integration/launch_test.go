package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCLIErrorMessages: bad command lines and unusable setups end with
// kbox's own statuses (125 for any failure of kbox, 126, 127) and one
// exact line.
func TestCLIErrorMessages(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	missing := filepath.Join(mkTempDir(t, "kbox-it-missing-"), "nothing")
	file := filepath.Join(root, "etc/hostname")
	cases := []struct {
		args []string
		dir  string // kbox's working directory
		code int
		msg  string
	}{
		{[]string{"--bogus"}, "", 125, "kbox: unknown flag: --bogus (see kbox --help)"},
		{[]string{"-r", ""}, "", 125, "kbox: --root-dir: empty path"},
		{[]string{"-R", ""}, "", 125, "kbox: --recommended-root: empty path"},
		{[]string{"-S", ""}, "", 125, "kbox: --system-root: empty path"},
		{[]string{"-r", root, "-w", ""}, "", 125, "kbox: --work-dir: empty path"},
		{[]string{"-r", root, "-w", "/etc/hostname"}, "", 125, "kbox: --work-dir /etc/hostname: not a directory in the guest"},
		{[]string{"-r", root, "-w", "/nope"}, "", 125, "kbox: --work-dir /nope: does not exist in the guest"},
		{[]string{"-r", root, "--", ""}, "", 125, "kbox: the command is empty"},
		{[]string{"-r", root, "-c", ""}, "", 125, "kbox: the command is empty"},
		{[]string{"-S", root, "--change-id", "1:1"}, "", 125,
			"kbox: --change-id cannot be combined with --system-root (the guest runs as root there); use --recommended-root --change-id"},
		{[]string{"-0", "--change-id", "1:1", "-r", root}, "", 125, "kbox: give only one of --root-id, --change-id"},
		{[]string{"-r", root, "-R", root}, "", 125, "kbox: give only one of --root-dir, --recommended-root, --system-root"},
		{[]string{"-r", missing}, "", 125, "kbox: guest root " + missing + ": no such file or directory"},
		{[]string{"-r", file}, "", 125, "kbox: guest root " + file + ": not a directory"},
		{[]string{"-r", "nothing"}, filepath.Dir(missing), 125, "kbox: guest root " + missing + ": no such file or directory"},
		{[]string{"-r", root, "-b", "x"}, "", 125, `kbox: --bind-mount "x": want SRC:DST[:ro]`},
		{[]string{"-r", root, "-b", ":/mnt"}, "", 125, `kbox: --bind-mount ":/mnt": empty SRC`},
		{[]string{"-r", root, "-b", "/tmp:"}, "", 125, `kbox: --bind-mount "/tmp:": empty DST`},
		{[]string{"-r", root, "-b", "/tmp:/"}, "", 125, `kbox: --bind-mount "/tmp:/": use --root-dir to replace /`},
		{[]string{"-r", root, "-b", missing + ":/mnt"}, "", 125, "kbox: --bind-mount " + missing + ":/mnt: " + missing + ": no such file or directory"},
		{[]string{"-r", root, "-b", "nothing:/mnt"}, filepath.Dir(missing), 125,
			"kbox: --bind-mount " + missing + ":/mnt: " + missing + ": no such file or directory"},
		{[]string{"-r", root, "-b", file + ":/etc"}, "", 125,
			"kbox: --bind-mount " + file + ":/etc: /etc is a directory in the guest (the source " + file + " is not)"},
		{[]string{"-r", root, "-b", "/tmp:/etc/hostname/x"}, "", 125,
			"kbox: --bind-mount /tmp:/etc/hostname/x: /etc/hostname is not a directory in the guest"},
		{[]string{"-R", root, "-b", "/tmp:/proc/x"}, "", 125,
			"kbox: --bind-mount /tmp:/proc/x: /proc/x: no mount can be placed in a procfs"},
		{[]string{"--setenv", "X"}, "", 125, `kbox: invalid argument "X" for "--setenv" flag: want NAME=VALUE, got "X" (see kbox --help)`},
		{[]string{"--unsetenv", "X=1"}, "", 125, `kbox: invalid argument "X=1" for "--unsetenv" flag: want a variable NAME, got "X=1" (see kbox --help)`},
		{[]string{"--syscall-mode=x"}, "", 125, `kbox: --syscall-mode must be auto, seccomp, trap or rewrite, not "x"`},
		{[]string{"-r", root, "--", "/etc"}, "", 126, "kbox: /etc: is a directory in the guest"},
		{[]string{"-r", root, "--", "/etc/hostname"}, "", 126, "kbox: /etc/hostname: not executable in the guest"},
		{[]string{"-r", root, "--", "nope"}, "", 127, "kbox: nope: command not found in the guest"},
	}
	for _, c := range cases {
		opts := runOpts{Args: c.args, Dir: c.dir}
		_, errOut, code := runKbox(t, opts)
		if code != c.code || errOut != c.msg+"\n" {
			t.Errorf("%s (in %s)\ngot  %d %q\nwant %d %q", cmdline(opts), c.dir, code, errOut, c.code, c.msg+"\n")
		}
	}
}

// TestCLIRelativeRoot: root flags and bind sources are taken from kbox's
// working directory, in every tier (the seccomp tier refused a relative
// root with a Landlock error, -r . ended 126 with no message).
func TestCLIRelativeRoot(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	src := mkTempDir(t, "kbox-it-relbind-")
	writeFile(t, filepath.Join(src, "in.txt"), "bound\n", 0o644)
	for _, tier := range append([]string{"auto"}, testedTiers(t, allTiers)...) {
		for _, c := range []struct{ dir, root string }{
			{filepath.Dir(root), filepath.Base(root)},
			{root, "."},
			{filepath.Join(root, "etc"), ".."},
		} {
			rel, err := filepath.Rel(c.dir, src)
			if err != nil {
				t.Fatal(err)
			}
			for _, flag := range []string{"-r", "-R", "-S"} {
				opts := runOpts{Dir: c.dir, Args: []string{"--syscall-mode=" + tier, flag, c.root, "-b", rel + ":/mnt/rel", "--",
					"/bin/sc", "readfile", "/etc/hostname", ",", "readfile", "/mnt/rel/in.txt"}}
				out, errOut, code := runKbox(t, opts)
				if code != 0 || out != "readfile: ok kbox-guest\nreadfile: ok bound\n" {
					t.Errorf("%s (in %s): exit %d\nstdout %q\nstderr %q", cmdline(opts), c.dir, code, out, errOut)
				}
			}
		}
	}
}

// TestCLIEnvironment: the guest's environment is kbox's, changed only by
// --setenv, --unsetenv and --clearenv, in the order given.
func TestCLIEnvironment(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	envOf := func(t *testing.T, tier string, flags ...string) []string {
		t.Helper()
		opts := runOpts{Args: append(append([]string{"--syscall-mode=" + tier, "-r", root}, flags...), "--", "/bin/env"),
			Env: []string{"KEEP=1", "DROP=2"}}
		out, _ := checkRun(t, opts, 0)
		l := lines(out)
		sort.Strings(l)
		return l
	}
	base := append(baseEnv(), "KEEP=1", "DROP=2")
	sort.Strings(base)
	for _, tier := range append([]string{"auto"}, testedTiers(t, allTiers)...) {
		if got := envOf(t, tier); strings.Join(got, "\n") != strings.Join(base, "\n") {
			t.Errorf("%s: the guest's environment is not kbox's:\ngot  %q\nwant %q", tier, got, base)
		}
		got := envOf(t, tier, "--unsetenv", "DROP", "--setenv", "NEW=a=b", "--setenv", "KEEP=3")
		want := []string{}
		for _, kv := range base {
			if !strings.HasPrefix(kv, "DROP=") && !strings.HasPrefix(kv, "KEEP=") {
				want = append(want, kv)
			}
		}
		want = append(want, "KEEP=3", "NEW=a=b")
		sort.Strings(want)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: --unsetenv/--setenv:\ngot  %q\nwant %q", tier, got, want)
		}
		// --clearenv empties what came before it only; without PATH the
		// command is still found on the default search path.
		if got := envOf(t, tier, "--setenv", "A=1", "--clearenv", "--setenv", "B=2"); strings.Join(got, ",") != "B=2" {
			t.Errorf("%s: --setenv A=1 --clearenv --setenv B=2: got %q, want [B=2]", tier, got)
		}
	}
}

// TestCLIWorkDirDefault: with no root flag the guest starts in kbox's
// working directory (the host's / is the guest's); with one, in /.
func TestCLIWorkDirDefault(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("host has no /bin/sh")
	}
	dir := mkTempDir(t, "kbox-it-cwd-")
	out, _ := checkRun(t, runOpts{Args: []string{"--", "/bin/sh", "-c", "pwd"}, Dir: dir}, 0)
	if out != dir+"\n" {
		t.Errorf("no root flag, run in %s: pwd %q", dir, out)
	}
	// a directory the guest does not have (kbox's private /dev): /
	out, _ = checkRun(t, runOpts{Args: []string{"--", "/bin/sh", "-c", "pwd"}, Dir: "/dev/pts"}, 0)
	if out != "/\n" && out != "/dev/pts\n" {
		t.Errorf("no root flag, run in /dev/pts: pwd %q", out)
	}
	out, _ = checkRun(t, runOpts{Args: []string{"-r", fixtureRoot(t), "--", "/bin/sh", "-c", "pwd"}, Dir: dir}, 0)
	if out != "/\n" {
		t.Errorf("-r, run in %s: pwd %q, want /", dir, out)
	}
}

// treeListing lists every path below dir with its mode, owner and size
// (not times: the guest may read them).
func treeListing(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "%s %v %d:%d %d\n", strings.TrimPrefix(p, dir), fi.Mode(), st.Uid, st.Gid, fi.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// dirTypes is what sc lstypes prints for host directory dir, with the
// entries extra (name=type) added.
func dirTypes(t *testing.T, dir string, extra ...string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := extra
	for _, e := range ents {
		typ := map[os.FileMode]string{0: "reg", os.ModeDir: "dir", os.ModeSymlink: "lnk"}[e.Type()]
		names = append(names, e.Name()+"="+typ)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// TestBindMountPoints: mount points are kbox's own. A bind below
// directories the guest root lacks, in a root the user cannot write,
// works and is listed; a single file can be bound; the guest root on the
// host is the same before and after.
func TestBindMountPoints(t *testing.T) {
	t.Parallel()
	root := mkTempDir(t, "kbox-it-mproot-")
	root = filepath.Join(root, "root")
	if out, err := exec.Command("cp", "-a", fixtureRoot(t), root).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
	// No /proc, /sys, /dev, /tmp: -R and -S mount them all the same.
	for _, d := range []string{"proc", "sys", "dev", "tmp"} {
		os.RemoveAll(filepath.Join(root, d))
	}
	src := mkTempDir(t, "kbox-it-mpsrc-")
	writeFile(t, filepath.Join(src, "in.txt"), "bound\n", 0o644)
	hostFile := filepath.Join(mkTempDir(t, "kbox-it-mpfile-"), "resolv")
	writeFile(t, hostFile, "nameserver 192.0.2.1\n", 0o644)
	// /lib is a link to usr/lib: the mount point is /usr/lib/kb.
	usrLib := dirTypes(t, filepath.Join(root, "usr/lib"), "kb=dir")
	rootTypes := dirTypes(t, root, "newfile=reg", "opt=dir")
	rootTypesMounts := dirTypes(t, root, "newfile=reg", "opt=dir", "dev=dir", "proc=dir", "sys=dir", "tmp=dir")
	before := treeListing(t, root)
	forEachVariant(t, "", func(t *testing.T, v variant) {
		for _, tier := range append([]string{"auto"}, testedTiers(t, allTiers)...) {
			for _, flag := range []string{"-r", "-R", "-S"} {
				opts := runOpts{Unpriv: v.unpriv, Args: []string{"--syscall-mode=" + tier, flag, root,
					"-b", src + ":/opt/a/b", "-b", hostFile + ":/etc/resolv.conf", "-b", hostFile + ":/etc/new/f",
					"-b", src + ":/lib/kb", "--", "/bin/sc",
					"readfile", "/opt/a/b/in.txt", ",", "lstypes", "/opt", ",", "lstypes", "/opt/a", ",",
					"stat", "/opt", ",", "readfile", "/etc/resolv.conf", ",", "lstypes", "/etc/new", ",",
					"readfile", "/usr/lib/kb/in.txt", ",", "lstypes", "/usr/lib", ",",
					"mkdir", "/opt/x", ",", "open", "/etc/resolv.conf", "O_WRONLY"}}
				out, errOut, code := runKbox(t, opts)
				want := []string{"readfile: ok bound", "lstypes: ok a=dir", "lstypes: ok b=dir", "stat: ok *",
					"readfile: ok nameserver 192.0.2.1", "lstypes: ok f=reg", "readfile: ok bound", "lstypes: ok " + usrLib,
					"mkdir: err EROFS", "open: err EROFS"}
				if diff := compareLines(want, lines(out)); code != 0 || diff != "" {
					t.Errorf("%s: exit %d\n%s\nstderr:\n%s", cmdline(opts), code, diff, errOut)
				}
				// The root's own listing shows the mount points it lacks.
				opts.Args = []string{"--syscall-mode=" + tier, flag, root, "-b", src + ":/opt/a/b", "-b", hostFile + ":/newfile",
					"--", "/bin/sc", "lstypes", "/"}
				out, errOut, code = runKbox(t, opts)
				// (the fixture's own entries: lib64 -> usr/lib64 on x86_64 only)
				wantRoot := "lstypes: ok " + rootTypes + "\n"
				if flag != "-r" {
					wantRoot = "lstypes: ok " + rootTypesMounts + "\n"
				}
				if code != 0 || out != wantRoot {
					t.Errorf("%s: exit %d\ngot  %q\nwant %q\nstderr:\n%s", cmdline(opts), code, out, wantRoot, errOut)
				}
			}
		}
	})
	t.Cleanup(func() {
		if after := treeListing(t, root); after != before {
			t.Errorf("the guest root changed on the host:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}

// TestNameServiceFiles: -R and -S show the host's resolv.conf, hosts and
// nsswitch.conf (read-only); -r does not.
func TestNameServiceFiles(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	for _, f := range []string{"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf"} {
		host, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, flag := range []string{"-R", "-S"} {
			out, _ := checkRun(t, runOpts{Args: []string{flag, root, "--", "/bin/cat", f}}, 0)
			if out != string(host) {
				t.Errorf("%s ROOT cat %s: %q, want the host's %q", flag, f, out, host)
			}
		}
		guest, _ := os.ReadFile(filepath.Join(root, f))
		out, _, _ := runKbox(t, runOpts{Args: []string{"-r", root, "--", "/bin/cat", f}})
		if out != string(guest) {
			t.Errorf("-r ROOT cat %s: %q, want the root's %q", f, out, guest)
		}
	}
}

// privateTmps lists the private directories kbox made in dir.
func privateTmps(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestPrivateDirsRemoved: the private /tmp (and every other directory
// kbox makes) is removed however the run ends, in every tier: the guest
// exits (having made its files in /tmp unsearchable), is killed by a
// signal, or kbox is sent SIGTERM.
func TestPrivateDirsRemoved(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	forEachVariant(t, "", func(t *testing.T, v variant) {
		for _, tier := range append([]string{"auto"}, testedTiers(t, allTiers)...) {
			tmp := mkTempDir(t, "kbox-it-tmpdir-")
			chownTree(t, tmp, v.uid())
			env := []string{"TMPDIR=" + tmp}
			// exit, and kill by a signal
			for _, c := range []struct {
				args []string
				code int
			}{
				{[]string{"/bin/sc", "mkdir", "/tmp/d", ",", "open", "/tmp/d/f", "O_WRONLY|O_CREAT", "0644", ",", "chmod", "/tmp/d", "0", ",",
					"mkdir", "/tmp/e", ",", "chmod", "/tmp/e", "0200", ",", "chmod", "/tmp", "0"}, 0},
				{[]string{"/bin/sh", "-c", "echo x > /tmp/f; exec kill -9 $$"}, 137},
			} {
				opts := runOpts{Unpriv: v.unpriv, Env: env, Args: append([]string{"--syscall-mode=" + tier, "-S", root, "--"}, c.args...)}
				checkRun(t, opts, c.code)
				if left := privateTmps(t, tmp); len(left) != 0 {
					t.Errorf("%s: left behind in $TMPDIR: %q", cmdline(opts), left)
				}
			}
			// kbox sent SIGTERM while the guest runs
			argv := []string{kboxBin, "--syscall-mode=" + tier, "-S", root, "--", "/bin/sh", "-c", "echo x > /tmp/f && exec sleep 20"}
			requireTier(t, tier)
			if v.unpriv && isRoot() {
				argv = asUnprivileged(argv)
			}
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(baseEnv(), env...)
			var errOut bytes.Buffer
			cmd.Stderr = &errOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				m, _ := filepath.Glob(filepath.Join(tmp, "kbox-run-tmp-*", "f"))
				if len(m) > 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			cmd.Process.Signal(syscall.SIGTERM)
			err := cmd.Wait()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 143 {
				t.Errorf("%s, SIGTERM: %v, want exit status 143\nstderr: %s", shellQuote(argv), err, errOut.String())
			}
			if left := privateTmps(t, tmp); len(left) != 0 {
				t.Errorf("%s, SIGTERM: left behind in $TMPDIR: %q", shellQuote(argv), left)
			}
		}
	})
}

// TestBindSourceLink: a bind source named through a symbolic link is
// the object it leads to: the guest's /proc/self/fd links of files
// opened through the bind name the guest path.
func TestBindSourceLink(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	dir := mkTempDir(t, "kbox-it-srclink-")
	writeFile(t, filepath.Join(dir, "real/file"), "data\n", 0o644)
	writeFile(t, filepath.Join(dir, "other/file"), "other\n", 0o644)
	os.Symlink("real", filepath.Join(dir, "dirlink"))
	os.Symlink("other/file", filepath.Join(dir, "filelink"))
	for _, tier := range testedTiers(t, allTiers) {
		opts := runOpts{Args: []string{"--syscall-mode=" + tier, "-R", root, "-b", filepath.Join(dir, "dirlink") + ":/mnt/d",
			"-b", filepath.Join(dir, "filelink") + ":/etc/f", "--", "/bin/sc",
			"open", "/mnt/d/file", "O_RDONLY", ",", "readlink", "/proc/self/fd/3", ",",
			"open", "/etc/f", "O_RDONLY", ",", "readlink", "/proc/self/fd/4"}}
		out, errOut, code := runKbox(t, opts)
		want := "open: ok 3\nreadlink: ok /mnt/d/file\nopen: ok 4\nreadlink: ok /etc/f\n"
		if code != 0 || out != want {
			t.Errorf("%s: exit %d\ngot  %q\nwant %q\nstderr:\n%s", cmdline(opts), code, out, want, errOut)
		}
	}
}

// TestLaunchers: the seccomp tier starts the guest through the embedded
// kbox-init, or, when that cannot run (KBOX_INIT=self forces it here), by
// re-executing kbox; both give the guest the same start: its arguments,
// environment, working directory, exit status and stdio, no descriptor of
// kbox's, no capabilities, no_new_privs, and its own process group.
func TestLaunchers(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	script := `echo "args:$#:$1:$2"; echo "env:$KBOX_LAUNCH_TEST"; pwd; ls /proc/self/fd | tr '\n' ' '; echo; ` +
		`grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status | tr -s '\t ' ' '; ` +
		`ps -o pid,pgid | awk -v me=$$ '$1==me {print ($1==$2) ? "own group" : "shared group"}'; exit 7`
	for _, via := range []string{"kbox-init", "self"} {
		forEachVariant(t, via+"/", func(t *testing.T, v variant) {
			env := []string{"KBOX_LAUNCH_TEST=value with spaces"}
			if via == "self" {
				env = append(env, "KBOX_INIT=self")
			}
			opts := runOpts{Args: []string{"-v", "--syscall-mode=seccomp", "-R", root, "-w", "/tmp", "--", "/bin/sh", "-c", script, "sh", "a b", ""},
				Env: env, Unpriv: v.unpriv}
			out, errOut := checkRun(t, opts, 7)
			// ls's own directory descriptor is 3.
			want := "args:2:a b:\nenv:value with spaces\n/tmp\n0 1 2 3 \nCapEff: 0000000000000000\nCapBnd: 0000000000000000\nNoNewPrivs: 1\nown group\n"
			if v.unpriv {
				want = strings.Replace(want, "CapBnd: 0000000000000000\n", "", 1)
			}
			got := out
			if v.unpriv {
				// An unprivileged kbox leaves the bounding set as it found it.
				var keep []string
				for _, l := range strings.SplitAfter(out, "\n") {
					if !strings.HasPrefix(l, "CapBnd:") {
						keep = append(keep, l)
					}
				}
				got = strings.Join(keep, "")
			}
			if got != want {
				t.Errorf("%s\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", cmdline(opts), out, want, errOut)
			}
			// kbox-init starts beside kbox's set-up (unotify.StartEarly).
			wantVia := "guest started by kbox-init, started early"
			if via == "self" {
				wantVia = "guest started by kbox re-executed (kbox-init: KBOX_INIT=self)"
			}
			if !strings.Contains(errOut, wantVia) {
				t.Errorf("%s: -v does not say %q:\n%s", cmdline(opts), wantVia, errOut)
			}
		})
	}
}
