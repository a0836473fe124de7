package integration

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// permCases: the guest's view of owners and modes (recorded by chown and
// chmod under -0) drives kbox's permission checks as the kernel's would
// for those owners, for root and for identities a root guest drops to;
// and the invoking user can record owners and modes whatever the host
// mode. Every case runs as root and as uid 65534 in every tier, and
// natively as the real root (TestPermNativeOracle).
func permCases() []scCase {
	root := []string{rootID}
	return []scCase{
		{
			// K5: a directory chowned to a user is that user's.
			name:  "dropped_owner_creates",
			flags: root,
			args: "mkdir own 0755 , chown own 2201 2201 , setgroups none , setresgid 2201 2201 2201 , " +
				"setresuid 2201 2201 2201 , open own/x O_WRONLY|O_CREAT 0644 , stat own/x , mkdir own/sub 0700 , " +
				"stat own/sub , open own/sub/y O_WRONLY|O_CREAT 0600 , open own/sub/y O_RDWR , mkdir d/no 0755",
			want: []string{"mkdir: ok 0", "chown: ok 0", "setgroups: ok 0", "setresgid: ok 0", "setresuid: ok 0",
				"open: ok *", "stat: ok type=reg mode=0644 uid=2201 gid=2201", "mkdir: ok 0",
				"stat: ok type=dir mode=0700 uid=2201 gid=2201", "open: ok *", "open: ok *",
				"mkdir: err EACCES"}, // d is root's 0755
		},
		{
			// An O_TMPFILE file is the creator's too.
			name:  "tmpfile_owner",
			flags: root,
			args: "mkdir own 0777 , chmod own 0777 , setgroups none , setresgid 2201 2201 2201 , setresuid 2201 2201 2201 , " +
				"open own O_TMPFILE|O_RDWR 0640 , fstat @6 , open d O_TMPFILE|O_RDWR 0600",
			want: []string{"mkdir: ok 0", "chmod: ok 0", "setgroups: ok 0", "setresgid: ok 0", "setresuid: ok 0",
				"open: ok *", "fstat: ok type=reg mode=0640 uid=2201 gid=2201", "open: err EACCES"},
		},
		{
			// A user's mode-600 file is hers alone; other bits count for others.
			name:  "mode_600_other_user",
			flags: root,
			args: "chmod f 0600 , chown f 2201 2201 , setgroups none , setresuid 2202 2202 2202 , open f O_RDONLY , " +
				"open f O_WRONLY , access f R_OK , open ro O_RDONLY , open ro O_WRONLY",
			want: []string{"chmod: ok 0", "chown: ok 0", "setgroups: ok 0", "setresuid: ok 0", "open: err EACCES",
				"open: err EACCES", "access: err EACCES", "open: ok *", "open: err EACCES"},
		},
		{
			// The group class, through a supplementary group.
			name:  "group_class",
			flags: root,
			args: "chmod f 0640 , chown f 2201 77 , setgroups 5,77 , setresuid 2202 2202 2202 , open f O_RDONLY , " +
				"open f O_WRONLY",
			want: []string{"chmod: ok 0", "chown: ok 0", "setgroups: ok 0", "setresuid: ok 0", "open: ok *",
				"open: err EACCES"},
		},
		{
			// K11: root reads and writes its mode-000 files, chowns and
			// chmods read-only ones, creates in a mode-000 directory; the
			// recorded mode is what stat shows.
			name:  "root_mode_000",
			flags: root,
			args: "chmod f 0 , open f O_RDONLY , read @2 5 , open f O_WRONLY , stat f , chmod ro 0444 , chown ro 5 5 , " +
				"chmod ro 0444 , stat ro , open ro O_RDWR , mkdir z 0 , mkdir z/in 0755 , stat z , open z/in/x O_WRONLY|O_CREAT 0 , " +
				"chown z/in/x 7 7 , stat z/in/x",
			want: []string{"chmod: ok 0", "open: ok *", "read: ok 5 hello", "open: ok *",
				"stat: ok type=reg mode=0000", "chmod: ok 0", "chown: ok 0", "chmod: ok 0",
				"stat: ok type=reg mode=0444 uid=5 gid=5", "open: ok *", "mkdir: ok 0", "mkdir: ok 0",
				"stat: ok type=dir mode=0000", "open: ok *", "chown: ok 0", "stat: ok type=reg mode=0000 uid=7 gid=7"},
		},
		{
			// Root executes a file only when some execute bit is set.
			name:  "root_exec_bits",
			flags: root,
			args:  "access f X_OK , chmod f 0001 , access f X_OK , chmod f 0 , access f R_OK|W_OK , access f X_OK",
			want:  []string{"access: err EACCES", "chmod: ok 0", "access: ok 0", "chmod: ok 0", "access: ok 0", "access: err EACCES"},
		},
		{
			// Sticky directories: only the entry's or the directory's owner
			// removes or renames an entry.
			name:  "sticky_directory",
			flags: root,
			args: "mkdir t 0755 , chmod t 01777 , open t/a O_WRONLY|O_CREAT 0644 , chown t/a 2201 2201 , " +
				"setgroups none , setresuid 2202 2202 2202 , unlink t/a , rename t/a t/b , open t/c O_WRONLY|O_CREAT 0644 , " +
				"rename t/c t/d , unlink t/d",
			want: []string{"mkdir: ok 0", "chmod: ok 0", "open: ok *", "chown: ok 0", "setgroups: ok 0", "setresuid: ok 0",
				"unlink: err EPERM", "rename: err EPERM", "open: ok *", "rename: ok 0", "unlink: ok 0"},
		},
		{
			// rename: write and search on both parents; a directory moved
			// to another parent needs write permission on itself (its "..").
			name:  "rename_permissions",
			flags: root,
			args: "mkdir a 0777 , chmod a 0777 , mkdir b 0777 , chmod b 0777 , mkdir a/sub 0755 , setgroups none , " +
				"setresuid 2201 2201 2201 , rename a/sub b/sub , rename a/sub a/sub2 , rename a/sub2 d/x , rename f a/f",
			want: []string{"mkdir: ok 0", "chmod: ok 0", "mkdir: ok 0", "chmod: ok 0", "mkdir: ok 0", "setgroups: ok 0",
				"setresuid: ok 0", "rename: err EACCES", "rename: ok 0", "rename: err EACCES", "rename: err EACCES"},
		},
		{
			// A set-group-id directory gives new entries its group, and
			// new directories its set-group-id bit.
			name:  "setgid_directory",
			flags: root,
			args: "mkdir g 0755 , chown g 0 50 , chmod g 02775 , stat g , mkdir g/s 0755 , stat g/s , " +
				"open g/f O_WRONLY|O_CREAT 0644 , stat g/f",
			want: []string{"mkdir: ok 0", "chown: ok 0", "chmod: ok 0", "stat: ok type=dir mode=2775 uid=0 gid=50",
				"mkdir: ok 0", "stat: ok type=dir mode=2755 uid=0 gid=50", "open: ok *",
				"stat: ok type=reg mode=0644 uid=0 gid=50"},
		},
		{
			// An access ACL equivalent to a mode is a chmod (cp -a sets
			// modes this way): the guest's mode, recorded; the file stays
			// chownable; another user's ACL change is refused.
			name:      "acl_as_mode",
			flags:     root,
			needXattr: true,
			args: `setxattr f system.posix_acl_access \x02\x00\x00\x00\x01\x00\x04\x00\xff\xff\xff\xff\x04\x00\x04\x00\xff\xff\xff\xff\x20\x00\x00\x00\xff\xff\xff\xff , ` +
				"stat f , chown f 5 5 , stat f , setresuid 2201 2201 2201 , " +
				`setxattr f system.posix_acl_access \x02\x00\x00\x00\x01\x00\x06\x00\xff\xff\xff\xff\x04\x00\x04\x00\xff\xff\xff\xff\x20\x00\x04\x00\xff\xff\xff\xff`,
			want: []string{"setxattr: ok 0", "stat: ok type=reg mode=0440 uid=0 gid=0", "chown: ok 0",
				"stat: ok type=reg mode=0440 uid=5 gid=5", "setresuid: ok 0", "setxattr: err EPERM"},
		},
		{
			// Who may chown and chmod what.
			name:  "chown_chmod_rules",
			flags: root,
			args: "chown f 2201 2201 , setgroups none , setresgid 2201 2201 2201 , setresuid 2201 2201 2201 , " +
				"chown f 2202 -1 , chown f -1 0 , chown f -1 2201 , chmod f 0600 , chmod ro 0600 , chown ro -1 2201 , " +
				"chmod f 02755 , stat f",
			want: []string{"chown: ok 0", "setgroups: ok 0", "setresgid: ok 0", "setresuid: ok 0",
				"chown: err EPERM", "chown: err EPERM", "chown: ok 0", "chmod: ok 0", "chmod: err EPERM",
				"chown: err EPERM", "chmod: ok 0", "stat: ok type=reg mode=2755 uid=2201 gid=2201"},
		},
		{
			// chown clears S_ISUID, and S_ISGID when group execute is set.
			name:  "chown_clears_setid",
			flags: root,
			args:  "chmod f 06755 , chown f 1 1 , stat f , chmod f 06745 , chown f 2 2 , stat f",
			want: []string{"chmod: ok 0", "chown: ok 0", "stat: ok type=reg mode=0755 uid=1 gid=1",
				"chmod: ok 0", "chown: ok 0", "stat: ok type=reg mode=2745 uid=2 gid=2"},
		},
		{
			// setpriv's sequence: keep capabilities across the uid change,
			// then trim them with capset; KEEPCAPS is per process state.
			name:  "capabilities_keepcaps",
			flags: root,
			args: "syscall " + nrPrctl + " 8 1 , syscall " + nrPrctl + " 7 , setresuid 1000 1000 1000 , capget , " +
				"capset 400 400 400 , capget , syscall " + nrPrctl + " 47 2 10 0 0 , syscall " + nrPrctl + " 47 1 10 0 0 , " +
				"capset 401 400 400 , syscall " + nrPrctl + " 24 10 , syscall " + nrPrctl + " 23 10 , setuid 0",
			want: []string{"syscall: ok 0", "syscall: ok 1", "setresuid: ok 0", "capget: ok eff=0 prm=$ALLCAPS inh=0",
				"capset: ok 0", "capget: ok eff=400 prm=400 inh=400", "syscall: ok 0", "syscall: ok 1",
				"capset: err EPERM", "syscall: err EPERM", "syscall: ok 1", "setuid: err EPERM"},
		},
		{
			// Without KEEPCAPS a full drop clears the permitted set.
			name:  "capabilities_dropped",
			flags: root,
			args:  "capget , setresuid 1000 1000 1000 , capget , syscall " + nrPrctl + " 47 2 10 0 0 , capset 1 1 0",
			want: []string{"capget: ok eff=$ALLCAPS prm=$ALLCAPS inh=0", "setresuid: ok 0", "capget: ok eff=0 prm=0 inh=0",
				"syscall: err EPERM", "capset: err EPERM"},
		},
	}
}

// nrPrctl is prctl's number on amd64 (the tables are written for amd64).
var nrPrctl = nr("prctl")

// allCapsHex is the full capability set of the host kernel, as capget
// prints it.
func allCapsHex(t testing.TB) string {
	b, err := exec.Command("cat", "/proc/sys/kernel/cap_last_cap").Output()
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatUint(1<<(uint(n)+1)-1, 16)
}

// boundingHex is the test process's own bounding set (what a real root
// child has), as capget prints it.
func boundingHex(t testing.TB) string {
	b, err := exec.Command("grep", "^CapBnd:", "/proc/self/status").Output()
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(string(b), "CapBnd:")), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatUint(v, 16)
}

// permCasesFor substitutes $ALLCAPS: the full set in kbox's guests (root
// in a namespace of its own), all the capabilities a real root has natively.
func permCasesFor(all string) func() []scCase {
	return func() []scCase {
		cs := permCases()
		for i := range cs {
			for j, w := range cs[i].want {
				cs[i].want[j] = strings.ReplaceAll(w, "$ALLCAPS", all)
			}
		}
		return cs
	}
}

// TestPermissions runs permCases under -0 in every tier, as root and as
// uid 65534.
func TestPermissions(t *testing.T) {
	t.Parallel()
	runTableEveryTier(t, "/bin/sc", permCasesFor(allCapsHex(t)))
}

// TestPermNativeOracle runs permCases natively as the real root (chroot),
// validating the expectations.
func TestPermNativeOracle(t *testing.T) {
	t.Parallel()
	if !isRoot() {
		t.Skip("the native oracle needs root (chroot)")
	}
	chroot, err := exec.LookPath("chroot")
	if err != nil {
		t.Skip("chroot(8) not found")
	}
	runTable(t, permCasesFor(boundingHex(t))(), 0, 0, false, func(t *testing.T, c *scCase, e *caseEnv) (string, string, string, int) {
		args := []string{e.root, "/bin/sh", "-c", `cd "$1" || exit 99; shift; exec "$@"`, "sh", e.guest}
		args = append(args, guestArgv(c, e, "/bin/sc")...)
		opts := runOpts{Bin: chroot, Args: args}
		out, errOut, code := runKbox(t, opts)
		return cmdline(opts), out, errOut, code
	})
}

// TestProcStatusVirtualIds: /proc/self/status shows the virtual ids and
// capabilities under -S (K12), in every tier, as root and as uid 65534.
func TestProcStatusVirtualIds(t *testing.T) {
	t.Parallel()
	all := allCapsHex(t)
	pad := strings.Repeat("0", 16-len(all)) + all
	for _, tier := range testedTiers(t, allTiers) {
		forEachVariant(t, tier+"/", func(t *testing.T, v variant) {
			root := freshRoot(t, v.uid())
			args := []string{"--syscall-mode=" + tier, "-S", root, "--", "/bin/sc"}
			for _, op := range []string{"readline /proc/self/status Uid: , readline /proc/self/status Gid: , readline /proc/self/status Groups: , readline /proc/self/status CapEff: , readline /proc/self/status CapPrm: ,",
				"setgroups 4,20 , setresuid 1000 0 1000 , readline /proc/self/status Uid: , readline /proc/self/status Groups: , readline /proc/self/status CapEff: , ",
				"setresuid 1000 1000 1000 , readline /proc/self/status CapEff: , readline /proc/self/status CapPrm:"} {
				args = append(args, strings.Fields(op)...)
			}
			out, errOut, code := runKbox(t, runOpts{Unpriv: v.unpriv, Args: args})
			want := []string{`readline: ok Uid:\x090\x090\x090\x090`, `readline: ok Gid:\x090\x090\x090\x090`,
				`readline: ok Groups:\x090 `, `readline: ok CapEff:\x09` + pad, `readline: ok CapPrm:\x09` + pad,
				"setgroups: ok 0", "setresuid: ok 0", `readline: ok Uid:\x091000\x090\x091000\x090`,
				`readline: ok Groups:\x094 20 `, `readline: ok CapEff:\x09` + pad,
				"setresuid: ok 0", `readline: ok CapEff:\x090000000000000000`, `readline: ok CapPrm:\x090000000000000000`}
			if diff := compareLines(want, lines(out)); code != 0 || diff != "" {
				t.Fatalf("exit %d\n%sstderr:\n%s", code, diff, errOut)
			}
		})
	}
}

// TestCapsetWithoutVirtualIdentity: without -0 capset is refused with a -v
// line in every tier (the guest's real capabilities are kbox's own in the
// in-process tiers).
func TestCapsetWithoutVirtualIdentity(t *testing.T) {
	t.Parallel()
	for _, tier := range testedTiers(t, allTiers) {
		forEachVariant(t, tier+"/", func(t *testing.T, v variant) {
			root := freshRoot(t, v.uid())
			opts := runOpts{Unpriv: v.unpriv, Args: []string{"-v", "--syscall-mode=" + tier, "-r", root, "--", "/bin/sc", "capset", "0", "0", "0"}}
			out, errOut, code := runKbox(t, opts)
			if code != 0 || strings.TrimSpace(out) != "capset: err EPERM" || !strings.Contains(errOut, "capset denied (EPERM)") {
				t.Errorf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", cmdline(opts), code, out, errOut)
			}
		})
	}
}
