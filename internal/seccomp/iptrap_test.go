package seccomp

import (
	"math/rand"
	"testing"
)

func TestIPTrap(t *testing.T) {
	host := []Range{
		{0x555555554000, 0x555555600000},
		{0x7ffff7c00000, 0x7ffff7d80000},
		{0x7ffff7fc1000, 0x7ffff7fc3000},
		{0xfffff000, 0x100002000},        // crosses a 4 GiB boundary
		{0x7ffff7d70000, 0x7ffff7d90000}, // overlaps the libc range
	}
	prog, err := IPTrap(auditArchX86_64, host)
	if err != nil {
		t.Fatal(err)
	}
	inHost := func(ip uint64) bool {
		for _, r := range host {
			if ip >= r.Lo && ip < r.Hi {
				return true
			}
		}
		return false
	}
	check := func(ip uint64) {
		t.Helper()
		got, err := Simulate(prog, Data{Nr: 0, Arch: auditArchX86_64, IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		want := Action{Kind: ActTrap}.Ret()
		if inHost(ip) {
			want = Action{Kind: ActAllow}.Ret()
		}
		if got != want {
			t.Fatalf("ip %#x: got %#x, want %#x", ip, got, want)
		}
	}
	for _, r := range host {
		for _, ip := range []uint64{r.Lo - 1, r.Lo, r.Lo + 1, r.Hi - 1, r.Hi, r.Hi + 1} {
			check(ip)
		}
	}
	check(0)
	check(^uint64(0))
	check(0x400000)
	rng := rand.New(rand.NewSource(1))
	for range 20000 {
		r := host[rng.Intn(len(host))]
		check(r.Lo - 0x10000 + uint64(rng.Int63n(int64(r.Hi-r.Lo)+0x20000)))
		check(rng.Uint64())
	}
	if got, _ := Simulate(prog, Data{Nr: 0, Arch: 0x40000003, IP: 0x555555554000}); got != (Action{Kind: ActKillProcess}).Ret() {
		t.Fatalf("foreign arch: %#x", got)
	}
	if got, _ := Simulate(prog, Data{Nr: 0x40000001, Arch: auditArchX86_64, IP: 0x555555554000}); got != (Action{Kind: ActKillProcess}).Ret() {
		t.Fatalf("x32: %#x", got)
	}
	if _, err := IPTrap(auditArchX86_64, nil); err == nil {
		t.Fatal("no ranges accepted")
	}
}

func TestIPTrapThen(t *testing.T) {
	host := []Range{{0x555555554000, 0x555555600000}, {0x7ffff7c00000, 0x7ffff7d80000}}
	then, err := Compile(Program{AuditArch: auditArchX86_64, BadArch: Action{Kind: ActKillProcess},
		Rules:   []Rule{{Nr: 101, Action: Action{Kind: ActErrno, Errno: 1}}},
		Default: Action{Kind: ActAllow}})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := IPTrapThen(auditArchX86_64, host, then, FastPath{IP: 0x555555554abc, Nrs: []int{0, 1, 5}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		nr   int32
		ip   uint64
		want uint32
	}{
		{101, 0x555555554100, Action{Kind: ActErrno, Errno: 1}.Ret()}, // kbox's ptrace: the backstop
		{0, 0x555555554100, Action{Kind: ActAllow}.Ret()},
		{101, 0x400000, Action{Kind: ActTrap}.Ret()}, // the guest's: trapped
		{0, 0x7ffff7c00010, Action{Kind: ActAllow}.Ret()},
		{0, 0x7ffff7d80000, Action{Kind: ActTrap}.Ret()},
		{5, 0x555555554abc, Action{Kind: ActAllow}.Ret()}, // the fast path's own call
		{1, 0x555555554abc, Action{Kind: ActAllow}.Ret()},
		{5, 0x455555554abc, Action{Kind: ActTrap}.Ret()}, // same low word only
		// Another number at the fast path's ip is any kbox call: the backstop.
		{101, 0x555555554abc, Action{Kind: ActErrno, Errno: 1}.Ret()},
		{101, 0x555555554abd, Action{Kind: ActErrno, Errno: 1}.Ret()},
	} {
		got, err := Simulate(prog, Data{Nr: c.nr, Arch: auditArchX86_64, IP: c.ip})
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("nr %d ip %#x: got %#x, want %#x", c.nr, c.ip, got, c.want)
		}
	}
}
