package dispatch

import (
	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
	"github.com/kbox-go/kbox/internal/vfs"
)

// Permission checks under a virtual identity.
//
// kbox performs every host operation with the invoking user's real
// credentials, so the host kernel checks those. Under a virtual identity
// the guest's files have the owners and modes the guest gave them
// (ownership.go), and the host mode of the user's own files is opened to
// what kbox needs. So kbox makes the checks the guest's kernel would, on
// the guest's view of the object, before the host operation: the
// owner/group/other bits for the process's fsuid, fsgid and supplementary
// groups, with the overrides of its virtual capabilities (CAP_DAC_OVERRIDE:
// read and write anything, search any directory, execute a file with any
// execute bit; CAP_DAC_READ_SEARCH: read anything, search any directory),
// as generic_permission does. A process that holds both (root, as the
// guest starts with -0) passes them all but the execute bit, which the host
// mode carries as well: its checks cost nothing.
//
// Root also expects to reach its own files whatever their mode, including
// files made mode 000 before kbox kept their view: when the host refuses
// such an object to a process holding those capabilities, kbox settles it
// (records its mode, opens the host owner bits) and the guest's operation
// goes on (adopt).

const (
	permRead  = 4
	permWrite = 2
	permExec  = 1
)

// emulatesPerms reports whether the process has left its initial identity
// (the SysV IPC checks, ipc.go).
func (e *Engine) emulatesPerms(c *identity.Creds) bool {
	id := e.cfg.Identity
	return id.Virtual && (c.FSUID != id.UID || c.FSGID != id.GID || c.EUID != id.UID)
}

// checksFiles reports whether file permission checks need the object's
// guest view: a virtual identity without both DAC overrides.
func (e *Engine) checksFiles(c *identity.Creds) bool {
	return e.cfg.Identity.Virtual && !(c.Has(identity.CapDacOverride) && c.Has(identity.CapDacReadSearch))
}

// adopts reports whether host refusals of the invoking user's objects are
// repaired for the process (see adopt).
func (e *Engine) adopts(c *identity.Creds) bool {
	return e.cfg.Identity.Virtual && e.hostUID != 0 && c.Has(identity.CapDacOverride)
}

// mayAccess is generic_permission for guest credentials c on an object of
// type ftype with guest owner and mode ov. real selects the real ids, as
// access(2) without AT_EACCESS does (with a root real uid keeping the
// permitted capabilities, and others none).
func mayAccess(c *identity.Creds, ov override, ftype, mask uint32, real bool) error {
	uid, gid := c.FSUID, c.FSGID
	caps := c.Caps.Eff
	if real {
		uid, gid = c.RUID, c.RGID
		caps = 0
		if uid == 0 {
			caps = c.Caps.Prm
		}
	}
	has := func(cp int) bool { return caps&(1<<uint(cp)) != 0 }
	var bits uint32
	switch {
	case ov.uid == uid:
		bits = (ov.mode >> 6) & 7
	case ov.gid == gid || contains(c.Groups, ov.gid):
		bits = (ov.mode >> 3) & 7
	default:
		bits = ov.mode & 7
	}
	if mask&^bits == 0 {
		return nil
	}
	if ftype == unix.S_IFDIR {
		if mask&permWrite == 0 && has(identity.CapDacReadSearch) || has(identity.CapDacOverride) {
			return nil
		}
		return unix.EACCES
	}
	if mask == permRead && has(identity.CapDacReadSearch) {
		return nil
	}
	if (mask&permExec == 0 || ov.mode&0o111 != 0) && has(identity.CapDacOverride) {
		return nil
	}
	return unix.EACCES
}

// permittedObj checks mask on the object with status st reached by fd or
// path p (see readOverride).
func (e *Engine) permittedObj(r *Request, p string, fd int, st *unix.Stat_t, mask uint32, real bool) error {
	c := r.Proc.Creds()
	if !e.checksFiles(&c) && !real {
		return e.adopt(r, &c, p, fd, st, mask)
	}
	ov := e.currentOwner(p, fd, st)
	if err := mayAccess(&c, ov, st.Mode&unix.S_IFMT, mask, real); err != nil {
		return err
	}
	return e.adopt(r, &c, p, fd, st, mask)
}

// permitted checks mask (permRead|permWrite|permExec) on a resolved object
// for the calling process; real selects the real ids (access(2) without
// AT_EACCESS).
func (e *Engine) permitted(r *Request, l *vfs.Lookup, mask uint32, real bool) error {
	if !e.cfg.Identity.Virtual || l.Magic || l.VirtualLink || l.Obj == nil {
		return nil
	}
	if l.Mount != nil && l.Mount.Kind == vfs.KindProc {
		// procfs owners follow each process's ids, which the host's
		// entries cannot show; the host's own checks (ptrace access)
		// stand.
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(l.Obj.FD(), &st); err != nil {
		return err
	}
	return e.permittedObj(r, hostPath(l, false), -1, &st, mask, real)
}

// permittedFD checks mask on the object a host descriptor names.
func (e *Engine) permittedFD(r *Request, fd int, mask uint32) error {
	if !e.cfg.Identity.Virtual {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	return e.permittedObj(r, "", fd, &st, mask, false)
}

// adopt settles an object of the invoking user's whose host mode would
// refuse mask to kbox, for a process whose capabilities let it through
// (root): its current view is recorded and the host owner bits opened.
func (e *Engine) adopt(r *Request, c *identity.Creds, p string, fd int, st *unix.Stat_t, mask uint32) error {
	if !e.adopts(c) || st.Uid != e.hostUID || !xattrCapable(st.Mode) {
		return nil
	}
	want := mask
	if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Mode&0o111 == 0 {
		want &^= permExec // refused to root as well
	}
	if (st.Mode>>6)&want == want {
		return nil
	}
	ov, had := e.readOverride(p, fd, st)
	if !had {
		ov = e.currentOwner(p, fd, st)
	}
	if err := e.settle(p, fd, st, ov, had); err != nil {
		e.Verbosef("pid %d: opening the host mode of a %s for root failed: %v", r.Tgid, fileTypeName(st.Mode), err)
	}
	return nil
}

// mayDelete adds the sticky-directory rule to removing or replacing the
// object victim in the directory dirFD: in a sticky directory only the
// owner of the entry or of the directory (or CAP_FOWNER) may.
func (e *Engine) mayDelete(r *Request, dirFD, victimFD int) error {
	c := r.Proc.Creds()
	if !e.checksFiles(&c) && c.Has(identity.CapFowner) {
		return nil
	}
	var dst, vst unix.Stat_t
	if unix.Fstat(dirFD, &dst) != nil || unix.Fstat(victimFD, &vst) != nil {
		return nil // the host operation reports it
	}
	dir := e.currentOwner("", dirFD, &dst)
	if dir.mode&unix.S_ISVTX == 0 || c.Has(identity.CapFowner) || dir.uid == c.FSUID {
		return nil
	}
	if victim := e.currentOwner("", victimFD, &vst); victim.uid == c.FSUID {
		return nil
	}
	return e.refuse(r, unix.EPERM, "the directory is sticky and neither it nor the entry is owned by %d", c.FSUID)
}

// openMask is the permission an open with flags needs.
func openMask(flags uint64) uint32 {
	var m uint32
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		m = permRead
	case unix.O_WRONLY:
		m = permWrite
	default:
		m = permRead | permWrite
	}
	if flags&unix.O_TRUNC != 0 {
		m |= permWrite
	}
	return m
}

func contains(list []uint32, v uint32) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// mayRename checks a rename for the guest: write and search permission on
// both directories and the sticky rule for the entries it removes or
// replaces (the host checks are those of the invoking user).
func (e *Engine) mayRename(r *Request, oldL, newL *vfs.Lookup) error {
	if !e.cfg.Identity.Virtual {
		return nil
	}
	for _, l := range []*vfs.Lookup{oldL, newL} {
		if err := e.permittedFD(r, l.Parent.FD(), permWrite|permExec); err != nil {
			return err
		}
		if l.Exists() && l.Obj != nil {
			if err := e.mayDelete(r, l.Parent.FD(), l.Obj.FD()); err != nil {
				return err
			}
		}
	}
	// A directory moved to another parent has its ".." rewritten.
	if oldL.IsDir() && !sameObject(oldL.Parent.FD(), newL.Parent.FD()) {
		return e.permitted(r, oldL, permWrite, false)
	}
	return nil
}

// sameObject reports whether two descriptors name one inode.
func sameObject(a, b int) bool {
	var sa, sb unix.Stat_t
	return a == b || unix.Fstat(a, &sa) == nil && unix.Fstat(b, &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
