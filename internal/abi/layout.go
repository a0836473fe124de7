package abi

import "encoding/binary"

// Kernel struct layouts kbox reads from and writes to guest memory. amd64
// and arm64 are both LP64 little-endian and share these (the generic
// layouts); what only x86-64 has carries an X86 prefix. layout_test.go
// checks them against x/sys/unix where it defines the struct.

// PageSize is the page size kbox assumes for guest memory and ELF
// mapping. arm64 kernels may use 16 or 64 KiB pages: the arm64 port must
// read the host's (AT_PAGESZ) where this matters.
const PageSize = 4096

// siginfo_t: 128 bytes; the fields kbox fills for signals it synthesizes.
const (
	SizeofSiginfo  = 128
	SiginfoSigno   = 0
	SiginfoCode    = 8
	SiginfoPid     = 16 // _kill._pid (SI_USER, SI_TKILL)
	SiginfoUid     = 20 // _kill._uid
	SiginfoFaultIP = 16 // _sigfault._addr
)

// KSigaction is the kernel's struct sigaction (not libc's): handler,
// flags, restorer, then a 64-bit mask.
type KSigaction struct{ Handler, Flags, Restorer, Mask uint64 }

// SizeofKSigaction is the size rt_sigaction reads and writes (with an
// 8-byte sigset).
const SizeofKSigaction = 32

// DecodeKSigaction reads a KSigaction from b (SizeofKSigaction bytes).
func DecodeKSigaction(b []byte) KSigaction {
	le := binary.LittleEndian
	return KSigaction{Handler: le.Uint64(b[0:]), Flags: le.Uint64(b[8:]), Restorer: le.Uint64(b[16:]), Mask: le.Uint64(b[24:])}
}

// Encode writes a into b (SizeofKSigaction bytes).
func (a KSigaction) Encode(b []byte) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], a.Handler)
	le.PutUint64(b[8:], a.Flags)
	le.PutUint64(b[16:], a.Restorer)
	le.PutUint64(b[24:], a.Mask)
}

// StackT is stack_t (sigaltstack): ss_sp, ss_flags (an int), ss_size.
type StackT struct {
	SP    uint64
	Flags uint32
	Size  uint64
}

// SizeofStackT is sizeof(stack_t).
const SizeofStackT = 24

// DecodeStackT reads a StackT from b (SizeofStackT bytes).
func DecodeStackT(b []byte) StackT {
	le := binary.LittleEndian
	return StackT{SP: le.Uint64(b[0:]), Flags: le.Uint32(b[8:]), Size: le.Uint64(b[16:])}
}

// Encode writes s into b (SizeofStackT bytes; the padding after ss_flags
// is zeroed).
func (s StackT) Encode(b []byte) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], s.SP)
	le.PutUint64(b[8:], uint64(s.Flags))
	le.PutUint64(b[16:], s.Size)
}

// Msghdr is struct msghdr.
type Msghdr struct {
	Name       uint64
	Namelen    uint32
	Iov        uint64
	Iovlen     uint64
	Control    uint64
	Controllen uint64
	Flags      int32
}

// SizeofMsghdr is sizeof(struct msghdr); MsghdrFlags the offset of
// msg_flags, which recvmsg writes back.
const (
	SizeofMsghdr = 56
	MsghdrFlags  = 48
)

// DecodeMsghdr reads a Msghdr from b (SizeofMsghdr bytes).
func DecodeMsghdr(b []byte) Msghdr {
	le := binary.LittleEndian
	return Msghdr{Name: le.Uint64(b[0:]), Namelen: le.Uint32(b[8:]), Iov: le.Uint64(b[16:]), Iovlen: le.Uint64(b[24:]),
		Control: le.Uint64(b[32:]), Controllen: le.Uint64(b[40:]), Flags: int32(le.Uint32(b[48:]))}
}

// Cmsghdr is struct cmsghdr; its data follows at SizeofCmsghdr.
type Cmsghdr struct {
	Len         uint64
	Level, Type int32
}

// SizeofCmsghdr is sizeof(struct cmsghdr).
const SizeofCmsghdr = 16

// DecodeCmsghdr reads a Cmsghdr from b (SizeofCmsghdr bytes).
func DecodeCmsghdr(b []byte) Cmsghdr {
	le := binary.LittleEndian
	return Cmsghdr{Len: le.Uint64(b[0:]), Level: int32(le.Uint32(b[8:])), Type: int32(le.Uint32(b[12:]))}
}

// struct sockaddr_un: a 16-bit family, then the path.
const (
	SockaddrUnPath   = 2
	SizeofSockaddrUn = 110
)

// x86-64's FPU state in a signal frame: the legacy FXSAVE area, and the
// software-reserved bytes in it that announce an extended (XSAVE) area.
const (
	X86FPStateLegacySize = 512
	X86FPStateSWReserved = 464        // offset of struct _fpx_sw_bytes
	X86FPXStateMagic1    = 0x46505853 // "FPXS": _fpx_sw_bytes.magic1
)
