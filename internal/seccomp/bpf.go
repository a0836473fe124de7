// Package seccomp owns kbox's seccomp machinery: compiling a syscall policy
// into a classic BPF program, and the user-notification ioctls used by the
// supervisor.
package seccomp

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

// ActionKind selects what a seccomp filter tells the kernel to do.
type ActionKind uint8

const (
	ActAllow       ActionKind = iota // run the syscall
	ActNotify                        // hand it to the user-notification supervisor
	ActErrno                         // fail it with Action.Errno without running it
	ActTrap                          // deliver SIGSYS
	ActKillProcess                   // kill the whole process
	ActLog                           // run it and log it
)

// Action is what the filter returns.  For ActErrno, Errno is the errno (0 is
// allowed: the syscall then returns 0 without running, used to answer
// identity calls in BPF).
type Action struct {
	Kind  ActionKind
	Errno uint16
}

// seccomp return values (include/uapi/linux/seccomp.h).
const (
	retKillProcess = 0x80000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retUserNotif   = 0x7fc00000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000
)

// auditArchX86_64 is AUDIT_ARCH_X86_64 (the x32 check applies there).
var auditArchX86_64 = abi.AMD64.AuditArch

// x32SyscallBit marks x32-ABI syscall numbers on x86_64.
const x32SyscallBit = 0x40000000

// Offsets into struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// Ret returns the 32-bit filter return value for a.  An unknown Kind yields
// SECCOMP_RET_KILL_PROCESS (fail closed); Compile rejects unknown kinds.
func (a Action) Ret() uint32 {
	switch a.Kind {
	case ActAllow:
		return retAllow
	case ActNotify:
		return retUserNotif
	case ActErrno:
		return retErrno | uint32(a.Errno)
	case ActTrap:
		return retTrap
	case ActKillProcess:
		return retKillProcess
	case ActLog:
		return retLog
	}
	return retKillProcess
}

// String returns a short description: "allow", "notify", "errno(EPERM)",
// "trap", "kill" or "log".
func (a Action) String() string {
	switch a.Kind {
	case ActAllow:
		return "allow"
	case ActNotify:
		return "notify"
	case ActErrno:
		if name := unix.ErrnoName(syscall.Errno(a.Errno)); a.Errno != 0 && name != "" {
			return "errno(" + name + ")"
		}
		return fmt.Sprintf("errno(%d)", a.Errno)
	case ActTrap:
		return "trap"
	case ActKillProcess:
		return "kill"
	case ActLog:
		return "log"
	}
	return fmt.Sprintf("action(%d)", a.Kind)
}

func (a Action) valid() bool { return a.Kind <= ActLog }

// ArgCond matches when (arg[Arg] & Mask) == Value, and then the rule yields
// Action.
//
// If Width32 is set, only the low 32 bits of the argument are compared (use
// it for int arguments: the kernel ABI says int, and userspace may leave
// garbage in the high half); Mask and Value are truncated to 32 bits.
// Otherwise the full 64-bit value is compared, both halves.
//
// A condition whose Value has bits outside Mask can never match.  To test
// "arg & bits != 0" for a single bit, use Mask = Value = bit; for several
// bits, use one condition per bit.
//
// The generated code assumes a little-endian host (low word of each
// argument at offset 16+8*i, high word at +4), which covers amd64 and arm64.
type ArgCond struct {
	Arg         int
	Mask, Value uint64
	Width32     bool
	Action      Action
}

// Rule is the policy for one syscall number.  Conds are tried in order and
// the first match wins; if none matches, the rule yields Action.
type Rule struct {
	Nr     int
	Conds  []ArgCond
	Action Action
}

// Program is a whole seccomp policy.
//
// On AUDIT_ARCH_X86_64 every syscall number with the x32 bit (0x40000000)
// set, i.e. every nr >= 0x40000000 when read as unsigned (this includes
// nr == -1), yields BadArch.
type Program struct {
	AuditArch uint32 // AUDIT_ARCH_* of the only accepted architecture, e.g. 0xc000003e
	BadArch   Action // action for a foreign architecture (normally ActKillProcess)
	Rules     []Rule // at most one rule per Nr
	Default   Action // syscalls with no rule
}

// chainMax is the largest number of dispatch items tested by a linear chain
// of comparisons; larger sets are split by a JGE on the median.
const chainMax = 4

// Compile translates p into a classic BPF program for SECCOMP_SET_MODE_FILTER.
//
// Layout: check the architecture, load the syscall number, reject x32
// numbers on x86_64, then dispatch by a balanced binary search (JGE) over
// the sorted rule numbers down to short JEQ chains.  Each rule leaf either
// returns directly or evaluates its argument conditions.  Runs of consecutive
// syscall numbers with the same unconditional action are merged into ranges,
// and rules equivalent to Default are left out.
//
// Compile fails on a duplicate or negative Nr (or one above MaxInt32), an Arg
// outside 0..5, an unknown action kind, or a result longer than 4096
// instructions.
func Compile(p Program) ([]unix.SockFilter, error) {
	for _, a := range []Action{p.BadArch, p.Default} {
		if !a.valid() {
			return nil, fmt.Errorf("seccomp: invalid action kind %d", a.Kind)
		}
	}
	seen := make(map[int]bool, len(p.Rules))
	rules := make([]Rule, 0, len(p.Rules))
	for _, r := range p.Rules {
		if r.Nr < 0 || r.Nr > math.MaxInt32 {
			return nil, fmt.Errorf("seccomp: syscall number %d out of range", r.Nr)
		}
		if seen[r.Nr] {
			return nil, fmt.Errorf("seccomp: duplicate rule for syscall %d", r.Nr)
		}
		seen[r.Nr] = true
		if !r.Action.valid() {
			return nil, fmt.Errorf("seccomp: syscall %d: invalid action kind %d", r.Nr, r.Action.Kind)
		}
		for i, c := range r.Conds {
			if c.Arg < 0 || c.Arg > 5 {
				return nil, fmt.Errorf("seccomp: syscall %d: condition %d: argument index %d outside 0..5", r.Nr, i, c.Arg)
			}
			if !c.Action.valid() {
				return nil, fmt.Errorf("seccomp: syscall %d: condition %d: invalid action kind %d", r.Nr, i, c.Action.Kind)
			}
		}
		r = normalizeRule(r)
		if len(r.Conds) == 0 && r.Action == p.Default {
			continue // same as having no rule
		}
		rules = append(rules, r)
	}
	slices.SortFunc(rules, func(a, b Rule) int { return cmp.Compare(a.Nr, b.Nr) })

	items := mergeRanges(rules)

	var a assembler

	// Architecture check.  The BadArch returns are emitted inline so that
	// these jumps stay short.
	a.loadWord(offArch)
	archOK, archBad := a.newLabel(), a.newLabel()
	a.jump(unix.BPF_JEQ, p.AuditArch, archOK, archBad)
	a.bind(archBad)
	a.ret(p.BadArch.Ret())
	a.bind(archOK)

	// Syscall number; x32 numbers on x86_64 are foreign.
	a.loadWord(offNr)
	if p.AuditArch == auditArchX86_64 {
		x32, native := a.newLabel(), a.newLabel()
		a.jump(unix.BPF_JGE, x32SyscallBit, x32, native)
		a.bind(x32)
		a.ret(p.BadArch.Ret())
		a.bind(native)
	}

	c := compiler{a: &a, def: p.Default}
	c.tree(items)

	return a.assemble()
}

// condHalf is one 32-bit half of a condition: (word & mask) == value.
type condHalf struct {
	off         uint32
	mask, value uint32
}

// halves returns the word tests needed for c (low word first), assuming c is
// normalized (Value has no bits outside Mask).  Halves with a zero mask are
// always true and omitted.
func (c ArgCond) halves() []condHalf {
	off := uint32(offArgs + 8*c.Arg)
	hs := []condHalf{{off, uint32(c.Mask), uint32(c.Value)}}
	if !c.Width32 {
		hs = append(hs, condHalf{off + 4, uint32(c.Mask >> 32), uint32(c.Value >> 32)})
	}
	return slices.DeleteFunc(hs, func(h condHalf) bool { return h.mask == 0 })
}

// normalizeRule truncates Width32 conditions, drops conditions that can
// never match, cuts the list at a condition that always matches, and drops
// trailing conditions that yield the rule's own action anyway.
func normalizeRule(r Rule) Rule {
	conds := make([]ArgCond, 0, len(r.Conds))
	action := r.Action
	for _, c := range r.Conds {
		if c.Width32 {
			c.Mask &= math.MaxUint32
			c.Value &= math.MaxUint32
		}
		if c.Value&^c.Mask != 0 {
			continue // never matches
		}
		if c.Mask == 0 {
			action = c.Action // always matches; later conditions are dead
			break
		}
		conds = append(conds, c)
	}
	for len(conds) > 0 && conds[len(conds)-1].Action == action {
		conds = conds[:len(conds)-1]
	}
	return Rule{Nr: r.Nr, Conds: conds, Action: action}
}

// item is one dispatch target: the syscall numbers lo..hi (inclusive) share
// rule (for a range, lo < hi, the rule is unconditional).
type item struct {
	lo, hi uint32
	rule   Rule
}

// mergeRanges turns sorted, normalized rules into dispatch items, merging
// consecutive numbers with identical unconditional actions.
func mergeRanges(rules []Rule) []item {
	var items []item
	for _, r := range rules {
		nr := uint32(r.Nr)
		if n := len(items); n > 0 {
			last := &items[n-1]
			if len(r.Conds) == 0 && len(last.rule.Conds) == 0 &&
				last.rule.Action == r.Action && last.hi+1 == nr {
				last.hi = nr
				continue
			}
		}
		items = append(items, item{lo: nr, hi: nr, rule: r})
	}
	return items
}

type compiler struct {
	a   *assembler
	def Action
}

// tree emits the dispatch for items, with the syscall number in A.  Numbers
// not covered by items get the default action.
func (c *compiler) tree(items []item) {
	if len(items) <= chainMax {
		c.chain(items)
		return
	}
	mid := len(items) / 2
	left, right := c.a.newLabel(), c.a.newLabel()
	c.a.jump(unix.BPF_JGE, items[mid].lo, right, left)
	c.a.bind(left)
	c.tree(items[:mid])
	c.a.bind(right)
	c.tree(items[mid:])
}

// chain emits a linear sequence of comparisons for a few items, the default
// return, and then the leaves.
func (c *compiler) chain(items []item) {
	a := c.a
	leaf := make([]label, len(items))
	// Unconditional leaves with the same action share one return.
	shared := map[Action]label{}
	for i, it := range items {
		if len(it.rule.Conds) == 0 {
			l, ok := shared[it.rule.Action]
			if !ok {
				l = a.newLabel()
				shared[it.rule.Action] = l
			}
			leaf[i] = l
		} else {
			leaf[i] = a.newLabel()
		}
		next := a.newLabel()
		if it.lo == it.hi {
			a.jump(unix.BPF_JEQ, it.lo, leaf[i], next)
		} else {
			in := a.newLabel()
			a.jump(unix.BPF_JGT, it.hi, next, in)
			a.bind(in)
			a.jump(unix.BPF_JGE, it.lo, leaf[i], next)
		}
		a.bind(next)
	}
	a.ret(c.def.Ret())

	done := map[label]bool{}
	for i, it := range items {
		if done[leaf[i]] {
			continue
		}
		done[leaf[i]] = true
		a.bind(leaf[i])
		c.leaf(it.rule)
	}
}

// leaf emits the argument checks of r followed by its fallback return.
func (c *compiler) leaf(r Rule) {
	a := c.a
	for _, cond := range r.Conds {
		fail := a.newLabel()
		for _, h := range cond.halves() {
			a.loadWord(h.off)
			switch {
			case h.value == 0:
				// All masked bits must be clear.
				ok := a.newLabel()
				a.jump(unix.BPF_JSET, h.mask, fail, ok)
				a.bind(ok)
			case h.value == h.mask && bits.OnesCount32(h.mask) == 1:
				// A single bit that must be set.
				ok := a.newLabel()
				a.jump(unix.BPF_JSET, h.mask, ok, fail)
				a.bind(ok)
			default:
				if h.mask != math.MaxUint32 {
					a.and(h.mask)
				}
				ok := a.newLabel()
				a.jump(unix.BPF_JEQ, h.value, ok, fail)
				a.bind(ok)
			}
		}
		a.ret(cond.Action.Ret())
		a.bind(fail)
	}
	a.ret(r.Action.Ret())
}
