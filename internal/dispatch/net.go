package dispatch

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
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
	register(sysGetsockname, "getsockname")
	register(sysGetpeername, "getpeername")
}

// unixNames remembers the guest's names of AF_UNIX addresses kbox bound or
// connected to, because the kernel reports the name kbox gave it (a bare
// name, see bindThread) and getsockname/getpeername must answer with the
// guest's: the sun_path the guest bound, as given (Linux reports a relative
// name as relative). Keyed by socket inode; by host name as a fallback (an
// accepted socket reports its listener's name).
type unixNames struct {
	mu     sync.Mutex
	bound  map[uint64]string    // socket inode -> name it is bound to
	peer   map[uint64]string    // socket inode -> name of the socket it connected to
	byName map[string]string    // name given to the kernel -> guest name (last wins)
	files  map[[2]uint64]string // socket file (fileKey) -> name it was bound with
}

// fileKey identifies a socket file by device and inode, the inode cut to
// 32 bits as sock_diag reports it (boundFile).
func fileKey(dev, ino uint64) [2]uint64 { return [2]uint64{dev, uint64(uint32(ino))} }

func newUnixNames() *unixNames {
	return &unixNames{bound: map[uint64]string{}, peer: map[uint64]string{}, byName: map[string]string{},
		files: map[[2]uint64]string{}}
}

func sockIno(fd int) uint64 {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return 0
	}
	return st.Ino
}

const (
	sockaddrMax   = 128 // sizeof(struct sockaddr_storage)
	sockaddrUnMax = 110 // sizeof(struct sockaddr_un)
	sunPathMax    = 108
	sendChunkMax  = 1 << 20
	iovMax        = 1024
	controlMax    = 64 << 10
	mmsghdrSize   = 64
	scmRightsType = unix.SCM_RIGHTS
)

// sockAddr is a translated address; release frees what keeps it valid.
// dirfd >= 0 means raw holds a name relative to that directory.
type sockAddr struct {
	raw     []byte
	release func()
	dirfd   int
	guest   string    // AF_UNIX: the guest's name of the address
	file    [2]uint64 // AF_UNIX connect: the socket file's (dev, ino)
	// unixSock: the call is on an AF_UNIX socket with an AF_UNIX address
	// (an abstract one is tagged: net_abstract.go).
	unixSock bool
	// autobind: bind(2) with only sun_family, done by kbox inside the
	// tag space.
	autobind bool
	// inet: --net=user's translation of an AF_INET destination.
	inet *inetDst
}

func (a *sockAddr) free() {
	if a != nil && a.release != nil {
		a.release()
	}
}

// readRawSockaddr copies a guest sockaddr (move_addr_to_kernel: longer
// than sockaddr_storage is EINVAL).
func readRawSockaddr(r *Request, addr uint64, length uint32) ([]byte, error) {
	if length > sockaddrMax {
		return nil, unix.EINVAL
	}
	raw := make([]byte, length)
	if err := r.Mem.Read(addr, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// sockDomain returns the address family of host socket s (ENOTSOCK for
// another descriptor).
func sockDomain(s int) (int, error) {
	return unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_DOMAIN)
}

// readSockaddr reads a guest sockaddr for a call on host socket s and
// translates an AF_UNIX path.
func (e *Engine) readSockaddr(r *Request, s int, addr uint64, length uint32, create bool) (*sockAddr, error) {
	raw, err := readRawSockaddr(r, addr, length)
	if err != nil {
		return nil, err
	}
	return e.translateSockaddr(r, s, raw, create)
}

// translateSockaddr translates the AF_UNIX path in raw, an address for
// host socket s. Only an AF_UNIX socket's address is a path: for another
// family the kernel reads no path, and answers itself.
func (e *Engine) translateSockaddr(r *Request, s int, raw []byte, create bool) (*sockAddr, error) {
	if !create && e.inetSock(s) {
		return e.userDest(s, raw)
	}
	length := len(raw)
	if length < 2 || binary.LittleEndian.Uint16(raw) != unix.AF_UNIX {
		return &sockAddr{raw: raw, dirfd: -1}, nil // another family
	}
	if d, err := sockDomain(s); err != nil || d != unix.AF_UNIX {
		return &sockAddr{raw: raw, dirfd: -1}, nil // the kernel refuses it
	}
	if create && length == abi.SockaddrUnPath {
		return &sockAddr{raw: raw, dirfd: -1, unixSock: true, autobind: true}, nil // unix_bind, before unix_validate_addr
	}
	if length > sockaddrUnMax {
		return nil, unix.EINVAL // unix_validate_addr
	}
	if length == abi.SockaddrUnPath {
		return &sockAddr{raw: raw, dirfd: -1, unixSock: true}, nil // unnamed
	}
	if raw[abi.SockaddrUnPath] == 0 {
		return &sockAddr{raw: e.abstract.hostAbstract(raw), dirfd: -1, unixSock: true}, nil
	}
	p := raw[abi.SockaddrUnPath:]
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
		if err := e.copyUp(r, l, vfs.ChangeEntry); err != nil {
			l.Release()
			return nil, err
		}
		// Bound as the bare name from a thread whose working directory is
		// the resolved parent (see bindThread): the name keeps all of
		// sun_path's 107 bytes, as it would natively.
		a, err := unixAddr(l.Name, l)
		if err == nil {
			a.dirfd = l.Parent.FD()
			a.guest = string(p)
			a.unixSock = true
		}
		return a, err
	}
	l, err := e.resolveAt(r, atFDCWD, string(p), vfs.FollowFinal)
	if err != nil {
		return nil, err
	}
	if !l.Exists() || l.Magic {
		l.Release()
		return nil, unix.ENOENT
	}
	if l.Type() != unix.S_IFSOCK {
		l.Release()
		return nil, unix.ECONNREFUSED
	}
	a, err := unixAddr(procFD(l.Obj.FD()), l)
	if err == nil {
		st, serr := l.Stat()
		if serr != nil {
			a.free()
			return nil, serr
		}
		a.guest = l.Path
		a.file = fileKey(st.Dev, st.Ino)
		a.unixSock = true
	}
	return a, err
}

func unixAddr(hostPath string, l *vfs.Lookup) (*sockAddr, error) {
	if len(hostPath) >= sunPathMax {
		l.Release()
		return nil, unix.ENAMETOOLONG
	}
	raw := make([]byte, 2+len(hostPath)+1)
	binary.LittleEndian.PutUint16(raw, unix.AF_UNIX)
	copy(raw[abi.SockaddrUnPath:], hostPath)
	return &sockAddr{raw: raw, release: l.Release, dirfd: -1}, nil
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

// addrCall serves bind (create) and connect on kbox's duplicate of the
// socket, in the kernel's order: the descriptor is looked up first
// (EBADF); bind then needs a socket (ENOTSOCK) before it copies the
// address, connect copies it first.
func (e *Engine) addrCall(r *Request, nr uintptr, create bool) Result {
	s, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(s)
	_, notSock := sockDomain(s)
	if notSock == unix.ENOTSOCK && create {
		return Fail(unix.ENOTSOCK)
	}
	raw, err := readRawSockaddr(r, r.Ptr(1), r.Uint(2))
	if err != nil {
		return Fail(err)
	}
	if notSock == unix.ENOTSOCK {
		return Fail(unix.ENOTSOCK)
	}
	if e.inetSock(s) {
		if create {
			return e.userBind(r, s, raw)
		}
		return e.userConnect(r, s, raw)
	}
	a, err := e.translateSockaddr(r, s, raw, create)
	if err != nil {
		return Fail(err)
	}
	defer a.free()
	if nr == unix.SYS_CONNECT && sockMayBlock(s, 0) {
		if err := r.MayBlock(); err != nil {
			return Fail(err)
		}
	}
	if a.unixSock && !create {
		if err := e.abstract.bindBeforeSend(s); err != nil {
			return Fail(err)
		}
	}
	if a.autobind {
		if unbound(s) {
			err = e.abstract.autobind(s)
		}
	} else if a.dirfd >= 0 {
		// The socket file's mode honours the guest's umask (fs_umask.go).
		var mask int
		if mask, err = guestUmask(r); err == nil {
			err = e.bindThread.bindAt(s, a, mask)
		}
	} else {
		err = rawAddrCall(nr, s, a)
	}
	if err == nil && a.guest != "" {
		ino := sockIno(s)
		e.names.mu.Lock()
		if nr == unix.SYS_BIND {
			name := string(bytes.TrimRight(a.raw[abi.SockaddrUnPath:], "\x00"))
			e.names.bound[ino] = a.guest
			e.names.byName[name] = a.guest
			var st unix.Stat_t
			if unix.Fstatat(a.dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
				e.names.files[fileKey(st.Dev, st.Ino)] = a.guest
			}
		} else if g, ok := e.names.files[a.file]; ok {
			// The peer's name is the one its socket was bound with.
			e.names.peer[ino] = g
		} else {
			e.names.peer[ino] = a.guest
		}
		e.names.mu.Unlock()
	}
	return errOf(err)
}

// nameCall serves getsockname (peer=false) and getpeername on kbox's
// duplicate, translating an AF_UNIX path kbox chose back to the guest's.
//
// The kernel's order: the descriptor (EBADF, ENOTSOCK), the name (ENOTCONN),
// then the caller's length (EFAULT; negative: EINVAL) and buffer (a length
// of 0 leaves the buffer alone).
func (e *Engine) nameCall(r *Request, peer bool) Result {
	s, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(s)
	buf, en := rawSockName(s, peer)
	if en != 0 {
		return Fail(en)
	}
	n := len(buf)
	var lenBuf [4]byte
	if err := r.Mem.Read(r.Ptr(2), lenBuf[:]); err != nil {
		return Fail(err)
	}
	want := int(int32(binary.LittleEndian.Uint32(lenBuf[:])))
	if want < 0 {
		return Fail(unix.EINVAL)
	}
	out := buf[:n]
	if e.nat != nil && n >= sockaddrInLen && binary.LittleEndian.Uint16(buf) == unix.AF_INET {
		out = e.userName(s, out, peer)
	} else if isAbstract(out) {
		out = e.abstract.guestAbstract(out)
	} else if n > abi.SockaddrUnPath && binary.LittleEndian.Uint16(buf) == unix.AF_UNIX && buf[abi.SockaddrUnPath] != 0 {
		host := bytes.TrimRight(buf[abi.SockaddrUnPath:n], "\x00")
		ino := sockIno(s)
		e.names.mu.Lock()
		g, ok := e.names.bound[ino]
		if peer {
			g, ok = e.names.peer[ino]
		}
		e.names.mu.Unlock()
		if !ok && !peer {
			// An accepted socket has its listener's address, and the
			// listener's socket file: the bare name may be another's.
			if k, found := boundFile(s); found {
				e.names.mu.Lock()
				g, ok = e.names.files[k]
				e.names.mu.Unlock()
			}
		}
		if !ok {
			e.names.mu.Lock()
			g, ok = e.names.byName[string(host)]
			e.names.mu.Unlock()
		}
		if ok {
			out = make([]byte, 2+len(g)+1)
			binary.LittleEndian.PutUint16(out, unix.AF_UNIX)
			copy(out[abi.SockaddrUnPath:], g)
		}
	}
	copyLen := len(out)
	if copyLen > want {
		copyLen = want
	}
	if copyLen > 0 {
		if err := r.Mem.Write(r.Ptr(1), out[:copyLen]); err != nil {
			return Fail(err)
		}
	}
	binary.LittleEndian.PutUint32(lenBuf[:], uint32(len(out)))
	if err := r.Mem.Write(r.Ptr(2), lenBuf[:]); err != nil {
		return Fail(err)
	}
	return Ok(0)
}

func sysGetsockname(e *Engine, r *Request) Result { return e.nameCall(r, false) }

// rawSockName is getsockname(2) (or getpeername(2) for peer) of host
// socket s: the address as the kernel reports it, cut to its length.
func rawSockName(s int, peer bool) ([]byte, unix.Errno) {
	buf := make([]byte, sockaddrMax)
	n := uint32(len(buf))
	nr := uintptr(unix.SYS_GETSOCKNAME)
	if peer {
		nr = unix.SYS_GETPEERNAME
	}
	_, _, en := unix.Syscall(nr, uintptr(s), ptrOf(buf), uintptr(ptrOfU32(&n)))
	keepAlive(buf)
	return buf[:min(int(n), len(buf))], en
}
func sysGetpeername(e *Engine, r *Request) Result { return e.nameCall(r, true) }

func sysBind(e *Engine, r *Request) Result    { return e.addrCall(r, unix.SYS_BIND, true) }
func sysConnect(e *Engine, r *Request) Result { return e.addrCall(r, unix.SYS_CONNECT, false) }

// sendSocket duplicates the socket of a send (argument 0) before anything
// is read from the guest, as the kernel looks it up first (EBADF before
// EFAULT), and, when the send may block (its MSG_* flags are argument
// flagsArg), takes its turn before kbox copies up to sendChunkMax bytes:
// at most one copy per blocking slot is held.
func sendSocket(r *Request, flagsArg int) (int, error) {
	s, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return -1, err
	}
	if sockMayBlock(s, r.Int(flagsArg)) {
		if err := r.MayBlock(); err != nil {
			unix.Close(s)
			return -1, err
		}
	}
	return s, nil
}

// sendto reaches kbox only with a destination address (the filter lets
// sendto with a NULL address through).
func sysSendto(e *Engine, r *Request) Result {
	s, err := sendSocket(r, 3)
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(s)
	var a *sockAddr
	if r.Ptr(4) != 0 {
		if a, err = e.readSockaddr(r, s, r.Ptr(4), r.Uint(5), false); err != nil {
			return e.netRefuse(r, err)
		}
		defer a.free()
	} else {
		a = &sockAddr{dirfd: -1}
	}
	n := r.Args[2]
	if n > sendChunkMax {
		n = sendChunkMax
	}
	data := make([]byte, n)
	if err := r.Mem.Read(r.Ptr(1), data); err != nil {
		return Fail(err)
	}
	if err := e.beforeUnixSend(s, a); err != nil {
		return Fail(err)
	}
	res := sendmsgHost(s, data, nil, a.raw, r.Int(3))
	if res.Kind != Errno {
		e.userSent(s, a)
	}
	return res
}

// guestMsg is a guest msghdr copied and translated.
type guestMsg struct {
	data   []byte
	oob    []byte
	addr   *sockAddr
	dupFDs []int
}

func (m *guestMsg) free() {
	m.addr.free()
	for _, fd := range m.dupFDs {
		unix.Close(fd)
	}
}

// readMsghdr copies the guest msghdr at addr for a send on host socket s.
func (e *Engine) readMsghdr(r *Request, s int, addr uint64) (*guestMsg, error) {
	var h [abi.SizeofMsghdr]byte
	if err := r.Mem.Read(addr, h[:]); err != nil {
		return nil, err
	}
	mh := abi.DecodeMsghdr(h[:])
	name, namelen := mh.Name, mh.Namelen
	iov, iovlen := mh.Iov, mh.Iovlen
	ctl, ctllen := mh.Control, mh.Controllen
	m := &guestMsg{addr: &sockAddr{dirfd: -1}}
	if name != 0 && namelen > 0 {
		a, err := e.readSockaddr(r, s, name, namelen, false)
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
		le := binary.LittleEndian
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
	for off := 0; off+abi.SizeofCmsghdr <= len(b); {
		// cmsg_len is a guest size_t: checked against the room left
		// (the kernel's CMSG_OK) before it becomes an int.
		ch := abi.DecodeCmsghdr(b[off:])
		clen64, level, typ := ch.Len, ch.Level, ch.Type
		if clen64 < abi.SizeofCmsghdr || !within(uint64(off), clen64, uint64(len(b))) {
			return unix.EINVAL
		}
		clen := int(clen64)
		if level == unix.SOL_SOCKET && typ == scmRightsType {
			for p := off + abi.SizeofCmsghdr; p+4 <= off+clen; p += 4 {
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

// sockMayBlock reports whether a connect or send on kbox's duplicate s of
// a guest socket can wait: the socket (the open file description, shared
// with the guest) is in blocking mode and flags lack MSG_DONTWAIT.
func sockMayBlock(s, flags int) bool {
	if flags&unix.MSG_DONTWAIT != 0 {
		return false
	}
	fl, err := unix.FcntlInt(uintptr(s), unix.F_GETFL, 0)
	return err != nil || fl&unix.O_NONBLOCK == 0
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

// beforeUnixSend does the kernel's implicit autobind of an AF_UNIX
// socket that passes credentials inside the tag space (bindBeforeSend),
// for a send to address a (no address: to the socket's peer). Only a
// datagram send binds (unix_dgram_sendmsg, after its ENOTCONN check); a
// stream send does not.
func (e *Engine) beforeUnixSend(s int, a *sockAddr) error {
	if !a.unixSock {
		if len(a.raw) > 0 {
			return nil // another family's address
		}
		if d, err := sockDomain(s); err != nil || d != unix.AF_UNIX {
			return nil
		}
	}
	if t, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || t == unix.SOCK_STREAM {
		return nil
	}
	if len(a.raw) == 0 {
		if _, err := unix.Getpeername(s); err != nil {
			return nil // ENOTCONN comes first
		}
	}
	return e.abstract.bindBeforeSend(s)
}

func sysSendmsg(e *Engine, r *Request) Result {
	s, err := sendSocket(r, 2)
	if err != nil {
		return Fail(err)
	}
	defer unix.Close(s)
	m, err := e.readMsghdr(r, s, r.Ptr(1))
	if err != nil {
		return e.netRefuse(r, err)
	}
	defer m.free()
	if err := e.beforeUnixSend(s, m.addr); err != nil {
		return Fail(err)
	}
	res := sendmsgHost(s, m.data, m.oob, m.addr.raw, r.Int(2))
	if res.Kind != Errno {
		e.userSent(s, m.addr)
	}
	return res
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
	if sockMayBlock(s, r.Int(3)) {
		if err := r.MayBlock(); err != nil {
			return Fail(err)
		}
	}
	sent := 0
	for i := uint32(0); i < vlen; i++ {
		entry := r.Ptr(1) + uint64(i)*mmsghdrSize
		m, err := e.readMsghdr(r, s, entry)
		if err != nil {
			if sent > 0 {
				break
			}
			return e.netRefuse(r, err)
		}
		res := Ok(0)
		if err := e.beforeUnixSend(s, m.addr); err != nil {
			res = Fail(err)
		} else {
			res = sendmsgHost(s, m.data, m.oob, m.addr.raw, r.Int(3))
			if res.Kind != Errno {
				e.userSent(s, m.addr)
			}
		}
		m.free()
		if res.Kind == Errno {
			if sent > 0 {
				break
			}
			return res
		}
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(res.Val))
		if err := r.Mem.Write(entry+abi.SizeofMsghdr, b[:]); err != nil {
			return Fail(err)
		}
		sent++
	}
	return Ok(int64(sent))
}

// bindThread is an OS thread with a private working directory
// (unshare(CLONE_FS)): it binds AF_UNIX sockets by their bare name after
// fchdir to the resolved parent directory, so the kernel resolves one
// name in a directory kbox chose. The rest of kbox never depends on the
// process working directory.
type bindThread struct {
	once sync.Once
	reqs chan func()
	err  error
}

func newBindThread() *bindThread { return &bindThread{reqs: make(chan func())} }

// start starts the thread (once; Config.ThreadsOnDemand says when).
func (t *bindThread) start() {
	t.once.Do(func() {
		ready := make(chan struct{})
		go func() {
			// Never unlocked: the thread ends with the process.
			runtime.LockOSThread()
			t.err = unix.Unshare(unix.CLONE_FS)
			close(ready)
			for f := range t.reqs {
				f()
			}
		}()
		<-ready
	})
}

func (t *bindThread) bindAt(sock int, a *sockAddr, umask int) error {
	t.start()
	if t.err != nil {
		return t.err
	}
	var err error
	done := make(chan struct{})
	t.reqs <- func() {
		defer close(done)
		if err = unix.Fchdir(a.dirfd); err != nil {
			return
		}
		unix.Umask(umask)
		err = rawAddrCall(unix.SYS_BIND, sock, a)
	}
	<-done
	return err
}

// nlmsgHdrLen is the size of struct nlmsghdr.
const nlmsgHdrLen = 16

// sockDiag makes one sock_diag request (SOCK_DIAG_BY_FAMILY) for family:
// fill writes the family's request of reqLen bytes after its first byte
// (the family); the reply's first message is returned, header included,
// when it is the answer and holds at least msgLen bytes after the header;
// ok=false otherwise, or when the kernel has no sock_diag.
func sockDiag(family byte, reqLen, msgLen int, fill func(d []byte)) (msg []byte, ok bool) {
	nl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, false
	}
	defer unix.Close(nl)
	le := binary.LittleEndian
	req := make([]byte, nlmsgHdrLen+reqLen)
	le.PutUint32(req[0:], uint32(len(req)))
	le.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	le.PutUint16(req[6:], unix.NLM_F_REQUEST)
	le.PutUint32(req[8:], 1) // sequence
	req[nlmsgHdrLen] = family
	fill(req[nlmsgHdrLen:])
	if err := unix.Sendto(nl, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, false
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(nl, buf, 0)
	if err != nil || n < nlmsgHdrLen+msgLen {
		return nil, false
	}
	l := int(le.Uint32(buf))
	if le.Uint16(buf[4:]) != unix.SOCK_DIAG_BY_FAMILY || l > n || l < nlmsgHdrLen+msgLen {
		return nil, false
	}
	return buf[:l], true
}

// boundFile asks the kernel (sock_diag, UDIAG_SHOW_VFS) for the socket
// file AF_UNIX socket s is bound to, which for an accepted socket is its
// listener's; found=false when it does not tell (no sock_diag, an
// unbound socket).
func boundFile(s int) (key [2]uint64, found bool) {
	ino := sockIno(s)
	const (
		unixDiagReqLen = 24
		unixDiagMsgLen = 16
		udiagShowVFS   = 0x2
		unixDiagVFS    = 1
	)
	le := binary.LittleEndian
	buf, ok := sockDiag(unix.AF_UNIX, unixDiagReqLen, unixDiagMsgLen, func(d []byte) {
		le.PutUint32(d[4:], ^uint32(0)) // every state
		le.PutUint32(d[8:], uint32(ino))
		le.PutUint32(d[12:], udiagShowVFS)
		le.PutUint32(d[16:], ^uint32(0)) // no cookie
		le.PutUint32(d[20:], ^uint32(0))
	})
	if !ok || le.Uint32(buf[nlmsgHdrLen+4:]) != uint32(ino) {
		return key, false
	}
	msgLen := len(buf)
	// Attributes (struct rtattr: len, type; 4-byte aligned) follow the
	// unix_diag_msg.
	for off := nlmsgHdrLen + unixDiagMsgLen; off+4 <= msgLen; {
		alen, atype := int(le.Uint16(buf[off:])), le.Uint16(buf[off+2:])
		if alen < 4 || off+alen > msgLen {
			break
		}
		if atype == unixDiagVFS && alen >= 4+8 {
			// struct unix_diag_vfs: the inode, then the device in the
			// kernel's internal form (major << 20 | minor).
			vino, kdev := le.Uint32(buf[off+4:]), le.Uint32(buf[off+8:])
			return fileKey(unix.Mkdev(kdev>>20, kdev&0xfffff), uint64(vino)), true
		}
		off += (alen + 3) &^ 3
	}
	return key, false
}
