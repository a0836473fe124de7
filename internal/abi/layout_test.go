//go:build linux && (amd64 || arm64)

package abi

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestLayoutsMatchXSys: the layouts are x/sys/unix's where it has them.
func TestLayoutsMatchXSys(t *testing.T) {
	var m unix.Msghdr
	var c unix.Cmsghdr
	var sa unix.RawSockaddrUnix
	var si unix.Siginfo
	for _, k := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof msghdr", SizeofMsghdr, unsafe.Sizeof(m)},
		{"msg_iov", 16, unsafe.Offsetof(m.Iov)},
		{"msg_control", 32, unsafe.Offsetof(m.Control)},
		{"msg_flags", MsghdrFlags, unsafe.Offsetof(m.Flags)},
		{"sizeof cmsghdr", SizeofCmsghdr, unsafe.Sizeof(c)},
		{"cmsg_type", 12, unsafe.Offsetof(c.Type)},
		{"sun_path", SockaddrUnPath, unsafe.Offsetof(sa.Path)},
		{"sizeof sockaddr_un", SizeofSockaddrUn, unsafe.Sizeof(sa)},
		{"sizeof siginfo", SizeofSiginfo, unsafe.Sizeof(si)},
		{"si_code", SiginfoCode, unsafe.Offsetof(si.Code)},
		{"page size", PageSize, uintptr(unix.Getpagesize())},
	} {
		if k.got != k.want {
			t.Errorf("%s = %d, x/sys says %d", k.name, k.got, k.want)
		}
	}
}

// TestLayoutRoundTrips: what Encode writes, Decode reads back.
func TestLayoutRoundTrips(t *testing.T) {
	a := KSigaction{Handler: 1 << 40, Flags: 0x04000000, Restorer: 3, Mask: 1<<63 | 5}
	var b [SizeofKSigaction]byte
	a.Encode(b[:])
	if got := DecodeKSigaction(b[:]); got != a {
		t.Errorf("sigaction %+v read back as %+v", a, got)
	}
	s := StackT{SP: 0x7fff0000, Flags: 2, Size: 1 << 20}
	var sb [SizeofStackT]byte
	for i := range sb {
		sb[i] = 0xff
	}
	s.Encode(sb[:])
	if got := DecodeStackT(sb[:]); got != s {
		t.Errorf("stack_t %+v read back as %+v", s, got)
	}
	if sb[12] != 0 || sb[15] != 0 {
		t.Errorf("stack_t padding not zeroed: % x", sb[8:16])
	}
}
