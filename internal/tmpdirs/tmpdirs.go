// Package tmpdirs owns the host directories kbox creates for one run (the
// private /tmp, /dev/shm, the exec directory): each is held locked (flock)
// by the kbox that made it for as long as it runs, so that a later run can
// tell the leftovers of a kbox that was killed before its cleanup (SIGKILL,
// a crash, a power cut) from the directories of a kbox still running, and
// remove them.
package tmpdirs

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Prefix starts the name of every directory this package makes (and of
// nothing else: CleanStale removes only these).
const Prefix = "kbox-run-"

// Dir is a directory held for the run.
type Dir struct {
	Path string
	lock int
}

// Make creates a fresh directory in the system's temporary directory,
// named Prefix+kind+"-"+random, with mode perm (applied exactly, whatever
// the umask), and locks it for the run.
func Make(kind string, perm uint32) (*Dir, error) {
	// Made under a name CleanStale ignores, locked, then renamed: another
	// kbox's CleanStale never sees it unlocked.
	tmp, err := os.MkdirTemp("", "kbox-new-")
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(tmp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	p := filepath.Join(filepath.Dir(tmp), Prefix+kind+"-"+strings.TrimPrefix(filepath.Base(tmp), "kbox-new-"))
	if err = unix.Fchmod(fd, perm); err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		unix.Close(fd)
		os.RemoveAll(tmp)
		return nil, err
	}
	return &Dir{Path: p, lock: fd}, nil
}

// Remove deletes the directory and releases its lock.
func (d *Dir) Remove() {
	if d == nil || d.lock < 0 {
		return
	}
	removeTree(d.Path)
	unix.Close(d.lock)
	d.lock = -1
}

// CleanStale removes the directories of earlier runs of this user that
// no running kbox holds. It returns the paths it removed.
func CleanStale() []string {
	tmp := os.TempDir()
	uid := uint32(os.Geteuid())
	var removed []string
	for _, name := range candidates(tmp) {
		p := filepath.Join(tmp, name)
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != uid {
			continue
		}
		if !strings.Contains(filepath.Base(p)[len(Prefix):], "-") {
			continue
		}
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
			// Nobody holds it: its kbox is gone.
			if removeTree(p) == nil {
				removed = append(removed, p)
			}
		}
		unix.Close(fd)
	}
	return removed
}

// candidates lists the entries of dir named Prefix+..., directories or of
// an unknown type. It runs beside every start and the temporary directory
// of a busy machine is large (1567 entries on the development VM):
// filepath.Glob made a string of every name and matched each against the
// pattern (4.8% of the CPU samples of kbox starts); this reads the
// directory with large getdents calls and copies only the names that
// match.
func candidates(dir string) []string {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	var out []string
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return out
		}
		out = appendCandidates(out, buf[:n])
	}
}

// appendCandidates appends the matching names of a getdents64 buffer
// (struct linux_dirent64: inode 8, offset 8, record length 2, type 1,
// then the NUL-terminated name).
func appendCandidates(out []string, b []byte) []string {
	const nameOff = 19
	for len(b) >= nameOff {
		reclen := int(b[16]) | int(b[17])<<8
		if reclen < nameOff || reclen > len(b) {
			return out
		}
		typ, name := b[18], b[nameOff:reclen]
		if i := indexNUL(name); i >= 0 {
			name = name[:i]
		}
		if (typ == unix.DT_DIR || typ == unix.DT_UNKNOWN) && len(name) > len(Prefix) && string(name[:len(Prefix)]) == Prefix {
			out = append(out, string(name))
		}
		b = b[reclen:]
	}
	return out
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// removeTree removes dir and everything in it, also what the guest made
// unsearchable or unwritable (chmod 0 on a directory of its own in the
// private /tmp, which os.RemoveAll cannot enter as the unprivileged
// owner): such directories are made accessible first. Nothing is
// followed: each directory is reached by a no-follow open relative to
// its parent, and changed through that descriptor.
func removeTree(dir string) error {
	if os.RemoveAll(dir) == nil {
		return nil
	}
	parent, err := unix.Open(filepath.Dir(dir), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	unlockTree(parent, filepath.Base(dir), 0)
	return os.RemoveAll(dir)
}

// unlockTree gives directory name in parent, and every directory below
// it, mode 0700 (their owner may always chmod them).
func unlockTree(parent int, name string, depth int) {
	if depth > 4096 {
		return
	}
	p, err := unix.Openat(parent, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	// fchmod refuses O_PATH descriptors; its /proc/self/fd link names
	// the directory itself.
	unix.Chmod("/proc/self/fd/"+strconv.Itoa(p), 0o700)
	d, err := unix.Openat(p, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	unix.Close(p)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(d), name)
	defer f.Close()
	ents, _ := f.ReadDir(-1)
	for _, e := range ents {
		if e.IsDir() {
			unlockTree(d, e.Name(), depth+1)
		}
	}
}
