package unotify

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// taskState reads the state letter of /proc/<pid>/stat.
func procState(t *testing.T, pid int) byte {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return s[i+2]
}

// waitState waits (bounded) for pid's state to satisfy ok.
func waitState(t *testing.T, pid int, ok func(byte) bool) byte {
	t.Helper()
	var st byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if st = procState(t, pid); ok(st) {
			break
		}
	}
	return st
}

// TestHoldProcesses: a process computing in user mode is stopped by the
// hold (a ptrace stop, 't'), runs again once released; one blocked in a
// system call is held at once and resumes its call.
func TestHoldProcesses(t *testing.T) {
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"computing", []string{"sh", "-c", "while :; do :; done"}},
		{"sleeping", []string{"sleep", "100"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(c.argv[0], c.argv[1:]...)
			if err := cmd.Start(); err != nil {
				t.Skip(err)
			}
			defer func() {
				cmd.Process.Kill()
				cmd.Wait()
			}()
			pid := cmd.Process.Pid
			time.Sleep(20 * time.Millisecond)
			h, err := (&memory{}).HoldProcesses([]int{pid})
			if err != nil {
				t.Fatalf("HoldProcesses: %v", err)
			}
			if c.name == "computing" {
				// Held means stopped already: no waiting here.
				if st := procState(t, pid); st != 't' {
					t.Fatalf("held process in state %c, want t (tracing stop)", st)
				}
			} else if st := waitState(t, pid, func(s byte) bool { return s == 't' }); st != 't' {
				t.Fatalf("held sleeping process in state %c, want t", st)
			}
			h.Release()
			if st := waitState(t, pid, func(s byte) bool { return s != 't' }); st == 't' {
				t.Fatalf("released process still in state %c", st)
			}
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
			if !strings.Contains(string(b), "TracerPid:\t0\n") {
				t.Fatalf("released process still traced:\n%s", b)
			}
		})
	}
}

// TestHoldTwice: a process one hold has cannot be held by another (the
// exec that asks is refused rather than racing the first).
func TestHoldTwice(t *testing.T) {
	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	h, err := (&memory{}).HoldProcesses([]int{cmd.Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	if h2, err := (&memory{}).HoldProcesses([]int{cmd.Process.Pid}); err == nil {
		h2.Release()
		t.Fatal("a second hold of the same process succeeded")
	}
	h.Release()
	if h2, err := (&memory{}).HoldProcesses([]int{cmd.Process.Pid}); err != nil {
		// The first hold's thread may still be detaching.
		time.Sleep(50 * time.Millisecond)
		if h2, err = (&memory{}).HoldProcesses([]int{cmd.Process.Pid}); err != nil {
			t.Fatalf("after release: %v", err)
		}
		h2.Release()
	} else {
		h2.Release()
	}
}
