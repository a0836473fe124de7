package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Regression tests for the crashes a hostile guest caused in kbox (Go
// panics from sizes read from the guest, thread exhaustion, a shared
// RLIMIT_NPROC). Each drives a mode of /bin/sysfuzz (tests/guest/sysfuzz.c).

// crashCases are sysfuzz's "case" probes: the sizes that crashed kbox and
// their neighbours, each answered as the kernel answers.
//
//	xattr   getxattr/lgetxattr/fgetxattr/listxattr/llistxattr/flistxattr
//	        with sizes 2^63, 2^64-1, 2^63+1, 2^32, 65537, 0; setxattr's E2BIG
//	cmsg    sendmsg whose cmsg_len is INT64_MAX (and -7, -15), 2^63,
//	        2^64-1, past the buffer, below the header; first and second
//	        in the control buffer
//	interp  execve of ELF files whose PT_INTERP p_filesz is 2^63, 2^31,
//	        4097, 0, 1, without a NUL, or names a missing file; truncated
//	        headers, e_phoff and e_phnum out of range; "#!" lines too
//	        long, empty, naming a missing interpreter or themselves
//	sizes   openat2's open_how size, getcwd, readlinkat, getdents64 and
//	        getgroups with sizes past 2^31, 2^32 and 2^63
var crashCases = []string{"xattr", "cmsg", "interp", "sizes"}

// TestCrashSizes runs each probe under every tier and privilege variant
// and compares its output with the same probe run natively (chroot(8),
// as root or as the unprivileged uid); without root there is no native
// run and only kbox's survival is checked.
func TestCrashSizes(t *testing.T) {
	t.Parallel()
	chroot, _ := exec.LookPath("chroot")
	for _, name := range crashCases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			native := map[bool]string{}
			oracle := func(t *testing.T, v variant) (string, bool) {
				mu.Lock()
				defer mu.Unlock()
				if out, ok := native[v.unpriv]; ok {
					return out, true
				}
				if !isRoot() || chroot == "" {
					return "", false
				}
				root := freshRoot(t, v.uid())
				args := []string{}
				if v.unpriv {
					args = append(args, "--userspec="+strconv.Itoa(unprivUID)+":"+strconv.Itoa(unprivUID), "--groups="+strconv.Itoa(unprivUID))
				}
				args = append(args, root, "/bin/sh", "-c", `cd /tmp && exec /bin/sysfuzz case "$0"`, name)
				opts := runOpts{Bin: chroot, Args: args}
				out, errOut, code := runKbox(t, opts)
				if code != 0 {
					t.Fatalf("native run: %s: exit %d\n%s%s", cmdline(opts), code, out, errOut)
				}
				native[v.unpriv] = out
				return out, true
			}
			for _, tier := range testedTiers(t, allTiers) {
				forEachVariant(t, tier+"/", func(t *testing.T, v variant) {
					root := freshRoot(t, v.uid())
					opts := runOpts{Unpriv: v.unpriv, Args: []string{"--syscall-mode=" + tier, "-r", root, "-w", "/tmp", "--", "/bin/sysfuzz", "case", name}}
					out, errOut, code := runKbox(t, opts)
					if m := crashMarkers.FindString(errOut); m != "" || code != 0 {
						t.Fatalf("%s: exit %d (%q)\nstdout:\n%s\nstderr:\n%s", cmdline(opts), code, m, out, head(errOut, 8000))
					}
					want, ok := oracle(t, v)
					if !ok {
						if len(lines(out)) == 0 {
							t.Errorf("%s: no output", cmdline(opts))
						}
						return
					}
					if diff := compareLines(lines(want), lines(out)); diff != "" {
						t.Errorf("%s: differs from the native run:\n%s", cmdline(opts), diff)
					}
				})
			}
		})
	}
}

// TestFIFOThreads: guest threads blocked opening a FIFO, past kbox's limit
// of OS threads. Each waits in kbox (one thread each for readers, none for
// writers); kbox must keep answering other calls meanwhile and release them
// all when the other end opens. KBOX_TEST_BLOCKING_SLOTS and
// KBOX_TEST_MAX_THREADS lower kbox's limits so that a few hundred threads
// prove what 10,100 showed (they crashed kbox with "thread exhaustion"):
// 600 readers with a limit of 150 threads die without the bound on
// blocking calls. KBOX_FUZZ_LONG=1 adds the 10,100-thread run itself as
// root (about 25 s on 2 vCPUs).
func TestFIFOThreads(t *testing.T) {
	t.Parallel()
	type run struct {
		n          int
		dir        string
		slots, max int
		rootOnly   bool
	}
	runs := []run{{600, "readers", 32, 150, false}, {600, "writers", 32, 150, false}}
	if os.Getenv("KBOX_FUZZ_LONG") != "" {
		runs = append(runs, run{10100, "readers", 0, 0, true})
	}
	for _, r := range runs {
		forEachVariant(t, fmt.Sprintf("%d-%s/", r.n, r.dir), func(t *testing.T, v variant) {
			if r.rootOnly && (v.unpriv || !isRoot()) {
				t.Skip("as root only: an unprivileged uid's limits may not allow this many threads")
			}
			root := freshRoot(t, v.uid())
			var env []string
			if r.slots > 0 {
				env = []string{"KBOX_TEST_BLOCKING_SLOTS=" + strconv.Itoa(r.slots), "KBOX_TEST_MAX_THREADS=" + strconv.Itoa(r.max)}
			}
			opts := runOpts{Unpriv: v.unpriv, Env: env, Tout: 120 * time.Second * time.Duration(timeoutScale),
				Args: []string{"--syscall-mode=seccomp", "-r", root, "--", "/bin/sysfuzz", "fifo", strconv.Itoa(r.n), r.dir}}
			out, errOut, code := runKbox(t, opts)
			if m := crashMarkers.FindString(errOut); m != "" || code != 0 {
				t.Fatalf("%s: exit %d (%q)\nstdout:\n%s\nstderr:\n%s", cmdline(opts), code, m, out, tail(errOut, 4000))
			}
			want := []string{fmt.Sprintf("fifo: %d threads blocked; stat ok*", r.n), fmt.Sprintf("fifo: %d released, 0 failed", r.n)}
			got := lines(out)
			if len(got) != 2 || !strings.HasPrefix(got[0], strings.TrimSuffix(want[0], "*")) || got[1] != want[1] {
				t.Errorf("%s:\n%s\nwant:\n%s", cmdline(opts), out, strings.Join(want, "\n"))
			}
		})
	}
}

// TestSendFlood: guest threads blocked sending 1 MiB each on a full
// socket. kbox copies a blocking send's data (up to 1 MiB) only once the
// call has its slot, so its memory is bounded by the slots, not by the
// guest's threads: with 32 slots and 400 threads kbox stays under 160 MiB
// (copying first, it held every thread's MiB: 500 MiB three seconds into a
// 600-thread run, and growing). The guest then drains the socket and every
// send completes.
func TestSendFlood(t *testing.T) {
	t.Parallel()
	const threads = 400
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := freshRoot(t, v.uid())
		argv := []string{kboxBin, "--syscall-mode=seccomp", "-r", root, "--", "/bin/sysfuzz", "sendflood", strconv.Itoa(threads)}
		if v.unpriv && isRoot() {
			argv = asUnprivileged(argv)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = "/"
		cmd.Env = append(baseEnv(), "KBOX_TEST_BLOCKING_SLOTS=32")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		defer func() {
			stdin.Close()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Errorf("kbox did not exit after the guest's stdin closed")
			}
		}()
		lines := make(chan string, 4)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
			cmd.Wait()
			close(done)
		}()
		select {
		case l := <-lines:
			if l != fmt.Sprintf("sendflood: %d threads blocked", threads) {
				t.Fatalf("guest: %q\nstderr:\n%s", l, stderr.String())
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("the guest's threads did not block in time\nstderr:\n%s", stderr.String())
		}
		// The leader takes the blocked sends one by one: give it 3 s.
		maxRSS := 0
		for i := 0; i < 30; i++ {
			if rss := vmRSS(cmd.Process.Pid); rss > maxRSS {
				maxRSS = rss
			}
			time.Sleep(100 * time.Millisecond)
		}
		if maxRSS == 0 || maxRSS > 160<<10 {
			t.Errorf("kbox's resident memory reached %d KiB with %d threads blocked sending 1 MiB each (want under 160 MiB)", maxRSS, threads)
		}
		stdin.Close()
		var rest []string
		for l := range lines {
			rest = append(rest, l)
		}
		<-done
		if want := fmt.Sprintf("sendflood: %d released", threads); len(rest) != 1 || rest[0] != want || cmd.ProcessState.ExitCode() != 0 {
			t.Errorf("after the release: %q, exit %d, want %q, 0\nstderr:\n%s", rest, cmd.ProcessState.ExitCode(), want, stderr.String())
		}
		if m := crashMarkers.FindString(stderr.String()); m != "" {
			t.Errorf("kbox: %q\n%s", m, head(stderr.String(), 8000))
		}
		t.Logf("kbox's resident memory peaked at %d KiB", maxRSS)
	})
}

// vmRSS returns a process's resident memory in KiB (0 if unknown).
func vmRSS(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// forkBombUID is the uid TestForkBombNproc runs as: a uid of its own,
// because RLIMIT_NPROC counts every process of the user.
const forkBombUID = 61234

// TestForkBombNproc: a guest that forks until fork fails must not take
// kbox down with it. kbox runs as forkBombUID under RLIMIT_NPROC 150
// (prlimit(1)); its guest gets a lower limit, so kbox keeps room for its
// own threads (before, the Go runtime aborted in pthread_create and the
// guest's processes ran on). The guest's children keep making notified
// calls at the limit; kbox must answer them, report the guest's status
// and leave no process of the uid behind.
func TestForkBombNproc(t *testing.T) {
	t.Parallel()
	if !isRoot() {
		t.Skip("needs root: runs kbox as a uid of its own")
	}
	sp, prl := findSetpriv(), ""
	if p, err := exec.LookPath("prlimit"); err == nil {
		prl = p
	}
	if sp == "" || prl == "" {
		t.Skip("setpriv(1) and prlimit(1) (util-linux) are needed")
	}
	if left := uidProcesses(forkBombUID); len(left) > 0 {
		killUID(t, forkBombUID)
		t.Logf("killed %d processes of uid %d left by an earlier run", len(left), forkBombUID)
	}
	root := freshRoot(t, forkBombUID)
	args := []string{fmt.Sprintf("--reuid=%d", forkBombUID), fmt.Sprintf("--regid=%d", forkBombUID), "--clear-groups", "--",
		prl, "--nproc=150", "--", kboxBin, "-v", "--syscall-mode=seccomp", "-r", root, "--", "/bin/sysfuzz", "forkbomb", "1000"}
	opts := runOpts{Bin: sp, Args: args, Tout: 60 * time.Second * time.Duration(timeoutScale)}
	out, errOut, code := runKbox(t, opts)
	defer func() {
		if left := uidProcesses(forkBombUID); len(left) > 0 {
			killUID(t, forkBombUID)
			t.Errorf("%d processes of uid %d left behind: %v", len(left), forkBombUID, left)
		}
	}()
	if m := crashMarkers.FindString(errOut); m != "" || code != 0 {
		t.Fatalf("%s: exit %d (%q)\nstdout:\n%s\nstderr:\n%s", cmdline(opts), code, m, out, tail(errOut, 4000))
	}
	want := []string{"forkbomb: stopped by EAGAIN; 200 of 200 stat calls answered", "forkbomb: children reaped"}
	if diff := compareLines(want, lines(out)); diff != "" {
		t.Errorf("%s:\n%s", cmdline(opts), diff)
	}
	if !strings.Contains(errOut, "the guest's RLIMIT_NPROC is 75") {
		t.Errorf("no -v line about the guest's RLIMIT_NPROC:\n%s", tail(errOut, 2000))
	}
}

// uidProcesses lists the pids of uid's processes.
func uidProcesses(uid int) []int {
	return pidsWhere(func(_ int, dir string) bool {
		var st unix.Stat_t
		return unix.Stat(dir, &st) == nil && int(st.Uid) == uid
	})
}

// killUID SIGKILLs every process of uid (the test's own uid, used by
// nothing else) and waits for them to go.
func killUID(t *testing.T, uid int) {
	for try := 0; try < 50; try++ {
		pids := uidProcesses(uid)
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			unix.Kill(p, unix.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("processes of uid %d survive SIGKILL: %v", uid, uidProcesses(uid))
}
