package integration

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// execFailFiles are programs that cannot be executed, for
// TestExecFailureMessages.
var execFailFiles = map[string]string{
	"garbage":    "this is no program\n\x00\x01\x02\x03",
	"nointerp":   "#!/nonexistent\necho hi\n",
	"badinterp":  "#!/var/f/garbage\n",
	"perminterp": "#!/etc/passwd\n",
}

// TestExecFailureMessages (issue 17 item 5): a command kbox cannot execute
// gets one clear line on stderr and a shell's exit status (127 when it or
// its interpreter is not found, 126 when it cannot be executed), the same
// in every tier, with or without -v; a guest's own failing exec gets the
// errno, as natively, and a -v line saying why.
func TestExecFailureMessages(t *testing.T) {
	t.Parallel()
	cases := []struct {
		cmd  string
		code int
		line string
	}{
		{"/var/f/garbage", 126, "kbox: /var/f/garbage: cannot execute: not an ELF program or script (ENOEXEC)"},
		{"/var/f/nointerp", 127, "kbox: /var/f/nointerp: interpreter /nonexistent not found in the guest"},
		{"/var/f/badinterp", 126, "kbox: /var/f/badinterp: interpreter /var/f/garbage: cannot execute: not an ELF program or script (ENOEXEC)"},
		{"/var/f/perminterp", 126, "kbox: /var/f/perminterp: interpreter /etc/passwd: cannot execute: permission denied (EACCES)"},
	}
	pidLine := regexp.MustCompile(`^kbox: pid [0-9]+: execve: `)
	// The programs are in a host directory mounted read-only at the
	// guest's /var over the shared fixture root.
	host := mkTempDir(t, "kbox-it-execfail-")
	for name, body := range execFailFiles {
		writeFile(t, filepath.Join(host, "f", name), body, 0o755)
	}
	root := fixtureRoot(t)
	forEachTierModeVariant(t, func(t *testing.T, tier, mode string, v variant) {
		for i, c := range cases {
			// -v changes nothing of the line: checked with one case.
			verbosities := []bool{false}
			if i == 0 {
				verbosities = append(verbosities, true)
			}
			for _, verbose := range verbosities {
				args := []string{"--syscall-mode=" + tier, mode, root, "-b", host + ":/var:ro"}
				if verbose {
					args = append(args, "-v")
				}
				opts := runOpts{Unpriv: v.unpriv, Args: append(args, "--", c.cmd, "arg")}
				out, errOut, code := runKbox(t, opts)
				var said []string
				for _, l := range lines(errOut) {
					if l == c.line || !verbose && !strings.HasPrefix(l, "kbox: warning: ") {
						said = append(said, l)
					}
				}
				if code != c.code || out != "" || len(said) != 1 || said[0] != c.line {
					t.Errorf("%s: exit status %d, want %d; want exactly one line %q\nstdout:\n%s\nstderr:\n%s",
						cmdline(opts), code, c.code, c.line, out, errOut)
				}
			}
		}
		// The guest's own execs: the errno, and a -v line each.
		opts := runOpts{Unpriv: v.unpriv, Args: []string{"--syscall-mode=" + tier, mode, root, "-b", host + ":/var:ro", "-v", "--",
			"/bin/sc", "exec", "/var/f/garbage", ",", "exec", "/var/f/nointerp", ",", "exec", "/var/f/badinterp", ",",
			"exec", "/var/f/perminterp", ",", "exec", "/var/f/none"}}
		out, errOut, code := runKbox(t, opts)
		want := "exec: err ENOEXEC\nexec: err ENOENT\nexec: err ENOEXEC\nexec: err EACCES\nexec: err ENOENT\n"
		var said []string
		for _, l := range lines(errOut) {
			if pidLine.MatchString(l) {
				said = append(said, "kbox: "+pidLine.ReplaceAllString(l, ""))
			}
		}
		// No line for a path that does not exist (a PATH search's misses).
		wantSaid := []string{cases[0].line, cases[1].line, cases[2].line, cases[3].line}
		if code != 0 || out != want || strings.Join(said, "\n") != strings.Join(wantSaid, "\n") {
			t.Errorf("%s: exit status %d\nstdout:\n%s\nwant:\n%s\n-v lines:\n%s\nwant:\n%s\nstderr:\n%s", cmdline(opts), code, out, want,
				strings.Join(said, "\n"), strings.Join(wantSaid, "\n"), errOut)
		}
	})
}
