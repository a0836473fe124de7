package dispatch

import (
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/kbox-go/kbox/internal/loader"
)

// TestTrampolineRuns executes generated trampolines natively: they must
// run the interpreter with the argument vector the kernel would build.
func TestTrampolineRuns(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the trampoline exists for amd64 only")
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
		img, err := trampoline("amd64", loader.Script{Interp: echo, Arg: c.arg, HasArg: c.hasArg}, "/scripts/s.sh")
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
	if runtime.GOARCH != "amd64" {
		t.Skip("amd64 only")
	}
	img, _ := trampoline("amd64", loader.Script{Interp: "/nonexistent/interp"}, "/s")
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
