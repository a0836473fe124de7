package dispatch

import (
	"encoding/binary"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

// Listings of directories holding mount points they have no entry for
// (vfs.Namespace.VirtualEntries): the mount points are added to the first
// batch a listing from offset 0 returns, after the host's entries, with
// the d_off of the last of those (telldir after one and seekdir back
// resume the host's listing after that batch). A host entry of the same
// name, made after the namespace was built, is left out: the mount covers
// it.

// maxDirent is the size of the largest directory record (a 255-byte name)
// in either format: a first batch always has room for one host record.
const maxDirent = 8 + 8 + 2 + 1 + 256 + 5

// mountPointDents serves getdents on h, a directory with the mount points
// ents; types retypes host entries as retypedDents does (nil for none).
func (e *Engine) mountPointDents(r *Request, h, count int, is64 bool, ents []vfs.DirEntry, types map[string]uint32) Result {
	out, err := mountPointBatch(h, count, is64, ents, types)
	if err != nil {
		return Fail(err)
	}
	if len(out) > 0 {
		if err := r.Mem.Write(r.Ptr(1), out); err != nil {
			return Fail(err)
		}
	}
	return Ok(int64(len(out)))
}

// mountPointBatch reads the next batch of h's listing, of at most count
// bytes, with the mount points ents added to the batch read at offset 0.
func mountPointBatch(h, count int, is64 bool, ents []vfs.DirEntry, types map[string]uint32) ([]byte, error) {
	if count <= 0 {
		return nil, unix.EINVAL
	}
	count = min(count, 1<<20)
	hide := make(map[string]bool, len(ents))
	for _, d := range ents {
		hide[d.Name] = true
	}
	pos, err := unix.Seek(h, 0, unix.SEEK_CUR)
	if err != nil {
		return nil, err
	}
	var extra []byte
	if pos == 0 {
		for _, d := range ents {
			extra = appendDirent(extra, d, is64)
		}
		if count < len(extra)+maxDirent {
			return nil, unix.EINVAL
		}
	}
	buf := make([]byte, count-len(extra))
	for {
		n, err := rawGetdents(h, buf, is64)
		if err != nil || n == 0 {
			return nil, err
		}
		out, last := editDirents(buf[:n], is64, hide, types)
		if extra != nil {
			for off := 0; off < len(extra); off += int(binary.LittleEndian.Uint16(extra[off+16:])) {
				binary.LittleEndian.PutUint64(extra[off+8:], uint64(last))
			}
			out = append(out, extra...)
		}
		if len(out) > 0 {
			return out, nil
		}
		// Only covered entries in this batch: read on.
	}
}

// editDirents drops the records named in hide and retypes those named in
// types; it returns the records kept and the d_off of the batch's last
// record (the directory's offset after it).
func editDirents(b []byte, is64 bool, hide map[string]bool, types map[string]uint32) ([]byte, int64) {
	nameOff := 19 // linux_dirent64: ino 8, off 8, reclen 2, type 1, name
	if !is64 {
		nameOff = 18 // linux_dirent: ino 8, off 8, reclen 2, name ... type
	}
	out := make([]byte, 0, len(b))
	var last int64
	for off := 0; off+nameOff <= len(b); {
		reclen := int(binary.LittleEndian.Uint16(b[off+16:]))
		if reclen < nameOff || off+reclen > len(b) {
			break
		}
		rec := b[off : off+reclen]
		off += reclen
		last = int64(binary.LittleEndian.Uint64(rec[8:]))
		name := string(rec[nameOff:])
		if i := strings.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if hide[name] {
			continue
		}
		start := len(out)
		out = append(out, rec...)
		if t, ok := types[name]; ok {
			if is64 {
				out[start+18] = uint8(t >> 12)
			} else {
				out[start+reclen-1] = uint8(t >> 12)
			}
		}
	}
	return out, last
}

// appendDirent appends a record for d (d_off zero) in the getdents64 or
// the legacy getdents format.
func appendDirent(b []byte, d vfs.DirEntry, is64 bool) []byte {
	nameOff := 19
	if !is64 {
		nameOff = 18
	}
	size := nameOff + len(d.Name) + 1
	if !is64 {
		size++ // the type byte after the name's NUL
	}
	size = (size + 7) &^ 7
	rec := make([]byte, size)
	binary.LittleEndian.PutUint64(rec, d.Ino)
	binary.LittleEndian.PutUint16(rec[16:], uint16(size))
	copy(rec[nameOff:], d.Name)
	if is64 {
		rec[18] = uint8(d.Type >> 12)
	} else {
		rec[size-1] = uint8(d.Type >> 12)
	}
	return append(b, rec...)
}
