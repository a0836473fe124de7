package x86len

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// objdumpInsn is one instruction line of `objdump -d -w -z`.
type objdumpInsn struct {
	addr uint64
	bad  bool
	text string
}

var (
	objdumpSection = regexp.MustCompile(`^Disassembly of section (\S+):`)
	objdumpLine    = regexp.MustCompile(`^\s*([0-9a-f]+):\t(.*)$`)
)

// runObjdump disassembles all executable sections of path and returns the
// instruction starts objdump reports, per section name.
func runObjdump(t *testing.T, path string) map[string][]objdumpInsn {
	t.Helper()
	out, err := exec.Command("objdump", "-d", "-w", "-z", path).Output()
	if err != nil {
		t.Fatalf("objdump %s: %v", path, err)
	}
	res := map[string][]objdumpInsn{}
	sec := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := objdumpSection.FindStringSubmatch(line); m != nil {
			sec = m[1]
			continue
		}
		m := objdumpLine.FindStringSubmatch(line)
		if m == nil || sec == "" {
			continue
		}
		addr, err := strconv.ParseUint(m[1], 16, 64)
		if err != nil {
			continue
		}
		text := strings.Join(strings.Fields(m[2]), " ")
		res[sec] = append(res[sec], objdumpInsn{
			addr: addr,
			bad:  strings.Contains(m[2], "(bad)"),
			text: text,
		})
		// objdump folds FWAIT (9b) into the following x87 instruction
		// ("9b d9 7c 24 08 fstcw ..."). The CPU executes 9b as a separate
		// one-byte instruction and a branch may target the x87 opcode, so
		// Boundaries reports two starts; mirror that here.
		if f := strings.Fields(m[2]); len(f) > 1 && f[0] == "9b" && isHexByte(f[1]) {
			res[sec] = append(res[sec], objdumpInsn{addr: addr + 1, text: "(split from fwait) " + text})
		}
	}
	return res
}

type crossResult struct {
	compared      int // instruction starts both decoders agree on
	disagreements int // divergent regions not explained by objdump "(bad)"
	excused       int // divergent regions next to objdump "(bad)" or our undecodable bytes
	examples      []string

	sites             map[SiteKind]int // syscall sites found by Sites
	branchTargetPairs int              // MovSyscall pairs whose syscall is a branch target
}

// crossCheck compares Boundaries against objdump for every SHF_EXECINSTR
// section of the ELF file at path.
func crossCheck(t *testing.T, path string) crossResult {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	od := runObjdump(t, path)
	r := crossResult{sites: map[SiteKind]int{}}
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_EXECINSTR == 0 || s.Type != elf.SHT_PROGBITS || s.Size == 0 {
			continue
		}
		data, err := s.Data()
		if err != nil {
			t.Fatalf("%s %s: %v", path, s.Name, err)
		}
		insns := od[s.Name]
		if len(insns) == 0 {
			continue
		}
		starts, _ := Boundaries(data)
		compareSection(&r, s.Name, s.Addr, data, insns, starts)
		for _, site := range Sites(data) {
			r.sites[site.Kind]++
			if site.SyscallIsBranchTarget {
				r.branchTargetPairs++
			}
		}
	}
	return r
}

func compareSection(r *crossResult, name string, base uint64, data []byte, insns []objdumpInsn, starts []int) {
	// Bytes not covered by any of our instructions are undecodable bytes
	// we resynchronized over.
	covered := make([]bool, len(data))
	for _, st := range starts {
		n, _ := Len(data[st:])
		for k := st; k < st+n; k++ {
			covered[k] = true
		}
	}
	oursUndec := func(lo, hi int) bool {
		for k := lo; k < hi && k < len(data); k++ {
			if !covered[k] {
				return true
			}
		}
		return false
	}
	lastSync := 0
	lastSyncBad := false // objdump printed "(bad)" at the last common start
	i, j := 0, 0         // i over objdump, j over ours
	for i < len(insns) && j < len(starts) {
		a := int(insns[i].addr - base)
		b := starts[j]
		if a == b {
			if insns[i].bad {
				lastSync, lastSyncBad = a, true
				i++
				j++
				continue
			}
			r.compared++
			lastSync, lastSyncBad = a, false
			i++
			j++
			continue
		}
		// Divergence: advance both until they meet again.
		regionStart := min(a, b)
		bad := false
		for i < len(insns) && j < len(starts) {
			a = int(insns[i].addr - base)
			b = starts[j]
			if a == b {
				break
			}
			if a < b {
				bad = bad || insns[i].bad
				i++
			} else {
				j++
			}
		}
		regionEnd := len(data)
		if i < len(insns) && j < len(starts) {
			regionEnd = a
		}
		if bad || lastSyncBad || oursUndec(lastSync, regionEnd) {
			r.excused++
			continue
		}
		r.disagreements++
		if len(r.examples) < 10 {
			// Show objdump's view of the region start.
			var ex strings.Builder
			fmt.Fprintf(&ex, "%s+%#x:", name, regionStart)
			for k := max(0, i-4); k < i; k++ {
				fmt.Fprintf(&ex, " [%#x %s]", insns[k].addr, insns[k].text)
			}
			n, err := Len(data[regionStart:])
			fmt.Fprintf(&ex, " ours Len=%d err=%v", n, err)
			r.examples = append(r.examples, ex.String())
		}
	}
}

func TestObjdumpCrossCheck(t *testing.T) {
	if _, err := exec.LookPath("objdump"); err != nil {
		t.Skip("objdump not installed (install binutils)")
	}
	bins := []string{
		"/lib/x86_64-linux-gnu/libc.so.6",
		"/lib64/ld-linux-x86-64.so.2",
		"/usr/lib/musl/lib/libc.so",
		"/usr/lib/x86_64-linux-musl/libc.so",
		"/bin/busybox",
	}
	if exe, err := os.Executable(); err == nil {
		bins = append(bins, exe)
	}
	if goBin := buildGoBinary(t); goBin != "" {
		bins = append(bins, goBin)
	}
	deadline := time.Now().Add(20 * time.Second)
	seen := map[string]bool{}
	for _, b := range bins {
		real, err := filepath.EvalSymlinks(b)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		if !isELF64(real) {
			continue
		}
		if time.Now().After(deadline) {
			t.Logf("%s: skipped, time budget exhausted", b)
			continue
		}
		t.Run(filepath.Base(b), func(t *testing.T) {
			r := crossCheck(t, real)
			t.Logf("%s: %d instruction starts compared, %d disagreements, %d regions excused by (bad)/undecodable",
				b, r.compared, r.disagreements, r.excused)
			t.Logf("%s: sites: %d mov+syscall pairs (%d with a branch into the syscall), %d bare syscalls",
				b, r.sites[MovSyscall], r.branchTargetPairs, r.sites[BareSyscall])
			for _, ex := range r.examples {
				t.Logf("  %s", ex)
			}
			if r.disagreements != 0 {
				t.Errorf("%s: %d disagreements with objdump", b, r.disagreements)
			}
			if r.compared == 0 {
				t.Errorf("%s: nothing compared", b)
			}
		})
	}
}

func isELF64(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Class == elf.ELFCLASS64 && f.Machine == elf.EM_X86_64
}

// buildGoBinary builds a tiny Go program; it returns "" if go is unavailable.
func buildGoBinary(t *testing.T) string {
	goTool, err := exec.LookPath("go")
	if err != nil || testing.Short() {
		return ""
	}
	dir := t.TempDir()
	src := "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() { fmt.Println(os.Args) }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "tiny")
	cmd := exec.Command(goTool, "build", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0", "GOFLAGS=")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Logf("go build of tiny program failed (skipping it): %v\n%s", err, msg)
		return ""
	}
	return out
}

func isHexByte(s string) bool {
	if len(s) != 2 {
		return false
	}
	_, err := strconv.ParseUint(s, 16, 8)
	return err == nil
}

// TestObjdumpRandomBytes is a differential test on pseudo-random bytes
// biased toward prefixes and escape bytes. Regions where objdump prints
// something that is not an architectural instruction boundary are excused:
// "(bad)", a REX prefix followed by a legacy prefix (objdump prints the REX
// as its own "rex.W" pseudo-instruction; the CPU ignores it as part of the
// next instruction), and 66h-prefixed near branches (vendor dependent; Len
// rejects them).
func TestObjdumpRandomBytes(t *testing.T) {
	if _, err := exec.LookPath("objdump"); err != nil {
		t.Skip("objdump not installed (install binutils)")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 256<<10)
	pool := []byte{0x0f, 0x66, 0x67, 0xf2, 0xf3, 0x48, 0x41, 0xc4, 0xc5, 0x62, 0x38, 0x3a, 0x8f}
	for i := range data {
		if rng.IntN(3) == 0 {
			data[i] = pool[rng.IntN(len(pool))]
		} else {
			data[i] = byte(rng.IntN(256))
		}
	}
	p := filepath.Join(t.TempDir(), "random.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("objdump", "-D", "-w", "-z", "-b", "binary", "-m", "i386:x86-64", p).Output()
	if err != nil {
		t.Fatalf("objdump: %v", err)
	}
	vendorBranch := regexp.MustCompile(`^(\S\S )*66 (\S\S )*(0f 8\S|e8|e9) `)
	var insns []objdumpInsn
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := objdumpLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		addr, err := strconv.ParseUint(m[1], 16, 64)
		if err != nil {
			continue
		}
		f := strings.Fields(m[2])
		text := strings.Join(f, " ")
		bad := strings.Contains(text, "(bad)") ||
			strings.HasPrefix(f[len(f)-1], "rex") ||
			vendorBranch.MatchString(text) ||
			strings.Contains(text, " 9b ") // prefixes + fwait folded into x87
		insns = append(insns, objdumpInsn{addr: addr, bad: bad, text: text})
		if len(f) > 1 && f[0] == "9b" && isHexByte(f[1]) {
			insns = append(insns, objdumpInsn{addr: addr + 1, text: "(split from fwait) " + text})
		}
	}
	starts, _ := Boundaries(data)
	var r crossResult
	compareSection(&r, "random", 0, data, insns, starts)
	t.Logf("random bytes: %d instruction starts compared, %d disagreements, %d regions excused",
		r.compared, r.disagreements, r.excused)
	for _, ex := range r.examples {
		t.Logf("  %s", ex)
	}
	if r.disagreements != 0 {
		t.Errorf("%d disagreements with objdump on random bytes", r.disagreements)
	}
}
