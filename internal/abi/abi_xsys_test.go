//go:build linux && (amd64 || arm64)

package abi

import (
	"testing"

	"golang.org/x/sys/unix"
)

// xsysCommon maps kernel names to the x/sys constants that exist on both
// amd64 and arm64. Arch-only constants are added by the
// abi_xsys_linux_<arch>_test.go files through xsysHostOnly.
var xsysCommon = map[string]int{
	"read":                    unix.SYS_READ,
	"write":                   unix.SYS_WRITE,
	"close":                   unix.SYS_CLOSE,
	"close_range":             unix.SYS_CLOSE_RANGE,
	"openat":                  unix.SYS_OPENAT,
	"openat2":                 unix.SYS_OPENAT2,
	"newfstatat":              unix.SYS_NEWFSTATAT,
	"fstat":                   unix.SYS_FSTAT,
	"statx":                   unix.SYS_STATX,
	"statfs":                  unix.SYS_STATFS,
	"fstatfs":                 unix.SYS_FSTATFS,
	"lseek":                   unix.SYS_LSEEK,
	"pread64":                 unix.SYS_PREAD64,
	"pwrite64":                unix.SYS_PWRITE64,
	"readv":                   unix.SYS_READV,
	"writev":                  unix.SYS_WRITEV,
	"preadv2":                 unix.SYS_PREADV2,
	"pwritev2":                unix.SYS_PWRITEV2,
	"execve":                  unix.SYS_EXECVE,
	"execveat":                unix.SYS_EXECVEAT,
	"clone":                   unix.SYS_CLONE,
	"clone3":                  unix.SYS_CLONE3,
	"exit":                    unix.SYS_EXIT,
	"exit_group":              unix.SYS_EXIT_GROUP,
	"wait4":                   unix.SYS_WAIT4,
	"waitid":                  unix.SYS_WAITID,
	"seccomp":                 unix.SYS_SECCOMP,
	"ptrace":                  unix.SYS_PTRACE,
	"prctl":                   unix.SYS_PRCTL,
	"kill":                    unix.SYS_KILL,
	"tkill":                   unix.SYS_TKILL,
	"tgkill":                  unix.SYS_TGKILL,
	"rt_sigaction":            unix.SYS_RT_SIGACTION,
	"rt_sigprocmask":          unix.SYS_RT_SIGPROCMASK,
	"rt_sigreturn":            unix.SYS_RT_SIGRETURN,
	"getpid":                  unix.SYS_GETPID,
	"gettid":                  unix.SYS_GETTID,
	"getppid":                 unix.SYS_GETPPID,
	"mkdirat":                 unix.SYS_MKDIRAT,
	"mknodat":                 unix.SYS_MKNODAT,
	"unlinkat":                unix.SYS_UNLINKAT,
	"renameat":                unix.SYS_RENAMEAT,
	"renameat2":               unix.SYS_RENAMEAT2,
	"linkat":                  unix.SYS_LINKAT,
	"symlinkat":               unix.SYS_SYMLINKAT,
	"readlinkat":              unix.SYS_READLINKAT,
	"faccessat":               unix.SYS_FACCESSAT,
	"faccessat2":              unix.SYS_FACCESSAT2,
	"fchmod":                  unix.SYS_FCHMOD,
	"fchmodat":                unix.SYS_FCHMODAT,
	"fchmodat2":               unix.SYS_FCHMODAT2,
	"fchown":                  unix.SYS_FCHOWN,
	"fchownat":                unix.SYS_FCHOWNAT,
	"utimensat":               unix.SYS_UTIMENSAT,
	"truncate":                unix.SYS_TRUNCATE,
	"ftruncate":               unix.SYS_FTRUNCATE,
	"fallocate":               unix.SYS_FALLOCATE,
	"getdents64":              unix.SYS_GETDENTS64,
	"getcwd":                  unix.SYS_GETCWD,
	"chdir":                   unix.SYS_CHDIR,
	"fchdir":                  unix.SYS_FCHDIR,
	"chroot":                  unix.SYS_CHROOT,
	"pivot_root":              unix.SYS_PIVOT_ROOT,
	"mount":                   unix.SYS_MOUNT,
	"umount2":                 unix.SYS_UMOUNT2,
	"mount_setattr":           unix.SYS_MOUNT_SETATTR,
	"open_tree":               unix.SYS_OPEN_TREE,
	"move_mount":              unix.SYS_MOVE_MOUNT,
	"fsopen":                  unix.SYS_FSOPEN,
	"fsmount":                 unix.SYS_FSMOUNT,
	"unshare":                 unix.SYS_UNSHARE,
	"setns":                   unix.SYS_SETNS,
	"pidfd_open":              unix.SYS_PIDFD_OPEN,
	"pidfd_getfd":             unix.SYS_PIDFD_GETFD,
	"pidfd_send_signal":       unix.SYS_PIDFD_SEND_SIGNAL,
	"process_vm_readv":        unix.SYS_PROCESS_VM_READV,
	"process_vm_writev":       unix.SYS_PROCESS_VM_WRITEV,
	"io_uring_setup":          unix.SYS_IO_URING_SETUP,
	"io_uring_enter":          unix.SYS_IO_URING_ENTER,
	"io_uring_register":       unix.SYS_IO_URING_REGISTER,
	"landlock_create_ruleset": unix.SYS_LANDLOCK_CREATE_RULESET,
	"landlock_add_rule":       unix.SYS_LANDLOCK_ADD_RULE,
	"landlock_restrict_self":  unix.SYS_LANDLOCK_RESTRICT_SELF,
	"memfd_create":            unix.SYS_MEMFD_CREATE,
	"memfd_secret":            unix.SYS_MEMFD_SECRET,
	"mmap":                    unix.SYS_MMAP,
	"munmap":                  unix.SYS_MUNMAP,
	"mprotect":                unix.SYS_MPROTECT,
	"brk":                     unix.SYS_BRK,
	"ioctl":                   unix.SYS_IOCTL,
	"fcntl":                   unix.SYS_FCNTL,
	"dup":                     unix.SYS_DUP,
	"dup3":                    unix.SYS_DUP3,
	"pipe2":                   unix.SYS_PIPE2,
	"socket":                  unix.SYS_SOCKET,
	"connect":                 unix.SYS_CONNECT,
	"accept4":                 unix.SYS_ACCEPT4,
	"sendmsg":                 unix.SYS_SENDMSG,
	"recvmsg":                 unix.SYS_RECVMSG,
	"getxattr":                unix.SYS_GETXATTR,
	"setxattr":                unix.SYS_SETXATTR,
	"name_to_handle_at":       unix.SYS_NAME_TO_HANDLE_AT,
	"open_by_handle_at":       unix.SYS_OPEN_BY_HANDLE_AT,
	"sendfile":                unix.SYS_SENDFILE,
	"copy_file_range":         unix.SYS_COPY_FILE_RANGE,
	"sync_file_range":         unix.SYS_SYNC_FILE_RANGE,
	"fadvise64":               unix.SYS_FADVISE64,
	"epoll_create1":           unix.SYS_EPOLL_CREATE1,
	"epoll_pwait":             unix.SYS_EPOLL_PWAIT,
	"eventfd2":                unix.SYS_EVENTFD2,
	"signalfd4":               unix.SYS_SIGNALFD4,
	"inotify_init1":           unix.SYS_INOTIFY_INIT1,
	"futex":                   unix.SYS_FUTEX,
	"getrandom":               unix.SYS_GETRANDOM,
	"prlimit64":               unix.SYS_PRLIMIT64,
	"uname":                   unix.SYS_UNAME,
	"statmount":               unix.SYS_STATMOUNT,
	"listmount":               unix.SYS_LISTMOUNT,
}

// xsysHostOnly holds constants that exist only on the build architecture.
var xsysHostOnly = map[string]int{}

func TestHostAgainstXSys(t *testing.T) {
	host := Host()
	check := func(want map[string]int) int {
		for name, nr := range want {
			got, ok := host.Nr(name)
			if !ok || got != nr {
				t.Errorf("%s.Nr(%q) = %d, %v; x/sys says %d", host.Name, name, got, ok, nr)
			}
			if n := host.SyscallName(nr); n != name {
				t.Errorf("%s.SyscallName(%d) = %q; want %q", host.Name, nr, n, name)
			}
		}
		return len(want)
	}
	if n := check(xsysCommon) + check(xsysHostOnly); n < 60 {
		t.Errorf("only %d syscalls compared; want >= 60", n)
	}
	want := map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}[host.Name]
	if host.AuditArch != want {
		t.Errorf("%s.AuditArch = %#x; x/sys says %#x", host.Name, host.AuditArch, want)
	}
}
