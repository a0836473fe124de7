package dispatch

import (
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMemFileCache: a process's memory file is opened once and kept,
// remade after ForgetMemFile (exec), remade for one retry (then kept)
// when a use of the cached one fails, dropped with the entry; a process sharing its parent's address space gets a
// file per use.
func TestMemFileCache(t *testing.T) {
	_, pt := testTable(t, false)
	a := startSleep(t)
	waitOwnSpace(t, a.Process.Pid)
	p, _, err := pt.Lookup(a.Process.Pid, always)
	if err != nil {
		t.Fatal(err)
	}
	p.ppid = os.Getpid()
	opens := 0
	open := func() (int, error) {
		opens++
		return unix.Open("/proc/"+strconv.Itoa(a.Process.Pid)+"/mem", unix.O_RDWR|unix.O_CLOEXEC, 0)
	}
	var fds []int
	use := func(fail bool) error {
		return p.UseMemFile(open, func(fd int) error {
			fds = append(fds, fd)
			if fail {
				return unix.EFAULT
			}
			return nil
		})
	}
	use(false)
	use(false)
	if opens != 1 || fds[0] != fds[1] {
		t.Errorf("two uses: %d opens, fds %v; want one file", opens, fds)
	}
	p.ForgetMemFile()
	use(false)
	if opens != 2 {
		t.Errorf("after ForgetMemFile: %d opens, want 2", opens)
	}
	if err := use(true); err != unix.EFAULT || opens != 3 {
		t.Errorf("failing use: %v after %d opens, want EFAULT after a fresh retry (3)", err, opens)
	}
	use(false)
	if opens != 3 {
		t.Errorf("the file remade for the retry was not kept (%d opens, want 3)", opens)
	}
	pt.drop(p)
	p.mu.Lock()
	kept := p.mem
	p.mu.Unlock()
	if kept != nil {
		t.Errorf("a dropped process keeps its memory file")
	}

	// A child sharing its parent's address space (here: the test process
	// itself, as its own parent) gets a file per use.
	self, _, err := pt.Lookup(os.Getpid(), always)
	if err != nil {
		t.Fatal(err)
	}
	self.ppid = os.Getpid()
	n := 0
	for i := 0; i < 2; i++ {
		self.UseMemFile(func() (int, error) { n++; return unix.Open("/proc/self/mem", unix.O_RDWR|unix.O_CLOEXEC, 0) },
			func(int) error { return nil })
	}
	if n != 2 {
		t.Errorf("shared address space: %d opens for 2 uses, want 2", n)
	}
	// Once it no longer shares (a vfork child that exec'd: here, its
	// "parent" becomes a process with a space of its own), the file is
	// kept again.
	self.mu.Lock()
	self.ppid = a.Process.Pid
	self.mu.Unlock()
	for i := 0; i < 2; i++ {
		self.UseMemFile(func() (int, error) { n++; return unix.Open("/proc/self/mem", unix.O_RDWR|unix.O_CLOEXEC, 0) },
			func(int) error { return nil })
	}
	if n != 3 {
		t.Errorf("after the space became its own: %d opens for 4 uses, want 3", n)
	}
	pt.drop(self)
}

// waitOwnSpace waits until process pid no longer shares the test's
// address space: Go's Start can return before its vfork child has
// replaced it (seen on arm64, Linux 6.1 under qemu: in 84 of 200 starts
// the child was still running the test binary).
func waitOwnSpace(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		shared, err := kcmp(pid, os.Getpid(), kcmpVM)
		if err != nil {
			t.Fatalf("kcmp: %v", err)
		}
		if !shared {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still shares the test's address space", pid)
		}
		time.Sleep(time.Millisecond)
	}
}
