package integration

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestProcView: with the host's /proc mounted (-S), the guest lists and
// opens only its own processes; other processes' /proc entries do not
// exist and their magic links are refused.
func TestProcView(t *testing.T) {
	t.Parallel()
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			if v.unpriv {
				requireUnpriv(t)
			}
			root := freshRoot(t, v.uid())
			host := strconv.Itoa(os.Getpid()) // the test process: never a guest
			script := `sleep 2 & bg=$!
for p in $(ls /proc | grep '^[0-9]*$'); do
  case $p in $$|$bg) echo "listed-guest";; *) [ -d /proc/$p ] && echo "listed-other $p";; esac
done | sort -u
ls /proc | grep -qx ` + host + ` && echo "host-listed" || echo "host-hidden"
[ -e /proc/` + host + ` ] && echo "host-exists" || echo "host-absent"
cat /proc/1/status >/dev/null 2>&1 && echo "init-readable" || echo "init-absent"
readlink /proc/` + host + `/root >/dev/null 2>&1 && echo "root-link" || echo "no-root-link"
[ "$(readlink /proc/self/root)" = / ] && echo "self-root-ok"
[ -r /proc/$bg/status ] && echo "bg-visible"
kill $bg`
			out, errOut, code := runKbox(t, runOpts{Unpriv: v.unpriv, Args: []string{"-S", root, "--", "/bin/sh", "-c", script}})
			got := lines(out)
			// ls and sort may also appear as guest processes (listed-other
			// lines for them are fine), but never a host pid.
			want := []string{"host-hidden", "host-absent", "init-absent", "no-root-link", "self-root-ok", "bg-visible"}
			joined := strings.Join(got, "\n")
			for _, w := range want {
				if !strings.Contains(joined, w) {
					t.Errorf("missing %q\nstdout:\n%s\nstderr:\n%s", w, out, errOut)
				}
			}
			if !strings.Contains(joined, "listed-guest") {
				t.Errorf("the guest's own processes are not listed:\n%s", out)
			}
			for _, l := range got {
				if strings.HasPrefix(l, "listed-other ") {
					pid, _ := strconv.Atoi(strings.TrimPrefix(l, "listed-other "))
					if pid == 1 || pid == os.Getpid() || pid == os.Getppid() {
						t.Errorf("a host process is listed: %s", l)
					}
				}
			}
			if code != 0 {
				t.Errorf("exit %d, stderr:\n%s", code, errOut)
			}
		})
	}
}
