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
