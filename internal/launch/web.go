package launch

import (
	"os"
	"os/signal"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/trace"
	"github.com/kbox-go/kbox/internal/web"
)

// observer is --web's side of a run: the dashboard's server, in kbox's
// own process whatever the tier, and what feeds it: a subscription to
// the tracer in the seccomp tier, the in-process child's live stream
// (over an inherited pipe) in the others.
type observer struct {
	hub    *web.Hub
	srv    *web.Server
	linger time.Duration
	// The in-process child's stream.
	pr, pw   *os.File
	readDone chan struct{}
	dropped  atomic.Uint64
}

// startWeb starts the dashboard's server before the guest runs (a busy
// or refused address is a start-up error); nil without --web.
func startWeb(p *Plan) (*observer, error) {
	if !p.Web.Enabled() {
		return nil, nil
	}
	hub := web.NewHub(p.Tier, p.Why, os.Getpid())
	srv, err := web.Listen(p.Web, hub)
	if err != nil {
		return nil, failf(ExitFailure, "%v", err)
	}
	p.verbosef("web: dashboard at %s", srv.URL())
	if p.Web.BindAny {
		p.verbosef("web: listening on %s (--web-bind-any)", srv.Addr())
	}
	return &observer{hub: hub, srv: srv, linger: p.Web.Linger}, nil
}

// inProcess adds the live stream's pipe to the in-process child's trace
// options and starts reading it.
func (o *observer) inProcess(t trace.Options) (trace.Options, error) {
	if o == nil {
		return t, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return t, err
	}
	o.pr, o.pw, o.readDone = pr, pw, make(chan struct{})
	t.Stream = pw
	o.hub.SetUpstreamDropped(o.dropped.Load)
	go func() {
		defer close(o.readDone)
		trace.ReadStream(pr, trace.StreamHandler{Record: o.hub.Ingest, Summary: o.hub.SetSummary,
			Dropped: func(n uint64, _ bool) { o.dropped.Store(n) }})
	}()
	return t, nil
}

// inProcessDone waits for the end of the child's stream (the child has
// exited: its copy of the pipe is closed) and, when the guest ran,
// records its exit.
func (o *observer) inProcessDone(code int, started bool) {
	if o == nil || o.pw == nil {
		return
	}
	o.pw.Close()
	<-o.readDone
	o.pr.Close()
	o.pw = nil
	if started {
		o.hub.Finish(trace.Exit{Code: code}, nil)
	}
}

// seccomp feeds the hub from the seccomp tier's tracer.
func (o *observer) seccomp(tr *trace.Tracer, why string) {
	if o == nil {
		return
	}
	o.hub.SetTier("seccomp", why)
	sub := tr.Subscribe(1 << 14)
	o.hub.SetUpstreamDropped(sub.Dropped)
	o.hub.SetSummarySource(func() *trace.Summary { return tr.Summary(trace.Exit{}) })
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		o.hub.Consume(sub, stop)
	}()
	tr.AtFinish(func(exit trace.Exit, s *trace.Summary) {
		close(stop)
		<-done
		sub.Close()
		o.hub.Finish(exit, s)
	})
}

// close ends the dashboard once the guest has ended (code): after
// --web-linger, or at SIGINT or SIGTERM.
func (o *observer) close(code int) {
	if o == nil {
		return
	}
	o.hub.Finish(trace.Exit{Code: code}, nil) // no-op when the tier did
	if o.linger > 0 {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, unix.SIGINT, unix.SIGTERM)
		t := time.NewTimer(o.linger)
		select {
		case <-t.C:
		case <-sig:
		}
		t.Stop()
		signal.Stop(sig)
	}
	o.srv.Close()
}
