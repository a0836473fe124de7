package dispatch

import (
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

// Listings of an overlay's merged directories (vfs.Namespace.Listing):
// the kernel cannot list two directories as one, so getdents on a
// descriptor of an upper-layer directory is served from the merged
// listing, rebuilt at each call (a directory changed between two calls
// is listed as POSIX allows: entries added or removed meanwhile may or
// may not appear). The descriptor's offset is the index of the next
// entry: kbox sets it with lseek on its duplicate (the guest's open file
// description), so telldir, seekdir and rewinddir work. Directories only
// the lower layer has are listed by the kernel, unchanged.

// overlayDents serves getdents on h from the merged listing ents.
func (e *Engine) overlayDents(r *Request, h, count int, is64 bool, ents []vfs.DirEntry) Result {
	out, next, err := overlayBatch(h, count, is64, ents)
	if err != nil {
		return Fail(err)
	}
	if len(out) == 0 {
		return Ok(0)
	}
	if err := r.Mem.Write(r.Ptr(1), out); err != nil {
		return Fail(err)
	}
	if _, err := unix.Seek(h, next, unix.SEEK_SET); err != nil {
		return Fail(err)
	}
	return Ok(int64(len(out)))
}

// overlayBatch returns the records of ents from h's offset on that fit
// in count bytes, and the offset after them.
func overlayBatch(h, count int, is64 bool, ents []vfs.DirEntry) ([]byte, int64, error) {
	if count <= 0 {
		return nil, 0, unix.EINVAL
	}
	count = min(count, 1<<20)
	pos, err := unix.Seek(h, 0, unix.SEEK_CUR)
	if err != nil {
		return nil, 0, err
	}
	if pos < 0 || pos >= int64(len(ents)) {
		return nil, pos, nil
	}
	var out []byte
	i := pos
	for ; i < int64(len(ents)); i++ {
		rec := appendDirent(nil, ents[i], is64)
		if len(out)+len(rec) > count {
			break
		}
		binary.LittleEndian.PutUint64(rec[8:], uint64(i+1))
		out = append(out, rec...)
	}
	if len(out) == 0 {
		return nil, pos, unix.EINVAL
	}
	return out, i, nil
}

// lowerNeed is what a change of an object's metadata asks of the caller
// when the host kernel decides it: ownership, write permission, or either.
type lowerNeed uint8

const (
	needOwner lowerNeed = iota + 1
	needWrite
	needOwnerOrWrite
)

// lowerAllows applies the host kernel's rule for a change of a lower
// object before it is copied up, where the kernel would decide on the
// copy instead: kbox unprivileged without a virtual identity (whose
// checks, perm.go and ownership.go, see the lower owner in the copy's
// record) makes every copy its own user's, so chmod, chown, explicit
// utimes of another user's lower file would succeed on the copy where
// they fail on the file (EPERM), and truncate, xattrs and touching one
// the user may not write would too (EACCES).
func (e *Engine) lowerAllows(r *Request, l *vfs.Lookup, need lowerNeed) error {
	euid := os.Geteuid()
	if !l.Overlaid() || l.Upper() || euid == 0 || e.recordsOwnership(r) {
		return nil
	}
	st, err := l.Stat()
	if err != nil {
		return err
	}
	owner := st.Uid == uint32(euid)
	writeOK := unix.Faccessat2(l.Obj.FD(), "", unix.W_OK, unix.AT_EMPTY_PATH|unix.AT_EACCESS) == nil
	switch {
	case need == needOwner && !owner:
		return e.refuse(r, unix.EPERM, "changing %s, owned by %d (the overlay's lower file)", l.Path, st.Uid)
	case need == needWrite && !writeOK, need == needOwnerOrWrite && !owner && !writeOK:
		return e.refuse(r, unix.EACCES, "changing %s, not writable (the overlay's lower file)", l.Path)
	}
	return nil
}

// lowerDirAllows applies the host kernel's rule for creating, removing or
// renaming a name in a directory the lower layer has, for the same case
// as lowerAllows: the upper layer's copy of the directory is kbox's
// user's, the lower one says whether the user may write in it (EACCES).
func (e *Engine) lowerDirAllows(r *Request, l *vfs.Lookup) error {
	if os.Geteuid() == 0 || e.recordsOwnership(r) {
		return nil
	}
	fd := l.LowerDir()
	if fd < 0 {
		return nil
	}
	if unix.Faccessat2(fd, "", unix.W_OK|unix.X_OK, unix.AT_EMPTY_PATH|unix.AT_EACCESS) != nil {
		return e.refuse(r, unix.EACCES, "changing an entry of %s's directory, not writable (the overlay's lower directory)", l.Path)
	}
	return nil
}
