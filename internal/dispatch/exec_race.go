package dispatch

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

// Racing an exec. kbox rewrites the exec path in guest memory and lets the
// kernel continue the call, which then reads the path again, and resolves
// "N/<base>" through the exec directory to /proc/self/fd/N in the caller's
// descriptor table. Any task that can write that memory or renumber that
// table while the kernel works can make it execute a file of its choosing
// on the host. With Landlock (Config.ExecBackstop) the kernel refuses to
// execute anything outside the guest's mounts and none of this matters;
// without it, kbox refuses an exec unless no other task can run in that
// window with access to either:
//
//   - the process must be single-threaded;
//   - every other process sharing its memory must be single-threaded, and
//     no guest process may ever have made a clone after which another
//     task runs with its memory or descriptor table: CLONE_VM without
//     CLONE_VFORK, CLONE_FILES (with or without it), each outside a
//     thread, or a thread without CLONE_FILES. The filter notifies
//     exactly those clones (sysClone) and kbox remembers that one
//     happened. Without one, the tasks sharing an address space are a
//     chain of vfork callers, each suspended by the kernel until the next
//     one execs or exits: only the last one runs, and that is the process
//     now blocked in execve; and descriptor tables are shared only among
//     a process's own threads. After one, any other task sharing the
//     memory or the descriptor table refuses the exec;
//   - the path must not lie in a shared mapping (MAP_SHARED, SysV shared
//     memory), which another process can write without sharing the
//     address space. kbox's rewrite of a private page gives the caller a
//     copy of its own, which no file or other process writes.
//
// Sharers are found with kcmp(2) (KCMP_VM, KCMP_FILES) against every
// process on the host, which kbox, the guest's ancestor, may compare; the
// guest itself may not call kcmp.
//
// A refused exec fails with EPERM and a -v line: natively the exec would
// run, and no retry helps while the sharing lasts.

const (
	kcmpVM    = abi.KcmpVM
	kcmpFiles = 2 // KCMP_FILES
)

func init() {
	register(sysClone, "clone")
}

// sysClone sees only the clones after which another task may run with the
// caller's memory or descriptor table (the filter allows the others). It
// remembers that one happened; the clone itself continues.
func sysClone(e *Engine, r *Request) Result {
	if !e.exec.looseSharing.Swap(true) && !e.cfg.ExecBackstop {
		e.Verbosef("pid %d: clone(%#x) shares memory or descriptors with a task that may run alongside its creator: "+
			"without Landlock, exec by a process sharing either is refused from now on", r.Tgid, r.Args[0])
	}
	return Cont()
}

func kcmp(a, b, typ int) (bool, error) {
	ret, _, en := unix.Syscall6(unix.SYS_KCMP, uintptr(a), uintptr(b), uintptr(typ), 0, 0, 0)
	if en != 0 {
		return false, en
	}
	return ret == 0, nil
}

// execRaceCheck refuses an exec (see the top of this file) whose path
// buffer at pathAddr (pathLen bytes and the NUL; 0 for fexecve) or
// descriptors another task could change after kbox's rewrite.
func (e *Engine) execRaceCheck(r *Request, pathAddr uint64, pathLen int) error {
	if n := readStatus(r.Tgid).threads; n != 1 {
		return fmt.Errorf("the process has %d threads, which can change the exec path after kbox's check", n)
	}
	loose := e.exec.looseSharing.Load()
	sh, err := e.sharers(r.Tgid, loose)
	if err != nil {
		return err
	}
	for _, s := range sh {
		if loose {
			return fmt.Errorf("it shares its %s with process %d, and a guest clone shared memory or descriptors "+
				"with a task that may run meanwhile: that task could change the exec after kbox's check", s.what, s.pid)
		}
		if n := readStatus(s.pid).threads; n != 1 {
			return fmt.Errorf("it shares its memory with process %d, which has %d threads that can change the exec path after kbox's check", s.pid, n)
		}
	}
	if pathAddr != 0 {
		shared, err := inSharedMapping(r.Tgid, pathAddr, uint64(pathLen)+1)
		if err != nil {
			return fmt.Errorf("reading its memory map: %v", err)
		}
		if shared {
			return errors.New("the path lies in shared memory, which another process can change after kbox's check")
		}
	}
	return nil
}

// sharer is another task sharing a process's memory or descriptor table.
type sharer struct {
	pid  int
	what string // "memory" or "descriptor table"
}

// sharers lists the other processes that share tgid's address space and,
// with tables set, the tasks (threads included) that share its descriptor
// table.
//
// kcmp fails with EPERM for a process kbox may not inspect. A process
// sharing tgid's memory shares its dumpability, and (the guest cannot
// change its credentials without capabilities, and a root kbox may inspect
// anything) its credentials, so once tgid itself compares, EPERM means
// "not sharing". A task sharing only the descriptor table may have made
// its own memory non-dumpable: for a guest task, EPERM refuses.
func (e *Engine) sharers(tgid int, tables bool) ([]sharer, error) {
	if _, err := kcmp(tgid, tgid, kcmpVM); err != nil {
		if err == unix.ENOSYS {
			return nil, errors.New("the kernel has no kcmp(2), with which kbox finds the tasks that could change the exec after its check")
		}
		return nil, fmt.Errorf("kbox cannot inspect the process (kcmp: %v)", err)
	}
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	var out []sharer
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || pid == tgid || pid == e.Procs.self {
			continue
		}
		if same, err := kcmp(tgid, pid, kcmpVM); err == nil && same {
			out = append(out, sharer{pid, "memory"})
			continue
		}
		if !tables {
			continue
		}
		// Descriptor tables are per task: the process's, then (when kbox
		// may inspect it) each of its threads'.
		if _, err := kcmp(tgid, pid, kcmpFiles); err != nil {
			if err != unix.ESRCH && e.Procs.IsGuest(pid) {
				return nil, fmt.Errorf("kbox cannot compare its descriptor table with guest process %d's (kcmp: %v)", pid, err)
			}
			continue
		}
		tids, _ := os.ReadDir("/proc/" + n + "/task")
		for _, t := range tids {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			same, err := kcmp(tgid, tid, kcmpFiles)
			switch {
			case err == nil && same:
				out = append(out, sharer{tid, "descriptor table"})
			case err != nil && err != unix.ESRCH:
				return nil, fmt.Errorf("kbox cannot compare its descriptor table with task %d's (kcmp: %v)", tid, err)
			}
		}
	}
	return out, nil
}

// inSharedMapping reports whether any byte of [addr, addr+n) lies in a
// shared mapping of process pid.
func inSharedMapping(pid int, addr, n uint64) (bool, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		return false, err
	}
	defer f.Close()
	end := addr + n
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rng, rest, ok := strings.Cut(line, " ")
		if !ok || len(rest) < 4 {
			continue
		}
		lo, hi, ok := strings.Cut(rng, "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		stop, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			return false, fmt.Errorf("bad line %q", line)
		}
		if start < end && addr < stop && rest[3] == 's' {
			return true, nil
		}
	}
	return false, sc.Err()
}

// fdTableStable reports whether the calling process's descriptor numbers
// can change only by its own calls while it is blocked in this one, so
// that a call kbox checked on its duplicate of a descriptor may continue
// in the kernel, which looks the number up again (see the top of this
// file for why that holds). ok=false comes with the reason.
func (e *Engine) fdTableStable(r *Request) (bool, string) {
	if r.ProcessAccess == nil {
		return true, "" // an in-process tier: the guest is one thread
	}
	if n := readStatus(r.Tgid).threads; n != 1 {
		return false, "the process has " + strconv.Itoa(n) + " threads, which can renumber its descriptors meanwhile"
	}
	if !e.exec.looseSharing.Load() {
		return true, ""
	}
	sh, err := e.sharers(r.Tgid, true)
	if err != nil {
		return false, err.Error()
	}
	for _, s := range sh {
		if s.what == "descriptor table" {
			return false, "process " + strconv.Itoa(s.pid) + " shares its descriptor table"
		}
	}
	return true, ""
}
