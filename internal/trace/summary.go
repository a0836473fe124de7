package trace

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Exit is how the guest ended.
type Exit struct {
	Code   int // exit status, when Signal is 0
	Signal int // the signal that killed it, 0 if it exited
}

// Summary is the --summary document (docs/observability.md).
type Summary struct {
	V      int     `json:"v"`
	Type   string  `json:"type"` // "summary"
	Exit   ExitDoc `json:"exit"`
	WallS  float64 `json:"wall_s"`
	CPU    CPUDoc  `json:"cpu"`
	Tier   string  `json:"tier"`
	Reason string  `json:"tier_reason"`
	// Unseen says which calls the tier runs without kbox seeing them (they
	// are not counted).
	Unseen   string            `json:"unseen"`
	Syscalls SyscallsDoc       `json:"syscalls"`
	ENOSYS   map[string]uint64 `json:"enosys"`
	Denied   map[string]uint64 `json:"denied"`
	Fast     FastDoc           `json:"fast_path"`
	Files    FilesDoc          `json:"files"`
	Procs    []ProcDoc         `json:"processes"`
	RSS      RSSDoc            `json:"peak_rss_kb"`
	Trace    TraceDoc          `json:"trace"`
	// Extra holds what a tier adds (named counters).
	Extra map[string]any `json:"extra"`
}

// ExitDoc is the exit status or the killing signal.
type ExitDoc struct {
	Code   *int    `json:"code"`
	Signal *string `json:"signal"`
}

// CPUDoc is CPU time in seconds. In the in-process tiers the guest runs in
// kbox's process: Shared is true and the guest's and kbox's times are the
// process's.
type CPUDoc struct {
	GuestUserS float64 `json:"guest_user_s"`
	GuestSysS  float64 `json:"guest_sys_s"`
	KboxUserS  float64 `json:"kbox_user_s"`
	KboxSysS   float64 `json:"kbox_sys_s"`
	Shared     bool    `json:"shared"`
}

// SyscallsDoc counts the calls kbox saw.
type SyscallsDoc struct {
	Total    uint64                `json:"total"`
	Errors   uint64                `json:"errors"`
	ByName   map[string]*CallStats `json:"by_name"`
	ByFamily map[string]*CallStats `json:"by_family"`
	ByErrno  map[string]uint64     `json:"errors_by_errno"`
	ByDisp   map[string]uint64     `json:"by_disposition"`
}

// CallStats counts one name or family.
type CallStats struct {
	Calls  uint64  `json:"calls"`
	Errors uint64  `json:"errors"`
	TimeS  float64 `json:"time_s"`
	ns     int64
}

// FastDoc reports the rewrite tier's fast path: calls it served without a
// trap (not individually traced unless --trace-fast) and calls from
// patched sites that trapped instead.
type FastDoc struct {
	Calls  uint64 `json:"calls"`
	Misses uint64 `json:"misses"`
}

// FilesDoc lists guest paths the guest changed, sorted, each once per
// list; the lists are independent (a scratch file the guest created,
// wrote and removed is in all three). Created: made by mkdir, mknod,
// symlink, link, the target of a rename, or an O_CREAT open of a path
// that did not exist. Written: opened for writing or with O_TRUNC,
// created by creat, truncated. Removed: unlinked, or the source of a
// rename.
type FilesDoc struct {
	Created []string `json:"created"`
	Written []string `json:"written"`
	Removed []string `json:"removed"`
}

// ProcDoc is one program the guest started.
type ProcDoc struct {
	Pid  int      `json:"pid"`
	Path string   `json:"path"`
	Argv []string `json:"argv"`
}

// RSSDoc is the peak resident set size in KiB.
type RSSDoc struct {
	Guest int64 `json:"guest"`
	Kbox  int64 `json:"kbox"`
}

// TraceDoc reports the trace stream itself.
type TraceDoc struct {
	Records uint64 `json:"records"`
	Dropped uint64 `json:"dropped"`
	Error   string `json:"error"`
}

// aggregator builds a Summary from the records.
type aggregator struct {
	mu       sync.Mutex
	s        Summary
	created  map[string]bool
	written  map[string]bool
	removed  map[string]bool
	maxProcs int
}

func newAggregator() *aggregator {
	return &aggregator{
		s: Summary{V: SchemaVersion, Type: "summary",
			Syscalls: SyscallsDoc{ByName: map[string]*CallStats{}, ByFamily: map[string]*CallStats{},
				ByErrno: map[string]uint64{}, ByDisp: map[string]uint64{}},
			ENOSYS: map[string]uint64{}, Denied: map[string]uint64{}, Procs: []ProcDoc{}, Extra: map[string]any{}},
		created: map[string]bool{}, written: map[string]bool{}, removed: map[string]bool{}, maxProcs: 4096,
	}
}

func stat(m map[string]*CallStats, k string) *CallStats {
	s := m[k]
	if s == nil {
		s = &CallStats{}
		m[k] = s
	}
	return s
}

// add counts one record; argv is the program's arguments for an exec.
func (a *aggregator) add(r *Record, argv []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sc := &a.s.Syscalls
	sc.Total++
	e := r.Errno()
	fam := r.Family
	if fam == "" {
		fam = "other"
	}
	for _, st := range []*CallStats{stat(sc.ByName, r.Name), stat(sc.ByFamily, fam)} {
		st.Calls++
		st.ns += r.LatNS
		st.TimeS = float64(st.ns) / 1e9
		if e != 0 {
			st.Errors++
		}
	}
	sc.ByDisp[r.Disp.String()]++
	if e != 0 {
		sc.Errors++
		sc.ByErrno[ErrnoName(e)]++
	}
	switch {
	case r.Disp == Denied:
		a.s.Denied[r.Name]++
	case r.Disp == Unsupported || e == unix.ENOSYS:
		a.s.ENOSYS[r.Name]++
	}
	if e != 0 {
		return
	}
	a.files(r)
	if (r.Name == "execve" || r.Name == "execveat") && len(a.s.Procs) < a.maxProcs {
		p := ProcDoc{Pid: r.Pid, Argv: argv}
		if len(r.Paths) > 0 {
			p.Path = r.Paths[len(r.Paths)-1].Guest
		}
		if p.Argv == nil {
			p.Argv = []string{}
		}
		a.s.Procs = append(a.s.Procs, p)
	}
}

// files notes what a successful call did to the guest's files.
func (a *aggregator) files(r *Record) {
	if len(r.Paths) == 0 {
		return
	}
	first, last := r.Paths[0], r.Paths[len(r.Paths)-1]
	flagArg := -1
	switch r.Name {
	case "open":
		flagArg = 1
	case "openat", "openat2":
		flagArg = 2
	case "creat":
		a.note(a.written, last.Guest)
		if !last.Existed {
			a.note(a.created, last.Guest)
		}
	case "mkdir", "mkdirat", "mknod", "mknodat", "symlink", "symlinkat", "link", "linkat":
		a.note(a.created, last.Guest)
	case "rename", "renameat", "renameat2":
		if len(r.Paths) >= 2 {
			a.note(a.removed, first.Guest)
			a.note(a.created, last.Guest)
		}
	case "unlink", "unlinkat", "rmdir":
		a.note(a.removed, last.Guest)
	case "truncate":
		a.note(a.written, last.Guest)
	}
	if flagArg >= 0 && r.Name != "openat2" {
		fl := r.Raw[flagArg]
		if fl&unix.O_ACCMODE != unix.O_RDONLY || fl&unix.O_TRUNC != 0 {
			a.note(a.written, last.Guest)
		}
		if fl&unix.O_CREAT != 0 && !last.Existed {
			a.note(a.created, last.Guest)
		}
	}
}

func (a *aggregator) note(m map[string]bool, p string) {
	if p != "" && len(m) < 1<<16 {
		m[p] = true
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Aggregator builds a summary from records outside a tracer (the
// dashboard's own, when the tracer's summary is not available: a guest
// killed before its in-process tracer could write it).
type Aggregator struct{ a *aggregator }

// NewAggregator makes an empty Aggregator.
func NewAggregator() *Aggregator { return &Aggregator{newAggregator()} }

// Add counts one record (an exec's argv is not in a record: its
// processes entry has the guest path only).
func (g *Aggregator) Add(r *Record) { g.a.add(r, nil) }

// Summary returns the document so far; wall is the run's wall time.
func (g *Aggregator) Summary(exit Exit, wall time.Duration, inProcess bool) *Summary {
	return g.a.finish(exit, wall, inProcess)
}

// finish completes the document.
func (a *aggregator) finish(exit Exit, wall time.Duration, inProcess bool) *Summary {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.s
	if exit.Signal != 0 {
		n := Signal(exit.Signal)
		s.Exit.Signal = &n
	} else {
		c := exit.Code
		s.Exit.Code = &c
	}
	s.WallS = wall.Seconds()
	var self, children unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &self)
	_ = unix.Getrusage(unix.RUSAGE_CHILDREN, &children)
	tv := func(t unix.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	s.CPU = CPUDoc{KboxUserS: tv(self.Utime), KboxSysS: tv(self.Stime)}
	s.RSS.Kbox = self.Maxrss
	if inProcess {
		s.CPU.Shared = true
		s.CPU.GuestUserS, s.CPU.GuestSysS = s.CPU.KboxUserS, s.CPU.KboxSysS
		s.RSS.Guest = self.Maxrss
	} else {
		s.CPU.GuestUserS, s.CPU.GuestSysS = tv(children.Utime), tv(children.Stime)
		s.RSS.Guest = children.Maxrss
	}
	s.Files = FilesDoc{Created: sortedKeys(a.created), Written: sortedKeys(a.written), Removed: sortedKeys(a.removed)}
	// Deep-copy the maps the caller may keep while tracing goes on.
	s.Syscalls.ByName = copyStats(a.s.Syscalls.ByName)
	s.Syscalls.ByFamily = copyStats(a.s.Syscalls.ByFamily)
	s.Syscalls.ByErrno = copyCounts(a.s.Syscalls.ByErrno)
	s.Syscalls.ByDisp = copyCounts(a.s.Syscalls.ByDisp)
	s.ENOSYS, s.Denied = copyCounts(a.s.ENOSYS), copyCounts(a.s.Denied)
	s.Procs = append([]ProcDoc{}, a.s.Procs...)
	return &s
}

func copyStats(m map[string]*CallStats) map[string]*CallStats {
	out := make(map[string]*CallStats, len(m))
	for k, v := range m {
		c := *v
		out[k] = &c
	}
	return out
}

func copyCounts(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// WriteJSON writes the summary as one JSON document and a newline.
func (s *Summary) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteTable writes the strace -c style table: per call, its share of
// the time kbox spent serving calls, seconds, microseconds per call,
// calls and errors, most time first; then the total.
func (s *Summary) WriteTable(w io.Writer) error {
	type row struct {
		name string
		st   CallStats
	}
	var rows []row
	var total CallStats
	for n, st := range s.Syscalls.ByName {
		rows = append(rows, row{n, *st})
		total.Calls += st.Calls
		total.Errors += st.Errors
		total.TimeS += st.TimeS
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].st.TimeS != rows[j].st.TimeS {
			return rows[i].st.TimeS > rows[j].st.TimeS
		}
		if rows[i].st.Calls != rows[j].st.Calls {
			return rows[i].st.Calls > rows[j].st.Calls
		}
		return rows[i].name < rows[j].name
	})
	var b strings.Builder
	line := func(pct, secs float64, usecs uint64, calls, errs uint64, name string) {
		e := ""
		if errs > 0 {
			e = fmt.Sprint(errs)
		}
		fmt.Fprintf(&b, "%6.2f %11.6f %11d %9d %9s %s\n", pct, secs, usecs, calls, e, name)
	}
	sep := "------ ----------- ----------- --------- --------- ----------------\n"
	b.WriteString("% time     seconds  usecs/call     calls    errors syscall\n")
	b.WriteString(sep)
	for _, r := range rows {
		pct := 0.0
		if total.TimeS > 0 {
			pct = 100 * r.st.TimeS / total.TimeS
		}
		line(pct, r.st.TimeS, uint64(r.st.TimeS*1e6)/max(r.st.Calls, 1), r.st.Calls, r.st.Errors, r.name)
	}
	b.WriteString(sep)
	pct := 0.0
	if total.TimeS > 0 {
		pct = 100
	}
	line(pct, total.TimeS, uint64(total.TimeS*1e6)/max(total.Calls, 1), total.Calls, total.Errors, "total")
	if s.Fast.Calls > 0 || s.Fast.Misses > 0 {
		fmt.Fprintf(&b, "fast path: %d calls served without a trap (not in the table), %d trapped from patched sites\n", s.Fast.Calls, s.Fast.Misses)
	}
	if s.Unseen != "" {
		fmt.Fprintf(&b, "not counted: %s\n", s.Unseen)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
