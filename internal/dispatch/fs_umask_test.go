package dispatch

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseUmask(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"Name:\tsh\nUmask:\t0077\nState:\tS\n", 0o77, true},
		{"Umask:\t0022\n", 0o22, true},
		{"Umask:\t0000", 0, true},
		{"Name:\tsh\nState:\tS\n", 0, false}, // before Linux 4.7
		{"Umask:\t0x12\n", 0, false},         // not octal
		{"Umask:\t01777\n", 0, false},        // more than permission bits
		{"XUmask:\t0077\nUmask:\t0002\n", 0o2, true},
	} {
		got, ok := parseUmask([]byte(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("parseUmask(%q) = %#o, %v; want %#o, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestUmaskThreads: a creating call made through the umask threads gets
// the umask asked for, whatever the process's own, and leaves the
// process's umask alone.
func TestUmaskThreads(t *testing.T) {
	dir := t.TempDir()
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	for i, mask := range []int{0o077, 0, 0o027, 0o777} {
		name := "f" + strconv.Itoa(i)
		err := umaskThreads.run(mask, func() error { return unix.Mkdirat(dfd, name, 0o777) })
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(dir + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if got := int(fi.Mode().Perm()); got != 0o777&^mask {
			t.Errorf("umask %#o: mode %#o, want %#o", mask, got, 0o777&^mask)
		}
	}
	if cur := unix.Umask(0o022); cur != 0o022 {
		t.Errorf("the process umask changed to %#o", cur)
	}
}
