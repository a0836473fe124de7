package vfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount points are kbox's own: nothing is ever created in a guest root or
// a bind source to make room for a mount. A mount whose name does not
// exist in the directory holding it is shown there by the resolver (it
// looks mount paths up before the host directory) and by listings
// (VirtualEntries); a mount below directories the guest does not have
// gets a private, read-only directory of kbox's holding the path down to
// it (AddBind).

// DirEntry is a listing entry the host directory does not have: the name
// of a mount point, its file type (S_IFMT bits) and inode number.
type DirEntry struct {
	Name string
	Type uint32
	Ino  uint64
}

// VirtualEntries lists, for each host directory (by device and inode) that
// holds mount points it has no entry for, those entries; computed by Seal.
// Directories of a procfs or devpts are left out: the guest's views of
// those are filtered listings of their own (a mount cannot be placed
// there, see AddBind).
func (ns *Namespace) VirtualEntries() map[[2]uint64][]DirEntry { return ns.virtual }

// computeVirtual finds the mount points whose parent directory has no
// entry of their name.
func (ns *Namespace) computeVirtual() {
	ns.virtual = map[[2]uint64][]DirEntry{}
	ctx := &Context{Cwd: "/", Root: "/"}
	for _, m := range ns.Mounts() {
		if m.Guest == "/" {
			continue
		}
		l, err := ns.Resolve(ctx, "", path.Dir(m.Guest), FollowFinal)
		if err != nil {
			continue
		}
		if l.IsDir() && l.Path == path.Dir(m.Guest) && !l.Mount.Kind.virtualized() {
			name := path.Base(m.Guest)
			var st unix.Stat_t
			if dst, err := l.Stat(); err == nil && unix.Fstatat(l.Obj.FD(), name, &st, unix.AT_SYMLINK_NOFOLLOW) == unix.ENOENT {
				k := [2]uint64{dst.Dev, dst.Ino}
				ns.virtual[k] = append(ns.virtual[k], DirEntry{Name: name, Type: m.mode & unix.S_IFMT, Ino: m.ino})
			}
		}
		l.Release()
	}
	ns.cache.clear()
}

// BindOptions qualify AddBind.
type BindOptions struct {
	ReadOnly bool
	// NoFollow: a symbolic link at the guest path itself is covered by
	// the mount, not followed (the host's name-service files over a
	// guest's /etc/resolv.conf link to a resolver it does not run).
	NoFollow bool
}

// AddBind mounts host object src (a directory or a single file) at guest
// path guest, as mount(2) would after resolving guest in the namespace
// built so far: symbolic links in it are followed (the mount is placed at
// the canonical path), a directory may only cover a directory and a file
// only a non-directory. When guest, or directories above it, do not
// exist, the mount point is kbox's own: the missing directories are a
// private read-only directory of kbox's (removed with RemovePrivate), or,
// inside a private mount, are made in it; nothing is written to the
// guest's root or another mount's source. It returns the canonical guest
// path of the mount.
func (ns *Namespace) AddBind(guest, src string, o BindOptions) (string, error) {
	if ns.sealed {
		return "", fmt.Errorf("%w: namespace already sealed", ErrBadMount)
	}
	defer ns.cache.clear()
	if !path.IsAbs(guest) || path.Clean(guest) == "/" {
		return "", fmt.Errorf("%w: bad guest path %q", ErrBadMount, guest)
	}
	var sst unix.Stat_t
	if err := unix.Stat(src, &sst); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrBadMount, src, err)
	}
	srcDir := sst.Mode&unix.S_IFMT == unix.S_IFDIR
	guest = path.Clean(guest)
	ctx := &Context{Cwd: "/", Root: "/"}
	comps := strings.Split(guest[1:], "/")
	// The deepest existing directory above guest, canonical.
	dir := "/"
	var dirL *Lookup
	rest := comps
	for len(rest) > 1 {
		l, err := ns.Resolve(ctx, "", path.Join(dir, rest[0]), FollowFinal)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			dirL.Release()
			return "", fmt.Errorf("%w: %s: %v", ErrBadMount, path.Join(dir, rest[0]), err)
		}
		if err != nil || !l.Exists() {
			l.Release()
			if nl, err := ns.Resolve(ctx, "", path.Join(dir, rest[0]), 0); err == nil {
				dangling := nl.Exists()
				nl.Release()
				if dangling {
					dirL.Release()
					return "", fmt.Errorf("%w: %s is a symbolic link to a missing directory in the guest", ErrBadMount, path.Join(dir, rest[0]))
				}
			}
			break
		}
		if !l.IsDir() {
			l.Release()
			dirL.Release()
			return "", fmt.Errorf("%w: %s is not a directory in the guest", ErrBadMount, path.Join(dir, rest[0]))
		}
		dirL.Release()
		dirL, dir, rest = l, l.Path, rest[1:]
	}
	if dirL == nil {
		l, err := ns.Resolve(ctx, "", "/", FollowFinal)
		if err != nil {
			return "", fmt.Errorf("%w: /: %v", ErrBadMount, err)
		}
		dirL = l
	}
	defer func() { dirL.Release() }()
	if dirL.Mount.Kind.virtualized() {
		return "", fmt.Errorf("%w: %s: no mount can be placed in a %s", ErrBadMount, guest,
			map[bool]string{true: "procfs", false: "devpts"}[dirL.Mount.Kind == KindProc])
	}
	if len(rest) == 1 {
		// The directory holding the mount point exists.
		target := path.Join(dir, rest[0])
		flags := FollowFinal
		if o.NoFollow {
			flags = 0
		}
		l, err := ns.Resolve(ctx, "", target, flags)
		if err != nil {
			// A symbolic link to a path whose directories are missing:
			// Linux cannot mount there either.
			return "", fmt.Errorf("%w: %s: %v", ErrBadMount, target, err)
		}
		exists, isDir, m := l.Exists(), l.IsDir(), l.Mount
		target = l.Path // where a followed link leads
		l.Release()
		switch {
		case m.Kind.virtualized():
			return "", fmt.Errorf("%w: %s: no mount can be placed there", ErrBadMount, target)
		case exists && srcDir && !isDir:
			return "", fmt.Errorf("%w: %s is not a directory in the guest (the source %s is one)", ErrBadMount, target, src)
		case exists && !srcDir && isDir:
			return "", fmt.Errorf("%w: %s is a directory in the guest (the source %s is not)", ErrBadMount, target, src)
		}
		if !exists {
			if err := ns.makePlaceholder(m, target, srcDir); err != nil {
				return "", err
			}
		}
		return target, ns.Add(target, src, o.ReadOnly, KindBind)
	}
	// Directories missing from dir down to the mount point.
	top := path.Join(dir, rest[0])
	target := path.Join(top, path.Join(rest[1:]...))
	if dirL.Mount.Kind == KindTmp {
		if err := ns.makePlaceholder(dirL.Mount, target, srcDir); err != nil {
			return "", err
		}
		return target, ns.Add(target, src, o.ReadOnly, KindBind)
	}
	hostDir, err := ns.addPrivate(top, "mnt", 0o755, true)
	if err != nil {
		return "", err
	}
	if err := makeChain(hostDir, rest[1:], srcDir); err != nil {
		return "", fmt.Errorf("%w: mount point %s: %v", ErrBadMount, target, err)
	}
	return target, ns.Add(target, src, o.ReadOnly, KindBind)
}

// makePlaceholder makes the mount point target (canonical) in the host
// directory of m when m is one of this namespace's private mounts, so
// that it is listed with the rest; elsewhere nothing is made.
func (ns *Namespace) makePlaceholder(m *Mount, target string, dir bool) error {
	if m.Kind != KindTmp || !ns.ownsPrivate(m.Host) || m.Guest == target {
		return nil
	}
	rel := strings.TrimPrefix(target, m.Guest)
	if m.Guest == "/" {
		rel = target
	}
	if err := makeChain(m.Host, strings.Split(strings.TrimPrefix(rel, "/"), "/"), dir); err != nil {
		return fmt.Errorf("%w: mount point %s: %v", ErrBadMount, target, err)
	}
	return nil
}

// ownsPrivate reports whether host is one of the directories this
// namespace made.
func (ns *Namespace) ownsPrivate(host string) bool {
	for _, d := range ns.private {
		if d.Path == host {
			return true
		}
	}
	return false
}

// makeChain creates the directories comps[:len-1] below base and the
// last one as a directory or an empty file (an existing one is kept).
func makeChain(base string, comps []string, dir bool) error {
	p := base
	for i, c := range comps {
		p = path.Join(p, c)
		last := i == len(comps)-1
		if !last || dir {
			if err := os.Mkdir(p, 0o755); err != nil && !os.IsExist(err) {
				return err
			}
			continue
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		f.Close()
	}
	return nil
}
