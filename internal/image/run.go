package image

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/launch"
)

// DefaultPath is the PATH a run gets when the image sets none (docker's).
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// RunOptions is what kbox run adds to the flags: the root and the image's
// configuration.
type RunOptions struct {
	Dir        string   // the root (made absolute by the caller)
	Args       []string // what followed DIR: replaces the image's Cmd
	Entrypoint *string  // --entrypoint: replaces the image's Entrypoint ("" clears it) and drops its Cmd
	HostEnv    []string // kbox's environment (TERM is carried over)
}

// ApplyRun fills o, which holds kbox's flags (no root flag), from the
// image's configuration as docker run applies it: the root as
// --recommended-root, the guest's identity from User (root as -0, other
// users as --change-id, both overridden by those flags), the environment
// from Env (with PATH, HOME and the host's TERM added when it lacks them;
// the environment flags apply on top), the working directory from
// WorkingDir unless -w, and the command Entrypoint + Cmd, with the
// arguments after DIR replacing Cmd.
func ApplyRun(o *launch.Options, r RunOptions) error {
	m, err := ReadMeta(r.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s has no image configuration (%s): make the root with kbox image pull or unpack, or run it with kbox -S", r.Dir, MetaPath(r.Dir))
	}
	if err != nil {
		return err
	}
	c := m.Config
	o.Roots = []launch.Root{{Kind: launch.RootRecommended, Dir: r.Dir}}
	home := "/"
	if !o.RootID && !o.ChangeSet {
		u, g, h, err := lookupUser(r.Dir, c.User)
		if err != nil {
			return err
		}
		if h != "" {
			home = h
		}
		if u == 0 && g == 0 {
			o.RootID = true
		} else {
			o.ChangeID, o.ChangeSet = fmt.Sprintf("%d:%d", u, g), true
		}
	}
	env := append([]string(nil), c.Env...)
	has := func(n string) bool {
		for _, kv := range env {
			if strings.HasPrefix(kv, n+"=") {
				return true
			}
		}
		return false
	}
	if !has("PATH") {
		env = append(env, DefaultPath)
	}
	if !has("HOME") {
		env = append(env, "HOME="+home)
	}
	if !has("TERM") {
		for _, kv := range r.HostEnv {
			if strings.HasPrefix(kv, "TERM=") {
				env = append(env, kv)
			}
		}
	}
	o.HostEnv = env
	if !o.WorkDirSet && c.WorkingDir != "" {
		o.WorkDir, o.WorkDirSet = c.WorkingDir, true
	}
	entry, cmd := c.Entrypoint, c.Cmd
	if r.Entrypoint != nil {
		entry, cmd = nil, nil
		if *r.Entrypoint != "" {
			entry = []string{*r.Entrypoint}
		}
	}
	if len(r.Args) > 0 {
		cmd = r.Args
	}
	argv := append(append([]string(nil), entry...), cmd...)
	if len(argv) > 0 {
		o.Command, o.CommandSet, o.Args = argv[0], true, argv[1:]
	} else {
		o.CommandSet, o.Args = false, nil
	}
	return nil
}

// lookupUser resolves an image's User (NAME or UID, optionally :GROUP or
// :GID) with the root's /etc/passwd and /etc/group, as docker does: a
// numeric user need not exist, its group is then 0.
func lookupUser(root, spec string) (uid, gid uint32, home string, err error) {
	if spec == "" {
		return 0, 0, "/root", nil
	}
	user, group, hasGroup := strings.Cut(spec, ":")
	pw, _ := readRootFile(root, "etc/passwd")
	found := false
	if n, err := strconv.ParseUint(user, 10, 32); err == nil {
		uid = uint32(n)
		for _, f := range pw {
			if len(f) >= 6 && f[2] == user {
				found = true
				g, _ := strconv.ParseUint(f[3], 10, 32)
				gid, home = uint32(g), f[5]
				break
			}
		}
	} else {
		for _, f := range pw {
			if len(f) >= 6 && f[0] == user {
				found = true
				u, err1 := strconv.ParseUint(f[2], 10, 32)
				g, err2 := strconv.ParseUint(f[3], 10, 32)
				if err1 != nil || err2 != nil {
					return 0, 0, "", fmt.Errorf("the image's user %q: a bad /etc/passwd line", spec)
				}
				uid, gid, home = uint32(u), uint32(g), f[5]
				break
			}
		}
		if !found {
			return 0, 0, "", fmt.Errorf("the image's user %q is not in its /etc/passwd", user)
		}
	}
	if hasGroup {
		if n, err := strconv.ParseUint(group, 10, 32); err == nil {
			gid = uint32(n)
		} else {
			gr, _ := readRootFile(root, "etc/group")
			ok := false
			for _, f := range gr {
				if len(f) >= 3 && f[0] == group {
					g, err := strconv.ParseUint(f[2], 10, 32)
					if err != nil {
						break
					}
					gid, ok = uint32(g), true
					break
				}
			}
			if !ok {
				return 0, 0, "", fmt.Errorf("the image's group %q is not in its /etc/group", group)
			}
		}
	}
	return uid, gid, home, nil
}

// readRootFile reads a colon-separated file of the root, resolving its
// path inside the root (a symlink there cannot name a host file).
func readRootFile(root, rel string) ([][]string, error) {
	dfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat2(dfd, rel, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), filepath.Join(root, rel))
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", rel)
	}
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, strings.Split(line, ":"))
		}
	}
	return out, sc.Err()
}
