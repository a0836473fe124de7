package dispatch

// Sizes, lengths and counts a guest passes are untrusted 64-bit numbers. A
// size_t above 2^63 becomes a negative int, and any large value becomes an
// allocation kbox cannot make: either is a crash of the supervisor, not of
// the guest. Every such number is therefore bounded, before it is used, by
// the limit the kernel applies to the same argument, and fails with the
// kernel's errno where the kernel fails:
//
//	getxattr/listxattr size   clamped to XATTR_SIZE_MAX / XATTR_LIST_MAX
//	setxattr size             > XATTR_SIZE_MAX: E2BIG
//	openat2 open_how size     < 24: EINVAL, > PAGE_SIZE: E2BIG
//	msghdr iovlen             > UIO_MAXIOV: EMSGSIZE
//	msghdr controllen         > the socket's option memory: ENOBUFS
//	cmsg_len                  < header or past msg_controllen: EINVAL
//	sendmmsg vlen             clamped to UIO_MAXIOV
//	sockaddr length           > sizeof(sockaddr_storage): EINVAL
//	ELF PT_INTERP p_filesz    < 2 or > PATH_MAX: ENOEXEC
//	paths                     PATH_MAX, NUL included: ENAMETOOLONG
//
// Arithmetic on guest offsets is done in uint64 against the remaining room
// (n > total-off), never as off+n, which can wrap.

const (
	// xattrListMax is the kernel's XATTR_LIST_MAX.
	xattrListMax = 65536
	// pathMax is the kernel's PATH_MAX, NUL included.
	pathMax = 4096
)

// clampSize returns the guest size_t v clamped to max, as the kernel clamps
// a buffer size it only fills (getxattr, listxattr): never negative, never
// above max.
func clampSize(v uint64, max int) int {
	if v > uint64(max) {
		return max
	}
	return int(v)
}

// within reports whether [off, off+n) lies inside a buffer of total bytes,
// without overflowing.
func within(off, n, total uint64) bool {
	return off <= total && n <= total-off
}
