package launch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/netuser"
	"github.com/kbox-go/kbox/internal/vfs"
)

// NameServiceFiles are the host files -R and -S bring into the guest
// read-only (when the host has them), so that it resolves names as the
// host does, as proot -R does.
func NameServiceFiles() []string {
	return []string{"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf"}
}

// buildNamespace turns the root and bind flags into a mount table. On
// error nothing is left behind.
func buildNamespace(s spec) (ns *vfs.Namespace, err error) {
	ns = vfs.NewNamespace()
	defer func() {
		if err != nil {
			ns.RemovePrivate()
			ns.Close()
			ns = nil
		}
	}()
	if s.root.Kind == RootHost {
		if s.overlay {
			// The host's / as the lower layer: the guest writes to
			// the upper directory only (docs/overlay.md).
			if err := mountOverlay(ns, s, "/"); err != nil {
				return ns, err
			}
		} else if err := ns.Add("/", "/", true, vfs.KindBind); err != nil {
			return ns, failf(ExitFailure, "mounting the host's / read-only: %v", unwrapMount(err))
		}
		// /proc is read-only except each process's own entries (the
		// resolver's rule for every procfs mount); /dev is kbox's private
		// one, as with -R/-S.
		var sfs unix.Statfs_t
		if unix.Statfs("/proc", &sfs) == nil && sfs.Type == unix.PROC_SUPER_MAGIC {
			if err := ns.Add("/proc", "/proc", false, vfs.KindProc); err != nil {
				return ns, failf(ExitFailure, "mounting /proc: %v", unwrapMount(err))
			}
		}
		if err := ns.AddDev("/dev"); err != nil {
			return ns, failf(ExitFailure, "mounting /dev: %v", unwrapMount(err))
		}
	} else {
		var st unix.Stat_t
		switch err := unix.Stat(s.root.Dir, &st); {
		case err != nil:
			return ns, failf(ExitFailure, "guest root %s: %v", s.root.Dir, err)
		case st.Mode&unix.S_IFMT != unix.S_IFDIR:
			return ns, failf(ExitFailure, "guest root %s: not a directory", s.root.Dir)
		}
		root, err := hostPath(s.root.Dir)
		if err != nil {
			return ns, failf(ExitFailure, "guest root %s: %v", s.root.Dir, err)
		}
		if s.overlay {
			if err := mountOverlay(ns, s, root); err != nil {
				return ns, err
			}
		} else if err := ns.Add("/", root, s.readOnly, vfs.KindBind); err != nil {
			return ns, failf(ExitFailure, "guest root %s: %v", root, unwrapMount(err))
		}
		if s.root.Kind != RootPlain {
			// The host's /proc (read-only except each process's own
			// entries: the resolver's rule for every procfs mount) and
			// /sys (read-only), kbox's private /dev (vfs.AddDev) and a
			// private /tmp. Their mount points are kbox's: nothing is
			// made in the root.
			for _, m := range []struct {
				guest string
				ro    bool
			}{{"/proc", false}, {"/sys", true}} {
				if _, err := ns.AddBind(m.guest, m.guest, vfs.BindOptions{ReadOnly: m.ro}); err != nil {
					return ns, failf(ExitFailure, "mounting the host's %s: %v", m.guest, unwrapMount(err))
				}
			}
			if err := ns.AddDev("/dev"); err != nil {
				return ns, failf(ExitFailure, "mounting /dev: %v", unwrapMount(err))
			}
			if err := ns.AddPrivate("/tmp", "tmp", 0o1777); err != nil {
				return ns, failf(ExitFailure, "mounting the private /tmp: %v", unwrapMount(err))
			}
		}
	}
	for _, b := range s.binds {
		src, err := hostPath(b.Src)
		if err != nil {
			return ns, failf(ExitFailure, "--bind-mount %s:%s: %s: %v", b.Src, b.Dst, b.Src, err)
		}
		if _, err := ns.AddBind(b.Dst, src, vfs.BindOptions{ReadOnly: b.RO}); err != nil {
			return ns, failf(ExitFailure, "--bind-mount %s:%s: %v", b.Src, b.Dst, unwrapMount(err))
		}
	}
	if (s.root.Kind == RootRecommended || s.root.Kind == RootSystem) && guestDir(ns, "/etc") == nil {
		// Into the guest's own /etc only (a root without one keeps the
		// freedom to make it), over a file, a link or nothing: a guest's
		// directory of that name stays.
		for _, f := range nameServiceBinds(s.binds, fileExists) {
			if f == resolvConf && s.netUser != nil {
				continue // the forwarder's, below
			}
			src, err := hostPath(f)
			if err != nil || guestDir(ns, f) == nil {
				continue
			}
			if _, err := ns.AddBind(f, src, vfs.BindOptions{ReadOnly: true, NoFollow: true}); err != nil {
				return ns, failf(ExitFailure, "binding the host's %s: %v", f, unwrapMount(err))
			}
		}
	}
	if s.netUser != nil && guestDir(ns, "/etc") == nil && len(nameServiceBinds(s.binds, func(f string) bool { return f == resolvConf })) == 1 {
		// --net=user: the guest's resolver asks the forwarder, 10.0.2.3,
		// whatever the root's or the host's file says (unless a bind of
		// the user's covers it).
		if err := ns.AddPrivateFile(resolvConf, "resolv", netuser.ResolvConf()); err != nil {
			return ns, failf(ExitFailure, "binding the --net=user resolv.conf: %v", unwrapMount(err))
		}
	}
	ns.Seal()
	return ns, nil
}

// resolvConf is the resolver's configuration file.
const resolvConf = "/etc/resolv.conf"

// nameServiceBinds are the NameServiceFiles to bind: those the host has
// (exists) and that no bind of the user's covers.
func nameServiceBinds(binds []bind, exists func(string) bool) []string {
	var out []string
next:
	for _, f := range NameServiceFiles() {
		if !exists(f) {
			continue
		}
		for _, b := range binds {
			if f == b.Dst || strings.HasPrefix(f, strings.TrimSuffix(b.Dst, "/")+"/") {
				continue next
			}
		}
		out = append(out, f)
	}
	return out
}

// hostPath is the host object p names, links resolved: the path the
// kernel reports for it (in /proc/<pid>/fd links), which a mount's Host
// must be for those to map back into the guest.
func hostPath(p string) (string, error) {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return "", pe.Err
		}
		return "", err
	}
	return r, nil
}

// fileExists: path names a regular file (after links) on the host.
func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// unwrapMount drops vfs's "bad mount: " prefix: the caller says what the
// mount was.
func unwrapMount(err error) error {
	if msg, ok := strings.CutPrefix(err.Error(), vfs.ErrBadMount.Error()+": "); ok {
		return errors.New(msg)
	}
	return err
}

// guestDir reports whether the canonical guest path p is a directory in
// ns, and says what it is otherwise.
func guestDir(ns *vfs.Namespace, p string) error {
	l, err := ns.Resolve(&vfs.Context{Cwd: "/", Root: "/"}, "", p, vfs.FollowFinal)
	if err != nil {
		return err
	}
	defer l.Release()
	switch {
	case !l.Exists():
		return unix.ENOENT
	case !l.IsDir():
		return unix.ENOTDIR
	}
	return nil
}

// describeErrno words an errno from a guest lookup.
func describeErrno(err error) string {
	switch {
	case errors.Is(err, unix.ENOENT):
		return "does not exist"
	case errors.Is(err, unix.ENOTDIR):
		return "not a directory"
	case errors.Is(err, unix.EACCES):
		return "permission denied"
	}
	return fmt.Sprint(err)
}
