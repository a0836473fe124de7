package dispatch

import (
	"encoding/binary"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/policy"
)

// ioctl. The filter allows every request but a few: the terminal-input
// ones (denied), the SIGIO owner and terminal foreground group ones (which
// name a process: signals.go), and the file-system families below, whose
// requests change inodes through any descriptor of the owner's file
// (chattr's FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR, FS_IOC_SETVERSION, ...) or
// the file system itself. Those are served here so that a descriptor of a
// read-only mount stays read-only (fs_fdwrite.go):
//
//   - requests that only read: continued;
//   - the inode-changing requests kbox knows: checked and run by kbox on
//     its duplicate of the descriptor, with kbox's copy of the argument;
//   - requests on the whole host file system (freeze, thaw, label,
//     shutdown): refused (EPERM);
//   - any other request of these families (btrfs, xfs, ext4, f2fs, fscrypt
//     and fs-verity specifics, whose arguments kbox does not parse):
//     checked on kbox's duplicate, then continued, which is sound only
//     while nothing else can renumber the caller's descriptors
//     (fdTableStable); otherwise refused (EPERM).
//
// The families are policy.IoctlFamilies. FICLONE, FICLONERANGE and
// FIDEDUPERANGE name further descriptors: their
// destinations are checked like the request's own.

// Requests by number (linux/fs.h; x86-64 and arm64 share them).
const (
	fsIocGetflags      = 0x80086601 // FS_IOC_GETFLAGS
	fsIoc32Getflags    = 0x80046601 // FS_IOC32_GETFLAGS
	fsIocSetflags      = 0x40086602 // FS_IOC_SETFLAGS (reads an int)
	fsIoc32Setflags    = 0x40046602 // FS_IOC32_SETFLAGS
	fsIocGetversion    = 0x80087601 // FS_IOC_GETVERSION
	fsIoc32Getversion  = 0x80047601 // FS_IOC32_GETVERSION
	fsIocSetversion    = 0x40087602 // FS_IOC_SETVERSION (reads an int)
	fsIoc32Setversion  = 0x40047602 // FS_IOC32_SETVERSION
	fsIocFiemap        = 0xc020660b // FS_IOC_FIEMAP
	fsIocFsgetxattr    = 0x801c581f // FS_IOC_FSGETXATTR
	fsIocFssetxattr    = 0x401c5820 // FS_IOC_FSSETXATTR
	fsIocGetfslabel    = 0x81009431 // FS_IOC_GETFSLABEL
	fsIocSetfslabel    = 0x41009432 // FS_IOC_SETFSLABEL
	fiFreeze           = 0xc0045877 // FIFREEZE
	fiThaw             = 0xc0045878 // FITHAW
	fsIocShutdown      = 0x8004587d // FS_IOC_SHUTDOWN (EXT4_IOC_SHUTDOWN, XFS_IOC_GOINGDOWN)
	fsxattrSize        = 28         // struct fsxattr
	fileCloneRangeSize = 32         // struct file_clone_range
	dedupeHeaderSize   = 24         // struct file_dedupe_range without info[]
	dedupeInfoSize     = 32         // struct file_dedupe_range_info
)

// ioctlReadOnly are the family requests that change nothing.
var ioctlReadOnly = map[uint32]bool{
	fsIocGetflags: true, fsIoc32Getflags: true, fsIocGetversion: true, fsIoc32Getversion: true,
	fsIocFiemap: true, fsIocFsgetxattr: true, fsIocGetfslabel: true,
	unix.FS_IOC_GET_ENCRYPTION_POLICY: true, unix.FS_IOC_GET_ENCRYPTION_POLICY_EX: true,
	unix.FS_IOC_GET_ENCRYPTION_PWSALT: true, unix.FS_IOC_GET_ENCRYPTION_KEY_STATUS: true,
	unix.FS_IOC_GET_ENCRYPTION_NONCE: true, unix.FS_IOC_MEASURE_VERITY: true, unix.FS_IOC_READ_VERITY_METADATA: true,
}

// ioctlWholeFS act on the host file system, not on a file.
var ioctlWholeFS = map[uint32]bool{fsIocSetfslabel: true, fiFreeze: true, fiThaw: true, fsIocShutdown: true}

func init() {
	register(sysIoctl, "ioctl")
}

// sysIoctl sees the requests the filter notifies (see the top of this file).
func sysIoctl(e *Engine, r *Request) Result {
	req := r.Uint(1)
	switch req {
	case abi.FIOSETOWN, abi.SIOCSPGRP:
		return sysIoctlOwner(e, r)
	case unix.TIOCSPGRP:
		return sysTiocspgrp(e, r)
	}
	if !isFSIoctl(req) {
		return Cont()
	}
	return e.fsIoctl(r, req)
}

func isFSIoctl(req uint32) bool {
	typ := (req >> 8) & 0xff
	for _, f := range policy.IoctlFamilies {
		if typ == f {
			return true
		}
	}
	return false
}

func (e *Engine) fsIoctl(r *Request, req uint32) Result {
	fd := r.Int(0)
	switch {
	case ioctlReadOnly[req]:
		return Cont()
	case ioctlWholeFS[req]:
		return e.denied(r, unix.EPERM, ioctlName(req)+" acts on the host's file system")
	}
	switch req {
	case fsIocSetflags, fsIoc32Setflags, fsIocSetversion, fsIoc32Setversion, fsIocFssetxattr, unix.FICLONE, unix.FICLONERANGE:
		// The kernel looks the descriptor up (EBADF) before it reads
		// the argument (EFAULT), and checks the mount after that.
		h, err := r.FDs.DupFD(fd)
		if err != nil {
			return Fail(err)
		}
		defer unix.Close(h)
		return e.changeIoctl(r, req, h, fd)
	case unix.FIDEDUPERANGE:
		return e.dedupeRange(r, fd)
	}
	// A request kbox does not parse: check the descriptor, then continue
	// if the guest cannot renumber it meanwhile.
	h, err := r.FDs.DupFD(fd)
	if err != nil {
		return Fail(err)
	}
	var st unix.Stat_t
	err = unix.Fstat(h, &st)
	device := err == nil && (st.Mode&unix.S_IFMT == unix.S_IFCHR || st.Mode&unix.S_IFMT == unix.S_IFBLK)
	en, why := unix.Errno(0), ""
	if !device {
		// A device's requests go to its driver, not to a file.
		en, why = e.fdChangeCheck(e.ctx(r), h)
	}
	unix.Close(h)
	if en != 0 {
		return e.denied(r, en, ioctlName(req)+" on descriptor "+strconv.Itoa(fd)+": "+why)
	}
	if ok, why := e.fdTableStable(r); !ok {
		return e.denied(r, unix.EPERM, ioctlName(req)+" on descriptor "+strconv.Itoa(fd)+
			" cannot be checked safely: "+why)
	}
	return Cont()
}

// changeIoctl runs an inode-changing request kbox knows on h, its
// duplicate of guest descriptor fd, with kbox's copy of the argument.
func (e *Engine) changeIoctl(r *Request, req uint32, h, fd int) Result {
	switch req {
	case fsIocSetflags, fsIoc32Setflags, fsIocSetversion, fsIoc32Setversion:
		// The kernel reads an int whatever the request's declared size.
		var b [4]byte
		if err := r.Mem.Read(r.Ptr(2), b[:]); err != nil {
			return Fail(err)
		}
		v := int32(binary.LittleEndian.Uint32(b[:]))
		if res, ok := e.changeCheck(r, h, fd, ioctlName(req)); !ok {
			return res
		}
		return errOf(ioctlIntPtr(h, uint(req), &v))
	case fsIocFssetxattr:
		b := make([]byte, fsxattrSize)
		if err := r.Mem.Read(r.Ptr(2), b); err != nil {
			return Fail(err)
		}
		if res, ok := e.changeCheck(r, h, fd, ioctlName(req)); !ok {
			return res
		}
		return errOf(ioctlBuf(h, uint(req), b))
	case unix.FICLONE:
		src, err := r.FDs.DupFD(r.Int(2))
		if err != nil {
			return Fail(err)
		}
		defer unix.Close(src)
		if res, ok := e.changeCheck(r, h, fd, ioctlName(req)); !ok {
			return res
		}
		return errOf(unix.IoctlFileClone(h, src))
	}
	// FICLONERANGE
	b := make([]byte, fileCloneRangeSize)
	if err := r.Mem.Read(r.Ptr(2), b); err != nil {
		return Fail(err)
	}
	src, err := r.FDs.DupFD(int(int32(binary.LittleEndian.Uint64(b))))
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(src)
	if res, ok := e.changeCheck(r, h, fd, ioctlName(req)); !ok {
		return res
	}
	return errOf(unix.IoctlFileCloneRange(h, &unix.FileCloneRange{Src_fd: int64(src),
		Src_offset: binary.LittleEndian.Uint64(b[8:]), Src_length: binary.LittleEndian.Uint64(b[16:]),
		Dest_offset: binary.LittleEndian.Uint64(b[24:])}))
}

// dedupeRange serves FIDEDUPERANGE: fd is the source (read), the
// destinations in the argument's info[] are changed, each checked. kbox
// runs the request with its own duplicates and copies the results back.
func (e *Engine) dedupeRange(r *Request, fd int) Result {
	// The source first (EBADF), then the argument, as the kernel.
	src, err := r.FDs.DupFD(fd)
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(src)
	hdr := make([]byte, dedupeHeaderSize)
	if err := r.Mem.Read(r.Ptr(2), hdr); err != nil {
		return Fail(err)
	}
	count := int(binary.LittleEndian.Uint16(hdr[16:]))
	if dedupeHeaderSize+count*dedupeInfoSize > 4096 {
		return Fail(unix.ENOMEM) // the kernel's limit: one page
	}
	infos := make([]byte, count*dedupeInfoSize)
	if count > 0 {
		if err := r.Mem.Read(r.Ptr(2)+dedupeHeaderSize, infos); err != nil {
			return Fail(err)
		}
	}
	arg := unix.FileDedupeRange{Src_offset: binary.LittleEndian.Uint64(hdr), Src_length: binary.LittleEndian.Uint64(hdr[8:]),
		Reserved1: binary.LittleEndian.Uint16(hdr[18:]), Reserved2: binary.LittleEndian.Uint32(hdr[20:])}
	refused := make([]unix.Errno, count)
	for i := 0; i < count; i++ {
		in := infos[i*dedupeInfoSize:]
		info := unix.FileDedupeRangeInfo{Dest_fd: -1, Dest_offset: binary.LittleEndian.Uint64(in[8:]),
			Reserved: binary.LittleEndian.Uint32(in[28:])}
		guestFD := int(int32(binary.LittleEndian.Uint64(in)))
		if h, err := r.FDs.DupFD(guestFD); err == nil {
			if en, why := e.fdChangeCheck(e.ctx(r), h); en != 0 {
				e.Verbosef("pid %d: ioctl FIDEDUPERANGE into descriptor %d refused (%s): %s", r.Tgid, guestFD, unix.ErrnoName(en), why)
				refused[i] = en
				unix.Close(h)
			} else {
				info.Dest_fd = int64(h)
				defer unix.Close(h)
			}
		}
		arg.Info = append(arg.Info, info)
	}
	if err := unix.IoctlFileDedupeRange(src, &arg); err != nil {
		return Fail(err)
	}
	for i, info := range arg.Info {
		out := infos[i*dedupeInfoSize:]
		binary.LittleEndian.PutUint64(out[16:], info.Bytes_deduped)
		status := info.Status
		if refused[i] != 0 {
			status = -int32(refused[i])
		}
		binary.LittleEndian.PutUint32(out[24:], uint32(status))
	}
	if count > 0 {
		if err := r.Mem.Write(r.Ptr(2)+dedupeHeaderSize, infos); err != nil {
			return Fail(err)
		}
	}
	return Ok(0)
}

// ioctlName names a file-system request for -v.
func ioctlName(req uint32) string {
	switch req {
	case fsIocSetflags, fsIoc32Setflags:
		return "FS_IOC_SETFLAGS"
	case fsIocSetversion, fsIoc32Setversion:
		return "FS_IOC_SETVERSION"
	case fsIocFssetxattr:
		return "FS_IOC_FSSETXATTR"
	case unix.FICLONE:
		return "FICLONE"
	case unix.FICLONERANGE:
		return "FICLONERANGE"
	case fsIocSetfslabel:
		return "FS_IOC_SETFSLABEL"
	case fiFreeze:
		return "FIFREEZE"
	case fiThaw:
		return "FITHAW"
	case fsIocShutdown:
		return "FS_IOC_SHUTDOWN"
	}
	return "0x" + strconv.FormatUint(uint64(req), 16)
}
