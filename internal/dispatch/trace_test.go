package dispatch

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/trace"
	"github.com/kbox-go/kbox/internal/vfs"
)

// TestDispatchTraced dispatches calls through a tracing engine and checks
// the records: decoded arguments, guest and host paths, dispositions,
// results completed by the tier, and the summary.
func TestDispatchTraced(t *testing.T) {
	e, _, req := testEngine(t)
	dir := t.TempDir()
	out, sum := filepath.Join(dir, "trace.json"), filepath.Join(dir, "summary.json")
	tr, err := trace.Open(trace.Options{Path: out, Format: "json", Summary: sum, Arch: e.Arch()})
	if err != nil {
		t.Fatal(err)
	}
	e.SetTracer(tr)
	mem := req("getcwd").Mem.(*fakeMem)
	at := func(r *Request) *Request { return r }
	cwd := int64(unix.AT_FDCWD)
	fdcwd := uint64(cwd)

	// An open: the engine answers with a descriptor the tier installs,
	// then reports its number.
	f := mem.put(0, []byte("/f\x00"))
	r := at(req("openat", fdcwd, f, unix.O_RDONLY|unix.O_CLOEXEC))
	res := e.Dispatch(r)
	if res.Kind != Inject {
		t.Fatalf("openat: %+v", res)
	}
	unix.Close(res.FD)
	e.TraceResult(r, 7, true)
	e.TraceResult(r, 8, true) // recorded once only

	// A create, a failure, a refusal and a call kbox does not implement.
	d := mem.put(64, []byte("/newdir\x00"))
	if res := e.Dispatch(at(req("mkdirat", fdcwd, d, 0o755))); res.Kind != Value {
		t.Fatalf("mkdirat: %+v", res)
	}
	missing := mem.put(128, []byte("/missing\x00"))
	if res := e.Dispatch(at(req("unlinkat", fdcwd, missing, 0))); res.Err != unix.ENOENT {
		t.Fatalf("unlinkat: %+v", res)
	}
	dev := mem.put(192, []byte("/dev0\x00"))
	if res := e.Dispatch(at(req("mknodat", fdcwd, dev, unix.S_IFCHR|0o600, 0x0101))); res.Err != unix.EPERM {
		t.Fatalf("mknodat: %+v", res)
	}
	unsupported := 1000 // beyond every syscall table
	if res := e.Dispatch(&Request{Nr: unsupported, Tid: os.Getpid(), Tgid: os.Getpid(), Mem: mem, Proc: r.Proc, FDs: selfFDs{}}); res.Err != unix.ENOSYS {
		t.Fatalf("nr %d: %+v", unsupported, res)
	}
	if err := tr.Finish(trace.Exit{Code: 0}); err != nil {
		t.Fatal(err)
	}

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		recs = append(recs, m)
	}
	if len(recs) != 6 || recs[0]["type"] != "header" {
		t.Fatalf("%d lines, want a header and 5 records:\n%s", len(recs), b)
	}
	recs = recs[1:]
	args := func(m map[string]any) string {
		var s []string
		for _, a := range m["args"].([]any) {
			s = append(s, a.(string))
		}
		return strings.Join(s, ", ")
	}
	root := e.ns.Root().Host
	for i, want := range []struct {
		name, args, disp string
		ret              float64
		errno            any
		guest, host      string
	}{
		{"openat", `AT_FDCWD, "/f", O_RDONLY|O_CLOEXEC`, "kbox", 7, nil, "/f", filepath.Join(root, "f")},
		{"mkdirat", `AT_FDCWD, "/newdir", 0755`, "kbox", 0, nil, "/newdir", filepath.Join(root, "newdir")},
		{"unlinkat", `AT_FDCWD, "/missing", 0`, "kbox", -2, "ENOENT", "", ""},
		{"mknodat", `AT_FDCWD, "/dev0", S_IFCHR|0600, 0x101`, "denied", -1, "EPERM", "", ""},
		{"", "", "unsupported", -38, "ENOSYS", "", ""},
	} {
		m := recs[i]
		if want.name != "" && (m["name"] != want.name || args(m) != want.args) {
			t.Errorf("record %d: %v(%s), want %s(%s)", i, m["name"], args(m), want.name, want.args)
		}
		if m["disp"] != want.disp || m["ret"] != want.ret || m["errno"] != want.errno {
			t.Errorf("record %d: disp %v ret %v errno %v, want %s %v %v", i, m["disp"], m["ret"], m["errno"], want.disp, want.ret, want.errno)
		}
		paths := m["paths"].([]any)
		if want.guest != "" {
			if len(paths) == 0 {
				t.Errorf("record %d: no paths", i)
				continue
			}
			p := paths[0].(map[string]any)
			if p["guest"] != want.guest || p["host"] != want.host {
				t.Errorf("record %d: path %v, want %s -> %s", i, p, want.guest, want.host)
			}
		}
		if m["pid"].(float64) != float64(os.Getpid()) {
			t.Errorf("record %d: pid %v", i, m["pid"])
		}
	}
	var s trace.Summary
	sb, _ := os.ReadFile(sum)
	if err := json.Unmarshal(sb, &s); err != nil {
		t.Fatal(err)
	}
	if s.Syscalls.Total != 5 || s.Denied["mknodat"] != 1 || len(s.ENOSYS) != 1 ||
		strings.Join(s.Files.Created, ",") != "/newdir" {
		t.Errorf("summary: %s", sb)
	}
}

// TestDispatchUntraced: without a tracer a request carries no trace note
// and TraceResult does nothing.
func TestDispatchUntraced(t *testing.T) {
	e, _, req := testEngine(t)
	r := req("getcwd", 0, 0)
	e.Dispatch(r)
	if r.trace != nil {
		t.Error("trace note without a tracer")
	}
	e.TraceResult(r, 0, true)
}

// BenchmarkDispatch measures the tracing hook: nohook (the engine's
// serve, i.e. Dispatch before the hook existed), off (one nil check), on
// with a filter that excludes the call, and on with records written.
func BenchmarkDispatch(b *testing.B) {
	for _, mode := range []string{"nohook", "off", "filtered", "on"} {
		b.Run(mode, func(b *testing.B) {
			ns := vfs.NewNamespace()
			if err := ns.Add("/", b.TempDir(), false, vfs.KindBind); err != nil {
				b.Fatal(err)
			}
			e, err := New(Config{Arch: abi.Host(), NS: ns, Log: io.Discard, ExecDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			proc := e.Procs.AddInitial(os.Getpid())
			mem := &fakeMem{base: 0x10000, b: make([]byte, 4096)}
			switch mode {
			case "filtered":
				tr, err := trace.Open(trace.Options{Path: os.DevNull, Filter: "trace=network", Arch: e.Arch()})
				if err != nil {
					b.Fatal(err)
				}
				e.SetTracer(tr)
			case "on":
				tr, err := trace.Open(trace.Options{Path: os.DevNull, Arch: e.Arch()})
				if err != nil {
					b.Fatal(err)
				}
				e.SetTracer(tr)
			}
			// getuid: the cheapest call the engine answers (from the
			// process's credentials), so the hook's cost is not hidden.
			r := &Request{Nr: e.arch.MustNr("getuid"), Tid: os.Getpid(), Tgid: os.Getpid(),
				Mem: mem, FDs: selfFDs{}, Proc: proc}
			b.ResetTimer()
			dispatch := e.Dispatch
			if mode == "nohook" {
				dispatch = e.serve
			}
			for i := 0; i < b.N; i++ {
				if res := dispatch(r); res.Kind != Value {
					b.Fatalf("getuid: %+v", res)
				}
				r.trace = nil
			}
		})
	}
}
