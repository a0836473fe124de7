package trace

import (
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// SchemaVersion is the version of the JSON records (field "v"); it
// changes when a field changes meaning or disappears (added fields do not
// change it). docs/observability.md documents it.
const SchemaVersion = 1

// Disposition says who answered a call.
type Disposition uint8

const (
	// Host: the host kernel ran the call as the guest issued it (the
	// seccomp tier's CONTINUE, the in-process tiers' native calls).
	Host Disposition = iota
	// Kbox: kbox's dispatch engine served it.
	Kbox
	// Emulated: the in-process core answered it from its own state
	// (descriptor table, signals, memory map).
	Emulated
	// Denied: kbox refused it (the dangerous set, a path outside the
	// guest's reach, a signal to a host process).
	Denied
	// Fast: the rewrite tier's fast path ran it without a trap.
	Fast
	// Unsupported: kbox does not implement it; ENOSYS.
	Unsupported
)

var dispNames = [...]string{Host: "host", Kbox: "kbox", Emulated: "emulated", Denied: "denied", Fast: "fast", Unsupported: "unsupported"}

func (d Disposition) String() string {
	if int(d) < len(dispNames) {
		return dispNames[d]
	}
	return "disposition(" + strconv.Itoa(int(d)) + ")"
}

// PathInfo is one path a call named: as the guest gave it resolved to
// the canonical guest path, and the host path it reached.
type PathInfo struct {
	Guest string `json:"guest"`
	Host  string `json:"host"`
	// Existed: the object existed when the call resolved it (a create
	// that succeeds on a path that did not exist made it).
	Existed bool `json:"existed"`
}

// Call is what a tier or the engine reports about one call. The tracer
// turns it into a Record.
type Call struct {
	Nr   int
	Args [6]uint64
	Pid  int
	Tid  int
	// Mem reads the guest's memory to decode strings and buffers; nil
	// shows pointers in hex.
	Mem Memory
	// FDName names what a guest descriptor points to; may be nil.
	FDName func(fd int) string
	Disp   Disposition
	// Ret is the raw result (-errno on failure) when Known.
	Ret   int64
	Known bool
	Start time.Time
	Lat   time.Duration
	Paths []PathInfo
	// entry: the input arguments rendered when the call started (Entry).
	entry []string
}

// Record is one traced call, as the encoders write it.
type Record struct {
	Seq    uint64
	TimeNS int64 // monotonic, since the tracer started
	Pid    int
	Tid    int
	Nr     int
	Name   string
	Family string
	Args   []string
	Raw    [6]uint64
	Disp   Disposition
	Ret    int64
	Known  bool
	LatNS  int64
	Paths  []PathInfo
}

// Errno returns the call's errno, or 0.
func (r *Record) Errno() unix.Errno {
	if r.Known && r.Ret < 0 && r.Ret >= -4095 {
		return unix.Errno(-r.Ret)
	}
	return 0
}

// AppendText appends the strace-like line of r (with its newline):
//
//	0.001234 [pid 42] openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3 <0.000012> kbox "/srv/root/etc/passwd"
//
// The time is seconds since the trace started; the pid tag is [pid P] or
// [pid P/T] for a thread T of process P; the result is "= ?" when kbox
// cannot know it (the host kernel runs the call after kbox answered);
// then the latency, the disposition and the host paths the call reached.
func (r *Record) AppendText(b []byte) []byte {
	b = appendSeconds(b, r.TimeNS)
	b = append(b, " [pid "...)
	b = strconv.AppendInt(b, int64(r.Pid), 10)
	if r.Tid != r.Pid && r.Tid != 0 {
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(r.Tid), 10)
	}
	b = append(b, "] "...)
	b = append(b, r.Name...)
	b = append(b, '(')
	b = append(b, strings.Join(r.Args, ", ")...)
	b = append(b, ") = "...)
	switch e := r.Errno(); {
	case !r.Known:
		b = append(b, '?')
	case e != 0:
		b = append(b, "-1 "...)
		b = append(b, ErrnoName(e)...)
		b = append(b, " ("...)
		b = append(b, errnoText(e)...)
		b = append(b, ')')
	case addrResult[r.Name]:
		b = append(b, "0x"...)
		b = strconv.AppendUint(b, uint64(r.Ret), 16)
	default:
		b = strconv.AppendInt(b, r.Ret, 10)
	}
	b = append(b, " <"...)
	b = appendSeconds(b, r.LatNS)
	b = append(b, "> "...)
	b = append(b, r.Disp.String()...)
	for _, p := range r.Paths {
		if p.Host != "" {
			b = append(b, ' ')
			b = strconv.AppendQuote(b, p.Host)
		}
	}
	return append(b, '\n')
}

func appendSeconds(b []byte, ns int64) []byte {
	b = strconv.AppendInt(b, ns/1e9, 10)
	b = append(b, '.')
	frac := strconv.FormatInt((ns%1e9)/1e3+1e6, 10) // 1xxxxxx: six digits after the 1
	return append(b, frac[1:]...)
}

// AppendJSON appends r as one JSON object and a newline. The fields, all
// always present (docs/observability.md):
//
//	{"v":1,"type":"syscall","seq":N,"ts_ns":N,"pid":N,"tid":N,"nr":N,
//	 "name":S,"family":S,"args":[S...],"raw":[S x6],"disp":S,
//	 "ret":N|null,"errno":S|null,"lat_ns":N,"paths":[{"guest":S,"host":S,"existed":B}...]}
func (r *Record) AppendJSON(b []byte) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, SchemaVersion, 10)
	b = append(b, `,"type":"syscall","seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"ts_ns":`...)
	b = strconv.AppendInt(b, r.TimeNS, 10)
	b = append(b, `,"pid":`...)
	b = strconv.AppendInt(b, int64(r.Pid), 10)
	b = append(b, `,"tid":`...)
	b = strconv.AppendInt(b, int64(r.Tid), 10)
	b = append(b, `,"nr":`...)
	b = strconv.AppendInt(b, int64(r.Nr), 10)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, r.Name)
	b = append(b, `,"family":`...)
	b = appendJSONString(b, r.Family)
	b = append(b, `,"args":[`...)
	for i, a := range r.Args {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, a)
	}
	b = append(b, `],"raw":[`...)
	for i, a := range r.Raw {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `"0x`...)
		b = strconv.AppendUint(b, a, 16)
		b = append(b, '"')
	}
	b = append(b, `],"disp":`...)
	b = appendJSONString(b, r.Disp.String())
	b = append(b, `,"ret":`...)
	if r.Known {
		b = strconv.AppendInt(b, r.Ret, 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"errno":`...)
	if e := r.Errno(); e != 0 {
		b = appendJSONString(b, ErrnoName(e))
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"lat_ns":`...)
	b = strconv.AppendInt(b, r.LatNS, 10)
	b = append(b, `,"paths":[`...)
	for i, p := range r.Paths {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"guest":`...)
		b = appendJSONString(b, p.Guest)
		b = append(b, `,"host":`...)
		b = appendJSONString(b, p.Host)
		b = append(b, `,"existed":`...)
		b = strconv.AppendBool(b, p.Existed)
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}

// addrResult: calls whose result is an address, shown in hex.
var addrResult = map[string]bool{"mmap": true, "mremap": true, "brk": true, "shmat": true}

// appendJSONString quotes s as a JSON string. Paths are bytes, not text:
// every byte outside printable ASCII is escaped as \u00XX, so each code
// point of the decoded string is one byte of the original.
func appendJSONString(b []byte, s string) []byte {
	const hexd = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
