package abi

import "golang.org/x/sys/unix"

// amd64-only syscalls (legacy, pre-*at and x86-specific), not in arm64's
// asm-generic table.
func init() {
	for name, nr := range map[string]int{
		"open":         unix.SYS_OPEN,
		"creat":        unix.SYS_CREAT,
		"stat":         unix.SYS_STAT,
		"lstat":        unix.SYS_LSTAT,
		"access":       unix.SYS_ACCESS,
		"readlink":     unix.SYS_READLINK,
		"mkdir":        unix.SYS_MKDIR,
		"rmdir":        unix.SYS_RMDIR,
		"unlink":       unix.SYS_UNLINK,
		"rename":       unix.SYS_RENAME,
		"link":         unix.SYS_LINK,
		"symlink":      unix.SYS_SYMLINK,
		"chmod":        unix.SYS_CHMOD,
		"chown":        unix.SYS_CHOWN,
		"lchown":       unix.SYS_LCHOWN,
		"utime":        unix.SYS_UTIME,
		"utimes":       unix.SYS_UTIMES,
		"futimesat":    unix.SYS_FUTIMESAT,
		"mknod":        unix.SYS_MKNOD,
		"fork":         unix.SYS_FORK,
		"vfork":        unix.SYS_VFORK,
		"pipe":         unix.SYS_PIPE,
		"dup2":         unix.SYS_DUP2,
		"select":       unix.SYS_SELECT,
		"poll":         unix.SYS_POLL,
		"epoll_create": unix.SYS_EPOLL_CREATE,
		"epoll_wait":   unix.SYS_EPOLL_WAIT,
		"eventfd":      unix.SYS_EVENTFD,
		"signalfd":     unix.SYS_SIGNALFD,
		"inotify_init": unix.SYS_INOTIFY_INIT,
		"getdents":     unix.SYS_GETDENTS,
		"alarm":        unix.SYS_ALARM,
		"pause":        unix.SYS_PAUSE,
		"time":         unix.SYS_TIME,
		"arch_prctl":   unix.SYS_ARCH_PRCTL,
		"iopl":         unix.SYS_IOPL,
		"ioperm":       unix.SYS_IOPERM,
		"modify_ldt":   unix.SYS_MODIFY_LDT,
	} {
		xsysHostOnly[name] = nr
	}
}
