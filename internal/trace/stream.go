package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
	"unicode/utf8"
)

// The live stream: an in-process child's tracer runs in the confined
// child, the dashboard (--web) in the parent. The child streams, over an
// inherited pipe, one JSON object a line:
//
//	{"v":1,"type":"syscall",...}          each record the filter selects (AppendJSON)
//	{"v":1,"type":"summary",...}          the live summary, every second and at the end
//	{"v":1,"type":"stream","dropped":N,"final":B}
//	                                      records the stream lost (its buffer was full), after each summary
//
// Writing happens in a goroutine fed by a Subscription, so the guest
// never waits for the parent: when the pipe is slow the subscription's
// buffer fills and records are dropped and counted.
const (
	streamBuffer       = 1 << 14
	streamFlushEvery   = 25 * time.Millisecond
	streamSummaryEvery = time.Second
)

type streamer struct {
	t    *Tracer
	sub  *Subscription
	w    *bufio.Writer
	buf  []byte
	stop chan struct{}
	done chan struct{}
	err  error
}

// StreamTo streams the tracer's records and live summaries to w (the
// format above) until Finish, which writes the final summary.
func (t *Tracer) StreamTo(w *os.File) {
	if t == nil {
		return
	}
	st := &streamer{t: t, sub: t.Subscribe(streamBuffer), w: bufio.NewWriterSize(w, 64<<10),
		stop: make(chan struct{}), done: make(chan struct{})}
	go st.run()
	t.AtFinish(st.finish)
}

func (st *streamer) run() {
	defer close(st.done)
	flush := time.NewTicker(streamFlushEvery)
	defer flush.Stop()
	sum := time.NewTicker(streamSummaryEvery)
	defer sum.Stop()
	for {
		// The records are taken every streamFlushEvery, not as they
		// come: waking this goroutine for each would cost the guest a
		// futex wake-up and a context switch per call.
		select {
		case <-flush.C:
			st.drain()
			st.flush()
		case <-sum.C:
			st.drain()
			s := st.t.Summary(Exit{})
			st.summary(s, false)
			st.flush()
		case <-st.stop:
			return
		}
	}
}

func (st *streamer) drain() {
	for {
		select {
		case r := <-st.sub.C:
			st.record(&r)
		default:
			return
		}
	}
}

func (st *streamer) record(r *Record) {
	if st.err != nil {
		return
	}
	st.buf = r.AppendJSON(st.buf[:0])
	_, st.err = st.w.Write(st.buf)
}

func (st *streamer) summary(s *Summary, final bool) {
	if st.err != nil {
		return
	}
	if s != nil {
		b, err := json.Marshal(s)
		if err == nil {
			st.w.Write(append(b, '\n'))
		}
	}
	b := fmt.Appendf(nil, `{"v":%d,"type":"stream","dropped":%d,"final":%t}`+"\n", SchemaVersion, st.sub.Dropped(), final)
	_, st.err = st.w.Write(b)
}

func (st *streamer) flush() {
	if st.err == nil {
		st.err = st.w.Flush()
	}
}

// finish drains what the subscription holds and writes the final
// summary (s has the exit status).
func (st *streamer) finish(_ Exit, s *Summary) {
	close(st.stop)
	<-st.done
	st.drain()
	st.sub.Close()
	st.summary(s, true)
	st.flush()
}

// StreamHandler receives what ReadStream reads.
type StreamHandler struct {
	Record  func(*Record)
	Summary func(*Summary)
	// Dropped: the records the child's stream lost so far; final after
	// the last summary.
	Dropped func(n uint64, final bool)
}

// ReadStream reads a live stream (StreamTo) until EOF, calling h for
// each line. Lines it cannot parse are skipped and counted in the
// error it returns at the end.
func ReadStream(r io.Reader, h StreamHandler) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bad := 0
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer (a large summary): gather it.
			full := append([]byte{}, line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				full = append(full, line...)
			}
			line = full
		}
		if len(line) > 0 && (err == nil || err == io.EOF) {
			if !streamLine(line, h) {
				bad++
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if bad > 0 {
		return fmt.Errorf("live stream: %d lines not understood", bad)
	}
	return nil
}

func streamLine(line []byte, h StreamHandler) bool {
	head := line[:min(len(line), 32)]
	switch {
	case bytes.Contains(head, []byte(`"type":"syscall"`)):
		r, err := ParseJSON(line)
		if err != nil {
			return false
		}
		if h.Record != nil {
			h.Record(&r)
		}
	case bytes.Contains(head, []byte(`"type":"summary"`)):
		var s Summary
		if json.Unmarshal(line, &s) != nil {
			return false
		}
		if h.Summary != nil {
			h.Summary(&s)
		}
	case bytes.Contains(head, []byte(`"type":"stream"`)):
		var d struct {
			Dropped uint64 `json:"dropped"`
			Final   bool   `json:"final"`
		}
		if json.Unmarshal(line, &d) != nil {
			return false
		}
		if h.Dropped != nil {
			h.Dropped(d.Dropped, d.Final)
		}
	default:
		return false
	}
	return true
}

// jsonRecord is the JSON v1 record as encoding/json reads it.
type jsonRecord struct {
	V      int        `json:"v"`
	Type   string     `json:"type"`
	Seq    uint64     `json:"seq"`
	TS     int64      `json:"ts_ns"`
	Pid    int        `json:"pid"`
	Tid    int        `json:"tid"`
	Nr     int        `json:"nr"`
	Name   string     `json:"name"`
	Family string     `json:"family"`
	Args   []string   `json:"args"`
	Raw    []string   `json:"raw"`
	Disp   string     `json:"disp"`
	Ret    *int64     `json:"ret"`
	Errno  *string    `json:"errno"`
	Lat    int64      `json:"lat_ns"`
	Paths  []PathInfo `json:"paths"`
}

// ParseJSON reads one JSON v1 record (AppendJSON's output) back. Strings
// come back as the bytes they were (AppendJSON escapes each byte outside
// printable ASCII as one code point).
func ParseJSON(line []byte) (Record, error) {
	if r, ok := parseFast(line); ok {
		return r, nil
	}
	return parseSlow(line)
}

// parseSlow is ParseJSON through encoding/json.
func parseSlow(line []byte) (Record, error) {
	var j jsonRecord
	if err := json.Unmarshal(line, &j); err != nil {
		return Record{}, err
	}
	if j.V != SchemaVersion || j.Type != "syscall" {
		return Record{}, fmt.Errorf("not a v%d syscall record (v %d, type %q)", SchemaVersion, j.V, j.Type)
	}
	if len(j.Raw) != 6 {
		return Record{}, errors.New("raw: want 6 registers")
	}
	r := Record{Seq: j.Seq, TimeNS: j.TS, Pid: j.Pid, Tid: j.Tid, Nr: j.Nr, Name: unbyte(j.Name), Family: unbyte(j.Family),
		Args: j.Args, LatNS: j.Lat, Paths: j.Paths}
	for i, a := range j.Args {
		r.Args[i] = unbyte(a)
	}
	for i := range r.Paths {
		r.Paths[i].Guest, r.Paths[i].Host = unbyte(r.Paths[i].Guest), unbyte(r.Paths[i].Host)
	}
	if r.Paths == nil {
		r.Paths = []PathInfo{}
	}
	for i, s := range j.Raw {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			return Record{}, fmt.Errorf("raw[%d]: %w", i, err)
		}
		r.Raw[i] = v
	}
	d, ok := ParseDisposition(j.Disp)
	if !ok {
		return Record{}, fmt.Errorf("disposition %q", j.Disp)
	}
	r.Disp = d
	if j.Ret != nil {
		r.Ret, r.Known = *j.Ret, true
	}
	return r, nil
}

// ParseDisposition is the inverse of Disposition.String.
func ParseDisposition(s string) (Disposition, bool) {
	for i, n := range dispNames {
		if n == s {
			return Disposition(i), true
		}
	}
	return 0, false
}

// unbyte turns the code points U+0080..U+00FF that AppendJSON made of
// single bytes back into those bytes.
func unbyte(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	b := make([]byte, 0, len(s))
	for _, c := range s {
		if c < 0x100 {
			b = append(b, byte(c))
		} else {
			b = utf8.AppendRune(b, c)
		}
	}
	return string(b)
}
