package integration

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSyscallFuzz runs /bin/sysfuzz (tests/guest/sysfuzz.c), a guest that
// makes random and hostile system calls, under every tier, root flag and
// privilege variant, each with its own seed. Whatever the guest does,
// kbox must not panic or report an internal error, must not hang, must
// leave no guest process behind, and must exit with the guest's status:
// the status sysfuzz reports it ends with (an exit code, or 128+N for a
// signal it raises), or, when the guest died of its own fault in an
// in-process tier before it could report, 128+signal.
//
// KBOX_FUZZ_COUNT (calls per run, default 3000), KBOX_FUZZ_SEEDS (runs per
// configuration, default 1) and KBOX_FUZZ_SEED (the base seed, default
// fixed; "random" for a new one) make longer soak runs. A failure names
// the seed and the command that reproduces it.
func TestSyscallFuzz(t *testing.T) {
	t.Parallel()
	count := envInt(t, "KBOX_FUZZ_COUNT", 3000)
	seeds := envInt(t, "KBOX_FUZZ_SEEDS", 1)
	base := uint64(20261205)
	if s := os.Getenv("KBOX_FUZZ_SEED"); s == "random" {
		base = uint64(time.Now().UnixNano())
	} else if s != "" {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatalf("KBOX_FUZZ_SEED=%q: %v", s, err)
		}
		base = v
	}
	t.Logf("base seed %d, %d calls, %d seed(s) per configuration", base, count, seeds)
	forEachTierModeVariant(t, func(t *testing.T, tier, mode string, v variant) {
		h := fnv.New64a()
		fmt.Fprint(h, tier, mode, v.name)
		for i := 0; i < seeds; i++ {
			runFuzz(t, tier, mode, v, base+h.Sum64()%1000003+uint64(i), count)
		}
	})
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return v
}

var fuzzRuns atomic.Int64

// crashMarkers are what a Go panic, a fatal runtime error, a recovered
// handler panic or a fault in kbox leave on its stderr.
var crashMarkers = regexp.MustCompile(`panic:|fatal error:|goroutine \d+|internal error (serving|in)|\[signal SIG|runtime: |SIGSEGV|unexpected fault address`)

var fuzzDone = regexp.MustCompile(`(?m)^sysfuzz: done calls=\d+ status=(exit|signal):(\d+)$`)

func runFuzz(t *testing.T, tier, mode string, v variant, seed uint64, count int) {
	t.Helper()
	root := freshRoot(t, v.uid())
	marker := fmt.Sprintf("kboxfuzz%d-%d", os.Getpid(), fuzzRuns.Add(1))
	// Every other seed ends with a signal: kbox must report 128+N.
	end := fmt.Sprintf("exit:%d", 3+seed%50)
	wantCode := 3 + int(seed%50)
	if seed%2 == 1 {
		end, wantCode = "signal:12", 128+12 // SIGUSR2, whose default kills
	}
	opts := runOpts{
		Unpriv: v.unpriv,
		Args: []string{"--syscall-mode=" + tier, mode, root, "-w", "/tmp", "--", "/bin/sysfuzz", "fuzz",
			strconv.FormatUint(seed, 10), strconv.Itoa(count), end, "mark=" + marker},
		Env:  []string{"KBOX_FUZZ_MARK=" + marker},
		Tout: 100 * time.Second * time.Duration(timeoutScale),
	}
	before := hostState()
	start := time.Now()
	stdout, stderr, code := runKbox(t, opts)
	elapsed := time.Since(start)
	if after := hostState(); !maps.Equal(after, before) {
		t.Errorf("seed %d: host directories changed during the run:\nbefore: %v\nafter:  %v\nreproduce: %s", seed, before, after, cmdline(opts))
		restoreHostState(t, before)
	}
	repro := "reproduce: " + cmdline(opts) + "  (root: a copy of the fixture root; add \"trace\" to see each call)"
	if loc := crashMarkers.FindStringIndex(stderr); loc != nil {
		t.Errorf("seed %d: kbox crashed or reported an internal error (%q)\n%s\nstderr from there:\n%s", seed, stderr[loc[0]:loc[1]], repro, head(stderr[max(0, loc[0]-500):], 8000))
	}
	if m := fuzzDone.FindStringSubmatch(stdout); m != nil {
		if code != wantCode {
			t.Errorf("seed %d: kbox exited %d, the guest ended with %s (want %d)\n%s\nstderr:\n%s", seed, code, m[1]+":"+m[2], wantCode, repro, tail(stderr, 3000))
		}
	} else if tier == "seccomp" {
		// The seccomp tier's fuzzer runs every batch in a child: its
		// main process always reports.
		t.Errorf("seed %d: no final report from the guest; kbox exited %d\n%s\nstdout:\n%s\nstderr:\n%s", seed, code, repro, tail(stdout, 3000), tail(stderr, 3000))
	} else if code <= 128 || code > 128+64 {
		t.Errorf("seed %d: the in-process guest ended without its report and kbox exited %d, not 128+signal\n%s\nstdout:\n%s\nstderr:\n%s", seed, code, repro, tail(stdout, 3000), tail(stderr, 3000))
	} else {
		t.Logf("seed %d: the in-process guest died of its own signal %d before reporting", seed, code-128)
	}
	if left := guestLeftovers(marker, root); len(left) > 0 {
		t.Errorf("seed %d: guest processes left behind after kbox exited: %s\n%s", seed, strings.Join(left, "; "), repro)
	}
	t.Logf("seed %d: %d calls in %v, exit %d", seed, count, elapsed.Round(time.Millisecond), code)
}

// hostState records the mode and owner of host directories a guest with
// -S (host /proc, /sys, /dev) must not be able to change. (A uid-0 guest
// once chmod'ed the host's /proc to 0000 through kbox, finding F3: every
// capability-less root process of the machine then failed to use /proc.)
func hostState() map[string]unix.Stat_t {
	out := map[string]unix.Stat_t{}
	for _, p := range []string{"/", "/proc", "/proc/sys", "/sys", "/dev", "/dev/shm", "/tmp", "/etc", "/usr", buildDir, kboxBin} {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil {
			out[p] = unix.Stat_t{Mode: st.Mode, Uid: st.Uid, Gid: st.Gid}
		}
	}
	return out
}

// restoreHostState puts back what a failed run changed, so that one kbox
// bug does not break every other test on the machine.
func restoreHostState(t *testing.T, want map[string]unix.Stat_t) {
	for p, st := range want {
		if err := unix.Chmod(p, st.Mode&0o7777); err != nil {
			t.Logf("restoring the mode of %s: %v", p, err)
		}
		if err := unix.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
			t.Logf("restoring the owner of %s: %v", p, err)
		}
	}
}

// guestLeftovers lists the processes that still carry marker in their
// command line or environment, or run a program from root (polling a
// little: kbox kills and reaps its descendants before it exits, a zombie
// re-parented elsewhere may take a moment).
func guestLeftovers(marker, root string) []string {
	var left []string
	for try := 0; try < 20; try++ {
		left = left[:0]
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			dir := filepath.Join("/proc", e.Name())
			cmd, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
			env, _ := os.ReadFile(filepath.Join(dir, "environ"))
			exe, _ := os.Readlink(filepath.Join(dir, "exe"))
			if bytes.Contains(cmd, []byte(marker)) || bytes.Contains(env, []byte(marker)) || strings.HasPrefix(exe, root+"/") {
				stat, _ := os.ReadFile(filepath.Join(dir, "stat"))
				left = append(left, fmt.Sprintf("pid %d exe %q cmdline %q stat %.80s", pid, exe, bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}), stat))
			}
		}
		if len(left) == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return left
}

// head returns the first n bytes of s.
func head(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
