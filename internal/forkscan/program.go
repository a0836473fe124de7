package forkscan

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

// Verdict is what [Program] concludes about a program and every object
// loaded with it at start.
type Verdict uint8

const (
	// Unknown: the scan cannot decide (a library is missing or
	// unreadable, the program loads code at run time with dlopen, an
	// LD_AUDIT module, ...). Treat it as CreatesProcesses.
	Unknown Verdict = iota
	// NoProcesses: neither the program nor any library it loads at start
	// can create a process or a thread, or exec, by any call the scan
	// sees. Only this verdict lets an in-process tier run the program.
	NoProcesses
	// CreatesProcesses: the program or one of its libraries can.
	CreatesProcesses
)

func (v Verdict) String() string {
	switch v {
	case NoProcesses:
		return "no processes"
	case CreatesProcesses:
		return "creates processes"
	}
	return "unknown"
}

// InProcess reports whether an in-process tier may run the program.
func (v Verdict) InProcess() bool { return v == NoProcesses }

// Checker runs [Checker.Program]; its zero value has no cache.
type Checker struct {
	// CacheDir holds one small file per scanned object (keyed by the
	// host file's identity); "" disables the cache.
	CacheDir string
	// Arch is the GOARCH whose programs are checked, with its loaders'
	// library layout ("" for the host's: the in-process tiers run the
	// host's programs only).
	Arch string
}

// Program is (&Checker{CacheDir: DefaultCacheDir()}).Program.
func Program(ns *vfs.Namespace, workDir, guestPath string, env []string) (Verdict, string) {
	return (&Checker{CacheDir: DefaultCacheDir()}).Program(ns, workDir, guestPath, env)
}

// Program decides whether the program at guestPath (resolved in ns from
// workDir, as the guest's exec would) can create processes or threads, or
// exec, through its own code or through any shared object the dynamic
// loader loads with it at start, found as the loader finds it in the
// guest's mount table. env is the guest's environment (LD_LIBRARY_PATH,
// LD_PRELOAD and LD_AUDIT change what is loaded). It returns the verdict
// and a reason for -v: the object and what was found in it.
//
// The objects are resolved like glibc's and musl's loaders do, over-
// approximated so that the answer never depends on the order of a search
// path: for each DT_NEEDED name every file of that name in any directory
// the loader might search is scanned (DT_RPATH of the requesting object and
// of the objects that loaded it, LD_LIBRARY_PATH, DT_RUNPATH, with $ORIGIN,
// $LIB and $PLATFORM expanded; the entries of /etc/ld.so.cache; the
// default directories; their glibc-hwcaps and legacy hwcap
// subdirectories; for musl /etc/ld-musl-ARCH.path), plus LD_PRELOAD and
// /etc/ld.so.preload. A file for another architecture is skipped (the
// loaders skip it too); a name no directory has is Unknown.
//
// The C library (glibc's libc.so.6, ld-linux-x86-64.so.2 or
// ld-linux-aarch64.so.1, libpthread.so.0,
// librt.so.1, libdl.so.2, libutil.so.1, libanl.so.1, by DT_SONAME; musl's
// loader, which is its libc.so, and the names it answers itself) is the
// one object whose own fork and clone sites are not counted: they are
// reached through the functions it exports, and an import of one of those
// (fork, posix_spawn, pthread_create, system, popen, exec*, timer_create,
// syscall, ... — Report.Imports) by any other object counts. Every other
// object counts with its imports, its own fork-family and exec syscall
// sites, and whether it is Go code. An import of dlopen or dlmopen by any
// object other than the C library makes the verdict Unknown: the code it
// loads is not seen.
func (c *Checker) Program(ns *vfs.Namespace, workDir, guestPath string, env []string) (Verdict, string) {
	arch := specForArch(c.Arch)
	if arch == nil {
		return Unknown, "no program scan for " + c.Arch
	}
	st := &state{ns: ns, cwd: workDir, cache: openCache(c.CacheDir), env: env, arch: arch}
	return st.program(guestPath)
}

// object is one ELF file the loader would map.
type object struct {
	path   string // guest path as found (dir/name, or the name with a slash)
	canon  string // canonical guest path (symlinks resolved)
	id     fileID
	info   *objInfo
	parent *object // the object whose DT_NEEDED (or preload) brought it in
	how    string  // "" (DT_NEEDED), "preloaded", "interpreter"
	libc   bool    // the C library (see Checker.Program)
	file   *os.File
}

func (o *object) describe() string {
	s := o.path
	if o.canon != "" && o.canon != o.path {
		s += " (" + o.canon + ")"
	}
	switch {
	case o.how != "":
		s += ", " + o.how
	case o.parent != nil:
		s += ", needed by " + o.parent.path
	}
	return s
}

type state struct {
	arch  *archSpec
	ns    *vfs.Namespace
	cwd   string
	env   []string
	cache *diskCache

	musl    bool
	objs    []*object
	byID    map[fileID]*object
	names   map[string]bool // DT_NEEDED names and sonames already loaded
	ldCache *ldCache
	ldErr   error
	canon   map[string]string // search dir -> canonical guest path ("" if not a directory)
	ldDone  bool
	subdirs map[string][]string // search dir -> its existing hwcap subdirectories
}

// errUnknown carries an Unknown verdict's reason out of the walk.
type errUnknown struct{ reason string }

func (e *errUnknown) Error() string { return e.reason }

// errCreates carries a CreatesProcesses verdict's reason out of the walk.
type errCreates struct{ reason string }

func (e *errCreates) Error() string { return e.reason }

func (st *state) program(guestPath string) (Verdict, string) {
	defer func() {
		for _, o := range st.objs {
			if o.file != nil {
				o.file.Close()
			}
		}
	}()
	err := st.walk(guestPath)
	var u *errUnknown
	var cr *errCreates
	switch {
	case err == nil:
		n := len(st.objs) - 1
		if n == 0 {
			return NoProcesses, "no fork-family sites"
		}
		return NoProcesses, fmt.Sprintf("no fork-family sites in the program and the %d objects it loads", n)
	case errors.As(err, &cr):
		return CreatesProcesses, cr.reason
	case errors.As(err, &u):
		return Unknown, u.reason
	}
	return Unknown, err.Error()
}

// walk loads the program's objects breadth first, checks each one's
// imports as it is found (cheap, and what usually decides), then the code
// of every object that is not the C library.
func (st *state) walk(guestPath string) error {
	st.byID = map[fileID]*object{}
	st.names = map[string]bool{}
	main, err := st.open(guestPath, nil)
	if errors.Is(err, unix.ENOENT) {
		return &errUnknown{"program not found"}
	}
	if err != nil {
		return &errUnknown{err.Error()}
	}
	mi := main.info
	if st.wrongArch(mi) || mi.Err != "" {
		return &errUnknown{"not a program the in-process tiers load (" + st.errText(mi) + ")"}
	}
	st.byID[main.id] = main
	st.objs = append(st.objs, main)
	if err := st.checkFast(main, true); err != nil {
		return err
	}
	if mi.Interp == "" {
		if mi.Dynamic && (len(mi.Needed) > 0 || mi.Soname != "") {
			// ld.so or musl's libc.so run as a program loads the program
			// named on its command line.
			return &errUnknown{"a shared object run as a program (a dynamic loader run directly loads another program)"}
		}
		return st.checkCode(main, true)
	}
	st.musl = strings.HasPrefix(path.Base(mi.Interp), "ld-musl-")
	if v := getenv(st.env, "LD_AUDIT"); v != "" {
		return &errUnknown{"LD_AUDIT is set (audit modules are loaded at start)"}
	}

	// The interpreter, then the preloaded objects, then DT_NEEDED
	// breadth first.
	interp, err := st.open(mi.Interp, main)
	if err != nil {
		return &errUnknown{fmt.Sprintf("interpreter %s: %v", mi.Interp, err)}
	}
	if st.wrongArch(interp.info) || interp.info.Err != "" {
		return &errUnknown{fmt.Sprintf("interpreter %s: %s", mi.Interp, st.errText(interp.info))}
	}
	interp.how = "interpreter"
	// musl's loader is its C library (it has no DT_SONAME).
	interp.libc = st.musl || st.provider(interp.info)
	if err := st.add(interp, path.Base(mi.Interp)); err != nil {
		return err
	}
	preloads := splitList(getenv(st.env, "LD_PRELOAD"), " :\t\n")
	if !st.musl {
		p, err := st.readSmall("/etc/ld.so.preload")
		if err != nil {
			return &errUnknown{"/etc/ld.so.preload: " + err.Error()}
		}
		preloads = append(preloads, splitList(p, " :\t\n")...)
	}
	for _, name := range preloads {
		if err := st.need(name, main, preloaded); err != nil {
			return err
		}
	}
	// st.objs grows as the loop runs: breadth first, as the loaders go.
	for i := 0; i < len(st.objs); i++ {
		o := st.objs[i]
		for _, name := range o.info.Needed {
			if err := st.need(name, o, ""); err != nil {
				return err
			}
		}
	}
	for _, o := range st.objs {
		if err := st.checkCode(o, o == main); err != nil {
			return err
		}
	}
	return nil
}

// maxObjects bounds the objects one program may load (each holds a
// descriptor until the walk ends); past it the verdict is Unknown.
const maxObjects = 512

// add records a loaded object (once per file) and checks its imports.
func (st *state) add(o *object, name string) error {
	st.names[name] = true
	if o.info.Soname != "" {
		st.names[o.info.Soname] = true
	}
	if _, ok := st.byID[o.id]; ok {
		if o.file != nil {
			o.file.Close()
			o.file = nil
		}
		return nil
	}
	if len(st.objs) >= maxObjects {
		o.file.Close()
		return &errUnknown{fmt.Sprintf("more than %d objects loaded at start", maxObjects)}
	}
	st.byID[o.id] = o
	st.objs = append(st.objs, o)
	return st.checkFast(o, false)
}

// need resolves one DT_NEEDED (or preload) name of req and adds every
// candidate file.
func (st *state) need(name string, req *object, how string) error {
	if name == "" {
		return nil
	}
	if st.musl && muslReserved(name) {
		return nil // the loader itself, which is the C library
	}
	if !strings.Contains(name, "/") && st.names[name] {
		return nil // the loader reuses an object of that name or soname
	}
	cands, err := st.candidates(name, req)
	if err != nil {
		return err
	}
	found := false
	for _, p := range cands {
		o, err := st.open(p, req)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return &errUnknown{fmt.Sprintf("%s (%s): %v", p, neededBy(name, req, how), err)}
		}
		if st.wrongArch(o.info) {
			o.file.Close()
			continue // the loader skips it and searches on
		}
		if o.info.Err != "" {
			o.file.Close()
			return &errUnknown{fmt.Sprintf("%s (%s): not a loadable object: %s", p, neededBy(name, req, how), o.info.Err)}
		}
		found = true
		o.how = how
		o.libc = !st.musl && st.provider(o.info)
		if err := st.add(o, name); err != nil {
			return err
		}
	}
	if !found {
		return &errUnknown{fmt.Sprintf("%s (%s) not found in the guest", name, neededBy(name, req, how))}
	}
	return nil
}

func neededBy(name string, req *object, how string) string {
	if how != "" {
		return how
	}
	return "needed by " + req.path
}

// preloaded is the how of LD_PRELOAD and /etc/ld.so.preload objects.
const preloaded = "preloaded"

// checkFast checks what the dynamic section and symbols say; main is the
// program itself, whose report is checked whole by checkCode.
func (st *state) checkFast(o *object, main bool) error {
	in := o.info
	if o.libc {
		return nil
	}
	where := func(r string) string {
		if main {
			return r
		}
		return o.describe() + ": " + r
	}
	switch {
	case in.Unparsed && (!main || in.Interp != ""):
		return &errUnknown{where("ELF headers unreadable (the dynamic section cannot be checked)")}
	case in.Go:
		return &errCreates{where("Go code (the runtime starts threads)")}
	case len(in.Imports) > 0:
		return &errCreates{where(importReason(in.Imports))}
	case in.DynUnreadable:
		return &errUnknown{where("dynamic section or symbols unreadable")}
	case len(in.Dlopen) > 0:
		return &errUnknown{where("imports " + strings.Join(in.Dlopen, ", ") + " (code it loads at run time is not seen)")}
	}
	return nil
}

// checkCode scans the object's code (once per file: the result is cached)
// unless it is the C library.
func (st *state) checkCode(o *object, main bool) error {
	in := o.info
	if o.libc {
		return nil
	}
	if !in.Coded {
		rep, _, err := scan(o.file, o.id.Size, true)
		if err != nil {
			return &errUnknown{o.describe() + ": " + err.Error()}
		}
		in.Coded = true
		in.Creates, in.Reason = rep.CreatesProcesses()
		st.cache.put(o.id, in)
	}
	if in.Creates {
		if main {
			return &errCreates{in.Reason}
		}
		return &errCreates{o.describe() + ": " + in.Reason}
	}
	return nil
}

// splitImports sorts process-related imports into those that create a
// process or thread, the exec family (the program run may fork), and
// libc's generic syscall() wrapper.
func splitImports(imports []string) (named, execs []string, wrapper bool) {
	for _, name := range imports {
		switch {
		case name == "syscall":
			wrapper = true
		case strings.HasPrefix(name, "exec") || name == "fexecve":
			execs = append(execs, name)
		default:
			named = append(named, name)
		}
	}
	return named, execs, wrapper
}

// importReason words Report.Imports (CreatesProcesses uses it too).
func importReason(imports []string) string {
	named, execs, wrapper := splitImports(imports)
	switch {
	case len(named) > 0:
		return "imports " + strings.Join(named, ", ")
	case len(execs) > 0:
		return "imports " + strings.Join(execs, ", ") + " (the program it runs may fork)"
	case wrapper:
		return "imports libc's syscall() wrapper"
	}
	return "imports nothing"
}

// open resolves p in the guest (from the working directory, following
// symlinks) and reads its summary from the cache or the file.
func (st *state) open(p string, parent *object) (*object, error) {
	l, err := st.ns.Resolve(&vfs.Context{Cwd: st.cwd, Root: "/"}, "", p, vfs.FollowFinal)
	if err != nil {
		return nil, err
	}
	defer l.Release()
	if !l.Exists() || l.Obj == nil {
		return nil, unix.ENOENT
	}
	if l.Type() != unix.S_IFREG {
		return nil, errors.New("not a regular file")
	}
	// O_NONBLOCK: never wait on a FIFO swapped in after the check.
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(l.Obj.FD()), os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	var sb unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &sb); err != nil {
		f.Close()
		return nil, err
	}
	if sb.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, errors.New("not a regular file")
	}
	abs := p
	if !path.IsAbs(abs) {
		abs = path.Join(st.cwd, abs)
	}
	o := &object{path: path.Clean(abs), canon: l.Path, id: idOf(&sb), parent: parent, file: f}
	if prev, ok := st.byID[o.id]; ok {
		o.info = prev.info
		return o, nil
	}
	if in, ok := st.cache.get(o.id); ok {
		o.info = in
		return o, nil
	}
	o.info = summarize(f, o.id.Size)
	st.cache.put(o.id, o.info)
	return o, nil
}

// readSmall reads a small guest file, "" when it does not exist.
func (st *state) readSmall(p string) (string, error) {
	f, err := st.ns.OpenFile(st.cwd, p)
	if errors.Is(err, unix.ENOENT) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	return string(b), err
}

// --- per-object summary ---

// objInfo is what the walk needs to know about one file. It is cached by
// the file's identity, so its fields are exported for encoding/json.
type objInfo struct {
	V         int    `json:"v"`
	Err       string `json:"err,omitempty"`  // not an object the loader maps: why
	WrongArch bool   `json:"arch,omitempty"` // another class, or a machine the scan does not read
	// Machine is the file's (EM_X86_64 or EM_AARCH64 unless WrongArch).
	Machine elf.Machine `json:"machine,omitempty"`

	Interp        string   `json:"interp,omitempty"`
	Soname        string   `json:"soname,omitempty"`
	Dynamic       bool     `json:"dyn,omitempty"` // has PT_DYNAMIC
	DynUnreadable bool     `json:"dynbad,omitempty"`
	Needed        []string `json:"needed,omitempty"`
	RPath         []string `json:"rpath,omitempty"`
	RunPath       []string `json:"runpath,omitempty"`
	Imports       []string `json:"imports,omitempty"` // Report.Imports
	Dlopen        []string `json:"dlopen,omitempty"`
	Go            bool     `json:"go,omitempty"`
	// Unparsed: debug/elf could not read the headers (see summarize).
	Unparsed bool `json:"unparsed,omitempty"`

	// Coded is set once the code was scanned; Creates and Reason are
	// then Report.CreatesProcesses.
	Coded   bool   `json:"coded,omitempty"`
	Creates bool   `json:"creates,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// infoVersion changes whenever objInfo or the analysis that fills it does:
// cache entries of another version are ignored.
const infoVersion = 3

// wrongArch reports a file the loader skips: another class, byte order
// or machine than the programs checked.
func (st *state) wrongArch(in *objInfo) bool {
	return in.WrongArch || in.Err == "" && in.Machine != st.arch.machine
}

func (st *state) errText(in *objInfo) string {
	if st.wrongArch(in) {
		return "not an " + st.arch.display + " ELF file"
	}
	return in.Err
}

// provider reports one of the C library's objects (see Checker.Program).
func (st *state) provider(in *objInfo) bool {
	return in.Soname != "" && slices.Contains(st.arch.cSonames, in.Soname)
}

// muslReserved reports the names musl's loader answers with itself.
func muslReserved(name string) bool {
	if strings.HasPrefix(name, "ld-musl-") {
		return true
	}
	for _, l := range []string{"c", "pthread", "rt", "m", "dl", "util", "xnet", "crypt", "resolv"} {
		if n := "lib" + l + ".so"; name == n || strings.HasPrefix(name, n+".") {
			return true
		}
	}
	return false
}

// summarize reads what the walk needs from an ELF file, without decoding
// its code.
func summarize(r io.ReaderAt, size int64) *objInfo {
	in := &objInfo{V: infoVersion}
	var eh [20]byte
	if n, _ := r.ReadAt(eh[:], 0); n < len(eh) || string(eh[:4]) != elf.ELFMAG {
		in.Err = "not an ELF file"
		return in
	}
	in.Machine = elf.Machine(binary.LittleEndian.Uint16(eh[18:]))
	if elf.Class(eh[elf.EI_CLASS]) != elf.ELFCLASS64 || elf.Data(eh[elf.EI_DATA]) != elf.ELFDATA2LSB ||
		specForMachine(in.Machine) == nil {
		in.WrongArch = true
		return in
	}
	rep, f, err := scan(r, size, false)
	if err != nil {
		in.Err = err.Error()
		return in
	}
	in.Interp, in.Go, in.Imports = rep.Interp, rep.Go, rep.Imports
	if f == nil {
		// Headers debug/elf cannot read: whether there is a dynamic
		// section cannot be checked. A static program is still judged by
		// its code (Scan reads it by its segments); as a loaded object or
		// a dynamic program, it is unknown.
		in.Unparsed = true
		return in
	}
	var dyn *elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_DYNAMIC {
			dyn = p
			break
		}
	}
	if dyn == nil {
		if !rep.Static {
			in.Dynamic, in.DynUnreadable = true, true
		}
		return in
	}
	in.Dynamic = true
	d, err := readDynamic(r, f, dyn)
	if err != nil {
		in.DynUnreadable = true
		return in
	}
	in.Needed, in.RPath, in.RunPath, in.Soname = d.needed, d.rpath, d.runpath, d.soname
	// The symbols: debug/elf reads .dynsym through the section headers;
	// the loader uses DT_SYMTAB. They must agree.
	syms := f.SectionByType(elf.SHT_DYNSYM)
	if syms == nil || syms.Addr != d.symtab {
		in.DynUnreadable = true
		return in
	}
	if rep.dynsymErr {
		in.DynUnreadable = true
		return in
	}
	in.Dlopen = rep.dlopen
	return in
}

type dynInfo struct {
	needed, rpath, runpath []string
	soname                 string
	symtab                 uint64
}

// maxDynamic bounds the dynamic segment and string table read.
const maxDynamic = 16 << 20

// readDynamic reads the PT_DYNAMIC entries the loader uses, as the loader
// does: the string table through DT_STRTAB's address, not the section
// headers.
func readDynamic(r io.ReaderAt, f *elf.File, dyn *elf.Prog) (*dynInfo, error) {
	if dyn.Filesz > maxDynamic || dyn.Filesz%16 != 0 {
		return nil, errors.New("bad PT_DYNAMIC size")
	}
	b := make([]byte, dyn.Filesz)
	if err := readFull(r, b, dyn.Off); err != nil {
		return nil, err
	}
	var strtab, strsz uint64
	var needed, rpath, runpath, soname []uint64
	d := &dynInfo{}
	for i := 0; i+16 <= len(b); i += 16 {
		tag := elf.DynTag(binary.LittleEndian.Uint64(b[i:]))
		val := binary.LittleEndian.Uint64(b[i+8:])
		if tag == elf.DT_NULL {
			break
		}
		switch tag {
		case elf.DT_STRTAB:
			strtab = val
		case elf.DT_STRSZ:
			strsz = val
		case elf.DT_SYMTAB:
			d.symtab = val
		case elf.DT_NEEDED:
			needed = append(needed, val)
		case elf.DT_RPATH:
			rpath = append(rpath, val)
		case elf.DT_RUNPATH:
			runpath = append(runpath, val)
		case elf.DT_SONAME:
			soname = append(soname, val)
		}
	}
	if len(needed)+len(rpath)+len(runpath)+len(soname) == 0 {
		return d, nil
	}
	if strsz == 0 || strsz > maxDynamic {
		return nil, errors.New("bad DT_STRSZ")
	}
	off, ok := fileOffset(f, strtab, strsz)
	if !ok {
		return nil, errors.New("DT_STRTAB outside the file")
	}
	strs := make([]byte, strsz)
	if err := readFull(r, strs, off); err != nil {
		return nil, err
	}
	str := func(v uint64) (string, error) {
		if v >= strsz {
			return "", errors.New("dynamic string outside DT_STRTAB")
		}
		s := strs[v:]
		if i := slices.Index(s, 0); i >= 0 {
			return string(s[:i]), nil
		}
		return "", errors.New("unterminated dynamic string")
	}
	for _, list := range []struct {
		vals []uint64
		out  *[]string
	}{{needed, &d.needed}, {rpath, &d.rpath}, {runpath, &d.runpath}} {
		for _, v := range list.vals {
			s, err := str(v)
			if err != nil {
				return nil, err
			}
			*list.out = append(*list.out, s)
		}
	}
	if len(soname) > 0 {
		s, err := str(soname[0])
		if err != nil {
			return nil, err
		}
		d.soname = s
	}
	return d, nil
}

// fileOffset maps [vaddr, vaddr+n) to a file offset through the PT_LOAD
// segment holding it.
func fileOffset(f *elf.File, vaddr, n uint64) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || vaddr < p.Vaddr || vaddr-p.Vaddr >= p.Filesz {
			continue
		}
		if n > p.Filesz-(vaddr-p.Vaddr) {
			return 0, false
		}
		return p.Off + (vaddr - p.Vaddr), true
	}
	return 0, false
}

// --- search paths ---

// muslDefaultDirs is musl's path when its /etc/ld-musl-ARCH.path is
// absent.
var muslDefaultDirs = []string{"/lib", "/usr/local/lib", "/usr/lib"}

// candidates lists every path at which the loader might find name for req.
func (st *state) candidates(name string, req *object) ([]string, error) {
	if strings.Contains(name, "/") {
		return []string{name}, nil
	}
	var dirs []string
	// DT_RPATH of the requesting object and of those that loaded it, and
	// its DT_RUNPATH (musl uses both the same way; glibc ignores RPATH
	// when RUNPATH is present, which only narrows this).
	for o := req; o != nil; o = o.parent {
		dirs = append(dirs, st.arch.expandPaths(o.info.RPath, o)...)
		if o == req || st.musl {
			dirs = append(dirs, st.arch.expandPaths(o.info.RunPath, o)...)
		}
	}
	for _, d := range splitListKeepEmpty(getenv(st.env, "LD_LIBRARY_PATH"), ":;") {
		if d == "" {
			d = "."
		}
		dirs = append(dirs, d)
	}
	var out []string
	if st.musl {
		p, err := st.readSmall(st.arch.muslPathFile)
		if err != nil {
			return nil, &errUnknown{st.arch.muslPathFile + ": " + err.Error()}
		}
		if sys := splitList(p, ":\n"); len(sys) > 0 {
			dirs = append(dirs, sys...)
		} else {
			dirs = append(dirs, muslDefaultDirs...)
		}
	} else {
		cached, err := st.ldCacheLookup(name)
		if err != nil {
			return nil, &errUnknown{"/etc/ld.so.cache: " + err.Error()}
		}
		out = append(out, cached...)
		dirs = append(dirs, st.arch.glibcDirs...)
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		if !path.IsAbs(d) {
			d = path.Join(st.cwd, d)
		}
		// The same directory under two names (/lib and /usr/lib on a
		// merged /usr) is searched once; one that does not exist has
		// nothing.
		d = st.dir(path.Clean(d))
		if d == "" || seen[d] {
			continue
		}
		seen[d] = true
		if !st.musl {
			for _, sub := range st.hwcapDirs(d) {
				out = append(out, path.Join(sub, name))
			}
		}
		out = append(out, path.Join(d, name))
	}
	return out, nil
}

// dir returns the canonical guest path of directory d, "" when d is not a
// directory (or cannot be resolved: the loader finds nothing there either).
func (st *state) dir(d string) string {
	if st.canon == nil {
		st.canon = map[string]string{}
	}
	if c, ok := st.canon[d]; ok {
		return c
	}
	c := ""
	if l, err := st.ns.Resolve(&vfs.Context{Cwd: st.cwd, Root: "/"}, "", d, vfs.FollowFinal); err == nil {
		if l.Exists() && l.Type() == unix.S_IFDIR {
			c = l.Path
		}
		l.Release()
	}
	st.canon[d] = c
	return c
}

// hwcapDirs lists the hwcap subdirectories of the canonical directory d
// that exist.
func (st *state) hwcapDirs(d string) []string {
	if st.subdirs == nil {
		st.subdirs = map[string][]string{}
	}
	if s, ok := st.subdirs[d]; ok {
		return s
	}
	var s []string
	for _, first := range st.arch.hwcapFirst {
		if st.dir(path.Join(d, first)) == "" {
			continue
		}
		for _, sub := range st.arch.hwcapSubdirs[first] {
			p := path.Join(d, first, sub)
			if sub == "" || st.dir(p) != "" {
				s = append(s, p)
			}
		}
	}
	st.subdirs[d] = s
	return s
}

// expandPaths splits DT_RPATH/DT_RUNPATH strings and expands the dynamic
// string tokens for object o: $ORIGIN to its directory (as found and as
// canonical), $LIB and $PLATFORM to every value glibc uses on the
// architecture.
func (a *archSpec) expandPaths(list []string, o *object) []string {
	var out []string
	origins := []string{path.Dir(o.path)}
	if o.canon != "" && path.Dir(o.canon) != origins[0] {
		origins = append(origins, path.Dir(o.canon))
	}
	tokens := []struct {
		name   string
		values []string
	}{
		{"ORIGIN", origins},
		{"LIB", a.libValues},
		{"PLATFORM", a.platformValues},
	}
	for _, s := range list {
		for _, d := range splitList(s, ":;") {
			exp := []string{d}
			for _, tk := range tokens {
				var next []string
				for _, e := range exp {
					if !strings.Contains(e, "$"+tk.name) && !strings.Contains(e, "${"+tk.name+"}") {
						next = append(next, e)
						continue
					}
					for _, v := range tk.values {
						r := strings.ReplaceAll(e, "${"+tk.name+"}", v)
						next = append(next, strings.ReplaceAll(r, "$"+tk.name, v))
					}
				}
				exp = next
			}
			out = append(out, exp...)
		}
	}
	return out
}

func getenv(env []string, key string) string {
	v := ""
	for _, e := range env {
		if k, val, ok := strings.Cut(e, "="); ok && k == key {
			v = val // the last one wins, as in the loader's scan
		}
	}
	return v
}

// splitList splits s at any of seps, dropping empty fields.
func splitList(s, seps string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(seps, r) })
}

// splitListKeepEmpty splits s at any of seps, keeping empty fields ("" if
// s is empty yields none).
func splitListKeepEmpty(s, seps string) []string {
	if s == "" {
		return nil
	}
	var out []string
	start := 0
	for i, r := range s {
		if strings.ContainsRune(seps, r) {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// --- /etc/ld.so.cache ---

// ldCacheLookup returns the entries of the architecture checked for name in the guest's
// /etc/ld.so.cache (glibc's new format, "glibc-ld.so.cache1.1", alone or
// after the old one). A missing cache has no entries; one that cannot be
// parsed is an error (the verdict is then Unknown).
func (st *state) ldCacheLookup(name string) ([]string, error) {
	if !st.ldDone {
		st.ldDone = true
		st.ldCache, st.ldErr = st.loadLdCache()
	}
	if st.ldErr != nil {
		return nil, st.ldErr
	}
	return st.ldCache.lookup(name, st.arch.ldCacheFlag), nil
}

func (st *state) loadLdCache() (*ldCache, error) {
	f, err := st.ns.OpenFile(st.cwd, "/etc/ld.so.cache")
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > 64<<20 {
		return nil, errors.New("larger than 64 MiB")
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	return parseLdCache(b)
}

const (
	ldCacheMagicNew = "glibc-ld.so.cache1.1"
	ldCacheMagicOld = "ld.so-1.7.0"
	ldCacheHeader   = 48 // struct cache_file_new
	ldCacheEntry    = 24 // struct file_entry_new
	ldFlagELFLibc6  = 0x0003
	ldFlagTypeMask  = 0x00ff
	ldFlagArchMask  = 0xff00
)

// ldCache is a validated glibc ld.so.cache (elf/cache.h): the new-format
// part c, whose n entries all have their strings inside c.
type ldCache struct {
	c []byte
	n int
}

// parseLdCache checks the cache's header and every entry's string offsets.
func parseLdCache(b []byte) (*ldCache, error) {
	base := 0
	if len(b) >= len(ldCacheMagicOld) && string(b[:len(ldCacheMagicOld)]) == ldCacheMagicOld {
		// The old format: magic (11 bytes) + padding to 12, nlibs, then
		// nlibs 12-byte entries; the new cache follows, 8-aligned.
		if len(b) < 16 {
			return nil, errors.New("truncated")
		}
		n := int(binary.LittleEndian.Uint32(b[12:]))
		if n < 0 || n > len(b)/12 {
			return nil, errors.New("bad old-format entry count")
		}
		base = (16 + n*12 + 7) &^ 7
	}
	if base+ldCacheHeader > len(b) || string(b[base:base+len(ldCacheMagicNew)]) != ldCacheMagicNew {
		return nil, errors.New("not glibc's ld.so.cache format 1.1")
	}
	lc := &ldCache{c: b[base:]}
	lc.n = int(binary.LittleEndian.Uint32(lc.c[20:]))
	if lc.n < 0 || lc.n > (len(lc.c)-ldCacheHeader)/ldCacheEntry {
		return nil, errors.New("bad entry count")
	}
	for i := 0; i < lc.n; i++ {
		e := lc.c[ldCacheHeader+ldCacheEntry*i:]
		if _, ok := lc.str(binary.LittleEndian.Uint32(e[4:])); !ok {
			return nil, errors.New("string offset outside the cache")
		}
		if _, ok := lc.str(binary.LittleEndian.Uint32(e[8:])); !ok {
			return nil, errors.New("string offset outside the cache")
		}
	}
	return lc, nil
}

// str returns the NUL-terminated string at off, without copying.
func (lc *ldCache) str(off uint32) ([]byte, bool) {
	if int64(off) >= int64(len(lc.c)) {
		return nil, false
	}
	s := lc.c[off:]
	i := slices.Index(s, 0)
	if i < 0 {
		return nil, false
	}
	return s[:i], true
}

// lookup returns the paths of the libc6 entries for name whose
// architecture bits are archFlag (several for hwcap variants).
func (lc *ldCache) lookup(name string, archFlag uint32) []string {
	if lc == nil {
		return nil
	}
	var out []string
	for i := 0; i < lc.n; i++ {
		e := lc.c[ldCacheHeader+ldCacheEntry*i:]
		flags := binary.LittleEndian.Uint32(e)
		if flags&ldFlagTypeMask != ldFlagELFLibc6 || flags&ldFlagArchMask != archFlag {
			continue
		}
		if k, _ := lc.str(binary.LittleEndian.Uint32(e[4:])); string(k) != name {
			continue
		}
		v, _ := lc.str(binary.LittleEndian.Uint32(e[8:]))
		if !slices.Contains(out, string(v)) {
			out = append(out, string(v))
		}
	}
	return out
}
