package integration

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestScriptsEveryTier: one "#!" parser (internal/loader/script.go) for
// every tier, so each tier runs or refuses the same scripts with the same
// argument vector and errno, as Linux does (issue 17 item 9: a script
// without a trailing newline ran under seccomp and failed under
// trap/rewrite; the nesting limits were 5 and 4).
func TestScriptsEveryTier(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"nonl":     "#!/bin/echo",            // no newline at all: runs
		"arg":      "#!/bin/echo  a  b \t\n", // one argument "a  b"
		"nonlarg":  "#!/bin/echo x\t",        // no newline: the tab stays
		"emptyarg": "#!/bin/echo \t\x00zz\n", // an empty argument
		"s0":       "#!/bin/echo s0\n",
		"n1":       "#!/var/s/s0\n",
		"n2":       "#!/var/s/n1\n",
		"n3":       "#!/var/s/n2\n",
		"n4":       "#!/var/s/n3\n", // five scripts: the most Linux runs
		"n5":       "#!/var/s/n4\n", // six: ELOOP
		"missing":  "#!/var/s/none\n",
		"crlf":     "#!/bin/echo\r\n",
		"noname":   "#!\n",
		"empty":    "#!",
		"long":     "#!/" + strings.Repeat("a", 300),
		"notexec":  "#!/etc/passwd\n",
		"garbage":  "#!/var/s/junk\n",
		"junk":     "this is no program\n\x00\x01\x02",
		"dir":      "#!/var\n",
	}
	type run struct {
		argv []string
		want string
	}
	runs := []run{
		{[]string{"/bin/sc", "exec", "/var/s/n5", ",", "exec", "/var/s/missing", ",", "exec", "/var/s/crlf", ",",
			"exec", "/var/s/noname", ",", "exec", "/var/s/empty", ",", "exec", "/var/s/long", ",",
			"exec", "/var/s/notexec", ",", "exec", "/var/s/garbage", ",", "exec", "/var/s/dir", ",",
			"exec", "/var/s/nonl", "p", "q"},
			"exec: err ELOOP\nexec: err ENOENT\nexec: err ENOENT\nexec: err ENOEXEC\nexec: err EACCES\n" +
				"exec: err ENOEXEC\nexec: err EACCES\nexec: err ENOEXEC\nexec: err EACCES\n/var/s/nonl p q\n"},
		{[]string{"/bin/sc", "exec", "/var/s/arg", "z"}, "a  b /var/s/arg z\n"},
		{[]string{"/bin/sc", "exec", "/var/s/nonlarg"}, "x\t /var/s/nonlarg\n"},
		{[]string{"/bin/sc", "exec", "/var/s/emptyarg"}, " /var/s/emptyarg\n"},
		{[]string{"/bin/sc", "exec", "/var/s/n4", "q"}, "s0 /var/s/s0 /var/s/n1 /var/s/n2 /var/s/n3 /var/s/n4 q\n"},
	}
	// The scripts are in a host directory mounted read-only at the
	// guest's /var over the shared fixture root.
	host := mkTempDir(t, "kbox-it-scripts-")
	for name, body := range files {
		writeFile(t, filepath.Join(host, "s", name), body, 0o755)
	}
	root := fixtureRoot(t)
	forEachTierModeVariant(t, func(t *testing.T, tier, mode string, v variant) {
		for _, r := range runs {
			opts := runOpts{Unpriv: v.unpriv, Args: append([]string{"--syscall-mode=" + tier, mode, root, "-b", host + ":/var:ro", "--"}, r.argv...)}
			out, errOut, code := runKbox(t, opts)
			if code != 0 || out != r.want {
				t.Errorf("%s: exit status %d\nstdout:\n%q\nwant:\n%q\nstderr:\n%s", cmdline(opts), code, out, r.want, errOut)
			}
		}
	})
}
