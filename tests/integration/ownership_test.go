package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecordedOwnership: a (virtual) root guest's chown and set-id bits
// succeed, are recorded in user.containers.override_stat, and read back
// through stat, statx, fstat and in a later run.
func TestRecordedOwnership(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := freshRoot(t, v.uid())
		dir := filepath.Join(root, "var", "own")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		chownTree(t, dir, v.uid())
		script := `cd /var/own && echo x > f && mkdir d && chown 1000:1001 f && chown 5:6 d && chmod 4755 f && ` +
			`exec /bin/sc stat f , statx cwd d 0 , open f O_RDONLY , fstat @3 , chown f -1 7 , stat f`
		out, errOut, code := runKbox(t, runOpts{Unpriv: v.unpriv, Args: []string{"-0", "-r", root, "--", "/bin/sh", "-c", script}})
		want := []string{
			"stat: ok type=reg mode=4755 uid=1000 gid=1001 *",
			"statx: ok type=dir mode=0755 uid=5 gid=6 *",
			"open: ok *",
			"fstat: ok type=reg mode=4755 uid=1000 gid=1001 *",
			"chown: ok 0",
			// chown clears set-id bits of a file, as on Linux.
			"stat: ok type=reg mode=0755 uid=1000 gid=7 *",
		}
		got := lines(out)
		if code != 0 || len(got) != len(want) {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		for i, w := range want {
			if prefix, ok := strings.CutSuffix(w, "*"); ok && strings.HasPrefix(got[i], prefix) || got[i] == w {
				continue
			}
			t.Errorf("line %d: got %q, want %q", i+1, got[i], w)
		}
		// The record persists in the file's extended attribute.
		b := make([]byte, 64)
		n, err := getxattr(filepath.Join(dir, "f"), "user.containers.override_stat", b)
		if err != nil {
			t.Skipf("no user xattrs on the test filesystem: %v", err)
		}
		if rec := string(b[:n]); rec != "1000:7:0755:file" {
			t.Errorf("recorded %q, want 1000:7:0755:file", rec)
		}
		out, _, _ = runKbox(t, runOpts{Unpriv: v.unpriv, Args: []string{"-0", "-r", root, "--", "/bin/stat", "-c", "%u:%g:%a", "/var/own/d"}})
		if strings.TrimSpace(out) != "5:6:755" {
			t.Errorf("second run: stat d = %q, want 5:6:755", out)
		}
	})
}
