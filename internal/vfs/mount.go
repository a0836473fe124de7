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
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

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
	root int // O_PATH descriptor of Host, owned by the namespace
	dev  uint64
	ino  uint64
	mode uint32
}

// Namespace is a guest mount table. It is immutable after Seal.
type Namespace struct {
	mounts []*Mount // sorted by guest path, longest first
	byPath map[string]*Mount
	sealed bool
	cache  *dirCache
	// cleaner, while set (from Seal to Close), receives RemovePrivate's
	// requests (see Seal).
	cleanMu sync.Mutex
	cleaner chan chan struct{}
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

// Seal freezes the table; resolution is allowed only after Seal.
//
// With private mounts it also starts their cleaner: a goroutine locked to
// an OS thread that exists now, before any tier confines a thread, which
// RemovePrivate hands its work to. The in-process tiers' guest thread
// restricts itself with Landlock to the mounts' own directories and ends
// the process from that thread: it may empty a private directory but not
// remove it from its parent, and Go's os.RemoveAll, which opens the
// parent, removes nothing there.
func (ns *Namespace) Seal() {
	ns.sealed = true
	private := false
	for _, m := range ns.mounts {
		private = private || m.Kind == KindTmp
	}
	ns.cleanMu.Lock()
	defer ns.cleanMu.Unlock()
	if !private || ns.cleaner != nil {
		return
	}
	requests := make(chan chan struct{})
	started := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		close(started)
		for done := range requests {
			ns.removePrivate()
			close(done)
		}
	}()
	<-started
	ns.cleaner = requests
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
	if !path.IsAbs(host) {
		return "", false
	}
	host = path.Clean(host)
	best := ""
	bestLen := -1
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
		if len(m.Host) > bestLen {
			best, bestLen = g, len(m.Host)
		}
	}
	return best, bestLen >= 0
}

// Close releases the mount descriptors.
func (ns *Namespace) Close() {
	ns.cleanMu.Lock()
	if ns.cleaner != nil {
		close(ns.cleaner)
		ns.cleaner = nil
	}
	ns.cleanMu.Unlock()
	ns.cache.clear()
	for _, m := range ns.mounts {
		unix.Close(m.root)
	}
}

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

// RemovePrivate deletes the host directories of private (KindTmp) mounts.
// Before Close it runs on the cleaner's thread (see Seal).
func (ns *Namespace) RemovePrivate() {
	ns.cleanMu.Lock()
	defer ns.cleanMu.Unlock()
	if ns.cleaner != nil {
		done := make(chan struct{})
		ns.cleaner <- done
		<-done
		return
	}
	ns.removePrivate()
}

func (ns *Namespace) removePrivate() {
	for _, m := range ns.mounts {
		if m.Kind == KindTmp {
			os.RemoveAll(m.Host)
		}
	}
}
