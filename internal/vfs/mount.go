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
	"os"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
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
)

// Mount is one entry of the guest mount table.
type Mount struct {
	Guest    string // clean absolute guest path
	Host     string // clean absolute host path of the source directory
	ReadOnly bool
	Kind     MountKind
	root     int // O_PATH descriptor of Host, owned by the namespace
	dev      uint64
	ino      uint64
}

// Namespace is a guest mount table. It is immutable after Seal.
type Namespace struct {
	mounts []*Mount // sorted by guest path, longest first
	byPath map[string]*Mount
	sealed bool
	cache  *dirCache
}

// NewNamespace returns an empty mount table.
func NewNamespace() *Namespace {
	return &Namespace{byPath: map[string]*Mount{}, cache: newDirCache()}
}

// ErrBadMount is wrapped by every mount setup error.
var ErrBadMount = errors.New("bad mount")

// Add mounts the host directory host at guest path guest. The root mount
// ("/") must be added first.
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
	fd, err := unix.Open(host, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadMount, host, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return fmt.Errorf("%w: %s: %v", ErrBadMount, host, err)
	}
	if kind == KindBind {
		var sfs unix.Statfs_t
		if unix.Fstatfs(fd, &sfs) == nil && sfs.Type == unix.PROC_SUPER_MAGIC {
			kind = KindProc
		}
	}
	m := &Mount{Guest: guest, Host: path.Clean(host), ReadOnly: readOnly, Kind: kind, root: fd, dev: st.Dev, ino: st.Ino}
	ns.mounts = append(ns.mounts, m)
	ns.byPath[guest] = m
	sort.SliceStable(ns.mounts, func(i, j int) bool { return len(ns.mounts[i].Guest) > len(ns.mounts[j].Guest) })
	return nil
}

// Seal freezes the table; resolution is allowed only after Seal.
func (ns *Namespace) Seal() { ns.sealed = true }

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
	g, _, ok := ns.hostCandidate(host)
	return g, ok
}

// MountOfHost returns the mount through which the guest reaches host path
// host, and the guest path: of the mounts whose host directory contains it
// (and whose guest path for it no deeper mount shadows), the one with the
// longest host directory; between mounts of the same host directory, a
// read-only one. False when the guest cannot reach host at all.
func (ns *Namespace) MountOfHost(host string) (*Mount, string, bool) {
	g, m, ok := ns.hostCandidate(host)
	return m, g, ok
}

func (ns *Namespace) hostCandidate(host string) (string, *Mount, bool) {
	if !path.IsAbs(host) {
		return "", nil, false
	}
	host = path.Clean(host)
	best := ""
	var bestM *Mount
	for _, m := range ns.mounts {
		var rest string
		switch {
		case host == m.Host:
			rest = ""
		case m.Host == "/":
			rest = host
		case strings.HasPrefix(host, m.Host+"/"):
			rest = host[len(m.Host):]
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
		if bestM == nil || len(m.Host) > len(bestM.Host) || (len(m.Host) == len(bestM.Host) && m.ReadOnly && !bestM.ReadOnly) {
			best, bestM = g, m
		}
	}
	return best, bestM, bestM != nil
}

// Close releases the mount descriptors.
func (ns *Namespace) Close() {
	ns.cache.clear()
	for _, m := range ns.mounts {
		unix.Close(m.root)
	}
}

// RemovePrivate deletes the host directories of private (KindTmp) mounts.
func (ns *Namespace) RemovePrivate() {
	for _, m := range ns.mounts {
		if m.Kind == KindTmp {
			os.RemoveAll(m.Host)
		}
	}
}
