package unotify

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

//go:generate sh initprog/build.sh

// The guest's first process starts from kbox-init (initprog/init.c), a
// static program of a few KB embedded per architecture, which is the reaper
// and forks the launcher (reaper.go and launch.go say what each does):
// one exec of a program with no runtime, instead of kbox re-executed twice
// (the reaper, then the launcher). Where it cannot run (no program for
// this architecture, memfd_create or its exec refused, a config beyond
// its limit), kbox falls back to re-executing itself.

// initConfigMax is kbox-init's config limit (maxConfig in init.c).
const initConfigMax = 4 << 20

// initProgFD is the lowest descriptor number kbox-init's memfd may take:
// above every descriptor spawnReaper sets in the child.
const initProgFD = 64

// initProgram is kbox-init for this architecture (nil: none).
var initProgram []byte

var initProg struct {
	once sync.Once
	path string // /proc/self/fd/N of a sealed memfd holding it
	err  error
}

// initProgramPath returns a path kbox can exec kbox-init by.
func initProgramPath() (string, error) {
	initProg.once.Do(func() {
		if len(initProgram) == 0 {
			initProg.err = fmt.Errorf("no kbox-init for this architecture")
			return
		}
		fd, err := unix.MemfdCreate("kbox-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
		if err == unix.EINVAL { // before Linux 6.3: no MFD_EXEC
			fd, err = unix.MemfdCreate("kbox-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
		}
		if err != nil {
			initProg.err = fmt.Errorf("memfd_create: %w", err)
			return
		}
		if _, err := unix.Write(fd, initProgram); err != nil {
			unix.Close(fd)
			initProg.err = fmt.Errorf("writing kbox-init: %w", err)
			return
		}
		seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
			unix.Close(fd)
			initProg.err = fmt.Errorf("sealing kbox-init: %w", err)
			return
		}
		// The child execs /proc/self/fd/N after its descriptors 0..k
		// were set to the files it gets (spawnReaper: at most 8): a
		// memfd numbered below that would be replaced by one of them
		// (with an early start it was 7, the exec ruleset's place).
		high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, initProgFD)
		unix.Close(fd)
		if err != nil {
			initProg.err = fmt.Errorf("moving kbox-init's descriptor: %w", err)
			return
		}
		fd = high
		initProg.path = "/proc/self/fd/" + strconv.Itoa(fd) // kept open for the process's life
	})
	return initProg.path, initProg.err
}

// launchConfig encodes l for kbox-init (the format is in init.c).
func launchConfig(l Launch) ([]byte, error) {
	var b bytes.Buffer
	u32 := func(v uint32) { binary.Write(&b, binary.LittleEndian, v) }
	str := func(s string) { u32(uint32(len(s))); b.WriteString(s) }
	strs := func(ss []string) {
		u32(uint32(len(ss)))
		for _, s := range ss {
			str(s)
		}
	}
	b.WriteString("KBI1")
	var flags uint32
	if l.KeepCaps {
		flags |= 1
	}
	if l.Landlock > 0 {
		flags |= 2
	}
	u32(flags)
	binary.Write(&b, binary.LittleEndian, l.GuestNproc)
	str(l.ExecDir)
	u32(uint32(len(l.Filter) * 8))
	for _, f := range l.Filter {
		binary.Write(&b, binary.LittleEndian, f)
	}
	str(l.Path)
	strs(l.Argv)
	strs(l.Env)
	// init.c copies every string into an arena half again the config's
	// size, with 16-byte rounding and a pointer per string.
	if n := len(l.Argv) + len(l.Env); n > initConfigMax/64 {
		return nil, fmt.Errorf("%d arguments and environment strings, beyond kbox-init's %d", n, initConfigMax/64)
	}
	if b.Len() > initConfigMax {
		return nil, fmt.Errorf("launch config of %d bytes beyond kbox-init's %d", b.Len(), initConfigMax)
	}
	return b.Bytes(), nil
}

// spawnReaper starts a reaper program (kbox-init, or kbox re-executed)
// with files as descriptors 0-4, then the lifeline and the report pipe (5,
// 6) and extra (7) when given.
func spawnReaper(prog string, argv []string, files []*os.File, extra *os.File) (*reaper, error) {
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		lifeR.Close()
		lifeW.Close()
		return nil, err
	}
	fds := append(append([]*os.File{}, files...), lifeR, repW)
	if extra != nil {
		fds = append(fds, extra)
	}
	// syscall.ForkExec, not os.StartProcess: the latter first probes, once
	// per kbox process, whether the kernel supports pidfds (pidfd_open,
	// waitid and pidfd_send_signal on kbox itself, and a CLONE_PIDFD
	// child that exits at once), for a handle kbox releases unused.
	nums := make([]uintptr, len(fds))
	for i, f := range fds {
		nums[i] = f.Fd()
	}
	pid, err := syscall.ForkExec(prog, argv, &syscall.ProcAttr{
		Env:   helperEnv,
		Files: nums,
		// A group of its own: a signal to kbox's job does not reach it.
		Sys: &syscall.SysProcAttr{Setpgid: true},
	})
	runtime.KeepAlive(fds)
	lifeR.Close()
	repW.Close()
	if err != nil {
		lifeW.Close()
		repR.Close()
		return nil, fmt.Errorf("starting the reaper: %w", &os.PathError{Op: "fork/exec", Path: prog, Err: err})
	}
	return newReaper(pid, lifeW, repR), nil
}
