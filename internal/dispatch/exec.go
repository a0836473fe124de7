package dispatch

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/loader"

	"github.com/kbox-go/kbox/internal/vfs"
)

// How a guest execve works in the notifying tier (docs/architecture.md
// has the long form):
//
//  1. kbox resolves the path in the guest namespace, checks it like the
//     kernel would (regular file, execute permission, noexec mount, ELF for
//     this machine) and prepares an image: the real file for a static ELF
//     when Landlock backs kbox up, otherwise a sealed, read-only memfd copy
//     of the binary, cached per (device, inode, size, mtime, ctime, interp fd).
//     For a dynamic ELF the PT_INTERP string of the copy is patched to
//     /proc/self/fd/M, where M is the guest-namespace interpreter kbox
//     injected into the process (close-on-exec: the kernel opens the
//     interpreter before it closes those).
//  2. The image is injected as descriptor N (close-on-exec) and the guest's
//     path buffer is overwritten with the relative name "N/<basename>" (or
//     "+N" when that does not fit). Every guest process's host cwd is
//     kbox's exec directory, where that entry is a symlink to
//     /proc/self/fd/N: the kernel, resolving the rewritten relative path,
//     reaches exactly the image kbox prepared, and names the process after
//     the program's base name as usual.
//  3. The new name is never longer than the original string, so no byte
//     past its terminating NUL changes. When argv[0] is the same pointer as the path, a copy
//     of the original string is written below the stack pointer and argv[0]
//     repointed to it, so the new program still sees its name.
//  4. The call then continues in the kernel. Without Landlock, an exec
//     whose path or descriptors another task could change between step 2
//     and the kernel's read is refused (exec_race.go).

func init() {
	register(sysExecve, "execve")
	register(sysExecveat, "execveat")
}

type imageKey struct {
	dev, ino, size      uint64
	mtime, ctime        int64
	interpFD            int
	interpDev, interpIn uint64
}

type execSupport struct {
	// looseSharing: a guest clone shared memory or a descriptor table
	// with a task that runs alongside its creator (exec_race.go).
	looseSharing atomic.Bool
	dir          string
	mu           sync.Mutex
	links        map[string]bool
	cache        map[imageKey]int // read-only sealed memfds
	facts        map[imageKey]elfFacts
	pending      map[int]*pendingRestore // by tid (addPending)
}

const execCacheMax = 64

func newExecSupport(dir string) (*execSupport, error) {
	if dir == "" {
		return &execSupport{links: map[string]bool{}, cache: map[imageKey]int{}, facts: map[imageKey]elfFacts{}}, nil
	}
	return &execSupport{dir: dir, links: map[string]bool{}, cache: map[imageKey]int{}, facts: map[imageKey]elfFacts{}}, nil
}

func (x *execSupport) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for k, fd := range x.cache {
		unix.Close(fd)
		delete(x.cache, k)
	}
}

// execName returns the relative name the exec directory resolves to
// /proc/self/fd/n, preferring "N/<base>" so the kernel sets the process
// name (comm) from the program's real base name; "+N" when that does not
// fit in maxLen bytes; "" when neither fits.
func execName(n int, base string, maxLen int) string {
	if long := strconv.Itoa(n) + "/" + base; base != "" && !strings.Contains(base, "/") && len(long) <= maxLen {
		return long
	}
	if short := "+" + strconv.Itoa(n); len(short) <= maxLen {
		return short
	}
	return ""
}

// ensureLink creates the exec directory entry name (from execName).
func (x *execSupport) ensureLink(name string, n int) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.links[name] {
		return nil
	}
	full := filepath.Join(x.dir, name)
	if dir := filepath.Dir(full); dir != x.dir {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	err := os.Symlink("/proc/self/fd/"+strconv.Itoa(n), full)
	if err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	x.links[name] = true
	return nil
}

func sysExecve(e *Engine, r *Request) Result {
	return e.execCommon(r, atFDCWD, 0, r.Ptr(1), r.Ptr(2), 0)
}

func sysExecveat(e *Engine, r *Request) Result {
	flags := r.Int(4)
	if flags&^(unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW) != 0 {
		return Fail(unix.EINVAL)
	}
	return e.execCommon(r, r.Int(0), 1, r.Ptr(2), r.Ptr(3), flags)
}

func (e *Engine) execCommon(r *Request, dirfd, pathArg int, argvAddr, envpAddr uint64, flags int) Result {
	// A previous exec of this task whose restore is still pending failed:
	// the task is back, making another call. Restore before reading
	// anything of it.
	e.exec.finishPending(r.Tid)
	pathAddr := r.Ptr(pathArg)
	p, err := r.Path(pathArg)
	if err != nil {
		return Fail(err)
	}
	if p == "" {
		if flags&unix.AT_EMPTY_PATH == 0 || dirfd == atFDCWD {
			return Fail(unix.ENOENT)
		}
		return e.execFD(r, dirfd)
	}
	l, err := e.resolveAt(r, dirfd, p, followIf(flags&unix.AT_SYMLINK_NOFOLLOW == 0))
	if err != nil {
		return e.execFailed(r, p, err)
	}
	defer l.Release()
	if l.Exists() && !l.Magic {
		if err := e.permitted(r, l, permExec, false); err != nil {
			return e.execFailed(r, p, err)
		}
	}
	file, err := e.openExecutable(l)
	if err != nil {
		return e.execFailed(r, p, err)
	}
	defer file.Close()

	if err := e.execPreflight(r, pathAddr, len(p)); err != nil {
		return e.denied(r, unix.EPERM, "execve of "+strconv.Quote(p)+": "+err.Error())
	}
	image, script, err := e.prepareImage(r, file, p)
	if err != nil {
		return e.execFailed(r, p, err)
	}
	defer unix.Close(image)

	n, err := r.FDs.InjectFD(image, true, -1)
	if err != nil {
		return Fail(err)
	}
	var name string
	if dirfd != atFDCWD && !strings.HasPrefix(p, "/") {
		// Relative to a directory descriptor, the kernel would look the
		// name up there, not in kbox's exec directory: use an absolute
		// name of kbox's own.
		if name = procFD(n); len(name) > len(p) {
			return e.denied(r, unix.ENAMETOOLONG, "execveat path "+strconv.Quote(p)+" is too short to rewrite")
		}
	} else {
		base := path.Base(p)
		r.Proc.mu.Lock()
		if r.Proc.scriptBase != "" {
			// A script trampoline starting the interpreter: Linux names
			// the process after the script.
			base, r.Proc.scriptBase = r.Proc.scriptBase, ""
		}
		r.Proc.mu.Unlock()
		name = execName(n, base, len(p))
		if name == "" {
			if n, err = e.injectShort(r, image, len(p)-1); err == nil {
				name = execName(n, base, len(p))
			}
			if name == "" {
				return e.denied(r, unix.ENAMETOOLONG, "exec path "+strconv.Quote(p)+" is too short to rewrite")
			}
		}
		if err := e.exec.ensureLink(name, n); err != nil {
			return e.denied(r, unix.ENOMEM, "exec directory: "+err.Error())
		}
	}
	sharers, err := e.memorySharers(r)
	if err != nil {
		return e.denied(r, unix.EPERM, "execve of "+strconv.Quote(p)+": "+err.Error())
	}
	var oldExe string
	var sharedMem PinnedMemory
	var held Held
	if len(sharers) > 0 {
		oldExe, _ = os.Readlink("/proc/" + strconv.Itoa(r.Tid) + "/exe")
		pm := r.ProcessAccess
		if pm == nil {
			return e.denied(r, unix.EPERM, "exec by a process sharing its memory (vfork): this tier cannot restore that memory")
		}
		// The address space the caller shares now; after the exec only
		// the other processes have it.
		if sharedMem, err = pm.PinMemory(); err != nil {
			return Fail(err)
		}
		// No process sharing the memory runs from before kbox changes it
		// until after kbox restored it (hold.go in the seccomp tier).
		if held, err = pm.HoldProcesses(sharers); err != nil {
			sharedMem.Close()
			return e.denied(r, unix.EPERM, "execve of "+strconv.Quote(p)+" by a process sharing its memory: "+err.Error())
		}
	}
	patches, err := e.rewriteExecPath(r, pathAddr, p, name, argvAddr, envpAddr)
	if err != nil {
		undoPatches(r.Mem, forceWriter(r), patches)
		if held != nil {
			sharedMem.Close()
			held.Release()
		}
		return e.denied(r, abi.Errno(err, unix.EIO), "cannot rewrite the exec path buffer safely: "+err.Error())
	}
	e.execDone(r, l.Path, script)
	res := Cont()
	if held != nil {
		// A vfork child (posix_spawn, Go's os/exec) shares its parent's
		// memory: once the kernel has read the path (the exec replaced
		// the child's address space, or failed), put back what kbox
		// changed, then let the held processes run. The restore goes
		// through the pinned memory file: after the exec the child's
		// pid names the new program's memory.
		tid := r.Tid
		finish := e.exec.addPending(tid, func() {
			undoPatches(sharedMem, nil, patches) // a memory file: writes read-only pages too
			sharedMem.Close()
			held.Release()
		})
		res.After = func() {
			// Not on the receiving goroutine: the wait has no bound
			// (see waitExecDone).
			go func() {
				waitExecDone(tid, oldExe)
				finish()
			}()
		}
	}
	return res
}

// execFD serves execveat(fd, "", AT_EMPTY_PATH) (fexecve): the kernel would
// run the descriptor's file as it is, reading a dynamic ELF's interpreter
// from the host. The guest's descriptor is replaced, at the same number and
// with the same close-on-exec flag, by the prepared image.
func (e *Engine) execFD(r *Request, fd int) Result {
	h, err := r.FDs.DupFD(fd)
	if err != nil {
		return Fail(err)
	}
	file := os.NewFile(uintptr(h), "fexecve")
	defer file.Close()
	var st unix.Stat_t
	if err := unix.Fstat(h, &st); err != nil {
		return Fail(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return Fail(unix.EACCES)
	}
	if err := unix.Faccessat2(h, "", unix.X_OK, unix.AT_EMPTY_PATH|unix.AT_EACCESS); err != nil {
		return Fail(err)
	}
	if err := e.permittedFD(r, h, permExec); err != nil {
		return Fail(err)
	}
	if err := e.execPreflight(r, 0, 0); err != nil {
		return e.denied(r, unix.EPERM, "fexecve of descriptor "+strconv.Itoa(fd)+": "+err.Error())
	}
	// The kernel names a script executed through a descriptor /dev/fd/N.
	image, script, err := e.prepareImage(r, file, "/dev/fd/"+strconv.Itoa(fd))
	if err != nil {
		return e.execFailed(r, "descriptor "+strconv.Itoa(fd), err)
	}
	defer unix.Close(image)
	if _, err := r.FDs.InjectFD(image, fdCloexec(r.Tgid, fd), fd); err != nil {
		return Fail(err)
	}
	exe := ""
	if g, _, err := e.fdPath(r, fd); err == nil {
		exe = g
	}
	e.execDone(r, exe, script)
	return Cont()
}

// execPreflight refuses an exec whose arguments another task could
// change after kbox's checks (exec_race.go); kbox's own launcher is exempt
// once. pathAddr and pathLen locate the path buffer kbox rewrites (0 for
// fexecve).
func (e *Engine) execPreflight(r *Request, pathAddr uint64, pathLen int) error {
	r.Proc.mu.Lock()
	trusted := r.Proc.trustedExec
	r.Proc.mu.Unlock()
	if trusted || e.cfg.ExecBackstop {
		return nil
	}
	return e.execRaceCheck(r, pathAddr, pathLen)
}

// execFailed answers an exec that failed before the kernel saw it: the
// caller gets the errno; kbox says why, in the words every tier uses
// (loader.ExecFailure): on stderr when it is the command kbox was asked
// to run (its launcher's exec), in a -v line for the guest's own execs
// (not for a path that does not exist, which a PATH search meets in every
// directory). An error without an errno is ENOEXEC.
func (e *Engine) execFailed(r *Request, what string, err error) Result {
	en := unix.ENOEXEC
	var errno unix.Errno
	if errors.As(err, &errno) {
		en = errno
	}
	r.Proc.mu.Lock()
	initial := r.Proc.trustedExec
	r.Proc.mu.Unlock()
	switch {
	case initial:
		e.logMu.Lock()
		fmt.Fprintf(e.cfg.Log, "kbox: %s\n", loader.ExecFailure(what, err))
		e.logMu.Unlock()
	case !loader.LookupMiss(err):
		e.Verbosef("pid %d: %s: %s", r.Tgid, e.arch.SyscallName(r.Nr), loader.ExecFailure(what, err))
	}
	return Fail(en)
}

// execDone records what the process now runs and applies execve's
// credential rules.
func (e *Engine) execDone(r *Request, exe string, script bool) {
	r.Proc.mu.Lock()
	r.Proc.trustedExec = false
	r.Proc.exe = exe
	if script {
		r.Proc.scriptBase = path.Base(exe)
	}
	r.Proc.creds.Exec()
	r.Proc.forgetMemLocked()
	r.Proc.mu.Unlock()
}

// fdCloexec reads a guest descriptor's close-on-exec flag from fdinfo.
func fdCloexec(tgid, fd int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tgid) + "/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			f, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			return err == nil && f&unix.O_CLOEXEC != 0
		}
	}
	return false
}

// openExecutable checks the resolved object like execve would and opens it.
func (e *Engine) openExecutable(l *vfs.Lookup) (*os.File, error) {
	if !l.Exists() {
		return nil, unix.ENOENT
	}
	if l.Magic {
		return nil, unix.EACCES
	}
	switch l.Type() {
	case unix.S_IFREG:
	case unix.S_IFLNK:
		return nil, unix.ELOOP
	default:
		return nil, unix.EACCES
	}
	if err := unix.Faccessat2(l.Obj.FD(), "", unix.X_OK, unix.AT_EMPTY_PATH|unix.AT_EACCESS); err != nil {
		return nil, err
	}
	var sfs unix.Statfs_t
	if unix.Fstatfs(l.Obj.FD(), &sfs) == nil && sfs.Flags&unix.ST_NOEXEC != 0 {
		return nil, unix.EACCES
	}
	fd, err := unix.Open(procFD(l.Obj.FD()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), l.Path), nil
}

func (e *Engine) elfMachine() elf.Machine {
	if e.arch.Name == "arm64" {
		return elf.EM_AARCH64
	}
	return elf.EM_X86_64
}

// prepareImage returns a read-only descriptor of the image to execute;
// script reports a "#!" script (the image is then its trampoline).
// callerPath is the path as the caller named the file.
func (e *Engine) prepareImage(r *Request, file *os.File, callerPath string) (int, bool, error) {
	head := scriptHead(file)
	if loader.IsScript(head) {
		img, err := e.scriptImage(r, head, callerPath)
		return img, err == nil, err
	}
	img, err := e.elfImage(r, file)
	return img, false, err
}

// elfImage prepares an ELF binary (see the comment at the top of the file).
func (e *Engine) elfImage(r *Request, file *os.File) (int, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(file.Fd()), &st); err != nil {
		return -1, err
	}
	key := imageKey{dev: st.Dev, ino: st.Ino, size: uint64(st.Size), mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(), interpFD: -1}
	facts, err := e.elfFacts(file, &st, key)
	if err != nil {
		return -1, err
	}
	var interp *elf.Prog
	if facts.interpSize > 0 {
		interp = &elf.Prog{ProgHeader: elf.ProgHeader{Type: elf.PT_INTERP, Off: facts.interpOff, Filesz: facts.interpSize}}
	}
	if interp == nil && e.cfg.ExecBackstop {
		// A static binary runs from the real file, no copy: should the
		// guest rewrite it to name an interpreter before the kernel reads
		// it, Landlock refuses to execute any interpreter outside the
		// guest's mounts.
		// A duplicate, not a new open through /proc/self/fd (a path walk):
		// the kernel opens the file anew from the injected descriptor.
		return unix.FcntlInt(file.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	}
	var patch []byte
	if interp != nil {
		raw := make([]byte, interp.Filesz) // at most PATH_MAX (elfFacts)
		if interp.Off > math.MaxInt64-interp.Filesz {
			return -1, unix.ENOEXEC
		}
		if _, err := file.ReadAt(raw, int64(interp.Off)); err != nil {
			return -1, unix.ENOEXEC
		}
		if raw[len(raw)-1] != 0 {
			return -1, unix.ENOEXEC // the kernel's check: NUL-terminated
		}
		// The kernel opens the C string: up to the first NUL.
		ipath := string(raw[:bytes.IndexByte(raw, 0)])
		il, err := e.ns.Resolve(e.ctx(r), "", ipath, vfs.FollowFinal)
		if err != nil {
			return -1, &loader.InterpError{Interp: ipath, ELF: true, Err: err}
		}
		ifile, err := e.openExecutable(il)
		il.Release()
		if err != nil {
			if err != unix.EACCES {
				err = unix.ENOENT
			}
			return -1, &loader.InterpError{Interp: ipath, ELF: true, Err: err}
		}
		var ist unix.Stat_t
		unix.Fstat(int(ifile.Fd()), &ist)
		m, err := r.FDs.InjectFD(int(ifile.Fd()), true, -1)
		ifile.Close()
		if err != nil {
			return -1, err
		}
		patch = append([]byte("/proc/self/fd/"+strconv.Itoa(m)), 0)
		if uint64(len(patch)) > interp.Filesz {
			return -1, errors.New("PT_INTERP segment too short for the interpreter path")
		}
		key.interpFD, key.interpDev, key.interpIn = m, ist.Dev, ist.Ino
	}

	e.exec.mu.Lock()
	if fd, ok := e.exec.cache[key]; ok {
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		e.exec.mu.Unlock()
		return dup, err
	}
	e.exec.mu.Unlock()

	img, err := sealedCopy(file, st.Size, interp, patch)
	if err != nil {
		return -1, err
	}
	e.exec.mu.Lock()
	defer e.exec.mu.Unlock()
	if len(e.exec.cache) >= execCacheMax {
		for k, fd := range e.exec.cache {
			unix.Close(fd)
			delete(e.exec.cache, k)
			break
		}
	}
	e.exec.cache[key] = img
	return unix.FcntlInt(uintptr(img), unix.F_DUPFD_CLOEXEC, 0)
}

// elfFacts is what exec needs to know of an ELF file: where its PT_INTERP
// is (interpSize 0: static).
type elfFacts struct {
	interpOff, interpSize uint64
}

// elfFactsMax bounds the per-file cache of parsed headers.
const elfFactsMax = 256

// elfFacts checks an ELF for this machine and finds its PT_INTERP, cached
// per (device, inode, size, mtime, ctime): a shell loop execs the same
// binary thousands of times. internal/loader reads only the headers; a
// file it refuses is given to debug/elf, which accepts what the kernel
// accepts more often than loader's stricter checks.
func (e *Engine) elfFacts(file *os.File, st *unix.Stat_t, key imageKey) (elfFacts, error) {
	e.exec.mu.Lock()
	f, ok := e.exec.facts[key]
	e.exec.mu.Unlock()
	if ok {
		return f, nil
	}
	if im, err := loader.Parse(file, st.Size, e.arch.Name); err == nil {
		f = elfFacts{interpOff: im.InterpOff, interpSize: im.InterpSize}
	} else {
		ef, err := elf.NewFile(file)
		if err != nil || ef.Class != elf.ELFCLASS64 || ef.Machine != e.elfMachine() || (ef.Type != elf.ET_EXEC && ef.Type != elf.ET_DYN) {
			return f, unix.ENOEXEC
		}
		for _, prog := range ef.Progs {
			if prog.Type == elf.PT_INTERP {
				f = elfFacts{interpOff: prog.Off, interpSize: prog.Filesz}
			}
		}
	}
	// The kernel's binfmt_elf: a PT_INTERP of fewer than 2 or more than
	// PATH_MAX bytes is ENOEXEC (and the size is read from the file, so it
	// must be bounded before kbox reads that many bytes).
	if f.interpSize != 0 && (f.interpSize < 2 || f.interpSize > pathMax) {
		return elfFacts{}, unix.ENOEXEC
	}
	e.exec.mu.Lock()
	if len(e.exec.facts) >= elfFactsMax {
		for k := range e.exec.facts {
			delete(e.exec.facts, k)
			break
		}
	}
	e.exec.facts[key] = f
	e.exec.mu.Unlock()
	return f, nil
}

// sealedCopy copies file into a memfd, patches PT_INTERP, seals it against
// any change and returns a read-only descriptor of it (an open writer would
// make the kernel refuse the exec with ETXTBSY).
func sealedCopy(file *os.File, size int64, interp *elf.Prog, patch []byte) (int, error) {
	mfd, err := unix.MemfdCreate("kbox-exec", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, err
	}
	defer unix.Close(mfd)
	if err := copySparse(mfd, file, size); err != nil {
		return -1, err
	}
	if patch != nil {
		full := make([]byte, interp.Filesz)
		copy(full, patch)
		if _, err := unix.Pwrite(mfd, full, int64(interp.Off)); err != nil {
			return -1, err
		}
	}
	if _, err := unix.FcntlInt(uintptr(mfd), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_GROW|unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL); err != nil {
		return -1, err
	}
	ro, err := unix.Open(procFD(mfd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	return ro, nil
}

// copySparse copies the first size bytes of file into the empty memfd mfd,
// keeping the file's holes as holes: the copy lives in memory, and a guest
// must not turn a sparse file of any size (free to create) into as much of
// the host's memory.
func copySparse(mfd int, file *os.File, size int64) error {
	if err := unix.Ftruncate(mfd, size); err != nil {
		return err
	}
	src := int(file.Fd())
	// file may share its offset with a guest descriptor (fexecve): the
	// SEEK_DATA/SEEK_HOLE probes below must not move it.
	if saved, err := unix.Seek(src, 0, io.SeekCurrent); err == nil {
		defer unix.Seek(src, saved, io.SeekStart)
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		data, err := unix.Seek(src, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // only a hole remains
		}
		if err != nil {
			data = off // no SEEK_DATA here: copy everything
		}
		end := size
		if hole, err := unix.Seek(src, data, unix.SEEK_HOLE); err == nil && hole < end {
			end = hole
		}
		for off = data; off < end; {
			chunk := buf
			if rest := end - off; rest < int64(len(chunk)) {
				chunk = chunk[:rest]
			}
			n, err := file.ReadAt(chunk, off)
			if n > 0 {
				if _, werr := unix.Pwrite(mfd, chunk[:n], off); werr != nil {
					return werr
				}
				off += int64(n)
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// injectShort installs image at a free descriptor number of at most
// maxDigits digits, for very short exec paths.
func (e *Engine) injectShort(r *Request, image, maxDigits int) (int, error) {
	limit := 10
	if maxDigits >= 2 {
		limit = 100
	} else if maxDigits < 1 {
		return -1, unix.ENAMETOOLONG
	}
	for n := 3; n < limit; n++ {
		if _, err := os.Lstat("/proc/" + strconv.Itoa(r.Tgid) + "/fd/" + strconv.Itoa(n)); err == nil {
			continue
		}
		return r.FDs.InjectFD(image, true, n)
	}
	return -1, unix.EMFILE
}

// memPatch is one change kbox made to guest memory, with the bytes it
// replaced, so it can be undone.
type memPatch struct {
	addr uint64
	old  []byte
}

// maxArgScan bounds the argv/envp entries checked for aliasing.
const maxArgScan = 4096

// rewriteExecPath overwrites the guest's path buffer with name (see the
// comment at the top of this file) and returns the changes it made.
// Any argv or envp entry that points into the bytes being changed (argv[0]
// is often the path itself, or a tail of it when the compiler merged
// string literals) is given a copy of its original string below the stack
// pointer first.
func (e *Engine) rewriteExecPath(r *Request, pathAddr uint64, orig, name string, argvAddr, envpAddr uint64) ([]memPatch, error) {
	newText := append([]byte(name), 0)
	end := pathAddr + uint64(len(newText)) // [pathAddr, end) changes
	var patches []memPatch
	var scratch uint64
	for _, arr := range []uint64{argvAddr, envpAddr} {
		if arr == 0 {
			continue
		}
		// Read the pointer array a page-bounded chunk at a time.
		var chunk []byte
		var chunkBase uint64
		for i := 0; i < maxArgScan; i++ {
			slotAddr := arr + uint64(8*i)
			if slotAddr < chunkBase || slotAddr+8 > chunkBase+uint64(len(chunk)) {
				n := int(abi.PageSize - slotAddr%abi.PageSize)
				if n < 8 {
					n = 8 // a misaligned slot across pages
				}
				chunk = make([]byte, n)
				if err := r.Mem.Read(slotAddr, chunk); err != nil {
					return patches, err
				}
				chunkBase = slotAddr
			}
			ptr := binary.LittleEndian.Uint64(chunk[slotAddr-chunkBase:])
			if ptr == 0 {
				break
			}
			if ptr < pathAddr || ptr >= end {
				continue
			}
			if scratch == 0 {
				sp, err := r.FDs.StackPointer()
				if err != nil {
					return patches, err
				}
				scratch = sp - 256 // below the x86-64 red zone and then some
			}
			tail := append([]byte(orig[ptr-pathAddr:]), 0)
			scratch = (scratch - uint64(len(tail))) &^ 15
			if err := r.Mem.Write(scratch, tail); err != nil {
				return patches, err
			}
			var slot [8]byte
			binary.LittleEndian.PutUint64(slot[:], scratch)
			old := make([]byte, 8)
			binary.LittleEndian.PutUint64(old, ptr)
			if err := r.Mem.Write(slotAddr, slot[:]); err != nil {
				return patches, err
			}
			patches = append(patches, memPatch{addr: slotAddr, old: old})
		}
	}
	old := append([]byte(orig), 0)[:len(newText)]
	if err := r.Mem.Write(pathAddr, newText); err != nil {
		// Paths in read-only memory (string literals): write through the
		// process's memory file, as a debugger would.
		if r.ProcessAccess == nil {
			return patches, unix.EFAULT
		}
		if err := r.ProcessAccess.WriteForce(pathAddr, newText); err != nil {
			return patches, err
		}
	}
	return append(patches, memPatch{addr: pathAddr, old: old}), nil
}

// undoPatches restores guest memory kbox changed, newest first, through
// mem (force, when not nil, where mem cannot write).
func undoPatches(mem Memory, force func(addr uint64, p []byte) error, patches []memPatch) {
	for i := len(patches) - 1; i >= 0; i-- {
		p := patches[i]
		if mem.Write(p.addr, p.old) != nil && force != nil {
			force(p.addr, p.old)
		}
	}
}

// PinnedMemory is an address space held past the request that reached it;
// Close releases it.
type PinnedMemory interface {
	Memory
	Close() error
}

// Held is a set of processes a tier keeps from running; Release lets them
// go.
type Held interface {
	Release()
}

// Holder is implemented by tiers whose guest processes are separate host
// processes: HoldProcesses returns once no task of the processes pids can
// run an instruction of its own until Release.
type Holder interface {
	HoldProcesses(pids []int) (Held, error)
}

// forceWriter is r's ProcessAccess.WriteForce, or nil.
func forceWriter(r *Request) func(addr uint64, p []byte) error {
	if r.ProcessAccess == nil {
		return nil
	}
	return r.ProcessAccess.WriteForce
}

// ProcessAccess is what a tier whose guest runs in separate host
// processes (the seccomp tier) can do beyond Memory: hold the caller's
// address space past the request and the processes sharing it (a vfork
// child's memory is its parent's: restored after the child's exec, before
// the parent runs again), and write memory the guest mapped read-only (a
// path in a string literal), as a debugger does. The in-process tiers
// leave Request.ProcessAccess nil: their guest is one thread of kbox's
// own process.
type ProcessAccess interface {
	PinMemory() (PinnedMemory, error)
	Holder
	WriteForce(addr uint64, p []byte) error
}

// maxVforkChain bounds the walk up a chain of vfork parents.
const maxVforkChain = 64

// memorySharers lists the other processes sharing the caller's address
// space. Without a loose clone (exec_race.go) those are the chain of
// vfork callers above it, each suspended by the kernel until its child
// execs or exits: the caller's parent, its parent... while they share.
// After one, every process on the host is compared.
func (e *Engine) memorySharers(r *Request) ([]int, error) {
	if e.exec.looseSharing.Load() {
		sh, err := e.sharers(r.Tgid, false)
		if err != nil {
			return nil, err
		}
		var out []int
		for _, s := range sh {
			if s.what == "memory" {
				out = append(out, s.pid)
			}
		}
		return out, nil
	}
	// The parent recorded when kbox first saw the process: a vfork child
	// cannot have been re-parented while its parent waits for it, and a
	// stale pid only makes kcmp fail or differ.
	r.Proc.mu.Lock()
	ppid := r.Proc.ppid
	r.Proc.mu.Unlock()
	if ppid <= 0 {
		ppid = readStatus(r.Tgid).ppid
	}
	var out []int
	for p := ppid; p > 1 && len(out) < maxVforkChain; p = readStatus(p).ppid {
		same, err := kcmp(r.Tgid, p, kcmpVM)
		if p == ppid && err == nil {
			// The memory file cache asks the same (memCacheable): the
			// path rewrite that follows writes through it.
			r.Proc.noteMemShared(ppid, same)
		}
		if err != nil || !same {
			break
		}
		out = append(out, p)
	}
	return out, nil
}

// pendingRestore is the restore of an exec whose kernel part may still
// be running.
type pendingRestore struct {
	once sync.Once
	fn   func()
}

// addPending records fn as tid's pending restore and returns the function
// that runs it (once, whoever comes first: the exec's own wait, or the
// task's next exec).
func (x *execSupport) addPending(tid int, fn func()) func() {
	p := &pendingRestore{fn: fn}
	x.mu.Lock()
	if x.pending == nil {
		x.pending = map[int]*pendingRestore{}
	}
	old := x.pending[tid]
	x.pending[tid] = p
	x.mu.Unlock()
	if old != nil {
		old.once.Do(old.fn)
	}
	return func() {
		x.mu.Lock()
		if x.pending[tid] == p {
			delete(x.pending, tid)
		}
		x.mu.Unlock()
		p.once.Do(p.fn)
	}
}

// finishPending runs tid's pending restore now, if any: the task is in a
// new exec call, so the kernel is done with the previous one's path.
func (x *execSupport) finishPending(tid int) {
	x.mu.Lock()
	p := x.pending[tid]
	delete(x.pending, tid)
	x.mu.Unlock()
	if p != nil {
		p.once.Do(p.fn)
	}
}

// waitExecDone waits until the kernel is done with the exec of tid: its
// address space replaced (its program changed), or the task gone, or back
// from a failed exec (blocked in another call, or outside any: a new
// program that is the same file, which does not change the program, is
// seen so too). It has no
// time bound: restoring before the kernel read the path would make it
// read the caller's original path, a host path. A task that failed the
// exec and then computes without a system call is "running" until it
// makes one; the processes sharing its memory stay held meanwhile, as
// a vfork parent stays suspended natively. A new exec of the task
// finishes the wait's restore first (finishPending).
func waitExecDone(tid int, oldExe string) {
	// The processes sharing the memory stay held until this returns:
	// poll often while an exec normally completes, rarely after that.
	// (Whether the task still shares a held process's memory is not
	// asked: a held process killed meanwhile would answer "no" before
	// the kernel read the path. The task's program is its own.)
	start := time.Now()
	for pause := 20 * time.Microsecond; ; pause = min(2*pause, execPollMax(time.Since(start))) {
		exe, err := os.Readlink("/proc/" + strconv.Itoa(tid) + "/exe")
		if err != nil || exe != oldExe {
			return
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/syscall")
		if err != nil {
			return
		}
		if f := strings.Fields(string(b)); len(f) > 0 && f[0] != "running" && f[0] != strconv.Itoa(unix.SYS_EXECVE) && f[0] != strconv.Itoa(unix.SYS_EXECVEAT) {
			return // back from a failed exec, in another call or none
		}
		time.Sleep(pause)
	}
}

// execPollMax is waitExecDone's longest pause after waiting for d.
func execPollMax(d time.Duration) time.Duration {
	if d < 100*time.Millisecond {
		return 100 * time.Microsecond
	}
	return 10 * time.Millisecond
}
