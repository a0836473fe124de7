package seccomp

import (
	"math/rand"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const auditArchAArch64 = 0xc00000b7

var (
	allow  = Action{Kind: ActAllow}
	notify = Action{Kind: ActNotify}
	kill   = Action{Kind: ActKillProcess}
	trap   = Action{Kind: ActTrap}
	logAct = Action{Kind: ActLog}
)

func errno(e unix.Errno) Action { return Action{Kind: ActErrno, Errno: uint16(e)} }

// refEval is the straightforward reference semantics of a Program.
func refEval(p Program, d Data) uint32 {
	if d.Arch != p.AuditArch {
		return p.BadArch.Ret()
	}
	if p.AuditArch == auditArchX86_64 && uint32(d.Nr) >= 0x40000000 {
		return p.BadArch.Ret()
	}
	for _, r := range p.Rules {
		if int64(r.Nr) != int64(d.Nr) {
			continue
		}
		for _, c := range r.Conds {
			v, m, val := d.Args[c.Arg], c.Mask, c.Value
			if c.Width32 {
				v, m, val = v&0xffffffff, m&0xffffffff, val&0xffffffff
			}
			if v&m == val {
				return c.Action.Ret()
			}
		}
		return r.Action.Ret()
	}
	return p.Default.Ret()
}

func mustCompile(t testing.TB, p Program) []unix.SockFilter {
	t.Helper()
	prog, err := Compile(p)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return prog
}

func sim(t testing.TB, prog []unix.SockFilter, d Data) uint32 {
	t.Helper()
	got, err := Simulate(prog, d)
	if err != nil {
		t.Fatalf("Simulate(%+v): %v", d, err)
	}
	return got
}

func TestActionRet(t *testing.T) {
	tests := []struct {
		a    Action
		ret  uint32
		name string
	}{
		{allow, 0x7fff0000, "allow"},
		{notify, 0x7fc00000, "notify"},
		{errno(unix.EPERM), 0x00050001, "errno(EPERM)"},
		{errno(unix.ENOSYS), 0x00050000 | uint32(unix.ENOSYS), "errno(ENOSYS)"},
		{Action{Kind: ActErrno}, 0x00050000, "errno(0)"},
		{Action{Kind: ActErrno, Errno: 4000}, 0x00050000 | 4000, "errno(4000)"},
		{trap, 0x00030000, "trap"},
		{kill, 0x80000000, "kill"},
		{logAct, 0x7ffc0000, "log"},
		{Action{Kind: 42}, 0x80000000, "action(42)"},
	}
	for _, tt := range tests {
		if got := tt.a.Ret(); got != tt.ret {
			t.Errorf("%v.Ret() = %#x, want %#x", tt.a, got, tt.ret)
		}
		if got := tt.a.String(); got != tt.name {
			t.Errorf("String() = %q, want %q", got, tt.name)
		}
	}
}

// basicProgram is a small x86_64 policy used by several tests.
func basicProgram() Program {
	p := Program{
		AuditArch: auditArchX86_64,
		BadArch:   kill,
		Default:   notify,
		Rules: []Rule{
			{Nr: 1, Action: allow},                    // write
			{Nr: 2, Action: allow},                    // open (merged with write)
			{Nr: 102, Action: Action{Kind: ActErrno}}, // getuid -> 0
			{Nr: 101, Action: errno(unix.EPERM)},      // ptrace
			{Nr: 59, Action: trap},                    // execve
			{Nr: 1000, Action: logAct},                // beyond the table
			{Nr: 0x3fffffff, Action: errno(unix.EIO)}, // largest non-x32 number
			{Nr: 150, Action: notify},                 // same as Default: dropped
			{Nr: 56, Action: allow, Conds: []ArgCond{ // clone
				{Arg: 0, Mask: unix.CLONE_NEWUSER, Value: unix.CLONE_NEWUSER, Action: errno(unix.EPERM)},
			}},
		},
	}
	// A dense block of identical unconditional rules with a hole.
	for nr := 200; nr < 300; nr++ {
		if nr == 250 {
			p.Rules = append(p.Rules, Rule{Nr: nr, Action: allow})
			continue
		}
		p.Rules = append(p.Rules, Rule{Nr: nr, Action: errno(unix.ENOSYS)})
	}
	return p
}

func TestCompileDispatch(t *testing.T) {
	p := basicProgram()
	prog := mustCompile(t, p)
	t.Logf("basic program: %d instructions", len(prog))

	aarch64 := p
	aarch64.AuditArch = auditArchAArch64
	aprog := mustCompile(t, aarch64)

	tests := []struct {
		name string
		prog []unix.SockFilter
		d    Data
		want Action
	}{
		{"arch mismatch", prog, Data{Nr: 1, Arch: auditArchAArch64}, kill},
		{"arch mismatch i386", prog, Data{Nr: 1, Arch: 0x40000003}, kill},
		{"arch zero", prog, Data{Nr: 1}, kill},
		{"x32 write", prog, Data{Nr: 0x40000000 | 1, Arch: auditArchX86_64}, kill},
		{"x32 base", prog, Data{Nr: 0x40000000, Arch: auditArchX86_64}, kill},
		{"nr -1 on x86_64", prog, Data{Nr: -1, Arch: auditArchX86_64}, kill},
		{"nr 0 default", prog, Data{Nr: 0, Arch: auditArchX86_64}, notify},
		{"write", prog, Data{Nr: 1, Arch: auditArchX86_64}, allow},
		{"open", prog, Data{Nr: 2, Arch: auditArchX86_64}, allow},
		{"nr 3 default", prog, Data{Nr: 3, Arch: auditArchX86_64}, notify},
		{"getuid errno 0", prog, Data{Nr: 102, Arch: auditArchX86_64}, Action{Kind: ActErrno}},
		{"ptrace", prog, Data{Nr: 101, Arch: auditArchX86_64}, errno(unix.EPERM)},
		{"execve", prog, Data{Nr: 59, Arch: auditArchX86_64}, trap},
		{"rule equal to default", prog, Data{Nr: 150, Arch: auditArchX86_64}, notify},
		{"before range", prog, Data{Nr: 199, Arch: auditArchX86_64}, notify},
		{"range start", prog, Data{Nr: 200, Arch: auditArchX86_64}, errno(unix.ENOSYS)},
		{"range middle", prog, Data{Nr: 249, Arch: auditArchX86_64}, errno(unix.ENOSYS)},
		{"range hole", prog, Data{Nr: 250, Arch: auditArchX86_64}, allow},
		{"range after hole", prog, Data{Nr: 251, Arch: auditArchX86_64}, errno(unix.ENOSYS)},
		{"range end", prog, Data{Nr: 299, Arch: auditArchX86_64}, errno(unix.ENOSYS)},
		{"after range", prog, Data{Nr: 300, Arch: auditArchX86_64}, notify},
		{"1000", prog, Data{Nr: 1000, Arch: auditArchX86_64}, logAct},
		{"1001 default", prog, Data{Nr: 1001, Arch: auditArchX86_64}, notify},
		{"largest non-x32", prog, Data{Nr: 0x3fffffff, Arch: auditArchX86_64}, errno(unix.EIO)},
		{"large default", prog, Data{Nr: 0x3ffffffe, Arch: auditArchX86_64}, notify},
		// Without x86_64 there is no x32 check.
		{"aarch64 write", aprog, Data{Nr: 1, Arch: auditArchAArch64}, allow},
		{"aarch64 foreign", aprog, Data{Nr: 1, Arch: auditArchX86_64}, kill},
		{"aarch64 x32 bit", aprog, Data{Nr: 0x40000001, Arch: auditArchAArch64}, notify},
		{"aarch64 nr -1", aprog, Data{Nr: -1, Arch: auditArchAArch64}, notify},
		{"aarch64 maxint32", aprog, Data{Nr: 0x7fffffff, Arch: auditArchAArch64}, notify},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sim(t, tt.prog, tt.d); got != tt.want.Ret() {
				t.Errorf("got %#x, want %v (%#x)", got, tt.want, tt.want.Ret())
			}
		})
	}
}

func TestCompileEmpty(t *testing.T) {
	prog := mustCompile(t, Program{AuditArch: auditArchAArch64, BadArch: kill, Default: errno(unix.ENOSYS)})
	for _, nr := range []int32{0, 1, 500, -1} {
		if got := sim(t, prog, Data{Nr: nr, Arch: auditArchAArch64}); got != errno(unix.ENOSYS).Ret() {
			t.Errorf("nr %d: got %#x", nr, got)
		}
	}
	if got := sim(t, prog, Data{Arch: 1}); got != kill.Ret() {
		t.Errorf("bad arch: got %#x", got)
	}
}

func TestCompileArgConds(t *testing.T) {
	const (
		nrSetuid = 105
		nrClone  = 56
		nrMmap   = 9
		nrIoctl  = 16
		nrFcntl  = 72
		nrOrder  = 200
		nrOdd    = 201
		nrHigh   = 202
	)
	p := Program{
		AuditArch: auditArchX86_64,
		BadArch:   kill,
		Default:   errno(unix.ENOSYS),
		Rules: []Rule{
			// setuid(0): uid is a 32-bit int, high half is garbage.
			{Nr: nrSetuid, Action: notify, Conds: []ArgCond{
				{Arg: 0, Mask: 0xffffffff, Value: 0, Width32: true, Action: Action{Kind: ActErrno}},
			}},
			// clone: any namespace flag -> EPERM, one condition per bit
			// because a condition is (arg & Mask) == Value.
			{Nr: nrClone, Action: allow, Conds: []ArgCond{
				{Arg: 0, Mask: unix.CLONE_NEWUSER, Value: unix.CLONE_NEWUSER, Action: errno(unix.EPERM)},
				{Arg: 0, Mask: unix.CLONE_NEWNS, Value: unix.CLONE_NEWNS, Action: errno(unix.EPERM)},
				{Arg: 0, Mask: unix.CLONE_NEWPID, Value: unix.CLONE_NEWPID, Action: errno(unix.EPERM)},
			}},
			// mmap: exact 64-bit address needs both halves.
			{Nr: nrMmap, Action: allow, Conds: []ArgCond{
				{Arg: 0, Mask: ^uint64(0), Value: 0x1_00000002, Action: trap},
			}},
			// ioctl: low byte of the request must be 0x12 (AND path), and
			// arg 2 must have no bits 0xf0 set (JSET on a clear mask).
			{Nr: nrIoctl, Action: allow, Conds: []ArgCond{
				{Arg: 1, Mask: 0xff, Value: 0x12, Width32: true, Action: notify},
				{Arg: 2, Mask: 0xf0, Value: 0, Action: logAct},
			}},
			// fcntl: mask only in the high half.
			{Nr: nrFcntl, Action: allow, Conds: []ArgCond{
				{Arg: 5, Mask: 0xff00_0000_0000, Value: 0x1200_0000_0000, Action: notify},
			}},
			// First match wins: both conditions match arg 3 == 7.
			{Nr: nrOrder, Action: allow, Conds: []ArgCond{
				{Arg: 3, Mask: 0xffff, Value: 7, Action: errno(unix.EACCES)},
				{Arg: 3, Mask: 0xff, Value: 7, Action: errno(unix.EBUSY)},
				{Arg: 4, Mask: 0, Value: 0, Action: trap}, // always matches
				{Arg: 4, Mask: 1, Value: 1, Action: kill}, // dead
			}},
			// Impossible condition (value outside mask) never matches;
			// Width32 truncation makes the second one possible.
			{Nr: nrOdd, Action: allow, Conds: []ArgCond{
				{Arg: 0, Mask: 0xff, Value: 0x100, Action: kill},
				{Arg: 0, Mask: 0xff_0000_00ff, Value: 0x55_0000_0001, Width32: true, Action: notify},
			}},
			// Full 64-bit compare where both halves need an AND.
			{Nr: nrHigh, Action: allow, Conds: []ArgCond{
				{Arg: 1, Mask: 0x0f0f_0000_00f0, Value: 0x0101_0000_0010, Action: notify},
			}},
		},
	}
	prog := mustCompile(t, p)
	vm := newXNetVM(t, prog)

	a := func(args ...uint64) (r [6]uint64) { copy(r[:], args); return }
	tests := []struct {
		name string
		nr   int32
		args [6]uint64
		want Action
	}{
		{"setuid 0", nrSetuid, a(0), Action{Kind: ActErrno}},
		{"setuid 0 high garbage", nrSetuid, a(0xdeadbeef_00000000), Action{Kind: ActErrno}},
		{"setuid 1000", nrSetuid, a(1000), notify},
		{"setuid 1000 high garbage", nrSetuid, a(0xffffffff_000003e8), notify},
		{"clone thread", nrClone, a(unix.CLONE_VM | unix.CLONE_THREAD), allow},
		{"clone newuser", nrClone, a(unix.CLONE_NEWUSER), errno(unix.EPERM)},
		{"clone newns|vm", nrClone, a(unix.CLONE_NEWNS | unix.CLONE_VM), errno(unix.EPERM)},
		{"clone newpid", nrClone, a(unix.CLONE_NEWPID | 0xffff_ffff_0000_0000), errno(unix.EPERM)},
		{"clone flags in high half only", nrClone, a(uint64(unix.CLONE_NEWUSER) << 32), allow},
		{"mmap exact", nrMmap, a(0x1_00000002), trap},
		{"mmap low half only", nrMmap, a(0x2), allow},
		{"mmap high half only", nrMmap, a(0x1_00000000), allow},
		{"mmap other high", nrMmap, a(0x2_00000002), allow},
		{"ioctl 0x12", nrIoctl, a(0, 0xabcd12), notify},
		{"ioctl 0x12 high garbage", nrIoctl, a(0, 0xffff_0000_0000_0012), notify},
		{"ioctl 0x13 clear", nrIoctl, a(0, 0x13, 0x0f), logAct},
		{"ioctl 0x13 set", nrIoctl, a(0, 0x13, 0x10), allow},
		{"fcntl high match", nrFcntl, a(0, 0, 0, 0, 0, 0x0034_1200_ffff_ffff), notify},
		{"fcntl high mismatch", nrFcntl, a(0, 0, 0, 0, 0, 0x0000_1300_0000_0000), allow},
		{"order first", nrOrder, a(0, 0, 0, 7), errno(unix.EACCES)},
		{"order second", nrOrder, a(0, 0, 0, 0x10107), errno(unix.EBUSY)},
		{"order always", nrOrder, a(0, 0, 0, 8, 1), trap},
		{"impossible ignored", nrOdd, a(0x100), allow},
		{"width32 truncates mask and value", nrOdd, a(0x01), notify},
		{"width32 ignores high", nrOdd, a(0x77_0000_0001), notify},
		{"both halves masked", nrHigh, a(0, 0xf1f1_0000_ff1f), notify},
		{"both halves: low wrong", nrHigh, a(0, 0xf1f1_0000_ff2f), allow},
		{"both halves: high wrong", nrHigh, a(0, 0xf2f1_0000_ff1f), allow},
		{"default", 3, a(), errno(unix.ENOSYS)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Data{Nr: tt.nr, Arch: auditArchX86_64, Args: tt.args}
			got := crossCheck(t, vm, prog, d)
			if got != tt.want.Ret() {
				t.Errorf("got %#x, want %v (%#x)", got, tt.want, tt.want.Ret())
			}
			if ref := refEval(p, d); ref != got {
				t.Errorf("reference evaluator says %#x", ref)
			}
		})
	}
}

// tooLargeNr does not fit in seccomp_data.nr (on 32-bit hosts it wraps to a
// negative int, which is rejected just the same).
var tooLargeNr = int(maxInt32 + 1)

var maxInt32 int64 = 1<<31 - 1

func TestCompileErrors(t *testing.T) {
	manyConds := make([]ArgCond, 1500)
	for i := range manyConds {
		manyConds[i] = ArgCond{Arg: i % 6, Mask: ^uint64(0), Value: uint64(i) << 20, Action: kill}
	}
	tests := []struct {
		name string
		p    Program
		want string
	}{
		{"duplicate nr", Program{Rules: []Rule{{Nr: 3}, {Nr: 4}, {Nr: 3}}}, "duplicate"},
		{"duplicate nr, same as default", Program{Rules: []Rule{{Nr: 3}, {Nr: 3}}}, "duplicate"},
		{"negative nr", Program{Rules: []Rule{{Nr: -1}}}, "out of range"},
		{"nr too large", Program{Rules: []Rule{{Nr: tooLargeNr}}}, "out of range"},
		{"arg -1", Program{Rules: []Rule{{Nr: 1, Conds: []ArgCond{{Arg: -1}}}}}, "argument index"},
		{"arg 6", Program{Rules: []Rule{{Nr: 1, Conds: []ArgCond{{Arg: 6, Mask: 1}}}}}, "argument index"},
		{"bad action", Program{Rules: []Rule{{Nr: 1, Action: Action{Kind: 17}}}}, "invalid action"},
		{"bad cond action", Program{Rules: []Rule{{Nr: 1, Conds: []ArgCond{{Mask: 1, Action: Action{Kind: 9}}}}}}, "invalid action"},
		{"bad default", Program{Default: Action{Kind: 6}}, "invalid action"},
		{"too long", Program{Default: allow, Rules: []Rule{{Nr: 1, Conds: manyConds}}}, "instructions"},
	}
	for _, tt := range tests {
		prog, err := Compile(tt.p)
		if err == nil {
			t.Errorf("%s: Compile succeeded with %d instructions", tt.name, len(prog))
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q does not mention %q", tt.name, err, tt.want)
		}
	}
}

// randAction returns a random valid action.
func randAction(r *rand.Rand) Action {
	a := Action{Kind: ActionKind(r.Intn(int(ActLog) + 1))}
	if a.Kind == ActErrno {
		a.Errno = uint16(r.Intn(140))
	}
	return a
}

// randCond returns a random condition; most can match, some cannot.
func randCond(r *rand.Rand) ArgCond {
	c := ArgCond{Arg: r.Intn(6), Width32: r.Intn(3) == 0, Action: randAction(r)}
	switch r.Intn(6) {
	case 0:
		c.Mask = ^uint64(0)
	case 1:
		c.Mask = 0xffffffff
	case 2:
		c.Mask = 1 << r.Intn(64)
	case 3:
		c.Mask = 0xffffffff_00000000
	case 4:
		c.Mask = r.Uint64()
	case 5:
		c.Mask = uint64(r.Intn(4)) // includes the always-matching 0
	}
	switch r.Intn(8) {
	case 0:
		c.Value = 0
	case 1:
		c.Value = r.Uint64() // usually impossible
	default:
		c.Value = r.Uint64() & c.Mask
	}
	return c
}

// matchingArgs returns args satisfying c, with random bits elsewhere.
func matchingArgs(r *rand.Rand, c ArgCond) [6]uint64 {
	var args [6]uint64
	for i := range args {
		args[i] = r.Uint64()
	}
	m := c.Mask
	if c.Width32 {
		m &= 0xffffffff
	}
	args[c.Arg] = args[c.Arg]&^m | c.Value&m
	return args
}

// checkExhaustive compares the compiled p with the reference evaluator (and
// the x/net VM) for every syscall number in nrs, with zero args, random
// args, args matching each condition of the rule, and a foreign arch.
func checkExhaustive(t *testing.T, r *rand.Rand, p Program, prog []unix.SockFilter, nrs []int32) {
	t.Helper()
	vm := newXNetVM(t, prog)
	byNr := map[int]Rule{}
	for _, rule := range p.Rules {
		byNr[rule.Nr] = rule
	}
	check := func(d Data) {
		t.Helper()
		got := crossCheck(t, vm, prog, d)
		if want := refEval(p, d); got != want {
			t.Fatalf("%+v: got %#x want %#x", d, got, want)
		}
	}
	for _, nr := range nrs {
		d := Data{Nr: nr, Arch: p.AuditArch}
		check(d)
		for i := range d.Args {
			d.Args[i] = r.Uint64()
		}
		check(d)
		for _, c := range byNr[int(nr)].Conds {
			d.Args = matchingArgs(r, c)
			check(d)
			d.Args[c.Arg] ^= c.Mask & -c.Mask // flip the lowest masked bit
			check(d)
		}
		d.Arch = auditArchAArch64
		check(d)
	}
}

func countJA(prog []unix.SockFilter) int {
	n := 0
	for _, f := range prog {
		if f.Code == unix.BPF_JMP|unix.BPF_JA {
			n++
		}
	}
	return n
}

// TestCompileLarge checks a 450-rule program with random actions and
// conditions, large enough that the dispatch tree needs long jumps.
func TestCompileLarge(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	p := Program{AuditArch: auditArchX86_64, BadArch: kill, Default: errno(unix.ENOSYS)}
	for i, nr := range r.Perm(1001)[:450] {
		rule := Rule{Nr: nr, Action: randAction(r)}
		if i%3 == 0 {
			for range 1 + r.Intn(5) {
				rule.Conds = append(rule.Conds, randCond(r))
			}
		}
		p.Rules = append(p.Rules, rule)
	}
	prog := mustCompile(t, p)
	t.Logf("%d rules: %d instructions, %d JA trampolines", len(p.Rules), len(prog), countJA(prog))
	if countJA(prog) == 0 {
		t.Errorf("expected long jumps through trampolines in a %d-instruction program", len(prog))
	}
	nrs := []int32{1001, 1002, 4096, 0x3fffffff, 0x40000000, 0x40000001, 0x7fffffff, -1}
	for nr := range int32(1001) {
		nrs = append(nrs, nr)
	}
	checkExhaustive(t, r, p, prog, nrs)
}

// TestCompileLongLeaves puts rules with many conditions into one dispatch
// chain, so that jumps from the chain to the leaves and from condition to
// condition exceed 255 instructions.
func TestCompileLongLeaves(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	p := Program{AuditArch: auditArchX86_64, BadArch: trap, Default: allow}
	for nr := 10; nr < 13; nr++ {
		rule := Rule{Nr: nr, Action: randAction(r)}
		for range 90 {
			c := randCond(r)
			c.Mask |= 1 << 40 // keep it from collapsing
			c.Value = r.Uint64() & c.Mask
			c.Width32 = false
			rule.Conds = append(rule.Conds, c)
		}
		p.Rules = append(p.Rules, rule)
	}
	p.Rules = append(p.Rules, Rule{Nr: 13, Action: notify})
	prog := mustCompile(t, p)
	t.Logf("%d instructions, %d JA trampolines", len(prog), countJA(prog))
	if countJA(prog) == 0 {
		t.Errorf("expected trampolines")
	}
	checkExhaustive(t, r, p, prog, []int32{0, 9, 10, 11, 12, 13, 14, 1000})
}

// fuzzBytes hands out fuzz input, then zeros.
type fuzzBytes []byte

func (b *fuzzBytes) byte() byte {
	if len(*b) == 0 {
		return 0
	}
	c := (*b)[0]
	*b = (*b)[1:]
	return c
}

func (b *fuzzBytes) u64() uint64 {
	var v uint64
	for range 8 {
		v = v<<8 | uint64(b.byte())
	}
	return v
}

func (b *fuzzBytes) action() Action {
	c := b.byte()
	a := Action{Kind: ActionKind(c % 6)}
	if a.Kind == ActErrno {
		a.Errno = uint16(c >> 3)
	}
	return a
}

// word returns a 64-bit value from a small palette, or raw bytes.
func (b *fuzzBytes) word() uint64 {
	switch c := b.byte(); c % 8 {
	case 0:
		return 0
	case 1:
		return ^uint64(0)
	case 2:
		return 0xffffffff
	case 3:
		return 0xffffffff_00000000
	case 4:
		return 1 << (c >> 2 % 64)
	case 5:
		return uint64(c >> 3)
	case 6:
		return uint64(c>>3) << 32
	default:
		return b.u64()
	}
}

func FuzzCompileSimulate(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 3, 0, 1, 2, 1, 1, 7, 3, 1, 0})
	f.Add([]byte("\x00\x05\x10\x22\x04\x01\x0c\x0d\x33\x07\x11\x22\x33\x44\x55\x66\x77\x88\x02"))
	f.Add([]byte("seccomp filters are programs too, fuzz them"))
	f.Fuzz(func(t *testing.T, in []byte) {
		b := fuzzBytes(in)
		p := Program{AuditArch: auditArchAArch64, BadArch: b.action(), Default: b.action()}
		if b.byte()&1 == 1 {
			p.AuditArch = auditArchX86_64
		}
		dup := false
		seen := map[int]bool{}
		for range b.byte() % 10 {
			rule := Rule{Nr: int(b.byte() % 40), Action: b.action()}
			dup = dup || seen[rule.Nr]
			seen[rule.Nr] = true
			for range b.byte() % 5 {
				c := b.byte()
				rule.Conds = append(rule.Conds, ArgCond{
					Arg:     int(c % 6),
					Width32: c&0x80 != 0,
					Mask:    b.word(),
					Value:   b.word(),
					Action:  b.action(),
				})
			}
			p.Rules = append(p.Rules, rule)
		}
		prog, err := Compile(p)
		if dup {
			if err == nil {
				t.Fatalf("Compile accepted duplicate rules: %+v", p)
			}
			return
		}
		if err != nil {
			t.Fatalf("Compile(%+v): %v", p, err)
		}
		check := func(d Data) {
			t.Helper()
			got, err := Simulate(prog, d)
			if err != nil {
				t.Fatalf("Simulate: %v", err)
			}
			if want := refEval(p, d); got != want {
				t.Fatalf("program %+v\ndata %+v: got %#x want %#x", p, d, got, want)
			}
		}
		// The data the fuzzer chose, then every rule with matching args
		// for each of its conditions.
		d := Data{Nr: int32(b.byte()%48) - 2, Arch: p.AuditArch}
		if b.byte()&1 == 1 {
			d.Nr |= 0x40000000
		}
		for i := range d.Args {
			d.Args[i] = b.word()
		}
		check(d)
		d.Arch ^= 1
		check(d)
		r := rand.New(rand.NewSource(int64(len(in))))
		for _, rule := range p.Rules {
			d := Data{Nr: int32(rule.Nr), Arch: p.AuditArch}
			check(d)
			for _, c := range rule.Conds {
				d.Args = matchingArgs(r, c)
				check(d)
			}
		}
	})
}
