package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// statCacheRE reads the in-process tiers' -v count of stats the stat
// cache answered (internal/inproc, statcache.c).
var statCacheRE = regexp.MustCompile(`stat cache: (\d+) stats answered without the engine`)

func statCacheHits(t *testing.T, opts runOpts, errOut string) int {
	t.Helper()
	m := statCacheRE.FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("%s: no stat cache count in -v output:\n%s", cmdline(opts), errOut)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestStatCache: in the in-process tiers a stat of a path the engine has
// served twice is answered by the stat cache, in C, without entering Go:
// from the patched site's fast path under rewrite, in the SIGSYS handler
// under trap. The guest's registers (the vector ones too: the fast path
// saves only the general ones around the C code) are kept, the answer is
// the engine's, and a bad buffer or a bad path still gives EFAULT (the
// cache's guest-memory copies fail instead of faulting).
func TestStatCache(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	want := "regs-stat: ok stats from a raw syscall keep every register\nregs-stat: ok a bad buffer: EFAULT\nregs-stat: ok a bad path: EFAULT\n"
	eachTrapRun(t, func(t *testing.T, tier, prog string, v variant) {
		opts := runOpts{Args: append([]string{"-v"}, trapArgs(tier, "-r", root, prog, "regs-stat", "/etc/hostname")...), Unpriv: v.unpriv}
		out, errOut := checkRun(t, opts, 0)
		checkTrapOutput(t, opts, out, want, errOut)
		// Ten stats of the path by the probe, the first one or two
		// served by the engine.
		if n := statCacheHits(t, opts, errOut); n < 8 {
			t.Errorf("%s: the stat cache answered %d stats, want at least 8", cmdline(opts), n)
		}
	})
}

// TestStatCacheChanges: what a cached stat sees. The guest's own changes
// (chmod, rename, unlink, chdir) end the cache's generation, so the next
// stat is the engine's; a host process's change to the file is seen at
// once (fstat of the object itself), and so is its removal or its
// replacement by a rename over it (the cached object has no link left).
// A host rename of the file away while it keeps its link is not seen: the
// path names the cached object until the guest changes the tree
// (docs/architecture.md, "The in-process stat cache").
func TestStatCacheChanges(t *testing.T) {
	t.Parallel()
	for _, tier := range inProcessTiers {
		forEachVariant(t, tier+"/", func(t *testing.T, v variant) {
			requireTier(t, tier)
			root, d := rootWithFile(t, v, "sc", "one")
			f := filepath.Join(d, "f")
			wait := []string{",", "read", "0", "3"}
			stat3 := []string{",", "stat", "/sc/f", ",", "stat", "/sc/f", ",", "stat", "/sc/f"}
			script := []string{"stat", "/sc/f", ",", "stat", "/sc/f"}
			script = append(script, wait...)                                                 // host: write and chmod
			script = append(script, stat3...)                                                // seen
			script = append(script, wait...)                                                 // host: rename a new file over f
			script = append(script, stat3...)                                                // seen
			script = append(script, wait...)                                                 // host: rename f away (link kept)
			script = append(script, stat3...)                                                // not seen (documented)
			script = append(script, ",", "chmod", "/sc/g", "600")                            // a guest change: the generation ends
			script = append(script, stat3...)                                                // ENOENT
			script = append(script, ",", "rename", "/sc/g", "/sc/f")                         // the guest renames it back
			script = append(script, stat3...)                                                // seen
			script = append(script, ",", "chdir", "/sc", ",", "stat", "f", ",", "stat", "f") // relative, after chdir
			script = append(script, wait...)                                                 // host: unlink f
			script = append(script, ",", "stat", "f", ",", "stat", "/sc/f")                  // ENOENT both
			args := append([]string{"-v", "--syscall-mode=" + tier, "-r", root, "--", "/bin/sc"}, script...)
			sc := startPausedSC(t, v, args...)
			next, resume := sc.next, sc.resume
			nextN := func(n int, want string) {
				t.Helper()
				for i := 0; i < n; i++ {
					next(want)
				}
			}
			nextN(2, "0644 3")
			if err := os.WriteFile(f, []byte("three"), 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chmod(f, 0o600)
			resume()
			nextN(3, "0600 5")
			n := filepath.Join(d, "new")
			os.WriteFile(n, []byte("seven77"), 0o640)
			chownTree(t, n, v.uid())
			if err := os.Rename(n, f); err != nil {
				t.Fatal(err)
			}
			resume()
			nextN(3, "0640 7")
			if err := os.Rename(f, filepath.Join(d, "g")); err != nil {
				t.Fatal(err)
			}
			resume()
			nextN(3, "0640 7") // the renamed object, as documented
			next("chmod: ok 0")
			nextN(3, "stat: err ENOENT")
			next("rename: ok 0")
			nextN(3, "0600 7")
			next("chdir: ok 0")
			nextN(2, "0600 7")
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
			resume()
			nextN(2, "stat: err ENOENT")
			sc.finish(true)
			if hits := statCacheHits(t, runOpts{Args: args}, sc.stderr.String()); hits < 8 {
				t.Errorf("the stat cache answered %d stats, want at least 8:\n%s", hits, sc.stderr.String())
			}
		})
	}
}

// TestStatCacheOwners: under a virtual identity (-0) the stat cache shows
// the invoking user's files as root's, as the engine does, and a chown
// the guest makes (a recorded owner) ends the generation and keeps the
// object out of the cache: every stat after it shows the recorded owner.
func TestStatCacheOwners(t *testing.T) {
	t.Parallel()
	for _, tier := range inProcessTiers {
		forEachVariant(t, tier+"/", func(t *testing.T, v variant) {
			requireTier(t, tier)
			root, _ := rootWithFile(t, v, "own", "abc")
			stat3 := []string{",", "stat", "/own/f", ",", "stat", "/own/f", ",", "stat", "/own/f"}
			args := []string{"-v", "--syscall-mode=" + tier, "-0", "-r", root, "--", "/bin/sc"}
			args = append(args, stat3[1:]...)
			args = append(args, ",", "chown", "/own/f", "5", "6")
			args = append(args, stat3...)
			opts := runOpts{Args: args, Unpriv: v.unpriv}
			out, errOut := checkRun(t, opts, 0)
			owners := regexp.MustCompile(`(?m)^stat: ok .* uid=(\d+) gid=(\d+) `).FindAllStringSubmatch(out, -1)
			var got []string
			for _, m := range owners {
				got = append(got, m[1]+":"+m[2])
			}
			want := []string{"0:0", "0:0", "0:0", "5:6", "5:6", "5:6"}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%s: owners %v, want %v\n%s\n%s", cmdline(opts), got, want, out, errOut)
			}
			if hits := statCacheHits(t, opts, errOut); hits < 1 {
				t.Errorf("%s: the stat cache answered %d stats, want at least 1 (before the chown)", cmdline(opts), hits)
			}
		})
	}
}
