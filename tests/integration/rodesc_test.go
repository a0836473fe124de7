package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Read-only mounts hold against calls that change a file through a
// descriptor (hostile-guest F6): fchmod, fchown, the AT_EMPTY_PATH forms of
// fchownat and fchmodat2, futimens (utimensat and futimesat with a NULL
// path), fsetxattr, fremovexattr and the inode ioctls need no write access
// to the descriptor, only ownership of the file. On a :ro bind and on the
// default root (the host's / read-only) each fails with EROFS and the host
// file is left exactly as it was; on a writable bind each works (and under
// -0 chown is recorded, not applied). kbox's ownership record can never be
// set by the guest.

// fdMetaOps is the guest's sc program: $P the victim file, $D a directory
// beside it, $U/$G the owner fchown gives.
const fdMetaOps = "open $P O_RDONLY , fchmod @1 0777 , fchown @1 $U $G , fchownat @1 '' $U $G AT_EMPTY_PATH , " +
	"fchmodat2 @1 '' 0777 AT_EMPTY_PATH , utimensat @1 (null) 5 5 , utimensat @1 '' 5 5 AT_EMPTY_PATH , " +
	"futimesat @1 (null) 5 5 , fsetxattr @1 user.kbox_t val , fremovexattr @1 user.pre , chattr @1 0x40 , " +
	"fsxattr @1 0x80 , fsetxattr @1 user.containers.override_stat 0:0:4755:file , ftruncate @1 0 , fallocate @1 10 , " +
	"open $D O_RDONLY|O_DIRECTORY , fchmod @16 0700 , open $P O_PATH , fchmodat2 @18 '' 0777 AT_EMPTY_PATH , " +
	"fchownat @18 '' $U $G AT_EMPTY_PATH , flistxattr @1 , removexattr $P user.containers.override_stat"

// fdMetaWant is what sc prints: the changing calls fail with EROFS on a
// read-only mount and succeed on a writable one.
func fdMetaWant(readOnly bool) []string {
	change := func(op string) string {
		if readOnly {
			return op + ": err EROFS"
		}
		return op + ": ok 0"
	}
	list := "flistxattr: ok user.kbox_t"
	if readOnly {
		list = "flistxattr: ok user.pre"
	}
	return []string{"open: ok *", change("fchmod"), change("fchown"), change("fchownat"), change("fchmodat2"),
		change("utimensat"), change("utimensat"), change("futimesat"), change("fsetxattr"), change("fremovexattr"),
		change("chattr"), change("fsxattr"), "fsetxattr: err EPERM", "ftruncate: err EINVAL", "fallocate: err EBADF",
		"open: ok *", change("fchmod"), "open: ok *", change("fchmodat2"), change("fchownat"), list,
		"removexattr: err EPERM"}
}

// fileState is everything the calls could change on the host.
type fileState struct {
	mode, uid, gid uint32
	mtime, ctime   unix.Timespec
	xattrs         string
	flags          uint32
}

func hostFileState(t *testing.T, path string) fileState {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatalf("host lstat %s: %v", path, err)
	}
	s := fileState{mode: st.Mode, uid: st.Uid, gid: st.Gid, mtime: st.Mtim, ctime: st.Ctim}
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(path, buf)
	if err != nil {
		t.Fatalf("host listxattr %s: %v", path, err)
	}
	var kv []string
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 256)
		m, _ := unix.Lgetxattr(path, name, v)
		kv = append(kv, name+"="+string(v[:max(m, 0)]))
	}
	sort.Strings(kv)
	s.xattrs = strings.Join(kv, ",")
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("host open %s: %v", path, err)
		}
		defer unix.Close(fd)
		f, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
		if err != nil {
			t.Fatalf("host FS_IOC_GETFLAGS %s: %v", path, err)
		}
		s.flags = f
	}
	return s
}

// fdMetaVictim creates a directory holding the victim file v (0640, with
// the xattr user.pre) and a directory d, both owned by owner.
func fdMetaVictim(t *testing.T, owner int) string {
	t.Helper()
	dir := mkTempDir(t, "kbox-it-rodesc-")
	v := filepath.Join(dir, "v")
	writeFile(t, v, "victim\n", 0o640)
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if !xattrSupported(dir) {
		t.Skipf("the host file system under %s has no user.* xattrs", dir)
	}
	if err := unix.Setxattr(v, "user.pre", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	if fd, err := unix.Open(v, unix.O_RDONLY, 0); err == nil {
		_, ferr := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
		unix.Close(fd)
		if ferr != nil {
			t.Skipf("the host file system under %s has no inode flags (FS_IOC_GETFLAGS: %v)", dir, ferr)
		}
	}
	for _, p := range []string{v, filepath.Join(dir, "d")} {
		if owner != os.Getuid() {
			if err := os.Lchown(p, owner, owner); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// TestReadOnlyDescriptors runs the descriptor calls on a :ro bind, on the
// default root and on a writable bind (also with -0), in every tier, as
// the invoking user and unprivileged.
func TestReadOnlyDescriptors(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	for _, tier := range testedTiers(t, allTiers) {
		for _, mount := range []string{"robind", "defaultroot", "rwbind", "rwbind-0"} {
			forEachVariant(t, tier+"/"+mount+"/", func(t *testing.T, v variant) {
				rootID := mount == "rwbind-0"
				if rootID && v.uid() == 0 {
					t.Skip("-0 records ownership only for an unprivileged user")
				}
				dir := fdMetaVictim(t, v.uid())
				u, g := strconv.Itoa(v.uid()), strconv.Itoa(v.gid())
				if v.uid() == 0 {
					u, g = "12345", "12345" // the real root: a change of owner
				}
				if rootID {
					u, g = "0", "0" // recorded
				}
				args := []string{"--syscall-mode=" + tier}
				sc, guestDir := "/bin/sc", "/mnt-rodesc"
				switch mount {
				case "robind":
					args = append(args, "-r", root, "-b", dir+":/var:ro")
					guestDir = "/var"
				case "defaultroot":
					sc, guestDir = filepath.Join(root, "bin/sc"), dir
				default:
					args = append(args, "-r", root, "-b", dir+":/home")
					guestDir = "/home"
				}
				if rootID {
					args = append(args, "-0")
				}
				ops := strings.NewReplacer("$P", guestDir+"/v", "$D", guestDir+"/d", "$U", u, "$G", g).Replace(fdMetaOps)
				opts := runOpts{Unpriv: v.unpriv, Args: append(append(args, "-v", "--", sc), scArgs(ops)...)}
				before := hostFileState(t, filepath.Join(dir, "v"))
				beforeDir := hostFileState(t, filepath.Join(dir, "d"))
				out, errOut, code := runKbox(t, opts)
				readOnly := mount == "robind" || mount == "defaultroot"
				if code != 0 {
					t.Errorf("%s: exit status %d\nstderr:\n%s", cmdline(opts), code, errOut)
				}
				if diff := compareLines(fdMetaWant(readOnly), lines(out)); diff != "" {
					t.Errorf("%s\n%sstderr:\n%s", cmdline(opts), diff, errOut)
				}
				after := hostFileState(t, filepath.Join(dir, "v"))
				afterDir := hostFileState(t, filepath.Join(dir, "d"))
				if readOnly {
					if after != before || afterDir != beforeDir {
						t.Errorf("%s changed the host file on a read-only mount:\nbefore %+v\nafter  %+v\ndir before %+v\ndir after  %+v",
							cmdline(opts), before, after, beforeDir, afterDir)
					}
					if !strings.Contains(errOut, "on the read-only mount") {
						t.Errorf("%s: no -v line names the read-only mount\nstderr:\n%s", cmdline(opts), errOut)
					}
					return
				}
				wantUID := uint32(v.uid())
				if v.uid() == 0 {
					wantUID = 12345
				}
				if after.mode&0o7777 != 0o777 || after.uid != wantUID || after.mtime.Sec != 5 || after.flags&0x40 == 0 ||
					afterDir.mode&0o7777 != 0o700 {
					t.Errorf("%s: the writable mount's file is %+v (dir %+v), want mode 0777, owner %d, mtime 5, flag 0x40 (dir mode 0700)",
						cmdline(opts), after, afterDir, wantUID)
				}
				wantX := "user.kbox_t=val"
				if rootID {
					// chown by the virtual root is recorded for kbox, hidden from the guest.
					if !strings.Contains(after.xattrs, "user.containers.override_stat=0:0:") {
						t.Errorf("%s: -0 chown not recorded: xattrs %q", cmdline(opts), after.xattrs)
					}
					wantX = "user.containers.override_stat="
				}
				if !strings.Contains(after.xattrs, wantX) || strings.Contains(after.xattrs, "user.pre") {
					t.Errorf("%s: host xattrs %q, want %s and no user.pre", cmdline(opts), after.xattrs, wantX)
				}
			})
		}
	}
}

// TestOwnershipRecordReserved: a guest can neither forge nor remove kbox's
// ownership record, through any xattr call, and does not see it.
func TestOwnershipRecordReserved(t *testing.T) {
	t.Parallel()
	for _, tier := range testedTiers(t, allTiers) {
		forEachVariant(t, tier+"/", func(t *testing.T, v variant) {
			if v.uid() == 0 {
				t.Skip("-0 records ownership only for an unprivileged user")
			}
			root := freshRoot(t, v.uid())
			if !xattrSupported(root) {
				t.Skipf("the host file system under %s has no user.* xattrs", root)
			}
			f := filepath.Join(root, "home/user/f")
			writeFile(t, f, "x", 0o644)
			chownTree(t, f, v.uid())
			ops := "chown /home/user/f 0 0 , stat /home/user/f , listxattr /home/user/f , getxattr /home/user/f user.containers.override_stat , " +
				"setxattr /home/user/f user.containers.override_stat 7:7:4755:file , lsetxattr /home/user/f user.containers.override_stat 7:7:4755:file , " +
				"removexattr /home/user/f user.containers.override_stat , lremovexattr /home/user/f user.containers.override_stat , " +
				"open /home/user/f O_RDONLY , fgetxattr @9 user.containers.override_stat , flistxattr @9 , " +
				"fsetxattr @9 user.containers.override_stat 7:7:4755:file , fremovexattr @9 user.containers.override_stat , " +
				"setxattr /home/user/f user.other v , listxattr /home/user/f , flistxattr @9 , stat /home/user/f"
			opts := runOpts{Unpriv: v.unpriv, Args: append([]string{"--syscall-mode=" + tier, "-r", root, "-0", "--", "/bin/sc"}, scArgs(ops)...)}
			out, errOut, code := runKbox(t, opts)
			want := []string{"chown: ok 0", "stat: ok uid=0 gid=0", "listxattr: ok", "getxattr: err ENODATA",
				"setxattr: err EPERM", "lsetxattr: err EPERM", "removexattr: err EPERM", "lremovexattr: err EPERM",
				"open: ok *", "fgetxattr: err ENODATA", "flistxattr: ok", "fsetxattr: err EPERM", "fremovexattr: err EPERM",
				"setxattr: ok 0", "listxattr: ok user.other", "flistxattr: ok user.other", "stat: ok uid=0 gid=0"}
			if code != 0 {
				t.Errorf("%s: exit status %d\nstderr:\n%s", cmdline(opts), code, errOut)
			}
			if diff := compareLines(want, lines(out)); diff != "" {
				t.Errorf("%s\n%sstderr:\n%s", cmdline(opts), diff, errOut)
			}
			b := make([]byte, 256)
			n, err := unix.Getxattr(f, "user.containers.override_stat", b)
			if err != nil || !bytes.HasPrefix(b[:n], []byte("0:0:")) {
				t.Errorf("host record %q, %v; want kbox's own 0:0:...", b[:max(n, 0)], err)
			}
		})
	}
}
