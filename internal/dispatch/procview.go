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
	if unix.Fstatfs(h, &sfs) != nil || sfs.Type != unix.PROC_SUPER_MAGIC ||
		unix.Fstat(h, &st) != nil || st.Ino != procRootIno {
		return Cont()
	}
	count := int(r.Uint(2))
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
		if reclen == 0 || off+reclen > len(b) {
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
