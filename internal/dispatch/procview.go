package dispatch

import (
	"encoding/binary"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
	"github.com/kbox-go/kbox/internal/vfs"
)

// The guest-only /proc view. Listing a host procfs root (/proc with -R/-S
// or the default root) shows only the guest's processes: getdents64 and
// getdents are notified, continued unchanged for every other directory,
// and for a procfs root served from kbox's duplicate of the descriptor
// (same open file description, so the directory offset advances as usual)
// with the other processes' entries removed. Lookups of /proc/<pid> for
// other processes fail in the resolver.

func init() {
	register(sysGetdents64, "getdents64")
	register(sysGetdents, "getdents")
}

// procRootIno and devptsRootIno are the inode numbers of every procfs and
// devpts root.
const (
	procRootIno   = 1
	devptsRootIno = 1
)

func sysGetdents64(e *Engine, r *Request) Result { return e.getdents(r, true) }
func sysGetdents(e *Engine, r *Request) Result   { return e.getdents(r, false) }

func (e *Engine) getdents(r *Request, is64 bool) Result {
	h, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(h)
	var sfs unix.Statfs_t
	var st unix.Stat_t
	count := int(r.Uint(2))
	if e.ns.Overlay() != nil {
		if ents, ok, err := e.ns.Listing(h); ok {
			// A merged directory of the overlay (fs_overlay.go).
			if err != nil {
				return Fail(err)
			}
			return e.overlayDents(r, h, count, is64, ents)
		}
	}
	if (len(e.mountPoints) > 0 || len(e.fileBinds) > 0) && unix.Fstat(h, &st) == nil {
		if ents := e.mountPoints[[2]uint64{st.Dev, st.Ino}]; ents != nil {
			// A directory holding mount points it has no entry for.
			return e.mountPointDents(r, h, count, is64, ents, e.fileBinds[[2]uint64{st.Dev, st.Ino}])
		}
		if types := e.fileBinds[[2]uint64{st.Dev, st.Ino}]; types != nil {
			// A directory holding file binds (the private /dev): its
			// placeholders' entries get the bound objects' types.
			return e.retypedDents(r, h, count, is64, types)
		}
	}
	if unix.Fstatfs(h, &sfs) != nil || (sfs.Type != unix.PROC_SUPER_MAGIC && sfs.Type != unix.DEVPTS_SUPER_MAGIC) ||
		unix.Fstat(h, &st) != nil {
		return Cont()
	}
	if sfs.Type == unix.DEVPTS_SUPER_MAGIC {
		if st.Ino != devptsRootIno {
			return Cont()
		}
		// A devpts root lists only the guest's ptys (devpts.go).
		ptys := e.Procs.guestPtys()
		return e.filteredDents(r, h, count, is64, func(name string) bool {
			n, err := strconv.Atoi(name)
			return name == "." || name == ".." || (err == nil && ptys[n])
		})
	}
	if st.Ino != procRootIno {
		if e.Procs.fdView != nil {
			if pid, ok := procFDDirPid(h); ok && pid == e.Procs.self {
				return e.listGuestFDs(r, h, count, is64)
			}
		}
		return Cont()
	}
	guests := e.Procs.guestSet()
	return e.filteredDents(r, h, count, is64, func(name string) bool {
		pid, err := strconv.Atoi(name)
		return err != nil || guests[pid]
	})
}

// filteredDents serves getdents on h with only the entries keep accepts.
func (e *Engine) filteredDents(r *Request, h, count int, is64 bool, keep func(name string) bool) Result {
	if count <= 0 {
		return Fail(unix.EINVAL)
	}
	if count > 1<<20 {
		count = 1 << 20
	}
	buf := make([]byte, count)
	for {
		n, err := rawGetdents(h, buf, is64)
		if err != nil {
			return Fail(err)
		}
		if n == 0 {
			return Ok(0)
		}
		out := filterDirents(buf[:n], is64, keep)
		if len(out) > 0 {
			if err := r.Mem.Write(r.Ptr(1), out); err != nil {
				return Fail(err)
			}
			return Ok(int64(len(out)))
		}
		// Everything in this batch was another process's: read on.
	}
}

// retypedDents serves getdents on h with the d_type of the entries named
// in types replaced (types holds S_IFMT values).
func (e *Engine) retypedDents(r *Request, h, count int, is64 bool, types map[string]uint32) Result {
	if count <= 0 {
		return Fail(unix.EINVAL)
	}
	buf := make([]byte, min(count, 1<<20))
	n, err := rawGetdents(h, buf, is64)
	if err != nil || n == 0 {
		return errOf(err)
	}
	b := buf[:n]
	nameOff := 19
	if !is64 {
		nameOff = 18
	}
	for off := 0; off+nameOff <= len(b); {
		reclen := int(binary.LittleEndian.Uint16(b[off+16:]))
		if reclen == 0 || off+reclen > len(b) {
			break
		}
		rec := b[off : off+reclen]
		name := string(rec[nameOff:])
		if i := strings.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if t, ok := types[name]; ok {
			typ := uint8(t >> 12) // DT_* is S_IFMT >> 12
			if is64 {
				rec[18] = typ
			} else {
				rec[reclen-1] = typ
			}
		}
		off += reclen
	}
	if err := r.Mem.Write(r.Ptr(1), b); err != nil {
		return Fail(err)
	}
	return Ok(int64(n))
}

// filterDirents keeps the entries whose name keep accepts.
func filterDirents(b []byte, is64 bool, keep func(name string) bool) []byte {
	out := make([]byte, 0, len(b))
	nameOff := 19 // linux_dirent64: ino 8, off 8, reclen 2, type 1, name
	if !is64 {
		nameOff = 18 // linux_dirent: ino 8, off 8, reclen 2, name ... type
	}
	for off := 0; off+nameOff <= len(b); {
		reclen := int(binary.LittleEndian.Uint16(b[off+16:]))
		if reclen < nameOff || off+reclen > len(b) {
			break
		}
		rec := b[off : off+reclen]
		name := string(rec[nameOff:])
		if i := strings.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if keep(name) {
			out = append(out, rec...)
		}
		off += reclen
	}
	return out
}

// guestSet returns the guest's live processes: every process in the table
// and every descendant of the guest's subreaper or of a table process,
// each entered into the table (with its pidfd) by judge before it counts.
// The numbers are a snapshot: a listed process may exit afterwards, and
// every later use of /proc/<pid> is judged again (GuestDir).
func (t *ProcTable) guestSet() map[int]bool {
	queue := []int{t.subreaperPid()}
	for _, p := range t.live() {
		queue = append(queue, p.Tgid)
	}
	set := map[int]bool{}
	visited := map[int]bool{}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if visited[pid] {
			continue
		}
		visited[pid] = true
		for _, c := range ChildrenOf(pid) {
			if !visited[c] && t.judge(c, 0) != nil {
				queue = append(queue, c)
			}
		}
	}
	for _, p := range t.live() {
		set[p.Tgid] = true
	}
	return set
}

// procFDDirPid reports whether h is a /proc/<pid>/fd or
// /proc/<pid>/task/<tid>/fd directory, and the pid.
func procFDDirPid(h int) (int, bool) {
	p, err := readlinkProcFD(h)
	if err != nil || !strings.HasPrefix(p, "/proc/") || !strings.HasSuffix(p, "/fd") {
		return 0, false
	}
	parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(p, "/proc/"), "/fd"), "/")
	if len(parts) != 1 && !(len(parts) == 3 && parts[1] == "task") {
		return 0, false
	}
	pid, err := strconv.Atoi(parts[0])
	return pid, err == nil
}

// listGuestFDs serves getdents on the in-process guest's own
// /proc/<pid>/fd: the host directory lists kbox's descriptors, so the
// listing is made from the guest's table instead, all in the first call
// (the host directory is then read to its end, so the next call, which
// continues from the shared offset, returns 0).
func (e *Engine) listGuestFDs(r *Request, h, count int, is64 bool) Result {
	if off, err := unix.Seek(h, 0, 1); err != nil || off != 0 {
		return Ok(0)
	}
	names := []string{".", ".."}
	for _, fd := range e.Procs.fdView.GuestFDs(e.Procs.self) {
		names = append(names, strconv.Itoa(fd))
	}
	var out []byte
	for i, name := range names {
		typ := byte(unix.DT_LNK)
		if i < 2 {
			typ = unix.DT_DIR
		}
		var rec []byte
		if is64 {
			reclen := (19 + len(name) + 1 + 7) &^ 7
			rec = make([]byte, reclen)
			binary.LittleEndian.PutUint64(rec[0:], uint64(i+1))
			binary.LittleEndian.PutUint64(rec[8:], uint64(i+1))
			binary.LittleEndian.PutUint16(rec[16:], uint16(reclen))
			rec[18] = typ
			copy(rec[19:], name)
		} else {
			reclen := (18 + len(name) + 2 + 7) &^ 7
			rec = make([]byte, reclen)
			binary.LittleEndian.PutUint64(rec[0:], uint64(i+1))
			binary.LittleEndian.PutUint64(rec[8:], uint64(i+1))
			binary.LittleEndian.PutUint16(rec[16:], uint16(reclen))
			copy(rec[18:], name)
			rec[reclen-1] = typ
		}
		out = append(out, rec...)
	}
	if len(out) > count {
		return Fail(unix.EINVAL)
	}
	if err := r.Mem.Write(r.Ptr(1), out); err != nil {
		return Fail(err)
	}
	buf := make([]byte, 4096)
	for {
		n, err := rawGetdents(h, buf, true)
		if err != nil || n == 0 {
			break
		}
	}
	return Ok(int64(len(out)))
}

// procStatusFile serves /proc/<pid>/status and /proc/<pid>/task/<tid>/status
// of a guest process under a virtual identity: the Uid, Gid, Groups and
// capability lines show the process's virtual credentials (what getresuid,
// getgroups and capget answer), so that ps and programs that parse the
// file see the identity the guest has. The rest is the host's text.
func (e *Engine) procStatusFile(l *vfs.Lookup, flags uint64) (Result, bool) {
	if !e.cfg.Identity.Virtual || l.Mount == nil || l.Mount.Kind != vfs.KindProc || l.Obj == nil ||
		accessWrites(flags) || flags&(unix.O_CREAT|unix.O_DIRECTORY) != 0 {
		return Result{}, false
	}
	f := strings.Split(strings.TrimPrefix(strings.TrimPrefix(l.Path, l.Mount.Guest), "/"), "/")
	if !(len(f) == 2 && f[1] == "status" || len(f) == 4 && f[1] == "task" && f[3] == "status") {
		return Result{}, false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return Result{}, false
	}
	p := e.Procs.guestProcess(pid)
	if p == nil {
		return Result{}, false
	}
	src, err := unix.Open(procFD(l.Obj.FD()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Fail(err), true
	}
	host := make([]byte, 0, 4096)
	buf := make([]byte, 4096)
	for len(host) < 1<<20 {
		n, err := unix.Read(src, buf)
		if err != nil || n <= 0 {
			break
		}
		host = append(host, buf[:n]...)
	}
	unix.Close(src)
	fd, err := sealedBytes([]byte(virtualStatus(string(host), p.Creds())))
	if err != nil {
		return Fail(err), true
	}
	return InjectFD(fd, flags&unix.O_CLOEXEC != 0), true
}

// virtualStatus rewrites the identity lines of a status file's text.
func virtualStatus(text string, c identity.Creds) string {
	ids := func(a, b, c, d uint32) string {
		return strconv.FormatUint(uint64(a), 10) + "\t" + strconv.FormatUint(uint64(b), 10) + "\t" +
			strconv.FormatUint(uint64(c), 10) + "\t" + strconv.FormatUint(uint64(d), 10)
	}
	capHex := func(v uint64) string {
		s := strconv.FormatUint(v, 16)
		return strings.Repeat("0", 16-len(s)) + s
	}
	lines := strings.SplitAfter(text, "\n")
	for i, ln := range lines {
		key, _, ok := strings.Cut(ln, ":")
		if !ok {
			continue
		}
		var v string
		switch key {
		case "Uid":
			v = ids(c.RUID, c.EUID, c.SUID, c.FSUID)
		case "Gid":
			v = ids(c.RGID, c.EGID, c.SGID, c.FSGID)
		case "Groups":
			g := make([]string, len(c.Groups))
			for j, x := range c.Groups {
				g[j] = strconv.FormatUint(uint64(x), 10)
			}
			v = strings.Join(g, " ") + " " // the kernel's trailing space
		case "CapInh":
			v = capHex(c.Caps.Inh)
		case "CapPrm":
			v = capHex(c.Caps.Prm)
		case "CapEff":
			v = capHex(c.Caps.Eff)
		case "CapBnd":
			v = capHex(c.Caps.Bnd)
		case "CapAmb":
			v = capHex(c.Caps.Amb)
		default:
			continue
		}
		nl := ""
		if strings.HasSuffix(ln, "\n") {
			nl = "\n"
		}
		lines[i] = key + ":\t" + v + nl
	}
	return strings.Join(lines, "")
}
