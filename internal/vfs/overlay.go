package vfs

// The overlay root (kbox --overlay): a union of a read-only lower
// directory and a writable upper one, served by the resolver and the
// dispatcher, not by the kernel's overlayfs (kbox runs unprivileged and
// mounts nothing). The semantics are Linux overlayfs's without
// redirect_dir:
//
//   - a name is looked up in the upper layer first; a directory found
//     there is merged with the lower layer's directory of the same path
//     unless it is opaque;
//   - the first change of a lower object copies it up (data, mode,
//     times, extended attributes — the ownership records of
//     user.containers.override_stat with them), its parent directories
//     first (Lookup.Prepare);
//   - removing a name the lower layer has leaves a whiteout for it in the
//     upper directory (Lookup.Unlink);
//   - renaming a directory that has lower-layer content fails with EXDEV
//     (tools fall back to copying); renaming a file copies it up (Rename).
//
// The upper layer's format is the OCI image layer's (and AUFS's): the
// whiteout of NAME is an empty regular file named ".wh.NAME" in the upper
// directory; a directory with a ".wh..wh..opq" entry is opaque. kbox needs
// neither device nodes (which an unprivileged user cannot make) nor
// extended attributes for them, so any file system can hold an upper
// layer. Two rules of kbox's own: an upper directory that has a whiteout
// beside it (".wh.NAME" next to NAME) is opaque too — a directory removed
// and made again, with no marker file inside it to keep consistent — and
// names beginning with ".wh." belong to the overlay: the guest can neither
// see nor create them in an overlay mount (EPERM). The upper directory's
// own ".wh..wh.kbox" records the lower directory for kbox diff.

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/tmpdirs"
)

// layer says where in an overlay a descriptor is.
type layer uint8

const (
	layerNone layer = iota
	layerUpper
	layerLower
)

// Overlay names and markers.
const (
	// WhiteoutPrefix starts a whiteout's name and every name reserved for
	// the overlay's own use.
	WhiteoutPrefix = ".wh."
	// OpaqueMarker in an upper directory makes it opaque.
	OpaqueMarker = WhiteoutPrefix + WhiteoutPrefix + ".opq"
	// InfoName is the file in the upper directory's root recording the
	// overlay's lower directory.
	InfoName = WhiteoutPrefix + WhiteoutPrefix + "kbox"
	// copyUpTemp starts the names copy-up builds a file under.
	copyUpTemp = WhiteoutPrefix + WhiteoutPrefix + "copyup."
)

// Overlay is the state of an overlay mount.
type Overlay struct {
	Upper string // host path of the upper layer (the mount's Host)
	Lower string // host path of the lower layer, never written
	lower *Handle
	root  *Handle // the mount root: the upper root merged with the lower
	ns    *Namespace
	euid  int
	// mu serialises the changes that touch more than one entry: copy-up,
	// removal and rename.
	mu   sync.Mutex
	temp uint64
}

// ReservedName reports whether name is reserved for the overlay's use.
func ReservedName(name string) bool { return strings.HasPrefix(name, WhiteoutPrefix) }

// AddOverlay mounts, as the guest's root, the union of host directories
// upper (written) and lower (never written). It must be the first mount.
// upper may not contain lower: the guest would reach the lower layer's
// files through the upper one.
func (ns *Namespace) AddOverlay(upper, lower string) error {
	upper, lower = path.Clean(upper), path.Clean(lower)
	if upper == lower || lower != "/" && strings.HasPrefix(lower+"/", upper+"/") {
		return errorf("the overlay's upper directory %s contains its lower one %s", upper, lower)
	}
	lfd, err := unix.Open(lower, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return errorf("%s: %v", lower, err)
	}
	if err := ns.Add("/", upper, false, KindBind); err != nil {
		unix.Close(lfd)
		return err
	}
	m := ns.byPath["/"]
	lo := &Handle{fd: lfd, static: true, layer: layerLower}
	ov := &Overlay{Upper: upper, Lower: lower, lower: lo, ns: ns, euid: unix.Geteuid()}
	ov.root = &Handle{fd: m.root, static: true, layer: layerUpper, lower: lo}
	m.Overlay = ov
	return nil
}

// Overlay returns the namespace's overlay, nil when it has none.
func (ns *Namespace) Overlay() *Overlay {
	if r := ns.Root(); r != nil {
		return r.Overlay
	}
	return nil
}

// isWhiteout reports whether upper directory dirfd has a whiteout of name.
func isWhiteout(dirfd int, name string) bool {
	if len(name)+len(WhiteoutPrefix) > NameMax {
		return false
	}
	var st unix.Stat_t
	return unix.Fstatat(dirfd, WhiteoutPrefix+name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// opaque reports whether upper directory fd, named name in upper
// directory dirfd, hides the lower layer.
func opaque(dirfd int, name string, fd int) bool {
	var st unix.Stat_t
	return isWhiteout(dirfd, name) || unix.Fstatat(fd, OpaqueMarker, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

func openPath(dirfd int, name string) (int, error) {
	return unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// lookup opens name in overlay directory dir without following it.
func (ov *Overlay) lookup(dir *Handle, name string) (*Handle, unix.Stat_t, error) {
	var st unix.Stat_t
	if ReservedName(name) {
		return nil, st, unix.ENOENT
	}
	lowerDir := dir
	if dir.layer == layerUpper {
		fd, err := openPath(dir.fd, name)
		switch {
		case err == nil:
			if err := unix.Fstat(fd, &st); err != nil {
				unix.Close(fd)
				return nil, st, err
			}
			h := newHandle(fd)
			h.layer = layerUpper
			if st.Mode&unix.S_IFMT == unix.S_IFDIR && dir.lower != nil && !opaque(dir.fd, name, fd) {
				if lfd, err := unix.Openat(dir.lower.fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
					h.lower = newHandle(lfd)
					h.lower.layer = layerLower
				}
			}
			return h, st, nil
		case err != unix.ENOENT:
			return nil, st, err
		case dir.lower == nil || isWhiteout(dir.fd, name):
			return nil, st, unix.ENOENT
		}
		lowerDir = dir.lower
	}
	fd, err := openPath(lowerDir.fd, name)
	if err != nil {
		return nil, st, err
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, st, err
	}
	h := newHandle(fd)
	h.layer = layerLower
	return h, st, nil
}

// Change says what a modifying call is about to do with a looked-up
// object (Lookup.Prepare).
type Change uint8

const (
	// ChangeObject: change the object itself (its data or metadata).
	ChangeObject Change = iota + 1
	// ChangeEntry: create, remove or rename the name in its directory.
	ChangeEntry
)

// Overlaid reports whether the looked-up object is in an overlay mount.
func (l *Lookup) Overlaid() bool { return l.Mount != nil && l.Mount.Overlay != nil && !l.Magic }

// Upper reports whether the object is absent or in the upper layer of an
// overlay (so may be changed in place); true outside overlays.
func (l *Lookup) Upper() bool { return l.Obj == nil || l.Obj.layer != layerLower }

// rel is the object's path relative to its overlay mount's root.
func (l *Lookup) rel() string {
	if l.Mount.Guest == "/" {
		return strings.TrimPrefix(l.Path, "/")
	}
	return strings.TrimPrefix(strings.TrimPrefix(l.Path, l.Mount.Guest), "/")
}

// LowerDir returns the descriptor of the lower layer's directory holding
// the looked-up name in an overlay (the parent itself when only the lower
// layer has it), -1 when the lower layer has none: the directory whose
// permissions the host kernel would check for a change of the entry.
func (l *Lookup) LowerDir() int {
	if !l.Overlaid() || l.Parent == nil {
		return -1
	}
	if p := lowerOf(l.Parent); p != nil {
		return p.fd
	}
	return -1
}

// Prepare gets an overlay lookup ready for a modifying call the caller
// has checked (permissions, read-only mounts) and is about to make on
// l.Parent (ChangeEntry) or l.Obj (ChangeObject): the directory holding
// the name, or the object itself, is copied up, and l's descriptors then
// name the upper layer's. Outside overlays it does nothing.
func (l *Lookup) Prepare(c Change) error {
	if !l.Overlaid() {
		return nil
	}
	ov := l.Mount.Overlay
	ov.mu.Lock()
	defer ov.mu.Unlock()
	return ov.prepare(l, c)
}

func (ov *Overlay) prepare(l *Lookup, c Change) error {
	rel := l.rel()
	switch {
	case c == ChangeEntry && l.Parent != nil:
		if !l.Exists() && ReservedName(l.Name) {
			return unix.EPERM
		}
		if l.Parent.layer == layerUpper {
			return nil
		}
		up, err := ov.upperDir(path.Dir("/" + rel)[1:])
		if err != nil {
			return err
		}
		up.lower = l.Parent
		l.Parent = up
		return nil
	case c == ChangeObject || l.Parent == nil:
		if l.Obj == nil || l.Obj.layer != layerLower {
			return nil
		}
		if rel == "" {
			return unix.EROFS // the root is always in the upper layer
		}
		dir, name := path.Dir("/" + rel)[1:], path.Base(rel)
		up, err := ov.upperDir(dir)
		if err != nil {
			return err
		}
		obj, err := ov.copyUp(up, name, l.Obj)
		if err != nil {
			up.Release()
			return err
		}
		if l.Parent != nil {
			up.lower = lowerOf(l.Parent).acquire()
			l.Parent.Release()
			l.Parent = up
		} else {
			up.Release()
		}
		l.Obj = obj
		l.full = false
		return nil
	}
	return nil
}

// lowerOf is the lower layer's directory of overlay directory h: h
// itself in the lower layer, its merged lower directory in the upper one.
func lowerOf(h *Handle) *Handle {
	if h.layer == layerLower {
		return h
	}
	return h.lower
}

// upperDir returns the upper layer's directory at rel ("" or "." for the
// root), copying up the directories down to it that the upper layer does
// not have yet.
func (ov *Overlay) upperDir(rel string) (*Handle, error) {
	up, err := unix.FcntlInt(uintptr(ov.root.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	lo, err := unix.FcntlInt(uintptr(ov.lower.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		unix.Close(up)
		return nil, err
	}
	created := false
	defer func() {
		if lo >= 0 {
			unix.Close(lo)
		}
		if created {
			ov.ns.Invalidate()
		}
	}()
	for _, c := range splitPath(rel) {
		if c == "." {
			continue
		}
		nlo := -1
		if lo >= 0 {
			nlo, _ = unix.Openat(lo, c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			unix.Close(lo)
			lo = nlo
		}
		nup, err := unix.Openat(up, c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT && lo >= 0 && !isWhiteout(up, c) {
			if err = copyDir(up, c, lo, ov.euid == 0); err == nil || err == unix.EEXIST {
				created = true
				nup, err = unix.Openat(up, c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			}
		}
		if err != nil {
			unix.Close(up)
			return nil, err
		}
		if lo >= 0 && opaque(up, c, nup) {
			unix.Close(lo)
			lo = -1
		}
		unix.Close(up)
		up = nup
	}
	h := newHandle(up)
	h.layer = layerUpper
	return h, nil
}

// copyDir makes directory name in upper directory dirfd as a copy of
// lower directory lo (without its entries).
func copyDir(dirfd int, name string, lo int, root bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(lo, &st); err != nil {
		return err
	}
	if err := unix.Mkdirat(dirfd, name, 0o700); err != nil {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return copyMeta(fd, lo, &st, root)
}

// copyMeta gives fd (an upper object kbox just made, open for I/O) the
// metadata of lower object lo with status st: extended attributes, owner
// (when kbox runs as root), mode, times.
func copyMeta(fd, lo int, st *unix.Stat_t, root bool) error {
	copyXattrs(procPath(lo), procPath(fd))
	if !root {
		keepOwner(fd, st)
	}
	if root {
		if err := unix.Fchownat(fd, "", int(st.Uid), int(st.Gid), unix.AT_EMPTY_PATH); err != nil {
			return err
		}
	}
	if err := unix.Chmod(procPath(fd), st.Mode&0o7777); err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, procPath(fd), []unix.Timespec{st.Atim, st.Mtim}, 0)
}

// ownerRecord is the ownership record of the rootless container tools
// (dispatch/ownership.go): "uid:gid:mode:type".
const ownerRecord = "user.containers.override_stat"

// keepOwner records, on a copy kbox could not chown (it runs
// unprivileged), the owner of the lower object it copies when that is
// not kbox's user and the object has no record of its own: the guest's
// view of the owner (docs/identity.md: other users' files keep their ids)
// then survives the copy-up.
func keepOwner(fd int, st *unix.Stat_t) {
	t := st.Mode & unix.S_IFMT
	if st.Uid == uint32(unix.Geteuid()) || (t != unix.S_IFREG && t != unix.S_IFDIR) {
		return
	}
	if _, err := unix.Getxattr(procPath(fd), ownerRecord, nil); err == nil {
		return // copied from the lower object
	}
	typ := "file"
	if t == unix.S_IFDIR {
		typ = "dir"
	}
	v := fmt.Sprintf("%d:%d:%04o:%s", st.Uid, st.Gid, st.Mode&0o7777, typ)
	unix.Setxattr(procPath(fd), ownerRecord, []byte(v), 0)
}

func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// copyXattrs copies the extended attributes of from to to (both kbox-built
// paths, followed), those the caller may set: user.* (the ownership
// records among them), and as root trusted.* and security.*. A name that
// cannot be set is skipped: copy-up, like overlayfs's, keeps what it can.
func copyXattrs(from, to string) {
	buf := make([]byte, 4096)
	n, err := unix.Listxattr(from, buf)
	if err == unix.ERANGE {
		if n, err = unix.Listxattr(from, nil); err == nil {
			buf = make([]byte, n)
			n, err = unix.Listxattr(from, buf)
		}
	}
	if err != nil || n <= 0 {
		return
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		sz, err := unix.Getxattr(from, name, nil)
		if err != nil {
			continue
		}
		val := make([]byte, sz)
		if sz, err = unix.Getxattr(from, name, val); err != nil {
			continue
		}
		unix.Setxattr(to, name, val[:sz], 0)
	}
}

// copyUp copies lower object lo (named name) into upper directory up
// and returns the upper object's handle. A name the upper layer has
// already (a concurrent copy-up, a racing create) is kept as it is.
func (ov *Overlay) copyUp(up *Handle, name string, lo *Handle) (*Handle, error) {
	var st unix.Stat_t
	if err := unix.Fstat(lo.fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := copyDir(up.fd, name, lo.fd, ov.euid == 0); err != nil && err != unix.EEXIST {
			return nil, err
		}
		ov.ns.Invalidate()
	} else if err := ov.copyFile(up.fd, name, lo.fd, &st); err != nil {
		return nil, err
	}
	fd, err := openPath(up.fd, name)
	if err != nil {
		return nil, err
	}
	h := newHandle(fd)
	h.layer = layerUpper
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		h.lower = lo.acquire()
	}
	return h, nil
}

// copyFile copies a lower non-directory into upper directory dirfd under
// a temporary reserved name, then renames it into place (so a partial
// copy is never visible as name).
func (ov *Overlay) copyFile(dirfd int, name string, lo int, st *unix.Stat_t) error {
	ov.temp++
	tmp := copyUpTemp + strconv.Itoa(os.Getpid()) + "." + strconv.FormatUint(ov.temp, 10)
	root := ov.euid == 0
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		err = copyRegular(dirfd, tmp, lo, st, root)
	case unix.S_IFLNK:
		var text string
		if text, err = readlinkFD(lo); err == nil {
			err = unix.Symlinkat(text, dirfd, tmp)
		}
		if err == nil {
			if root {
				unix.Fchownat(dirfd, tmp, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW)
			}
			unix.UtimesNanoAt(dirfd, tmp, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
		}
	default: // FIFOs, sockets; device nodes need CAP_MKNOD
		if err = unix.Mknodat(dirfd, tmp, st.Mode, int(st.Rdev)); err == nil {
			var fd int
			if fd, err = unix.Openat(dirfd, tmp, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
				err = copyMeta(fd, lo, st, root)
				unix.Close(fd)
			}
		}
	}
	if err == nil {
		err = unix.Renameat2(dirfd, tmp, dirfd, name, unix.RENAME_NOREPLACE)
		if err == unix.EEXIST {
			err = nil // made meanwhile: that one stands
		}
	}
	unix.Unlinkat(dirfd, tmp, 0)
	return err
}

func copyRegular(dirfd int, tmp string, lo int, st *unix.Stat_t, root bool) error {
	src, err := unix.Open(procPath(lo), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(src)
	dst, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer unix.Close(dst)
	if err := copyData(dst, src, st.Size); err != nil {
		return err
	}
	return copyMeta(dst, src, st, root)
}

// copyData copies size bytes: copy_file_range (a reflink or an in-kernel
// copy where the file system can), else read and write.
func copyData(dst, src int, size int64) error {
	var done int64
	for done < size {
		n, err := unix.CopyFileRange(src, nil, dst, nil, int(min(size-done, 1<<30)), 0)
		if err != nil || n == 0 {
			break
		}
		done += int64(n)
	}
	if done >= size {
		return nil
	}
	if _, err := unix.Seek(src, done, io.SeekStart); err != nil {
		return err
	}
	if _, err := unix.Seek(dst, done, io.SeekStart); err != nil {
		return err
	}
	buf := make([]byte, 1<<16)
	for {
		n, err := unix.Read(src, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		for b := buf[:n]; len(b) > 0; {
			m, err := unix.Write(dst, b)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			b = b[m:]
		}
	}
}

// lowerHas reports whether the lower layer has name in the merged
// directory l.Parent is (after Prepare(ChangeEntry): the upper one, with
// its lower directory when it has one).
func (l *Lookup) lowerHas() bool {
	p := l.Parent
	if p == nil {
		return false
	}
	if p = lowerOf(p); p == nil {
		return false
	}
	var st unix.Stat_t
	return unix.Fstatat(p.fd, l.Name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// merged reports whether the object is a directory with content in the
// lower layer.
func (l *Lookup) merged() bool {
	return l.Obj != nil && l.IsDir() && (l.Obj.layer == layerLower || l.Obj.lower != nil)
}

// makeWhiteout makes the whiteout of name in upper directory dirfd; made
// reports that it did not exist.
func makeWhiteout(dirfd int, name string) (made bool, err error) {
	if len(name)+len(WhiteoutPrefix) > NameMax {
		return false, unix.ENAMETOOLONG
	}
	fd, err := unix.Openat(dirfd, WhiteoutPrefix+name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.EEXIST {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	unix.Close(fd)
	return true, nil
}

// clearWhiteouts removes the reserved entries of upper directory name in
// dirfd (before it is removed or replaced: they are not the guest's).
func clearWhiteouts(dirfd int, name string) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ents, err := readDir(fd)
	if err != nil {
		return err
	}
	for _, d := range ents {
		if ReservedName(d.Name) && d.Type != unix.S_IFDIR {
			if err := unix.Unlinkat(fd, d.Name, 0); err != nil && err != unix.ENOENT {
				return err
			}
		}
	}
	return nil
}

// Unlink removes the looked-up object as unlinkat(2) with flags would,
// after Prepare(ChangeEntry). In an overlay, a name the lower layer has is
// whited out; the upper layer's object, if any, is removed.
func (l *Lookup) Unlink(flags int) error {
	if !l.Overlaid() {
		return unix.Unlinkat(l.Parent.FD(), l.Name, flags)
	}
	ov := l.Mount.Overlay
	ov.mu.Lock()
	defer ov.mu.Unlock()
	if l.Parent == nil || l.Parent.layer != layerUpper {
		return unix.EROFS // not prepared: never act on the lower layer
	}
	dir := flags&unix.AT_REMOVEDIR != 0
	switch {
	case dir && !l.IsDir():
		return unix.ENOTDIR
	case !dir && l.IsDir():
		return unix.EISDIR
	}
	if dir {
		ents, err := ov.listing(l.Obj)
		if err != nil {
			return err
		}
		for _, d := range ents {
			if d.Name != "." && d.Name != ".." {
				return unix.ENOTEMPTY
			}
		}
	}
	made := false
	if l.lowerHas() {
		var err error
		if made, err = makeWhiteout(l.Parent.fd, l.Name); err != nil {
			return err
		}
	}
	if !l.Upper() {
		return nil
	}
	var err error
	if dir {
		err = clearWhiteouts(l.Parent.fd, l.Name)
	}
	if err == nil {
		err = unix.Unlinkat(l.Parent.fd, l.Name, flags)
	}
	if err != nil && made {
		unix.Unlinkat(l.Parent.fd, WhiteoutPrefix+l.Name, 0)
	}
	return err
}

// Rename renames oldL to newL as renameat2(2) with flags would, after the
// caller's checks. In an overlay: a directory with lower-layer content
// cannot be renamed (EXDEV, as overlayfs without redirect_dir); a lower
// file is copied up first; the old name, when the lower layer has it, is
// whited out; a directory moved over a name the lower layer has becomes
// opaque.
func Rename(oldL, newL *Lookup, flags uint) error {
	if !oldL.Overlaid() {
		return unix.Renameat2(oldL.Parent.FD(), oldL.Name, newL.Parent.FD(), newL.Name, flags)
	}
	ov := oldL.Mount.Overlay
	ov.mu.Lock()
	defer ov.mu.Unlock()
	exchange := flags&unix.RENAME_EXCHANGE != 0
	if strings.HasPrefix(newL.Path, oldL.Path+"/") || exchange && strings.HasPrefix(oldL.Path, newL.Path+"/") {
		return unix.EINVAL // into itself: the VFS's check, before the file system's
	}
	if oldL.merged() || exchange && newL.merged() {
		return unix.EXDEV
	}
	if !newL.Exists() && ReservedName(newL.Name) {
		return unix.EPERM
	}
	oldDir, newDir := oldL.IsDir(), newL.IsDir()
	if newL.Exists() && !exchange {
		switch {
		case flags&unix.RENAME_NOREPLACE != 0:
			return unix.EEXIST
		case oldL.Obj != nil && newL.Obj != nil && sameFile(oldL.Obj.fd, newL.Obj.fd):
			return nil // the same file: nothing to do, as rename(2)
		case oldDir && !newDir:
			return unix.ENOTDIR
		case !oldDir && newDir:
			return unix.EISDIR
		case newDir:
			ents, err := ov.listing(newL.Obj)
			if err != nil {
				return err
			}
			for _, d := range ents {
				if d.Name != "." && d.Name != ".." {
					return unix.ENOTEMPTY
				}
			}
		}
	}
	for _, p := range []struct {
		l *Lookup
		c Change
	}{{oldL, ChangeEntry}, {oldL, ChangeObject}, {newL, ChangeEntry}} {
		if err := ov.prepare(p.l, p.c); err != nil {
			return err
		}
	}
	if exchange {
		if err := ov.prepare(newL, ChangeObject); err != nil {
			return err
		}
	}
	if newDir && newL.Exists() && newL.Upper() && !exchange {
		if err := clearWhiteouts(newL.Parent.fd, newL.Name); err != nil {
			return err
		}
	}
	oldLower, newLower := oldL.lowerHas(), newL.lowerHas()
	made := false
	if oldLower && !exchange {
		var err error
		if made, err = makeWhiteout(oldL.Parent.fd, oldL.Name); err != nil {
			return err
		}
	}
	if err := unix.Renameat2(oldL.Parent.fd, oldL.Name, newL.Parent.fd, newL.Name, flags); err != nil {
		if made {
			unix.Unlinkat(oldL.Parent.fd, WhiteoutPrefix+oldL.Name, 0)
		}
		return err
	}
	// A directory now at a name the lower layer has must not merge with it.
	if oldDir && newLower {
		makeWhiteout(newL.Parent.fd, newL.Name)
	}
	if exchange && newDir && oldLower {
		makeWhiteout(oldL.Parent.fd, oldL.Name)
	}
	ov.ns.Invalidate()
	return nil
}

func sameFile(a, b int) bool {
	var sa, sb unix.Stat_t
	return unix.Fstat(a, &sa) == nil && unix.Fstat(b, &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// CopyUpSource prepares the source of link(2): a lower file is copied up
// so that the new name links the upper layer's file, never the lower's.
func (l *Lookup) CopyUpSource() error { return l.Prepare(ChangeObject) }

// listing returns the merged entries of overlay directory obj (a
// directory handle from the resolver), "." and ".." first: the upper
// layer's, whiteouts and reserved names left out, then the lower layer's
// that neither the upper layer nor a whiteout covers (none when the
// directory is opaque).
func (ov *Overlay) listing(obj *Handle) ([]DirEntry, error) {
	var up, lo int = -1, -1
	switch obj.layer {
	case layerUpper:
		up = obj.fd
		if obj.lower != nil {
			lo = obj.lower.fd
		}
	case layerLower:
		lo = obj.fd
	default:
		return nil, unix.EINVAL
	}
	var out []DirEntry
	seen := map[string]bool{}
	white := map[string]bool{}
	read := func(dirfd int, upper bool) error {
		fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ents, err := readDir(fd)
		if err != nil {
			return err
		}
		for _, d := range ents {
			if ReservedName(d.Name) {
				if upper {
					white[d.Name[len(WhiteoutPrefix):]] = true
				}
				continue
			}
			if seen[d.Name] || !upper && white[d.Name] {
				continue
			}
			seen[d.Name] = true
			out = append(out, d)
		}
		return nil
	}
	if up >= 0 {
		if err := read(up, true); err != nil {
			return nil, err
		}
	}
	if lo >= 0 {
		if err := read(lo, false); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return dotRank(out[i].Name) < dotRank(out[j].Name) })
	return out, nil
}

func dotRank(name string) int {
	switch name {
	case ".":
		return 0
	case "..":
		return 1
	}
	return 2
}

// readDir reads every entry of directory fd (open for reading).
func readDir(fd int) ([]DirEntry, error) {
	var out []DirEntry
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return out, nil
		}
		for off := 0; off+19 <= n; {
			reclen := int(binary.LittleEndian.Uint16(buf[off+16:]))
			if reclen < 19 || off+reclen > n {
				break
			}
			rec := buf[off : off+reclen]
			off += reclen
			name := rec[19:]
			if i := strings.IndexByte(string(name), 0); i >= 0 {
				name = name[:i]
			}
			out = append(out, DirEntry{Name: string(name), Type: uint32(rec[18]) << 12, Ino: binary.LittleEndian.Uint64(rec)})
		}
	}
}

// Listing is the merged listing of the overlay directory host
// descriptor fd (a directory of the guest's, in either layer) names,
// with the mount points it holds (VirtualEntries). ok is false when fd
// is not a directory of an overlay or is one only the lower layer has:
// the kernel lists that one as it is.
func (ns *Namespace) Listing(fd int) (ents []DirEntry, ok bool, err error) {
	ov := ns.Overlay()
	if ov == nil {
		return nil, false, nil
	}
	buf := make([]byte, PathMax)
	n, err := unix.Readlink(procPath(fd), buf)
	if err != nil {
		return nil, false, nil
	}
	g, ok := ns.GuestPathOfHost(string(buf[:n]))
	if !ok || ns.mountOf(g).Overlay != ov {
		return nil, false, nil
	}
	l, err := ns.Resolve(&Context{Cwd: "/", Root: "/"}, "", g, 0)
	if err != nil {
		return nil, false, nil
	}
	defer l.Release()
	if !l.IsDir() || l.Obj.layer != layerUpper {
		return nil, false, nil
	}
	ents, err = ov.listing(l.Obj)
	if err != nil {
		return nil, true, err
	}
	if len(ns.virtual) > 0 {
		var keys [][2]uint64
		var st unix.Stat_t
		for _, h := range []*Handle{l.Obj, l.Obj.lower} {
			if h != nil && unix.Fstat(h.fd, &st) == nil {
				keys = append(keys, [2]uint64{st.Dev, st.Ino})
			}
		}
		have := map[string]bool{}
		for _, d := range ents {
			have[d.Name] = true
		}
		for _, k := range keys {
			for _, d := range ns.virtual[k] {
				if !have[d.Name] {
					have[d.Name] = true
					ents = append(ents, d)
				}
			}
		}
	}
	return ents, true, nil
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadMount}, args...)...)
}

// AdoptPrivate makes d, a directory made for the run, one of those
// RemovePrivate removes (a temporary overlay's upper directory).
func (ns *Namespace) AdoptPrivate(d *tmpdirs.Dir) { ns.private = append(ns.private, d) }
