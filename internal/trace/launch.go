package trace

import (
	"fmt"
	"os"
)

// Launch helpers. The seccomp tier's tracer lives in kbox's own process:
// Open(opts) and Engine.SetTracer are all it needs. The in-process tiers
// run the engine in a confined child that cannot open arbitrary files:
// the parent opens the sinks (OpenSinks), passes them to the child as
// inherited descriptors with the Child part of the options in its launch
// spec, and the child makes its tracer with OpenChild.

// Sinks are the files a parent opened for a child's tracer.
type Sinks struct {
	Trace   *os.File // nil: no records
	Summary *os.File // nil: no summary
	Stream  *os.File // nil: no live stream (Options.Stream, not owned)
	own     []*os.File
}

// OpenSinks opens the files the options name ("-" is the parent's
// stderr), in the parent. Close them once the child has started.
func (o Options) OpenSinks() (*Sinks, error) {
	s := &Sinks{}
	open := func(path string) (*os.File, error) {
		if path == "-" {
			return os.Stderr, nil
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, err
		}
		s.own = append(s.own, f)
		return f, nil
	}
	s.Stream = o.Stream
	var err error
	if o.Path != "" {
		if s.Trace, err = open(o.Path); err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
	}
	if o.Summary != "" {
		if s.Summary, err = open(o.Summary); err != nil {
			s.Close()
			return nil, fmt.Errorf("summary: %w", err)
		}
	}
	return s, nil
}

// Close closes the files OpenSinks opened (not stderr).
func (s *Sinks) Close() {
	for _, f := range s.own {
		f.Close()
	}
	s.own = nil
}

// ChildSpec is what an in-process child needs to rebuild the options
// (JSON-encodable, for its launch spec); the sinks travel as descriptors.
type ChildSpec struct {
	Format        string `json:"format"`
	Filter        string `json:"filter"`
	Trace         bool   `json:"trace"`          // a trace descriptor is passed
	Summary       bool   `json:"summary"`        // a summary descriptor is passed
	SummaryFormat string `json:"summary_format"` // "table" for --summary=-, else "json"
	Fast          bool   `json:"fast"`
	Stream        bool   `json:"stream"` // a live stream descriptor is passed (--web)
	Reason        string `json:"reason"` // why the tier was chosen
}

// Child returns the child's part of the options.
func (o Options) Child(reason string) ChildSpec {
	f := "json"
	if o.Summary == "-" {
		f = "table"
	}
	return ChildSpec{Format: o.Format, Filter: o.Filter, Trace: o.Path != "", Summary: o.Summary != "",
		SummaryFormat: f, Fast: o.Fast, Stream: o.Stream != nil, Reason: reason}
}

// OpenChild makes the child's tracer writing to the inherited sinks
// (nil when the spec has neither).
func OpenChild(spec ChildSpec, traceFile, summaryFile *os.File) (*Tracer, error) {
	return OpenChildStream(spec, traceFile, summaryFile, nil)
}

// OpenChildStream is OpenChild with the live stream's descriptor too:
// the tracer keeps a live summary and streams its records and summaries
// to streamFile (StreamTo) for the parent's dashboard.
func OpenChildStream(spec ChildSpec, traceFile, summaryFile, streamFile *os.File) (*Tracer, error) {
	if !spec.Trace && !spec.Summary && !spec.Stream {
		return nil, nil
	}
	o := Options{Format: spec.Format, Filter: spec.Filter, Fast: spec.Fast, SummaryFormat: spec.SummaryFormat, Live: spec.Stream}
	if spec.Stream && streamFile == nil {
		return nil, fmt.Errorf("trace: no descriptor for the live stream")
	}
	if spec.Trace {
		if traceFile == nil {
			return nil, fmt.Errorf("trace: no descriptor for the trace")
		}
		o.File = traceFile
	}
	if spec.Summary {
		if summaryFile == nil {
			return nil, fmt.Errorf("trace: no descriptor for the summary")
		}
		o.SummaryFile = summaryFile
	}
	t, err := Open(o)
	if err != nil {
		return nil, err
	}
	t.SetReason(spec.Reason)
	if spec.Stream {
		t.StreamTo(streamFile)
	}
	return t, nil
}
