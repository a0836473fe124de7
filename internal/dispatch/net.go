package dispatch

import (
	"bytes"
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

// Socket calls that carry an address are served on kbox's duplicate of the
// guest's socket, with AF_UNIX path addresses resolved in the guest
// namespace and handed to the kernel as kbox-built /proc/self/fd paths. They
// are never continued: the address lives in guest memory and another guest
// thread could change it between kbox's check and the kernel's read.

func init() {
	register(sysBind, "bind")
	register(sysConnect, "connect")
	register(sysSendto, "sendto")
	register(sysSendmsg, "sendmsg")
	register(sysSendmmsg, "sendmmsg")
}

const (
	sockaddrMax   = 128 // sizeof(struct sockaddr_storage)
	sunPathMax    = 108
	sendChunkMax  = 1 << 20
	iovMax        = 1024
	controlMax    = 64 << 10
	msghdrSize    = 56
	mmsghdrSize   = 64
	cmsgHdrSize   = 16
	scmRightsType = unix.SCM_RIGHTS
)

// sockAddr is a translated address; release frees what keeps it valid.
type sockAddr struct {
	raw     []byte
	release func()
}

func (a *sockAddr) free() {
	if a != nil && a.release != nil {
		a.release()
	}
}

// readSockaddr reads a guest sockaddr and translates an AF_UNIX path.
func (e *Engine) readSockaddr(r *Request, addr uint64, length uint32, create bool) (*sockAddr, error) {
	if length > sockaddrMax {
		return nil, unix.EINVAL
	}
	raw := make([]byte, length)
	if err := r.Mem.Read(addr, raw); err != nil {
		return nil, err
	}
	if length < 2 || binary.LittleEndian.Uint16(raw) != unix.AF_UNIX || length == 2 || raw[2] == 0 {
		return &sockAddr{raw: raw}, nil // not a path: abstract, unnamed, or another family
	}
	p := raw[2:]
	if i := bytes.IndexByte(p, 0); i >= 0 {
		p = p[:i]
	}
	if create {
		l, err := e.resolveAt(r, atFDCWD, string(p), 0)
		if err != nil {
			return nil, err
		}
		if l.Exists() {
			l.Release()
			return nil, unix.EADDRINUSE
		}
		if err := writable(l); err != nil {
			l.Release()
			return nil, err
		}
		return unixAddr(procFD(l.Parent.FD())+"/"+l.Name, l)
	}
	l, err := e.resolveAt(r, atFDCWD, string(p), vfs.FollowFinal)
	if err != nil {
		return nil, err
	}
	if !l.Exists() || l.Magic {
		l.Release()
		return nil, unix.ENOENT
	}
	if l.Stat.Mode&unix.S_IFMT != unix.S_IFSOCK {
		l.Release()
		return nil, unix.ECONNREFUSED
	}
	return unixAddr(procFD(l.Obj.FD()), l)
}

func unixAddr(hostPath string, l *vfs.Lookup) (*sockAddr, error) {
	if len(hostPath) >= sunPathMax {
		l.Release()
		return nil, unix.ENAMETOOLONG
	}
	raw := make([]byte, 2+len(hostPath)+1)
	binary.LittleEndian.PutUint16(raw, unix.AF_UNIX)
	copy(raw[2:], hostPath)
	return &sockAddr{raw: raw, release: l.Release}, nil
}

func rawAddrCall(nr uintptr, fd int, a *sockAddr) error {
	var p uintptr
	if len(a.raw) > 0 {
		p = ptrOf(a.raw)
	}
	_, _, en := unix.Syscall(nr, uintptr(fd), p, uintptr(len(a.raw)))
	keepAlive(a.raw)
	if en != 0 {
		return en
	}
	return nil
}

func (e *Engine) addrCall(r *Request, nr uintptr, create bool) Result {
	a, err := e.readSockaddr(r, r.Ptr(1), r.Uint(2), create)
	if err != nil {
		return Fail(err)
	}
	defer a.free()
	s, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(s)
	if nr == unix.SYS_CONNECT {
		r.MayBlock()
	}
	return errOf(rawAddrCall(nr, s, a))
}

func sysBind(e *Engine, r *Request) Result    { return e.addrCall(r, unix.SYS_BIND, true) }
func sysConnect(e *Engine, r *Request) Result { return e.addrCall(r, unix.SYS_CONNECT, false) }

// sendto reaches kbox only with a destination address (the filter lets
// sendto with a NULL address through).
func sysSendto(e *Engine, r *Request) Result {
	var a *sockAddr
	if r.Ptr(4) != 0 {
		var err error
		if a, err = e.readSockaddr(r, r.Ptr(4), r.Uint(5), false); err != nil {
			return Fail(err)
		}
		defer a.free()
	} else {
		a = &sockAddr{}
	}
	n := r.Args[2]
	if n > sendChunkMax {
		n = sendChunkMax
	}
	data := make([]byte, n)
	if err := r.Mem.Read(r.Ptr(1), data); err != nil {
		return Fail(err)
	}
	s, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(s)
	r.MayBlock()
	return sendmsgHost(s, data, nil, a.raw, r.Int(3))
}

// guestMsg is a guest msghdr copied and translated.
type guestMsg struct {
	data    []byte
	oob     []byte
	addr    *sockAddr
	dupFDs  []int
	flags   int
	iovDone bool
}

func (m *guestMsg) free() {
	m.addr.free()
	for _, fd := range m.dupFDs {
		unix.Close(fd)
	}
}

func (e *Engine) readMsghdr(r *Request, addr uint64) (*guestMsg, error) {
	var h [msghdrSize]byte
	if err := r.Mem.Read(addr, h[:]); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	name, namelen := le.Uint64(h[0:]), le.Uint32(h[8:])
	iov, iovlen := le.Uint64(h[16:]), le.Uint64(h[24:])
	ctl, ctllen := le.Uint64(h[32:]), le.Uint64(h[40:])
	m := &guestMsg{addr: &sockAddr{}}
	if name != 0 && namelen > 0 {
		a, err := e.readSockaddr(r, name, namelen, false)
		if err != nil {
			return nil, err
		}
		m.addr = a
	}
	if iovlen > iovMax {
		m.free()
		return nil, unix.EMSGSIZE
	}
	if iovlen > 0 {
		vec := make([]byte, 16*iovlen)
		if err := r.Mem.Read(iov, vec); err != nil {
			m.free()
			return nil, err
		}
		for i := uint64(0); i < iovlen; i++ {
			base, n := le.Uint64(vec[16*i:]), le.Uint64(vec[16*i+8:])
			if room := uint64(sendChunkMax - len(m.data)); n > room {
				n = room
			}
			if n == 0 {
				continue
			}
			chunk := make([]byte, n)
			if err := r.Mem.Read(base, chunk); err != nil {
				m.free()
				return nil, err
			}
			m.data = append(m.data, chunk...)
		}
	}
	if ctl != 0 && ctllen > 0 {
		if ctllen > controlMax {
			m.free()
			return nil, unix.ENOBUFS
		}
		m.oob = make([]byte, ctllen)
		if err := r.Mem.Read(ctl, m.oob); err != nil {
			m.free()
			return nil, err
		}
		if err := m.translateRights(r); err != nil {
			m.free()
			return nil, err
		}
	}
	return m, nil
}

// translateRights replaces the guest's descriptor numbers in SCM_RIGHTS
// messages with kbox's duplicates of them.
func (m *guestMsg) translateRights(r *Request) error {
	le := binary.LittleEndian
	b := m.oob
	for off := 0; off+cmsgHdrSize <= len(b); {
		clen := int(le.Uint64(b[off:]))
		level, typ := int32(le.Uint32(b[off+8:])), int32(le.Uint32(b[off+12:]))
		if clen < cmsgHdrSize || off+clen > len(b) {
			return unix.EINVAL
		}
		if level == unix.SOL_SOCKET && typ == scmRightsType {
			for p := off + cmsgHdrSize; p+4 <= off+clen; p += 4 {
				fd, err := r.FDs.DupFD(int(int32(le.Uint32(b[p:]))))
				if err != nil {
					return unix.EBADF
				}
				m.dupFDs = append(m.dupFDs, fd)
				le.PutUint32(b[p:], uint32(fd))
			}
		}
		off += (clen + 7) &^ 7
	}
	return nil
}

func sendmsgHost(s int, data, oob, to []byte, flags int) Result {
	var h unix.Msghdr
	var iov unix.Iovec
	if len(data) > 0 {
		iov.Base = &data[0]
		iov.SetLen(len(data))
		h.Iov = &iov
		h.SetIovlen(1)
	}
	if len(oob) > 0 {
		h.Control = &oob[0]
		h.SetControllen(len(oob))
	}
	if len(to) > 0 {
		h.Name = &to[0]
		h.Namelen = uint32(len(to))
	}
	n, _, en := unix.Syscall(unix.SYS_SENDMSG, uintptr(s), uintptr(ptrOfMsghdr(&h)), uintptr(flags))
	keepAlive(data, oob, to)
	if en != 0 {
		return Fail(en)
	}
	return Ok(int64(n))
}

func sysSendmsg(e *Engine, r *Request) Result {
	m, err := e.readMsghdr(r, r.Ptr(1))
	if err != nil {
		return Fail(err)
	}
	defer m.free()
	s, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(s)
	r.MayBlock()
	return sendmsgHost(s, m.data, m.oob, m.addr.raw, r.Int(2))
}

func sysSendmmsg(e *Engine, r *Request) Result {
	vlen := r.Uint(2)
	if vlen > iovMax {
		vlen = iovMax
	}
	s, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(s)
	r.MayBlock()
	sent := 0
	for i := uint32(0); i < vlen; i++ {
		entry := r.Ptr(1) + uint64(i)*mmsghdrSize
		m, err := e.readMsghdr(r, entry)
		if err != nil {
			if sent > 0 {
				break
			}
			return Fail(err)
		}
		res := sendmsgHost(s, m.data, m.oob, m.addr.raw, r.Int(3))
		m.free()
		if res.Kind == Errno {
			if sent > 0 {
				break
			}
			return res
		}
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(res.Val))
		if err := r.Mem.Write(entry+msghdrSize, b[:]); err != nil {
			return Fail(err)
		}
		sent++
	}
	return Ok(int64(sent))
}
