package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// webKbox is a kbox started with --web in the background.
type webKbox struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	stderr strings.Builder
	stdout strings.Builder // read it once done is closed
	done   chan struct{}
	code   int
}

func (k *webKbox) errText() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stderr.String()
}

var webURL = regexp.MustCompile(`kbox: web: dashboard at (http://127\.0\.0\.1:[0-9]+/)`)

// startWebKbox starts kbox with args (which include --web and -v) and
// waits for the dashboard's URL on its stderr. The guest is killed and
// kbox stopped at the end of the test.
func startWebKbox(t *testing.T, unpriv bool, args ...string) *webKbox {
	t.Helper()
	argv := append([]string{kboxBin}, args...)
	if unpriv && isRoot() {
		sp := findSetpriv()
		if sp == "" {
			t.Skip("unprivileged variant skipped: setpriv(1) is not installed")
		}
		argv = asUnprivileged(argv)
	}
	k := &webKbox{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	k.cmd.Env = baseEnv()
	k.cmd.Dir = "/"
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	k.cmd.Stdout = &k.stdout
	pr, err := k.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		br := bufio.NewReader(pr)
		for {
			line, err := br.ReadString('\n')
			k.mu.Lock()
			k.stderr.WriteString(line)
			k.mu.Unlock()
			if m := webURL.FindStringSubmatch(line); m != nil {
				urlc <- m[1]
			}
			if err != nil {
				break
			}
		}
		err := k.cmd.Wait()
		k.code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			k.code = ee.ExitCode()
		}
		close(k.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		<-k.done
	})
	select {
	case k.url = <-urlc:
	case <-k.done:
		t.Fatalf("kbox %s ended before serving: exit %d\n%s", shellQuote(args), k.code, k.errText())
	case <-time.After(30 * time.Second):
		t.Fatalf("kbox %s: no dashboard URL on stderr after 30 s\n%s", shellQuote(args), k.errText())
	}
	return k
}

// webSnapshot is the part of /api/snapshot the tests read.
type webSnapshot struct {
	Tier    string `json:"tier"`
	Running bool   `json:"running"`
	Exit    *struct {
		Code   *int    `json:"code"`
		Signal *string `json:"signal"`
	} `json:"exit"`
	Calls uint64 `json:"calls"`
	Rate  struct {
		Families []string            `json:"families"`
		Series   []map[string]uint64 `json:"by_family"`
	} `json:"rate"`
	Latency []struct {
		Name  string `json:"name"`
		Calls uint64 `json:"calls"`
		P50   int64  `json:"p50_ns"`
		P99   int64  `json:"p99_ns"`
	} `json:"latency"`
	ENOSYS    map[string]uint64 `json:"enosys"`
	Processes []struct {
		Pid   int      `json:"pid"`
		PPid  int      `json:"ppid"`
		Comm  string   `json:"comm"`
		Argv  []string `json:"argv"`
		RSSKB int64    `json:"rss_kb"`
		UserS float64  `json:"cpu_user_s"`
		SysS  float64  `json:"cpu_sys_s"`
	} `json:"processes"`
	Events struct {
		LastSeq         uint64 `json:"last_seq"`
		ClientDropped   uint64 `json:"client_dropped"`
		UpstreamDropped uint64 `json:"upstream_dropped"`
		Sampled         uint64 `json:"sampled_out"`
	} `json:"events"`
}

func getJSONURL(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// waitSnapshot polls /api/snapshot until ok accepts it.
func waitSnapshot(t *testing.T, k *webKbox, what string, ok func(*webSnapshot) bool) *webSnapshot {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var s webSnapshot
		getJSONURL(t, k.url+"api/snapshot", &s)
		if ok(&s) {
			return &s
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(s)
			t.Fatalf("no snapshot with %s after 60 s; last %s\nstderr:\n%s", what, b, k.errText())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sseRead reads n "syscall" events (and any others seen before) from an
// /api/events stream.
type sseMsg struct{ id, event, data string }

func sseRead(t *testing.T, br *bufio.Reader, n int, until string) []sseMsg {
	t.Helper()
	var out []sseMsg
	var cur sseMsg
	got := 0
	for got < n {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading events: %v (after %d)", err, len(out))
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if cur.event != "" {
				out = append(out, cur)
				if cur.event == "syscall" {
					got++
				}
				if cur.event == until {
					return out
				}
			}
			cur = sseMsg{}
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[6:]
		}
	}
	return out
}

func openEvents(t *testing.T, url, lastID string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), "GET", url+"api/events", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, bufio.NewReader(resp.Body)
}

// guestPids are the processes the snapshot shows running prog.
func guestPids(s *webSnapshot, comm string) []int {
	var out []int
	for _, p := range s.Processes {
		if p.Comm == comm {
			out = append(out, p.Pid)
		}
	}
	return out
}

// webGuest is the guest the web tests run: a stat loop, two processes
// in the seccomp tier (a shell and a background bench, then bench), one
// in the in-process tiers (which run single-process programs).
func webGuest(tier string, n int) []string {
	bench := []string{"/bin/bench", "-n", strconv.Itoa(n), "stat"}
	if tier == "seccomp" {
		return []string{"/bin/sh", "-c", fmt.Sprintf("/bin/bench -n %d stat & /bin/bench -n %d stat; wait", n, n)}
	}
	return bench
}

// TestWebEveryTier: --web serves, in every tier and as root and
// unprivileged, a snapshot whose rates, latencies and process tree show
// the running guest (a stat loop: read from the host's /proc), an event
// stream of its records that resumes after Last-Event-ID, and after the
// guest ends its exit, in the snapshot, the stream's end event and the
// summary.
func TestWebEveryTier(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	for _, tier := range allTiers {
		forEachVariant(t, tier+"/", func(t *testing.T, v variant) {
			args := append([]string{"--syscall-mode=" + tier, "-R", root, "-v", "--web=127.0.0.1:0", "--web-linger=2m", "--"},
				webGuest(tier, 100_000_000)...)
			k := startWebKbox(t, v.unpriv, args...)
			s := waitSnapshot(t, k, "bench running and its stat calls counted", func(s *webSnapshot) bool {
				lat := false
				for _, l := range s.Latency {
					lat = lat || (l.Name == "newfstatat" && l.Calls > 100 && l.P50 > 0 && l.P99 >= l.P50)
				}
				rate := false
				for _, m := range s.Rate.Series {
					rate = rate || m["path"] > 0
				}
				return s.Running && lat && rate && len(guestPids(s, "bench")) >= 1
			})
			if s.Tier != tier {
				t.Errorf("snapshot tier %q, want %q", s.Tier, tier)
			}
			if tier == "seccomp" {
				s = waitSnapshot(t, k, "two bench processes under the shell", func(s *webSnapshot) bool {
					return len(guestPids(s, "bench")) == 2
				})
				var sh int
				for _, p := range s.Processes {
					if p.Comm == "sh" {
						sh = p.Pid
					}
				}
				for _, p := range s.Processes {
					if p.Comm == "bench" && p.PPid != sh {
						t.Errorf("bench %d: parent %d, want the shell %d", p.Pid, p.PPid, sh)
					}
				}
			}
			for _, p := range s.Processes {
				if p.Comm == "bench" && (p.RSSKB <= 0 || len(p.Argv) == 0) {
					t.Errorf("process %+v: no RSS or argv", p)
				}
			}
			// The events: the guest's stat calls, JSON v1 records.
			_, br := openEvents(t, k.url, "")
			msgs := sseRead(t, br, 50, "")
			var last uint64
			stats := 0
			for _, m := range msgs {
				if m.event != "syscall" {
					continue
				}
				var r struct {
					V     int    `json:"v"`
					Seq   uint64 `json:"seq"`
					Name  string `json:"name"`
					Paths []struct {
						Guest string `json:"guest"`
					} `json:"paths"`
				}
				if err := json.Unmarshal([]byte(m.data), &r); err != nil || r.V != 1 || strconv.FormatUint(r.Seq, 10) != m.id {
					t.Fatalf("event %+v: %v", m, err)
				}
				if r.Seq <= last {
					t.Errorf("seq %d after %d", r.Seq, last)
				}
				last = r.Seq
				if r.Name == "newfstatat" && len(r.Paths) == 1 && r.Paths[0].Guest == "/etc/hostname" {
					stats++
				}
			}
			if stats == 0 {
				t.Errorf("no newfstatat(\"/etc/hostname\") among %d events: %+v", len(msgs), msgs[:min(len(msgs), 5)])
			}
			// Resumed after the last one read: only later events.
			_, br2 := openEvents(t, k.url, strconv.FormatUint(last, 10))
			for _, m := range sseRead(t, br2, 5, "") {
				if m.event == "syscall" {
					if id, _ := strconv.ParseUint(m.id, 10, 64); id <= last {
						t.Errorf("resumed after %d: got %d", last, id)
					}
				}
			}
			// The guest ends (killed: it would loop for minutes).
			for _, pid := range guestPids(s, "bench") {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			end := sseRead(t, br2, 1<<30, "end")
			if e := end[len(end)-1]; e.event != "end" || !strings.Contains(e.data, `"exit":{`) {
				t.Errorf("stream end %+v", e)
			}
			s = waitSnapshot(t, k, "the guest ended", func(s *webSnapshot) bool { return !s.Running })
			if s.Exit == nil || (s.Exit.Code == nil && s.Exit.Signal == nil) {
				t.Errorf("ended without an exit: %+v", s.Exit)
			}
			var sum struct {
				Type     string `json:"type"`
				Tier     string `json:"tier"`
				Syscalls struct {
					ByName map[string]struct {
						Calls uint64 `json:"calls"`
					} `json:"by_name"`
				} `json:"syscalls"`
			}
			getJSONURL(t, k.url+"api/summary", &sum)
			if sum.Type != "summary" || sum.Tier != tier || sum.Syscalls.ByName["newfstatat"].Calls < 100 {
				t.Errorf("summary %+v", sum)
			}
			var enosys []any
			getJSONURL(t, k.url+"api/enosys", &enosys)
			// --web-linger keeps serving until SIGTERM.
			select {
			case <-k.done:
				t.Fatalf("kbox ended during --web-linger\n%s", k.errText())
			case <-time.After(300 * time.Millisecond):
			}
			k.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-k.done:
			case <-time.After(20 * time.Second):
				t.Fatalf("kbox did not end at SIGTERM during --web-linger\n%s", k.errText())
			}
		})
	}
}

// TestWebRefusesNonLoopback: --web on every address needs
// --web-bind-any; a bad address is a usage error (125) before anything
// runs.
func TestWebRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--web=0.0.0.0:0"}, "not a loopback address"},
		{[]string{"--web=:0"}, "not a loopback address"},
		{[]string{"--web=127.0.0.1:x"}, "bad port"},
		{[]string{"--web-bind-any"}, "need --web"},
		{[]string{"--web-linger=1s"}, "need --web"},
	} {
		_, errOut, code := runKbox(t, runOpts{Args: append(c.args, "--", "/bin/true")})
		if code != 125 || !strings.Contains(errOut, c.want) {
			t.Errorf("kbox %s: exit %d, stderr %q; want 125 and %q", shellQuote(c.args), code, errOut, c.want)
		}
	}
	// With --web-bind-any it serves (on every address: port 0).
	out, errOut, code := runKbox(t, runOpts{Args: []string{"-v", "--web=0.0.0.0:0", "--web-bind-any", "--", "/bin/echo", "hi"}})
	if code != 0 || out != "hi\n" || !strings.Contains(errOut, "kbox: web: dashboard at http://127.0.0.1:") || !regexp.MustCompile(`web: listening on (0\.0\.0\.0|\[::\]):[0-9]+ \(--web-bind-any\)`).MatchString(errOut) {
		t.Errorf("--web-bind-any: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// chromiumPath is Debian's chromium, or "" when it is not installed.
func chromiumPath() string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// TestWebDashboardBrowser drives the dashboard in a real browser
// (Debian's chromium, headless, every request outside loopback sent to a
// dead proxy: chromium reaches loopback directly) while a guest runs: the page loads from kbox alone, the
// rate and latency charts draw, the process tree shows the guest's
// processes, the feed fills and its filter works, and all of it updates
// while the guest runs; then the page shows the guest's end.
// KBOX_WEB_SCREENSHOT=FILE saves a screenshot (docs/dashboard.png).
func TestWebDashboardBrowser(t *testing.T) {
	t.Parallel()
	chrome := chromiumPath()
	if chrome == "" {
		t.Skip("SKIPPED: the dashboard's browser test needs Debian's chromium (apt-get install chromium; scripts/test.sh installs it)")
	}
	root := fixtureRoot(t)
	k := startWebKbox(t, isRoot(), "--syscall-mode=seccomp", "-R", root, "-v", "--web=127.0.0.1:0", "--web-linger=2m", "--",
		"/bin/sh", "-c", "/bin/bench -n 100000000 stat & /bin/bench -n 100000000 stat; wait")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 1400),
		chromedp.Flag("proxy-server", "127.0.0.1:9"))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(k.url)); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	step := func(what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		if err := chromedp.Do(c, a); err != nil {
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s: %v\npage:\n%s\nkbox stderr:\n%s", what, err, html, k.errText())
		}
	}
	eval := func(expr string) float64 {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	step("the charts, the process tree and the feed", chromedp.Steps(
		chromedp.Poll[chromedp.Void](`(+document.body.dataset.snapshots >= 2) && +document.getElementById("rate").dataset.lines > 0 &&
			+document.getElementById("latency").dataset.rows > 0 &&
			document.querySelectorAll('#procs tr[data-comm="bench"]').length == 2 &&
			document.querySelectorAll('#procs tr[data-comm="sh"]').length == 1 &&
			document.querySelectorAll("#feed li").length > 10`, chromedp.WithPollingTimeout(80*time.Second))))
	calls0 := eval(`+document.getElementById("calls").textContent`)
	seq0 := eval(`+document.querySelector("#feed li").dataset.seq`)
	snaps0 := eval(`+document.body.dataset.snapshots`)
	step("updates while the guest runs", chromedp.Poll[chromedp.Void](fmt.Sprintf(`+document.getElementById("calls").textContent > %v &&
		+document.querySelector("#feed li").dataset.seq > %v && +document.body.dataset.snapshots > %v + 1`, calls0, seq0, snaps0),
		chromedp.WithPollingTimeout(30*time.Second)))
	// The filter: every visible line names the call; a word nothing has
	// hides every line.
	vis := `[...document.querySelectorAll("#feed li")].filter(li => !li.hidden)`
	setFilter := func(s string) {
		eval(fmt.Sprintf(`(() => { const f = document.getElementById("filter"); f.value = %q; f.dispatchEvent(new Event("input")); return 0 })()`, s))
	}
	setFilter("newfstatat hostname")
	if n, bad := eval(vis+`.length`), eval(vis+`.filter(li => !li.textContent.includes("newfstatat")).length`); n == 0 || bad != 0 {
		t.Errorf("filter newfstatat: %v lines shown, %v of them other calls", n, bad)
	}
	setFilter("no-such-call-anywhere")
	if n := eval(vis + `.length`); n != 0 {
		t.Errorf("filter matching nothing: %v lines shown", n)
	}
	setFilter("")
	// Nothing came from anywhere but kbox.
	if n := eval(`performance.getEntriesByType("resource").filter(e => !e.name.startsWith(location.origin)).length`); n != 0 {
		t.Errorf("%v resources from outside the dashboard's origin", n)
	}
	if f := os.Getenv("KBOX_WEB_SCREENSHOT"); f != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The guest ends: the page says so.
	var s webSnapshot
	getJSONURL(t, k.url+"api/snapshot", &s)
	for _, pid := range guestPids(&s, "bench") {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	step("the guest's end", chromedp.Poll[chromedp.Void](`document.getElementById("status").textContent.startsWith("ended") &&
		document.querySelectorAll('#procs tr[data-comm="bench"]').length == 0 &&
		document.getElementById("feedinfo").textContent.includes("guest ended")`, chromedp.WithPollingTimeout(60*time.Second)))
}

// TestTraceFast: in the rewrite tier the fast path's calls are counted,
// not traced; with --trace-fast the fast path is off and each of them is
// a traced trap.
func TestTraceFast(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	forEachVariant(t, "", func(t *testing.T, v variant) {
		for _, fast := range []bool{false, true} {
			dir := traceDir(t)
			tf, sf := dir+"/trace.json", dir+"/summary.json"
			args := []string{"--syscall-mode=rewrite", "-R", root, "--trace=" + tf, "--trace-format=json", "--trace-filter=lseek",
				"--summary=" + sf}
			if fast {
				args = append(args, "--trace-fast")
			}
			opts := runOpts{Unpriv: v.unpriv, Args: append(args, "--", "/bin/bench", "-n", "1000", "lseek_read")}
			out, errOut, code := runKbox(t, opts)
			if code != 0 || !strings.HasPrefix(out, "lseek_read ") {
				t.Fatalf("%s: exit %d, stdout %q\n%s", cmdline(opts), code, out, errOut)
			}
			b, err := os.ReadFile(tf)
			if err != nil {
				t.Fatal(err)
			}
			lseeks := strings.Count(string(b), `"name":"lseek"`)
			var sum struct {
				Fast struct {
					Calls uint64 `json:"calls"`
				} `json:"fast_path"`
				Unseen string `json:"unseen"`
			}
			sb, _ := os.ReadFile(sf)
			if err := json.Unmarshal(sb, &sum); err != nil {
				t.Fatalf("summary %q: %v", sb, err)
			}
			if fast && (lseeks < 1000 || sum.Fast.Calls != 0 || sum.Unseen != "") {
				t.Errorf("--trace-fast: %d lseek records (want >= 1000), %d fast-path calls (want 0), unseen %q", lseeks, sum.Fast.Calls, sum.Unseen)
			}
			if !fast && (lseeks != 0 || sum.Fast.Calls < 2000 || !strings.Contains(sum.Unseen, "fast path")) {
				t.Errorf("without --trace-fast: %d lseek records (want 0), %d fast-path calls (want >= 2000), unseen %q", lseeks, sum.Fast.Calls, sum.Unseen)
			}
		}
	})
}

// TestWebLoad: a guest making a million traced calls (stat, in the
// seccomp tier, where the dashboard shares kbox's process with the
// supervisor) with a slow SSE client attached that reads 1 KiB every
// 100 ms: the guest never waits for the client (a blocking server would
// need hours to send a million events at that pace), the client's lost
// events are counted, kbox's memory stays bounded (its RSS in the second
// half of the run no larger than in the first quarter, plus slack), and
// the guest's time per call stays within a few times its time without
// --web.
func TestWebLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a million syscalls: not with -short")
	}
	t.Parallel()
	root := fixtureRoot(t)
	const n = 1_000_000
	// The baseline: the same calls without --web (fewer of them).
	opts := runOpts{Args: []string{"--syscall-mode=seccomp", "-R", root, "--", "/bin/bench", "-n", "100000", "stat"}, Tout: 5 * time.Minute}
	out, errOut, code := runKbox(t, opts)
	var baseNS float64
	if _, err := fmt.Sscanf(out, "stat %g", &baseNS); err != nil || code != 0 {
		t.Fatalf("%s: exit %d, %q %v\n%s", cmdline(opts), code, out, err, errOut)
	}
	k := startWebKbox(t, false, "--syscall-mode=seccomp", "-R", root, "-v", "--web=127.0.0.1:0", "--web-linger=5m", "--",
		"/bin/bench", "-n", strconv.Itoa(n), "stat")
	resp, br := openEvents(t, k.url, "")
	go func() {
		buf := make([]byte, 1024)
		for {
			if _, err := br.Read(buf); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	defer resp.Body.Close()
	pid := k.cmd.Process.Pid
	var early, late, peak int
	deadline := time.Now().Add(15 * time.Minute)
	var s webSnapshot
	for {
		getJSONURL(t, k.url+"api/snapshot", &s)
		rss := vmRSS(pid)
		peak = max(peak, rss)
		switch {
		case s.Calls < n/4:
			early = max(early, rss)
		case s.Calls > n/2:
			late = max(late, rss)
		}
		if !s.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest still runs after 15 minutes: %d calls\n%s", s.Calls, k.errText())
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("kbox RSS: first quarter %d KiB, second half %d KiB, peak %d KiB; %d calls, last seq %d, sampled out %d, slow client lost %d, upstream dropped %d",
		early, late, peak, s.Calls, s.Events.LastSeq, s.Events.Sampled, s.Events.ClientDropped, s.Events.UpstreamDropped)
	if s.Calls < n {
		t.Errorf("%d calls seen, want at least %d", s.Calls, n)
	}
	if s.Events.ClientDropped == 0 {
		t.Error("the slow client lost no events: it was not slow, the test proves nothing")
	}
	if late > early+early/2+16<<10 || peak > 200<<10 {
		t.Errorf("kbox's memory grows with the calls: first quarter %d KiB, second half %d KiB, peak %d KiB", early, late, peak)
	}
	// The guest's own measure, printed at its end.
	k.cmd.Process.Signal(syscall.SIGTERM)
	<-k.done
	var webNS float64
	if _, err := fmt.Sscanf(k.stdout.String(), "stat %g", &webNS); err != nil {
		t.Fatalf("guest output %q: %v", k.stdout.String(), err)
	}
	t.Logf("guest: %.0f ns per stat without --web, %.0f with --web and a slow client", baseNS, webNS)
	// docs/observability.md: --web costs what --trace does, about 1.3x
	// the CPU of an untraced run; 4x leaves room for a loaded machine.
	if webNS > 4*baseNS {
		t.Errorf("the guest's stat took %.0f ns with --web, %.0f without: more than 4x", webNS, baseNS)
	}
}
