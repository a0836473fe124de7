package launch

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// guestRoot makes a small guest root: bin/prog (executable), bin/data
// (not), etc/hostname, a link lib -> usr/lib.
func guestRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "usr/lib", "home"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, mode := range map[string]os.FileMode{"bin/prog": 0o755, "bin/data": 0o644, "etc/hostname": 0o644} {
		if err := os.WriteFile(filepath.Join(root, name), []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("usr/lib", filepath.Join(root, "lib")); err != nil {
		t.Fatal(err)
	}
	return root
}

func listTree(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			out = append(out, strings.TrimPrefix(p, dir)+" "+fi.Mode().String())
		}
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestBuildNamespaceMakesNothingInTheRoot: -R's /proc, /sys, /dev, /tmp
// and nested binds get kbox's own mount points; the root is unchanged,
// the mounts are where the guest looks.
func TestBuildNamespaceMakesNothingInTheRoot(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	root := guestRoot(t)
	src := t.TempDir()
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, []byte("data"), 0o644)
	before := listTree(t, root)
	s, err := check(Options{Roots: []Root{{RootRecommended, root}}, Binds: []string{src + ":/opt/a/b", file + ":/etc/f", src + ":/lib/x"}})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := buildNamespace(s)
	if err != nil {
		t.Fatal(err)
	}
	var guests []string
	for _, m := range ns.Mounts() {
		guests = append(guests, m.Guest)
	}
	for _, want := range []string{"/proc", "/sys", "/dev", "/tmp", "/opt", "/opt/a/b", "/etc/f", "/usr/lib/x"} {
		found := false
		for _, g := range guests {
			found = found || g == want
		}
		if !found {
			t.Errorf("no mount at %s: %q", want, guests)
		}
	}
	for _, p := range []string{"/opt/a/b", "/etc/f", "/lib/x", "/proc", "/tmp"} {
		if err := guestDir(ns, p); err != nil && !(p == "/etc/f" && strings.Contains(err.Error(), "not a directory")) {
			t.Errorf("%s in the guest: %v", p, err)
		}
	}
	ns.RemovePrivate()
	ns.Close()
	if after := listTree(t, root); after != before {
		t.Errorf("the root changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if left, _ := os.ReadDir(os.Getenv("TMPDIR")); len(left) != 0 {
		t.Errorf("private directories left: %v", left)
	}
}

func TestBuildNamespaceErrors(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	root := guestRoot(t)
	src := t.TempDir()
	file := filepath.Join(root, "etc/hostname")
	cases := []struct {
		binds []string
		root  string
		err   string
	}{
		{nil, filepath.Join(root, "nope"), "guest root " + filepath.Join(root, "nope") + ": no such file or directory"},
		{nil, file, "guest root " + file + ": not a directory"},
		{[]string{src + "/nope:/x"}, root, "--bind-mount " + src + "/nope:/x: " + src + "/nope: no such file or directory"},
		{[]string{file + ":/etc"}, root, "--bind-mount " + file + ":/etc: /etc is a directory in the guest (the source " + file + " is not)"},
		{[]string{src + ":/etc/hostname"}, root, "--bind-mount " + src + ":/etc/hostname: /etc/hostname is not a directory in the guest (the source " + src + " is one)"},
		{[]string{src + ":/bin/prog/x/y"}, root, "--bind-mount " + src + ":/bin/prog/x/y: /bin/prog is not a directory in the guest"},
		{[]string{src + ":/x", src + ":/x"}, root, "--bind-mount " + src + ":/x: /x is mounted twice"},
	}
	for _, c := range cases {
		s, err := check(Options{Roots: []Root{{RootPlain, c.root}}, Binds: c.binds})
		if err != nil {
			t.Fatal(err)
		}
		ns, err := buildNamespace(s)
		if err == nil || err.Error() != c.err || ExitCode(err) != ExitFailure {
			t.Errorf("%q %q: %v, want %q", c.root, c.binds, err, c.err)
		}
		if ns != nil {
			t.Errorf("%q %q: a namespace with the error", c.root, c.binds)
		}
	}
	if left, _ := os.ReadDir(os.Getenv("TMPDIR")); len(left) != 0 {
		t.Errorf("private directories left after errors: %v", left)
	}
}

func TestFindCommandAndWorkDir(t *testing.T) {
	root := guestRoot(t)
	s, err := check(Options{Roots: []Root{{RootPlain, root}}})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := buildNamespace(s)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	cases := []struct {
		cmd, wd string
		env     []string
		want    string
		code    int
		msg     string
	}{
		{"/bin/prog", "/", nil, "/bin/prog", 0, ""},
		{"prog", "/", nil, "/bin/prog", 0, ""},
		{"prog", "/", []string{"PATH=/usr:/bin"}, "/bin/prog", 0, ""},
		{"prog", "/bin", []string{"PATH=:/nope"}, "/bin/prog", 0, ""},
		{"./prog", "/bin", nil, "/bin/prog", 0, ""},
		{"prog", "/", []string{"PATH=/etc"}, "", 127, "prog: command not found in the guest"},
		{"/bin/data", "/", nil, "", 126, "/bin/data: not executable in the guest"},
		{"/etc", "/", nil, "", 126, "/etc: is a directory in the guest"},
		{"/nope/x", "/", nil, "", 127, "/nope/x: command not found in the guest"},
		{"", "/", nil, "", 125, "the command is empty"},
	}
	for _, c := range cases {
		got, err := findCommand(ns, c.wd, c.cmd, c.env)
		if c.code != 0 {
			if err == nil || err.Error() != c.msg || ExitCode(err) != c.code {
				t.Errorf("findCommand(%q in %s, %q): %q, %v; want %d %q", c.cmd, c.wd, c.env, got, err, c.code, c.msg)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("findCommand(%q in %s, %q) = %q, %v; want %q", c.cmd, c.wd, c.env, got, err, c.want)
		}
	}
	for _, c := range []struct {
		s    spec
		want string
		err  string
	}{
		{spec{root: Root{Kind: RootPlain}, cwd: "/home"}, "/", ""},
		{spec{root: Root{Kind: RootPlain}, workDir: "/home"}, "/home", ""},
		{spec{root: Root{Kind: RootHost}, cwd: "/home"}, "/home", ""},
		{spec{root: Root{Kind: RootHost}, cwd: "/nope"}, "/", ""},
		{spec{root: Root{Kind: RootHost}, cwd: "/etc/hostname"}, "/", ""},
		{spec{root: Root{Kind: RootPlain}, workDir: "/etc/hostname"}, "", "--work-dir /etc/hostname: not a directory in the guest"},
		{spec{root: Root{Kind: RootPlain}, workDir: "/nope"}, "", "--work-dir /nope: does not exist in the guest"},
	} {
		got, err := workDir(ns, c.s)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("workDir(%+v): %v, want %q", c.s, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("workDir(%+v) = %q, %v; want %q", c.s, got, err, c.want)
		}
	}
}

// TestNameServiceFilesPlacement: -R binds the host's name-service files
// into the guest's own /etc only, over a file, a link or nothing.
func TestNameServiceFilesPlacement(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	var host []string
	for _, f := range NameServiceFiles() {
		if fileExists(f) {
			host = append(host, f)
		}
	}
	if len(host) == 0 {
		t.Skip("the host has none of the name-service files")
	}
	mounts := func(root string) map[string]bool {
		s, err := check(Options{Roots: []Root{{RootRecommended, root}}})
		if err != nil {
			t.Fatal(err)
		}
		ns, err := buildNamespace(s)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { ns.RemovePrivate(); ns.Close() }()
		out := map[string]bool{}
		for _, m := range ns.Mounts() {
			out[m.Guest] = true
		}
		return out
	}
	noEtc := t.TempDir()
	if m := mounts(noEtc); m["/etc"] || m[host[0]] {
		t.Errorf("a root without /etc: mounts %v, want none in /etc", m)
	}
	withEtc := t.TempDir()
	os.MkdirAll(filepath.Join(withEtc, host[0]), 0o755) // a directory of that name
	for _, f := range host[1:] {
		os.Symlink("/nowhere/x", filepath.Join(withEtc, f)) // a dangling link
	}
	m := mounts(withEtc)
	if m[host[0]] {
		t.Errorf("%s is a directory in the guest: bound over it", host[0])
	}
	for _, f := range host[1:] {
		if !m[f] {
			t.Errorf("%s (a dangling link in the guest): not bound", f)
		}
	}
}
