// Package web is kbox's live dashboard (--web): an HTTP server in the kbox
// parent process, in every tier, fed by the tracer's records (a
// Subscription in the seccomp tier, the in-process child's live stream in
// the others). It serves a snapshot of the run (rates, latencies, errors,
// the guest's process tree from the host's /proc), the events as
// Server-Sent Events, the ENOSYS table, the summary, and a dashboard page
// embedded in the binary. Nothing here ever makes the guest wait: the hub
// takes records from a buffered channel the tracer fills without
// blocking, and each SSE client has its own bounded queue that loses
// events (counted) when the client is slow.
package web

import (
	"math"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/trace"
)

// Event ring and sampling. Important events (errors, denials, ENOSYS,
// the process and exec families) have their own ring, so that a flood of
// routine calls never pushes them out; routine calls are sampled once
// they pass routineBudget per sampleWindow: then only every sampleEvery-th
// is kept.
const (
	importantCap  = 2048
	routineCap    = 8192
	sampleWindow  = 100 * time.Millisecond
	routineBudget = 200
	sampleEvery   = 64
	rateSeconds   = 60 // the rate history the snapshot shows
	clientQueue   = 512
)

// event is one record as the SSE stream sends it.
type event struct {
	seq       uint64
	important bool
	data      []byte // the JSON v1 record, no newline
}

// ring is a bounded FIFO of events in seq order.
type ring struct {
	buf   []event
	start int
	n     int
}

func newRing(n int) *ring { return &ring{buf: make([]event, n)} }

func (r *ring) push(e event) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = e
		r.n++
		return
	}
	r.buf[r.start] = e
	r.start = (r.start + 1) % len(r.buf)
}

// after appends the events with seq > seq, in order.
func (r *ring) after(seq uint64, out []event) []event {
	// Binary search: the ring is sorted by seq.
	lo, hi := 0, r.n
	for lo < hi {
		m := (lo + hi) / 2
		if r.buf[(r.start+m)%len(r.buf)].seq <= seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo; i < r.n; i++ {
		out = append(out, r.buf[(r.start+i)%len(r.buf)])
	}
	return out
}

func (r *ring) oldest() (uint64, bool) {
	if r.n == 0 {
		return 0, false
	}
	return r.buf[r.start].seq, true
}

// hist is a latency histogram: bucket i holds latencies in
// [2^(i/4), 2^((i+1)/4)) ns, about 19% wide.
type hist struct {
	n      uint64
	sum    int64
	max    int64
	bucket [4 * 40]uint64
}

func bucketOf(ns int64) int {
	if ns < 1 {
		return 0
	}
	b := int(4 * math.Log2(float64(ns)))
	return min(max(b, 0), 4*40-1)
}

func (h *hist) add(ns int64) {
	h.n++
	h.sum += ns
	h.max = max(h.max, ns)
	h.bucket[bucketOf(ns)]++
}

// quantile returns the upper edge of the bucket holding quantile q, never
// above the largest latency seen.
func (h *hist) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(h.n)))
	var acc uint64
	for i, c := range h.bucket {
		acc += c
		if acc >= want {
			return min(int64(math.Exp2(float64(i+1)/4)), h.max)
		}
	}
	return h.max
}

type client struct {
	c       chan event
	dropped uint64 // under Hub.mu
}

// Hub holds the live state the server shows.
type Hub struct {
	mu    sync.Mutex
	start time.Time
	now   func() time.Time

	tier, reason string
	root         int // the process whose descendants are the guest

	total, errors uint64
	secs          [rateSeconds + 1]map[string]uint64 // calls by family, by second (index: second % len)
	secNo         [rateSeconds + 1]int64
	lat           map[string]*hist
	enosys, eperm map[string]uint64
	families      map[string]bool

	seq           uint64 // the last seq ingested
	imp, routine  *ring
	winStart      time.Time
	winRoutine    int
	kept, sampled uint64

	clients       map[*client]bool
	clientDropped uint64

	upstreamDropped func() uint64
	summaryFn       func() *trace.Summary
	summary         *trace.Summary // the last summary streamed, or the final one
	running         bool
	exit            *trace.Exit

	agg   *trace.Aggregator // the summary from the records the hub saw
	procs *procReader
	done  chan struct{}
}

// NewHub makes a hub for a run of tier (and why), whose guest is the
// descendants of process root (kbox's own pid).
func NewHub(tier, reason string, root int) *Hub {
	h := &Hub{start: time.Now(), now: time.Now, tier: tier, reason: reason, root: root,
		lat: map[string]*hist{}, enosys: map[string]uint64{}, eperm: map[string]uint64{}, families: map[string]bool{},
		imp: newRing(importantCap), routine: newRing(routineCap), clients: map[*client]bool{}, running: true,
		agg: trace.NewAggregator(), procs: newProcReader(), done: make(chan struct{})}
	return h
}

// SetTier names the tier (the in-process fallback changes it).
func (h *Hub) SetTier(tier, reason string) {
	h.mu.Lock()
	h.tier, h.reason = tier, reason
	h.mu.Unlock()
}

// SetSummarySource gives the hub a function returning the live summary
// (the seccomp tier's tracer); without one it shows the last summary the
// stream gave (SetSummary).
func (h *Hub) SetSummarySource(f func() *trace.Summary) {
	h.mu.Lock()
	h.summaryFn = f
	h.mu.Unlock()
}

// SetSummary stores a summary the live stream gave.
func (h *Hub) SetSummary(s *trace.Summary) {
	h.mu.Lock()
	h.summary = s
	h.mu.Unlock()
}

// SetUpstreamDropped gives the hub the count of records the tracer could
// not hand to it (its subscription's buffer was full).
func (h *Hub) SetUpstreamDropped(f func() uint64) {
	h.mu.Lock()
	h.upstreamDropped = f
	h.mu.Unlock()
}

// important: the events the ring keeps whatever the sampling.
func important(r *trace.Record) bool {
	if r.Errno() != 0 || r.Disp == trace.Denied || r.Disp == trace.Unsupported {
		return true
	}
	switch r.Family {
	case "process", "exec":
		return true
	}
	switch r.Name {
	case "exit", "exit_group", "execve", "execveat", "clone", "clone3", "fork", "vfork", "wait4", "waitid", "kill", "tgkill":
		return true
	}
	return false
}

// Ingest takes one record. Only one goroutine calls it (the hub's
// feeder); it never blocks: a slow SSE client loses the event.
func (h *Hub) Ingest(r *trace.Record) {
	now := h.now()
	h.agg.Add(r)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.total++
	e := r.Errno()
	if e != 0 {
		h.errors++
	}
	fam := r.Family
	if fam == "" {
		fam = "other"
	}
	h.families[fam] = true
	sec := max(int64(now.Sub(h.start)/time.Second), 0)
	i := sec % int64(len(h.secs))
	if h.secNo[i] != sec || h.secs[i] == nil {
		h.secs[i] = map[string]uint64{}
		h.secNo[i] = sec
	}
	h.secs[i][fam]++
	lh := h.lat[r.Name]
	if lh == nil {
		lh = &hist{}
		h.lat[r.Name] = lh
	}
	lh.add(r.LatNS)
	if r.Disp == trace.Unsupported || e == unix.ENOSYS {
		h.enosys[r.Name]++
	}
	if e == unix.EPERM {
		h.eperm[r.Name]++
	}
	if r.Seq > h.seq {
		h.seq = r.Seq
	}
	imp := important(r)
	if !imp {
		if now.Sub(h.winStart) >= sampleWindow {
			h.winStart, h.winRoutine = now, 0
		}
		h.winRoutine++
		if h.winRoutine > routineBudget && h.winRoutine%sampleEvery != 0 {
			h.sampled++
			return
		}
	}
	h.kept++
	b := r.AppendJSON(nil)
	ev := event{seq: r.Seq, important: imp, data: b[:len(b)-1]}
	if imp {
		h.imp.push(ev)
	} else {
		h.routine.push(ev)
	}
	for c := range h.clients {
		select {
		case c.c <- ev:
		default:
			c.dropped++
			h.clientDropped++
		}
	}
}

// consumeEvery is how often Consume takes what the subscription holds:
// waking the consumer for each record would cost the supervisor a
// futex wake-up and a context switch per call.
const consumeEvery = 20 * time.Millisecond

// Consume feeds the hub from a tracer subscription until stop is closed,
// then takes what the subscription still holds.
func (h *Hub) Consume(sub *trace.Subscription, stop <-chan struct{}) {
	tick := time.NewTicker(consumeEvery)
	defer tick.Stop()
	drain := func() {
		for {
			select {
			case r := <-sub.C:
				h.Ingest(&r)
			default:
				return
			}
		}
	}
	for {
		select {
		case <-tick.C:
			drain()
		case <-stop:
			drain()
			return
		}
	}
}

// Finish records the guest's end and its final summary (nil: keep the
// last one); SSE clients get an "end" event.
func (h *Hub) Finish(exit trace.Exit, final *trace.Summary) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running {
		return
	}
	h.running = false
	h.exit = &exit
	switch {
	case final != nil:
		h.summary = final
	case h.summary != nil:
		// The last live summary the stream gave: the guest ended
		// without a final one (killed).
		c := *h.summary
		c.Exit = exitDoc(exit)
		h.summary = &c
	case h.summaryFn != nil:
		h.summary = h.summaryFn()
		if h.summary != nil {
			h.summary.Exit = exitDoc(exit)
		}
	}
	h.summaryFn = nil
	close(h.done)
}

func exitDoc(e trace.Exit) trace.ExitDoc {
	if e.Signal != 0 {
		n := trace.Signal(e.Signal)
		return trace.ExitDoc{Signal: &n}
	}
	c := e.Code
	return trace.ExitDoc{Code: &c}
}

// subscribe adds an SSE client and returns the retained events after
// seq (all retained when seq is 0), in order, and whether events after
// seq were lost before the client came back (the ring moved on or they
// were sampled out).
func (h *Hub) subscribe(seq uint64) (*client, []event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := &client{c: make(chan event, clientQueue)}
	h.clients[c] = true
	backlog := h.imp.after(seq, nil)
	backlog = h.routine.after(seq, backlog)
	sort.Slice(backlog, func(i, j int) bool { return backlog[i].seq < backlog[j].seq })
	gap := false
	if seq > 0 && seq < h.seq {
		gap = len(backlog) == 0 || backlog[0].seq != seq+1
	}
	return c, backlog, gap
}

func (h *Hub) unsubscribe(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

// Done is closed when the guest has ended.
func (h *Hub) Done() <-chan struct{} { return h.done }
