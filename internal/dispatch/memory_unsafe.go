package dispatch

import "unsafe"

// bytesOf views a plain-data kernel struct (unix.Stat_t, unix.Statx_t,
// unix.Statfs_t, unix.OpenHow, ...) as the bytes the kernel ABI expects.
// Invariant: T has no pointers and its Go layout is the kernel's layout on
// this architecture (true for golang.org/x/sys/unix's generated types).
func bytesOf[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}
