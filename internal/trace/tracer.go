package trace

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kbox-go/kbox/internal/abi"
)

// Options configure a Tracer (the --trace, --trace-format, --trace-filter,
// --summary and --trace-fast flags).
type Options struct {
	// Path is where records go: "-" for stderr, a file name (created or
	// truncated, mode 0644), or "" for no records (a summary only).
	Path string
	// File, when set, is the already open sink (the in-process child
	// writes to a descriptor its parent opened); it wins over Path.
	File *os.File
	// Format is "text" (strace-like lines, the default) or "json" (one
	// object per line).
	Format string
	// Filter selects the calls traced (ParseFilter); "" traces all. The
	// summary counts every call kbox sees, whatever the filter.
	Filter string
	// Summary: "" none; "-" the strace -c style table on stderr; a file
	// name for the JSON document.
	Summary string
	// SummaryFile, when set, is the already open summary sink; its format
	// is SummaryFormat ("json" or "table").
	SummaryFile   *os.File
	SummaryFormat string
	// Fast: record the rewrite tier's fast-path calls too (--trace-fast):
	// the rewrite tier then leaves its fast path off, so that those calls
	// trap and are traced like the others (RecordFast).
	Fast bool
	// Live: keep the summary in memory for a live consumer (--web) even
	// without --summary; Tracer.Summary reads it while the guest runs.
	Live bool
	// Stream, in the parent of an in-process child: the write end of the
	// pipe the child streams its records and summaries to (--web); the
	// parent reads the other end with ReadStream.
	Stream *os.File
	// Arch is the guest's syscall ABI (abi.Host() when nil).
	Arch *abi.Arch
	// Log receives the one warning a failing sink gives (stderr when nil).
	Log io.Writer
}

// Enabled reports whether the options ask for a tracer at all.
func (o Options) Enabled() bool {
	return o.Path != "" || o.File != nil || o.Summary != "" || o.SummaryFile != nil || o.Live || o.Stream != nil
}

// Tracer records the guest's calls. Its methods are safe for concurrent
// use. A nil *Tracer is valid and records nothing.
type Tracer struct {
	arch    *abi.Arch
	start   time.Time
	json    bool
	sel     []bool // selected by the filter, by number
	selRest bool   // numbers beyond the table: selected when the filter selects unnamed calls
	filter  string
	out     *sink // nil: no records
	sum     *aggregator
	sumFile *os.File
	sumFmt  string
	sumOwn  bool
	seq     atomic.Uint64
	subs    atomic.Pointer[[]*Subscription]
	subMu   sync.Mutex
	log     io.Writer
	recFast bool

	mu        sync.Mutex
	tier      string
	reason    string
	unseen    string
	inProcess bool
	fast      func() (hits, misses uint64)
	finished  bool
	atFinish  []func(Exit, *Summary)

	headerOnce sync.Once
}

// Open makes a tracer. It opens the files the options name (the caller's
// process must be able to: an in-process child passes File and
// SummaryFile instead).
func Open(o Options) (*Tracer, error) {
	t := &Tracer{arch: o.Arch, start: time.Now(), filter: o.Filter, log: o.Log, recFast: o.Fast}
	if t.arch == nil {
		t.arch = abi.Host()
	}
	if t.log == nil {
		t.log = os.Stderr
	}
	switch o.Format {
	case "", "text":
	case "json":
		t.json = true
	default:
		return nil, fmt.Errorf("trace format %q: want text or json", o.Format)
	}
	f, err := ParseFilter(o.Filter)
	if err != nil {
		return nil, err
	}
	t.sel = f.byNr(t.arch)
	t.selRest = f.Match("")
	switch {
	case o.File != nil:
		t.out = newSink(o.File, o.File.Name(), false, t.log)
	case o.Path == "-":
		t.out = newSink(os.Stderr, "stderr", false, t.log)
	case o.Path != "":
		fh, err := os.OpenFile(o.Path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		t.out = newSink(fh, o.Path, true, t.log)
	}
	switch {
	case o.SummaryFile != nil:
		t.sumFile, t.sumFmt = o.SummaryFile, o.SummaryFormat
	case o.Summary == "-":
		t.sumFile, t.sumFmt = os.Stderr, "table"
	case o.Summary != "":
		fh, err := os.OpenFile(o.Summary, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			if t.out != nil {
				t.out.close()
			}
			return nil, fmt.Errorf("summary: %w", err)
		}
		t.sumFile, t.sumFmt, t.sumOwn = fh, "json", true
	}
	if t.sumFile != nil || o.Live {
		if t.sumFmt == "" {
			t.sumFmt = "json"
		}
		if t.sumFmt != "json" && t.sumFmt != "table" {
			return nil, fmt.Errorf("summary format %q: want json or table", t.sumFmt)
		}
		t.sum = newAggregator()
	}
	return t, nil
}

// Wants reports whether call nr is recorded or counted: the one check a
// hook makes before it measures anything.
func (t *Tracer) Wants(nr int) bool {
	if t == nil {
		return false
	}
	return t.sum != nil || (t.selected(nr) && (t.out != nil || t.subscribed()))
}

func (t *Tracer) selected(nr int) bool {
	if nr >= 0 && nr < len(t.sel) {
		return t.sel[nr]
	}
	return t.selRest
}

func (t *Tracer) subscribed() bool {
	s := t.subs.Load()
	return s != nil && len(*s) > 0
}

// RecordFast reports whether --trace-fast asks for the rewrite tier's
// fast-path calls to be recorded.
func (t *Tracer) RecordFast() bool { return t != nil && t.recFast }

// Arch returns the tracer's syscall ABI.
func (t *Tracer) Arch() *abi.Arch { return t.arch }

// Since returns the monotonic time since the tracer started.
func (t *Tracer) Since(at time.Time) time.Duration { return at.Sub(t.start) }

// Entry renders the call's input arguments before it runs, as strace
// does: a handler may change guest memory the call named (the exec
// handler rewrites the path it was given). Call it before serving c; it
// does nothing when c will not be written.
func (t *Tracer) Entry(c *Call) {
	if t == nil || !t.selected(c.Nr) || (t.out == nil && !t.subscribed()) {
		return
	}
	c.entry = decodeAll(t.arch.SyscallName(c.Nr), c.Args, c.Mem, c.FDName, 0, false, nil)
}

// Syscall records one call.
func (t *Tracer) Syscall(c *Call) {
	if t == nil {
		return
	}
	name := t.arch.SyscallName(c.Nr)
	selected := t.selected(c.Nr)
	rec := Record{TimeNS: int64(c.Start.Sub(t.start)), Pid: c.Pid, Tid: c.Tid, Nr: c.Nr, Name: name,
		Family: Family(name), Raw: c.Args, Disp: c.Disp, Ret: c.Ret, Known: c.Known, LatNS: int64(c.Lat), Paths: c.Paths}
	if rec.Paths == nil {
		rec.Paths = []PathInfo{}
	}
	subs := t.subs.Load()
	emit := selected && (t.out != nil || (subs != nil && len(*subs) > 0))
	if emit {
		rec.Args = compact(name, decodeAll(name, c.Args, c.Mem, c.FDName, c.Ret, c.Known, c.entry))
		rec.Seq = t.seq.Add(1)
	}
	if t.sum != nil {
		var argv []string
		if (name == "execve" || name == "execveat") && rec.Errno() == 0 {
			i := 1
			if name == "execveat" {
				i = 2
			}
			argv = Argv(c.Mem, c.Args[i])
		}
		t.sum.add(&rec, argv)
	}
	if !emit {
		return
	}
	if t.out != nil {
		t.header()
		t.out.write(func(b []byte) []byte {
			if t.json {
				return rec.AppendJSON(b)
			}
			return rec.AppendText(b)
		})
	}
	if subs != nil {
		for _, s := range *subs {
			select {
			case s.c <- rec:
			default:
				s.dropped.Add(1)
			}
		}
	}
}

// SetTier names the tier and says which calls it runs without kbox
// seeing them (the seccomp filter's allowed calls): the trace's header
// says so, and the summary repeats it. inProcess: the guest runs in
// kbox's process (CPU time and RSS are shared). The header is written
// with the first record, so SetTier and SetReason may come in any order
// before the guest runs.
func (t *Tracer) SetTier(tier, unseen string, inProcess bool) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.tier, t.unseen, t.inProcess = tier, unseen, inProcess
	t.mu.Unlock()
}

// SetReason says why the tier was chosen (--syscall-mode, auto's choice).
func (t *Tracer) SetReason(reason string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.reason = reason
	t.mu.Unlock()
}

// SeccompUnseen is the seccomp tier's note on what a trace misses.
const SeccompUnseen = "calls the seccomp filter allows (the policy table's allow rows: descriptor I/O, memory, " +
	"the caller's own process, signals and time; docs/policy.md) run in the host kernel without reaching kbox: " +
	"they are neither traced nor counted, nor are the calls the filter itself fails (the dangerous set, EPERM; clone3, ENOSYS)"

// header writes the header line once, before the first record.
func (t *Tracer) header() {
	t.headerOnce.Do(func() {
		t.mu.Lock()
		tier, reason, unseen := t.tier, t.reason, t.unseen
		t.mu.Unlock()
		t.out.write(func(b []byte) []byte {
			if t.json {
				h := map[string]any{"v": SchemaVersion, "type": "header", "tier": tier, "reason": reason, "unseen": unseen,
					"arch": t.arch.Name, "filter": t.filter, "pid": os.Getpid()}
				j, _ := json.Marshal(h)
				return append(append(b, j...), '\n')
			}
			b = append(b, "# kbox trace v"...)
			b = strconv.AppendInt(b, SchemaVersion, 10)
			b = append(b, ": tier "...)
			b = append(b, tier...)
			if reason != "" {
				b = append(b, " ("...)
				b = append(b, reason...)
				b = append(b, ')')
			}
			b = append(b, '\n')
			if unseen != "" {
				b = append(b, "# not seen: "...)
				b = append(b, unseen...)
				b = append(b, '\n')
			}
			return b
		})
	})
}

// SetFastCounts gives the tracer the rewrite tier's fast-path counters,
// read at Finish.
func (t *Tracer) SetFastCounts(f func() (hits, misses uint64)) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.fast = f
	t.mu.Unlock()
}

// SetExtra adds a named value to the summary's "extra" object.
func (t *Tracer) SetExtra(key string, v any) {
	if t == nil || t.sum == nil {
		return
	}
	t.sum.mu.Lock()
	t.sum.s.Extra[key] = v
	t.sum.mu.Unlock()
}

// Summary returns the summary so far (nil without --summary).
func (t *Tracer) Summary(exit Exit) *Summary {
	if t == nil || t.sum == nil {
		return nil
	}
	t.mu.Lock()
	tier, reason, unseen, inproc, fast := t.tier, t.reason, t.unseen, t.inProcess, t.fast
	t.mu.Unlock()
	s := t.sum.finish(exit, time.Since(t.start), inproc)
	s.Tier, s.Reason, s.Unseen = tier, reason, unseen
	if fast != nil {
		s.Fast.Calls, s.Fast.Misses = fast()
	}
	if t.out != nil {
		s.Trace.Records, s.Trace.Dropped, s.Trace.Error = t.seq.Load(), t.out.dropped.Load(), t.out.errText()
	}
	return s
}

// Finish flushes the trace and writes the summary; the guest ended with
// exit. Only the first call does anything; later records are dropped.
func (t *Tracer) Finish(exit Exit) error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	if t.finished {
		t.mu.Unlock()
		return nil
	}
	t.finished = true
	t.mu.Unlock()
	if t.out != nil {
		t.header()
		t.out.flush()
	}
	var err error
	s := t.Summary(exit)
	if s != nil && t.sumFile != nil {
		if t.sumFmt == "table" {
			err = s.WriteTable(t.sumFile)
		} else {
			err = s.WriteJSON(t.sumFile)
		}
		if t.sumOwn {
			if cerr := t.sumFile.Close(); err == nil {
				err = cerr
			}
		}
	}
	if t.out != nil {
		t.out.close()
	}
	t.mu.Lock()
	fns := t.atFinish
	t.mu.Unlock()
	for _, f := range fns {
		f(exit, s)
	}
	return err
}

// AtFinish registers f to run at the end of Finish, with the guest's
// exit and the final summary (nil without --summary or Live): a live
// consumer's last word.
func (t *Tracer) AtFinish(f func(Exit, *Summary)) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.atFinish = append(t.atFinish, f)
	t.mu.Unlock()
}

// Finished reports whether Finish has run.
func (t *Tracer) Finished() bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.finished
}

// Subscription receives the records a tracer emits (those its filter
// selects), for a consumer such as a web dashboard. Delivery never blocks
// the guest: when the subscriber's buffer is full the record is dropped
// for it and counted.
type Subscription struct {
	C       <-chan Record
	c       chan Record
	dropped atomic.Uint64
	t       *Tracer
}

// Subscribe adds a subscriber with a buffer of n records.
func (t *Tracer) Subscribe(n int) *Subscription {
	s := &Subscription{c: make(chan Record, max(n, 1)), t: t}
	s.C = s.c
	t.subMu.Lock()
	defer t.subMu.Unlock()
	var cur []*Subscription
	if p := t.subs.Load(); p != nil {
		cur = *p
	}
	next := append(append([]*Subscription{}, cur...), s)
	t.subs.Store(&next)
	return s
}

// Dropped returns how many records this subscriber missed.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close removes the subscriber; records already buffered stay readable.
func (s *Subscription) Close() {
	t := s.t
	t.subMu.Lock()
	defer t.subMu.Unlock()
	p := t.subs.Load()
	if p == nil {
		return
	}
	var next []*Subscription
	for _, x := range *p {
		if x != s {
			next = append(next, x)
		}
	}
	t.subs.Store(&next)
}
