package abi

// Flag values golang.org/x/sys/unix does not define.
const (
	ResolveCached   = 0x20   // RESOLVE_CACHED (openat2)
	AtStatxSyncType = 0x6000 // AT_STATX_SYNC_TYPE mask (statx)
	KcmpVM          = 1      // KCMP_VM
	PidfdThread     = 0x80   // PIDFD_THREAD (O_EXCL), Linux 6.9
)
