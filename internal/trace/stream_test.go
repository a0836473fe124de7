package trace

import (
	"math/rand/v2"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/kbox-go/kbox/internal/abi"
)

// TestParseJSONRoundTrip: ParseJSON reads back what AppendJSON wrote,
// bytes outside ASCII and unknown results included.
func TestParseJSONRoundTrip(t *testing.T) {
	for _, r := range []Record{
		{Seq: 7, TimeNS: 12345, Pid: 3, Tid: 4, Nr: 257, Name: "openat", Family: "path",
			Args: []string{"AT_FDCWD", "\"/t\\303\\251\"", "O_RDONLY"}, Raw: [6]uint64{1<<64 - 100, 2, 3, 4, 5, 6},
			Disp: Kbox, Ret: -2, Known: true, LatNS: 999,
			Paths: []PathInfo{{Guest: "/caf\xc3\xa9\xff", Host: "/srv/caf\xc3\xa9\xff", Existed: true}}},
		{Seq: 8, Name: "exit_group", Family: "process", Args: []string{"0"}, Disp: Emulated, Paths: []PathInfo{}},
	} {
		got, err := ParseJSON(r.AppendJSON(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
	for _, bad := range []string{`{}`, `{"v":2,"type":"syscall"}`, `{"v":1,"type":"syscall","raw":["0x1"]}`, `not json`,
		`{"v":1,"type":"syscall","raw":["0x0","0x0","0x0","0x0","0x0","0x0"],"disp":"bogus"}`} {
		if _, err := ParseJSON([]byte(bad)); err == nil {
			t.Errorf("ParseJSON(%s): no error", bad)
		}
	}
}

// TestStream: a child's tracer streams its records and summaries over
// a pipe; the parent reads every record, the live and the final summary.
func TestStream(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := OpenChildStream(ChildSpec{Stream: true, Reason: "test"}, nil, nil, pw)
	if err != nil {
		t.Fatal(err)
	}
	tr.SetTier("trap", "", true)
	var recs []Record
	var sums []*Summary
	var dropped uint64
	finals := 0
	done := make(chan error)
	go func() {
		done <- ReadStream(pr, StreamHandler{
			Record:  func(r *Record) { recs = append(recs, *r) },
			Summary: func(s *Summary) { sums = append(sums, s) },
			Dropped: func(n uint64, final bool) {
				dropped = n
				if final {
					finals++
				}
			},
		})
	}()
	nr, _ := abi.Host().Nr("close")
	for i := 0; i < 1000; i++ {
		tr.Syscall(&Call{Nr: nr, Args: [6]uint64{uint64(i)}, Pid: 5, Tid: 5, Disp: Emulated, Ret: -9, Known: true, Start: time.Now()})
		if i == 500 {
			time.Sleep(1200 * time.Millisecond) // a live summary goes out
		}
	}
	if err := tr.Finish(Exit{Code: 4}); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if uint64(len(recs))+dropped != 1000 || dropped != 0 {
		t.Errorf("%d records, %d dropped; want 1000, 0", len(recs), dropped)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.Name != "close" || r.Errno() != 9 || r.Disp != Emulated {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	if len(sums) < 2 || finals != 1 {
		t.Fatalf("%d summaries, %d final; want a live one and the final", len(sums), finals)
	}
	last := sums[len(sums)-1]
	if last.Exit.Code == nil || *last.Exit.Code != 4 || last.Syscalls.Total != 1000 || last.Tier != "trap" || last.Reason != "test" {
		t.Errorf("final summary %+v", last)
	}
	if sums[0].Syscalls.Total >= 1000 || sums[0].Syscalls.Total == 0 {
		t.Errorf("live summary counted %d", sums[0].Syscalls.Total)
	}
}

// TestParseFast: the stream's own parser reads what AppendJSON writes as
// encoding/json does, for records with every byte value in their strings;
// what it does not recognise goes to encoding/json.
func TestParseFast(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rs := func() string {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return string(b)
	}
	for i := 0; i < 2000; i++ {
		r := Record{Seq: rng.Uint64(), TimeNS: rng.Int64(), Pid: rng.IntN(1 << 22), Tid: rng.IntN(1 << 22), Nr: rng.IntN(500),
			Name: rs(), Family: rs(), Args: []string{}, Disp: Disposition(rng.IntN(len(dispNames))), LatNS: rng.Int64N(1e9),
			Paths: []PathInfo{}}
		for j := range r.Raw {
			r.Raw[j] = rng.Uint64()
		}
		for j := rng.IntN(4); j > 0; j-- {
			r.Args = append(r.Args, rs())
		}
		for j := rng.IntN(3); j > 0; j-- {
			r.Paths = append(r.Paths, PathInfo{Guest: rs(), Host: rs(), Existed: rng.IntN(2) == 0})
		}
		if rng.IntN(2) == 0 {
			r.Ret, r.Known = rng.Int64N(8192)-4096, true
		}
		line := r.AppendJSON(nil)
		fast, ok := parseFast(line)
		if !ok {
			t.Fatalf("parseFast refused %s", line)
		}
		slow, err := parseSlow(line)
		if err != nil {
			t.Fatalf("parseSlow: %v: %s", err, line)
		}
		if !reflect.DeepEqual(fast, slow) || !reflect.DeepEqual(fast, r) {
			t.Fatalf("%s:\nfast %+v\nslow %+v\nwant %+v", line, fast, slow, r)
		}
		// Cut or reordered: refused (encoding/json's turn).
		if _, ok := parseFast(line[:rng.IntN(len(line)-2)]); ok {
			t.Fatalf("parseFast accepted a cut line")
		}
	}
	if _, ok := parseFast([]byte(`{"type":"syscall","v":1}`)); ok {
		t.Error("parseFast accepted another field order")
	}
}

func BenchmarkParseJSON(b *testing.B) {
	r := Record{Seq: 7, TimeNS: 12345, Pid: 3, Tid: 4, Nr: 262, Name: "newfstatat", Family: "path",
		Args: []string{"AT_FDCWD", "\"/etc/hostname\"", "0x7ffc52a85160", "0"}, Raw: [6]uint64{1, 2, 3, 4, 5, 6},
		Disp: Kbox, Known: true, LatNS: 999, Paths: []PathInfo{{Guest: "/etc/hostname", Host: "/srv/root/etc/hostname", Existed: true}}}
	line := r.AppendJSON(nil)
	for _, c := range []struct {
		name string
		f    func([]byte) (Record, error)
	}{{"fast", ParseJSON}, {"encoding_json", parseSlow}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.f(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
