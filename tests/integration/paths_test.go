package integration

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// ---- host-side check helpers

func hostContent(t *testing.T, e *caseEnv, rel, want string) {
	t.Helper()
	b, err := os.ReadFile(e.at(rel))
	if err != nil || string(b) != want {
		t.Errorf("host %s: content %q, err %v; want %q (the guest's write did not land in ROOT)", e.at(rel), b, err, want)
	}
}

func hostMode(t *testing.T, e *caseEnv, rel string, want os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(e.at(rel))
	if err != nil || fi.Mode() != want {
		var got os.FileMode
		if fi != nil {
			got = fi.Mode()
		}
		t.Errorf("host %s: mode %v, err %v; want %v", e.at(rel), got, err, want)
	}
}

func hostAbsent(t *testing.T, e *caseEnv, rel string) {
	t.Helper()
	if _, err := os.Lstat(e.at(rel)); err == nil {
		t.Errorf("host %s exists, want it absent", e.at(rel))
	}
}

func hostLink(t *testing.T, e *caseEnv, rel, want string) {
	t.Helper()
	got, err := os.Readlink(e.at(rel))
	if err != nil || got != want {
		t.Errorf("host readlink %s = %q, %v; want %q (stored exactly as given)", e.at(rel), got, err, want)
	}
}

func hostMtime(t *testing.T, e *caseEnv, rel string, want int64) {
	t.Helper()
	fi, err := os.Lstat(e.at(rel))
	if err != nil || fi.ModTime().Unix() != want {
		var got int64
		if fi != nil {
			got = fi.ModTime().Unix()
		}
		t.Errorf("host %s: mtime %d, err %v; want %d", e.at(rel), got, err, want)
	}
}

func hostStat(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Errorf("host lstat %s: %v", path, err)
		return nil
	}
	return &st
}

// field extracts key=value from an sc output line.
func field(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// ---- the table

func pathCases() []scCase {
	return []scCase{
		// ---------------------------------------------------------- open family
		{
			name: "open_read",
			args: "open f O_RDONLY , read @1 100 , read @1 100 , close @1 , read @1 1",
			want: []string{"open: ok *", `read: ok 6 hello\x0a`, "read: ok 0", "close: ok 0", "read: err EBADF"},
		},
		{
			name: "open_create",
			args: "open new O_WRONLY|O_CREAT|O_EXCL 0640 , write @1 abc , fstat @1 , open new O_WRONLY|O_CREAT|O_EXCL 0640 , " +
				"open f O_WRONLY|O_CREAT|O_EXCL 0644 , open f O_WRONLY|O_TRUNC , fstat @6 , open f O_WRONLY|O_APPEND , write @8 more , readfile f",
			want: []string{"open: ok *", "write: ok 3", "fstat: ok type=reg mode=0640 size=3 nlink=1", "open: err EEXIST",
				"open: err EEXIST", "open: ok *", "fstat: ok type=reg size=0", "open: ok *", "write: ok 4", "readfile: ok more"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				hostContent(t, e, "new", "abc")
				hostMode(t, e, "new", 0o640)
				hostContent(t, e, "f", "more")
			},
		},
		{
			name: "open_errors",
			args: "open d O_WRONLY , open d O_RDWR , open d O_RDONLY|O_CREAT 0644 , open f O_RDONLY|O_DIRECTORY , open nope O_RDONLY , " +
				"open nope/x O_RDONLY , open f/x O_RDONLY , open f/ O_RDONLY , open nope/ O_WRONLY|O_CREAT 0644 , open loop O_RDONLY , " +
				"open lf O_RDONLY|O_NOFOLLOW , open ld/ O_RDONLY|O_NOFOLLOW , open '' O_RDONLY , open (null) O_RDONLY",
			want: []string{"open: err EISDIR", "open: err EISDIR", "open: err EISDIR", "open: err ENOTDIR", "open: err ENOENT",
				"open: err ENOENT", "open: err ENOTDIR", "open: err ENOTDIR", "open: err EISDIR", "open: err ELOOP",
				"open: err ELOOP", "open: ok *", "open: err ENOENT", "open: err EFAULT"},
			check: func(t *testing.T, e *caseEnv, _ []string) { hostAbsent(t, e, "nope") },
		},
		{
			name: "open_symlinks",
			args: "open lf O_RDONLY , read @1 100 , open abs O_RDONLY , read @3 100 , open ld/x O_RDONLY , read @5 100 , " +
				"open dangling O_WRONLY|O_CREAT|O_EXCL 0644 , open dangling O_WRONLY|O_CREAT 0600 , lstat nowhere , " +
				"open f O_PATH , fstat @10 , open $W/ld/../f O_RDONLY , fstat @12",
			want: []string{"open: ok *", `read: ok 6 hello\x0a`, "open: ok *", `read: ok 11 kbox-guest\x0a`, "open: ok *", "read: ok 1 x",
				"open: err EEXIST", "open: ok *", "lstat: ok type=reg mode=0600 size=0",
				"open: ok *", "fstat: ok type=reg size=6", "open: ok *", "fstat: ok type=reg size=6"},
			check: func(t *testing.T, e *caseEnv, _ []string) { hostMode(t, e, "nowhere", 0o600) },
		},
		{
			name: "openat_dirfd",
			args: "open d O_RDONLY|O_DIRECTORY , openat @1 x O_RDONLY , read @2 10 , openat @1 ../f O_RDONLY , fstat @4 , " +
				"openat @1 /etc/hostname O_RDONLY , read @6 100 , openat cwd f O_RDONLY , fstat @8 , openat 99 f O_RDONLY , " +
				"open f O_RDONLY , openat @11 x O_RDONLY , openat @11 /etc/hostname O_RDONLY , openat @1 toroot O_RDONLY , " +
				"openat @1 . O_RDONLY|O_DIRECTORY , fstat @15 , openat 99 /etc/hostname O_RDONLY , openat @1 new O_WRONLY|O_CREAT 0600",
			want: []string{"open: ok *", "openat: ok *", "read: ok 1 x", "openat: ok *", "fstat: ok type=reg size=6",
				"openat: ok *", `read: ok 11 kbox-guest\x0a`, "openat: ok *", "fstat: ok type=reg size=6", "openat: err EBADF",
				"open: ok *", "openat: err ENOTDIR", "openat: ok *", "openat: err ENOENT",
				"openat: ok *", "fstat: ok type=dir", "openat: ok *", "openat: ok *"},
			check: func(t *testing.T, e *caseEnv, _ []string) { hostMode(t, e, "d/new", 0o600) },
		},
		{
			name: "openat2",
			args: "open d O_RDONLY|O_DIRECTORY , openat2 cwd f O_RDONLY 0 0 , openat2 @1 ../f O_RDONLY 0 RESOLVE_BENEATH , " +
				"openat2 @1 /x O_RDONLY 0 RESOLVE_BENEATH , openat2 @1 x O_RDONLY 0 RESOLVE_BENEATH , " +
				"openat2 @1 toroot O_RDONLY 0 RESOLVE_IN_ROOT , read @6 10 , openat2 @1 ../../../x O_RDONLY 0 RESOLVE_IN_ROOT , read @8 10 , " +
				"openat2 @1 /x O_RDONLY 0 RESOLVE_IN_ROOT , openat2 @1 toroot O_RDONLY 0 RESOLVE_BENEATH , " +
				"openat2 cwd lf O_RDONLY 0 RESOLVE_NO_SYMLINKS , openat2 cwd ld/x O_RDONLY 0 RESOLVE_NO_SYMLINKS , " +
				"openat2 cwd f O_RDONLY 0644 0 , openat2 cwd f O_RDONLY 0 0x1000 , openat2 cwd d/../f O_RDONLY 0 RESOLVE_BENEATH , " +
				"openat2 @1 toroot O_RDONLY 0 0 , openat2 @1 newin O_WRONLY|O_CREAT 0644 RESOLVE_IN_ROOT , " +
				"openat2 @1 ../../../../newout O_WRONLY|O_CREAT 0644 RESOLVE_IN_ROOT , openat2 @1 ../escaped O_WRONLY|O_CREAT 0644 RESOLVE_BENEATH",
			want: []string{"open: ok *", "openat2: ok *", "openat2: err EXDEV",
				"openat2: err EXDEV", "openat2: ok *",
				"openat2: ok *", "read: ok 1 x", "openat2: ok *", "read: ok 1 x",
				"openat2: ok *", "openat2: err EXDEV",
				"openat2: err ELOOP", "openat2: err ELOOP",
				"openat2: err EINVAL", "openat2: err EINVAL", "openat2: ok *",
				"openat2: err ENOENT", "openat2: ok *",
				"openat2: ok *", "openat2: err EXDEV"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				hostMode(t, e, "d/newin", 0o644)
				hostMode(t, e, "d/newout", 0o644)
				hostAbsent(t, e, "escaped")
				if _, err := os.Lstat(e.rootAt("newout")); err == nil {
					t.Errorf("RESOLVE_IN_ROOT create escaped the dirfd: %s/newout exists", e.root)
				}
			},
		},
		{
			name: "creat",
			args: "creat c 0600 , write @1 zz , fstat @1 , creat f 0600 , fstat @4 , creat d 0644 , creat nope/c 0644",
			want: []string{"creat: ok *", "write: ok 2", "fstat: ok type=reg mode=0600 size=2", "creat: ok *",
				"fstat: ok type=reg mode=0644 size=0", "creat: err EISDIR", "creat: err ENOENT"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				hostContent(t, e, "c", "zz")
				hostMode(t, e, "c", 0o600)
				hostContent(t, e, "f", "")
			},
		},
		// ---------------------------------------------------------- stat family
		{
			name: "stat_types",
			args: "stat f , stat d , stat lf , lstat lf , stat ld , lstat ld , lstat dangling , stat dangling , stat loop , lstat loop , " +
				"stat abs , lstat abs , stat exe , stat ro , stat e , stat f/ , stat d/ , lstat ld/ , stat f/x , stat nope , lstat (null)",
			want: []string{"stat: ok type=reg mode=0644 size=6 nlink=1", "stat: ok type=dir mode=0755 nlink=2",
				"stat: ok type=reg mode=0644 size=6", "lstat: ok type=lnk mode=0777 size=1", "stat: ok type=dir",
				"lstat: ok type=lnk size=1", "lstat: ok type=lnk size=7", "stat: err ENOENT", "stat: err ELOOP",
				"lstat: ok type=lnk size=4", "stat: ok type=reg size=11", "lstat: ok type=lnk size=13",
				"stat: ok type=reg mode=0755", "stat: ok type=reg mode=0444 size=3", "stat: ok type=dir nlink=2",
				"stat: err ENOTDIR", "stat: ok type=dir", "lstat: ok type=dir", "stat: err ENOTDIR", "stat: err ENOENT",
				"lstat: err EFAULT"},
		},
		{
			name: "stat_inode",
			args: "stat f , lstat lf , stat lf",
			want: []string{"stat: ok type=reg", "lstat: ok type=lnk", "stat: ok type=reg"},
			check: func(t *testing.T, e *caseEnv, out []string) {
				if len(out) != 3 {
					return
				}
				f, lf := hostStat(t, e.at("f")), hostStat(t, e.at("lf"))
				if f == nil || lf == nil {
					return
				}
				for i, want := range []uint64{f.Ino, lf.Ino, f.Ino} {
					if got := field(out[i], "ino"); got != strconv.FormatUint(want, 10) {
						t.Errorf("line %d %q: ino %s, want the host inode %d", i+1, out[i], got, want)
					}
				}
			},
		},
		{
			name: "fstat_fstatat",
			args: "open f O_RDONLY , fstat @1 , fstatat cwd lf 0 , fstatat cwd lf AT_SYMLINK_NOFOLLOW , open d O_RDONLY|O_DIRECTORY , " +
				"fstatat @5 x 0 , fstatat @5 toroot AT_SYMLINK_NOFOLLOW , fstatat @1 '' AT_EMPTY_PATH , fstatat @1 '' 0 , " +
				"fstatat @5 '' AT_EMPTY_PATH , fstatat @1 x 0 , fstatat 99 f 0 , fstat 99 , fstatat cwd ld/ AT_SYMLINK_NOFOLLOW , " +
				"fstatat cwd '' AT_EMPTY_PATH , fstatat @5 toroot 0",
			want: []string{"open: ok *", "fstat: ok type=reg size=6", "fstatat: ok type=reg size=6", "fstatat: ok type=lnk size=1",
				"open: ok *", "fstatat: ok type=reg size=1", "fstatat: ok type=lnk size=2", "fstatat: ok type=reg size=6",
				"fstatat: err ENOENT", "fstatat: ok type=dir", "fstatat: err ENOTDIR", "fstatat: err EBADF", "fstat: err EBADF",
				"fstatat: ok type=dir", "fstatat: ok type=dir", "fstatat: err ENOENT"},
		},
		{
			name: "statx",
			args: "statx cwd f 0 , statx cwd lf AT_SYMLINK_NOFOLLOW , statx cwd lf 0 , statx cwd d 0 , open f O_RDONLY , " +
				"statx @5 '' AT_EMPTY_PATH , statx cwd nope 0 , statx cwd dangling 0 , statx cwd abs 0 , statx @5 x 0 , " +
				"statx cwd f AT_STATX_DONT_SYNC , statx cwd f 0x80000000 , statx cwd f AT_STATX_FORCE_SYNC|AT_STATX_DONT_SYNC",
			want: []string{"statx: ok type=reg mode=0644 size=6 nlink=1", "statx: ok type=lnk size=1", "statx: ok type=reg size=6",
				"statx: ok type=dir", "open: ok *", "statx: ok type=reg size=6", "statx: err ENOENT", "statx: err ENOENT",
				"statx: ok type=reg size=11", "statx: err ENOTDIR", "statx: ok type=reg size=6", "statx: err EINVAL", "statx: err EINVAL"},
		},
		// ---------------------------------------------------------- access
		{
			name: "access",
			args: "access f F_OK , access nope F_OK , access exe X_OK , access f X_OK , access f R_OK|W_OK , access dangling F_OK , " +
				"access d X_OK , access lf R_OK , access f/ F_OK , access f 0x10 , faccessat cwd f R_OK , " +
				"faccessat cwd dangling F_OK AT_SYMLINK_NOFOLLOW , faccessat2 cwd dangling F_OK AT_SYMLINK_NOFOLLOW , " +
				"faccessat2 cwd exe X_OK AT_EACCESS , faccessat2 cwd f F_OK 0x8000 , open d O_RDONLY|O_DIRECTORY , " +
				"faccessat @16 x R_OK , faccessat2 @16 '' X_OK AT_EMPTY_PATH , faccessat2 @16 '' F_OK 0 , access abs R_OK",
			want: []string{"access: ok 0", "access: err ENOENT", "access: ok 0", "access: err EACCES", "access: ok 0", "access: err ENOENT",
				"access: ok 0", "access: ok 0", "access: err ENOTDIR", "access: err EINVAL", "faccessat: ok 0",
				"faccessat: err ENOENT", "faccessat2: ok 0",
				"faccessat2: ok 0", "faccessat2: err EINVAL", "open: ok *",
				"faccessat: ok 0", "faccessat2: ok 0", "faccessat2: err ENOENT", "access: ok 0"},
		},
		{
			name: "access_permissions",
			args: "access ro W_OK , access ro R_OK , open ro O_WRONLY , truncate ro 0 , chmod e 0 , access e X_OK , ls e , chdir e",
			want: []string{"access: err EACCES", "access: ok 0", "open: err EACCES", "truncate: err EACCES", "chmod: ok 0",
				"access: err EACCES", "ls: err EACCES", "chdir: err EACCES"},
			wantRoot: []string{"access: ok 0", "access: ok 0", "open: ok *", "truncate: ok 0", "chmod: ok 0",
				"access: ok 0", "ls: ok", "chdir: ok 0"},
		},
		// ---------------------------------------------------------- readlink
		{
			name: "readlink",
			args: "readlink lf , readlink abs , readlink dangling , readlink ld , readlink f , readlink nope , readlink ld/ , " +
				"readlinkat cwd loop , open d O_RDONLY|O_DIRECTORY , readlinkat @9 toroot , open d/x O_RDONLY , " +
				"readlinkat @11 '' , readlinkat @9 x , readlink f/",
			want: []string{"readlink: ok f", "readlink: ok /etc/hostname", "readlink: ok nowhere", "readlink: ok d",
				"readlink: err EINVAL", "readlink: err ENOENT", "readlink: err EINVAL", "readlinkat: ok loop", "open: ok *",
				"readlinkat: ok /x", "open: ok *", "readlinkat: err ENOENT", "readlinkat: err EINVAL", "readlink: err ENOTDIR"},
		},
		{
			// A symlink itself, opened O_PATH|O_NOFOLLOW. The seccomp tier
			// gives a stand-in (docs/architecture.md, "O_PATH"), which the
			// raw fstat syscall, left in BPF without a virtual identity,
			// would show; glibc's fstat is fstatat(AT_EMPTY_PATH).
			name: "o_path_symlink",
			args: "open lf O_PATH|O_NOFOLLOW , fstatat @1 '' AT_EMPTY_PATH , readlinkat @1 '' , read @1 1 , fchdir @1",
			want: []string{"open: ok *", "fstatat: ok type=lnk mode=0777 size=1", "readlinkat: ok f", "read: err EBADF", "fchdir: err ENOTDIR"},
		},
		// ---------------------------------------------------------- mkdir / mknod
		{
			name: "mkdir",
			args: "mkdir nd 0750 , stat nd , mkdir nd , mkdir f , mkdir nope/x , mkdir f/x , mkdirat cwd nd2 0700 , stat nd2 , " +
				"open d O_RDONLY|O_DIRECTORY , mkdirat @9 sub , stat d/sub , mkdir dangling , mkdir lf , mkdir nd3/ , stat nd3 , " +
				"mkdir $W/absdir 0755 , mkdir '' , stat d",
			want: []string{"mkdir: ok 0", "stat: ok type=dir mode=0750 nlink=2", "mkdir: err EEXIST", "mkdir: err EEXIST",
				"mkdir: err ENOENT", "mkdir: err ENOTDIR", "mkdirat: ok 0", "stat: ok type=dir mode=0700",
				"open: ok *", "mkdirat: ok 0", "stat: ok type=dir mode=0755", "mkdir: err EEXIST", "mkdir: err EEXIST",
				"mkdir: ok 0", "stat: ok type=dir", "mkdir: ok 0", "mkdir: err ENOENT", "stat: ok type=dir nlink=3"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				hostMode(t, e, "nd", os.ModeDir|0o750)
				hostMode(t, e, "d/sub", os.ModeDir|0o755)
				hostMode(t, e, "absdir", os.ModeDir|0o755)
				hostAbsent(t, e, "nowhere")
			},
		},
		{
			name: "mknod",
			args: "mknod fifo1 fifo 0644 , stat fifo1 , mknod sock1 sock 0640 , stat sock1 , mknod reg1 reg 0600 , stat reg1 , " +
				"mknodat cwd fifo2 fifo 0600 , lstat fifo2 , mknod f fifo 0644 , mknod nope/x fifo 0644 , mknod z0 0 0644 , stat z0",
			want: []string{"mknod: ok 0", "stat: ok type=fifo mode=0644 size=0", "mknod: ok 0", "stat: ok type=sock mode=0640",
				"mknod: ok 0", "stat: ok type=reg mode=0600 size=0", "mknodat: ok 0", "lstat: ok type=fifo mode=0600",
				"mknod: err EEXIST", "mknod: err ENOENT", "mknod: ok 0", "stat: ok type=reg mode=0644"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				hostMode(t, e, "fifo1", os.ModeNamedPipe|0o644)
				hostMode(t, e, "sock1", os.ModeSocket|0o640)
				hostMode(t, e, "reg1", 0o600)
			},
		},
		{
			name:   "mknod_devices",
			policy: true,
			args:   "mknod chr1 chr 0644 1 3 , mknodat cwd blk1 blk 0600 8 0 , lstat chr1 , lstat blk1",
			want:   []string{"mknod: err EPERM", "mknodat: err EPERM", "lstat: err ENOENT", "lstat: err ENOENT"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				hostAbsent(t, e, "chr1")
				hostAbsent(t, e, "blk1")
			},
		},
		{
			name:   "mknod_devices_root_id",
			flags:  []string{"-0"},
			policy: true,
			args:   "mknod chr1 chr 0644 1 3 , mknodat cwd blk1 blk 0600 8 0",
			want:   []string{"mknod: err EPERM", "mknodat: err EPERM"},
			check:  func(t *testing.T, e *caseEnv, _ []string) { hostAbsent(t, e, "chr1") },
		},
		// ---------------------------------------------------------- unlink / rmdir
		{
			name: "unlink_rmdir",
			args: "unlink lf , lstat lf , stat f , unlink d , rmdir d , rmdir f , rmdir e , lstat e , rmdir . , rmdir d/.. , " +
				"rmdir ld , unlinkat cwd ld 0 , lstat ld , unlinkat cwd d AT_REMOVEDIR , unlinkat cwd f AT_REMOVEDIR , unlink nope , " +
				"unlink dangling , unlink f/ , unlinkat cwd exe 0x1 , unlink d/x , unlink d/toroot , unlinkat cwd d AT_REMOVEDIR , lstat d",
			want: []string{"unlink: ok 0", "lstat: err ENOENT", "stat: ok type=reg", "unlink: err EISDIR", "rmdir: err ENOTEMPTY",
				"rmdir: err ENOTDIR", "rmdir: ok 0", "lstat: err ENOENT", "rmdir: err EINVAL", "rmdir: err ENOTEMPTY",
				"rmdir: err ENOTDIR", "unlinkat: ok 0", "lstat: err ENOENT", "unlinkat: err ENOTEMPTY", "unlinkat: err ENOTDIR",
				"unlink: err ENOENT", "unlink: ok 0", "unlink: err ENOTDIR", "unlinkat: err EINVAL", "unlink: ok 0", "unlink: ok 0",
				"unlinkat: ok 0", "lstat: err ENOENT"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				for _, p := range []string{"lf", "e", "ld", "d", "dangling"} {
					hostAbsent(t, e, p)
				}
				hostContent(t, e, "f", "hello\n")
			},
		},
		// ---------------------------------------------------------- rename
		{
			name: "rename",
			args: "rename f g , stat g , lstat f , rename g d , rename d d/sub , rename nope x , renameat cwd g cwd h , " +
				"renameat2 cwd h cwd exe RENAME_NOREPLACE , renameat2 cwd h cwd exe RENAME_EXCHANGE , readfile exe , readfile h , " +
				"rename e d , rename d e , stat e/x , lstat d , rename lf lf2 , readlink lf2 , rename ro ro , rename . x , " +
				"renameat2 cwd h cwd nope RENAME_EXCHANGE , renameat2 cwd h cwd z RENAME_NOREPLACE|RENAME_EXCHANGE , " +
				"rename exe e/ , rename h/ z , rename $W/ro $W/e/ro2",
			want: []string{"rename: ok 0", "stat: ok type=reg size=6", "lstat: err ENOENT", "rename: err EISDIR", "rename: err EINVAL",
				"rename: err ENOENT", "renameat: ok 0",
				"renameat2: err EEXIST", "renameat2: ok 0", "readfile: ok hello", "readfile: ok #!/bin/sh",
				"rename: err ENOTEMPTY", "rename: ok 0", "stat: ok type=reg size=1", "lstat: err ENOENT", "rename: ok 0",
				"readlink: ok f", "rename: ok 0", "rename: err EBUSY",
				"renameat2: err ENOENT", "renameat2: err EINVAL",
				"rename: err ENOTDIR", "rename: err ENOTDIR", "rename: ok 0"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				hostContent(t, e, "exe", "hello\n")
				hostContent(t, e, "h", "#!/bin/sh\nexit 0\n")
				hostContent(t, e, "e/x", "x")
				hostContent(t, e, "e/ro2", "ro\n")
				hostAbsent(t, e, "d")
				hostLink(t, e, "lf2", "f")
			},
		},
		// ---------------------------------------------------------- link / symlink
		{
			name: "link",
			args: "link f hl , stat f , stat hl , link d dl , link nope x , link f exe , linkat cwd lf cwd hl2 0 , lstat hl2 , " +
				"linkat cwd lf cwd hl3 AT_SYMLINK_FOLLOW , lstat hl3 , open d O_RDONLY|O_DIRECTORY , linkat @11 x cwd hl4 0 , " +
				"stat d/x , link f nope/x , link f/ z , linkat cwd f cwd z 0x1",
			want: []string{"link: ok 0", "stat: ok type=reg nlink=2", "stat: ok type=reg nlink=2 size=6", "link: err EPERM",
				"link: err ENOENT", "link: err EEXIST", "linkat: ok 0", "lstat: ok type=lnk nlink=2",
				"linkat: ok 0", "lstat: ok type=reg nlink=3", "open: ok *", "linkat: ok 0",
				"stat: ok type=reg nlink=2", "link: err ENOENT", "link: err ENOTDIR", "linkat: err EINVAL"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				f, hl, hl3 := hostStat(t, e.at("f")), hostStat(t, e.at("hl")), hostStat(t, e.at("hl3"))
				if f != nil && hl != nil && hl3 != nil && (f.Ino != hl.Ino || f.Ino != hl3.Ino || f.Nlink != 3) {
					t.Errorf("host: f ino %d nlink %d, hl ino %d, hl3 ino %d; want one inode with 3 links", f.Ino, f.Nlink, hl.Ino, hl3.Ino)
				}
				hostLink(t, e, "hl2", "f")
				hostAbsent(t, e, "dl")
			},
		},
		{
			name: "symlink",
			args: "symlink nowhere2 s1 , readlink s1 , lstat s1 , stat s1 , symlink /etc/passwd s2 , readlink s2 , stat s2 , " +
				"symlink $ROOT/etc/hostname s3 , readlink s3 , stat s3 , symlink x f , symlink x nope/s , open d O_RDONLY|O_DIRECTORY , " +
				"symlinkat ../f @13 s4 , readlinkat @13 s4 , stat d/s4 , symlink '' s5 , symlinkat x 99 s6 , symlink a/../../b s7 , readlink s7",
			want: []string{"symlink: ok 0", "readlink: ok nowhere2", "lstat: ok type=lnk size=8", "stat: err ENOENT",
				"symlink: ok 0", "readlink: ok /etc/passwd", "stat: ok type=reg",
				"symlink: ok 0", "readlink: ok $ROOT/etc/hostname", "stat: err ENOENT", "symlink: err EEXIST", "symlink: err ENOENT",
				"open: ok *", "symlinkat: ok 0", "readlinkat: ok ../f", "stat: ok type=reg size=6", "symlink: err ENOENT",
				"symlinkat: err EBADF", "symlink: ok 0", "readlink: ok a/../../b"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				hostLink(t, e, "s1", "nowhere2")
				hostLink(t, e, "s2", "/etc/passwd")
				hostLink(t, e, "s3", e.root+"/etc/hostname")
				hostLink(t, e, "d/s4", "../f")
				hostLink(t, e, "s7", "a/../../b")
			},
		},
		// ---------------------------------------------------------- chmod / chown
		{
			name: "chmod",
			args: "chmod f 0600 , stat f , chmod lf 0640 , stat f , lstat lf , fchmodat cwd f 0604 , stat f , " +
				"fchmodat2 cwd lf 0600 AT_SYMLINK_NOFOLLOW , fchmodat2 cwd f 0644 AT_SYMLINK_NOFOLLOW , stat f , open f O_RDONLY , " +
				"fchmod @11 0444 , stat f , chmod nope 0644 , chmod d 01755 , stat d , chmod dangling 0644 , fchmodat2 cwd f 0600 0x1 , " +
				"open d O_RDONLY|O_DIRECTORY , fchmodat @19 x 0600 , stat d/x , fchmodat2 @11 '' 0640 AT_EMPTY_PATH , stat f",
			want: []string{"chmod: ok 0", "stat: ok mode=0600", "chmod: ok 0", "stat: ok mode=0640", "lstat: ok type=lnk mode=0777",
				"fchmodat: ok 0", "stat: ok mode=0604",
				"fchmodat2: err EOPNOTSUPP", "fchmodat2: ok 0", "stat: ok mode=0644", "open: ok *",
				"fchmod: ok 0", "stat: ok mode=0444", "chmod: err ENOENT", "chmod: ok 0", "stat: ok type=dir mode=1755",
				"chmod: err ENOENT", "fchmodat2: err EINVAL",
				"open: ok *", "fchmodat: ok 0", "stat: ok mode=0600", "fchmodat2: ok 0", "stat: ok mode=0640"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				hostMode(t, e, "f", 0o640)
				hostMode(t, e, "d/x", 0o600)
				hostMode(t, e, "d", os.ModeDir|os.ModeSticky|0o755)
			},
		},
		{
			name: "chown_own_ids",
			args: "chown f $UID $GID , lchown lf $UID $GID , fchownat cwd f $UID $GID 0 , fchownat cwd lf -1 -1 AT_SYMLINK_NOFOLLOW , " +
				"open f O_RDONLY , fchown @5 -1 $GID , stat f , lstat lf , chown nope $UID $GID , fchownat cwd f $UID $GID 0x1 , " +
				"open d O_RDONLY|O_DIRECTORY , fchownat @11 '' $UID $GID AT_EMPTY_PATH",
			want: []string{"chown: ok 0", "lchown: ok 0", "fchownat: ok 0", "fchownat: ok 0",
				"open: ok *", "fchown: ok 0", "stat: ok type=reg uid=$UID gid=$GID", "lstat: ok type=lnk uid=$UID gid=$GID",
				"chown: err ENOENT", "fchownat: err EINVAL", "open: ok *", "fchownat: ok 0"},
		},
		{
			name:     "chown_other_ids",
			args:     "chown f 1234 1234 , stat f",
			want:     []string{"chown: err EPERM", "stat: ok uid=$UID gid=$GID"},
			wantRoot: []string{"chown: ok 0", "stat: ok uid=1234 gid=1234"},
		},
		// ---------------------------------------------------------- times
		{
			name: "utimes",
			args: "utime f 1000 2000000000 , utimes exe 1000 1500000000 , futimesat cwd ro 1 1600000000 , open d O_RDONLY|O_DIRECTORY , " +
				"futimesat @4 x 1 1700000000 , utimensat cwd lf 1 1800000000 AT_SYMLINK_NOFOLLOW , utimensat cwd e omit 1900000000 , " +
				"utime nope 1 1 , utimensat @4 '' 1 1100000000 AT_EMPTY_PATH , utimensat cwd f 1 1 0x1",
			after: `stat -c '%n %Y' f exe ro d/x e lf d`,
			want: []string{"utime: ok 0", "utimes: ok 0", "futimesat: ok 0", "open: ok *",
				"futimesat: ok 0", "utimensat: ok 0", "utimensat: ok 0",
				"utime: err ENOENT", "utimensat: ok 0", "utimensat: err EINVAL",
				"f 2000000000", "exe 1500000000", "ro 1600000000", "d/x 1700000000", "e 1900000000", "lf 1800000000", "d 1100000000"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				hostMtime(t, e, "f", 2000000000)
				hostMtime(t, e, "lf", 1800000000)
				hostMtime(t, e, "d/x", 1700000000)
			},
		},
		{
			name: "truncate",
			args: "truncate f 2 , stat f , truncate f 100 , stat f , truncate d 0 , truncate nope 0 , truncate lf 1 , stat f , " +
				"truncate f -1 , open f O_RDWR , ftruncate @10 0 , fstat @10 , open ro O_RDONLY , ftruncate @13 0",
			want: []string{"truncate: ok 0", "stat: ok size=2", "truncate: ok 0", "stat: ok size=100", "truncate: err EISDIR",
				"truncate: err ENOENT", "truncate: ok 0", "stat: ok size=1",
				"truncate: err EINVAL", "open: ok *", "ftruncate: ok 0", "fstat: ok size=0", "open: ok *", "ftruncate: err EINVAL"},
			check: func(t *testing.T, e *caseEnv, _ []string) { hostContent(t, e, "f", "") },
		},
		// ---------------------------------------------------------- cwd
		{
			name: "chdir_getcwd",
			args: "chdir ld , getcwd , chdir .. , getcwd , chdir / , chdir .. , getcwd , chdir $W/e , getcwd , " +
				"open $W/d O_RDONLY|O_DIRECTORY , fchdir @10 , getcwd , readfile x , chdir $W/f , chdir nope , fchdir 99 , " +
				"open /etc/hostname O_RDONLY , fchdir @17 , getcwd , chdir /../../.. , getcwd , chdir $W/ld/ , getcwd",
			want: []string{"chdir: ok 0", "getcwd: ok $W/d", "chdir: ok 0", "getcwd: ok $W", "chdir: ok 0", "chdir: ok 0",
				"getcwd: ok /", "chdir: ok 0", "getcwd: ok $W/e",
				"open: ok *", "fchdir: ok 0", "getcwd: ok $W/d", "readfile: ok x", "chdir: err ENOTDIR", "chdir: err ENOENT",
				"fchdir: err EBADF", "open: ok *", "fchdir: err ENOTDIR", "getcwd: ok $W/d", "chdir: ok 0", "getcwd: ok /",
				"chdir: ok 0", "getcwd: ok $W/d"},
		},
		{
			name: "dotdot_at_root",
			args: "stat /.. , readfile /../../etc/hostname , readfile ../../../../../../etc/hostname , chdir / , chdir .. , getcwd , " +
				"readfile ../etc/hostname , open /.. O_RDONLY|O_DIRECTORY , openat @8 etc/hostname O_RDONLY , read @9 100",
			want: []string{"stat: ok type=dir", "readfile: ok kbox-guest", "readfile: ok kbox-guest", "chdir: ok 0", "chdir: ok 0",
				"getcwd: ok /", "readfile: ok kbox-guest", "open: ok *", "openat: ok *", `read: ok 11 kbox-guest\x0a`},
		},
		{
			name: "ls",
			args: "ls . , ls d , ls e , ls f , ls nope , ls ld , ls $W/ld/",
			want: []string{"ls: ok abs,d,dangling,e,exe,f,ld,lf,loop,ro", "ls: ok toroot,x", "ls: ok", "ls: err ENOTDIR",
				"ls: err ENOENT", "ls: ok toroot,x", "ls: ok toroot,x"},
		},
		{
			name: "statfs",
			args: "statfs . , statfs nope , statfs f , statfs / , statfs lf",
			want: []string{"statfs: ok type=$FSTYPE", "statfs: err ENOENT", "statfs: ok type=$FSTYPE", "statfs: ok type=$FSTYPE",
				"statfs: ok type=$FSTYPE"},
		},
		// ---------------------------------------------------------- xattrs / inotify
		{
			name:      "xattr",
			needXattr: true,
			args: "setxattr f user.k v1 , getxattr f user.k , listxattr f , setxattr f user.k v2 XATTR_CREATE , " +
				"setxattr f user.n v XATTR_REPLACE , getxattr f user.missing , setxattr lf user.s 1 , getxattr f user.s , " +
				"lgetxattr lf user.s , lsetxattr lf user.t 1 , removexattr f user.k , listxattr f , llistxattr lf , " +
				"getxattr nope user.k , removexattr f user.k , setxattr f bogus.ns 1 , lremovexattr lf user.s , getxattr f user.s",
			want: []string{"setxattr: ok 0", "getxattr: ok v1", "listxattr: ok user.k", "setxattr: err EEXIST",
				"setxattr: err ENODATA", "getxattr: err ENODATA", "setxattr: ok 0", "getxattr: ok 1",
				"lgetxattr: err ENODATA", "lsetxattr: err EPERM", "removexattr: ok 0", "listxattr: ok user.s", "llistxattr: ok",
				"getxattr: err ENOENT", "removexattr: err ENODATA", "setxattr: err EOPNOTSUPP", "lremovexattr: err EPERM",
				"getxattr: ok 1"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				buf := make([]byte, 16)
				n, err := unix.Getxattr(e.at("f"), "user.s", buf)
				if err != nil || string(buf[:n]) != "1" {
					t.Errorf("host getxattr %s user.s = %q, %v; want \"1\"", filepath.Join(e.host, "f"), buf[:max(n, 0)], err)
				}
			},
		},
		{
			name: "inotify",
			args: "inotify f , inotify d , inotify nope , inotify lf , inotify dangling , inotify f/ , inotify $W/d/x",
			want: []string{"inotify: ok 1", "inotify: ok 1", "inotify: err ENOENT", "inotify: ok 1", "inotify: err ENOENT",
				"inotify: err ENOTDIR", "inotify: ok 1"},
		},
		// ---------------------------------------------------------- unix sockets
		{
			name: "unix_bind",
			args: "unix_bind s.sock , stat s.sock , unix_connect s.sock , unix_bind s.sock , unix_connect nope.sock , unix_connect f , " +
				"unix_bind $W/abs.sock , unix_bind nodir/x.sock , unix_bind ld/in.sock",
			want: []string{"unix_bind: ok *", "stat: ok type=sock mode=0755", "unix_connect: err ECONNREFUSED", "unix_bind: err EADDRINUSE",
				"unix_connect: err ENOENT", "unix_connect: err ECONNREFUSED", "unix_bind: ok *", "unix_bind: err ENOENT", "unix_bind: ok *"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				hostMode(t, e, "s.sock", os.ModeSocket|0o755)
				hostMode(t, e, "abs.sock", os.ModeSocket|0o755)
				hostMode(t, e, "d/in.sock", os.ModeSocket|0o755)
			},
		},
		{
			name: "unix_connect_host_listener",
			args: "unix_connect srv.sock , unix_connect $W/srv.sock , unix_connect ld/../srv.sock",
			want: []string{"unix_connect: ok *", "unix_connect: ok *", "unix_connect: ok *"},
			pre: func(t *testing.T, e *caseEnv) {
				p := filepath.Join(e.host, "srv.sock")
				l, err := net.Listen("unix", p)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				if err := os.Lchown(p, e.uid, e.gid); err != nil {
					t.Fatal(err)
				}
				go func() {
					for {
						c, err := l.Accept()
						if err != nil {
							return
						}
						c.Close()
					}
				}()
			},
		},
		// ---------------------------------------------------------- chroot / mount
		{
			// Started by real root, kbox leaves the guest no capabilities
			// (no CAP_SYS_CHROOT), so even uid 0 gets EPERM; --keep-caps
			// restores root's chroot (TestKeepCaps).
			name:   "chroot_without_root",
			args:   "chroot d , readfile /etc/hostname",
			want:   []string{"chroot: err EPERM", "readfile: ok kbox-guest"},
			policy: true,
		},
		{
			name:  "chroot_root_id",
			flags: []string{"-0"},
			args: "chroot d , readfile /x , readfile /toroot , chdir / , getcwd , ls / , ls .. , ls /.. , chdir .. , getcwd , " +
				"ls ../../.. , stat /etc/hostname , chroot / , ls / , open /.. O_RDONLY|O_DIRECTORY , openat @15 ../../x O_RDONLY , read @16 5",
			want: []string{"chroot: ok 0", "readfile: ok x", "readfile: ok x", "chdir: ok 0", "getcwd: ok /", "ls: ok toroot,x",
				"ls: ok toroot,x", "ls: ok toroot,x", "chdir: ok 0", "getcwd: ok /",
				"ls: ok toroot,x", "stat: err ENOENT", "chroot: ok 0", "ls: ok toroot,x", "open: ok *", "openat: ok *", "read: ok 1 x"},
		},
		{
			name:   "mount_denied",
			policy: true,
			args:   "mount none e tmpfs , mount $W/d $W/e (null) MS_BIND , umount2 / , umount2 $W/e MNT_DETACH",
			want:   []string{"mount: err EPERM", "mount: err EPERM", "umount2: err EPERM", "umount2: err EPERM"},
		},
		{
			name:   "mount_denied_root_id",
			flags:  []string{"-0"},
			policy: true,
			args:   "mount none e tmpfs , mount $W/d $W/e (null) MS_BIND , umount2 / , umount2 $W/e MNT_DETACH",
			want:   []string{"mount: err EPERM", "mount: err EPERM", "umount2: err EPERM", "umount2: err EPERM"},
		},
		// ---------------------------------------------------------- identity
		{
			name: "identity_plain",
			args: "getuid , geteuid , getresuid , getgid , getresgid , stat f",
			want: []string{"getuid: ok $UID", "geteuid: ok $UID", "getresuid: ok $UID,$UID,$UID", "getgid: ok $GID",
				"getresgid: ok $GID,$GID,$GID", "stat: ok uid=$UID gid=$GID"},
		},
		{
			name:     "identity_plain_setuid",
			args:     "setuid 0 , getuid",
			want:     []string{"setuid: err EPERM", "getuid: ok $UID"},
			wantRoot: []string{"setuid: ok 0", "getuid: ok 0"},
		},
		{
			name:  "identity_root_id",
			flags: []string{"-0"},
			args: "getuid , geteuid , getgid , getegid , getresuid , getresgid , stat f , stat /etc/hostname , " +
				"open newf O_WRONLY|O_CREAT 0644 , fstat @9 , mkdir newd , stat newd",
			want: []string{"getuid: ok 0", "geteuid: ok 0", "getgid: ok 0", "getegid: ok 0", "getresuid: ok 0,0,0", "getresgid: ok 0,0,0",
				"stat: ok uid=0 gid=0", "stat: ok uid=0 gid=0", "open: ok *", "fstat: ok uid=0 gid=0", "mkdir: ok 0",
				"stat: ok type=dir uid=0 gid=0"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				for _, p := range []string{"newf", "newd"} {
					if st := hostStat(t, e.at(p)); st != nil && (int(st.Uid) != e.uid || int(st.Gid) != e.gid) {
						t.Errorf("host %s owned by %d:%d, want the invoking %d:%d", p, st.Uid, st.Gid, e.uid, e.gid)
					}
				}
			},
		},
		{
			name:  "identity_root_id_drop",
			flags: []string{"-0"},
			args: "setresgid 1000 1000 1000 , setuid 1000 , getuid , geteuid , getresuid , getgid , setuid 0 , stat f , " +
				"open f O_WRONLY , open f O_RDONLY",
			want: []string{"setresgid: ok 0", "setuid: ok 0", "getuid: ok 1000", "geteuid: ok 1000", "getresuid: ok 1000,1000,1000",
				"getgid: ok 1000", "setuid: err EPERM", "stat: ok uid=0 gid=0", "open: err EACCES", "open: ok *"},
		},
		{
			name:  "identity_change_id",
			flags: []string{"--change-id", "1000:1000"},
			args: "getuid , geteuid , getresuid , getgid , getresgid , stat f , setuid 0 , setuid 1234 , setgid 0 , setuid 1000 , getuid , " +
				"open newf O_WRONLY|O_CREAT 0644 , fstat @12",
			want: []string{"getuid: ok 1000", "geteuid: ok 1000", "getresuid: ok 1000,1000,1000", "getgid: ok 1000",
				"getresgid: ok 1000,1000,1000", "stat: ok uid=1000 gid=1000", "setuid: err EPERM", "setuid: err EPERM",
				"setgid: err EPERM", "setuid: ok 0", "getuid: ok 1000", "open: ok *", "fstat: ok uid=1000 gid=1000"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				if st := hostStat(t, e.at("newf")); st != nil && (int(st.Uid) != e.uid || int(st.Gid) != e.gid) {
					t.Errorf("host newf owned by %d:%d, want the invoking %d:%d", st.Uid, st.Gid, e.uid, e.gid)
				}
			},
		},
		// ---------------------------------------------------------- writes land in ROOT
		{
			name: "writes_land_in_root",
			args: "open /tmp/kbox-w$N O_WRONLY|O_CREAT 0644 , write @1 guest-data , mkdir /home/user/d$N , " +
				"symlink target /home/user/l$N , rename $W/f /home/user/f$N , open $W/exe O_WRONLY|O_TRUNC , write @6 new",
			want: []string{"open: ok *", "write: ok 10", "mkdir: ok 0", "symlink: ok 0", "rename: ok 0", "open: ok *", "write: ok 3"},
			check: func(t *testing.T, e *caseEnv, _ []string) {
				n := strconv.Itoa(e.n)
				re := &caseEnv{host: e.root, root: e.root, view: e.view}
				hostContent(t, re, "tmp/kbox-w"+n, "guest-data")
				hostMode(t, re, "home/user/d"+n, os.ModeDir|0o755)
				hostLink(t, re, "home/user/l"+n, "target")
				hostContent(t, re, "home/user/f"+n, "hello\n")
				hostAbsent(t, e, "f")
				hostContent(t, e, "exe", "new")
			},
		},
	}
}

// kboxRunner runs a case under kbox -r ROOT.
func kboxRunner(scPath string, unpriv bool) scRunner {
	return func(t *testing.T, c *scCase, e *caseEnv) (string, string, string, int) {
		args := append([]string{"-r", e.root, "-w", e.guest}, c.flags...)
		args = append(append(args, "--"), guestArgv(c, e, scPath)...)
		opts := runOpts{Args: args, Unpriv: unpriv}
		out, errOut, code := runKbox(t, opts)
		return cmdline(opts), out, errOut, code
	}
}

// trapRunner runs sc under an in-process tier (trap or rewrite), which
// cannot fork,
// so a case's "after" commands (a shell checking the result) run in a
// second kbox invocation under the seccomp tier, on the same root; their
// output follows sc's, as it would in one shell.
func trapRunner(tier, scPath string, unpriv bool) scRunner {
	return func(t *testing.T, c *scCase, e *caseEnv) (string, string, string, int) {
		if c.forks {
			t.Skip("needs a second process: the trap tier runs single-process programs")
		}
		e.trap = true
		args := append([]string{"--syscall-mode=" + tier, "-r", e.root, "-w", e.guest}, c.flags...)
		args = append(append(args, "--", scPath), scArgs(e.expand(c.args))...)
		opts := runOpts{Args: args, Unpriv: unpriv}
		out, errOut, code := runKbox(t, opts)
		if c.after == "" {
			return cmdline(opts), out, errOut, code
		}
		after := append([]string{"-r", e.root, "-w", e.guest}, c.flags...)
		after = append(after, "--", "/bin/sh", "-c", e.expand(c.after))
		aopts := runOpts{Args: after, Unpriv: unpriv}
		aout, aerr, acode := runKbox(t, aopts)
		if acode != 0 {
			code = acode
		}
		return cmdline(opts) + " && " + cmdline(aopts), out + aout, errOut + aerr, code
	}
}

// TestPaths runs the syscall table under kbox with the static musl sc and
// the dynamic glibc sc, as the invoking user and unprivileged, in every tier.
func TestPaths(t *testing.T) {
	t.Parallel()
	for _, sc := range []string{"/bin/sc", "/bin/sc-glibc"} {
		t.Run(filepath.Base(sc), func(t *testing.T) {
			t.Parallel()
			runTableEveryTier(t, sc, pathCases)
		})
	}
}

// TestPathsNativeOracle runs the same table natively (chroot(8) into the
// root, no kbox) to validate the expectations themselves: a failure here is
// a bug in the table, not in kbox.  Cases that need kbox flags (virtual
// identities) or that kbox denies by policy where the real root may act are
// skipped.  Needs root.
func TestPathsNativeOracle(t *testing.T) {
	t.Parallel()
	if !isRoot() {
		t.Skip("the native oracle needs root (chroot)")
	}
	chroot, err := exec.LookPath("chroot")
	if err != nil {
		t.Skip("chroot(8) not found")
	}
	for _, v := range []variant{{"root", false}, {"unpriv", true}} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			var cases []scCase
			for _, c := range pathCases() {
				virtual := len(c.flags) > 0
				rootIDOnly := len(c.flags) == 1 && c.flags[0] == "-0"
				switch {
				case c.deviates, v.unpriv && virtual, !v.unpriv && virtual && !rootIDOnly, !v.unpriv && c.policy:
					continue
				}
				cases = append(cases, c)
			}
			uid, gid := 0, 0
			if v.unpriv {
				uid, gid = unprivUID, unprivUID
			}
			runTable(t, cases, uid, gid, !v.unpriv, func(t *testing.T, c *scCase, e *caseEnv) (string, string, string, int) {
				args := []string{}
				if v.unpriv {
					args = append(args, "--userspec="+strconv.Itoa(unprivUID)+":"+strconv.Itoa(unprivUID), "--groups="+strconv.Itoa(unprivUID))
				}
				args = append(args, e.root, "/bin/sh", "-c", `cd "$1" || exit 99; shift; exec "$@"`, "sh", e.guest)
				args = append(args, guestArgv(c, e, "/bin/sc")...)
				opts := runOpts{Bin: chroot, Args: args}
				out, errOut, code := runKbox(t, opts)
				return cmdline(opts), out, errOut, code
			})
		})
	}
}

// TestSystemRootPrivateTmp checks -S: virtual root, host /proc, and a
// private /tmp that is fresh for every run and never lands in ROOT/tmp.
func TestSystemRootPrivateTmp(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := freshRoot(t, v.uid())
		for run, c := range []struct {
			args string
			want []string
		}{
			{"getuid , open /tmp/x O_WRONLY|O_CREAT 0644 , fstat @2 , ls /tmp , statfs /proc , readfile /proc/self/comm , " +
				"unix_bind /tmp/s.sock , stat /tmp/s.sock , stat /etc/hostname , statfs /tmp",
				[]string{"getuid: ok 0", "open: ok *", "fstat: ok type=reg uid=0 gid=0", "ls: ok x", "statfs: ok type=0x9fa0",
					"readfile: ok sc", "unix_bind: ok *", "stat: ok type=sock uid=0 gid=0", "stat: ok uid=0 gid=0", "statfs: ok *"}},
			{"ls /tmp , stat /tmp", []string{"ls: ok", "stat: ok type=dir mode=1777"}},
		} {
			opts := runOpts{Unpriv: v.unpriv, Args: append([]string{"-S", root, "--", "/bin/sc"}, scArgs(c.args)...)}
			out, errOut, code := runKbox(t, opts)
			if code != 0 {
				t.Errorf("%s: exit status %d\nstderr:\n%s", cmdline(opts), code, errOut)
			}
			if diff := compareLines(c.want, lines(out)); diff != "" {
				t.Errorf("run %d: %s\n%sstderr:\n%s", run+1, cmdline(opts), diff, errOut)
			}
		}
		for _, p := range []string{"tmp/x", "tmp/s.sock"} {
			if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
				t.Errorf("%s exists in ROOT: -S /tmp writes must go to the private /tmp", p)
			}
		}
	})
}
