package dispatch

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/loader"
)

// TestTrampolineRuns executes generated trampolines natively: they must
// run the interpreter with the argument vector the kernel would build.
func TestTrampolineRuns(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the trampoline exists for amd64 and arm64 only")
	}
	echo := "/bin/echo"
	if _, err := os.Stat(echo); err != nil {
		t.Skip("no /bin/echo")
	}
	for _, c := range []struct {
		arg    string
		hasArg bool
		argv   []string
		want   string
	}{
		{"", false, []string{"ignored", "a", "b c"}, "/scripts/s.sh a b c\n"},
		{"-n", true, []string{"ignored"}, "/scripts/s.sh"},
		{"", false, []string{}, "/scripts/s.sh\n"},
		{"", true, []string{"ignored", "x"}, " /scripts/s.sh x\n"}, // an empty argument
	} {
		img, err := trampoline(runtime.GOARCH, loader.Script{Interp: echo, Arg: c.arg, HasArg: c.hasArg}, "/scripts/s.sh")
		if err != nil {
			t.Fatal(err)
		}
		fd, err := sealedBytes(img)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "trampoline")
		cmd := exec.Command("/proc/self/fd/3")
		cmd.ExtraFiles = []*os.File{f}
		cmd.Args = c.argv
		if len(c.argv) == 0 {
			cmd.Args = nil
		}
		out, err := cmd.Output()
		f.Close()
		if err != nil {
			t.Fatalf("arg %q argv %q: %v", c.arg, c.argv, err)
		}
		if string(out) != c.want {
			t.Errorf("arg %q argv %q: output %q, want %q", c.arg, c.argv, out, c.want)
		}
	}
}

func TestTrampolineFailsWith127(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("amd64 and arm64 only")
	}
	img, _ := trampoline(runtime.GOARCH, loader.Script{Interp: "/nonexistent/interp"}, "/s")
	fd, err := sealedBytes(img)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "trampoline")
	defer f.Close()
	cmd := exec.Command("/proc/self/fd/3")
	cmd.ExtraFiles = []*os.File{f}
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 127 {
		t.Fatalf("got %v, want exit status 127", err)
	}
}

// TestTrampolineELF checks both architectures' images on any host: a
// static ELF for the machine, entered right after its headers, whose one
// R|X segment holds the strings.
func TestTrampolineELF(t *testing.T) {
	for _, c := range []struct {
		arch    string
		machine elf.Machine
	}{{"amd64", elf.EM_X86_64}, {"arm64", elf.EM_AARCH64}} {
		img, err := trampoline(c.arch, loader.Script{Interp: "/bin/interp", Arg: "-a", HasArg: true}, "/the/script")
		if err != nil {
			t.Fatalf("%s: %v", c.arch, err)
		}
		f, err := elf.NewFile(bytes.NewReader(img))
		if err != nil {
			t.Fatalf("%s: %v", c.arch, err)
		}
		if f.Machine != c.machine || f.Type != elf.ET_EXEC || f.Entry != trampolineBase+64+56 || len(f.Progs) != 1 {
			t.Errorf("%s: machine %v type %v entry %#x, %d segments", c.arch, f.Machine, f.Type, f.Entry, len(f.Progs))
		}
		p := f.Progs[0]
		if p.Type != elf.PT_LOAD || p.Flags != elf.PF_R|elf.PF_X || p.Vaddr != trampolineBase || p.Filesz != uint64(len(img)) ||
			p.Vaddr%p.Align != 0 {
			t.Errorf("%s: segment %+v", c.arch, p.ProgHeader)
		}
		if !bytes.HasSuffix(img, []byte("/bin/interp\x00-a\x00/the/script\x00")) {
			t.Errorf("%s: strings not at the end of the image", c.arch)
		}
	}
	if _, err := trampoline("riscv64", loader.Script{Interp: "/bin/sh"}, "/s"); err == nil {
		t.Error("riscv64: no error")
	}
	if _, err := trampoline("arm64", loader.Script{Interp: "/bin/sh"}, "/s\x00x"); err != unix.ENOEXEC {
		t.Errorf("NUL in the script path: %v, want ENOEXEC", err)
	}
}
