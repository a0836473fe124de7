package vfs

import (
	"fmt"
	"os"
	"path"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/tmpdirs"
)

// DevNodes are the host device nodes a private /dev (AddDev) contains:
// what any process legitimately uses, and nothing that reaches hardware,
// the kernel log or another user's terminal.
var DevNodes = []string{"null", "zero", "full", "random", "urandom", "tty", "ptmx"}

// devLinks are the symbolic links of a private /dev.
var devLinks = [][2]string{{"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"},
	{"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}}

// AddPrivate mounts a fresh, empty host directory with the given mode at
// guest path guest, writable, removed at exit (RemovePrivate): a private
// /tmp or /dev/shm. kind names the host directory (tmpdirs.Make: it is
// locked while this kbox lives, and a later run removes it if this one is
// killed before RemovePrivate).
func (ns *Namespace) AddPrivate(guest, kind string, mode uint32) error {
	_, err := ns.addPrivate(guest, kind, mode, false)
	return err
}

func (ns *Namespace) addPrivate(guest, kind string, mode uint32, readOnly bool) (string, error) {
	d, err := tmpdirs.Make(kind, mode)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadMount, err)
	}
	if err := ns.Add(guest, d.Path, readOnly, KindTmp); err != nil {
		d.Remove()
		return "", err
	}
	ns.private = append(ns.private, d)
	return d.Path, nil
}

// AddDev mounts a private /dev at guest path guest, like a container's:
//
//   - a kbox-made directory, read-only to the guest and removed at exit,
//     holding an empty placeholder for each of DevNodes the host has, the
//     links fd -> /proc/self/fd and stdin/stdout/stderr ->
//     /proc/self/fd/0..2, and the directories pts and shm;
//   - over each placeholder, a file bind of the host's device node: its
//     data may be written (and the in-process tiers' Landlock rules allow
//     that), its metadata cannot be changed (ReadOnlyFor);
//   - pts: the host's devpts (KindPts: only the guest's own terminals are
//     visible in it);
//   - shm: a private writable directory (mode 1777) removed at exit.
//
// Nothing else of the host's /dev exists for the guest: no disks, no
// /dev/kmsg, no /dev/userfaultfd, no other terminal.
func (ns *Namespace) AddDev(guest string) error {
	// Mounted first (read-only to the guest), filled through the host
	// path: the directory is the namespace's from here on (RemovePrivate).
	dir, err := ns.addPrivate(guest, "dev", 0o755, true)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		return fmt.Errorf("%w: private /dev: %v", ErrBadMount, err)
	}
	nodes := map[string]string{} // name -> host path of the node
	for _, name := range DevNodes {
		// The host path the bind records is the node's own (a container's
		// /dev/ptmx may be a link to pts/ptmx), so that host paths the
		// kernel reports map back to the guest path.
		host, err := filepath.EvalSymlinks("/dev/" + name)
		var st unix.Stat_t
		if err != nil || unix.Stat(host, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
			continue // the host has no such device: neither has the guest
		}
		if err := os.WriteFile(path.Join(dir, name), nil, 0o666); err != nil {
			return fail(err)
		}
		nodes[name] = host
	}
	for _, l := range devLinks {
		if err := os.Symlink(l[1], path.Join(dir, l[0])); err != nil {
			return fail(err)
		}
	}
	for _, d := range []string{"pts", "shm"} {
		if err := os.Mkdir(path.Join(dir, d), 0o755); err != nil {
			return fail(err)
		}
	}
	for _, name := range DevNodes {
		if host, ok := nodes[name]; ok {
			if err := ns.Add(path.Join(guest, name), host, false, KindBind); err != nil {
				return err
			}
		}
	}
	var sfs unix.Statfs_t
	if unix.Statfs("/dev/pts", &sfs) == nil && sfs.Type == unix.DEVPTS_SUPER_MAGIC {
		if err := ns.Add(path.Join(guest, "pts"), "/dev/pts", false, KindBind); err != nil {
			return err
		}
	}
	return ns.AddPrivate(path.Join(guest, "shm"), "shm", 0o1777)
}
