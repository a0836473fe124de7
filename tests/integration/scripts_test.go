package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScripts: "#!" scripts run through kbox's trampoline with the argument
// vector Linux builds, nested interpreters work to Linux's depth, and a
// missing or too deep interpreter chain fails the caller's execve.
func TestScripts(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := freshRoot(t, v.uid())
		dir := filepath.Join(root, "var", "s")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{
			"show":  "#!/bin/sh\necho \"show:$0:$#:$*\"\n",
			"opt":   "#!/bin/sh -e\necho \"opt:$-:$0:$1\"\n",
			"n1":    "#!/var/s/show one\n",
			"n2":    "#!/var/s/n1 two\n",
			"n3":    "#!/var/s/n2\n",
			"n4":    "#!/var/s/n3\n",
			"n5":    "#!/var/s/n4\n",
			"nope":  "#!/var/s/missing\n",
			"empty": "#!\n",
		}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		chownTree(t, dir, v.uid())
		script := `cd /var/s; ./show a 'b c'; /var/s/opt x; ./n1 p; ./n4 q; ` +
			`exec /bin/sc exec ./n5 , exec ./nope , exec ./empty , exec /var/s/show z`
		out, errOut, code := runKbox(t, runOpts{Unpriv: v.unpriv, Args: []string{"-r", root, "--", "/bin/sh", "-c", script}})
		want := []string{
			"show:./show:2:a b c",
			"opt:e:/var/s/opt:x",
			"show:/var/s/show:3:one ./n1 p",
			// n4 -> n3 -> n2 -> n1 -> show: five scripts deep, the most
			// Linux runs (checked natively with chroot); n5 is ELOOP.
			"show:/var/s/show:7:one /var/s/n1 two /var/s/n2 /var/s/n3 ./n4 q",
			"exec: err ELOOP",
			"exec: err ENOENT",
			"exec: err ENOEXEC",
			"show:/var/s/show:1:z",
		}
		if code != 0 || strings.Join(lines(out), "\n") != strings.Join(want, "\n") {
			t.Errorf("exit %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", code, out, strings.Join(want, "\n"), errOut)
		}
	})
}
