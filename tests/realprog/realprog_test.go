package realprog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/tests/fixture"
)

// unprivUID is the uid (and gid) of the unprivileged kbox variant.
const unprivUID = 65534

// runTimeout bounds one invocation of a task's script.
const runTimeout = 60 * time.Second

// workBase holds the per-variant copies of the root and the kbox binary.
func workBase() string {
	if p := os.Getenv("KBOX_REALPROG_WORK"); p != "" {
		return filepath.Clean(p)
	}
	return "/var/tmp/kbox-realprog-work"
}

// variant is one way of running a task.
type variant struct {
	name string
	root string // its own copy of the Debian root
	// command returns the host command that runs script in the root.
	command func(root, script string) []string
}

// result is one run of one task in one variant.
type result struct {
	ran      bool   // false: not run (skipped: reason in out)
	code     int    // exit status (128+sig for a signal, -1: could not run)
	out      string // normalised stdout of all the task's invocations
	errOut   string // stderr (not compared)
	duration time.Duration
}

func TestRealPrograms(t *testing.T) {
	if os.Getenv("KBOX_REALPROG") != "1" {
		t.Skip("the real-programs suite runs only with KBOX_REALPROG=1 (scripts/realprog.sh)")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("the Debian root is built for amd64")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the real-programs suite must run as root (native runs use chroot; the unprivileged variant uses setpriv)")
	}
	// Descriptors inherited without close-on-exec (from whatever started
	// go test) would reach the native runs and show in /dev/fd.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		t.Fatalf("close_range: %v", err)
	}
	root, err := ensureRoot(t.Logf)
	if errors.Is(err, errNoNetwork) {
		msg := "\n*** REAL-PROGRAMS SUITE SKIPPED: the Debian root is not built yet and " + err.Error() +
			"\n*** nothing was tested; fix the network (or set KBOX_REALPROG_ROOT to a built root) and rerun ***\n"
		fmt.Fprint(os.Stderr, msg)
		t.Skip(msg)
	}
	if err != nil {
		t.Fatalf("the Debian root: %v", err)
	}
	for _, tool := range []string{"setpriv", "unshare", "chroot", "cp", "chown", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err)
		}
	}
	net := networkReachable()
	if !net {
		fmt.Fprintln(os.Stderr, "\n*** realprog: the network is unreachable: the tasks marked net are NOT run ***")
	}

	base := workBase()
	kbox := os.Getenv("KBOX_BIN")
	if kbox == "" {
		kbox = buildKbox(t, base)
	}
	variants := prepareVariants(t, root, base, kbox)

	only := os.Getenv("KBOX_REALPROG_ONLY") // a regexp-free comma list of task names, for reruns
	results := map[string][]result{}
	var order []string
	for _, tk := range tasks {
		if only != "" && !containsWord(only, tk.name) {
			continue
		}
		order = append(order, tk.name)
		// Which variant goes first rotates from task to task, so that
		// warming caches (the compiler's, python's) favours none.
		rs := make([]result, len(variants))
		for j := range variants {
			k := (j + len(order)) % len(variants)
			rs[k] = runTask(variants[k], tk, net)
		}
		results[tk.name] = rs
		judge(t, tk, variants, rs)
	}
	report := renderReport(order, variants, results)
	t.Log("\n" + report)
	if p := os.Getenv("KBOX_REALPROG_REPORT"); p != "" {
		if err := os.WriteFile(p, []byte(report), 0o644); err != nil {
			t.Errorf("writing the report: %v", err)
		}
	}
}

func containsWord(list, w string) bool {
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == w {
			return true
		}
	}
	return false
}

// buildKbox builds kbox (PIE, every tier) into base, which the unprivileged
// variant can traverse.
func buildKbox(t *testing.T, base string) string {
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o755)
	bin := filepath.Join(base, "bin", "kbox")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(fixture.RepoRoot(), "scripts/build-kbox"), "-o", bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building kbox: %v\n%s", err, out)
	}
	return bin
}

// prepareVariants makes one fresh copy of root per variant (the tasks are
// written to be independent of each other: each works in its own
// directory, names its own users and packages), the unprivileged one owned
// by unprivUID.
func prepareVariants(t *testing.T, root, base, kbox string) []variant {
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C", "TERM=dumb"}
	mk := func(name string) string {
		dir := filepath.Join(base, "root-"+name)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatalf("removing the old copy %s: %v", dir, err)
		}
		start := time.Now()
		if out, err := exec.Command("cp", "-a", "--reflink=auto", root, dir).CombinedOutput(); err != nil {
			t.Fatalf("copying the root to %s: %v\n%s", dir, err, out)
		}
		t.Logf("copied the root to %s in %v", dir, time.Since(start).Round(time.Millisecond))
		return dir
	}
	native := variant{name: "native", root: mk("native"), command: func(r, script string) []string {
		// A private mount namespace with /proc, the host's /dev and a
		// private /tmp, as kbox -S gives its guest.
		setup := `mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && mount -t tmpfs -o mode=1777 tmpfs "$1/tmp" && r=$1; shift; exec chroot "$r" /usr/bin/env -i "$@"`
		return append([]string{"unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", setup, "sh", r}, append(env, "/bin/sh", "-c", script)...)
	}}
	kb := variant{name: "kbox", root: mk("kbox"), command: func(r, script string) []string {
		return append(append([]string{"/usr/bin/env", "-i"}, env...), kbox, "-S", r, "--", "/bin/sh", "-c", script)
	}}
	ku := variant{name: "kbox-u", root: mk("kbox-u"), command: func(r, script string) []string {
		return append(append([]string{"setpriv", fmt.Sprintf("--reuid=%d", unprivUID), fmt.Sprintf("--regid=%d", unprivUID), "--clear-groups", "/usr/bin/env", "-i"}, env...),
			kbox, "-S", r, "--", "/bin/sh", "-c", script)
	}}
	if out, err := exec.Command("chown", "-hR", fmt.Sprintf("%d:%d", unprivUID, unprivUID), ku.root).CombinedOutput(); err != nil {
		t.Fatalf("chown of the unprivileged copy: %v\n%s", err, out)
	}
	return []variant{native, kb, ku}
}

// runTask runs each of the task's invocations in v, in the task's own
// directory /srv/rp/<name>, and collects the outputs.
func runTask(v variant, tk task, net bool) result {
	if tk.net && !net {
		return result{out: "network unreachable"}
	}
	if tk.needs != "" {
		if _, err := os.Lstat(filepath.Join(v.root, tk.needs)); err != nil {
			return result{out: tk.needs + " not in the root"}
		}
	}
	res := result{ran: true}
	var out, errOut bytes.Buffer
	for i, script := range tk.runs {
		full := "umask 022; mkdir -p /srv/rp/" + tk.name + " && cd /srv/rp/" + tk.name + " || exit 99\n" + script
		argv := v.command(v.root, full)
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		var so, se bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		start := time.Now()
		err := cmd.Run()
		res.duration += time.Since(start)
		timedOut := ctx.Err() == context.DeadlineExceeded
		cancel()
		code := 0
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			} else {
				code = ee.ExitCode()
			}
		default:
			code = -1
			se.WriteString("\n[realprog: " + err.Error() + "]")
		}
		if timedOut {
			se.WriteString(fmt.Sprintf("\n[realprog: timed out after %v]", runTimeout))
		}
		if len(tk.runs) > 1 {
			fmt.Fprintf(&out, "--- run %d\n", i+1)
		}
		out.WriteString(normalise(so.String()))
		errOut.Write(se.Bytes())
		res.code = code
		if code != 0 {
			break
		}
	}
	res.out, res.errOut = out.String(), errOut.String()
	return res
}

// normalise drops trailing blanks and carriage returns, which vary with
// nothing the tasks check.
func normalise(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r", ""), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	return strings.Join(lines, "\n")
}

// verdict compares a kbox run with the native one.
func verdict(native, r result) string {
	switch {
	case !r.ran:
		return "skip"
	case r.code == native.code && r.out == native.out:
		return "pass"
	}
	return "FAIL"
}

// judge reports a task's failures: a native run that does not exit 0 (the
// task itself is broken), and every kbox run that differs from native.
func judge(t *testing.T, tk task, variants []variant, rs []result) {
	t.Helper()
	n := rs[0]
	if !n.ran {
		t.Logf("%s: not run: %s", tk.name, n.out)
		return
	}
	if n.code != 0 {
		t.Errorf("%s: native run exited %d (the task must pass natively)\nstdout:\n%s\nstderr:\n%s", tk.name, n.code, tail(n.out), tail(n.errOut))
	}
	for i, r := range rs[1:] {
		if verdict(n, r) != "FAIL" {
			continue
		}
		t.Errorf("%s: %s: exit %d (native %d)%s\nstderr:\n%s", tk.name, variants[i+1].name, r.code, n.code, outDiff(n.out, r.out), tail(r.errOut))
	}
}

func outDiff(want, got string) string {
	if want == got {
		return ""
	}
	return "\nstdout differs; native:\n" + tail(want) + "\nkbox:\n" + tail(got)
}

func tail(s string) string {
	const max = 1500
	if len(s) > max {
		return "..." + s[len(s)-max:]
	}
	return s
}

// renderReport is the markdown table of tasks x variants with times, the
// pass counts and the total time ratio kbox/native over the tasks both
// ran.
func renderReport(order []string, variants []variant, results map[string][]result) string {
	var b strings.Builder
	b.WriteString("| task |")
	for _, v := range variants {
		b.WriteString(" " + v.name + " |")
	}
	b.WriteString("\n|---|")
	for range variants {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	pass := make([]int, len(variants))
	ran := make([]int, len(variants))
	total := make([]time.Duration, len(variants))
	for _, name := range order {
		rs := results[name]
		fmt.Fprintf(&b, "| %s |", name)
		for i, r := range rs {
			var cell string
			switch {
			case !r.ran:
				cell = "skipped (" + r.out + ")"
			case i == 0 && r.code == 0:
				cell = fmt.Sprintf("ok %.2fs", r.duration.Seconds())
			case i == 0:
				cell = fmt.Sprintf("**exit %d** %.2fs", r.code, r.duration.Seconds())
			default:
				v := verdict(rs[0], r)
				if v == "pass" {
					cell = fmt.Sprintf("pass %.2fs", r.duration.Seconds())
				} else {
					what := fmt.Sprintf("exit %d", r.code)
					if r.code == rs[0].code {
						what = "output differs"
					}
					cell = fmt.Sprintf("**FAIL** (%s) %.2fs", what, r.duration.Seconds())
				}
			}
			b.WriteString(" " + cell + " |")
			if r.ran && rs[0].ran {
				ran[i]++
				total[i] += r.duration
				if (i == 0 && r.code == 0) || (i > 0 && verdict(rs[0], r) == "pass") {
					pass[i]++
				}
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("| **passed** |")
	for i := range variants {
		fmt.Fprintf(&b, " %d of %d |", pass[i], ran[i])
	}
	b.WriteString("\n| **total time** |")
	for i := range variants {
		fmt.Fprintf(&b, " %.1fs |", total[i].Seconds())
	}
	b.WriteString("\n")
	// The same ratio over the tasks that passed in every variant: a
	// failure that hangs until the timeout or dies early says nothing
	// about speed.
	both := make([]time.Duration, len(variants))
	nboth := 0
	for _, name := range order {
		rs := results[name]
		ok := rs[0].ran && rs[0].code == 0
		for _, r := range rs[1:] {
			ok = ok && verdict(rs[0], r) == "pass"
		}
		if !ok {
			continue
		}
		nboth++
		for i, r := range rs {
			both[i] += r.duration
		}
	}
	if total[0] > 0 {
		b.WriteString("\nTime ratio over the tasks every variant ran: ")
		for i := 1; i < len(variants); i++ {
			if i > 1 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s/native %.2f", variants[i].name, total[i].Seconds()/total[0].Seconds())
		}
		b.WriteString(".\n")
	}
	if both[0] > 0 {
		fmt.Fprintf(&b, "Over the %d tasks that passed in every variant (native %.1fs): ", nboth, both[0].Seconds())
		for i := 1; i < len(variants); i++ {
			if i > 1 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s/native %.2f", variants[i].name, both[i].Seconds()/both[0].Seconds())
		}
		b.WriteString(".\n")
	}
	return b.String()
}
