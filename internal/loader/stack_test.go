package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// parsedStack is the initial stack read back the way a libc start-up does.
type parsedStack struct {
	argv, envp []string
	auxv       map[uint64]uint64
	auxOrder   []uint64
}

func readStack(data []byte, sp uint64) (*parsedStack, error) {
	top := sp + uint64(len(data))
	word := func(addr uint64) (uint64, error) {
		if addr < sp || addr+8 > top {
			return 0, fmt.Errorf("word at %#x outside [%#x, %#x)", addr, sp, top)
		}
		return binary.LittleEndian.Uint64(data[addr-sp:]), nil
	}
	str := func(addr uint64) (string, error) {
		if addr < sp || addr >= top {
			return "", fmt.Errorf("string at %#x outside stack", addr)
		}
		b := data[addr-sp:]
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return "", fmt.Errorf("string at %#x unterminated", addr)
		}
		return string(b[:i]), nil
	}
	ps := &parsedStack{auxv: map[uint64]uint64{}}
	argc, err := word(sp)
	if err != nil {
		return nil, err
	}
	p := sp + 8
	for i := uint64(0); i < argc; i++ {
		a, err := word(p)
		if err != nil {
			return nil, err
		}
		s, err := str(a)
		if err != nil {
			return nil, err
		}
		ps.argv = append(ps.argv, s)
		p += 8
	}
	if w, err := word(p); err != nil || w != 0 {
		return nil, fmt.Errorf("argv not NULL-terminated: %#x %v", w, err)
	}
	p += 8
	for {
		a, err := word(p)
		if err != nil {
			return nil, err
		}
		p += 8
		if a == 0 {
			break
		}
		s, err := str(a)
		if err != nil {
			return nil, err
		}
		ps.envp = append(ps.envp, s)
	}
	for {
		k, err := word(p)
		if err != nil {
			return nil, err
		}
		v, err := word(p + 8)
		if err != nil {
			return nil, err
		}
		p += 16
		if _, dup := ps.auxv[k]; dup {
			return nil, fmt.Errorf("auxv entry %d twice", k)
		}
		ps.auxv[k] = v
		ps.auxOrder = append(ps.auxOrder, k)
		if k == AT_NULL {
			break
		}
	}
	return ps, nil
}

func TestBuildStack(t *testing.T) {
	p := StackParams{
		Top:         0x7ffffffff000,
		Argv:        []string{"/bin/hello", "-x", ""},
		Envp:        []string{"PATH=/bin", "HOME=/root"},
		ExecFn:      "/bin/hello",
		Platform:    "x86_64",
		Phdr:        0x400040,
		Phent:       56,
		Phnum:       5,
		Base:        0x7f0000000000,
		Flags:       0,
		Entry:       0x401000,
		UID:         1000,
		EUID:        1001,
		GID:         1002,
		EGID:        1003,
		Secure:      1,
		Hwcap:       0xbfebfbff,
		Hwcap2:      2,
		SysinfoEhdr: 0x7fff00000000,
	}
	for i := range p.Random {
		p.Random[i] = byte(0xa0 + i)
	}
	data, sp, err := BuildStack(p)
	if err != nil {
		t.Fatal(err)
	}
	if sp%16 != 0 || sp+uint64(len(data)) != p.Top {
		t.Fatalf("sp %#x, %d bytes, top %#x", sp, len(data), p.Top)
	}
	ps, err := readStack(data, sp)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ps.argv, "|") != strings.Join(p.Argv, "|") || len(ps.argv) != len(p.Argv) {
		t.Errorf("argv %q", ps.argv)
	}
	if strings.Join(ps.envp, "|") != strings.Join(p.Envp, "|") {
		t.Errorf("envp %q", ps.envp)
	}
	want := map[uint64]uint64{
		AT_SYSINFO_EHDR: 0x7fff00000000, AT_HWCAP: 0xbfebfbff, AT_PAGESZ: 4096, AT_CLKTCK: 100,
		AT_PHDR: 0x400040, AT_PHENT: 56, AT_PHNUM: 5, AT_BASE: 0x7f0000000000, AT_FLAGS: 0,
		AT_ENTRY: 0x401000, AT_UID: 1000, AT_EUID: 1001, AT_GID: 1002, AT_EGID: 1003,
		AT_SECURE: 1, AT_HWCAP2: 2, AT_NULL: 0,
	}
	for k, v := range want {
		if got, ok := ps.auxv[k]; !ok || got != v {
			t.Errorf("auxv[%d] = %#x (present %v), want %#x", k, got, ok, v)
		}
	}
	wantOrder := []uint64{AT_SYSINFO_EHDR, AT_HWCAP, AT_PAGESZ, AT_CLKTCK, AT_PHDR, AT_PHENT, AT_PHNUM,
		AT_BASE, AT_FLAGS, AT_ENTRY, AT_UID, AT_EUID, AT_GID, AT_EGID, AT_SECURE, AT_RANDOM,
		AT_HWCAP2, AT_EXECFN, AT_PLATFORM, AT_NULL}
	if fmt.Sprint(ps.auxOrder) != fmt.Sprint(wantOrder) {
		t.Errorf("auxv order %v, want %v", ps.auxOrder, wantOrder)
	}
	at := func(addr uint64, n int) []byte {
		if addr < sp || addr+uint64(n) > p.Top {
			t.Fatalf("address %#x (+%d) outside stack", addr, n)
		}
		return data[addr-sp : addr-sp+uint64(n)]
	}
	if r := at(ps.auxv[AT_RANDOM], 16); !bytes.Equal(r, p.Random[:]) {
		t.Errorf("AT_RANDOM bytes % x", r)
	}
	if s := at(ps.auxv[AT_EXECFN], len(p.ExecFn)+1); string(s) != p.ExecFn+"\x00" {
		t.Errorf("AT_EXECFN %q", s)
	}
	if s := at(ps.auxv[AT_PLATFORM], len(p.Platform)+1); string(s) != p.Platform+"\x00" {
		t.Errorf("AT_PLATFORM %q", s)
	}
	// The top 8 bytes are zero and ExecFn sits right below them.
	if !bytes.Equal(data[len(data)-8:], make([]byte, 8)) || ps.auxv[AT_EXECFN] != p.Top-8-uint64(len(p.ExecFn)+1) {
		t.Errorf("top of stack: AT_EXECFN %#x, tail % x", ps.auxv[AT_EXECFN], data[len(data)-8:])
	}
	// Strings lie above the pointer block.
	auxEnd := sp + 8*uint64(1+len(p.Argv)+1+len(p.Envp)+1+2*len(wantOrder))
	if ps.auxv[AT_PLATFORM] < auxEnd {
		t.Errorf("platform string %#x inside pointer block ending %#x", ps.auxv[AT_PLATFORM], auxEnd)
	}
}

func TestBuildStackDefaults(t *testing.T) {
	data, sp, err := BuildStack(StackParams{Top: 0x10000, Pagesz: 16384, Clktck: 250})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := readStack(data, sp)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.argv) != 0 || len(ps.envp) != 0 {
		t.Errorf("argv %q envp %q", ps.argv, ps.envp)
	}
	if _, ok := ps.auxv[AT_SYSINFO_EHDR]; ok {
		t.Error("AT_SYSINFO_EHDR present though 0")
	}
	if _, ok := ps.auxv[AT_PLATFORM]; ok {
		t.Error("AT_PLATFORM present though empty")
	}
	if ps.auxv[AT_PAGESZ] != 16384 || ps.auxv[AT_CLKTCK] != 250 {
		t.Errorf("pagesz %d clktck %d", ps.auxv[AT_PAGESZ], ps.auxv[AT_CLKTCK])
	}
	if s := data[ps.auxv[AT_EXECFN]-sp]; s != 0 {
		t.Errorf("empty AT_EXECFN is %q", s)
	}
}

func TestBuildStackAlignment(t *testing.T) {
	for argc := 0; argc <= 5; argc++ {
		for envc := 0; envc <= 6; envc++ {
			for strLen := 0; strLen < 19; strLen += 3 {
				for _, plat := range []string{"", "x86_64", "aarch64"} {
					for _, vdso := range []uint64{0, 0x7fff0000} {
						p := StackParams{Top: 0x7ffc00000000, ExecFn: strings.Repeat("f", strLen), Platform: plat, SysinfoEhdr: vdso}
						for i := range argc {
							p.Argv = append(p.Argv, strings.Repeat("a", i+strLen))
						}
						for i := range envc {
							p.Envp = append(p.Envp, fmt.Sprintf("V%d=%s", i, strings.Repeat("e", strLen*i)))
						}
						data, sp, err := BuildStack(p)
						if err != nil {
							t.Fatal(err)
						}
						if sp%16 != 0 || sp+uint64(len(data)) != p.Top {
							t.Fatalf("argc %d envc %d len %d: sp %#x, %d bytes", argc, envc, strLen, sp, len(data))
						}
						ps, err := readStack(data, sp)
						if err != nil {
							t.Fatal(err)
						}
						if len(ps.argv) != argc || len(ps.envp) != envc || fmt.Sprint(ps.argv) != fmt.Sprint(p.Argv) || fmt.Sprint(ps.envp) != fmt.Sprint(p.Envp) {
							t.Fatalf("argc %d envc %d: read back %q %q", argc, envc, ps.argv, ps.envp)
						}
						if r := ps.auxv[AT_RANDOM]; !bytes.Equal(data[r-sp:r-sp+16], p.Random[:]) {
							t.Fatal("AT_RANDOM")
						}
					}
				}
			}
		}
	}
}

func TestBuildStackErrors(t *testing.T) {
	cases := []struct {
		name string
		p    StackParams
		want string
	}{
		{"unaligned", StackParams{Top: 0x10008}, "not 16-byte aligned"},
		{"nul-arg", StackParams{Top: 0x10000, Argv: []string{"a\x00b"}}, "NUL"},
		{"nul-env", StackParams{Top: 0x10000, Envp: []string{"A=\x00"}}, "NUL"},
		{"nul-execfn", StackParams{Top: 0x10000, ExecFn: "\x00"}, "NUL"},
		{"low-top", StackParams{Top: 0x100}, "do not fit"},
		{"huge", StackParams{Top: 1 << 40, Argv: []string{strings.Repeat("x", MaxStackData)}}, "exceed"},
	}
	for _, c := range cases {
		_, _, err := BuildStack(c.p)
		if err == nil || !errors.Is(err, ErrBadStack) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}
