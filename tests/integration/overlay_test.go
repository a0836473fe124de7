package integration

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// treeState describes every entry below dir, byte for byte: path, type,
// mode, owner, size, mtime and ctime (so a change undone still shows),
// content, link target and extended attributes. Access times are left
// out: reading a lower file may update them.
func treeState(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %o %d:%d %d m%d.%d c%d.%d", rel, st.Mode, st.Uid, st.Gid, st.Size,
			st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			b.WriteString(" " + hex.EncodeToString(h.Sum(nil)))
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			b.WriteString(" -> " + target)
		}
		buf := make([]byte, 8192)
		if n, err := unix.Llistxattr(p, buf); err == nil && n > 0 {
			names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
			sort.Strings(names)
			for _, name := range names {
				v := make([]byte, 8192)
				if m, err := unix.Lgetxattr(p, name, v); err == nil {
					fmt.Fprintf(&b, " %s=%x", name, v[:m])
				}
			}
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", dir, err)
	}
	return b.String()
}

// checkUnchanged fails when dir's state differs from before.
func checkUnchanged(t testing.TB, dir, before string) {
	t.Helper()
	after := treeState(t, dir)
	if after == before {
		return
	}
	bl, al := lines(before), lines(after)
	var diffs []string
	seen := map[string]bool{}
	for _, l := range bl {
		seen[l] = true
	}
	for _, l := range al {
		if !seen[l] {
			diffs = append(diffs, "+ "+l)
		}
	}
	seen = map[string]bool{}
	for _, l := range al {
		seen[l] = true
	}
	for _, l := range bl {
		if !seen[l] {
			diffs = append(diffs, "- "+l)
		}
	}
	t.Errorf("the lower root %s changed:\n%s", dir, head(strings.Join(diffs, "\n"), 4000))
}

// ownedDir is a new host directory owned by the variant's uid.
func ownedDir(t testing.TB, v variant, pattern string) string {
	t.Helper()
	d := mkTempDir(t, pattern)
	chownTree(t, d, v.uid())
	return d
}

// overlayLower is a fresh fixture root with /ov holding:
//
//	f "lower-f", x "x", l -> f, d/a, d/sub/b, ld/c, ro (0444)
func overlayLower(t testing.TB, v variant) string {
	t.Helper()
	root := freshRoot(t, os.Getuid())
	ov := filepath.Join(root, "ov")
	writeFile(t, filepath.Join(ov, "f"), "lower-f\n", 0o644)
	writeFile(t, filepath.Join(ov, "x"), "x\n", 0o644)
	writeFile(t, filepath.Join(ov, "d", "a"), "a\n", 0o644)
	writeFile(t, filepath.Join(ov, "d", "sub", "b"), "b\n", 0o644)
	writeFile(t, filepath.Join(ov, "ld", "c"), "c\n", 0o644)
	writeFile(t, filepath.Join(ov, "ro"), "ro\n", 0o444)
	if err := os.Symlink("f", filepath.Join(ov, "l")); err != nil {
		t.Fatal(err)
	}
	chownTree(t, root, v.uid())
	return root
}

// TestReadOnlyRoot: with --read-only every change of the root fails with
// EROFS, reads work, the private /tmp of -S stays writable, and the root
// is unchanged byte for byte.
func TestReadOnlyRoot(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"-r", "-S"} {
		forEachVariant(t, mode+"/", func(t *testing.T, v variant) {
			root := overlayLower(t, v)
			before := treeState(t, root)
			ops := "open f O_WRONLY , open f O_RDONLY|O_TRUNC , open new O_WRONLY|O_CREAT 0644 , mkdir nd 0755 , unlink f , rmdir d , " +
				"rename f f2 , link f h , symlink f s , chmod f 0600 , chown f $UID $GID , truncate f 0 , mknod fifo fifo 0644 , " +
				"utimes f , setxattr f user.k v 0 , removexattr f user.k , readfile f , stat ro"
			ops = strings.NewReplacer("$UID", strconv.Itoa(v.uid()), "$GID", strconv.Itoa(v.gid())).Replace(ops)
			args := []string{"--read-only", mode, root, "-w", "/ov", "--", "/bin/sc"}
			args = append(args, scArgs(ops)...)
			if mode == "-S" {
				args = append(args, ",", "open", "/tmp/t", "O_WRONLY|O_CREAT", "0644")
			}
			opts := runOpts{Args: args, Unpriv: v.unpriv}
			out, errOut, code := runKbox(t, opts)
			got := lines(out)
			want := []string{"open: err EROFS", "open: err EROFS", "open: err EROFS", "mkdir: err EROFS", "unlink: err EROFS",
				"rmdir: err EROFS", "rename: err EROFS", "link: err EROFS", "symlink: err EROFS", "chmod: err EROFS",
				"chown: err EROFS", "truncate: err EROFS", "mknod: err EROFS", "utimes: err EROFS", "setxattr: err EROFS",
				"removexattr: err EROFS", "readfile: ok lower-f", "stat: ok type=reg mode=0444 size=3"}
			if mode == "-S" {
				want = append(want, "open: ok *")
			}
			if d := compareLines(want, got); code != 0 || d != "" {
				t.Errorf("%s: exit %d\n%s\nstderr:\n%s", cmdline(opts), code, d, errOut)
			}
			checkUnchanged(t, root, before)
		})
	}
}

// overlayScript exercises the overlay through a shell: copy-up on
// append, whiteouts, rm -rf, a directory removed and made again
// (opaque), rename of a file, of an upper directory and of a lower
// directory (EXDEV, sc), hard links of a lower file, chmod through a
// link, a lower file made writable by its copy.
const overlayScript = `cd /ov
echo more >> f; cat f
rm x; ls
rm -rf d/sub; ls d
rm -rf d; mkdir d; ls -A d; echo new > d/n; ls d
mv f f2; test -e l || echo dangling
ln f2 h; stat -c %h f2
chmod 600 f2; stat -c %a h
mkdir -p nd/deeper; mv nd nd2; ls nd2
/bin/sc rename ld ld2
chmod 644 ro; echo w >> ro; cat ro
ls
`

// TestOverlayShell runs overlayScript under --overlay=DIR over -r and -S
// roots, then a second run over the same upper directory, then kbox diff;
// the lower root stays unchanged byte for byte.
func TestOverlayShell(t *testing.T) {
	t.Parallel()
	for _, mode := range rootModes() {
		forEachVariant(t, mode+"/", func(t *testing.T, v variant) {
			root := overlayLower(t, v)
			before := treeState(t, root)
			upper := filepath.Join(ownedDir(t, v, "kbox-it-upper-"), "upper")
			opts := runOpts{Args: []string{mode, root, "--overlay=" + upper, "--", "/bin/sh", "-c", overlayScript}, Unpriv: v.unpriv}
			out, errOut, code := runKbox(t, opts)
			want := []string{"lower-f", "more", "d", "f", "l", "ld", "ro", "a", "n", "dangling", "2", "600", "deeper",
				"rename: err EXDEV", "ro", "w", "d", "f2", "h", "l", "ld", "nd2", "ro"}
			if d := compareLines(want, lines(out)); code != 0 || d != "" {
				t.Errorf("%s: exit %d\n%s\nstderr:\n%s", cmdline(opts), code, d, errOut)
			}
			checkUnchanged(t, root, before)

			// The upper directory carries the changes to the next run.
			opts = runOpts{Args: []string{mode, root, "--overlay=" + upper, "--", "/bin/sh", "-c",
				"cd /ov; ls; cat f2; ls -A d; stat -c %a f2; ls /ov/d/sub 2>&1 | wc -l"}, Unpriv: v.unpriv}
			out, errOut, code = runKbox(t, opts)
			want = []string{"d", "f2", "h", "l", "ld", "nd2", "ro", "lower-f", "more", "n", "600", "1"}
			if d := compareLines(want, lines(out)); code != 0 || d != "" {
				t.Errorf("%s: exit %d\n%s\nstderr:\n%s", cmdline(opts), code, d, errOut)
			}
			checkUnchanged(t, root, before)

			opts = runOpts{Args: []string{"diff", upper}, Unpriv: v.unpriv}
			out, errOut, code = runKbox(t, opts)
			want = []string{"C /ov", "C /ov/d", "A /ov/d/n", "D /ov/f", "A /ov/f2", "A /ov/h", "A /ov/nd2", "A /ov/nd2/deeper",
				"C /ov/ro", "D /ov/x"}
			var got []string
			for _, l := range lines(out) {
				if strings.HasPrefix(l, "C /ov") || strings.HasPrefix(l, "A /ov") || strings.HasPrefix(l, "D /ov") {
					got = append(got, l)
				} else if l != "C /tmp" && l != "A /tmp" {
					t.Errorf("kbox diff: unexpected %q", l)
				}
			}
			if d := compareLines(want, got); code != 0 || d != "" {
				t.Errorf("%s: exit %d\n%s\nstdout:\n%s\nstderr:\n%s", cmdline(opts), code, d, out, errOut)
			}
		})
	}
}

// TestOverlayTemporary: --overlay without a directory writes to a
// temporary upper directory that is gone when kbox ends, over the host's
// / (the default root) too.
func TestOverlayTemporary(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := overlayLower(t, v)
		before := treeState(t, root)
		tmp := ownedDir(t, v, "kbox-it-tmpdir-")
		opts := runOpts{Args: []string{"-S", root, "--overlay", "--", "/bin/sh", "-c", "echo t > /ov/f; cat /ov/f; rm -r /ov/d; ls /ov"},
			Unpriv: v.unpriv, Env: []string{"TMPDIR=" + tmp}}
		out, errOut, code := runKbox(t, opts)
		if d := compareLines([]string{"t", "f", "l", "ld", "ro", "x"}, lines(out)); code != 0 || d != "" {
			t.Errorf("%s: exit %d\n%s\nstderr:\n%s", cmdline(opts), code, d, errOut)
		}
		checkUnchanged(t, root, before)
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Errorf("left in TMPDIR after the run: %v", ents)
		}
		// The host's / as the lower layer: a file of the test's own,
		// changed and removed in the guest, stays as it was.
		host := ownedDir(t, v, "kbox-it-hostlower-")
		writeFile(t, filepath.Join(host, "keep"), "host\n", 0o644)
		chownTree(t, host, v.uid())
		hbefore := treeState(t, host)
		opts = runOpts{Args: []string{"--overlay", "-w", host, "--", "/bin/sh", "-c", "echo guest > keep; cat keep; rm keep; ls -A; touch new; ls"},
			Unpriv: v.unpriv, Env: []string{"TMPDIR=" + tmp}}
		out, errOut, code = runKbox(t, opts)
		if d := compareLines([]string{"guest", "new"}, lines(out)); code != 0 || d != "" {
			t.Errorf("%s: exit %d\n%s\nstderr:\n%s", cmdline(opts), code, d, errOut)
		}
		checkUnchanged(t, host, hbefore)
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Errorf("left in TMPDIR after the run: %v", ents)
		}
	})
}

// TestOverlayEscape runs the escape suite with the root as an overlay's
// lower layer: every attempt blocked, the lower root unchanged.
func TestOverlayEscape(t *testing.T) {
	t.Parallel()
	for _, mode := range rootModes() {
		forEachVariant(t, mode+"/", func(t *testing.T, v variant) {
			root := freshRoot(t, v.uid())
			before := treeState(t, root)
			host, secret := hostSecretDir(t, v.uid())
			hbefore := treeState(t, host)
			upper := filepath.Join(ownedDir(t, v, "kbox-it-upper-"), "upper")
			opts := runOpts{Unpriv: v.unpriv, Tout: 120 * time.Second,
				Args: []string{"--syscall-mode=seccomp", "--setenv", "KBOX_SYSCALL_MODE=seccomp", mode, root, "--overlay=" + upper,
					"--", "/bin/escape", host, secret}}
			out, errOut, code := runKbox(t, opts)
			var escaped []string
			for _, l := range lines(out) {
				if strings.Contains(l, "ESCAPED") {
					escaped = append(escaped, l)
				}
			}
			if code != 0 || len(escaped) > 0 || !strings.Contains(out, "summary: 0 escaped") {
				t.Errorf("%s\nexit status %d (want 0), escapes:\n%s\n\nfull stdout:\n%s\nstderr:\n%s",
					cmdline(opts), code, strings.Join(escaped, "\n"), out, errOut)
			}
			checkUnchanged(t, root, before)
			checkUnchanged(t, host, hbefore)
		})
	}
}

// TestOverlayConcurrent: guest processes copying up, appending to and
// removing files of the lower layer at once.
func TestOverlayConcurrent(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := overlayLower(t, v)
		for i := 0; i < 8; i++ {
			writeFile(t, filepath.Join(root, "ov", "many", "m"+strconv.Itoa(i)), "m\n", 0o644)
		}
		chownTree(t, root, v.uid())
		before := treeState(t, root)
		upper := filepath.Join(ownedDir(t, v, "kbox-it-upper-"), "upper")
		script := `cd /ov
for p in 1 2 3 4 5 6 7 8; do
  (for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo $p$i >> f; done
   mkdir -p w/$p/deep && echo $p > w/$p/deep/file && rm many/m$((p-1)) && chmod 600 d/a && cat d/sub/b > /dev/null) &
done
wait
wc -l < f; ls many | wc -l; ls w | wc -l; cat w/*/deep/file | sort | tr '\n' ' '; echo; stat -c %a d/a`
		opts := runOpts{Args: []string{"-S", root, "--overlay=" + upper, "--", "/bin/sh", "-c", script}, Unpriv: v.unpriv}
		out, errOut, code := runKbox(t, opts)
		want := []string{"161", "0", "8", "1 2 3 4 5 6 7 8 ", "600"}
		if d := compareLines(want, lines(out)); code != 0 || d != "" {
			t.Errorf("%s: exit %d\n%s\nstderr:\n%s", cmdline(opts), code, d, errOut)
		}
		checkUnchanged(t, root, before)
	})
}

// TestOverlaySigkill: kbox killed with SIGKILL while its guest writes
// through the overlay leaves the lower root untouched, and the next run
// removes the temporary upper directory the killed one left.
func TestOverlaySigkill(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := overlayLower(t, v)
		before := treeState(t, root)
		tmp := ownedDir(t, v, "kbox-it-tmpdir-")
		argv := []string{kboxBin, "-S", root, "--overlay", "--", "/bin/sh", "-c",
			`cd /ov; echo started; i=0; while :; do i=$((i+1)); echo $i >> f; echo $i > n$((i % 50)); rm -f x; mkdir -p w/$i; rm -rf d; chmod 600 ro; done`}
		if v.unpriv && isRoot() {
			argv = asUnprivileged(argv)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = "/"
		cmd.Env = append(baseEnv(), "TMPDIR="+tmp)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		started := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			started <- sc.Scan() && sc.Text() == "started"
			io.Copy(io.Discard, stdout) //nolint:errcheck
		}()
		select {
		case ok := <-started:
			if !ok {
				t.Fatal("the guest did not start")
			}
		case <-time.After(60 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Fatal("the guest did not start in time")
		}
		time.Sleep(1500 * time.Millisecond)
		// kbox itself (setpriv execs it: the same pid), not its process
		// group: its guest must go with it.
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait() //nolint:errcheck
		deadline := time.Now().Add(10 * time.Second)
		for uidProcessesOf(tmp) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		checkUnchanged(t, root, before)
		ents, _ := os.ReadDir(tmp)
		left := false
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "kbox-run-overlay-") {
				left = true
			}
		}
		if !left {
			t.Logf("no temporary upper directory left after SIGKILL: %v", ents)
		}
		// The next run cleans it up.
		opts := runOpts{Args: []string{"-S", root, "--", "/bin/true"}, Unpriv: v.unpriv, Env: []string{"TMPDIR=" + tmp}}
		if _, errOut, code := runKbox(t, opts); code != 0 {
			t.Errorf("%s: exit %d\n%s", cmdline(opts), code, errOut)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Errorf("left in TMPDIR after the next run: %v", ents)
		}
		checkUnchanged(t, root, before)
	})
}

// uidProcessesOf reports whether a process still has its working
// directory or a file below dir (the killed guest going away).
func uidProcessesOf(dir string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		fds, _ := os.ReadDir("/proc/" + e.Name() + "/fd")
		for _, fd := range fds {
			if l, err := os.Readlink("/proc/" + e.Name() + "/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, dir+"/") {
				return true
			}
		}
	}
	return false
}

// overlayView maps a host path below lower to where an overlay with
// upper keeps what the guest sees there: the upper layer's entry, the
// lower layer's, or (whited out, below an opaque directory) a path that
// does not exist. The path table's host checks look there.
func overlayView(lower, upper string) func(string) string {
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	return func(p string) string {
		rel, err := filepath.Rel(lower, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return p
		}
		if rel == "." {
			return upper
		}
		comps := strings.Split(rel, "/")
		up, lo, lowerVisible := upper, lower, true
		for i, c := range comps {
			rest := strings.Join(comps[i+1:], "/")
			upc, loc := filepath.Join(up, c), filepath.Join(lo, c)
			if fi, err := os.Lstat(upc); err == nil {
				if !fi.IsDir() || i == len(comps)-1 {
					return filepath.Join(upc, rest)
				}
				if exists(filepath.Join(up, ".wh."+c)) || exists(filepath.Join(upc, ".wh..wh..opq")) {
					lowerVisible = false
				}
				up, lo = upc, loc
				continue
			}
			if !lowerVisible || exists(filepath.Join(up, ".wh."+c)) {
				return filepath.Join(upper, ".wh.absent", rel)
			}
			return filepath.Join(loc, rest)
		}
		return p
	}
}

// rootStateOutside is treeState of root without the path table's case
// directories (/w), which each case checks itself.
func rootStateOutside(t testing.TB, root string) string {
	t.Helper()
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		if e.Name() != "w" {
			b.WriteString(treeState(t, filepath.Join(root, e.Name())))
		}
	}
	return b.String()
}

// overlayPathCases is the path table as it runs over an overlay: the
// same but where overlayfs (without redirect_dir) differs by design, a
// directory of the lower layer cannot be renamed (EXDEV).
func overlayPathCases() []scCase {
	cases := pathCases()
	for i := range cases {
		if cases[i].name != "rename" {
			continue
		}
		// rename e d, rename d e: lower directories.
		w := cases[i].want
		w[11], w[12], w[13], w[14] = "rename: err EXDEV", "rename: err EXDEV", "stat: err ENOENT", "lstat: ok type=dir"
		cases[i].check = func(t *testing.T, e *caseEnv, _ []string) {
			hostContent(t, e, "exe", "hello\n")
			hostContent(t, e, "h", "#!/bin/sh\nexit 0\n")
			hostContent(t, e, "e/ro2", "ro\n")
			hostAbsent(t, e, "e/x")
			hostLink(t, e, "lf2", "f")
		}
	}
	return cases
}

// TestOverlayPaths runs the path table with the root as the lower layer
// of an overlay (one upper directory per case): the guest sees what it
// sees without one (overlayPathCases), the host checks look at the layer
// that holds the result, and the lower root stays unchanged byte for
// byte.
func TestOverlayPaths(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		var once sync.Once
		t.Run("cases", func(t *testing.T) {
			tc := t
			runTable(t, overlayPathCases(), v.uid(), v.gid(), isRoot() && !v.unpriv, func(t *testing.T, c *scCase, e *caseEnv) (string, string, string, int) {
				once.Do(func() {
					root, outside := e.root, rootStateOutside(t, e.root)
					// After every case, before runTable's cleanup removes
					// the root (cleanups run last registered first).
					tc.Cleanup(func() {
						if got := rootStateOutside(tc, root); got != outside {
							tc.Errorf("the lower root %s changed outside /w", root)
						}
					})
				})
				before := treeState(t, e.host)
				upper := filepath.Join(ownedDir(t, v, "kbox-it-upper-"), "upper")
				args := append([]string{"-r", e.root, "--overlay=" + upper, "-w", e.guest}, c.flags...)
				args = append(append(args, "--"), guestArgv(c, e, "/bin/sc")...)
				opts := runOpts{Args: args, Unpriv: v.unpriv}
				out, errOut, code := runKbox(t, opts)
				checkUnchanged(t, e.host, before)
				e.view = overlayView(e.root, upper)
				return cmdline(opts), out, errOut, code
			})
		})
	})
}

// TestOverlayLowerOwner: a change the host kernel would refuse on a
// lower file (chmod of a file another user owns, truncate of one the
// user may not write) is refused before any copy-up, over the host's /
// with no virtual identity; as root (whose copy keeps the owner) it
// succeeds, on the copy. The host file is unchanged either way.
func TestOverlayLowerOwner(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/etc/hostname"); err != nil {
		t.Skip("no /etc/hostname on the host")
	}
	forEachVariant(t, "", func(t *testing.T, v variant) {
		before := treeState(t, "/etc/hostname")
		upper := filepath.Join(ownedDir(t, v, "kbox-it-upper-"), "upper")
		opts := runOpts{Args: []string{"--overlay=" + upper, "--", "/bin/sh", "-c",
			"chmod 600 /etc/hostname 2>/dev/null; echo $?; truncate -s 0 /etc/hostname 2>/dev/null; echo $?; touch -d @1 /etc/hostname 2>/dev/null; echo $?; " +
				"touch /etc/kbox-it-new 2>/dev/null; echo $?; mv /etc/hostname /etc/h2 2>/dev/null; echo $?; rm -f /etc/h2 2>/dev/null; echo $?"},
			Unpriv: v.unpriv}
		out, errOut, code := runKbox(t, opts)
		want := []string{"1", "1", "1", "1", "1", "0"} // rm -f of the h2 mv did not make
		if !v.unpriv {
			want = []string{"0", "0", "0", "0", "0", "0"}
		}
		if d := compareLines(want, lines(out)); code != 0 || d != "" {
			t.Errorf("%s: exit %d\n%s\nstderr:\n%s", cmdline(opts), code, d, errOut)
		}
		_, err := os.Lstat(filepath.Join(upper, "etc"))
		if v.unpriv && err == nil {
			t.Errorf("a refused change copied /etc up")
		}
		if _, err := os.Lstat(filepath.Join(upper, "etc", ".wh.hostname")); !v.unpriv && err != nil {
			t.Errorf("/etc/hostname renamed away: no whiteout in the upper layer: %v", err)
		}
		checkUnchanged(t, "/etc/hostname", before)
	})
}
