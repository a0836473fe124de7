package integration

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// traceRecord is the part of a --trace-format=json record the tests read
// (docs/observability.md has the schema).
type traceRecord struct {
	V     int    `json:"v"`
	Type  string `json:"type"`
	Name  string `json:"name"`
	Ret   int64  `json:"ret"`
	Disp  string `json:"disp"`
	Paths []struct {
		Guest string `json:"guest"`
		Host  string `json:"host"`
	} `json:"paths"`
}

// traceDir is a directory the variant's uid can write its trace into
// (t.TempDir's parent is private to root).
func traceDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "kbox-it-trace-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestTraceEveryTier: --trace records the guest's calls in every tier, as
// root and unprivileged: the JSON records name the call, the guest's and
// the host's path and the result; the summary names the tier and counts
// the call; the text format reads like strace and the filter selects by
// class.
func TestTraceEveryTier(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	for _, tier := range testedTiers(t, allTiers) {
		forEachVariant(t, tier+"/", func(t *testing.T, v variant) {
			dir := traceDir(t)
			tf, sf := filepath.Join(dir, "trace.json"), filepath.Join(dir, "summary.json")
			opts := runOpts{Unpriv: v.unpriv, Args: []string{"--syscall-mode=" + tier, "-r", root,
				"--trace=" + tf, "--trace-format=json", "--summary=" + sf, "--", "/bin/cat", "/etc/hostname"}}
			out, errOut, code := runKbox(t, opts)
			if code != 0 || out != "kbox-guest\n" {
				t.Fatalf("%s: exit %d, stdout %q\nstderr:\n%s", cmdline(opts), code, out, errOut)
			}
			f, err := os.Open(tf)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			found, n := false, 0
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				line := sc.Text()
				if strings.HasPrefix(line, "#") {
					continue
				}
				var rec traceRecord
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("not a JSON record: %q: %v", line, err)
				}
				if rec.Type == "header" {
					if rec.V != 1 || !strings.Contains(line, `"tier":"`+tier+`"`) {
						t.Errorf("header %q does not name tier %s", line, tier)
					}
					continue
				}
				if rec.V != 1 || rec.Type != "syscall" || rec.Name == "" {
					t.Errorf("record %q: version %d, type %q, name %q", line, rec.V, rec.Type, rec.Name)
				}
				n++
				if (rec.Name == "openat" || rec.Name == "open") && len(rec.Paths) > 0 && rec.Paths[0].Guest == "/etc/hostname" {
					found = true
					if rec.Ret < 0 || !strings.HasSuffix(rec.Paths[0].Host, "/etc/hostname") || !strings.HasPrefix(rec.Paths[0].Host, root) {
						t.Errorf("open of /etc/hostname: %q", line)
					}
				}
			}
			if !found {
				t.Errorf("no open of /etc/hostname among %d records", n)
			}
			b, err := os.ReadFile(sf)
			if err != nil {
				t.Fatal(err)
			}
			var sum struct {
				Type string `json:"type"`
				Exit struct {
					Code int `json:"code"`
				} `json:"exit"`
				Tier     string `json:"tier"`
				Syscalls struct {
					Total  int `json:"total"`
					ByName map[string]struct {
						Calls int `json:"calls"`
					} `json:"by_name"`
				} `json:"syscalls"`
			}
			if err := json.Unmarshal(b, &sum); err != nil {
				t.Fatalf("summary: %v\n%s", err, b)
			}
			if sum.Type != "summary" || sum.Exit.Code != 0 || sum.Tier != tier || sum.Syscalls.Total < n ||
				sum.Syscalls.ByName["openat"].Calls+sum.Syscalls.ByName["open"].Calls < 1 {
				t.Errorf("summary (type %q, exit %d, tier %q, %d calls for %d records): %s", sum.Type, sum.Exit.Code, sum.Tier, sum.Syscalls.Total, n, b)
			}

			// The text format and a filter: file calls only.
			opts = runOpts{Unpriv: v.unpriv, Args: []string{"--syscall-mode=" + tier, "-r", root,
				"--trace=-", "--trace-filter=file", "--", "/bin/cat", "/etc/hostname"}}
			_, errOut, code = runKbox(t, opts)
			if code != 0 || !strings.Contains(errOut, `openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = 3`) {
				t.Errorf("%s: exit %d, no strace-like openat line:\n%s", cmdline(opts), code, errOut)
			}
			opts.Args[4] = "--trace-filter=process"
			_, errOut, _ = runKbox(t, opts)
			if strings.Contains(errOut, "openat(") {
				t.Errorf("%s: a file call traced under the process filter:\n%s", cmdline(opts), errOut)
			}
		})
	}
}

// TestTraceBadFlags: a trace flag kbox cannot honour is a usage error
// (125) with one clear line, before anything runs.
func TestTraceBadFlags(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--trace=-", "--trace-format=xml"}, "--trace-format must be text or json"},
		{[]string{"--trace=-", "--trace-filter=bogus"}, "--trace-filter"},
		{[]string{"--trace-filter=file"}, "--trace-filter needs --trace"},
		{[]string{"--trace=/nonexistent/dir/trace"}, "trace"},
	} {
		opts := runOpts{Args: append(append([]string{"-r", root}, c.args...), "--", "/bin/true")}
		_, errOut, code := runKbox(t, opts)
		if code != 125 || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q; want 125 and one line with %q", cmdline(opts), code, errOut, c.want)
		}
	}
}
