package dispatch

import (
	"encoding/binary"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
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

// procRootIno is the inode number of every procfs root.
const procRootIno = 1

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
	if unix.Fstatfs(h, &sfs) != nil || sfs.Type != unix.PROC_SUPER_MAGIC || unix.Fstat(h, &st) != nil {
		return Cont()
	}
	count := int(r.Uint(2))
	if st.Ino != procRootIno {
		if e.Procs.fdList != nil {
			if pid, ok := procFDDirPid(h); ok && pid == e.Procs.self {
				return e.listGuestFDs(r, h, count, is64)
			}
		}
		return Cont()
	}
	if count <= 0 {
		return Fail(unix.EINVAL)
	}
	if count > 1<<20 {
		count = 1 << 20
	}
	guests := e.Procs.guestSet()
	buf := make([]byte, count)
	for {
		n, err := rawGetdents(h, buf, is64)
		if err != nil {
			return Fail(err)
		}
		if n == 0 {
			return Ok(0)
		}
		out := filterDirents(buf[:n], is64, guests)
		if len(out) > 0 {
			if err := r.Mem.Write(r.Ptr(1), out); err != nil {
				return Fail(err)
			}
			return Ok(int64(len(out)))
		}
		// Everything in this batch was another process's: read on.
	}
}

// filterDirents drops numeric entries that are not guest processes.
func filterDirents(b []byte, is64 bool, guests map[int]bool) []byte {
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
		if pid, err := strconv.Atoi(name); err != nil || guests[pid] {
			out = append(out, rec...)
		}
		off += reclen
	}
	return out
}

// guestSet returns the guest's processes: kbox's descendants (kbox is the
// guest's subreaper) and every process kbox has seen.
func (t *ProcTable) guestSet() map[int]bool {
	set := map[int]bool{}
	visited := map[int]bool{}
	var walk func(pid int, depth int)
	walk = func(pid int, depth int) {
		if depth > 64 || visited[pid] {
			return
		}
		visited[pid] = true
		for _, c := range childrenOf(pid) {
			set[c] = true
			walk(c, depth+1)
		}
	}
	walk(t.self, 0)
	for _, tgid := range t.tgids() {
		set[tgid] = true
	}
	delete(set, t.self)
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
	for _, fd := range e.Procs.fdList(e.Procs.self) {
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
