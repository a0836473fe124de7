package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// scCase is one table entry: a sequence of sc ops run in a fresh case
// directory (the guest's working directory) and the lines sc must print.
//
// Expected line syntax (see matchLine): "op: ok *" accepts any value;
// "op: ok k=v k=v" requires those key=value pairs among the actual ones;
// anything else must match exactly (runs of blanks are insignificant).
// Placeholders in args, after and want: $W guest case dir, $N case number,
// $UID/$GID the uid/gid kbox runs as, $ROOT the host path of the guest root,
// $FSTYPE the host's statfs type of the root, as 0x hex.
type scCase struct {
	name     string
	flags    []string // extra kbox flags (-0, --change-id ...)
	args     string   // sc ops, split on blanks; '' is the empty string
	after    string   // guest shell commands run after sc in the same kbox run
	want     []string
	wantRoot []string // instead of want, when the guest runs as the real root
	// policy: kbox deliberately denies something the real root could do
	// natively (device nodes, mount); the native oracle skips it as root.
	policy bool
	// deviates: a documented kbox limitation; the native oracle skips it.
	deviates  bool
	needXattr bool                                         // skip where user xattrs are not supported
	forks     bool                                         // needs a second process: not run under the trap tier
	wantTrap  []string                                     // instead of want under the trap tier, where the seccomp tier deviates
	setup     func(t testing.TB, e *caseEnv)               // host side, before the chown
	pre       func(t *testing.T, e *caseEnv)               // host side, after the chown, before the run
	check     func(t *testing.T, e *caseEnv, out []string) // host side, after the run
}

// caseEnv is where a case runs.
type caseEnv struct {
	n        int
	root     string // host path of the guest root
	host     string // host path of the case directory
	guest    string // guest path of the case directory
	uid, gid int    // ids kbox runs as
	realRoot bool   // the guest is the real root (no virtual identity)
	trap     bool   // the case ran under the trap tier (set by trapRunner)
	xattrOK  bool
	// view maps a host path below root to where the case's result is
	// (an overlay's upper or lower layer, overlayView); nil: the path.
	view func(string) string
}

// at is the host path of rel in the case directory, as the checks see it.
func (e *caseEnv) at(rel string) string { return e.rootAt(filepath.Join(e.host[len(e.root):], rel)) }

// rootAt is the host path of rel below the guest root.
func (e *caseEnv) rootAt(rel string) string {
	p := filepath.Join(e.root, rel)
	if e.view != nil {
		return e.view(p)
	}
	return p
}

func (e *caseEnv) expand(s string) string {
	fstype := "unknown"
	var sfs unix.Statfs_t
	if unix.Statfs(e.root, &sfs) == nil {
		fstype = fmt.Sprintf("0x%x", uint64(sfs.Type))
	}
	return strings.NewReplacer(
		"$W", e.guest,
		"$N", strconv.Itoa(e.n),
		"$UID", strconv.Itoa(e.uid),
		"$GID", strconv.Itoa(e.gid),
		"$ROOT", e.root,
		"$FSTYPE", fstype,
	).Replace(s)
}

// populate creates the standard case directory layout:
//
//	f "hello\n" 0644, exe (shell script) 0755, ro "ro\n" 0444,
//	d/ with d/x "x" and d/toroot -> /x, e/ empty,
//	lf -> f, ld -> d, dangling -> nowhere, loop -> loop, abs -> /etc/hostname
func populate(t testing.TB, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(dir, 0o755))
	must(os.Chmod(dir, 0o755))
	writeFile(t, filepath.Join(dir, "f"), "hello\n", 0o644)
	writeFile(t, filepath.Join(dir, "exe"), "#!/bin/sh\nexit 0\n", 0o755)
	writeFile(t, filepath.Join(dir, "ro"), "ro\n", 0o444)
	must(os.Mkdir(filepath.Join(dir, "d"), 0o755))
	writeFile(t, filepath.Join(dir, "d", "x"), "x", 0o644)
	must(os.Symlink("/x", filepath.Join(dir, "d", "toroot")))
	must(os.Mkdir(filepath.Join(dir, "e"), 0o755))
	for _, l := range [][2]string{{"f", "lf"}, {"d", "ld"}, {"nowhere", "dangling"}, {"loop", "loop"}, {"/etc/hostname", "abs"}} {
		must(os.Symlink(l[0], filepath.Join(dir, l[1])))
	}
}

// scArgs splits an op string into sc arguments.
func scArgs(s string) []string {
	f := strings.Fields(s)
	for i, a := range f {
		if a == "''" {
			f[i] = ""
		}
	}
	return f
}

// guestArgv is the guest command line for a case using sc at scPath.
func guestArgv(c *scCase, e *caseEnv, scPath string) []string {
	args := scArgs(e.expand(c.args))
	if c.after == "" {
		return append([]string{scPath}, args...)
	}
	return append([]string{"/bin/sh", "-c", `"$0" "$@"; ` + e.expand(c.after), scPath}, args...)
}

// matchLine reports whether an actual sc output line satisfies want.
func matchLine(want, got string) bool {
	if want == got {
		return true
	}
	wf, gf := strings.Fields(want), strings.Fields(got)
	if len(wf) < 2 || len(gf) < 2 || wf[0] != gf[0] || wf[1] != gf[1] {
		return false
	}
	wr, gr := wf[2:], gf[2:]
	if len(wr) == 1 && wr[0] == "*" {
		return true
	}
	kv := false
	for _, w := range wr {
		kv = kv || strings.Contains(w, "=")
	}
	if !kv {
		return strings.Join(wr, " ") == strings.Join(gr, " ")
	}
	have := map[string]string{}
	for _, g := range gr {
		if k, v, ok := strings.Cut(g, "="); ok {
			have[k] = v
		}
	}
	for _, w := range wr {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return false
		}
		if hv, found := have[k]; !found || hv != v {
			return false
		}
	}
	return true
}

// compareLines returns a readable report of the differences, or "".
func compareLines(want, got []string) string {
	bad := len(want) != len(got)
	n := max(len(want), len(got))
	var b strings.Builder
	for i := 0; i < n; i++ {
		w, g := "<missing>", "<missing>"
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) && i < len(got) && matchLine(w, g) {
			fmt.Fprintf(&b, "   %2d      ok: %s\n", i+1, g)
			continue
		}
		bad = true
		fmt.Fprintf(&b, "✗  %2d    want: %s\n          got: %s\n", i+1, w, g)
	}
	if !bad {
		return ""
	}
	return b.String()
}

// xattrSupported probes whether user xattrs work in dir on the host.
func xattrSupported(dir string) bool {
	f, err := os.CreateTemp(dir, ".xattr-probe-")
	if err != nil {
		return false
	}
	defer os.Remove(f.Name())
	f.Close()
	return unix.Setxattr(f.Name(), "user.kbox-probe", []byte("1"), 0) == nil
}

// scRunner runs one case and returns the command line, sc output, stderr
// and exit status.
type scRunner func(t *testing.T, c *scCase, e *caseEnv) (cmd, out, errOut string, code int)

// runTable prepares one guest root holding one directory per case, then
// runs every case as a parallel subtest.
func runTable(t *testing.T, cases []scCase, uid, gid int, realRoot bool, run scRunner) {
	if runtime.GOARCH != "amd64" {
		t.Log("note: tables are written for amd64 (legacy syscalls such as open/stat/utime)")
	}
	root := freshRoot(t, uid)
	xattrOK := xattrSupported(root)
	envs := make([]*caseEnv, len(cases))
	for i := range cases {
		e := &caseEnv{
			n: i, root: root, host: filepath.Join(root, "w", strconv.Itoa(i)),
			guest: "/w/" + strconv.Itoa(i), uid: uid, gid: gid, xattrOK: xattrOK,
			realRoot: realRoot && len(cases[i].flags) == 0,
		}
		populate(t, e.host)
		if cases[i].setup != nil {
			cases[i].setup(t, e)
		}
		envs[i] = e
	}
	os.Chmod(filepath.Join(root, "w"), 0o755) //nolint:errcheck
	chownTree(t, filepath.Join(root, "w"), uid)
	for i := range cases {
		c, e := &cases[i], envs[i]
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.needXattr && !e.xattrOK {
				t.Skipf("the host file system under %s does not support user.* xattrs", root)
			}
			if c.pre != nil {
				c.pre(t, e)
			}
			cmd, out, errOut, code := run(t, c, e)
			got := lines(out)
			for _, g := range got {
				if strings.HasSuffix(g, "ENOSYS-NOTBUILT") {
					t.Skipf("%s: a legacy syscall does not exist on %s: %s", cmd, runtime.GOARCH, g)
				}
			}
			src := c.want
			if e.realRoot && c.wantRoot != nil {
				src = c.wantRoot
			}
			if e.trap && c.wantTrap != nil {
				src = c.wantTrap
			}
			want := make([]string, len(src))
			for i := range src {
				want[i] = e.expand(src[i])
			}
			if code != 0 {
				t.Errorf("%s\nexit status %d, want 0\nstderr:\n%s", cmd, code, errOut)
			}
			if diff := compareLines(want, got); diff != "" {
				t.Errorf("%s\noutput mismatch (case dir %s):\n%sstderr:\n%s", cmd, e.host, diff, errOut)
			}
			if c.check != nil {
				c.check(t, e, got)
			}
		})
	}
}
