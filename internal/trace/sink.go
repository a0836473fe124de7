package trace

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Sink buffering: records accumulate in memory and a goroutine writes
// them out, so a slow sink (a terminal, a pipe nobody reads) does not
// stall the guest. Past backlogMax of unwritten bytes, records are
// dropped and counted (the summary reports how many).
const (
	flushAt    = 64 << 10
	flushAfter = 50 * time.Millisecond
	backlogMax = 16 << 20
)

// sink is a buffered, asynchronous record writer. A write error disables
// it, with one warning.
type sink struct {
	w    *os.File
	name string
	own  bool
	log  io.Writer

	mu      sync.Mutex
	buf     []byte
	spare   []byte
	timer   *time.Timer
	failed  atomic.Bool
	err     error
	dropped atomic.Uint64

	writeMu sync.Mutex // serializes writes to w
	kick    chan struct{}
	done    chan struct{}
}

func newSink(w *os.File, name string, own bool, log io.Writer) *sink {
	s := &sink{w: w, name: name, own: own, log: log, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go s.run()
	return s
}

// write appends one record, encoded by enc, to the buffer.
func (s *sink) write(enc func([]byte) []byte) {
	if s.failed.Load() {
		return
	}
	s.mu.Lock()
	if len(s.buf) >= backlogMax {
		s.mu.Unlock()
		s.dropped.Add(1)
		return
	}
	s.buf = enc(s.buf)
	n := len(s.buf)
	if n >= flushAt {
		s.mu.Unlock()
		s.signal()
		return
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(flushAfter, s.signal)
	}
	s.mu.Unlock()
}

func (s *sink) signal() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *sink) run() {
	for {
		select {
		case <-s.kick:
			s.drain()
		case <-s.done:
			return
		}
	}
}

// drain writes out what the buffer holds.
func (s *sink) drain() {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	b := s.buf
	s.buf = s.spare[:0]
	s.spare = nil
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.mu.Unlock()
	if len(b) > 0 && !s.failed.Load() {
		if _, err := s.w.Write(b); err != nil {
			s.fail(err)
		}
	}
	s.mu.Lock()
	if cap(b) <= 4*flushAt {
		s.spare = b[:0]
	}
	s.mu.Unlock()
}

func (s *sink) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.buf = nil
	s.mu.Unlock()
	if !s.failed.Swap(true) {
		fmt.Fprintf(s.log, "kbox: warning: trace: writing %s: %v; tracing stops\n", s.name, err)
	}
}

func (s *sink) errText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return ""
	}
	return s.err.Error()
}

// flush writes out everything buffered, synchronously.
func (s *sink) flush() { s.drain() }

// close flushes and stops the writer; it closes the file it opened.
func (s *sink) close() {
	s.drain()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	if s.own {
		if err := s.w.Close(); err != nil && !s.failed.Load() {
			s.fail(err)
		}
	}
}
