package web

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kbox-go/kbox/internal/trace"
)

func rec(seq uint64, name, family string, ret int64, lat int64) *trace.Record {
	return &trace.Record{Seq: seq, Pid: 10, Tid: 10, Name: name, Family: family, Args: []string{}, Paths: []trace.PathInfo{},
		Disp: trace.Kbox, Ret: ret, Known: true, LatNS: lat}
}

func TestRing(t *testing.T) {
	r := newRing(4)
	for i := uint64(1); i <= 10; i++ {
		r.push(event{seq: i})
	}
	if o, _ := r.oldest(); o != 7 || r.n != 4 {
		t.Fatalf("oldest %d n %d, want 7 4", o, r.n)
	}
	for _, c := range []struct {
		after uint64
		want  string
	}{{0, "7 8 9 10"}, {6, "7 8 9 10"}, {7, "8 9 10"}, {9, "10"}, {10, ""}, {99, ""}} {
		var got []string
		for _, e := range r.after(c.after, nil) {
			got = append(got, strconv.FormatUint(e.seq, 10))
		}
		if s := strings.Join(got, " "); s != c.want {
			t.Errorf("after(%d) = %q, want %q", c.after, s, c.want)
		}
	}
}

func TestHistQuantile(t *testing.T) {
	var h hist
	for i := 0; i < 99; i++ {
		h.add(1000)
	}
	h.add(1_000_000)
	p50, p99, p100 := h.quantile(0.5), h.quantile(0.99), h.quantile(1)
	// Buckets are 2^(1/4) wide: the answer is within 19% above.
	if p50 < 1000 || p50 > 1190 {
		t.Errorf("p50 %d, want about 1000", p50)
	}
	if p99 < 1000 || p99 > 1190 {
		t.Errorf("p99 %d, want about 1000 (99 of 100 calls)", p99)
	}
	if p100 != 1_000_000 {
		t.Errorf("p100 %d, want the max 1000000", p100)
	}
	var empty hist
	if empty.quantile(0.5) != 0 {
		t.Error("empty histogram: want 0")
	}
}

// TestSamplingKeepsImportant: a flood of routine calls is sampled, but
// every error and process event stays retained.
func TestSamplingKeepsImportant(t *testing.T) {
	h := NewHub("seccomp", "test", os.Getpid())
	now := time.Unix(1000, 0)
	h.now = func() time.Time { return now }
	h.start = now
	var seq uint64
	wantImp := map[uint64]bool{}
	for i := 0; i < 20000; i++ {
		seq++
		switch {
		case i%1000 == 0:
			h.Ingest(rec(seq, "openat", "path", -2, 100)) // ENOENT
			wantImp[seq] = true
		case i%1500 == 0:
			h.Ingest(rec(seq, "execve", "exec", 0, 100))
			wantImp[seq] = true
		default:
			h.Ingest(rec(seq, "getppid", "process_info", 1, 100))
		}
	}
	if h.sampled == 0 {
		t.Fatal("20000 routine calls in one window: none sampled out")
	}
	if h.total != 20000 {
		t.Errorf("total %d, want 20000 (sampling selects events, not counts)", h.total)
	}
	got := map[uint64]bool{}
	for _, e := range h.imp.after(0, nil) {
		got[e.seq] = true
	}
	for s := range wantImp {
		if !got[s] {
			t.Errorf("important event %d not retained", s)
		}
	}
	if h.routine.n > routineCap {
		t.Errorf("routine ring holds %d > %d", h.routine.n, routineCap)
	}
	// The kept routine events: the budget, then one in sampleEvery.
	if kept := h.kept - uint64(len(wantImp)); kept > routineBudget+20000/sampleEvery+1 {
		t.Errorf("kept %d routine events, want at most %d", kept, routineBudget+20000/sampleEvery+1)
	}
	// A new window: the budget again.
	now = now.Add(sampleWindow)
	before := h.kept
	for i := 0; i < routineBudget; i++ {
		seq++
		h.Ingest(rec(seq, "getppid", "process_info", 1, 100))
	}
	if h.kept-before != routineBudget {
		t.Errorf("new window kept %d, want %d", h.kept-before, routineBudget)
	}
}

func TestSnapshot(t *testing.T) {
	// A child of this process: the snapshot's tree shows it.
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep:", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	h := NewHub("trap", "requested", os.Getpid())
	now := time.Unix(1000, 0)
	h.start = now
	h.now = func() time.Time { return now }
	for i := 0; i < 10; i++ {
		h.Ingest(rec(uint64(i+1), "openat", "path", 3, 1000))
	}
	now = now.Add(1500 * time.Millisecond)
	h.Ingest(rec(11, "read", "fd_io", 5, 5000))
	h.Ingest(rec(12, "bpf", "", -38, 10)) // ENOSYS
	r := rec(13, "mount", "", -1, 10)
	r.Disp = trace.Denied
	h.Ingest(r)
	s := h.Snapshot()
	if s.Calls != 13 || s.Errors != 2 {
		t.Errorf("calls %d errors %d, want 13 2", s.Calls, s.Errors)
	}
	if len(s.Rate.Seconds) != 2 || s.Rate.Series[0]["path"] != 10 || s.Rate.Series[1]["fd_io"] != 1 || s.Rate.Series[1]["other"] != 2 {
		t.Errorf("rate %+v", s.Rate)
	}
	if s.ENOSYS["bpf"] != 1 || s.EPERM["mount"] != 1 {
		t.Errorf("enosys %v eperm %v", s.ENOSYS, s.EPERM)
	}
	if s.Latency[0].Name != "openat" || s.Latency[0].Calls != 10 || s.Latency[0].P50NS < 1000 || s.Latency[0].P50NS > 1190 {
		t.Errorf("latency %+v", s.Latency[0])
	}
	found := false
	for _, p := range s.Procs {
		if p.Pid == cmd.Process.Pid {
			found = true
			if p.PPid != os.Getpid() || p.Comm != "sleep" || len(p.Argv) != 2 || p.Argv[1] != "30" || p.RSSKB <= 0 {
				t.Errorf("child %+v", p)
			}
		}
		if p.Pid == os.Getpid() {
			t.Error("the root itself is listed")
		}
	}
	if !found {
		t.Errorf("child %d not in the tree %+v", cmd.Process.Pid, s.Procs)
	}
	if e := h.ENOSYS(); len(e) != 1 || e[0].Name != "bpf" {
		t.Errorf("ENOSYS() %+v", e)
	}
}

func TestParseStat(t *testing.T) {
	line := "123 (a) b (c) S 45 1 1 0 -1 4194304 77 0 3 0 250 125 0 0 20 0 2 0 100 1000000 300 18446744073709551615\n"
	s, ok := parseStat([]byte(line))
	if !ok || s.pid != 123 || s.comm != "a) b (c" || s.state != "S" || s.ppid != 45 || s.minflt != 77 || s.majflt != 3 ||
		s.utime != 250 || s.stime != 125 || s.threads != 2 || s.rssPages != 300 {
		t.Errorf("%+v %v", s, ok)
	}
	if _, ok := parseStat([]byte("garbage")); ok {
		t.Error("garbage parsed")
	}
}

func TestNormalizeAddr(t *testing.T) {
	for _, c := range []struct {
		in      string
		any     bool
		want    string
		wantErr bool
	}{
		{"127.0.0.1:8080", false, "127.0.0.1:8080", false},
		{"9000", false, "127.0.0.1:9000", false},
		{"localhost:0", false, "localhost:0", false},
		{"[::1]:80", false, "[::1]:80", false},
		{"127.3.4.5:1", false, "127.3.4.5:1", false},
		{":8080", false, "", true},
		{"0.0.0.0:8080", false, "", true},
		{"192.0.2.1:8080", false, "", true},
		{"0.0.0.0:8080", true, "0.0.0.0:8080", false},
		{"127.0.0.1:99999", false, "", true},
		{"127.0.0.1", false, "", true},
	} {
		got, err := NormalizeAddr(c.in, c.any)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("NormalizeAddr(%q, %v) = %q, %v", c.in, c.any, got, err)
		}
	}
}

// sseEvent is one parsed SSE message.
type sseEvent struct {
	id, event, data string
}

func readSSE(t *testing.T, br *bufio.Reader, n int, stopAt string) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	for len(out) < n {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v (after %d events)", err, len(out))
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if cur.event != "" || cur.data != "" {
				out = append(out, cur)
				if cur.event == stopAt {
					return out
				}
			}
			cur = sseEvent{}
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

func TestSSE(t *testing.T) {
	h := NewHub("seccomp", "test", os.Getpid())
	srv := &Server{hub: h, stop: make(chan struct{})}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer close(srv.stop)
	for i := uint64(1); i <= 5; i++ {
		h.Ingest(rec(i, "openat", "path", 3, 100))
	}
	get := func(lastID string) (*http.Response, *bufio.Reader) {
		req, _ := http.NewRequest("GET", ts.URL+"/api/events", nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		return resp, bufio.NewReader(resp.Body)
	}
	// From the start: the 5 retained, then live ones.
	resp, br := get("")
	evs := readSSE(t, br, 5, "")
	for i, e := range evs {
		if e.event != "syscall" || e.id != strconv.Itoa(i+1) {
			t.Fatalf("event %d: %+v", i, e)
		}
		r, err := trace.ParseJSON([]byte(e.data))
		if err != nil || r.Seq != uint64(i+1) || r.Name != "openat" {
			t.Fatalf("event %d data %q: %v", i, e.data, err)
		}
	}
	h.Ingest(rec(6, "close", "fd_io", 0, 100))
	if e := readSSE(t, br, 1, ""); e[0].id != "6" {
		t.Fatalf("live event %+v", e[0])
	}
	resp.Body.Close()
	// Resumed after 3: 4, 5, 6 only.
	resp, br = get("3")
	evs = readSSE(t, br, 3, "")
	if evs[0].id != "4" || evs[2].id != "6" {
		t.Fatalf("resumed: %+v", evs)
	}
	// The end: an "end" event with the exit.
	h.Finish(trace.Exit{Code: 7}, nil)
	evs = readSSE(t, br, 1, "end")
	if evs[0].event != "end" || !strings.Contains(evs[0].data, `"code":7`) {
		t.Fatalf("end: %+v", evs)
	}
	resp.Body.Close()
	// A bad id.
	r2, err := http.Get(ts.URL + "/api/events?last_event_id=x")
	if err != nil || r2.StatusCode != http.StatusBadRequest {
		t.Errorf("bad id: %v %v", r2.StatusCode, err)
	}
}

// TestSSEGap: a client resuming after events the ring no longer holds
// is told so.
func TestSSEGap(t *testing.T) {
	h := NewHub("seccomp", "test", os.Getpid())
	srv := &Server{hub: h, stop: make(chan struct{})}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer close(srv.stop)
	h.start = time.Unix(0, 0)
	for i := uint64(1); i <= routineCap+10; i++ {
		h.now = func() time.Time { return time.Unix(int64(i), 0) } // a window each: no sampling
		h.Ingest(rec(i, "read", "fd_io", 1, 100))
	}
	req, _ := http.NewRequest("GET", ts.URL+"/api/events", nil)
	req.Header.Set("Last-Event-ID", "2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	evs := readSSE(t, bufio.NewReader(resp.Body), 2, "")
	if evs[0].event != "gap" || evs[1].id != "11" {
		t.Fatalf("%+v", evs)
	}
}

// TestSlowClient: a client that does not read loses events, counted,
// and the hub never blocks.
func TestSlowClient(t *testing.T) {
	h := NewHub("seccomp", "test", os.Getpid())
	h.start = time.Unix(0, 0)
	c, _, _ := h.subscribe(0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(1); i <= 100000; i++ {
			h.now = func() time.Time { return time.Unix(int64(i), 0) }
			h.Ingest(rec(i, "openat", "path", -2, 100))
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Ingest blocked on a client that does not read")
	}
	if len(c.c) != clientQueue || c.dropped != 100000-clientQueue || h.clientDropped != c.dropped {
		t.Errorf("queued %d dropped %d (hub %d)", len(c.c), c.dropped, h.clientDropped)
	}
	if s := h.Snapshot(); s.Events.ClientDropped != c.dropped || s.Events.Clients != 1 {
		t.Errorf("snapshot events %+v", s.Events)
	}
}

func TestSummaryAndListen(t *testing.T) {
	h := NewHub("seccomp", "test", os.Getpid())
	live := &trace.Summary{V: 1, Type: "summary", Tier: "seccomp"}
	code := 0
	live.Exit.Code = &code
	h.SetSummarySource(func() *trace.Summary { return live })
	if _, err := Listen(Options{Addr: "0.0.0.0:0"}, h); err == nil {
		t.Fatal("listening on every address without BindAny")
	}
	s, err := Listen(Options{Addr: "127.0.0.1:0"}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	getJSON := func(path string, v any) int {
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if v != nil && resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return resp.StatusCode
	}
	var got map[string]any
	getJSON("api/summary", &got)
	if got["exit"].(map[string]any)["code"] != nil {
		t.Errorf("running: exit %v, want null", got["exit"])
	}
	h.Finish(trace.Exit{Signal: 9}, nil)
	getJSON("api/summary", &got)
	if got["exit"].(map[string]any)["signal"] != "SIGKILL" {
		t.Errorf("ended: exit %v", got["exit"])
	}
	var snap Snapshot
	getJSON("api/snapshot", &snap)
	if snap.Running || snap.Tier != "seccomp" {
		t.Errorf("snapshot %+v", snap)
	}
	resp, err := http.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	b := new(strings.Builder)
	bufio.NewReader(resp.Body).WriteTo(b)
	resp.Body.Close()
	if !strings.Contains(b.String(), "<canvas id=\"rate\"") || strings.Contains(b.String(), "http://") || strings.Contains(b.String(), "https://") {
		t.Errorf("index: %s", b.String())
	}
	for _, f := range []string{"app.js", "style.css"} {
		if c := getJSON(f, nil); c != 200 {
			t.Errorf("%s: %d", f, c)
		}
	}
	// A request naming another host (DNS rebinding) is refused.
	req, _ := http.NewRequest("GET", s.URL()+"api/snapshot", nil)
	req.Host = "attacker.example:8080"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Host: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	// Close ends a stream that is open.
	req, _ = http.NewRequestWithContext(context.Background(), "GET", s.URL()+"api/events", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	go s.Close()
	done := make(chan error)
	go func() { _, err := bufio.NewReader(resp.Body).WriteTo(new(strings.Builder)); done <- err }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream outlived Close")
	}
}
