package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The exec path race without Landlock (hostile-guest F8). kbox rewrites
// the exec path in guest memory; a task that shares that memory and runs
// meanwhile can put a host path back before the kernel reads it. The
// tests run with kbox's no-Landlock test hook, so that kbox's own check is
// what stops it: the racing exec is refused (EPERM) and no host program
// ever runs, while vfork and posix_spawn, whose parent the kernel
// suspends, still work. A process that does not share the memory but
// writes it through /proc/<pid>/mem cannot open that file for writing.

const noLandlockEnv = "KBOX_TEST_NO_LANDLOCK=1"

// execRaceRuns is how many execs each racing run attempts (the unfixed
// kbox lost about half of them).
const execRaceRuns = 100

// hostProgram copies the fixture's sc outside the guest root: the program
// a won race would run. Run as "readfile /proc/self/comm", it prints its
// name, hostsc.
func hostProgram(t *testing.T) string {
	t.Helper()
	dir := mkTempDir(t, "kbox-it-execrace-")
	b, err := os.ReadFile(filepath.Join(fixtureRoot(t), "bin/sc"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "hostsc")
	writeFile(t, p, string(b), 0o755)
	return p
}

func execRace(t *testing.T, v variant, mode, host string, env ...string) runOpts {
	return runOpts{Unpriv: v.unpriv, Env: env, Tout: 2 * runTimeout, Args: []string{"--syscall-mode=seccomp", "-v", "-R", fixtureRoot(t), "--",
		"/bin/execrace", mode, strconv.Itoa(execRaceRuns), "/bin/sc", host, "readfile", "/proc/self/comm"}}
}

// TestExecRaceNoLandlock: every racing exec is refused, none runs the host
// program.
func TestExecRaceNoLandlock(t *testing.T) {
	t.Parallel()
	host := hostProgram(t)
	for _, mode := range []string{"clonevm", "sibling", "shared", "procmem"} {
		forEachVariant(t, mode+"/", func(t *testing.T, v variant) {
			opts := execRace(t, v, mode, host, noLandlockEnv)
			out, errOut, code := runKbox(t, opts)
			if code != 0 || strings.Contains(out, "hostsc") {
				t.Fatalf("%s: exit status %d; the host program ran %d times\nstdout:\n%s\nstderr:\n%s", cmdline(opts), code,
					strings.Count(out, "hostsc"), out, errOut)
			}
			refusal, logged := "execrace: exec failed: EPERM\n", "execve denied (EPERM)"
			if mode == "procmem" {
				// Another process's memory file cannot be opened for writing.
				refusal, logged = "execrace: mem: EACCES\n", "open denied (EACCES)"
			}
			want := strings.Repeat(refusal, execRaceRuns) + "execrace: done " + strconv.Itoa(execRaceRuns) + "\n"
			if out != want {
				t.Errorf("%s: want every race refused (%s), got:\n%s", cmdline(opts), strings.TrimSpace(refusal), out)
			}
			if !strings.Contains(errOut, logged) {
				t.Errorf("%s: no -v line explains the refusal\nstderr:\n%s", cmdline(opts), errOut)
			}
		})
	}
}

// TestExecVforkNoLandlock: without Landlock, vfork+exec and posix_spawn
// (the parent suspended until the child execs) and a shell's pipelines
// still work.
func TestExecVforkNoLandlock(t *testing.T) {
	t.Parallel()
	host := hostProgram(t)
	for _, mode := range []string{"vfork", "spawn"} {
		forEachVariant(t, mode+"/", func(t *testing.T, v variant) {
			opts := execRace(t, v, mode, host, noLandlockEnv)
			out, errOut, code := runKbox(t, opts)
			want := strings.Repeat("readfile: ok sc\n", execRaceRuns) + "execrace: done " + strconv.Itoa(execRaceRuns) + "\n"
			if code != 0 || out != want {
				t.Errorf("%s: exit status %d\nstdout:\n%s\nstderr:\n%s", cmdline(opts), code, out, errOut)
			}
		})
	}
	forEachVariant(t, "shell/", func(t *testing.T, v variant) {
		opts := runOpts{Unpriv: v.unpriv, Env: []string{noLandlockEnv}, Args: []string{"--syscall-mode=seccomp", "-r", fixtureRoot(t), "--",
			"/bin/sh", "-c", "echo one | cat; /bin/hello | tr a-z A-Z; x=$(/bin/sc getpid); echo ${x%% *}"}}
		out, errOut, code := runKbox(t, opts)
		if code != 0 || !strings.HasPrefix(out, "one\n") || !strings.HasSuffix(out, "getpid:\n") {
			t.Errorf("%s: exit status %d\nstdout:\n%s\nstderr:\n%s", cmdline(opts), code, out, errOut)
		}
	})
}

// TestExecRaceLandlock: with Landlock, kbox does not refuse these execs
// (the kernel refuses the host program itself): behaviour unchanged.
func TestExecRaceLandlock(t *testing.T) {
	t.Parallel()
	host := hostProgram(t)
	forEachVariant(t, "", func(t *testing.T, v variant) {
		opts := execRace(t, v, "clonevm", host)
		out, errOut, code := runKbox(t, opts)
		if !strings.Contains(errOut, "landlock ABI") {
			t.Skipf("no Landlock in this kernel:\n%s", errOut)
		}
		if code != 0 || strings.Contains(out, "hostsc") || strings.Contains(out, "EPERM") {
			t.Errorf("%s: exit status %d\nstdout:\n%s\nstderr:\n%s", cmdline(opts), code, out, errOut)
		}
	})
}
