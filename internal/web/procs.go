package web

import (
	"bytes"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Proc is one guest process as the snapshot shows it, read from the
// host's /proc (the guest's pids are host pids).
type Proc struct {
	Pid     int      `json:"pid"`
	PPid    int      `json:"ppid"`
	Comm    string   `json:"comm"`
	Argv    []string `json:"argv"`
	State   string   `json:"state"`
	Threads int      `json:"threads"`
	// UserS, SysS: CPU time so far; CPUPct: the share of one CPU since
	// the previous snapshot (0 on the first).
	UserS  float64 `json:"cpu_user_s"`
	SysS   float64 `json:"cpu_sys_s"`
	CPUPct float64 `json:"cpu_pct"`
	RSSKB  int64   `json:"rss_kb"`
	MinFlt uint64  `json:"minflt"`
	MajFlt uint64  `json:"majflt"`
	// VolCS, InvolCS: voluntary and involuntary context switches.
	VolCS   uint64 `json:"ctxsw_voluntary"`
	InvolCS uint64 `json:"ctxsw_involuntary"`
}

// procReader reads the process tree below a pid, remembering each
// process's CPU time to compute its rate.
type procReader struct {
	mu      sync.Mutex
	proc    string // "/proc"
	prevCPU map[int]float64
	prevAt  time.Time
	tick    float64
	page    int64
}

func newProcReader() *procReader {
	return &procReader{proc: "/proc", prevCPU: map[int]float64{}, tick: 100, page: int64(os.Getpagesize())}
}

// statLine is the part of /proc/PID/stat the tree needs.
type statLine struct {
	pid, ppid      int
	comm, state    string
	minflt, majflt uint64
	utime, stime   uint64
	threads        int
	rssPages       int64
}

// parseStat parses /proc/PID/stat; comm may hold spaces and parentheses,
// so the fields after it are counted from its last ')'.
func parseStat(b []byte) (statLine, bool) {
	var s statLine
	open := bytes.IndexByte(b, '(')
	closeP := bytes.LastIndexByte(b, ')')
	if open < 0 || closeP < open {
		return s, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return s, false
	}
	s.pid, s.comm = pid, string(b[open+1:closeP])
	f := strings.Fields(string(b[closeP+1:]))
	// f[0] is field 3 (state); field N is f[N-3].
	if len(f) < 22 {
		return s, false
	}
	u := func(n int) uint64 { v, _ := strconv.ParseUint(f[n-3], 10, 64); return v }
	s.state = f[0]
	s.ppid = int(u(4))
	s.minflt, s.majflt = u(10), u(12)
	s.utime, s.stime = u(14), u(15)
	s.threads = int(u(20))
	s.rssPages = int64(u(24))
	return s, true
}

// tree returns the descendants of root, parents before children.
func (pr *procReader) tree(root int) []Proc {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	ents, err := os.ReadDir(pr.proc)
	if err != nil {
		return []Proc{}
	}
	stats := map[int]statLine{}
	kids := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(pr.proc + "/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s, ok := parseStat(b)
		if !ok {
			continue
		}
		stats[pid] = s
		kids[s.ppid] = append(kids[s.ppid], pid)
	}
	now := time.Now()
	dt := now.Sub(pr.prevAt).Seconds()
	cpu := map[int]float64{}
	out := []Proc{}
	var walk func(pid int, depth int)
	walk = func(pid int, depth int) {
		if depth > 64 {
			return
		}
		ks := kids[pid]
		sort.Ints(ks)
		for _, k := range ks {
			s := stats[k]
			p := Proc{Pid: k, PPid: s.ppid, Comm: s.comm, State: s.state, Threads: s.threads,
				UserS: float64(s.utime) / pr.tick, SysS: float64(s.stime) / pr.tick,
				RSSKB: s.rssPages * pr.page / 1024, MinFlt: s.minflt, MajFlt: s.majflt, Argv: []string{}}
			total := p.UserS + p.SysS
			cpu[k] = total
			if prev, ok := pr.prevCPU[k]; ok && dt > 0 {
				p.CPUPct = 100 * max(total-prev, 0) / dt
			}
			base := pr.proc + "/" + strconv.Itoa(k)
			if b, err := os.ReadFile(base + "/cmdline"); err == nil && len(b) > 0 {
				b = bytes.TrimSuffix(b, []byte{0})
				for i, a := range bytes.Split(b, []byte{0}) {
					if i == 16 {
						p.Argv = append(p.Argv, "...")
						break
					}
					p.Argv = append(p.Argv, string(a[:min(len(a), 256)]))
				}
			}
			if b, err := os.ReadFile(base + "/status"); err == nil {
				p.VolCS, p.InvolCS = statusField(b, "voluntary_ctxt_switches:"), statusField(b, "nonvoluntary_ctxt_switches:")
				if kb := statusField(b, "VmRSS:"); kb > 0 {
					p.RSSKB = int64(kb)
				}
			}
			out = append(out, p)
			walk(k, depth+1)
		}
	}
	walk(root, 0)
	pr.prevCPU, pr.prevAt = cpu, now
	return out
}

func statusField(b []byte, key string) uint64 {
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
