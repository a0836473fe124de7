//go:build cgo && linux

package sandbox_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/landlock"
	"github.com/kbox-go/kbox/internal/policy"
	"github.com/kbox-go/kbox/internal/sandbox"
	"github.com/kbox-go/kbox/internal/seccomp"
)

// The test binary links the constructor too: run with sandbox.Marker it is
// the confined child, which probes its limits and prints what it found.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sandbox.Marker {
		childProbe()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childProbe runs in the confined child: spec is "ALLOWED OUTSIDE".
func childProbe() {
	spec, err := sandbox.ReadSpec()
	if err != nil {
		fmt.Println("readspec:", err)
		return
	}
	sandbox.ReportStarted()
	f := strings.Fields(string(spec))
	allowed, outside := f[0], f[1]
	res := func(name string, err error) {
		if err == nil {
			fmt.Println(name + ": ok")
		} else {
			fmt.Println(name+":", unix.ErrnoName(err.(unix.Errno)))
		}
	}
	probe := func(prefix string) {
		_, err := unix.Open(filepath.Join(outside, "secret"), unix.O_RDONLY, 0)
		res(prefix+"open outside", err)
		fd, err := unix.Open(filepath.Join(allowed, prefix+"made"), unix.O_WRONLY|unix.O_CREAT, 0o644)
		res(prefix+"create allowed", err)
		unix.Close(fd)
		_, err = unix.Open("/proc/self/mem", unix.O_RDWR, 0)
		res(prefix+"proc mem rw", err)
		res(prefix+"kill parent", unix.Kill(os.Getppid(), 0))
		res(prefix+"kill self", unix.Kill(os.Getpid(), 0))
		_, _, en := unix.RawSyscall(unix.SYS_KEYCTL, 0, ^uintptr(2), 0)
		res(prefix+"keyctl", en)
	}
	probe("")
	// Another OS thread, created after the constructor ran, is confined
	// too: the point of confining before Go starts.
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		probe("thread ")
		close(done)
	}()
	<-done
	var st [2]unix.CapUserData
	unix.Capget(&unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}, &st[0])
	fmt.Printf("caps: %#x\n", st[0].Effective)
}

func TestPlaceholdersMatch(t *testing.T) {
	pid, neg := sandbox.Placeholders()
	if pid != seccomp.SelfPID || neg != seccomp.SelfNegPID {
		t.Fatalf("confine.h has %#x %#x, internal/seccomp %#x %#x", pid, neg, seccomp.SelfPID, seccomp.SelfNegPID)
	}
}

func TestSpawnConfinesEveryThread(t *testing.T) {
	abiV := landlock.ABI()
	if abiV < 1 {
		t.Skip("no Landlock")
	}
	allowed, outside := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Resolve(abi.Host(), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	filter, err := seccomp.Compile(pol.InProcess())
	if err != nil {
		t.Fatal(err)
	}
	plan := sandbox.Plan{LandlockABI: abiV, Filter: filter, DropCaps: os.Geteuid() == 0,
		Rules: []landlock.Rule{{Path: allowed, Access: landlock.FSRights(abiV)},
			{Path: "/proc", Access: unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR}}}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	child, err := sandbox.Spawn(plan, []byte(allowed+" "+outside), os.Environ(), [3]*os.File{os.Stdin, w, os.Stderr}, false)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Started(); err != nil {
		t.Fatalf("child did not start: %v", err)
	}
	var got []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	var ws unix.WaitStatus
	unix.Wait4(child.Pid, &ws, 0, nil)
	want := []string{"open outside: EACCES", "create allowed: ok", "proc mem rw: EACCES", "kill parent: EPERM",
		"kill self: ok", "keyctl: EPERM"}
	for _, prefix := range []string{"", "thread "} {
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || g == prefix+w
			}
			if !found {
				t.Errorf("want %q in the child's report:\n%s", prefix+w, strings.Join(got, "\n"))
			}
		}
	}
	if os.Geteuid() == 0 && !contains(got, "caps: 0x1f") {
		t.Errorf("started by root, the child keeps only the file capabilities (0x1f):\n%s", strings.Join(got, "\n"))
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("child status %v", ws)
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
