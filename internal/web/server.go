package web

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/kbox-go/kbox/internal/trace"
)

// DefaultAddr is where --web listens without a value.
const DefaultAddr = "127.0.0.1:8080"

// Options are the --web flags.
type Options struct {
	Addr    string        // "" when --web is not given
	BindAny bool          // --web-bind-any: allow a non-loopback address
	Linger  time.Duration // --web-linger: keep serving this long after the guest ends
}

// Enabled reports whether --web was given.
func (o Options) Enabled() bool { return o.Addr != "" }

// NormalizeAddr checks ADDR of --web=ADDR: HOST:PORT, or a bare PORT on
// 127.0.0.1. A host that is not a loopback address (an empty host is
// every address) is refused unless bindAny.
func NormalizeAddr(addr string, bindAny bool) (string, error) {
	if _, err := strconv.ParseUint(addr, 10, 16); err == nil {
		addr = "127.0.0.1:" + addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--web %q: want HOST:PORT or PORT", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("--web %q: bad port %q", addr, port)
	}
	if bindAny {
		return addr, nil
	}
	if !loopback(host) {
		return "", fmt.Errorf("--web %q: not a loopback address; the dashboard shows what the guest does (paths, arguments), give --web-bind-any to serve it to the network", addr)
	}
	return addr, nil
}

func loopback(host string) bool {
	if host == "" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	if host == "localhost" {
		return true
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return false
		}
	}
	return true
}

//go:embed static
var static embed.FS

// Server serves a hub.
type Server struct {
	hub     *Hub
	anyHost bool // --web-bind-any: any Host header
	ln      net.Listener
	srv     *http.Server
	stop    chan struct{}
	once    sync.Once
}

// Listen opens the listening socket (before the guest starts, so that a
// busy port is a start-up error) and serves hub on it.
func Listen(o Options, hub *Hub) (*Server, error) {
	addr, err := NormalizeAddr(o.Addr, o.BindAny)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--web: %w", err)
	}
	s := &Server{hub: hub, ln: ln, stop: make(chan struct{}), anyHost: o.BindAny}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// URL is the dashboard's address (on the loopback interface when the
// server listens on every address).
func (s *Server) URL() string {
	a := s.ln.Addr().(*net.TCPAddr)
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(a.Port)) + "/"
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server: SSE streams end, other requests get a second
// to finish.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.stop)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if s.srv.Shutdown(ctx) != nil {
			s.srv.Close()
		}
	})
}

// Handler is the server's routes (tests use it with httptest).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	sub, _ := fs.Sub(static, "static")
	mux.Handle("GET /", http.FileServerFS(sub))
	mux.HandleFunc("GET /api/snapshot", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.hub.Snapshot())
	})
	mux.HandleFunc("GET /api/enosys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.hub.ENOSYS())
	})
	mux.HandleFunc("GET /api/summary", func(w http.ResponseWriter, r *http.Request) {
		sum := s.hub.Summary()
		if sum == nil {
			http.Error(w, "no summary yet", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, sum)
	})
	mux.HandleFunc("GET /api/events", s.events)
	if s.anyHost {
		return mux
	}
	// On loopback, only requests naming a loopback host: a web page the
	// user visits cannot read the dashboard through DNS rebinding (a
	// name of its own resolving to 127.0.0.1).
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			http.Error(w, "kbox dashboard: the Host header must be a loopback address or localhost", http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Write(append(b, '\n'))
}

// events is the SSE stream: each retained event after Last-Event-ID (the
// header a reconnecting EventSource sends, or ?last_event_id=), then the
// live ones. Events: "syscall" (data: the JSON v1 record, id: its seq),
// "gap" (events after the given id are no longer retained or were
// sampled out), "dropped" (this client was too slow: data {"dropped":N},
// the count so far), "end" (the guest ended: data {"exit":...}).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	var seq uint64
	if last != "" {
		v, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			http.Error(w, "bad Last-Event-ID", http.StatusBadRequest)
			return
		}
		seq = v
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	c, backlog, gap := s.hub.subscribe(seq)
	defer s.hub.unsubscribe(c)
	var buf []byte
	send := func(ev event) error {
		buf = append(buf[:0], "id: "...)
		buf = strconv.AppendUint(buf, ev.seq, 10)
		buf = append(buf, "\nevent: syscall\ndata: "...)
		buf = append(buf, ev.data...)
		buf = append(buf, "\n\n"...)
		_, err := w.Write(buf)
		return err
	}
	fmt.Fprintf(w, "retry: 1000\n\n")
	if gap {
		fmt.Fprintf(w, "event: gap\ndata: {\"after\":%d}\n\n", seq)
	}
	maxSeq := seq
	for _, ev := range backlog {
		if send(ev) != nil {
			return
		}
		maxSeq = ev.seq
	}
	fl.Flush()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var reported uint64
	done := s.hub.Done()
	for {
		select {
		case ev := <-c.c:
			if ev.seq <= maxSeq {
				continue // already sent from the backlog
			}
			if send(ev) != nil {
				return
			}
			// Send what is queued, then flush once.
			for more := true; more; {
				select {
				case ev := <-c.c:
					if send(ev) != nil {
						return
					}
				default:
					more = false
				}
			}
			fl.Flush()
		case <-tick.C:
			s.hub.mu.Lock()
			d := c.dropped
			s.hub.mu.Unlock()
			if d != reported {
				reported = d
				fmt.Fprintf(w, "event: dropped\ndata: {\"dropped\":%d}\n\n", d)
			} else {
				fmt.Fprintf(w, ": ping\n\n")
			}
			fl.Flush()
		case <-done:
			// Send what is left, then say the guest ended; the stream
			// stays open (no reconnect storm) until the server stops.
			for more := true; more; {
				select {
				case ev := <-c.c:
					if ev.seq > maxSeq && send(ev) != nil {
						return
					}
				default:
					more = false
				}
			}
			b, _ := json.Marshal(s.hub.exitInfo())
			fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
			fl.Flush()
			done = nil
		case <-s.stop:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// Snapshot is the /api/snapshot document.
type Snapshot struct {
	V       int     `json:"v"`
	Tier    string  `json:"tier"`
	Reason  string  `json:"tier_reason"`
	UptimeS float64 `json:"uptime_s"`
	Running bool    `json:"running"`
	Exit    any     `json:"exit"`
	Calls   uint64  `json:"calls"`
	Errors  uint64  `json:"errors"`
	// Rate: calls per second by family over the last seconds, oldest
	// first, the current (incomplete) second last.
	Rate     RateDoc           `json:"rate"`
	Latency  []LatencyDoc      `json:"latency"`
	ENOSYS   map[string]uint64 `json:"enosys"`
	EPERM    map[string]uint64 `json:"eperm"`
	Procs    []Proc            `json:"processes"`
	Events   EventsDoc         `json:"events"`
	FastPath trace.FastDoc     `json:"fast_path"`
}

// RateDoc is the rate history.
type RateDoc struct {
	Families []string            `json:"families"`
	Seconds  []int64             `json:"seconds"` // seconds since the start
	Series   []map[string]uint64 `json:"by_family"`
}

// LatencyDoc is one syscall's latency, as kbox measured it (from
// receiving the call to answering it).
type LatencyDoc struct {
	Name  string `json:"name"`
	Calls uint64 `json:"calls"`
	P50NS int64  `json:"p50_ns"`
	P99NS int64  `json:"p99_ns"`
	MaxNS int64  `json:"max_ns"`
}

// EventsDoc describes the event stream.
type EventsDoc struct {
	LastSeq  uint64 `json:"last_seq"`
	Kept     uint64 `json:"kept"`
	Sampled  uint64 `json:"sampled_out"`
	Retained int    `json:"retained"`
	Clients  int    `json:"clients"`
	// ClientDropped: events slow SSE clients lost; Upstream: records the
	// tracer could not hand to the dashboard (its buffer was full).
	ClientDropped   uint64 `json:"client_dropped"`
	UpstreamDropped uint64 `json:"upstream_dropped"`
}

// Snapshot returns the current state.
func (h *Hub) Snapshot() *Snapshot {
	procs := h.procs.tree(h.root)
	now := h.now()
	var sum *trace.Summary
	h.mu.Lock()
	fn := h.summaryFn
	h.mu.Unlock()
	if fn != nil {
		sum = fn()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if sum == nil {
		sum = h.summary
	}
	s := &Snapshot{V: 1, Tier: h.tier, Reason: h.reason, UptimeS: now.Sub(h.start).Seconds(), Running: h.running,
		Calls: h.total, Errors: h.errors, ENOSYS: copyMap(h.enosys), EPERM: copyMap(h.eperm), Procs: procs,
		Latency: []LatencyDoc{}}
	if h.exit != nil {
		s.Exit = exitDoc(*h.exit)
	}
	for f := range h.families {
		s.Rate.Families = append(s.Rate.Families, f)
	}
	sort.Strings(s.Rate.Families)
	if s.Rate.Families == nil {
		s.Rate.Families = []string{}
	}
	cur := max(int64(now.Sub(h.start)/time.Second), 0)
	for sec := max(cur-rateSeconds+1, 0); sec <= cur; sec++ {
		i := sec % int64(len(h.secs))
		m := map[string]uint64{}
		if h.secNo[i] == sec && h.secs[i] != nil {
			m = copyMap(h.secs[i])
		}
		s.Rate.Seconds = append(s.Rate.Seconds, sec)
		s.Rate.Series = append(s.Rate.Series, m)
	}
	for name, lh := range h.lat {
		s.Latency = append(s.Latency, LatencyDoc{Name: name, Calls: lh.n, P50NS: lh.quantile(0.5), P99NS: lh.quantile(0.99), MaxNS: lh.max})
	}
	sort.Slice(s.Latency, func(i, j int) bool {
		if s.Latency[i].Calls != s.Latency[j].Calls {
			return s.Latency[i].Calls > s.Latency[j].Calls
		}
		return s.Latency[i].Name < s.Latency[j].Name
	})
	s.Events = EventsDoc{LastSeq: h.seq, Kept: h.kept, Sampled: h.sampled, Retained: h.imp.n + h.routine.n,
		Clients: len(h.clients), ClientDropped: h.clientDropped}
	if h.upstreamDropped != nil {
		s.Events.UpstreamDropped = h.upstreamDropped()
	}
	if sum != nil {
		s.FastPath = sum.Fast
	}
	return s
}

// ENOSYSDoc is one row of /api/enosys.
type ENOSYSDoc struct {
	Name  string `json:"name"`
	Calls uint64 `json:"calls"`
}

// ENOSYS returns the calls answered ENOSYS, most first.
func (h *Hub) ENOSYS() []ENOSYSDoc {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := []ENOSYSDoc{}
	for n, c := range h.enosys {
		out = append(out, ENOSYSDoc{n, c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Calls != out[j].Calls {
			return out[i].Calls > out[j].Calls
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Summary returns the run's summary: live while the guest runs (its
// exit null), final after. It is the tracer's (which counts every call
// kbox sees), or, when the tracer could not give one (an in-process
// guest killed before its first live summary), the hub's own from the
// records it received: then extra.source says "dashboard".
func (h *Hub) Summary() *trace.Summary {
	h.mu.Lock()
	fn, running, exit := h.summaryFn, h.running, h.exit
	s := h.summary
	tier, reason := h.tier, h.reason
	h.mu.Unlock()
	if fn != nil {
		s = fn()
	}
	if s == nil {
		e := trace.Exit{}
		if exit != nil {
			e = *exit
		}
		s = h.agg.Summary(e, h.now().Sub(h.start), false)
		s.Tier, s.Reason = tier, reason
		s.Extra = map[string]any{"source": "dashboard"}
	}
	if running {
		c := *s
		c.Exit = trace.ExitDoc{}
		return &c
	}
	return s
}

func (h *Hub) exitInfo() map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := map[string]any{"exit": nil, "last_seq": h.seq}
	if h.exit != nil {
		m["exit"] = exitDoc(*h.exit)
	}
	return m
}

func copyMap(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
