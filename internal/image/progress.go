package image

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress shows a pull's layers: on a terminal one line per layer,
// redrawn in place; otherwise one plain line per change of state.
type Progress struct {
	w     io.Writer
	tty   bool
	mu    sync.Mutex
	bars  []*Bar
	drawn int
	stop  chan struct{}
	wg    sync.WaitGroup
}

// NewProgress writes to w; tty selects the redrawn lines.
func NewProgress(w io.Writer, tty bool) *Progress {
	p := &Progress{w: w, tty: tty, stop: make(chan struct{})}
	if tty {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			t := time.NewTicker(150 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					p.draw()
				case <-p.stop:
					p.draw()
					return
				}
			}
		}()
	}
	return p
}

// Stop ends the display.
func (p *Progress) Stop() {
	if p == nil {
		return
	}
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
}

func (p *Progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for _, bar := range p.bars {
		b.WriteString("\r\x1b[K")
		b.WriteString(bar.line())
		b.WriteByte('\n')
	}
	p.drawn = len(p.bars)
	io.WriteString(p.w, b.String())
}

// Add starts a line for one item of total bytes.
func (p *Progress) Add(name string, total int64) *Bar {
	if p == nil {
		return nil
	}
	b := &Bar{p: p, name: name, total: total, state: "waiting"}
	p.mu.Lock()
	p.bars = append(p.bars, b)
	p.mu.Unlock()
	return b
}

// Bar is one line of a Progress.
type Bar struct {
	p     *Progress
	name  string
	total int64
	done  atomic.Int64
	state string // under p.mu
	start time.Time
}

func (b *Bar) line() string {
	done := b.done.Load()
	s := fmt.Sprintf("%-36s %-11s", b.name, b.state)
	switch b.state {
	case "downloading", "extracting":
		if b.total > 0 {
			frac := min(float64(done)/float64(b.total), 1)
			n := int(frac * 20)
			s += fmt.Sprintf(" [%s%s] %s/%s", strings.Repeat("=", n), strings.Repeat(" ", 20-n), size(done), size(b.total))
		} else {
			s += " " + size(done)
		}
	case "done":
		s += fmt.Sprintf(" %s in %.1fs", size(b.total), time.Since(b.start).Seconds())
	}
	return s
}

func (b *Bar) set(state string) {
	if b == nil {
		return
	}
	b.p.mu.Lock()
	if b.start.IsZero() {
		b.start = time.Now()
	}
	b.state = state
	b.done.Store(0)
	b.p.mu.Unlock()
	if !b.p.tty {
		b.p.mu.Lock()
		defer b.p.mu.Unlock()
		fmt.Fprintf(b.p.w, "%s: %s\n", b.name, strings.TrimSpace(b.lineState()))
	}
}

func (b *Bar) lineState() string {
	switch b.state {
	case "downloading", "extracting":
		return b.state + " " + size(b.total)
	case "done":
		return fmt.Sprintf("done in %.1fs", time.Since(b.start).Seconds())
	}
	return b.state
}

func (b *Bar) Downloading() { b.set("downloading") }
func (b *Bar) Cached()      { b.set("cached") }
func (b *Bar) Extracting()  { b.set("extracting") }
func (b *Bar) Done()        { b.set("done") }
func (b *Bar) Fail()        { b.set("failed") }

// Reader counts what is read through r on the bar.
func (b *Bar) Reader(r io.Reader) io.Reader {
	if b == nil {
		return r
	}
	return countReader{r, &b.done}
}

type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// size is n bytes for people.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
