package abi

// Flag values golang.org/x/sys/unix does not define.
const (
	ResolveCached   = 0x20   // RESOLVE_CACHED (openat2)
	AtStatxSyncType = 0x6000 // AT_STATX_SYNC_TYPE mask (statx)
	KcmpVM          = 1      // KCMP_VM
	PidfdThread     = 0x80   // PIDFD_THREAD (O_EXCL), Linux 6.9
)

// ioctl requests that set the owner receiving SIGIO/SIGURG (linux/sockios.h).
const (
	FIOSETOWN = 0x8901
	SIOCSPGRP = 0x8902
)

// struct f_owner_ex types (fcntl F_SETOWN_EX).
const (
	FOwnerTID  = 0
	FOwnerPID  = 1
	FOwnerPGRP = 2
)

// Values the in-process tiers need that golang.org/x/sys/unix lacks
// (x86-64 and generic Linux headers).
const (
	FIOCLEX           = 0x5451     // ioctl: set close-on-exec (asm-generic/ioctls.h)
	FIONCLEX          = 0x5450     // ioctl: clear close-on-exec
	ONotificationPipe = 0x80       // O_NOTIFICATION_PIPE (pipe2, == O_EXCL)
	ShmExec           = 0o100000   // SHM_EXEC (shmat)
	ArchSetGS         = 0x1001     // ARCH_SET_GS (arch_prctl, x86-64)
	ArchSetFS         = 0x1002     // ARCH_SET_FS
	ArchGetFS         = 0x1003     // ARCH_GET_FS
	ArchGetGS         = 0x1004     // ARCH_GET_GS
	SSOnstack         = 1          // SS_ONSTACK (sigaltstack)
	SSDisable         = 2          // SS_DISABLE
	SSAutodisarm      = 1 << 31    // SS_AUTODISARM
	MinSigstksz       = 2048       // MINSIGSTKSZ (x86-64)
	SARestart         = 0x10000000 // SA_RESTART
	SARestorer        = 0x04000000 // SA_RESTORER
	SAOnstack         = 0x08000000 // SA_ONSTACK
	SANodefer         = 0x40000000 // SA_NODEFER
	SAResethand       = 0x80000000 // SA_RESETHAND
)
