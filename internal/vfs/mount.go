// Package vfs owns the guest's file namespace: the mount table (guest path →
// host directory), the confined resolver that walks guest paths component by
// component on O_PATH descriptors, and the cache of resolved directories.
//
// It never hands a guest-supplied path to the host kernel: every host call it
// makes is relative to a descriptor it opened itself and names one component
// with no slash, or is a kbox-constructed /proc/self/fd/N path.
package vfs

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/tmpdirs"
)

// MountKind says what a mount's source is.
type MountKind uint8

const (
	// KindBind is a host directory made visible at a guest path.
	KindBind MountKind = iota
	// KindProc is a host procfs: its /proc/self, /proc/<pid>/root, cwd, exe
	// and fd/N links are magic and are interpreted for the guest.
	KindProc
	// KindTmp is a private host directory created for this run (removed at exit).
	KindTmp
	// KindPts is a host devpts (/dev/pts): only the terminals the guest
	// holds are visible in it (see PtyView).
	KindPts
)

// virtualized reports whether the resolver interprets the mount's entries
// itself (so no lookup in it may take the fast paths that skip them).
func (k MountKind) virtualized() bool { return k == KindProc || k == KindPts }

// Mount is one entry of the guest mount table.
//
// A mount's source is normally a directory. It may also be a single
// non-directory object (a file bind, such as a device node at /dev/null):
// the guest then reaches exactly that object at the mount's path. For the
// guest to see a file bind in a listing, the directory holding the mount
// point must contain an entry of the same name (a placeholder the bind
// shadows).
type Mount struct {
	Guest string // clean absolute guest path
	// Host is the clean absolute host path of the source: exactly what the
	// guest may reach through this mount (the in-process tiers build their
	// Landlock rules from it).
	Host string
	// ReadOnly: the guest may not modify anything through the mount. In a
	// KindProc mount everything is read-only in any case except the
	// calling process's own /proc/<pid> entries, and a file bind's own
	// metadata is read-only in any case: without ReadOnly only its data
	// (a device's) may be written (Namespace.ReadOnlyFor).
	ReadOnly bool
	Kind     MountKind
	// File is set for a file bind (the source is not a directory).
	File bool
	// Overlay is set when the mount is an overlay (overlay.go): Host is
	// its upper layer, the only one the guest's changes are made in.
	Overlay *Overlay
	root    int // O_PATH descriptor of Host, owned by the namespace
	dev     uint64
	ino     uint64
	mode    uint32
}

// Namespace is a guest mount table. It is immutable after Seal.
type Namespace struct {
	mounts []*Mount // sorted by guest path, longest first
	byPath map[string]*Mount
	sealed bool
	cache  *dirCache
	// private are the host directories this namespace made (AddPrivate,
	// AddDev), which RemovePrivate removes.
	private []*tmpdirs.Dir
	// virtual: listing entries of mount points (VirtualEntries).
	virtual map[[2]uint64][]DirEntry
}

// NewNamespace returns an empty mount table.
func NewNamespace() *Namespace {
	return &Namespace{byPath: map[string]*Mount{}, cache: newDirCache()}
}

// ErrBadMount is wrapped by every mount setup error.
var ErrBadMount = errors.New("bad mount")

// Add mounts the host directory host at guest path guest. The root mount
// ("/") must be added first. host may also name a non-directory object (a
// file bind, see Mount); the root mount must be a directory.
func (ns *Namespace) Add(guest, host string, readOnly bool, kind MountKind) error {
	if ns.sealed {
		return fmt.Errorf("%w: namespace already sealed", ErrBadMount)
	}
	if !path.IsAbs(guest) {
		return fmt.Errorf("%w: guest path %q is not absolute", ErrBadMount, guest)
	}
	guest = path.Clean(guest)
	if len(ns.mounts) == 0 && guest != "/" {
		return fmt.Errorf("%w: the root mount must come first", ErrBadMount)
	}
	if _, dup := ns.byPath[guest]; dup {
		return fmt.Errorf("%w: %s is mounted twice", ErrBadMount, guest)
	}
	fd, err := unix.Open(host, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadMount, host, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return fmt.Errorf("%w: %s: %v", ErrBadMount, host, err)
	}
	file := st.Mode&unix.S_IFMT != unix.S_IFDIR
	if file && (guest == "/" || kind != KindBind) {
		unix.Close(fd)
		return fmt.Errorf("%w: %s: %v", ErrBadMount, host, unix.ENOTDIR)
	}
	if kind == KindBind && !file {
		var sfs unix.Statfs_t
		if unix.Fstatfs(fd, &sfs) == nil {
			switch sfs.Type {
			case unix.PROC_SUPER_MAGIC:
				kind = KindProc
			case unix.DEVPTS_SUPER_MAGIC:
				kind = KindPts
			}
		}
	}
	m := &Mount{Guest: guest, Host: path.Clean(host), ReadOnly: readOnly, Kind: kind, File: file, root: fd, dev: st.Dev, ino: st.Ino, mode: st.Mode}
	ns.mounts = append(ns.mounts, m)
	ns.byPath[guest] = m
	sort.SliceStable(ns.mounts, func(i, j int) bool { return len(ns.mounts[i].Guest) > len(ns.mounts[j].Guest) })
	return nil
}

// Seal freezes the table; resolution is allowed only after Seal (but for
// AddBind's, of the table built so far).
func (ns *Namespace) Seal() {
	ns.computeVirtual()
	ns.sealed = true
}

// Mounts returns the mount table, root first.
func (ns *Namespace) Mounts() []*Mount {
	out := append([]*Mount(nil), ns.mounts...)
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].Guest) < len(out[j].Guest) })
	return out
}

// Root returns the root mount.
func (ns *Namespace) Root() *Mount { return ns.byPath["/"] }

// mountAt returns the mount whose guest path is exactly p.
func (ns *Namespace) mountAt(p string) *Mount { return ns.byPath[p] }

// mountOf returns the mount that contains guest path p (canonical).
func (ns *Namespace) mountOf(p string) *Mount {
	for _, m := range ns.mounts {
		if m.Guest == "/" || p == m.Guest || strings.HasPrefix(p, m.Guest+"/") {
			return m
		}
	}
	return ns.Root()
}

// GuestPathOfHost maps a host path (as the kernel reports it in
// /proc/<pid>/fd links) back into the guest namespace. It returns false when
// the host path lies outside every mount, or inside a mount point's shadowed
// directory.
func (ns *Namespace) GuestPathOfHost(host string) (string, bool) {
	g, _, _, ok := ns.hostCandidate(host)
	return g, ok
}

// MountOfHost returns the mount through which the guest reaches host path
// host, and the guest path: of the mounts whose host directory contains it
// (and whose guest path for it no deeper mount shadows), the one with the
// longest host directory; between mounts of the same host directory, a
// read-only one. False when the guest cannot reach host at all.
func (ns *Namespace) MountOfHost(host string) (*Mount, string, bool) {
	g, m, _, ok := ns.hostCandidate(host)
	return m, g, ok
}

// LowerOfHost reports whether the guest reaches host path host through
// the lower layer of an overlay mount (a file not copied up: the guest
// may not change it in place), and its guest path.
func (ns *Namespace) LowerOfHost(host string) (string, bool) {
	g, _, lower, ok := ns.hostCandidate(host)
	return g, ok && lower
}

func (ns *Namespace) hostCandidate(host string) (string, *Mount, bool, bool) {
	if !path.IsAbs(host) {
		return "", nil, false, false
	}
	host = path.Clean(host)
	best, bestHost := "", ""
	var bestM *Mount
	bestLower := false
	for _, m := range ns.mounts {
		srcs := []string{m.Host}
		if m.Overlay != nil {
			srcs = append(srcs, m.Overlay.Lower)
		}
		for i, src := range srcs {
			var rest string
			switch {
			case host == src:
				rest = ""
			case src == "/":
				rest = host
			case strings.HasPrefix(host, src+"/"):
				rest = host[len(src):]
			default:
				continue
			}
			g := path.Join(m.Guest, rest)
			if g == "" {
				g = "/"
			}
			// The candidate is valid only if no deeper mount shadows it.
			if ns.mountOf(g) != m {
				continue
			}
			if bestM == nil || len(src) > len(bestHost) || (len(src) == len(bestHost) && m.ReadOnly && !bestM.ReadOnly) {
				best, bestHost, bestM, bestLower = g, src, m, i == 1
			}
		}
	}
	return best, bestM, bestLower, bestM != nil
}

// Close releases the mount descriptors.
func (ns *Namespace) Close() {
	ns.cache.clear()
	for _, m := range ns.mounts {
		unix.Close(m.root)
		if m.Overlay != nil {
			unix.Close(m.Overlay.lower.fd)
		}
	}
}

// rootHandle is the handle the resolver starts from at the mount's root.
func (m *Mount) rootHandle() *Handle {
	if m.Overlay != nil {
		return m.Overlay.root
	}
	return staticHandle(m.root)
}

// fastPaths reports whether lookups in the mount may take the resolver's
// shortcuts (ParentOnly, the cached parent): not where the resolver
// interprets entries itself (procfs, devpts) nor in an overlay, where a
// name is looked up in two layers.
func (m *Mount) fastPaths() bool { return !m.Kind.virtualized() && m.Overlay == nil }

// FileBindTypes describes the listings file binds change: for each mount
// root directory (by host device and inode) that holds file binds' mount
// points, the names of those entries and the file type (S_IFCHR, ...) of
// what the guest reaches there, which its placeholder's directory entry
// does not say.
func (ns *Namespace) FileBindTypes() map[[2]uint64]map[string]uint32 {
	out := map[[2]uint64]map[string]uint32{}
	for _, m := range ns.mounts {
		if !m.File {
			continue
		}
		parent := ns.byPath[path.Dir(m.Guest)]
		if parent == nil || parent.File {
			continue
		}
		k := [2]uint64{parent.dev, parent.ino}
		if out[k] == nil {
			out[k] = map[string]uint32{}
		}
		out[k][path.Base(m.Guest)] = m.mode & unix.S_IFMT
	}
	return out
}

// ReadOnlyFor reports whether the calling process (ctx) may not modify the
// object at canonical guest path p, which lies in mount m: create, remove,
// rename, change its metadata or, for a regular file, write it. A file
// bind's object is read-only in this sense (writing a device's data is
// not a modification of the object: the dispatcher allows it when the
// mount is not ReadOnly). Inside a host
// procfs everything is read-only (/proc/sys, /proc/sysrq-trigger,
// /proc/sys/fs/binfmt_misc, other processes' entries ...) except what a
// process legitimately writes: the entries below its own /proc/<pid>
// (reached as /proc/self or /proc/thread-self too), such as comm,
// oom_score_adj or its threads' task/<tid> entries.
func (ns *Namespace) ReadOnlyFor(ctx *Context, m *Mount, p string) bool {
	if m == nil {
		return false
	}
	if m.ReadOnly || m.File {
		return true
	}
	if m.Kind != KindProc {
		return false
	}
	rel := strings.TrimPrefix(p, m.Guest)
	if m.Guest == "/" {
		rel = p
	}
	pidStr, rest, below := strings.Cut(strings.TrimPrefix(rel, "/"), "/")
	if !below || rest == "" || ctx == nil || ctx.Tgid <= 0 {
		return true
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || strconv.Itoa(pid) != pidStr {
		return true
	}
	return pid != ctx.Tgid && pid != ctx.Tid
}

// RemovePrivate deletes the host directories this namespace made for the
// run (its private mounts). A namespace rebuilt from a mount list (the
// in-process tiers' confined child) made none and removes nothing: the
// supervisor that made them does.
func (ns *Namespace) RemovePrivate() {
	for _, d := range ns.private {
		d.Remove()
	}
	ns.private = nil
}
