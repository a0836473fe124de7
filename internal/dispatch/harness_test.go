package dispatch

// The unit-test harness: an Engine over temporary host directories, a fake
// guest (its memory a buffer, its descriptors the test process's own), so
// a handler runs exactly as it does for a real guest, without one.
//
// Expected values in the family tests come from Linux: where practical a
// test performs the same operation natively in a temporary directory (a
// "native oracle") and compares; otherwise the comment cites the rule of
// the man page or the kernel.

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/identity"
	"github.com/kbox-go/kbox/internal/netuser"
	"github.com/kbox-go/kbox/internal/vfs"
)

// fakeMem is guest memory for unit tests: one buffer at base; every other
// address is EFAULT, as an unmapped page would be.
type fakeMem struct {
	base uint64
	b    []byte
}

func (m *fakeMem) slice(addr uint64, n int) ([]byte, bool) {
	if addr < m.base || !within(addr-m.base, uint64(n), uint64(len(m.b))) {
		return nil, false
	}
	off := addr - m.base
	return m.b[off : off+uint64(n)], true
}

func (m *fakeMem) Read(addr uint64, p []byte) error {
	s, ok := m.slice(addr, len(p))
	if !ok {
		return unix.EFAULT
	}
	copy(p, s)
	return nil
}

func (m *fakeMem) Write(addr uint64, p []byte) error {
	s, ok := m.slice(addr, len(p))
	if !ok {
		return unix.EFAULT
	}
	copy(s, p)
	return nil
}

func (m *fakeMem) ReadString(addr uint64, max int) (string, error) {
	for n := 0; n <= max; n++ {
		s, ok := m.slice(addr+uint64(n), 1)
		if !ok {
			return "", unix.EFAULT
		}
		if s[0] == 0 {
			b, _ := m.slice(addr, n)
			return string(b), nil
		}
	}
	return "", unix.ENAMETOOLONG
}

// put stores b at offset off and returns its guest address.
func (m *fakeMem) put(off int, b []byte) uint64 {
	copy(m.b[off:], b)
	return m.base + uint64(off)
}

// selfFDs gives the test process's own descriptors as the guest's.
type selfFDs struct{}

func (selfFDs) DupFD(fd int) (int, error) {
	if fd < 0 {
		return -1, unix.EBADF
	}
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}
func (selfFDs) InjectFD(hostFD int, cloexec bool, target int) (int, error) {
	return unix.FcntlInt(uintptr(hostFD), unix.F_DUPFD_CLOEXEC, 0)
}
func (selfFDs) StackPointer() (uint64, error) { return 0, unix.EFAULT }
func (selfFDs) InstallsOPath() bool           { return true }

// testEngine returns an engine whose guest root is a fresh temporary
// directory holding a file "f", and a request maker.
func testEngine(t *testing.T) (*Engine, *bytes.Buffer, func(name string, args ...uint64) *Request) {
	t.Helper()
	h := newHarness(t, quiet(), func(c *harnessConfig) { c.panicsChecked = true })
	return h.e, h.log, h.req
}

// same compares results by what the guest sees.
func same(a, b Result) bool { return a.Kind == b.Kind && a.Val == b.Val && a.Err == b.Err }

// badAddr is a guest address outside fakeMem: EFAULT.
const badAddr = 0x8

// harnessMemBase and harnessMemSize place the harness's guest memory;
// harnessAllocStart leaves the first 64 KiB to tests that place data at
// fixed offsets (fakeMem.put).
const (
	harnessMemBase    = 0x10000
	harnessMemSize    = 1 << 20
	harnessAllocStart = 1 << 16
)

// harness is one engine with its guest:
//
//	guest /      host h.root: a file "f" ("hello\n", 0644), a directory "d"
//	guest /mnt   a second writable mount (h.hosts["/mnt"]): "f", "d", and
//	             "null", a file bind of the host's /dev/null over a
//	             placeholder file
//	guest /ro    a read-only bind (h.hosts["/ro"]): "f", "d"
//	guest /proc  the host's /proc (withProc only)
//
// The guest's only process is the test process (an in-process guest, as
// with the trap and rewrite tiers); its descriptors are the test's.
type harness struct {
	t     *testing.T
	e     *Engine
	log   *bytes.Buffer
	root  string
	hosts map[string]string // guest mount point -> host directory
	mem   *fakeMem
	proc  *Process
	next  int // the allocator's next free offset in mem
}

type harnessConfig struct {
	id      identity.Config
	proc    bool
	verbose bool
	caps    bool
	// panicsChecked: the test checks InternalErrors itself.
	panicsChecked bool
	netUser       *netuser.Config
}

type harnessOpt func(*harnessConfig)

// virtualID runs the guest with a virtual identity (-0 is {Virtual:
// true, UID: 0}).
func virtualID(id identity.Config) harnessOpt {
	return func(c *harnessConfig) { id.Virtual = true; c.id = id }
}

// withProc mounts the host's /proc at guest /proc.
func withProc() harnessOpt { return func(c *harnessConfig) { c.proc = true } }

// quiet turns -v lines off (they are on by default, so that a test can
// check a refusal is logged).
func quiet() harnessOpt { return func(c *harnessConfig) { c.verbose = false } }

// guestCaps gives the guest real capabilities (--keep-caps).
func guestCaps() harnessOpt { return func(c *harnessConfig) { c.caps = true } }

// populate makes the standard content of a mount's host directory.
func populate(t *testing.T, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func newHarness(t *testing.T, opts ...harnessOpt) *harness {
	t.Helper()
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("no syscall table for " + runtime.GOARCH)
	}
	cfg := harnessConfig{verbose: true}
	for _, o := range opts {
		o(&cfg)
	}
	root := t.TempDir()
	populate(t, root)
	hosts := map[string]string{"/": root, "/mnt": t.TempDir(), "/ro": t.TempDir()}
	populate(t, hosts["/mnt"])
	populate(t, hosts["/ro"])
	for _, mp := range []string{"mnt", "ro", "proc"} {
		if err := os.Mkdir(filepath.Join(root, mp), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ns := vfs.NewNamespace()
	t.Cleanup(ns.Close)
	add := func(guest, host string, ro bool, kind vfs.MountKind) {
		if err := ns.Add(guest, host, ro, kind); err != nil {
			t.Fatal(err)
		}
	}
	add("/", root, false, vfs.KindBind)
	add("/mnt", hosts["/mnt"], false, vfs.KindBind)
	add("/ro", hosts["/ro"], true, vfs.KindBind)
	// A file bind over a placeholder, as kbox's private /dev has them.
	if err := os.WriteFile(filepath.Join(hosts["/mnt"], "null"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	add("/mnt/null", "/dev/null", false, vfs.KindBind)
	if cfg.proc {
		add("/proc", "/proc", false, vfs.KindProc)
		hosts["/proc"] = "/proc"
	}
	ns.Seal()
	var log bytes.Buffer
	e, err := New(Config{Arch: abi.Host(), NS: ns, Log: &log, ExecDir: t.TempDir(), Identity: cfg.id,
		Verbose: cfg.verbose, GuestCaps: cfg.caps, NetUser: cfg.netUser})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	t.Cleanup(func() {
		releaseTable(e.Procs)
		// End the bind thread (its loop ends with the channel; the
		// thread, locked, exits with it): every thread of the test
		// process is one more /proc read in each ChildrenOf.
		close(e.bindThread.reqs)
	})
	h := &harness{t: t, e: e, log: &log, root: root, hosts: hosts,
		mem:  &fakeMem{base: harnessMemBase, b: make([]byte, harnessMemSize)},
		proc: e.Procs.AddInitial(os.Getpid()), next: harnessAllocStart}
	t.Cleanup(func() {
		if n := e.InternalErrors(); n != 0 && !cfg.panicsChecked {
			t.Errorf("%d internal errors (handler panics):\n%s", n, log.String())
		}
	})
	return h
}

// releaseTable closes the descriptors a process table holds for the
// engine's lifetime (Engine.Close leaves them: an engine lives as long as
// kbox), so that tests making many engines do not fill the descriptor
// table (TestProcTableFullDescriptorTable lowers its limit). The exit
// watcher stays blocked in its epoll_wait, on the closed file.
func releaseTable(pt *ProcTable) {
	pt.resMu.Lock()
	for _, fd := range pt.reserve {
		unix.Close(fd)
	}
	pt.reserve = nil
	pt.resMu.Unlock()
	if pt.epfd >= 0 {
		unix.Close(pt.epfd)
	}
}

// separateGuest makes the guest process a host "sleep" of its own (the
// seccomp tier's case: a guest in another process), whose state kbox
// keeps; descriptors and memory stay the test's. A state change settles
// the process's children first, reading each of its threads' children
// from /proc: one thread here, dozens in the test process.
func (h *harness) separateGuest() {
	h.t.Helper()
	h.proc = h.e.Procs.AddInitial(startSleep(h.t).Process.Pid)
}

// resetCreds gives the guest process the run's initial credentials.
func (h *harness) resetCreds() {
	h.proc.mu.Lock()
	h.proc.creds = h.e.cfg.Identity.Initial()
	h.proc.mu.Unlock()
}

// atForms are the legacy path calls arm64 lacks, as the *at call libc
// makes there instead: its name and arguments, "D" for AT_FDCWD, a digit
// for the legacy call's argument, "=N" for a constant (flags). With them
// the tables written with the legacy names run on both architectures.
var atForms = map[string]struct {
	name string
	args []string
}{
	"open":     {"openat", []string{"D", "0", "1", "2"}},
	"creat":    {"openat", []string{"D", "0", "=577", "1"}}, // O_CREAT|O_WRONLY|O_TRUNC
	"access":   {"faccessat", []string{"D", "0", "1", "=0"}},
	"stat":     {"newfstatat", []string{"D", "0", "1", "=0"}},
	"lstat":    {"newfstatat", []string{"D", "0", "1", "=256"}}, // AT_SYMLINK_NOFOLLOW
	"readlink": {"readlinkat", []string{"D", "0", "1", "2"}},
	"mknod":    {"mknodat", []string{"D", "0", "1", "2"}},
	"mkdir":    {"mkdirat", []string{"D", "0", "1"}},
	"chown":    {"fchownat", []string{"D", "0", "1", "2", "=0"}},
	"lchown":   {"fchownat", []string{"D", "0", "1", "2", "=256"}},
	"chmod":    {"fchmodat", []string{"D", "0", "1", "=0"}},
	"symlink":  {"symlinkat", []string{"0", "D", "1"}},
	"unlink":   {"unlinkat", []string{"D", "0", "=0"}},
	"rmdir":    {"unlinkat", []string{"D", "0", "=512"}}, // AT_REMOVEDIR
	"link":     {"linkat", []string{"D", "0", "D", "1", "=0"}},
	"rename":   {"renameat", []string{"D", "0", "D", "1"}},
}

// atForm returns name and args unchanged where arch has the call, else
// its *at form (atForms); conv makes an argument of a number.
func atForm[T any](arch *abi.Arch, name string, args []T, conv func(int64) T) (string, []T) {
	if _, ok := arch.Nr(name); ok {
		return name, args
	}
	f, ok := atForms[name]
	if !ok {
		return name, args
	}
	out := make([]T, 0, len(f.args))
	for _, a := range f.args {
		switch {
		case a == "D":
			out = append(out, conv(unix.AT_FDCWD))
		case a[0] == '=':
			n, _ := strconv.ParseInt(a[1:], 0, 64)
			out = append(out, conv(n))
		case int(a[0]-'0') < len(args):
			out = append(out, args[a[0]-'0'])
		default:
			out = append(out, conv(0))
		}
	}
	return f.name, out
}

// hasCall reports whether arch has the named call.
func hasCall(arch *abi.Arch, name string) bool {
	_, ok := arch.Nr(name)
	return ok
}

// req makes a request of the guest process.
func (h *harness) req(name string, args ...uint64) *Request {
	name, args = atForm(h.e.arch, name, args, func(n int64) uint64 { return uint64(n) })
	r := &Request{Nr: h.e.arch.MustNr(name), Tid: h.proc.Tgid, Tgid: h.proc.Tgid, Mem: h.mem, FDs: selfFDs{}, Proc: h.proc}
	copy(r.Args[:], args)
	return r
}

// call dispatches a request.
func (h *harness) call(name string, args ...uint64) Result {
	return h.e.Dispatch(h.req(name, args...))
}

// alloc returns the guest address of n fresh zero bytes (8-aligned).
func (h *harness) alloc(n int) uint64 {
	h.t.Helper()
	off := h.next
	h.next = (h.next + n + 7) &^ 7
	if h.next > len(h.mem.b) {
		h.t.Fatal("harness: guest memory exhausted")
	}
	clear(h.mem.b[off : off+n])
	return h.mem.base + uint64(off)
}

// bytes places b in guest memory.
func (h *harness) bytes(b []byte) uint64 {
	a := h.alloc(len(b))
	copy(h.mem.b[a-h.mem.base:], b)
	return a
}

// str places s, NUL-terminated, in guest memory.
func (h *harness) str(s string) uint64 { return h.bytes(append([]byte(s), 0)) }

// u32 places v in guest memory.
func (h *harness) u32(v uint32) uint64 {
	return h.bytes(binary.LittleEndian.AppendUint32(nil, v))
}

// read returns n bytes of guest memory at addr.
func (h *harness) read(addr uint64, n int) []byte {
	h.t.Helper()
	b := make([]byte, n)
	if err := h.mem.Read(addr, b); err != nil {
		h.t.Fatalf("harness: reading guest memory at %#x: %v", addr, err)
	}
	return b
}

// readU32 returns the uint32 at addr.
func (h *harness) readU32(addr uint64) uint32 { return binary.LittleEndian.Uint32(h.read(addr, 4)) }

// cstr returns the NUL-terminated string at addr.
func (h *harness) cstr(addr uint64) string {
	h.t.Helper()
	s, err := h.mem.ReadString(addr, 1<<16)
	if err != nil {
		h.t.Fatalf("harness: reading a string at %#x: %v", addr, err)
	}
	return s
}

// open opens a host path as a descriptor of the guest (closed at the
// end of the test).
func (h *harness) open(hostPath string, flags int) int {
	h.t.Helper()
	fd, err := unix.Open(hostPath, flags|unix.O_CLOEXEC, 0o644)
	if err != nil {
		h.t.Fatalf("open %s: %v", hostPath, err)
	}
	h.t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// logged reports whether a -v line contains s.
func (h *harness) logged(s string) bool { return strings.Contains(h.log.String(), s) }

// ret is the expected result of a native call: its value, or its errno.
func ret(v int64, err error) Result {
	if err != nil {
		return Fail(err)
	}
	return Ok(v)
}

// expect fails the test when got is not want (as the guest sees them).
func expect(t *testing.T, what string, got, want Result) {
	t.Helper()
	if !same(got, want) {
		t.Errorf("%s: got %s, want %s", what, resultString(got), resultString(want))
	}
}

func resultString(r Result) string {
	switch r.Kind {
	case Value:
		return "value " + strconv.FormatInt(r.Val, 10)
	case Errno:
		return unix.ErrnoName(r.Err)
	case Continue:
		return "continue"
	case Inject:
		return "inject fd " + strconv.Itoa(r.FD)
	}
	return "?"
}

// g64 is a guest int argument as the kernel receives it in a register
// (a negative int is sign-extended).
func g64(v int) uint64 { return uint64(int64(v)) }

// onThread runs f natively on an OS thread of its own, which ends with
// f: what f changes of the thread's state (its credentials with raw
// set*id calls, its cwd and root after unshare(CLONE_FS)) goes with it.
// The runtime never clones a new thread from a locked one.
func onThread(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		f()
	}()
	<-done
}

// inDir runs f natively on a thread of its own whose working directory
// (unshared from the process's) is dir.
func inDir(t *testing.T, dir string, f func()) {
	t.Helper()
	var err error
	onThread(func() {
		if err = unix.Unshare(unix.CLONE_FS); err != nil {
			return
		}
		if err = unix.Chdir(dir); err != nil {
			return
		}
		f()
	})
	if err != nil {
		t.Fatal(err)
	}
}
