package trace

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

// mem is guest memory for tests: one buffer at base, EFAULT elsewhere.
type mem struct {
	base uint64
	b    []byte
}

func (m *mem) Read(addr uint64, p []byte) error {
	if addr < m.base || addr-m.base+uint64(len(p)) > uint64(len(m.b)) {
		return unix.EFAULT
	}
	copy(p, m.b[addr-m.base:])
	return nil
}

func (m *mem) ReadString(addr uint64, max int) (string, error) {
	for n := 0; n <= max; n++ {
		var c [1]byte
		if err := m.Read(addr+uint64(n), c[:]); err != nil {
			return "", err
		}
		if c[0] == 0 {
			return string(m.b[addr-m.base : addr-m.base+uint64(n)]), nil
		}
	}
	return "", unix.ENAMETOOLONG
}

func (m *mem) put(off int, b []byte) uint64 {
	copy(m.b[off:], b)
	return m.base + uint64(off)
}

func newMem() *mem { return &mem{base: 0x10000, b: make([]byte, 1<<14)} }

func u(i int) uint64 { return uint64(int64(i)) }

func TestDecodeText(t *testing.T) {
	m := newMem()
	passwd := m.put(0, []byte("/etc/passwd\x00"))
	odd := m.put(64, []byte("a\"b\\c\n\x01\x0272\x00"))
	wbuf := m.put(128, []byte("hello, world: this is longer than thirty-two bytes\x00"))
	argv := m.put(512, make([]byte, 32))
	a0, a1 := m.put(600, []byte("ls\x00")), m.put(608, []byte("-l\x00"))
	binary.LittleEndian.PutUint64(m.b[512:], a0)
	binary.LittleEndian.PutUint64(m.b[520:], a1)
	env := m.put(700, make([]byte, 24))
	binary.LittleEndian.PutUint64(m.b[700:], a0)
	binary.LittleEndian.PutUint64(m.b[708:], a1)
	pipefds := m.put(800, []byte{3, 0, 0, 0, 4, 0, 0, 0})
	fdName := func(fd int) string {
		if fd == 3 {
			return "/etc/passwd"
		}
		return ""
	}
	amd64 := abi.Host().Name == "amd64"
	cases := []struct {
		name  string
		args  []uint64
		ret   int64
		known bool
		want  string
	}{
		{"openat", []uint64{u(unix.AT_FDCWD), passwd, unix.O_RDONLY | unix.O_CLOEXEC}, 3, true,
			`openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3`},
		{"openat", []uint64{u(unix.AT_FDCWD), passwd, unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, 0o644}, -int64(unix.EACCES), true,
			`openat(AT_FDCWD, "/etc/passwd", O_WRONLY|O_CREAT|O_TRUNC, 0644) = -1 EACCES (Permission denied)`},
		{"openat", []uint64{3, odd, unix.O_RDONLY}, -int64(unix.ENOENT), true,
			`openat(3</etc/passwd>, "a\"b\\c\n\1\00272", O_RDONLY) = -1 ENOENT (No such file or directory)`},
		{"mmap", []uint64{0, 8192, unix.PROT_READ | unix.PROT_WRITE, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS, u(-1), 0}, 0x7f0000000000, true,
			`mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, NULL) = 0x7f0000000000`},
		{"mprotect", []uint64{0x1000, 4096, 0}, 0, true, `mprotect(0x1000, 4096, PROT_NONE) = 0`},
		{"clone", []uint64{unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD |
			unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID, 0x7000, 0x7100, 0x7200, 0x7300}, 42, true,
			`clone(CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, 0x7000, 0x7100, 0x7200, 0x7300) = 42`},
		{"clone", []uint64{unix.CLONE_CHILD_SETTID | unix.CLONE_CHILD_CLEARTID | uint64(unix.SIGCHLD), 0, 0, 0, 0}, 7, true,
			`clone(CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, NULL, NULL, NULL, NULL) = 7`},
		{"kill", []uint64{1234, uint64(unix.SIGTERM)}, -int64(unix.EPERM), true,
			`kill(1234, SIGTERM) = -1 EPERM (Operation not permitted)`},
		{"tgkill", []uint64{10, 11, 34}, 0, true, `tgkill(10, 11, SIGRT_2) = 0`},
		{"write", []uint64{1, wbuf, 50}, 50, true,
			`write(1, "hello, world: this is longer tha"..., 50) = 50`},
		{"read", []uint64{3, wbuf, 100}, 5, true, `read(3</etc/passwd>, "hello", 100) = 5`},
		{"read", []uint64{0, wbuf, 100}, -int64(unix.EINTR), true, `read(0, 0x10080, 100) = -1 EINTR (Interrupted system call)`},
		{"execve", []uint64{passwd, argv, env}, 0, false,
			`execve("/etc/passwd", ["ls", "-l"], 0x102bc /* 2 vars */) = ?`},
		{"unlinkat", []uint64{u(unix.AT_FDCWD), passwd, unix.AT_REMOVEDIR}, 0, true, `unlinkat(AT_FDCWD, "/etc/passwd", AT_REMOVEDIR) = 0`},
		{"newfstatat", []uint64{u(unix.AT_FDCWD), passwd, 0x1000, unix.AT_SYMLINK_NOFOLLOW}, 0, true,
			`newfstatat(AT_FDCWD, "/etc/passwd", 0x1000, AT_SYMLINK_NOFOLLOW) = 0`},
		{"faccessat2", []uint64{u(unix.AT_FDCWD), passwd, unix.R_OK | unix.X_OK, unix.AT_EACCESS}, 0, true,
			`faccessat2(AT_FDCWD, "/etc/passwd", R_OK|X_OK, AT_EACCESS) = 0`},
		{"mknodat", []uint64{u(unix.AT_FDCWD), passwd, unix.S_IFIFO | 0o600, 0}, 0, true,
			`mknodat(AT_FDCWD, "/etc/passwd", S_IFIFO|0600, NULL) = 0`},
		{"fcntl", []uint64{3, unix.F_SETFD, unix.FD_CLOEXEC}, 0, true, `fcntl(3</etc/passwd>, F_SETFD, FD_CLOEXEC) = 0`},
		{"fcntl", []uint64{5, unix.F_GETFL}, 0x8002, true, `fcntl(5, F_GETFL) = 32770`},
		{"socket", []uint64{unix.AF_UNIX, unix.SOCK_STREAM | unix.SOCK_CLOEXEC, 0}, 4, true,
			`socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0) = 4`},
		{"pipe2", []uint64{pipefds, unix.O_CLOEXEC}, 0, true, `pipe2([3, 4], O_CLOEXEC) = 0`},
		{"rt_sigprocmask", []uint64{unix.SIG_SETMASK, 0, 0x2000, 8}, 0, true, `rt_sigprocmask(SIG_SETMASK, NULL, 0x2000, 8) = 0`},
		{"lseek", []uint64{3, u(-10), unix.SEEK_END}, 90, true, `lseek(3</etc/passwd>, -10, SEEK_END) = 90`},
		{"exit_group", []uint64{1}, 0, false, `exit_group(1) = ?`},
		{"openat", []uint64{u(unix.AT_FDCWD), 0x5, unix.O_RDONLY}, -int64(unix.EFAULT), true,
			`openat(AT_FDCWD, 0x5, O_RDONLY) = -1 EFAULT (Bad address)`},
	}
	if !amd64 {
		// arm64 has no legacy calls and another flag layout; the shared cases still hold.
		t.Log("not amd64: the cases use only names arm64 also has")
	}
	for _, c := range cases {
		var a [6]uint64
		copy(a[:], c.args)
		nr, ok := abi.Host().Nr(c.name)
		if !ok {
			t.Fatalf("%s: no such syscall", c.name)
		}
		r := Record{Pid: 1, Tid: 1, Nr: nr, Name: c.name, Raw: a, Ret: c.ret, Known: c.known,
			Args: Decode(c.name, a, m, fdName, c.ret, c.known)}
		line := string(r.AppendText(nil))
		// Strip the time and pid prefix and the latency suffix.
		got := line[strings.Index(line, "] ")+2 : strings.LastIndex(line, " <")]
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

func TestTextLine(t *testing.T) {
	r := Record{TimeNS: 1_500_000_123, Pid: 7, Tid: 9, Name: "close", Args: []string{"3"}, Ret: 0, Known: true,
		LatNS: 12_345, Disp: Host, Paths: []PathInfo{{Guest: "/x", Host: "/srv/root/x"}}}
	want := `1.500000 [pid 7/9] close(3) = 0 <0.000012> host "/srv/root/x"` + "\n"
	if got := string(r.AppendText(nil)); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      "plain",
		"\x00":       `\0`,
		"\x001":      `\0001`,
		"\x7f\xff":   `\177\377`,
		"tab\there":  `tab\there`,
		"q\"b\\":     `q\"b\\`,
		"\r\v\f":     `\r\v\f`,
		"\x1b[0m":    `\33[0m`,
		"\x0512\x05": `\00512\5`,
	} {
		if got := escape([]byte(in), true); got != want {
			t.Errorf("escape(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestUnknownCallInHex(t *testing.T) {
	got := Decode("no_such_call", [6]uint64{1, 0, 0x10, 0, 0, 0xff}, nil, nil, 0, true)
	want := []string{"0x1", "NULL", "0x10", "NULL", "NULL", "0xff"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestJSONSchema checks every field of a record is present with its type,
// and that paths survive byte for byte.
func TestJSONSchema(t *testing.T) {
	for _, r := range []Record{
		{Seq: 3, TimeNS: 10, Pid: 1, Tid: 2, Nr: 257, Name: "openat", Family: "path", Args: []string{"AT_FDCWD", `"/a"`, "O_RDONLY"},
			Raw: [6]uint64{1 << 63, 2}, Disp: Kbox, Ret: -2, Known: true, LatNS: 5,
			Paths: []PathInfo{{Guest: "/a\xff\"", Host: "/h/a\xff\"", Existed: true}}},
		{Name: "execve", Args: []string{}, Paths: []PathInfo{}, Disp: Host},
	} {
		line := r.AppendJSON(nil)
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("not one line: %q", line)
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		types := map[string]string{"v": "number", "type": "string", "seq": "number", "ts_ns": "number", "pid": "number",
			"tid": "number", "nr": "number", "name": "string", "family": "string", "args": "array", "raw": "array",
			"disp": "string", "ret": "number|null", "errno": "string|null", "lat_ns": "number", "paths": "array"}
		for k, want := range types {
			v, ok := m[k]
			if !ok {
				t.Errorf("field %s missing: %s", k, line)
				continue
			}
			if got := jsonType(v); !strings.Contains(want, got) {
				t.Errorf("field %s: %s, want %s", k, got, want)
			}
		}
		if len(m) != len(types) {
			t.Errorf("%d fields, want %d: %s", len(m), len(types), line)
		}
		if m["v"].(float64) != SchemaVersion || m["type"] != "syscall" {
			t.Errorf("version/type: %s", line)
		}
		if raw := m["raw"].([]any); len(raw) != 6 {
			t.Errorf("raw has %d entries", len(raw))
		}
		if r.Known {
			if m["errno"] != "ENOENT" || m["ret"].(float64) != -2 {
				t.Errorf("errno/ret: %s", line)
			}
			if m["raw"].([]any)[0] != "0x8000000000000000" {
				t.Errorf("raw[0] = %v", m["raw"].([]any)[0])
			}
			p := m["paths"].([]any)[0].(map[string]any)
			if decodeBytes(p["guest"].(string)) != "/a\xff\"" || p["existed"] != true {
				t.Errorf("path: %v", p)
			}
		} else if m["ret"] != nil || m["errno"] != nil {
			t.Errorf("unknown result not null: %s", line)
		}
	}
}

func decodeBytes(s string) string {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r))
	}
	return string(b)
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case bool:
		return "bool"
	}
	return "object"
}

func TestParseFilter(t *testing.T) {
	for _, c := range []struct {
		spec     string
		yes, not []string
	}{
		{"", []string{"openat", "read", "mmap"}, nil},
		{"trace=file,process", []string{"openat", "stat", "execve", "clone", "exit_group", "unlinkat", "chdir"}, []string{"read", "mmap", "socket"}},
		{"%file", []string{"openat", "readlinkat"}, []string{"close"}},
		{"trace=!file", []string{"read", "mmap"}, []string{"openat", "execve"}},
		{"network", []string{"socket", "connect", "sendto"}, []string{"openat"}},
		{"signal", []string{"kill", "rt_sigaction", "rt_sigprocmask"}, []string{"setpriority", "read"}},
		{"ipc", []string{"shmget", "semop"}, []string{"pipe"}},
		{"desc", []string{"read", "close", "fstat", "openat", "getdents64"}, []string{"getpid", "brk"}},
		{"memory", []string{"mmap", "brk", "mprotect"}, []string{"read"}},
		{"openat,close", []string{"openat", "close"}, []string{"read"}},
		{"all", []string{"read"}, nil},
		{"!all", nil, []string{"read", "openat"}},
	} {
		f, err := ParseFilter(c.spec)
		if err != nil {
			t.Fatalf("%q: %v", c.spec, err)
		}
		for _, n := range c.yes {
			if !f.Match(n) {
				t.Errorf("%q should select %s", c.spec, n)
			}
		}
		for _, n := range c.not {
			if f.Match(n) {
				t.Errorf("%q should not select %s", c.spec, n)
			}
		}
	}
	for _, bad := range []string{"trace=fille", "openat,,close", "%openat", "trace=open at"} {
		_, err := ParseFilter(bad)
		if err == nil {
			t.Errorf("%q: no error", bad)
			continue
		}
		if !strings.Contains(err.Error(), "classes: desc, file, ipc, memory, network, process, signal") &&
			!strings.Contains(err.Error(), "empty item") {
			t.Errorf("%q: error does not list the classes: %v", bad, err)
		}
	}
}

func TestSummary(t *testing.T) {
	a := newAggregator()
	rec := func(name string, ret int64, disp Disposition, lat int64, raw [6]uint64, paths ...PathInfo) *Record {
		nr, _ := abi.Host().Nr(name)
		return &Record{Nr: nr, Name: name, Family: Family(name), Ret: ret, Known: true, Disp: disp, LatNS: lat, Raw: raw, Paths: paths, Pid: 5}
	}
	a.add(rec("openat", 3, Kbox, 2000, [6]uint64{0, 0, unix.O_WRONLY | unix.O_CREAT}, PathInfo{Guest: "/tmp/new", Existed: false}), nil)
	a.add(rec("openat", 4, Kbox, 1000, [6]uint64{0, 0, unix.O_WRONLY | unix.O_CREAT}, PathInfo{Guest: "/tmp/old", Existed: true}), nil)
	a.add(rec("openat", -2, Kbox, 1000, [6]uint64{0, 0, unix.O_RDONLY}, PathInfo{Guest: "/nope"}), nil)
	a.add(rec("unlinkat", 0, Kbox, 500, [6]uint64{}, PathInfo{Guest: "/tmp/gone", Existed: true}), nil)
	a.add(rec("mkdirat", 0, Kbox, 500, [6]uint64{}, PathInfo{Guest: "/d"}), nil)
	a.add(rec("ptrace", -1, Denied, 10, [6]uint64{}), nil)
	a.add(rec("io_uring_setup", -38, Unsupported, 10, [6]uint64{}), nil)
	a.add(rec("execve", 0, Host, 100, [6]uint64{}, PathInfo{Guest: "/bin/ls"}), []string{"ls", "-l"})
	s := a.finish(Exit{Code: 3}, 2*time.Second, false)
	s.Tier, s.Unseen = "seccomp", "calls the filter allows"

	var buf bytes.Buffer
	if err := s.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"v", "type", "exit", "wall_s", "cpu", "tier", "tier_reason", "unseen", "syscalls", "enosys",
		"denied", "fast_path", "files", "processes", "peak_rss_kb", "trace", "extra"} {
		if _, ok := m[k]; !ok {
			t.Errorf("summary lacks %s", k)
		}
	}
	if s.Exit.Code == nil || *s.Exit.Code != 3 || s.Exit.Signal != nil {
		t.Errorf("exit: %+v", s.Exit)
	}
	if s.WallS != 2 {
		t.Errorf("wall %v", s.WallS)
	}
	sc := s.Syscalls
	if sc.Total != 8 || sc.Errors != 3 || sc.ByName["openat"].Calls != 3 || sc.ByName["openat"].Errors != 1 ||
		sc.ByErrno["ENOENT"] != 1 || sc.ByErrno["ENOSYS"] != 1 || sc.ByFamily["path"].Calls != 5 {
		t.Errorf("counts: %+v by name %v", sc, sc.ByName["openat"])
	}
	if s.Denied["ptrace"] != 1 || s.ENOSYS["io_uring_setup"] != 1 || len(s.Denied) != 1 || len(s.ENOSYS) != 1 {
		t.Errorf("denied %v enosys %v", s.Denied, s.ENOSYS)
	}
	if strings.Join(s.Files.Created, ",") != "/d,/tmp/new" || strings.Join(s.Files.Written, ",") != "/tmp/new,/tmp/old" ||
		strings.Join(s.Files.Removed, ",") != "/tmp/gone" {
		t.Errorf("files: %+v", s.Files)
	}
	if len(s.Procs) != 1 || s.Procs[0].Path != "/bin/ls" || strings.Join(s.Procs[0].Argv, " ") != "ls -l" {
		t.Errorf("processes: %+v", s.Procs)
	}
	if s.CPU.KboxUserS+s.CPU.KboxSysS <= 0 || s.RSS.Kbox <= 0 {
		t.Errorf("no kbox cpu/rss: %+v %+v", s.CPU, s.RSS)
	}

	buf.Reset()
	if err := s.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if !strings.HasPrefix(lines[0], "% time     seconds  usecs/call     calls    errors syscall") {
		t.Errorf("header: %q", lines[0])
	}
	// openat took the most time: first row, 4000ns of 5120 total.
	if f := strings.Fields(lines[2]); len(f) != 6 || f[0] != "78.12" || f[1] != "0.000004" || f[2] != "1" || f[3] != "3" || f[4] != "1" || f[5] != "openat" {
		t.Errorf("first row: %q", lines[2])
	}
	var total string
	for _, l := range lines {
		if strings.HasSuffix(l, " total") {
			total = l
		}
	}
	if f := strings.Fields(total); len(f) != 6 || f[0] != "100.00" || f[3] != "8" || f[4] != "3" {
		t.Errorf("total row: %q", total)
	}
	if !strings.Contains(buf.String(), "not counted: calls the filter allows") {
		t.Errorf("no unseen note:\n%s", buf.String())
	}
}

func TestSignalExit(t *testing.T) {
	s := newAggregator().finish(Exit{Signal: int(unix.SIGKILL)}, time.Second, true)
	if s.Exit.Code != nil || s.Exit.Signal == nil || *s.Exit.Signal != "SIGKILL" || !s.CPU.Shared {
		t.Errorf("%+v", s)
	}
}

// TestTracerFile runs a tracer end to end: header, filtered records in
// JSON, a subscriber, and the summary file.
func TestTracerFile(t *testing.T) {
	dir := t.TempDir()
	out, sum := filepath.Join(dir, "trace"), filepath.Join(dir, "sum")
	tr, err := Open(Options{Path: out, Format: "json", Filter: "trace=file", Summary: sum})
	if err != nil {
		t.Fatal(err)
	}
	sub := tr.Subscribe(1)
	tr.SetTier("seccomp", "calls the filter allows", false)
	tr.SetReason("default")
	m := newMem()
	p := m.put(0, []byte("/x\x00"))
	openat, _ := abi.Host().Nr("openat")
	getpid, _ := abi.Host().Nr("getpid")
	if !tr.Wants(getpid) {
		t.Error("with a summary every call is wanted")
	}
	now := time.Now()
	tr.Syscall(&Call{Nr: openat, Args: [6]uint64{u(unix.AT_FDCWD), p}, Pid: 1, Tid: 1, Mem: m, Ret: 3, Known: true, Start: now, Disp: Kbox})
	tr.Syscall(&Call{Nr: getpid, Pid: 1, Tid: 1, Ret: 1, Known: true, Start: now, Disp: Host})
	tr.Syscall(&Call{Nr: openat, Args: [6]uint64{u(unix.AT_FDCWD), p}, Pid: 1, Tid: 1, Mem: m, Ret: 4, Known: true, Start: now, Disp: Kbox})
	if err := tr.Finish(Exit{}); err != nil {
		t.Fatal(err)
	}
	if got := <-sub.C; got.Name != "openat" || got.Ret != 3 {
		t.Errorf("subscriber got %+v", got)
	}
	if sub.Dropped() != 1 {
		t.Errorf("subscriber dropped %d, want 1 (buffer of one, two records)", sub.Dropped())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and two openat lines:\n%s", b)
	}
	var h map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &h); err != nil || h["type"] != "header" || h["unseen"] != "calls the filter allows" {
		t.Errorf("header %s (%v)", lines[0], err)
	}
	for _, l := range lines[1:] {
		if !strings.Contains(l, `"name":"openat"`) || !strings.Contains(l, `"args":["AT_FDCWD","\"/x\"","O_RDONLY"]`) {
			t.Errorf("record %s", l)
		}
	}
	var s Summary
	sb, _ := os.ReadFile(sum)
	if err := json.Unmarshal(sb, &s); err != nil {
		t.Fatal(err)
	}
	if s.Syscalls.Total != 3 || s.Tier != "seccomp" || s.Trace.Records != 2 {
		t.Errorf("summary %s", sb)
	}
}

// TestSinkFailure: a sink that fails stops tracing with one warning and
// never blocks the caller.
func TestSinkFailure(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	var log bytes.Buffer
	tr, err := Open(Options{File: w, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	nr, _ := abi.Host().Nr("close")
	for i := 0; i < 5000; i++ {
		tr.Syscall(&Call{Nr: nr, Args: [6]uint64{uint64(i)}, Known: true, Start: time.Now()})
	}
	tr.Finish(Exit{})
	w.Close()
	if n := strings.Count(log.String(), "warning: trace"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, log.String())
	}
}

func TestBadOptions(t *testing.T) {
	if _, err := Open(Options{Path: "-", Format: "xml"}); err == nil {
		t.Error("format xml accepted")
	}
	if _, err := Open(Options{Path: "-", Filter: "trace=bogus"}); err == nil {
		t.Error("bad filter accepted")
	}
	var nilT *Tracer
	if nilT.Wants(0) {
		t.Error("nil tracer wants calls")
	}
	nilT.Syscall(&Call{})
	if nilT.Finish(Exit{}) != nil {
		t.Error("nil Finish failed")
	}
}

// TestChildSinks: the parent opens the sinks, the child writes to them
// through the descriptors, as an in-process launch does.
func TestChildSinks(t *testing.T) {
	dir := t.TempDir()
	o := Options{Path: filepath.Join(dir, "t"), Summary: filepath.Join(dir, "s"), Filter: "trace=file"}
	sinks, err := o.OpenSinks()
	if err != nil {
		t.Fatal(err)
	}
	spec := o.Child("--syscall-mode=trap")
	if !spec.Trace || !spec.Summary || spec.SummaryFormat != "json" {
		t.Fatalf("spec %+v", spec)
	}
	if _, err := OpenChild(spec, nil, sinks.Summary); err == nil {
		t.Error("a missing trace descriptor is accepted")
	}
	tr, err := OpenChild(spec, sinks.Trace, sinks.Summary)
	if err != nil {
		t.Fatal(err)
	}
	tr.SetTier("trap", "", true)
	name := "unlink"
	nr, ok := abi.Host().Nr(name)
	if !ok { // arm64 has only unlinkat
		name = "unlinkat"
		nr = abi.Host().MustNr(name)
	}
	tr.Syscall(&Call{Nr: nr, Pid: 9, Tid: 9, Known: true, Start: time.Now(), Disp: Kbox, Paths: []PathInfo{{Guest: "/g"}}})
	if err := tr.Finish(Exit{Code: 1}); err != nil {
		t.Fatal(err)
	}
	sinks.Close()
	b, _ := os.ReadFile(o.Path)
	if !strings.HasPrefix(string(b), "# kbox trace v1: tier trap (--syscall-mode=trap)\n") || !strings.Contains(string(b), "] "+name+"(") || !strings.Contains(string(b), ") = 0 <") {
		t.Errorf("trace:\n%s", b)
	}
	var s Summary
	sb, _ := os.ReadFile(o.Summary)
	if err := json.Unmarshal(sb, &s); err != nil || *s.Exit.Code != 1 || !s.CPU.Shared || strings.Join(s.Files.Removed, "") != "/g" {
		t.Errorf("summary %s (%v)", sb, err)
	}
	if none, err := OpenChild(Options{}.Child(""), nil, nil); none != nil || err != nil {
		t.Errorf("no sinks: %v %v", none, err)
	}
}

// TestConcurrent: the supervisor's goroutines record at once; every
// record is written whole, once, and counted (run with -race).
func TestConcurrent(t *testing.T) {
	out := filepath.Join(t.TempDir(), "t")
	tr, err := Open(Options{Path: out, Summary: os.DevNull})
	if err != nil {
		t.Fatal(err)
	}
	sub := tr.Subscribe(16)
	nr, _ := abi.Host().Nr("close")
	done := make(chan bool)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 500; i++ {
				tr.Syscall(&Call{Nr: nr, Args: [6]uint64{uint64(i)}, Pid: g, Tid: g, Known: true, Start: time.Now()})
			}
			done <- true
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
	s := tr.Summary(Exit{})
	if err := tr.Finish(Exit{}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) != 4001 || s.Syscalls.Total != 4000 {
		t.Fatalf("%d lines, %d counted; want a header and 4000", len(lines), s.Syscalls.Total)
	}
	for _, l := range lines[1:] {
		if !strings.Contains(l, "] close(") || !strings.HasSuffix(l, "> host") {
			t.Fatalf("torn line %q", l)
		}
	}
	if got := uint64(len(sub.C)) + sub.Dropped(); got != 4000 {
		t.Errorf("subscriber got %d + dropped %d, want 4000", len(sub.C), sub.Dropped())
	}
	sub.Close()
}
