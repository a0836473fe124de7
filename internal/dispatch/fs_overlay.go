package dispatch

import (
	"encoding/binary"

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
