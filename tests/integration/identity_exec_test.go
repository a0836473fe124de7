package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// x86_64 numbers for the calls sc has no op of its own for (see
// /usr/include/x86_64-linux-gnu/asm/unistd_64.h); sc's "syscall" op passes
// them raw.  The tables are amd64-only, as runTable notes.
// The host architecture's numbers (internal/abi), not x86_64's.
var (
	nrGetgroups       = nr("getgroups")
	nrSetreuid        = nr("setreuid")
	nrSetregid        = nr("setregid")
	nrSetfsuid        = nr("setfsuid")
	nrSetfsgid        = nr("setfsgid")
	nrInotifyAddWatch = nr("inotify_add_watch")
	nrInotifyInit1    = nr("inotify_init1")
	nrExecveat        = nr("execveat")
	setreuidOp        = "syscall " + nrSetreuid
	setregidOp        = "syscall " + nrSetregid
	setfsuidOp        = "syscall " + nrSetfsuid
	setfsgidOp        = "syscall " + nrSetfsgid
	execveatOp        = "syscall " + nrExecveat
)

const (
	atFDCWD           = "-100"
	atSymlinkNoFollow = "0x100"
	atEmptyPath       = "0x1000"
	inNonblock        = "2048" // IN_NONBLOCK == O_NONBLOCK
	inCreate          = "256"
)

const (
	rootID        = "-0"
	changeIDFlag  = "--change-id"
	changeIDValue = "1000:1000"
	helloMusl     = "hello from musl"
	helloGlibc    = "hello from glibc"
	// Two struct inotify_event: wd 1 IN_CREATE "inotify.x", wd 2
	// IN_CREATE|IN_ISDIR "sub", names NUL-padded to 16 bytes.
	inotifyEventsWant  = `read: ok 64 \x01\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00inotify.x\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x01\x00@\x00\x00\x00\x00\x10\x00\x00\x00sub\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00`
	scriptText         = "#!/bin/sh\necho script \"$0\" \"$1\"\n"
	garbageText        = "this is not a program\n"
	wrongArchELFHeader = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00" // ELF64 EXEC for aarch64
)

// identityCases: the set*id family under a virtual identity.  Expected
// values follow the kernel's rules (kernel/sys.c, kernel/groups.c,
// security/commoncap.c); TestIdentityExecNativeOracle checks them natively.
func identityCases() []scCase {
	root := []string{rootID}
	change := []string{changeIDFlag, changeIDValue}
	return []scCase{
		{
			name:  "setreuid_root_id",
			flags: root,
			args: setreuidOp + " 1000 -1 , getresuid , " + setreuidOp + " -1 1000 , getresuid , " +
				setreuidOp + " -1 0 , getresuid , " + setreuidOp + " 0 -1 , getresuid , " +
				setreuidOp + " 1000 1000 , getresuid , " + setreuidOp + " 0 -1 , " + setreuidOp + " -1 0 , " +
				setreuidOp + " -1 1000 , getuid , geteuid",
			want: []string{
				"syscall: ok 0", "getresuid: ok 1000,0,0", // ruid set: saved follows euid
				"syscall: ok 0", "getresuid: ok 1000,1000,0", // euid == old ruid: saved kept
				"syscall: ok 0", "getresuid: ok 1000,0,0", // back to the saved 0
				"syscall: ok 0", "getresuid: ok 0,0,0",
				"syscall: ok 0", "getresuid: ok 1000,1000,1000", // full drop
				"syscall: err EPERM", "syscall: err EPERM",
				"syscall: ok 0", "getuid: ok 1000", "geteuid: ok 1000"},
		},
		{
			name:  "setregid_root_id",
			flags: root,
			args: setregidOp + " 1000 -1 , getresgid , " + setregidOp + " -1 1000 , getresgid , " +
				setregidOp + " -1 0 , getresgid , " + setregidOp + " 0 -1 , getresgid , " +
				setregidOp + " 2000 2000 , getresgid , setuid 1000 , " + setregidOp + " 0 -1 , " +
				setregidOp + " -1 0 , " + setregidOp + " -1 2000 , getgid , getegid , getresgid",
			want: []string{
				"syscall: ok 0", "getresgid: ok 1000,0,0",
				"syscall: ok 0", "getresgid: ok 1000,1000,0",
				"syscall: ok 0", "getresgid: ok 1000,0,0",
				"syscall: ok 0", "getresgid: ok 0,0,0",
				"syscall: ok 0", "getresgid: ok 2000,2000,2000", "setuid: ok 0",
				"syscall: err EPERM", "syscall: err EPERM", "syscall: ok 0",
				"getgid: ok 2000", "getegid: ok 2000", "getresgid: ok 2000,2000,2000"},
		},
		{
			name:  "setresuid_root_id",
			flags: root,
			args: "setresuid 1000 2000 0 , getresuid , geteuid , setresuid 4000 -1 -1 , setresuid -1 0 -1 , getresuid , " +
				"setresuid 3000 -1 -1 , getresuid , setresuid -1 -1 -1 , getresuid , setresuid 1000 1000 1000 , " +
				"setresuid 0 -1 -1 , setresuid -1 -1 0 , setresuid -1 -1 -1 , getresuid , getuid , geteuid",
			want: []string{"setresuid: ok 0", "getresuid: ok 1000,2000,0", "geteuid: ok 2000",
				"setresuid: err EPERM", // unprivileged (euid 2000): 4000 is none of 1000,2000,0
				"setresuid: ok 0", "getresuid: ok 1000,0,0",
				"setresuid: ok 0", "getresuid: ok 3000,0,0", "setresuid: ok 0", "getresuid: ok 3000,0,0",
				"setresuid: ok 0", "setresuid: err EPERM", "setresuid: err EPERM", "setresuid: ok 0",
				"getresuid: ok 1000,1000,1000", "getuid: ok 1000", "geteuid: ok 1000"},
		},
		{
			name:  "setresgid_root_id",
			flags: root,
			args: "setresgid 100 200 300 , getresgid , getgid , getegid , setresgid 5 5 5 , setuid 1000 , " +
				"setresgid 6 -1 -1 , setresgid -1 5 -1 , setresgid -1 -1 -1 , getresgid , getgid , getegid",
			want: []string{"setresgid: ok 0", "getresgid: ok 100,200,300", "getgid: ok 100", "getegid: ok 200",
				"setresgid: ok 0", "setuid: ok 0", "setresgid: err EPERM", "setresgid: ok 0", "setresgid: ok 0",
				"getresgid: ok 5,5,5", "getgid: ok 5", "getegid: ok 5"},
		},
		{
			// setfsuid returns the previous fsuid; -1 changes nothing (a query).
			name:  "setfsuid_root_id",
			flags: root,
			args: setfsuidOp + " 1000 , " + setfsuidOp + " -1 , getresuid , " + setfsuidOp + " 0 , " + setfsuidOp + " -1 , " +
				"setresuid -1 2000 -1 , " + setfsuidOp + " -1 , " + setfsuidOp + " 5 , " + setfsuidOp + " -1 , " +
				setfsuidOp + " 0 , " + setfsuidOp + " -1",
			want: []string{"syscall: ok 0", "syscall: ok 1000", "getresuid: ok 0,0,0", "syscall: ok 1000", "syscall: ok 0",
				"setresuid: ok 0", "syscall: ok 2000", // the fsuid follows the euid
				"syscall: ok 2000", "syscall: ok 2000", // unprivileged: 5 is refused silently
				"syscall: ok 2000", "syscall: ok 0"}, // the real uid 0 is allowed
		},
		{
			name:  "setfsgid_root_id",
			flags: root,
			args: setfsgidOp + " 50 , " + setfsgidOp + " -1 , getresgid , setresgid -1 60 -1 , " + setfsgidOp + " -1 , " +
				setfsgidOp + " 0 , " + setfsgidOp + " -1",
			want: []string{"syscall: ok 0", "syscall: ok 50", "getresgid: ok 0,0,0", "setresgid: ok 0", "syscall: ok 60",
				"syscall: ok 60", "syscall: ok 0"},
		},
		{
			// The fsuid/fsgid and the supplementary groups decide file access.
			name:  "fsids_permissions",
			flags: root,
			args: "chmod f 0640 , setgroups none , " + setfsuidOp + " 1000 , open f O_RDONLY , " + setfsgidOp + " 1000 , " +
				"open f O_RDONLY , setgroups 0 , open f O_RDONLY , " + setfsuidOp + " 0 , " + setfsgidOp + " 0 , " +
				"open f O_RDONLY , getresuid , getresgid",
			want: []string{"chmod: ok 0", "setgroups: ok 0", "syscall: ok 0", "open: ok *", "syscall: ok 0",
				"open: err EACCES", "setgroups: ok 0", "open: ok *", "syscall: ok 1000", "syscall: ok 1000",
				"open: ok *", "getresuid: ok 0,0,0", "getresgid: ok 0,0,0"},
		},
		{
			name:  "groups_root_id",
			flags: root,
			args: "setgroups 10,20 , getgroups , syscall " + nrGetgroups + " 0 0 , syscall " + nrGetgroups + " 1 0 , " +
				"setgroups none , getgroups , setgroups 0 , setuid 1000 , setgroups 10 , getgroups , setgroups none , " +
				"getuid , geteuid , getgid , getegid",
			want: []string{"setgroups: ok 0", "getgroups: ok 10,20", "syscall: ok 2", "syscall: err EINVAL",
				"setgroups: ok 0", "getgroups: ok", "setgroups: ok 0", "setuid: ok 0", "setgroups: err EPERM",
				"getgroups: ok 0", "setgroups: err EPERM",
				"getuid: ok 1000", "geteuid: ok 1000", "getgid: ok 0", "getegid: ok 0"},
		},
		{
			// Linux sorts the list setgroups(2) is given (groups_sort).
			name:  "groups_sorted",
			flags: root,
			args:  "setgroups 30,10,20,10 , getgroups , syscall " + nrGetgroups + " 0 0",
			want:  []string{"setgroups: ok 0", "getgroups: ok 10,10,20,30", "syscall: ok 4"},
		},
		{
			name:  "temporary_drop",
			flags: root,
			args: "setresgid -1 1000 -1 , setresuid -1 1000 -1 , getuid , geteuid , getgid , getegid , getresuid , " +
				"setuid 0 , geteuid , getresuid , setgid 0 , getegid",
			want: []string{"setresgid: ok 0", "setresuid: ok 0", "getuid: ok 0", "geteuid: ok 1000", "getgid: ok 0",
				"getegid: ok 1000", "getresuid: ok 0,1000,0",
				"setuid: ok 0", "geteuid: ok 0", "getresuid: ok 0,0,0", "setgid: ok 0", "getegid: ok 0"},
		},
		{
			name:  "change_id",
			flags: change,
			args: "setuid 0 , setresuid -1 -1 -1 , setresuid 1000 1000 1000 , " + setreuidOp + " -1 1000 , " +
				setreuidOp + " 0 -1 , " + setregidOp + " -1 1000 , " + setregidOp + " 0 0 , setresgid -1 -1 -1 , " +
				"setresgid 0 -1 -1 , setgroups 1000 , getgroups , " + setfsuidOp + " 0 , " + setfsuidOp + " -1 , " +
				setfsgidOp + " 0 , " + setfsgidOp + " -1 , getresuid , getresgid , getuid , geteuid , getgid , getegid",
			want: []string{"setuid: err EPERM", "setresuid: ok 0", "setresuid: ok 0", "syscall: ok 0",
				"syscall: err EPERM", "syscall: ok 0", "syscall: err EPERM", "setresgid: ok 0",
				"setresgid: err EPERM", "setgroups: err EPERM", "getgroups: ok", "syscall: ok 1000", "syscall: ok 1000",
				"syscall: ok 1000", "syscall: ok 1000", "getresuid: ok 1000,1000,1000", "getresgid: ok 1000,1000,1000",
				"getuid: ok 1000", "geteuid: ok 1000", "getgid: ok 1000", "getegid: ok 1000"},
		},
		// ---------------------------------------------------------- ids across exec and fork
		{
			// execve sets the saved ids and the fs ids to the effective ones
			// (security/commoncap.c, cap_bprm_creds_from_file).
			name:  "exec_resets_saved_uid",
			flags: root,
			args:  "setresuid 1000 1000 0 , exec /bin/sc getresuid",
			want:  []string{"setresuid: ok 0", "getresuid: ok 1000,1000,1000"},
		},
		{
			name:  "exec_resets_saved_gid",
			flags: root,
			args:  "setresgid 1000 1000 0 , exec /bin/sc getresgid",
			want:  []string{"setresgid: ok 0", "getresgid: ok 1000,1000,1000"},
		},
		{
			// ... so root cannot be regained through the saved id after exec.
			name:  "exec_then_regain_root",
			flags: root,
			args:  "setresuid 1000 1000 0 , exec /bin/sc setuid 0",
			want:  []string{"setresuid: ok 0", "setuid: err EPERM"},
		},
		{
			name:  "exec_resets_fsuid",
			flags: root,
			args:  setfsuidOp + " 1000 , exec /bin/sc " + setfsuidOp + " -1",
			want:  []string{"syscall: ok 0", "syscall: ok 0"},
		},
		{
			// Children of a process that dropped its ids inherit them.
			name:  "fork_inherits_ids",
			flags: root,
			forks: true,
			args: "setresgid 7 7 7 , setresuid 1000 1000 1000 , exec /bin/sh -c " +
				shWords("/bin/sc", "getresuid;/bin/sc", "getresgid;/bin/sc", "setuid", "0;/bin/sc", "getuid"),
			want: []string{"setresgid: ok 0", "setresuid: ok 0", "getresuid: ok 1000,1000,1000", "getresgid: ok 7,7,7",
				"setuid: err EPERM", "getuid: ok 1000"},
		},
	}
}

// shWords joins words into one blank-free sc argument that sh -c splits
// back into them (scArgs splits a case's args on blanks).
func shWords(words ...string) string { return strings.Join(words, "${IFS}") }

// execCases: execve/execveat of every kind of file, and inotify_add_watch.
func execCases() []scCase {
	helloOut := func(argv ...string) []string {
		out := []string{helloMusl}
		for i, a := range argv {
			out = append(out, "argv["+strconv.Itoa(i)+"]="+a)
		}
		return append(out, "cwd=$W")
	}
	return []scCase{
		{
			name: "exec_argv",
			args: "exec /bin/hello a b",
			want: helloOut("/bin/hello", "a", "b"),
		},
		{
			name: "exec_relative_after_chdir",
			args: "chdir /bin , exec ./hello x",
			want: []string{"chdir: ok 0", helloMusl, "argv[0]=./hello", "argv[1]=x", "cwd=/bin"},
		},
		{
			name:  "exec_symlink",
			setup: execSetup,
			args:  "exec $W/hl s",
			want:  helloOut("$W/hl", "s"),
		},
		{
			name:  "exec_errors",
			setup: execSetup,
			args: "exec f , exec ro , exec d , exec /bin/ , exec nope , exec f/x , exec nope/x , exec garbage , exec badelf , " +
				"exec wrongarch , exec empty , exec dangling , exec loop , exec lf , exec (null) , exec hrel r",
			want: append([]string{"exec: err EACCES", "exec: err EACCES", "exec: err EACCES", "exec: err EACCES",
				"exec: err ENOENT", "exec: err ENOTDIR", "exec: err ENOENT", "exec: err ENOEXEC", "exec: err ENOEXEC",
				"exec: err ENOEXEC", "exec: err ENOEXEC", "exec: err ENOENT", "exec: err ELOOP", "exec: err EACCES",
				"exec: err EFAULT"}, helloOut("hrel", "r")...),
		},
		{
			// An empty path names nothing (execveat's AT_EMPTY_PATH is not set).
			name: "exec_empty_path",
			args: "exec '' , exec /bin/hello",
			want: append([]string{"exec: err ENOENT"}, helloOut("/bin/hello")...),
		},
		{
			// Linux needs only the execute bit, not read permission, to run a
			// binary (the image is then not dumpable).
			// kbox limitation (docs/architecture.md, "Exec"): kbox must read
			// a binary to prepare its image, so an execute-only file runs
			// only when the invoking user may read it (root may). Linux runs it.
			name:     "exec_execute_only",
			setup:    execSetup,
			args:     "exec xonly e",
			want:     []string{"exec: err EACCES"},
			wantRoot: helloOut("xonly", "e"),
			deviates: true,
		},
		{
			// A "#!" script executed directly: it runs (no output, status 0).
			name: "exec_script_direct",
			args: "exec exe",
			want: []string{},
		},
		{
			name: "exec_glibc",
			args: "exec /bin/hello-glibc g",
			want: []string{helloGlibc, "argv[0]=/bin/hello-glibc", "argv[1]=g", "cwd=$W"},
		},
		{
			// Descriptors without O_CLOEXEC survive exec; none of kbox's
			// injected ones (image, interpreter) may remain.  Two execs (sh,
			// then the dynamic sc-glibc); sc's own ops after an exec would
			// belong to the first sc, so the second sc gets its ops through sh.
			name: "exec_descriptors",
			args: "open f O_RDONLY , open ro O_RDONLY|O_CLOEXEC , exec /bin/sh -c " +
				shWords("exec", "/bin/sc-glibc", "read", "3", "100", ",", "read", "4", "10", ",", "read", "5", "10", ",",
					"read", "6", "10", ",", "read", "7", "10"),
			want: []string{"open: ok 3", "open: ok 4", `read: ok 6 hello\x0a`, "read: err EBADF", "read: err EBADF",
				"read: err EBADF", "read: err EBADF"},
		},
		{
			// execveat(AT_FDCWD, path, NULL, NULL, 0): Linux gives the
			// program one empty argument.
			name: "execveat_fdcwd",
			args: execveatOp + " " + atFDCWD + " s:/bin/hello 0 0 0",
			want: helloOut(""),
		},
		{
			// kbox limitation (docs/architecture.md, "Exec"): relative to a
			// directory descriptor the rewritten name must be absolute
			// (/proc/self/fd/N), so a path shorter than that is refused.
			// Linux runs hello.
			name:     "execveat_dirfd",
			args:     "open /bin O_RDONLY|O_DIRECTORY , " + execveatOp + " @1 s:hello 0 0 0",
			want:     []string{"open: ok *", "syscall: err ENAMETOOLONG"},
			deviates: true,
			// The trap tier loads programs itself: no path to rewrite.
			wantTrap: append([]string{"open: ok *"}, helloOut("")...),
		},
		{
			name: "execveat_dirfd_long",
			args: "open / O_RDONLY|O_DIRECTORY , " + execveatOp + " @1 s:bin/../bin/../bin/hello 0 0 0",
			want: append([]string{"open: ok *"}, helloOut("")...),
		},
		{
			name:  "execveat_flags",
			setup: execSetup,
			args: execveatOp + " " + atFDCWD + " s:$W/hl 0 0 " + atSymlinkNoFollow + " , " +
				execveatOp + " " + atFDCWD + " s:/bin/nope 0 0 0 , " + execveatOp + " " + atFDCWD + " s:/bin/hello 0 0 0x4 , " +
				execveatOp + " 99 s:hello 0 0 0 , " + execveatOp + " " + atFDCWD + " s:$W/hl 0 0 0",
			want: append([]string{"syscall: err ELOOP", "syscall: err ENOENT", "syscall: err EINVAL", "syscall: err EBADF"},
				helloOut("")...),
		},
		{
			// execveat(fd, "", AT_EMPTY_PATH) runs the file fd refers to.
			name: "execveat_empty_path",
			args: "open /bin/hello O_RDONLY , " + execveatOp + " @1 s: 0 0 " + atEmptyPath,
			want: append([]string{"open: ok *"}, helloOut("")...),
		},
		// ---------------------------------------------------------- inotify_add_watch
		{
			name: "inotify_watch",
			args: "inotify /tmp , inotify /nonexistent , inotify /tmp/nope/x , inotify $W , inotify /etc/hostname/x",
			want: []string{"inotify: ok 1", "inotify: err ENOENT", "inotify: err ENOENT", "inotify: ok 1", "inotify: err ENOTDIR"},
		},
		{
			// The watches are on the guest's directories: creating entries
			// there is reported (the only case of this table writing in /tmp).
			name: "inotify_events",
			args: "syscall " + nrInotifyInit1 + " " + inNonblock + " , syscall " + nrInotifyAddWatch + " @1 s:/tmp " + inCreate + " , " +
				"syscall " + nrInotifyAddWatch + " @1 s:d " + inCreate + " , read @1 200 , open /tmp/inotify.x O_WRONLY|O_CREAT 0644 , " +
				"mkdir d/sub , read @1 200 , read @1 200",
			want: []string{"syscall: ok *", "syscall: ok 1", "syscall: ok 2", "read: err EAGAIN", "open: ok *", "mkdir: ok 0",
				inotifyEventsWant, "read: err EAGAIN"},
		},
	}
}

// execSetup adds to the case directory: hl -> /bin/hello, hrel ->
// ../../bin/hello, xonly (a copy of /bin/hello, mode 0111), garbage (text,
// 0755), badelf (ELF magic then junk, 0755), wrongarch (an aarch64 ELF
// header, 0755), empty (0 bytes, 0755).
func execSetup(t testing.TB, e *caseEnv) {
	t.Helper()
	for _, l := range [][2]string{{"/bin/hello", "hl"}, {"../../bin/hello", "hrel"}} {
		if err := os.Symlink(l[0], filepath.Join(e.host, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(e.root, "bin", "hello"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(e.host, "xonly"), string(b), 0o111)
	writeFile(t, filepath.Join(e.host, "garbage"), garbageText, 0o755)
	writeFile(t, filepath.Join(e.host, "badelf"), "\x7fELF"+strings.Repeat("\xff", 60), 0o755)
	writeFile(t, filepath.Join(e.host, "wrongarch"), wrongArchELFHeader+strings.Repeat("\x00", 44), 0o755)
	writeFile(t, filepath.Join(e.host, "empty"), "", 0o755)
}

// TestIdentity runs the set*id table under -0 / --change-id, as the
// invoking user and unprivileged, in every tier.
func TestIdentity(t *testing.T) {
	t.Parallel()
	runTableEveryTier(t, "/bin/sc", identityCases)
}

// TestExec runs the exec and inotify table under -r, as the invoking user
// and unprivileged, in every tier.
func TestExec(t *testing.T) {
	t.Parallel()
	runTableEveryTier(t, "/bin/sc", execCases)
}

// runTableEveryTier runs a table with sc under the seccomp tier (subtests
// named after the variant) and each in-process tier (tier/variant).
func runTableEveryTier(t *testing.T, sc string, cases func() []scCase) {
	forEachVariant(t, "", func(t *testing.T, v variant) {
		runTable(t, cases(), v.uid(), v.gid(), isRoot() && !v.unpriv, kboxRunner(sc, v.unpriv))
	})
	for _, tier := range inProcessTiers {
		forEachVariant(t, tier+"/", func(t *testing.T, v variant) {
			requireTier(t, tier) // a subtest of its own skips, saying why
			runTable(t, cases(), v.uid(), v.gid(), isRoot() && !v.unpriv, trapRunner(tier, sc, v.unpriv))
		})
	}
}

// TestIdentityExecNativeOracle runs both tables natively (chroot(8), no
// kbox) to validate the expectations: -0 cases as the real root,
// --change-id 1000:1000 cases as uid/gid 1000 with no supplementary groups,
// the others as root and as an unprivileged uid.  Needs root.
func TestIdentityExecNativeOracle(t *testing.T) {
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
			for _, c := range append(identityCases(), execCases()...) {
				virtual := len(c.flags) > 0
				if c.deviates || (v.unpriv && virtual) {
					continue
				}
				cases = append(cases, c)
			}
			uid := 0
			if v.unpriv {
				uid = unprivUID
			}
			runTable(t, cases, uid, uid, !v.unpriv, func(t *testing.T, c *scCase, e *caseEnv) (string, string, string, int) {
				var args []string
				switch {
				case v.unpriv:
					args = append(args, "--userspec="+strconv.Itoa(unprivUID)+":"+strconv.Itoa(unprivUID), "--groups="+strconv.Itoa(unprivUID))
				case len(c.flags) == 2 && c.flags[0] == changeIDFlag:
					args = append(args, "--userspec="+c.flags[1], "--groups=")
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

// TestExecProcSelf checks under -S (host /proc) what a guest program sees of
// itself: /proc/self/exe is its guest path, /proc/self/comm the base name of
// the path it was run by, /proc/self/cmdline its argv.
func TestExecProcSelf(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := freshRoot(t, v.uid())
		cases := []struct {
			name string
			args []string // after -S ROOT
			want string
		}{
			{"sh_readlink_exe", []string{"--", "/bin/sh", "-c", "readlink /proc/self/exe"}, "/bin/busybox\n"},
			{"cat_comm", []string{"--", "/bin/cat", "/proc/self/comm"}, "cat\n"},
			{"sc_exe_comm", []string{"--", "/bin/sc", "readlink", "/proc/self/exe", ",", "readfile", "/proc/self/comm"},
				"readlink: ok /bin/sc\nreadfile: ok sc\n"},
			{"glibc_exe_comm", []string{"--", "/bin/sc-glibc", "readlink", "/proc/self/exe", ",", "readfile", "/proc/self/comm"},
				"readlink: ok /bin/sc-glibc\nreadfile: ok sc-glibc\n"},
			{"relative_exec_exe", []string{"-w", "/bin", "--", "/bin/sc", "exec", "./sc", "readlink", "/proc/self/exe"},
				"readlink: ok /bin/sc\n"},
			{"symlinked_dir_exe", []string{"--", "/bin/sc", "exec", "/usr/bin/sc", "readlink", "/proc/self/exe"},
				"readlink: ok /bin/sc\n"},
			{"symlink_comm", []string{"--", "/bin/sc", "exec", "/bin/cat", "/proc/self/comm"}, "cat\n"},
			{"argv0_kept", []string{"--", "/bin/sc", "exec", "/bin/sc", "readfile", "/proc/self/cmdline"},
				`readfile: ok /bin/sc\x00readfile\x00/proc/self/cmdline\x00` + "\n"},
			{"exec_proc_self_exe", []string{"--", "/bin/sc", "exec", "/proc/self/exe", "readlink", "/proc/self/exe"},
				"readlink: ok /bin/sc\n"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				opts := runOpts{Unpriv: v.unpriv, Args: append([]string{"-S", root}, c.args...)}
				out, errOut, code := runKbox(t, opts)
				if code != 0 || out != c.want {
					t.Errorf("%s\nexit status %d (want 0)\nstdout:\n%s\nwant stdout:\n%s\nstderr:\n%s", cmdline(opts), code, out, c.want, errOut)
				}
			})
		}
	})
}

// TestExecScriptViaShell: a "#!/bin/sh" script run by busybox sh.  Linux
// runs it in the kernel; kbox answers ENOEXEC and relies on the shell's
// fallback (docs/architecture.md, "Exec").  Either way the script must run,
// under -r (no /proc in the guest) as under -S.
func TestExecScriptViaShell(t *testing.T) {
	t.Parallel()
	for _, mode := range rootModes() {
		forEachVariant(t, mode+"/", func(t *testing.T, v variant) {
			root := freshRoot(t, v.uid())
			writeFile(t, filepath.Join(root, "var", "script.sh"), scriptText, 0o755)
			chownTree(t, filepath.Join(root, "var", "script.sh"), v.uid())
			opts := runOpts{Unpriv: v.unpriv, Args: []string{mode, root, "-w", "/var", "--", "/bin/sh", "-c", "./script.sh a; echo status $?"}}
			out, errOut, code := runKbox(t, opts)
			want := "script ./script.sh a\nstatus 0\n"
			if code != 0 || out != want {
				t.Errorf("%s\nexit status %d (want 0)\nstdout:\n%s\nwant stdout:\n%s\nstderr:\n%s", cmdline(opts), code, out, want, errOut)
			}
		})
	}
}
