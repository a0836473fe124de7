package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

// Layer application. Every write is made relative to a descriptor of the
// destination root: a parent directory is opened with openat2 and
// RESOLVE_IN_ROOT (symlinks the image made resolve inside the root, as
// they would under chroot, and ".." stops at it), and the last component
// is created, linked or removed with an *at call on that descriptor by a
// single name that is never followed (O_EXCL|O_NOFOLLOW, linkat without
// AT_SYMLINK_FOLLOW). So no tar member, whatever its name, link target or
// the symlinks earlier members made, can make kbox write outside the root.
//
// Owners, modes and set-id bits are never given to the host: each file and
// directory gets an ownership record (identity.Record in
// user.containers.override_stat) with the image's owner and mode, and the
// host mode is the image's without set-id bits plus the owner bits kbox
// needs (read and write, search for a directory, execute when the image
// gives any): the convention internal/dispatch keeps. Device nodes become
// empty regular files whose record names the device.

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	// maxEntries bounds the members of one layer.
	maxEntries = 1 << 21
)

// Stats counts what was applied.
type Stats struct {
	Entries, Files, Dirs, Links, Symlinks, Devices, Whiteouts int
	Bytes                                                     int64
}

// extractor applies layers to one root.
type extractor struct {
	root     int // O_PATH descriptor of the root directory
	layer    map[string]bool
	dirTimes []dirTime
	warn     func(format string, args ...any)
	noXattr  bool // the filesystem refused user.* attributes (warned once)
	stats    Stats
}

type dirTime struct {
	rel   string
	mtime time.Time
}

// newExtractor opens dir, which must exist.
func newExtractor(dir string, warn func(string, ...any)) (*extractor, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	if warn == nil {
		warn = func(string, ...any) {}
	}
	return &extractor{root: fd, warn: warn}, nil
}

func (x *extractor) Close() error { return unix.Close(x.root) }

// clean turns a member name into a path relative to the root with no ".."
// and no leading "/"; "" is the root itself.
func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// resolveHow opens a directory inside the root.
var resolveHow = unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
}

// openIn opens rel (relative to the root, "" for the root) with how.
func (x *extractor) openIn(rel string, how unix.OpenHow) (int, error) {
	if rel == "" {
		rel = "."
	}
	for range 16 {
		fd, err := unix.Openat2(x.root, rel, &how)
		if err != unix.EAGAIN && err != unix.EINTR {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

// parent opens the directory that holds rel, creating the missing ones
// (root-owned, 0755, as docker does for the parents a layer leaves out).
func (x *extractor) parent(rel string, create bool) (int, string, error) {
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	fd, err := x.dir(dir, create)
	return fd, base, err
}

func (x *extractor) dir(rel string, create bool) (int, error) {
	fd, err := x.openIn(rel, resolveHow)
	if err != unix.ENOENT || !create || rel == "" {
		if err != nil {
			return -1, fmt.Errorf("%s: %w", orRoot(rel), err)
		}
		return fd, nil
	}
	pfd, base, err := x.parent(rel, true)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	if err := unix.Mkdirat(pfd, base, 0o755); err != nil && err != unix.EEXIST {
		return -1, fmt.Errorf("mkdir %s: %w", rel, err)
	}
	fd, err = unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", rel, err)
	}
	x.record(fd, rel, identity.Record{Mode: 0o755, Type: "dir"})
	x.layer[rel] = true
	return fd, nil
}

// dirOf is the parent of a cleaned relative path ("" for the root).
func dirOf(rel string) string {
	d := path.Dir(rel)
	if d == "." {
		return ""
	}
	return d
}

func orRoot(rel string) string {
	if rel == "" {
		return "/"
	}
	return rel
}

// record writes the ownership record of the object open at fd.
func (x *extractor) record(fd int, rel string, r identity.Record) {
	if x.noXattr {
		return
	}
	err := unix.Fsetxattr(fd, identity.OverrideXattr, r.Encode(), 0)
	if err == unix.EBADF { // an O_PATH descriptor
		err = unix.Setxattr(fmt.Sprintf("/proc/self/fd/%d", fd), identity.OverrideXattr, r.Encode(), 0)
	}
	if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
		x.noXattr = true
		x.warn("the destination's filesystem has no user extended attributes: the image's owners and modes are not recorded (first at %s)", orRoot(rel))
		return
	}
	if err != nil {
		x.warn("recording the owner of %s: %v", orRoot(rel), err)
	}
}

// hostMode is the host mode for an object the image gives mode m.
func hostMode(typ byte, m uint32) uint32 {
	p := m & 0o777
	switch typ {
	case tar.TypeDir:
		return m&0o1000 | p | 0o700
	case tar.TypeReg, tar.TypeChar, tar.TypeBlock:
		if m&0o111 != 0 && typ == tar.TypeReg {
			return p | 0o700
		}
		return p | 0o600
	case tar.TypeFifo:
		return p | 0o600
	}
	return p
}

// removeAll removes name in the directory open at dfd, recursively.
func removeAll(dfd int, name string) error {
	err := unix.Unlinkat(dfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	names, err := readNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAll(fd, n); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	return unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR)
}

// readNames lists the directory open at fd (without . and ..).
func readNames(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 16<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// apply applies one uncompressed layer.
func (x *extractor) apply(r io.Reader) error {
	x.layer = map[string]bool{}
	x.dirTimes = x.dirTimes[:0]
	tr := tar.NewReader(r)
	buf := make([]byte, 256<<10)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the layer: %w", err)
		}
		if n >= maxEntries {
			return fmt.Errorf("the layer has more than %d members", maxEntries)
		}
		x.stats.Entries++
		if err := x.entry(h, tr, buf); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	// Directory times last: the entries written into them changed them.
	for i := len(x.dirTimes) - 1; i >= 0; i-- {
		d := x.dirTimes[i]
		pfd, base, err := x.parent(d.rel, false)
		if err != nil {
			continue
		}
		if base == "" {
			base = "."
		}
		ts := []unix.Timespec{unix.NsecToTimespec(d.mtime.UnixNano()), unix.NsecToTimespec(d.mtime.UnixNano())}
		_ = unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
		unix.Close(pfd)
	}
	return nil
}

// mark notes rel and its parents as written by the current layer (an
// opaque marker keeps them).
func (x *extractor) mark(rel string) {
	for rel != "" && !x.layer[rel] {
		x.layer[rel] = true
		rel = dirOf(rel)
	}
}

func (x *extractor) entry(h *tar.Header, r io.Reader, buf []byte) error {
	rel := clean(h.Name)
	base := path.Base(rel)
	switch {
	case base == opaqueMarker:
		x.stats.Whiteouts++
		return x.opaque(dirOf(rel))
	case strings.HasPrefix(base, whiteoutPrefix):
		x.stats.Whiteouts++
		name := strings.TrimPrefix(base, whiteoutPrefix)
		if name == "" || name == "." || name == ".." {
			return nil
		}
		pfd, _, err := x.parent(rel, false)
		if err != nil {
			return nil // nothing below to hide
		}
		defer unix.Close(pfd)
		return removeAll(pfd, name)
	}
	mode := uint32(h.Mode) & 0o7777
	rec := identity.Record{UID: uint32(h.Uid), GID: uint32(h.Gid), Mode: mode}
	if h.Uid < 0 || h.Gid < 0 || int64(h.Uid) > 1<<32-2 || int64(h.Gid) > 1<<32-2 {
		return fmt.Errorf("owner %d:%d out of range", h.Uid, h.Gid)
	}
	if rel == "" { // the root itself
		if h.Typeflag != tar.TypeDir {
			return fmt.Errorf("the root must be a directory")
		}
		fd, err := x.openIn("", unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC})
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		rec.Type = "dir"
		x.record(fd, "", rec)
		return unix.Fchmod(fd, hostMode(tar.TypeDir, mode))
	}
	pfd, name, err := x.parent(rel, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	x.mark(rel)
	times := []unix.Timespec{unix.NsecToTimespec(h.ModTime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
	if h.ModTime.IsZero() {
		times[0] = unix.Timespec{Nsec: unix.UTIME_OMIT}
		times[1] = times[0]
	}
	switch h.Typeflag {
	case tar.TypeDir:
		var st unix.Stat_t
		err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := removeAll(pfd, name); err != nil {
				return err
			}
			err = unix.ENOENT
		}
		if err == unix.ENOENT {
			if err := unix.Mkdirat(pfd, name, 0o700); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		rec.Type = "dir"
		x.record(fd, rel, rec)
		x.stats.Dirs++
		if !h.ModTime.IsZero() {
			x.dirTimes = append(x.dirTimes, dirTime{rel, h.ModTime})
		}
		return unix.Fchmod(fd, hostMode(tar.TypeDir, mode))
	case tar.TypeReg, tar.TypeChar, tar.TypeBlock: // archive/tar reads TypeRegA as TypeReg
		if err := removeAll(pfd, name); err != nil {
			return err
		}
		fd, err := unix.Openat(pfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		typ := h.Typeflag
		rec.Type = "file"
		if typ == tar.TypeReg {
			n, err := copyTo(fd, r, buf)
			x.stats.Bytes += n
			x.stats.Files++
			if err != nil {
				unix.Close(fd)
				return err
			}
		} else {
			rec.Type = identity.DeviceType(typ == tar.TypeChar, uint32(h.Devmajor), uint32(h.Devminor))
			x.stats.Devices++
		}
		x.record(fd, rel, rec)
		err = unix.Fchmod(fd, hostMode(typ, mode))
		if err == nil {
			err = unix.UtimesNanoAt(pfd, name, times, unix.AT_SYMLINK_NOFOLLOW)
		}
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
		return err
	case tar.TypeSymlink:
		if err := removeAll(pfd, name); err != nil {
			return err
		}
		if err := unix.Symlinkat(h.Linkname, pfd, name); err != nil {
			return err
		}
		x.stats.Symlinks++
		_ = unix.UtimesNanoAt(pfd, name, times, unix.AT_SYMLINK_NOFOLLOW)
		return nil
	case tar.TypeLink:
		target := clean(h.Linkname)
		if target == "" {
			return fmt.Errorf("hard link to the root")
		}
		if target == rel {
			return nil
		}
		tfd, tname, err := x.parent(target, false)
		if err != nil {
			return fmt.Errorf("hard link target %s: %w", h.Linkname, err)
		}
		defer unix.Close(tfd)
		var st unix.Stat_t
		if err := unix.Fstatat(tfd, tname, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("hard link target %s: %w", h.Linkname, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return fmt.Errorf("hard link target %s is a directory", h.Linkname)
		}
		if err := removeAll(pfd, name); err != nil {
			return err
		}
		x.stats.Links++
		return unix.Linkat(tfd, tname, pfd, name, 0)
	case tar.TypeFifo:
		if err := removeAll(pfd, name); err != nil {
			return err
		}
		if err := unix.Mknodat(pfd, name, unix.S_IFIFO|hostMode(tar.TypeFifo, mode), 0); err != nil {
			return err
		}
		_ = unix.UtimesNanoAt(pfd, name, times, unix.AT_SYMLINK_NOFOLLOW)
		return nil
	}
	// Other members (PAX global headers are consumed by archive/tar;
	// GNU volume labels, sparse files) carry nothing a root needs.
	return nil
}

// opaque empties rel of everything earlier layers put there.
func (x *extractor) opaque(rel string) error {
	x.mark(rel)
	fd, err := x.openIn(rel, unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolveHow.Resolve})
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	names, err := readNames(fd)
	if err != nil {
		return err
	}
	for _, n := range names {
		if x.layer[path.Join(rel, n)] {
			continue
		}
		if err := removeAll(fd, n); err != nil {
			return err
		}
	}
	return nil
}

// copyTo writes all of r to fd.
func copyTo(fd int, r io.Reader, buf []byte) (int64, error) {
	var total int64
	for {
		n, err := r.Read(buf)
		for off := 0; off < n; {
			w, werr := unix.Write(fd, buf[off:n])
			if werr == unix.EINTR {
				continue
			}
			if werr != nil {
				return total, werr
			}
			off += w
			total += int64(w)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// unpackPlain extracts the (possibly compressed) tar file into dir with
// the same confinement and no ownership records: an OCI archive's layout.
func unpackPlain(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	x, err := newExtractor(dir, nil)
	if err != nil {
		return err
	}
	defer x.Close()
	x.noXattr = true
	return applyCompressed(x, f)
}
