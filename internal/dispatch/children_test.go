package dispatch

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// childrenByOS is ChildrenOf written with os.ReadDir and os.ReadFile,
// the reference it is checked against.
func childrenByOS(pid int) []int {
	var out []int
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, _ := os.ReadDir(dir)
	for _, task := range tasks {
		b, err := os.ReadFile(dir + task.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// TestChildrenOfThreads: the children of every thread are listed, those
// started from other threads of the process too.
func TestChildrenOfThreads(t *testing.T) {
	var mu sync.Mutex
	var want []int
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A thread of its own, kept afterwards (not unlocked), so the
			// child stays listed under a thread other than the main one.
			runtime.LockOSThread()
			cmd := exec.Command("sleep", "30")
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { end(cmd) })
			mu.Lock()
			want = append(want, cmd.Process.Pid)
			mu.Unlock()
		}()
	}
	wg.Wait()
	got := ChildrenOf(os.Getpid())
	for _, pid := range want {
		if !slices.Contains(got, pid) {
			t.Errorf("ChildrenOf(self) = %v, without child %d", got, pid)
		}
	}
	slices.Sort(got)
	ref := childrenByOS(os.Getpid())
	slices.Sort(ref)
	if !slices.Equal(got, ref) {
		t.Errorf("ChildrenOf(self) = %v, the children files list %v", got, ref)
	}
}

// TestChildrenOfLongList: a children file longer than the first read's
// buffer is read whole; a pid that names no process has no children.
func TestChildrenOfLongList(t *testing.T) {
	sh := exec.Command("sh", "-c", "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; echo ok; wait")
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		// The shell and its sleeps: one process group of their own.
		_ = syscall.Kill(-sh.Process.Pid, syscall.SIGKILL)
		_ = sh.Wait()
	}()
	b := make([]byte, 3)
	if _, err := out.Read(b); err != nil || string(b[:2]) != "ok" {
		t.Fatalf("the shell did not start its children: %q %v", b, err)
	}
	got := ChildrenOf(sh.Process.Pid)
	if len(got) != 200 {
		t.Errorf("ChildrenOf(shell) lists %d children, want 200", len(got))
	}
	if ref := childrenByOS(sh.Process.Pid); !slices.Equal(got, ref) {
		t.Errorf("ChildrenOf(shell) = %v, the children file lists %v", got, ref)
	}
	if got := ChildrenOf(1 << 30); got != nil {
		t.Errorf("ChildrenOf(no such pid) = %v", got)
	}
}
