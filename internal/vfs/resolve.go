package vfs

import (
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Linux limits the resolver reproduces.
const (
	MaxSymlinks = 40
	PathMax     = 4096
	NameMax     = 255
)

// ProcView answers the questions the resolver needs about guest processes
// when it meets the magic links of a host procfs.
type ProcView interface {
	// GuestDir reports whether dirfd, the /proc/<id> directory just opened
	// by the number id, is of a live task of the guest. The directory stays
	// tied to its task, so the resolver goes on from it and never opens
	// /proc/<id> again by number.
	GuestDir(dirfd, id int) bool
	// Cwd and Root return a guest process's working and root directory as
	// canonical guest paths.
	Cwd(pid int) (string, bool)
	Root(pid int) (string, bool)
	// Exe returns the guest path of the program a guest process executed,
	// when kbox served that exec.
	Exe(pid int) (string, bool)
}

// FDTranslator is implemented by a ProcView whose guest descriptor numbers
// are not the host's (the in-process tiers keep a virtual table): it maps
// /proc/<pid>/fd/<n> to the host descriptor behind guest number n.
type FDTranslator interface {
	HostFD(pid, fd int) (int, bool)
}

// StandInView is implemented by a ProcView whose guests hold stand-ins for
// objects kbox cannot install (a symlink's O_PATH descriptor, see
// dispatch/fs_opath.go): StandIn returns the guest path a stand-in names,
// given the procfs directory and name of the fd link and its host text.
type StandInView interface {
	StandIn(dirfd int, name, text string) (string, bool)
}

// HostObjectText is what readlink of /proc/<pid>/fd/N shows for a
// descriptor whose file lies outside the guest's mounts (a host file on
// the guest's stdio): like the kernel's names of objects without a path,
// it names no path; the link cannot be followed to open the file again.
const HostObjectText = "host:[file]"

// PtyView is implemented by a ProcView that knows which pseudo-terminals
// belong to the guest: in a host devpts (KindPts) the guest sees only
// those, so it cannot open another user's (or, as a root guest without
// capabilities, root's) terminals.
type PtyView interface {
	// GuestPty reports whether pty n is one the guest holds (it has the
	// master or a slave descriptor of it open, or kbox's own terminal);
	// caller is the asking guest process, looked at first.
	GuestPty(caller, n int) bool
}

// Context is the per-call view of the calling guest process.
type Context struct {
	Tgid, Tid int
	Root      string // the process root (chroot), canonical guest path; "" means "/"
	Cwd       string // canonical guest path
	Procs     ProcView
}

// Flags select resolution behaviour; the RESOLVE_* ones mirror openat2.
type Flags uint32

const (
	FollowFinal  Flags = 1 << iota // follow a symlink in the last component
	NoSymlinks                     // RESOLVE_NO_SYMLINKS: ELOOP on any symlink
	NoMagicLinks                   // RESOLVE_NO_MAGICLINKS: ELOOP on procfs magic links
	NoXdev                         // RESOLVE_NO_XDEV: EXDEV when crossing a mount
	Beneath                        // RESOLVE_BENEATH: EXDEV when leaving the start directory
	InRoot                         // RESOLVE_IN_ROOT: the start directory acts as "/"
	// ParentOnly stops before a plain last component and returns it
	// unresolved (Lookup.Deferred): the caller acts on (Parent, Name) with
	// a single no-follow host call and falls back to a full lookup when the
	// object turns out to be a symlink it must follow. Mount points, procfs
	// entries, ".", ".." and trailing slashes are always fully resolved.
	ParentOnly
	// ExactLast looks up the last component as it is: a trailing slash
	// neither follows a symlink there nor requires a directory. Creating
	// and removing calls (mkdir, mknod, link, symlink, unlink, rmdir,
	// rename) look up their last component this way and apply the
	// trailing slash's rules themselves (Lookup.Trailing), as Linux does.
	ExactLast
)

// LastKind classifies the final component like the kernel's LAST_* types.
type LastKind uint8

const (
	LastNorm LastKind = iota
	LastDot
	LastDotDot
	LastRoot
)

// Lookup is a resolved guest path. Release must be called.
type Lookup struct {
	Parent   *Handle // directory holding Name (nil when Last != LastNorm)
	Name     string  // final component (LastNorm only)
	Obj      *Handle // O_PATH|O_NOFOLLOW descriptor of the object; nil if it does not exist
	Mount    *Mount  // mount holding the object (or where it would be created)
	Path     string  // canonical guest path of the object
	Last     LastKind
	Trailing bool // the path ended with a slash
	// MountPoint is set when the object is the root of a mount other than
	// the process root: it cannot be renamed, unlinked or removed.
	MountPoint bool
	// VirtualLink is set when the object is a procfs link the resolver
	// interprets for the guest (/proc/self, /proc/<pid>/cwd, fd/N, ...);
	// LinkText is what readlink must return instead of the host's text.
	VirtualLink bool
	LinkText    string
	// Deferred is set for ParentOnly lookups whose last component was not
	// looked up: only Parent, Name, Mount and Path are valid.
	Deferred bool
	// Magic is set when the object is a procfs fd link to a non-path object
	// (pipe, socket, anon inode, memfd, a deleted file) of a guest process:
	// it can only be opened by letting the kernel follow Name inside Parent.
	Magic bool
	// Host is set with Magic when the link's file lies outside the guest's
	// mounts (HostObjectText): it may be looked at (stat), never opened.
	Host bool
	// ReadOnly: the calling process may not modify the object (or create
	// it): its mount is read-only, or it lies in a procfs outside the
	// process's own entries (Namespace.ReadOnlyFor).
	ReadOnly bool

	// st is the object's status as far as the walk learnt it: a directory
	// reached through the dentry cache is known only by its type (full is
	// false). Type gives the type; Stat the full status, fetched on demand.
	st   unix.Stat_t
	full bool
}

// Exists reports whether the final object exists.
func (l *Lookup) Exists() bool { return l.Obj != nil || l.Magic }

// IsDir reports whether the object is a directory.
func (l *Lookup) IsDir() bool { return l.Obj != nil && l.st.Mode&unix.S_IFMT == unix.S_IFDIR }

// Type returns the object's file type (the S_IFMT bits of st_mode), 0 when
// it does not exist or is a procfs magic object (Magic).
func (l *Lookup) Type() uint32 {
	if l.Obj == nil {
		return 0
	}
	return l.st.Mode & unix.S_IFMT
}

// Stat returns the object's full status. The walk may know only the type
// of an object (a directory served from the dentry cache); Stat then asks
// the kernel through the lookup's descriptor, once. ENOENT when the object
// does not exist or has no descriptor (Magic: the caller opens it).
func (l *Lookup) Stat() (unix.Stat_t, error) {
	if l.Obj == nil {
		return unix.Stat_t{}, unix.ENOENT
	}
	if !l.full {
		var st unix.Stat_t
		if err := unix.Fstat(l.Obj.fd, &st); err != nil {
			return unix.Stat_t{}, err
		}
		l.st, l.full = st, true
	}
	return l.st, nil
}

// Release drops the lookup's descriptors.
func (l *Lookup) Release() {
	if l == nil {
		return
	}
	l.Parent.Release()
	l.Obj.Release()
	l.Parent, l.Obj = nil, nil
}

// frame is one resolved directory on the walk stack.
type frame struct {
	path string
	h    *Handle
	m    *Mount
}

type walker struct {
	ns       *Namespace
	ctx      *Context
	flags    Flags
	root     string // canonical path acting as "/"
	start    string // canonical start directory (for Beneath)
	stack    []frame
	links    int
	cacheGen uint64
	// magicHost is the host name, in the procfs directory on top of the
	// stack, of the magic link procLink last read: /proc/<pid>/fd/N of an
	// in-process guest names kbox's descriptor, not N.
	magicHost string
	// hostObj: the magic link procLink last read names a file outside
	// the guest's mounts.
	hostObj bool
}

func (w *walker) top() *frame { return &w.stack[len(w.stack)-1] }

func (w *walker) release() {
	for i := range w.stack {
		w.stack[i].h.Release()
	}
	w.stack = nil
}

// Resolve resolves guest path p for the calling process. start is the
// canonical guest directory relative paths start from ("" means the
// process cwd). A missing final component is not an error: the Lookup then
// has Obj == nil and a Parent to create it in.
func (ns *Namespace) Resolve(ctx *Context, start, p string, flags Flags) (*Lookup, error) {
	if p == "" {
		return nil, unix.ENOENT
	}
	if len(p) >= PathMax {
		return nil, unix.ENAMETOOLONG
	}
	root := ctx.Root
	if root == "" {
		root = "/"
	}
	if start == "" {
		start = ctx.Cwd
		if start == "" {
			start = root
		}
	}
	if l := ns.cachedParent(root, start, p, flags); l != nil {
		l.ReadOnly = ns.ReadOnlyFor(ctx, l.Mount, l.Path)
		return l, nil
	}
	l, err := ns.resolve(ctx, root, start, p, flags)
	if err != nil {
		return nil, err
	}
	l.ReadOnly = ns.ReadOnlyFor(ctx, l.Mount, l.Path)
	return l, nil
}

func (ns *Namespace) resolve(ctx *Context, root, start, p string, flags Flags) (*Lookup, error) {
	w := &walker{ns: ns, ctx: ctx, flags: flags, root: root, start: start, cacheGen: ns.cache.generation()}
	if flags&InRoot != 0 {
		w.root = start
	}
	defer w.release()

	var first string
	if strings.HasPrefix(p, "/") {
		if flags&Beneath != 0 {
			return nil, unix.EXDEV
		}
		first = w.root
	} else {
		first = start
	}
	f, err := w.openCanonical(first)
	if err != nil {
		return nil, err
	}
	w.stack = append(w.stack, f)
	return w.walk(p)
}

// cachedParent answers a ParentOnly lookup from the directory cache when
// the path's parent is, as a string, a cached canonical directory: a plain
// path (no ".", "..", empty components or trailing slash) under the
// namespace root. The cache holds only canonical paths of directories the
// walk reached, and only rename and rmdir can change what such a path
// names (they invalidate it), so the walk would reach the same directory.
func (ns *Namespace) cachedParent(root, start, p string, flags Flags) *Lookup {
	if flags&^(FollowFinal|ParentOnly) != 0 || flags&ParentOnly == 0 || root != "/" {
		return nil
	}
	full := p
	if p[0] != '/' {
		if start == "/" {
			full = "/" + p
		} else {
			full = start + "/" + p
		}
	}
	slash := strings.LastIndexByte(full, '/')
	if slash <= 0 || slash == len(full)-1 || !plainPath(full) {
		return nil
	}
	dir, name := full[:slash], full[slash+1:]
	if len(name) > NameMax || ns.mountAt(full) != nil {
		return nil
	}
	h := ns.cache.get(dir)
	if h == nil {
		return nil
	}
	m := ns.mountOf(dir)
	if !m.fastPaths() {
		h.Release()
		return nil
	}
	return &Lookup{Parent: h, Name: name, Mount: m, Path: full, Deferred: true}
}

// plainPath reports whether an absolute path has no ".", ".." or empty
// components.
func plainPath(p string) bool {
	prev := 0
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			c := p[prev+1 : i]
			if c == "" || c == "." || c == ".." {
				return false
			}
			prev = i
		}
	}
	return true
}

// openCanonical returns a frame for a canonical (symlink-free) guest
// directory path.
func (w *walker) openCanonical(p string) (frame, error) {
	if m := w.ns.mountAt(p); m != nil {
		return frame{path: p, h: m.rootHandle(), m: m}, nil
	}
	if h := w.ns.cache.get(p); h != nil {
		return frame{path: p, h: h, m: w.ns.mountOf(p)}, nil
	}
	// Walk from the guest root without following anything: a canonical path
	// has no symlinks; meeting one means the tree changed under us.
	rootM := w.ns.Root()
	cur := frame{path: "/", h: rootM.rootHandle(), m: rootM}
	for _, name := range splitPath(p) {
		next, st, _, err := w.step(cur, name)
		cur.h.Release()
		if err != nil {
			return frame{}, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			next.h.Release()
			return frame{}, unix.ENOTDIR
		}
		cur = next
	}
	return cur, nil
}

// step opens one component below dir without following it. full reports
// whether st is the object's whole status; a directory served from the
// dentry cache is known only by its type (st.Mode == S_IFDIR).
func (w *walker) step(dir frame, name string) (f frame, st unix.Stat_t, full bool, err error) {
	child := joinPath(dir.path, name)
	if m := w.ns.mountAt(child); m != nil {
		if err := unix.Fstat(m.root, &st); err != nil {
			return frame{}, st, false, err
		}
		return frame{path: child, h: m.rootHandle(), m: m}, st, true, nil
	}
	if h := w.ns.cache.get(child); h != nil {
		st.Mode = unix.S_IFDIR
		return frame{path: child, h: h, m: dir.m}, st, false, nil
	}
	if len(name) > NameMax {
		return frame{}, st, false, unix.ENAMETOOLONG
	}
	if ov := dir.m.Overlay; ov != nil {
		h, st, err := ov.lookup(dir.h, name)
		if err != nil {
			return frame{}, st, false, err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			w.ns.cache.put(child, h, w.cacheGen)
		}
		return frame{path: child, h: h, m: dir.m}, st, true, nil
	}
	fd, err := unix.Openat(dir.h.fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return frame{}, st, false, err
	}
	if !w.procPidDir(dir, name, fd) {
		unix.Close(fd)
		return frame{}, st, false, unix.ENOENT
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return frame{}, st, false, err
	}
	h := newHandle(fd)
	if st.Mode&unix.S_IFMT == unix.S_IFDIR && dir.m.Kind != KindProc {
		w.ns.cache.put(child, h, w.cacheGen)
	}
	return frame{path: child, h: h, m: dir.m}, st, true, nil
}

// procPidDir checks fd, just opened as name in dir: a task directory at the
// top of a host procfs (/proc/<pid>, /proc/<tid>) must be of a guest task;
// the guest sees only its own processes, so any other does not exist.
// Every /proc/<pid> frame, and so every magic link and every file opened
// below one, comes through here.
func (w *walker) procPidDir(dir frame, name string, fd int) bool {
	if dir.m.Kind != KindProc || dir.path != dir.m.Guest || w.ctx.Procs == nil {
		return true
	}
	id, err := strconv.Atoi(name)
	if err != nil {
		return true
	}
	return id > 0 && w.ctx.Procs.GuestDir(fd, id)
}

// dotdot moves to the parent of the top frame, clamped at the root.
func (w *walker) dotdot() error {
	t := w.top()
	if t.path == w.root {
		if w.flags&Beneath != 0 {
			return unix.EXDEV
		}
		return nil
	}
	if w.flags&Beneath != 0 && t.path == w.start {
		return unix.EXDEV
	}
	if len(w.stack) > 1 {
		parent := w.stack[len(w.stack)-2]
		if w.flags&NoXdev != 0 && parent.m != t.m {
			return unix.EXDEV
		}
		t.h.Release()
		w.stack = w.stack[:len(w.stack)-1]
		return nil
	}
	f, err := w.openCanonical(path.Dir(t.path))
	if err != nil {
		return err
	}
	if w.flags&NoXdev != 0 && f.m != t.m {
		f.h.Release()
		return unix.EXDEV
	}
	t.h.Release()
	*t = f
	return nil
}

func (w *walker) walk(p string) (*Lookup, error) {
	trailing := strings.HasSuffix(p, "/")
	pending := splitPath(p)
	if len(pending) == 0 {
		// "/" or only slashes: the root (or start) itself.
		return w.finishDir(LastRoot, trailing)
	}
	for len(pending) > 0 {
		name := pending[0]
		pending = pending[1:]
		last := len(pending) == 0
		switch name {
		case ".":
			if last {
				return w.finishDir(LastDot, trailing)
			}
			continue
		case "..":
			if err := w.dotdot(); err != nil {
				return nil, err
			}
			if last {
				return w.finishDir(LastDotDot, trailing)
			}
			continue
		}
		dir := *w.top()
		if dir.m.Kind == KindProc {
			if text, raw, ok, err := w.procLink(dir, name); err != nil {
				return nil, err
			} else if ok {
				if last && !(w.flags&FollowFinal != 0 || trailing) {
					l, err := w.finishLast(dir, name, trailing, &[]string{})
					if err == nil {
						l.LinkText, l.VirtualLink = text, true
						if text == "" {
							l.LinkText = raw
						}
					}
					return l, err
				}
				if text == "" {
					// Magic link to a non-path object.
					if !last {
						return nil, unix.ENOTDIR
					}
					return w.finishMagic(dir, name)
				}
				if err := w.countLink(true); err != nil {
					return nil, err
				}
				if err := w.followText(text, &pending); err != nil {
					return nil, err
				}
				continue
			}
		}
		if dir.m.Kind == KindPts && dir.path == dir.m.Guest && !w.ptyVisible(name) {
			return nil, unix.ENOENT
		}
		if last {
			if w.flags&ParentOnly != 0 && !trailing && dir.m.fastPaths() && w.ns.mountAt(joinPath(dir.path, name)) == nil {
				if len(name) > NameMax {
					return nil, unix.ENAMETOOLONG
				}
				return &Lookup{Parent: dir.h.acquire(), Name: name, Mount: dir.m, Path: joinPath(dir.path, name), Deferred: true}, nil
			}
			return w.finishLast(dir, name, trailing, &pending)
		}
		next, st, _, err := w.step(dir, name)
		if err != nil {
			return nil, err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if w.flags&NoXdev != 0 && next.m != dir.m {
				next.h.Release()
				return nil, unix.EXDEV
			}
			w.stack = append(w.stack, next)
		case unix.S_IFLNK:
			text, err := readlinkFD(next.h.fd)
			next.h.Release()
			if err != nil {
				return nil, err
			}
			if err := w.countLink(false); err != nil {
				return nil, err
			}
			if err := w.followText(text, &pending); err != nil {
				return nil, err
			}
		default:
			next.h.Release()
			return nil, unix.ENOTDIR
		}
	}
	// The last component was a symlink whose target ended in "." or "..":
	// the walk already moved; the result is the directory on top.
	return w.finishDir(LastNorm, trailing)
}

// finishLast resolves the final component, following a symlink when asked
// (or when the path had a trailing slash, as Linux does).
func (w *walker) finishLast(dir frame, name string, trailing bool, pending *[]string) (*Lookup, error) {
	next, st, full, err := w.step(dir, name)
	if err == unix.ENOENT {
		l := &Lookup{Parent: dir.h.acquire(), Name: name, Mount: dir.m, Path: joinPath(dir.path, name), Trailing: trailing}
		return l, nil
	}
	if err != nil {
		return nil, err
	}
	exact := w.flags&ExactLast != 0
	if st.Mode&unix.S_IFMT == unix.S_IFLNK && (w.flags&FollowFinal != 0 || trailing && !exact) {
		text, err := readlinkFD(next.h.fd)
		next.h.Release()
		if err != nil {
			return nil, err
		}
		if err := w.countLink(false); err != nil {
			return nil, err
		}
		if err := w.followText(text, pending); err != nil {
			return nil, err
		}
		return w.walkRest(pending, trailing)
	}
	if w.flags&NoXdev != 0 && next.m != dir.m {
		next.h.Release()
		return nil, unix.EXDEV
	}
	if trailing && !exact && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		next.h.Release()
		return nil, unix.ENOTDIR
	}
	parent := dir.h
	if next.h.layer == layerLower && parent.layer == layerUpper && parent.lower != nil {
		// A lower object of a merged directory: its parent is the lower
		// layer's directory, so that (Parent, Name) names it too.
		parent = parent.lower
	}
	l := &Lookup{Parent: parent.acquire(), Name: name, Obj: next.h, st: st, full: full, Mount: next.m, Path: next.path, Trailing: trailing}
	l.MountPoint = w.ns.mountAt(next.path) != nil
	if l.MountPoint {
		// Descriptors of mount roots are owned by the namespace; hand out
		// a counted duplicate so Release is uniform.
		fd, err := unix.FcntlInt(uintptr(next.h.fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			l.Parent.Release()
			return nil, err
		}
		l.Obj = newHandle(fd)
	}
	return l, nil
}

// walkRest continues a walk after a final symlink was expanded.
func (w *walker) walkRest(pending *[]string, trailing bool) (*Lookup, error) {
	rest := strings.Join(*pending, "/")
	if trailing {
		rest += "/"
	}
	if rest == "" {
		return w.finishDir(LastNorm, trailing)
	}
	// The target text is walked from the current top; for absolute targets
	// followText already reset the stack to the root.
	return w.walk(rest)
}

func (w *walker) finishMagic(dir frame, name string) (*Lookup, error) {
	if w.flags&(NoMagicLinks|NoSymlinks) != 0 {
		return nil, unix.ELOOP
	}
	host := name
	if w.magicHost != "" {
		host = w.magicHost
	}
	return &Lookup{Parent: dir.h.acquire(), Name: host, Mount: dir.m, Path: joinPath(dir.path, name), Magic: true, Host: w.hostObj}, nil
}

// finishDir returns the directory on top of the stack as the result.
func (w *walker) finishDir(kind LastKind, trailing bool) (*Lookup, error) {
	t := w.top()
	fd, err := unix.FcntlInt(uintptr(t.h.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	obj := newHandle(fd)
	obj.layer, obj.lower = t.h.layer, t.h.lower.acquire()
	l := &Lookup{Obj: obj, Mount: t.m, Path: t.path, Last: kind, Trailing: trailing}
	if err := unix.Fstat(fd, &l.st); err != nil {
		l.Release()
		return nil, err
	}
	l.full = true
	l.MountPoint = w.ns.mountAt(t.path) != nil && t.path != w.root
	return l, nil
}

func (w *walker) countLink(magic bool) error {
	if w.flags&NoSymlinks != 0 || (magic && w.flags&NoMagicLinks != 0) {
		return unix.ELOOP
	}
	w.links++
	if w.links > MaxSymlinks {
		return unix.ELOOP
	}
	return nil
}

// followText splices a symlink's target in front of the pending components.
func (w *walker) followText(text string, pending *[]string) error {
	if text == "" {
		return unix.ENOENT
	}
	if strings.HasPrefix(text, "/") {
		if w.flags&Beneath != 0 {
			return unix.EXDEV
		}
		for len(w.stack) > 0 {
			w.top().h.Release()
			w.stack = w.stack[:len(w.stack)-1]
		}
		f, err := w.openCanonical(w.root)
		if err != nil {
			return err
		}
		w.stack = append(w.stack, f)
	}
	parts := splitPath(text)
	if strings.HasSuffix(text, "/") && len(*pending) == 0 {
		parts = append(parts, ".")
	}
	*pending = append(parts, *pending...)
	if len(*pending) == 0 {
		*pending = []string{"."}
	}
	return nil
}

// procLink interprets a component inside a host procfs. ok reports that the
// component is a link the resolver handles itself; text is the guest path
// it points to ("" for a non-path object such as a pipe).
func (w *walker) procLink(dir frame, name string) (text, raw string, ok bool, err error) {
	w.magicHost, w.hostObj = "", false
	rel := strings.TrimPrefix(joinPath(dir.path, name), dir.m.Guest)
	parts := splitPath(rel)
	switch {
	case len(parts) == 1 && name == "self":
		return strconv.Itoa(w.ctx.Tgid), "", true, nil
	case len(parts) == 1 && name == "thread-self":
		return strconv.Itoa(w.ctx.Tgid) + "/task/" + strconv.Itoa(w.ctx.Tid), "", true, nil
	case len(parts) == 1:
		// /proc/<pid> itself: step opens it and checks it (procPidDir).
		return "", "", false, nil
	}
	pid, err := strconv.Atoi(parts[0])
	if err != nil {
		return "", "", false, nil
	}
	inner := parts[1:]
	if len(inner) >= 2 && inner[0] == "task" {
		inner = inner[2:]
	}
	magic := false
	switch {
	case len(inner) == 1 && (inner[0] == "root" || inner[0] == "cwd" || inner[0] == "exe"):
		magic = true
	case len(inner) == 2 && (inner[0] == "fd" || inner[0] == "map_files"):
		magic = true
	}
	if !magic {
		return "", "", false, nil
	}
	if w.flags&(NoMagicLinks|NoSymlinks) != 0 {
		return "", "", false, unix.ELOOP
	}
	// dir descends from a /proc/<pid> directory step checked.
	if w.ctx.Procs == nil {
		return "", "", false, unix.EACCES
	}
	switch inner[0] {
	case "exe":
		if x, ok := w.ctx.Procs.Exe(pid); ok {
			return x, "", true, nil
		}
	case "root":
		r, ok := w.ctx.Procs.Root(pid)
		if !ok {
			return "", "", false, unix.EACCES
		}
		return r, "", true, nil
	case "cwd":
		c, ok := w.ctx.Procs.Cwd(pid)
		if !ok {
			return "", "", false, unix.EACCES
		}
		return c, "", true, nil
	}
	if tr, ok := w.ctx.Procs.(FDTranslator); ok && inner[0] == "fd" {
		n, err := strconv.Atoi(name)
		if err != nil {
			return "", "", false, unix.ENOENT
		}
		h, ok := tr.HostFD(pid, n)
		if !ok {
			return "", "", false, unix.ENOENT
		}
		name = strconv.Itoa(h)
		w.magicHost = name
	}
	buf := make([]byte, PathMax)
	n, err := unix.Readlinkat(dir.h.fd, name, buf)
	if err != nil {
		return "", "", false, err
	}
	t := string(buf[:n])
	if !strings.HasPrefix(t, "/") || strings.HasPrefix(t, "/memfd:") {
		return "", t, true, nil // pipe:[..], socket:[..], anon_inode:..., memfd
	}
	if sv, ok := w.ctx.Procs.(StandInView); ok && inner[0] == "fd" {
		if g, ok := sv.StandIn(dir.h.fd, name, t); ok {
			return g, "", true, nil
		}
	}
	hostPath, deleted := strings.CutSuffix(t, " (deleted)")
	g, ok := w.ns.GuestPathOfHost(hostPath)
	switch {
	case !ok:
		// A file outside the guest's mounts (a host log on the guest's
		// stdio): the link is there, it names no path and cannot be
		// opened again (Lookup.Host).
		w.hostObj = true
		return "", HostObjectText, true, nil
	case deleted:
		// The guest's own deleted file: Linux shows its old path; the
		// kernel may follow the link to it (Magic).
		return "", g + " (deleted)", true, nil
	}
	return g, "", true, nil
}

// ptyVisible reports whether an entry of a devpts root is visible to the
// guest: a pty node (numeric name) only when the guest holds it; the
// devpts's own ptmx never (the guest opens /dev/ptmx).
func (w *walker) ptyVisible(name string) bool {
	n, err := strconv.Atoi(name)
	if err != nil || strconv.Itoa(n) != name {
		return false
	}
	pv, ok := w.ctx.Procs.(PtyView)
	if !ok {
		return w.ctx.Procs == nil
	}
	return pv.GuestPty(w.ctx.Tgid, n)
}

func readlinkFD(fd int) (string, error) {
	buf := make([]byte, PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}
