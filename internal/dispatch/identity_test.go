package dispatch

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

// idState is a task's credentials as the identity calls report them.
type idState struct {
	uid, gid [4]uint32 // real, effective, saved, filesystem
	groups   []uint32
}

func (s idState) String() string {
	return fmt.Sprintf("uid %v gid %v groups %v", s.uid, s.gid, s.groups)
}

func (s idState) equal(o idState) bool {
	return s.uid == o.uid && s.gid == o.gid && slices.Equal(s.groups, o.groups)
}

// idStart is a starting credential set: real, effective, saved ids.
type idStart struct {
	uid, gid [3]uint32
	groups   []uint32
}

const keep = math.MaxUint32 // -1: "unchanged" for set*id

// guestState reads the guest's credentials through the engine.
func (h *harness) guestState() idState {
	h.t.Helper()
	var s idState
	a := h.alloc(12)
	expect(h.t, "getresuid", h.call("getresuid", a, a+4, a+8), Ok(0))
	for i := 0; i < 3; i++ {
		s.uid[i] = h.readU32(a + uint64(4*i))
	}
	expect(h.t, "getresgid", h.call("getresgid", a, a+4, a+8), Ok(0))
	for i := 0; i < 3; i++ {
		s.gid[i] = h.readU32(a + uint64(4*i))
	}
	s.uid[3] = uint32(h.call("setfsuid", keep).Val)
	s.gid[3] = uint32(h.call("setfsgid", keep).Val)
	n := h.call("getgroups", 0, 0)
	if n.Kind != Value {
		h.t.Fatalf("getgroups: %s", resultString(n))
	}
	g := h.alloc(4 * int(n.Val))
	h.call("getgroups", uint64(n.Val), g)
	s.groups = []uint32{}
	for i := 0; i < int(n.Val); i++ {
		s.groups = append(s.groups, h.readU32(g+uint64(4*i)))
	}
	// Cross-check the single getters.
	for _, c := range []struct {
		call string
		want uint32
	}{{"getuid", s.uid[0]}, {"geteuid", s.uid[1]}, {"getgid", s.gid[0]}, {"getegid", s.gid[1]}} {
		expect(h.t, c.call, h.call(c.call), Ok(int64(c.want)))
	}
	return s
}

// idCall is one identity call: its name and arguments (groups for
// setgroups).
type idCall struct {
	name   string
	args   []uint32
	groups []uint32
}

func (c idCall) String() string {
	if c.name == "setgroups" {
		return fmt.Sprintf("setgroups(%v)", c.groups)
	}
	var a []string
	for _, v := range c.args {
		a = append(a, fmt.Sprint(int32(v)))
	}
	return c.name + "(" + strings.Join(a, ",") + ")"
}

// guestCall runs c through the engine.
func (h *harness) guestCall(c idCall) Result {
	if c.name == "setgroups" {
		b := make([]byte, 0, 4*len(c.groups)+4)
		for _, g := range c.groups {
			b = binary.LittleEndian.AppendUint32(b, g)
		}
		return h.call("setgroups", uint64(len(c.groups)), h.bytes(append(b, 0, 0, 0, 0)))
	}
	args := make([]uint64, len(c.args))
	for i, v := range c.args {
		args[i] = uint64(v)
	}
	return h.call(c.name, args...)
}

// nativeCall runs c as a raw syscall on the calling thread only.
func nativeCall(c idCall) Result {
	if c.name == "setgroups" {
		var p uintptr
		b := make([]uint32, len(c.groups)+1)
		copy(b, c.groups)
		p = uintptr(ptrOfU32(&b[0]))
		_, _, en := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(c.groups)), p, 0)
		return ret(0, errnoOrNil(en))
	}
	nr := map[string]uintptr{"setuid": unix.SYS_SETUID, "setgid": unix.SYS_SETGID, "setreuid": unix.SYS_SETREUID,
		"setregid": unix.SYS_SETREGID, "setresuid": unix.SYS_SETRESUID, "setresgid": unix.SYS_SETRESGID,
		"setfsuid": unix.SYS_SETFSUID, "setfsgid": unix.SYS_SETFSGID}[c.name]
	var a [3]uintptr
	for i, v := range c.args {
		a[i] = uintptr(v)
	}
	r, _, en := unix.RawSyscall(nr, a[0], a[1], a[2])
	if strings.HasPrefix(c.name, "setfs") {
		return Ok(int64(uint32(r))) // never fails: the previous id
	}
	return ret(0, errnoOrNil(en))
}

// nativeState reads the calling thread's credentials.
func nativeState() idState {
	var s idState
	var r, e, sv uint32
	unix.RawSyscall(unix.SYS_GETRESUID, uintptr(ptrOfU32(&r)), uintptr(ptrOfU32(&e)), uintptr(ptrOfU32(&sv)))
	s.uid = [4]uint32{r, e, sv, 0}
	unix.RawSyscall(unix.SYS_GETRESGID, uintptr(ptrOfU32(&r)), uintptr(ptrOfU32(&e)), uintptr(ptrOfU32(&sv)))
	s.gid = [4]uint32{r, e, sv, 0}
	fs, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, keep, 0, 0)
	s.uid[3] = uint32(fs)
	fs, _, _ = unix.RawSyscall(unix.SYS_SETFSGID, keep, 0, 0)
	s.gid[3] = uint32(fs)
	g := make([]uint32, 256)
	n, _, _ := unix.RawSyscall(unix.SYS_GETGROUPS, 256, uintptr(ptrOfU32(&g[0])), 0)
	s.groups = append([]uint32{}, g[:n]...)
	return s
}

// enter sets a starting state from root: groups and gids first, the uids
// last (they may drop the privilege to set the rest).
func enter(st idStart, call func(idCall) Result) error {
	for _, c := range []idCall{
		{name: "setresgid", args: st.gid[:]},
		{name: "setgroups", groups: st.groups},
		{name: "setresuid", args: st.uid[:]},
	} {
		if res := call(c); res.Kind != Value {
			return fmt.Errorf("%v: %s", c, resultString(res))
		}
	}
	return nil
}

var (
	stRoot     = idStart{uid: [3]uint32{0, 0, 0}, gid: [3]uint32{0, 0, 0}, groups: []uint32{0}}
	stUser     = idStart{uid: [3]uint32{1000, 1000, 1000}, gid: [3]uint32{100, 100, 100}, groups: []uint32{100, 20}}
	stSetuid   = idStart{uid: [3]uint32{1000, 0, 0}, gid: [3]uint32{100, 100, 100}, groups: []uint32{}}  // a set-uid-root program run by 1000
	stDropped  = idStart{uid: [3]uint32{0, 1000, 0}, gid: [3]uint32{0, 100, 0}, groups: []uint32{0}}     // root with its effective id dropped
	stSaved    = idStart{uid: [3]uint32{1000, 1000, 0}, gid: [3]uint32{100, 100, 0}, groups: []uint32{}} // root kept only as saved id
	stMixed    = idStart{uid: [3]uint32{1000, 2000, 3000}, gid: [3]uint32{100, 200, 300}, groups: []uint32{7}}
	idStartTab = map[string]idStart{"root": stRoot, "user": stUser, "setuid": stSetuid, "dropped": stDropped, "saved": stSaved, "mixed": stMixed}
)

// TestIdentityTransitions: the POSIX set*id transition rules through the
// engine, for a guest with a virtual identity, from several starting
// credential sets. The table gives each call's result and resulting ids
// by the rules of setuid(2), setreuid(2), setresuid(2), setfsuid(2) and
// setgroups(2) (privilege: CAP_SETUID/CAP_SETGID, which the guest holds
// while its effective uid is 0); as root, the native oracle also makes
// every transition on a thread of the test's own (raw syscalls change
// only the calling thread's credentials) and the guest must end with the
// same full credential set.
func TestIdentityTransitions(t *testing.T) {
	h := newHarness(t, virtualID(identity.Config{UID: 0}))
	h.separateGuest()
	oracle := os.Geteuid() == 0
	const uidSide, gidSide = 0, 1
	for _, c := range []struct {
		start string
		call  idCall
		want  Result
		side  int       // which ids ids describes
		ids   [4]uint32 // real, effective, saved, fs after the call
	}{
		// setuid(2): privileged sets all; otherwise only to the real or saved id, effective and fs only.
		{"root", idCall{name: "setuid", args: []uint32{1000}}, Ok(0), uidSide, [4]uint32{1000, 1000, 1000, 1000}},
		{"setuid", idCall{name: "setuid", args: []uint32{1000}}, Ok(0), uidSide, [4]uint32{1000, 1000, 1000, 1000}},
		{"dropped", idCall{name: "setuid", args: []uint32{0}}, Ok(0), uidSide, [4]uint32{0, 0, 0, 0}},
		{"saved", idCall{name: "setuid", args: []uint32{0}}, Ok(0), uidSide, [4]uint32{1000, 0, 0, 0}},
		{"mixed", idCall{name: "setuid", args: []uint32{3000}}, Ok(0), uidSide, [4]uint32{1000, 3000, 3000, 3000}},
		{"user", idCall{name: "setuid", args: []uint32{2000}}, Fail(unix.EPERM), uidSide, [4]uint32{1000, 1000, 1000, 1000}},
		{"root", idCall{name: "setuid", args: []uint32{keep}}, Fail(unix.EINVAL), uidSide, [4]uint32{0, 0, 0, 0}},
		// setreuid(2): real from real/effective, effective from any; the saved id follows the effective one
		// when the real id is set or the effective one is set to other than the old real id.
		{"saved", idCall{name: "setreuid", args: []uint32{keep, 0}}, Ok(0), uidSide, [4]uint32{1000, 0, 0, 0}},
		{"setuid", idCall{name: "setreuid", args: []uint32{1000, 1000}}, Ok(0), uidSide, [4]uint32{1000, 1000, 1000, 1000}},
		{"mixed", idCall{name: "setreuid", args: []uint32{2000, keep}}, Ok(0), uidSide, [4]uint32{2000, 2000, 2000, 2000}},
		{"mixed", idCall{name: "setreuid", args: []uint32{3000, keep}}, Fail(unix.EPERM), uidSide, [4]uint32{1000, 2000, 3000, 2000}},
		{"mixed", idCall{name: "setreuid", args: []uint32{keep, 3000}}, Ok(0), uidSide, [4]uint32{1000, 3000, 3000, 3000}},
		{"mixed", idCall{name: "setreuid", args: []uint32{keep, 1000}}, Ok(0), uidSide, [4]uint32{1000, 1000, 3000, 1000}},
		{"mixed", idCall{name: "setreuid", args: []uint32{keep, keep}}, Ok(0), uidSide, [4]uint32{1000, 2000, 3000, 2000}},
		{"mixed", idCall{name: "setreuid", args: []uint32{2000, 1000}}, Ok(0), uidSide, [4]uint32{2000, 1000, 1000, 1000}},
		{"user", idCall{name: "setreuid", args: []uint32{keep, 0}}, Fail(unix.EPERM), uidSide, [4]uint32{1000, 1000, 1000, 1000}},
		{"mixed", idCall{name: "setreuid", args: []uint32{keep, 2000}}, Ok(0), uidSide, [4]uint32{1000, 2000, 2000, 2000}},
		{"setuid", idCall{name: "setreuid", args: []uint32{keep, 1000}}, Ok(0), uidSide, [4]uint32{1000, 1000, 0, 1000}},
		{"root", idCall{name: "setreuid", args: []uint32{keep, 5}}, Ok(0), uidSide, [4]uint32{0, 5, 5, 5}},
		// setresuid(2): unprivileged, each to one of the current three.
		{"mixed", idCall{name: "setresuid", args: []uint32{2000, 3000, 1000}}, Ok(0), uidSide, [4]uint32{2000, 3000, 1000, 3000}},
		{"mixed", idCall{name: "setresuid", args: []uint32{4000, keep, keep}}, Fail(unix.EPERM), uidSide, [4]uint32{1000, 2000, 3000, 2000}},
		{"mixed", idCall{name: "setresuid", args: []uint32{keep, keep, keep}}, Ok(0), uidSide, [4]uint32{1000, 2000, 3000, 2000}},
		{"root", idCall{name: "setresuid", args: []uint32{5, 6, 7}}, Ok(0), uidSide, [4]uint32{5, 6, 7, 6}},
		{"dropped", idCall{name: "setresuid", args: []uint32{keep, 0, keep}}, Ok(0), uidSide, [4]uint32{0, 0, 0, 0}},
		{"setuid", idCall{name: "setresuid", args: []uint32{keep, 1000, keep}}, Ok(0), uidSide, [4]uint32{1000, 1000, 0, 1000}},
		// setfsuid(2): returns the previous fsuid; changes it only to one of the four ids unless privileged.
		{"user", idCall{name: "setfsuid", args: []uint32{5000}}, Ok(1000), uidSide, [4]uint32{1000, 1000, 1000, 1000}},
		{"root", idCall{name: "setfsuid", args: []uint32{1000}}, Ok(0), uidSide, [4]uint32{0, 0, 0, 1000}},
		{"mixed", idCall{name: "setfsuid", args: []uint32{3000}}, Ok(2000), uidSide, [4]uint32{1000, 2000, 3000, 3000}},
		{"mixed", idCall{name: "setfsuid", args: []uint32{keep}}, Ok(2000), uidSide, [4]uint32{1000, 2000, 3000, 2000}},
		// The gid calls: the same rules, privilege by the effective uid.
		{"root", idCall{name: "setgid", args: []uint32{100}}, Ok(0), gidSide, [4]uint32{100, 100, 100, 100}},
		{"user", idCall{name: "setgid", args: []uint32{200}}, Fail(unix.EPERM), gidSide, [4]uint32{100, 100, 100, 100}},
		{"saved", idCall{name: "setgid", args: []uint32{0}}, Ok(0), gidSide, [4]uint32{100, 0, 0, 0}},
		{"setuid", idCall{name: "setgid", args: []uint32{5}}, Ok(0), gidSide, [4]uint32{5, 5, 5, 5}},
		{"mixed", idCall{name: "setregid", args: []uint32{200, keep}}, Ok(0), gidSide, [4]uint32{200, 200, 200, 200}},
		{"mixed", idCall{name: "setregid", args: []uint32{300, keep}}, Fail(unix.EPERM), gidSide, [4]uint32{100, 200, 300, 200}},
		{"mixed", idCall{name: "setregid", args: []uint32{keep, 100}}, Ok(0), gidSide, [4]uint32{100, 100, 300, 100}},
		{"mixed", idCall{name: "setregid", args: []uint32{keep, 200}}, Ok(0), gidSide, [4]uint32{100, 200, 200, 200}},
		{"root", idCall{name: "setregid", args: []uint32{keep, 5}}, Ok(0), gidSide, [4]uint32{0, 5, 5, 5}},
		{"mixed", idCall{name: "setresgid", args: []uint32{300, 100, 200}}, Ok(0), gidSide, [4]uint32{300, 100, 200, 100}},
		{"mixed", idCall{name: "setresgid", args: []uint32{keep, 7, keep}}, Fail(unix.EPERM), gidSide, [4]uint32{100, 200, 300, 200}},
		{"dropped", idCall{name: "setresgid", args: []uint32{1, 2, 3}}, Fail(unix.EPERM), gidSide, [4]uint32{0, 100, 0, 100}},
		{"user", idCall{name: "setfsgid", args: []uint32{20}}, Ok(100), gidSide, [4]uint32{100, 100, 100, 100}},
		{"root", idCall{name: "setfsgid", args: []uint32{20}}, Ok(0), gidSide, [4]uint32{0, 0, 0, 20}},
		// setgroups(2): privileged only; the kernel keeps the list sorted.
		{"root", idCall{name: "setgroups", groups: []uint32{30, 10, 20}}, Ok(0), -1, [4]uint32{}},
		{"root", idCall{name: "setgroups", groups: []uint32{}}, Ok(0), -1, [4]uint32{}},
		{"user", idCall{name: "setgroups", groups: []uint32{100}}, Fail(unix.EPERM), -1, [4]uint32{}},
		{"setuid", idCall{name: "setgroups", groups: []uint32{5}}, Ok(0), -1, [4]uint32{}},
	} {
		what := c.start + ": " + c.call.String()
		st := idStartTab[c.start]
		h.resetCreds() // a fresh virtual root
		if err := enter(st, h.guestCall); err != nil {
			t.Fatalf("%s: entering the start state: %v", what, err)
		}
		got := h.guestCall(c.call)
		gotState := h.guestState()
		expect(t, what, got, c.want)
		switch c.side {
		case uidSide:
			if gotState.uid != c.ids {
				t.Errorf("%s: uids %v, want %v", what, gotState.uid, c.ids)
			}
		case gidSide:
			if gotState.gid != c.ids {
				t.Errorf("%s: gids %v, want %v", what, gotState.gid, c.ids)
			}
		}
		if !oracle {
			continue
		}
		var want Result
		var wantState idState
		var err error
		onThread(func() {
			if err = enter(st, nativeCall); err != nil {
				return
			}
			want = nativeCall(c.call)
			wantState = nativeState()
		})
		if err != nil {
			t.Fatalf("%s: natively, entering the start state: %v", what, err)
		}
		expect(t, what+" (native oracle)", got, want)
		if !gotState.equal(wantState) {
			t.Errorf("%s: %v, natively %v", what, gotState, wantState)
		}
	}
}

// TestIdentityArgs: the identity calls' argument errors (getgroups(2),
// setgroups(2): a negative size, one below the count or above
// NGROUPS_MAX is EINVAL; bad pointers EFAULT).
func TestIdentityArgs(t *testing.T) {
	h := newHarness(t, virtualID(identity.Config{UID: 0}))
	h.separateGuest()
	expect(t, "setgroups [1 2 3]", h.guestCall(idCall{name: "setgroups", groups: []uint32{3, 1, 2}}), Ok(0))
	buf := h.alloc(64)
	for _, c := range []struct {
		what string
		res  Result
		want Result
	}{
		{"getgroups count", h.call("getgroups", 0, badAddr), Ok(3)},
		{"getgroups exact", h.call("getgroups", 3, buf), Ok(3)},
		{"getgroups short", h.call("getgroups", 2, buf), Fail(unix.EINVAL)},
		{"getgroups negative", h.call("getgroups", g64(-1), buf), Fail(unix.EINVAL)},
		{"getgroups bad buffer", h.call("getgroups", 3, badAddr), Fail(unix.EFAULT)},
		{"setgroups negative", h.call("setgroups", g64(-1), buf), Fail(unix.EINVAL)},
		{"setgroups above NGROUPS_MAX", h.call("setgroups", identity.MaxGroups+1, buf), Fail(unix.EINVAL)},
		{"setgroups bad buffer", h.call("setgroups", 2, badAddr), Fail(unix.EFAULT)},
		{"getresuid bad pointer", h.call("getresuid", buf, badAddr, buf), Fail(unix.EFAULT)},
		{"getresgid bad pointer", h.call("getresgid", badAddr, buf, buf), Fail(unix.EFAULT)},
	} {
		expect(t, c.what, c.res, c.want)
	}
	if s := h.guestState(); !slices.Equal(s.groups, []uint32{1, 2, 3}) {
		t.Errorf("groups %v after the failed calls, want [1 2 3]", s.groups)
	}
	if os.Geteuid() == 0 {
		// The native answers of the same calls.
		var short, neg, big Result
		onThread(func() {
			g := []uint32{3, 1, 2, 0}
			unix.RawSyscall(unix.SYS_SETGROUPS, 3, uintptr(ptrOfU32(&g[0])), 0)
			_, _, en := unix.RawSyscall(unix.SYS_GETGROUPS, 2, uintptr(ptrOfU32(&g[0])), 0)
			short = ret(0, errnoOrNil(en))
			_, _, en = unix.RawSyscall(unix.SYS_SETGROUPS, ^uintptr(0), uintptr(ptrOfU32(&g[0])), 0)
			neg = ret(0, errnoOrNil(en))
			_, _, en = unix.RawSyscall(unix.SYS_SETGROUPS, identity.MaxGroups+1, uintptr(ptrOfU32(&g[0])), 0)
			big = ret(0, errnoOrNil(en))
		})
		for _, r := range []Result{short, neg, big} {
			expect(t, "native oracle", r, Fail(unix.EINVAL))
		}
	}
}

// TestIdentityCopies: credentials handed out (Creds, a child's snapshot
// at fork) are copies: a later change of the process's does not reach
// them.
func TestIdentityCopies(t *testing.T) {
	h := newHarness(t, virtualID(identity.Config{UID: 0}))
	h.separateGuest()
	expect(t, "setgroups", h.guestCall(idCall{name: "setgroups", groups: []uint32{4, 5}}), Ok(0))
	snap := h.proc.Creds()
	expect(t, "setgroups again", h.guestCall(idCall{name: "setgroups", groups: []uint32{9}}), Ok(0))
	if !slices.Equal(snap.Groups, []uint32{4, 5}) {
		t.Errorf("a copy of the credentials changed with the process's: %v", snap.Groups)
	}
	child := h.proc.snapshot()
	expect(t, "setresuid", h.call("setresuid", 1, 1, 1), Ok(0))
	if child.creds.EUID != 0 || !slices.Equal(child.creds.Groups, []uint32{9}) {
		t.Errorf("a snapshot changed with its process: %+v", child.creds)
	}
}
