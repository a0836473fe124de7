package integration

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Process-level behaviour of the guest: shell job control and redirections,
// exit statuses, the guest's lifetime, multi-threaded programs that fork
// and exec, signal confinement and signal forwarding.

// forEachProcVariant runs f as parallel subtests for every root mode and
// privilege variant, each with a private writable copy of the fixture root
// owned by the variant's uid.
func forEachProcVariant(t *testing.T, f func(t *testing.T, mode string, v variant, root string)) {
	t.Helper()
	for _, mode := range rootModes() { // -r: nothing mounted besides the root; -S: host /proc, /sys, /dev, private /tmp, virtual root
		forEachVariant(t, mode+"/", func(t *testing.T, v variant) {
			root := freshRoot(t, v.uid())
			if mode == "-r" {
				procDevNull(t, root)
			}
			f(t, mode, v, root)
		})
	}
}

// procDevNull gives a test root a /dev/null. Under -r nothing is mounted
// besides the root and the fixture's /dev is empty, but busybox sh opens
// /dev/null as the standard input of background jobs (as POSIX requires of
// a shell without job control) and Go's os/exec opens it for a child's
// unset stdin and stderr. Natively, a chroot with an empty /dev fails the
// same way.
func procDevNull(t *testing.T, root string) {
	t.Helper()
	p := filepath.Join(root, "dev", "null")
	// A guest run with -r on the shared fixture root may have left a
	// regular file there (a shell redirection to /dev/null creates one).
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if isRoot() {
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatalf("mknod %s: %v", p, err)
		}
		if err := os.Chmod(p, 0o666); err != nil {
			t.Fatal(err)
		}
		return
	}
	// Without root, an empty regular file reads as end of file too.
	writeFile(t, p, "", 0o666)
}

// procShellCase is a shell script, its expected standard output and exit
// status.
type procShellCase struct {
	name   string
	script string
	want   string
	code   int
}

func procShellCases() []procShellCase {
	return []procShellCase{
		{
			name:   "subshell_cd",
			script: "(cd /tmp; pwd); pwd\n(cd /etc && (cd /bin; pwd) && pwd); pwd\n",
			want:   "/tmp\n/\n/bin\n/etc\n/\n",
		},
		{
			name:   "command_substitution",
			script: "echo $(echo a)$(pwd)\ncd /etc; echo \"$(echo \"$(pwd)-$(cat hostname)\")\"; echo `echo back`tick\n",
			want:   "a/\n/etc-kbox-guest\nbacktick\n",
		},
		{
			name: "background_wait",
			script: "sleep 0.2 & p=$!; wait $p; echo $?\n" +
				"(exit 3) & q=$!; wait $q; echo $?\n" +
				"sleep 0.1 & sleep 0.1 & wait; echo all $?\n",
			want: "0\n3\nall 0\n",
		},
		{
			name: "pipeline_5_stages",
			script: "seq 1 1000 | grep 7 | sort -r | head -3 | wc -l\n" +
				"seq 1 1000 | grep 7 | sort -r | head -3 | tr '\\n' ' '; echo\n" +
				"seq 1 1000 | grep 7 | wc -l\n" +
				"false | true; echo $?; true | false; echo $?\n",
			want: "3\n997 987 979 \n271\n0\n1\n",
		},
		{
			name: "here_documents",
			script: "x=world\ncat <<EOF\nhello $x $((2+3)) $(echo sub)\nEOF\n" +
				"cat <<'EOF'\nhello $x $((2+3)) `echo sub`\nEOF\n" +
				"cat <<-EOF | tr a-z A-Z\n\tindented $x\n\tEOF\n" +
				"read -r l1 <<EOF\nfirst line\nEOF\necho \"[$l1]\"\n",
			want: "hello world 5 sub\nhello $x $((2+3)) `echo sub`\nINDENTED WORLD\n[first line]\n",
		},
		{
			name: "fd_redirection_read",
			script: "exec 3</etc/hostname; read x <&3; echo $x; exec 3<&-\n" +
				"if (read y 2>/dev/null <&3); then echo still-open; else echo closed; fi\n" +
				"exec 5<&0 </etc/hostname; read z; exec 0<&5 5<&-; echo \"z=$z\"\n",
			want: "kbox-guest\nclosed\nz=kbox-guest\n",
		},
		{
			name: "fd_redirection_write",
			script: "exec 4>/tmp/o; echo hi >&4; cat /tmp/o\n" +
				"echo more >&4; exec 4>&-; cat /tmp/o\n" +
				"{ echo out; echo err >&2; } >/tmp/both 2>&1; sort /tmp/both\n" +
				"echo appended >>/tmp/o; wc -l </tmp/o\n" +
				"echo to-stderr 1>&2 2>/dev/null\n",
			want: "hi\nhi\nmore\nerr\nout\n3\n",
		},
		{
			name:   "trap_usr1",
			script: "trap 'echo caught' USR1\nkill -USR1 $$\necho after\ntrap - USR1\n(kill -USR1 $$); echo unreached\n",
			// Without a trap, USR1's default action ends the shell.
			want: "caught\nafter\n",
			code: 128 + int(syscall.SIGUSR1),
		},
		{
			name:   "trap_exit",
			script: "trap 'echo bye' EXIT\necho main\n(trap 'echo sub-bye' EXIT; exit 3); echo sub=$?\nexit 4\n",
			want:   "main\nsub-bye\nsub=3\nbye\n",
			code:   4,
		},
		{
			name: "functions",
			script: "f() { local v=$1; echo \"f:$v:$#\"; return 4; }\n" +
				"f a b; echo $?\n" +
				"g() { f \"$@\" | tr a-z A-Z; }\ng x\n" +
				"fact() { if [ $1 -le 1 ]; then echo 1; else echo $(( $1 * $(fact $(( $1 - 1 ))) )); fi; }\nfact 6\n",
			want: "f:a:2\n4\nF:X:1\n720\n",
		},
		{
			name: "set_e",
			script: "set -e\nif false; then echo no; fi\nfalse || echo recovered\n! false\n" +
				"out=$(echo inner); echo \"$out\"\nsh -c 'exit 9'\necho not-reached\n",
			want: "recovered\ninner\n",
			code: 9,
		},
		{
			name:   "set_e_subshell",
			script: "set -e\n(false; echo not-reached-sub)\necho not-reached\n",
			want:   "",
			code:   1,
		},
	}
}

// TestProcessShell runs busybox shell scripts both with sh -c and as a
// script file (/bin/sh FILE), under -r and -S, privileged and not.
func TestProcessShell(t *testing.T) {
	t.Parallel()
	forEachProcVariant(t, func(t *testing.T, mode string, v variant, root string) {
		cases := procShellCases()
		for _, c := range cases {
			writeFile(t, filepath.Join(root, "scripts", c.name+".sh"), c.script, 0o644)
		}
		chownTree(t, filepath.Join(root, "scripts"), v.uid())
		for _, c := range cases {
			for _, how := range []string{"c", "file"} {
				t.Run(c.name+"/"+how, func(t *testing.T) {
					args := []string{mode, root, "--", "/bin/sh", "-c", c.script}
					if how == "file" {
						args = []string{mode, root, "--", "/bin/sh", "/scripts/" + c.name + ".sh"}
					}
					opts := runOpts{Unpriv: v.unpriv, Args: args}
					out, errOut, code := runKbox(t, opts)
					if code != c.code || out != c.want {
						t.Errorf("%s\nexit status %d (want %d)\nstdout:\n%s\nwant stdout:\n%s\nstderr:\n%s", cmdline(opts), code, c.code, out, c.want, errOut)
					}
				})
			}
		}
	})
}

// TestProcessShellNativeOracle runs the same scripts natively in a chroot
// of the fixture root, to check the expectations themselves.
func TestProcessShellNativeOracle(t *testing.T) {
	t.Parallel()
	chroot := requireChroot(t)
	root := freshRoot(t, 0)
	procDevNull(t, root)
	for _, c := range procShellCases() {
		t.Run(c.name, func(t *testing.T) {
			opts := runOpts{Bin: chroot, Args: []string{root, "/bin/sh", "-c", c.script}}
			out, errOut, code := runKbox(t, opts)
			if code != c.code || out != c.want {
				t.Errorf("%s\nexit status %d (want %d)\nstdout:\n%s\nwant stdout:\n%s\nstderr:\n%s", cmdline(opts), code, c.code, out, c.want, errOut)
			}
		})
	}
}

func requireChroot(t *testing.T) string {
	t.Helper()
	if !isRoot() {
		t.Skip("the native oracle needs root (chroot)")
	}
	chroot, err := exec.LookPath("chroot")
	if err != nil {
		t.Skip("chroot(8) not found")
	}
	return chroot
}

// TestProcessExitStatus checks that kbox exits with the guest's status,
// 128+N when the first process is killed by signal N.
func TestProcessExitStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		script string
		code   int
	}{
		{"exit 7", 7},
		{"kill -9 $$", 128 + int(syscall.SIGKILL)},
		{"kill -TERM $$", 128 + int(syscall.SIGTERM)},
		{"kill -SEGV $$", 128 + int(syscall.SIGSEGV)},
		{"kill -ABRT $$", 128 + int(syscall.SIGABRT)},
		{"sh -c 'kill -SEGV $$'", 128 + int(syscall.SIGSEGV)}, // a child's signal status seen by the first process's shell
	}
	forEachProcVariant(t, func(t *testing.T, mode string, v variant, root string) {
		for _, c := range cases {
			opts := runOpts{Unpriv: v.unpriv, Args: []string{mode, root, "--", "/bin/sh", "-c", c.script}}
			out, errOut, code := runKbox(t, opts)
			if code != c.code {
				t.Errorf("%s\nexit status %d, want %d\nstdout:\n%s\nstderr:\n%s", cmdline(opts), code, c.code, out, errOut)
			}
		}
	})
}

var procMarkerSeq atomic.Int64

// procMarker returns a unique "sleep 30.NNNN" argument, so that a guest
// sleep can be found on the host with pgrep -f.
func procMarker() string {
	return fmt.Sprintf("30.%d%04d", os.Getpid()%100000, procMarkerSeq.Add(1))
}

// hostPgrep returns the pids of host processes whose command line matches
// pattern (pgrep -f), excluding pgrep itself.
func hostPgrep(t *testing.T, pattern string) []int {
	t.Helper()
	out, err := exec.Command("pgrep", "-f", pattern).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
			return nil
		}
		t.Fatalf("pgrep -f %q: %v", pattern, err)
	}
	var pids []int
	for _, l := range lines(string(out)) {
		if p, err := strconv.Atoi(strings.TrimSpace(l)); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// TestProcessBackgroundKilled checks the guest's lifetime: when the first
// process exits, processes it left running (a background job, an orphan
// re-parented to kbox, a process in a new session) are killed, and kbox
// returns at once.
func TestProcessBackgroundKilled(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("pgrep"); err != nil {
		t.Skip("pgrep(1) not found (procps)")
	}
	scripts := []string{
		"sleep %s & echo started",
		"(sleep %s &); echo started",
		"(sleep %s </dev/null >/dev/null 2>&1 &); echo started",
		"setsid sleep %s & echo started",
	}
	forEachProcVariant(t, func(t *testing.T, mode string, v variant, root string) {
		for _, s := range scripts {
			marker := procMarker()
			script := fmt.Sprintf(s, marker)
			pattern := `^sleep ` + regexp.QuoteMeta(marker) + `$`
			opts := runOpts{Unpriv: v.unpriv, Args: []string{mode, root, "--", "/bin/sh", "-c", script}, Tout: 20 * time.Second * time.Duration(timeoutScale)}
			start := time.Now()
			out, errOut, code := runKbox(t, opts)
			took := time.Since(start)
			if code != 0 || out != "started\n" {
				t.Errorf("%s\nexit status %d, stdout %q (want 0, %q)\nstderr:\n%s", cmdline(opts), code, out, "started\n", errOut)
			}
			if took > 5*time.Second {
				t.Errorf("%s took %v: kbox should return as soon as its first process exits", cmdline(opts), took.Round(time.Millisecond))
			}
			// SIGKILL is asynchronous: allow the kernel a moment. Then look
			// again a little later, in case a forked shell that escaped was
			// only about to exec sleep at the first look.
			var left []int
			for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
				if left = hostPgrep(t, pattern); len(left) == 0 || time.Now().After(deadline) {
					break
				}
			}
			if len(left) == 0 {
				time.Sleep(300 * time.Millisecond)
				left = hostPgrep(t, pattern)
			}
			if len(left) > 0 {
				t.Errorf("%s: guest process \"sleep %s\" still running after kbox exited (pids %v)", cmdline(opts), marker, left)
				for _, p := range left {
					syscall.Kill(p, syscall.SIGKILL) //nolint:errcheck
				}
			}
		}
	})
}

// threadforkWant is the output of tests/guest/threadfork.c (worker
// iteration counts normalised to N).
const threadforkWant = `hello from musl
argv[0]=hello
argv[1]=x
cwd=/
exec-literal: status=0
hello from glibc
argv[0]=hello-glibc
argv[1]=x
cwd=/
exec-literal-glibc: status=0
hello from musl
argv[0]=hello-stack
argv[1]=y
cwd=/
exec-stack: status=0
thread-fork: status=3
worker 0: ok iterations=N
worker 1: ok iterations=N
worker 2: ok iterations=N
worker 3: ok iterations=N
threadfork: ok
`

// threadforkSpawnWant is the output of "threadfork spawn PROG" for
// /bin/hello (libc "musl") or /bin/hello-glibc ("glibc").
func threadforkSpawnWant(prog, libc string) string {
	var b strings.Builder
	for i := 0; i < 3; i++ {
		fmt.Fprintf(&b, "hello from %s\nargv[0]=hello-spawn\ncwd=/\nspawn %d: err=0 path=%s\n", libc, i, prog)
	}
	b.WriteString("sys-0\nsystem 0: status=0\nsys-1\nsystem 1: status=0\n")
	fmt.Fprintf(&b, "hello from %s\nargv[0]=hello-tail\nargv[1]=%s\ncwd=/\nexec-tail: status=0\n", libc, prog[len(prog)-4:])
	b.WriteString("threadfork: ok\n")
	return b.String()
}

// threadforkCases are the threadfork runs: the threaded one, and "spawn"
// for a static and a dynamic program (a dynamic one always runs from a
// rewritten exec path).
func threadforkCases() []struct {
	name string
	args []string
	want string
} {
	return []struct {
		name string
		args []string
		want string
	}{
		{"threads", []string{"/bin/threadfork"}, threadforkWant},
		{"spawn", []string{"/bin/threadfork", "spawn", "/bin/hello"}, threadforkSpawnWant("/bin/hello", "musl")},
		{"spawn-glibc", []string{"/bin/threadfork", "spawn", "/bin/hello-glibc"}, threadforkSpawnWant("/bin/hello-glibc", "glibc")},
	}
}

var iterationsRE = regexp.MustCompile(`iterations=\d+`)

func normThreadfork(s string) string { return iterationsRE.ReplaceAllString(s, "iterations=N") }

// diffLines renders want and got side by side for a failure message.
func diffLines(want, got string) string {
	w, g := lines(want), lines(got)
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		wl, gl := "<missing>", "<missing>"
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		mark := "  "
		if wl != gl {
			mark = "✗ "
		}
		fmt.Fprintf(&b, "%s%-32s | %s\n", mark, wl, gl)
	}
	return "  want                             | got\n" + b.String()
}

// TestProcessThreadFork runs tests/guest/threadfork.c: a multi-threaded
// program doing file I/O in four threads while its main thread forks
// children that exec /bin/hello, and another thread forks. Its fork()
// children are single-threaded with their own memory, so their exec is
// allowed (the refusal of docs/architecture.md "Exec" step 4 is for
// multi-threaded callers and vfork children of threaded programs only).
//
// The "spawn" subtests run "threadfork spawn PROG": posix_spawn (a
// CLONE_VM|CLONE_VFORK child sharing the parent's memory, from a
// single-threaded parent) three times with the same path array, system()
// twice, and an exec whose argv[1] points into the path string: kbox's
// exec path rewrite must change neither the parent's memory nor any
// argument.
func TestProcessThreadFork(t *testing.T) {
	t.Parallel()
	forEachProcVariant(t, func(t *testing.T, mode string, v variant, root string) {
		for _, c := range threadforkCases() {
			t.Run(c.name, func(t *testing.T) {
				opts := runOpts{Unpriv: v.unpriv, Args: append([]string{"-v", mode, root, "--"}, c.args...)}
				out, errOut, code := runKbox(t, opts)
				if got := normThreadfork(out); code != 0 || got != c.want {
					t.Errorf("%s\nexit status %d (want 0)\n%sstderr:\n%s", cmdline(opts), code, diffLines(c.want, got), errOut)
				}
				if mode == "-r" && c.name == "threads" {
					// Every worker unlinks its file after each round.
					if left, _ := filepath.Glob(filepath.Join(root, "tmp", "tf-*")); len(left) > 0 {
						t.Errorf("%s: files left in the guest's /tmp: %v", cmdline(opts), left)
						for _, f := range left {
							os.Remove(f) //nolint:errcheck
						}
					}
				}
			})
		}
	})
}

// TestProcessThreadForkNativeOracle runs threadfork natively in a chroot.
func TestProcessThreadForkNativeOracle(t *testing.T) {
	t.Parallel()
	chroot := requireChroot(t)
	root := freshRoot(t, 0)
	procDevNull(t, root)
	for _, c := range threadforkCases() {
		opts := runOpts{Bin: chroot, Args: append([]string{root}, c.args...)}
		out, errOut, code := runKbox(t, opts)
		if got := normThreadfork(out); code != 0 || got != c.want {
			t.Errorf("%s\nexit status %d (want 0)\n%sstderr:\n%s", cmdline(opts), code, diffLines(c.want, got), errOut)
		}
	}
}

const gochildWant = "io: ok\nhello from musl\nargv[0]=/bin/hello\nargv[1]=from-go\ncwd=/\ndone\n"

// TestProcessGoChild runs tests/guest/gochild, a static Go program: file
// I/O from 8 goroutines, then os/exec, which starts its child with
// clone(CLONE_VM|CLONE_VFORK) from a multi-threaded process. That must
// work (a Go program running commands is ordinary).
func TestProcessGoChild(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(filepath.Join(fixtureRoot(t), "bin", "gochild")); err != nil {
		t.Skip("bin/gochild is not in the fixture root (mkroot.sh found no Go toolchain)")
	}
	forEachProcVariant(t, func(t *testing.T, mode string, v variant, root string) {
		opts := runOpts{Unpriv: v.unpriv, Args: []string{"-v", mode, root, "--", "/bin/gochild"}}
		out, errOut, code := runKbox(t, opts)
		if code != 0 || out != gochildWant {
			t.Errorf("%s\nexit status %d (want 0)\n%sstderr:\n%s", cmdline(opts), code, diffLines(gochildWant, out), errOut)
		}
	})
}

// startHostSleep starts "sleep 60" on the host as uid, in a process group
// of its own, and returns it; it is killed at the end of the test.
func startHostSleep(t *testing.T, uid int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if uid != os.Getuid() {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a host sleep: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck
		cmd.Wait()         //nolint:errcheck
	})
	return cmd
}

// hostAlive reports whether a child of the test is still running (not
// exited, not a zombie), without reaping it.
func hostAlive(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	if err != nil {
		return false
	}
	// With WNOHANG and no child in a waitable state, the kernel reports
	// si_signo 0.
	return info.Signo == 0
}

// TestProcessSignalConfinement checks that a guest can signal only guest
// processes: kill, kill -0, kill of a process group and kill(-1) aimed at
// host processes (a host sleep running as the same uid as kbox, kbox
// itself, the test's own process group) fail with ESRCH and reach nobody,
// while signalling the guest's own jobs works.
func TestProcessSignalConfinement(t *testing.T) {
	t.Parallel()
	forEachProcVariant(t, func(t *testing.T, mode string, v variant, root string) {
		host := startHostSleep(t, v.uid())
		hp := host.Process.Pid
		// The guest's first process is kbox's child: $PPID is kbox.
		script := fmt.Sprintf(`
kill -0 %[1]d; echo "kill-0 host $?"
kill -TERM %[1]d; echo "kill host $?"
kill -TERM -%[1]d; echo "kill host group $?"
kill -0 $PPID; echo "kill-0 kbox $?"
kill -TERM $PPID; echo "kill kbox $?"
kill -TERM -%[2]d; echo "kill test group $?"
sleep 5 & g=$!
sleep 0.3
kill -TERM -1; echo "kill -1 $?"
wait $g; echo "guest job after kill -1 $?"
sleep 10 & kill $!; wait $!; echo "bg kill $?"
sleep 10 & kill -TERM -$$ 2>/dev/null; echo unreached
`, hp, syscall.Getpgrp())
		opts := runOpts{Unpriv: v.unpriv, Args: []string{mode, root, "--", "/bin/sh", "-c", script}}
		out, errOut, code := runKbox(t, opts)
		want := "kill-0 host 1\nkill host 1\nkill host group 1\nkill-0 kbox 1\nkill kbox 1\nkill test group 1\n" +
			"kill -1 0\nguest job after kill -1 143\nbg kill 143\n"
		// The last line kills the guest's own process group: the shell
		// included (the first process), hence 128+SIGTERM.
		if code != 128+int(syscall.SIGTERM) || out != want {
			t.Errorf("%s\nexit status %d (want %d)\n%sstderr:\n%s", cmdline(opts), code, 128+int(syscall.SIGTERM), diffLines(want, out), errOut)
		}
		if n := strings.Count(errOut, "No such process"); n != 6 {
			t.Errorf("%s: stderr has %d \"No such process\" messages, want 6 (ESRCH for every host target):\n%s", cmdline(opts), n, errOut)
		}
		if !hostAlive(hp) {
			t.Errorf("%s: the host process %d (sleep 60) was killed by the guest", cmdline(opts), hp)
		}
	})
}

// TestProcessKillAllFreshChild: kill(-1) right after fork must reach the
// new child (Linux: every process the caller may signal, but itself), even
// before the child has made any call kbox sees.
func TestProcessKillAllFreshChild(t *testing.T) {
	t.Parallel()
	script := "for i in 1 2 3; do sleep 1 & kill -TERM -1; echo \"kill -1 $?\"; wait $!; echo \"job $?\"; done"
	want := strings.Repeat("kill -1 0\njob 143\n", 3)
	forEachProcVariant(t, func(t *testing.T, mode string, v variant, root string) {
		opts := runOpts{Unpriv: v.unpriv, Args: []string{mode, root, "--", "/bin/sh", "-c", script}}
		out, errOut, code := runKbox(t, opts)
		if code != 0 || out != want {
			t.Errorf("%s\nexit status %d (want 0)\n%sstderr:\n%s", cmdline(opts), code, diffLines(want, out), errOut)
		}
	})
}

// TestProcessSignalForwarding checks that SIGTERM, SIGINT and SIGHUP sent
// to kbox reach the guest's first process.
func TestProcessSignalForwarding(t *testing.T) {
	t.Parallel()
	sigs := []struct {
		sig  syscall.Signal
		name string
		code int
	}{
		{syscall.SIGTERM, "TERM", 5},
		{syscall.SIGINT, "INT", 6},
		{syscall.SIGHUP, "HUP", 7},
	}
	forEachProcVariant(t, func(t *testing.T, mode string, v variant, root string) {
		for _, s := range sigs {
			t.Run(s.name, func(t *testing.T) {
				t.Parallel()
				tag := "got-" + strings.ToLower(s.name)
				script := fmt.Sprintf(`trap "echo %s; exit %d" %s; echo ready; while true; do sleep 0.1; done`, tag, s.code, s.name)
				out, errOut, code, cmd := runSignalled(t, v.unpriv, []string{mode, root, "--", "/bin/sh", "-c", script}, s.sig)
				if code != s.code || out != "ready\n"+tag+"\n" {
					t.Errorf("%s, then kill -%s <kbox>\nexit status %d (want %d)\nstdout:\n%s\nwant stdout:\nready\n%s\nstderr:\n%s",
						cmd, s.name, code, s.code, out, tag, errOut)
				}
			})
		}
	})
}

// runSignalled starts kbox with args, waits until the guest prints its
// first line ("ready"), sends sig to the kbox process and returns the
// guest's output and kbox's exit status.
func runSignalled(t *testing.T, unpriv bool, args []string, sig syscall.Signal) (stdout, stderr string, code int, cmdStr string) {
	t.Helper()
	argv := append([]string{kboxBin}, args...)
	requireTiersOf(t, argv)
	if unpriv && isRoot() {
		// setpriv execs kbox: the started pid is kbox's.
		argv = asUnprivileged(argv)
	}
	cmdStr = cmdline(runOpts{Unpriv: unpriv, Args: args})
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = baseEnv()
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var se strings.Builder
	cmd.Stderr = &se
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", cmdStr, err)
	}
	killAll := func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) } //nolint:errcheck
	defer killAll()

	var so strings.Builder
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(pipe)
		first := true
		for {
			line, err := r.ReadString('\n')
			so.WriteString(line)
			if first && strings.HasSuffix(line, "\n") {
				first = false
				close(ready)
			}
			if err != nil {
				io.Copy(io.Discard, r) //nolint:errcheck
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-done:
		cmd.Wait() //nolint:errcheck
		t.Fatalf("%s: kbox ended before the guest was ready\nstdout:\n%s\nstderr:\n%s", cmdStr, so.String(), se.String())
	case <-time.After(10 * time.Second):
		killAll()
		<-done
		cmd.Wait() //nolint:errcheck
		t.Fatalf("%s: the guest did not print its first line within 10 s\nstdout:\n%s\nstderr:\n%s", cmdStr, so.String(), se.String())
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: sending %v to kbox: %v", cmdStr, sig, err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		killAll()
		<-done
		t.Errorf("%s: kbox did not exit within 5 s of %v", cmdStr, sig)
	}
	err = cmd.Wait()
	code = 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			} else {
				code = ee.ExitCode()
			}
		} else {
			t.Errorf("%s: %v", cmdStr, err)
			code = -1
		}
	}
	return so.String(), se.String(), code, cmdStr
}

// TestOrphanInheritsState: a process kbox first sees after its parent
// died (`(cmd &)` leaves cmd an orphan, re-parented to kbox's reaper) has
// its ancestors' working directory, not the initial one: its relative
// paths land where natively they would. Before, the orphan's `> rel`
// created /rel in the guest root, and a FIFO reader waited forever.
func TestOrphanInheritsState(t *testing.T) {
	t.Parallel()
	forEachProcVariant(t, func(t *testing.T, mode string, v variant, root string) {
		script := `cd /tmp && (sh -c "sleep 0.3; echo orphan > rel" &); sleep 1; cat /tmp/rel; ls /rel 2>&1 | head -1;` +
			` mkfifo /tmp/p && (echo through-fifo > p &); cat p`
		opts := runOpts{Unpriv: v.unpriv, Args: []string{mode, root, "--", "/bin/sh", "-c", script}, Tout: 20 * time.Second * time.Duration(timeoutScale)}
		out, errOut, code := runKbox(t, opts)
		if code != 0 || !strings.HasPrefix(out, "orphan\n") || !strings.HasSuffix(out, "through-fifo\n") || strings.Contains(out, "\n/rel\n") {
			t.Errorf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", cmdline(opts), code, out, errOut)
		}
	})
}
