package dispatch

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
)

// The abstract AF_UNIX namespace is the sandbox's own. The host kernel
// has one abstract namespace per network namespace, and kbox has no
// network namespace of its own (that needs privileges), so kbox gives
// every abstract name the guest uses a per-run tag prefix: a guest binds
// and connects among its own processes as it would natively, and never
// reaches a host listener (a session bus, an X server), whose names lack
// the tag.
//
// The tag is added by kbox on its duplicate of the socket (bind,
// connect, sendto, sendmsg, sendmmsg, all served by kbox: net.go), never
// by rewriting the guest's memory, which another guest thread could
// change after kbox wrote it. It is removed from the names kbox reports
// (getsockname, getpeername). Tagging is idempotent: a name that already
// carries the tag (one the guest read back unstripped, from recvfrom or
// accept, see docs/network.md) is used as it is, so replying to the
// sender of a datagram works whichever call told the guest its name.
//
// A guest name too long to keep with the tag (abstract names hold 107
// bytes) is replaced by a NUL and a hash of it after the tag, and
// remembered so that kbox can report the guest's name.

// abstractNameMax is the longest abstract name: sun_path less its
// leading NUL.
const abstractNameMax = sunPathMax - 1

// abstractNS is one run's share of the host's abstract namespace.
type abstractNS struct {
	tag  []byte
	mu   sync.Mutex
	long map[string][]byte // hashed suffix (after the tag) -> guest name
}

// newAbstractNS makes a namespace with a random tag ("kbox:" and 12 hex
// digits and ":", 18 bytes): names of up to 89 bytes are kept as given.
func newAbstractNS() *abstractNS {
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		// crypto/rand does not fail on Linux (getrandom); a fixed tag
		// would still keep the guest off every untagged host name.
		copy(r[:], "kbox!!")
	}
	return &abstractNS{tag: []byte("kbox:" + hex.EncodeToString(r[:]) + ":"), long: map[string][]byte{}}
}

// hashedLen is the length of a hashed suffix: a NUL and 32 hex digits.
const hashedLen = 1 + 32

// toHost returns the host name (without the leading NUL) for guest
// abstract name g (without its leading NUL).
func (a *abstractNS) toHost(g []byte) []byte {
	if bytes.HasPrefix(g, a.tag) {
		return g
	}
	if len(a.tag)+len(g) <= abstractNameMax {
		return append(append(make([]byte, 0, len(a.tag)+len(g)), a.tag...), g...)
	}
	sum := sha256.Sum256(g)
	suffix := "\x00" + hex.EncodeToString(sum[:16])
	a.mu.Lock()
	a.long[suffix] = append([]byte(nil), g...)
	a.mu.Unlock()
	return append(append([]byte(nil), a.tag...), suffix...)
}

// toGuest returns the guest's name for host abstract name h (without the
// leading NUL): the tag removed. A name without the tag (a host
// socket's, or one the kernel autobound) is reported as it is.
func (a *abstractNS) toGuest(h []byte) []byte {
	rest, ok := bytes.CutPrefix(h, a.tag)
	if !ok {
		return h
	}
	if len(rest) == hashedLen && rest[0] == 0 {
		a.mu.Lock()
		g, found := a.long[string(rest)]
		a.mu.Unlock()
		if found {
			return g
		}
	}
	return rest
}

// abstractAddr builds a sockaddr_un for abstract name n (without the
// leading NUL).
func abstractAddr(n []byte) []byte {
	raw := make([]byte, abi.SockaddrUnPath+1+len(n))
	binary.LittleEndian.PutUint16(raw, unix.AF_UNIX)
	copy(raw[abi.SockaddrUnPath+1:], n)
	return raw
}

// isAbstract reports whether raw (an AF_UNIX address of length len(raw))
// names an abstract socket.
func isAbstract(raw []byte) bool {
	return len(raw) > abi.SockaddrUnPath && binary.LittleEndian.Uint16(raw) == unix.AF_UNIX && raw[abi.SockaddrUnPath] == 0
}

// hostAbstract translates the guest's abstract address raw.
func (a *abstractNS) hostAbstract(raw []byte) []byte {
	return abstractAddr(a.toHost(raw[abi.SockaddrUnPath+1:]))
}

// guestAbstract translates a host abstract address the kernel reported.
func (a *abstractNS) guestAbstract(raw []byte) []byte {
	return abstractAddr(a.toGuest(raw[abi.SockaddrUnPath+1:]))
}

// autobindMax is how many names autobind tries, as the kernel's
// unix_autobind (its 5 hex digits: 2^20 names).
const autobindMax = 1 << 20

// autobind binds AF_UNIX socket s to a free name of the kernel's
// autobind form (5 hex digits) inside the tag space: bind(2) with only
// sun_family, and the implicit bind of a socket with SO_PASSCRED, do
// this natively with names outside it, which the guest's own peers
// could not reach back (their names would get the tag).
func (a *abstractNS) autobind(s int) error {
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return unix.ENOMEM
	}
	start := binary.LittleEndian.Uint32(r[:])
	for i := uint32(0); i < autobindMax; i++ {
		name := fmt.Sprintf("%05x", (start+i)&(autobindMax-1))
		err := rawAddrCall(unix.SYS_BIND, s, &sockAddr{raw: abstractAddr(a.toHost([]byte(name)))})
		if err != unix.EADDRINUSE {
			return err
		}
	}
	return unix.ENOSPC // as unix_autobind when every name is taken
}

// unbound reports whether AF_UNIX socket s has no address yet.
func unbound(s int) bool {
	buf := make([]byte, sockaddrMax)
	n := uint32(len(buf))
	_, _, en := unix.Syscall(unix.SYS_GETSOCKNAME, uintptr(s), ptrOf(buf), uintptr(ptrOfU32(&n)))
	keepAlive(buf)
	return en == 0 && n <= abi.SockaddrUnPath
}

// passesCreds reports whether socket s asks for its credentials to be
// passed (SO_PASSCRED, SO_PASSPIDFD): the kernel then binds an unbound
// socket when it connects or sends.
func passesCreds(s int) bool {
	for _, opt := range []int{unix.SO_PASSCRED, unix.SO_PASSPIDFD} {
		if v, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, opt); err == nil && v != 0 {
			return true
		}
	}
	return false
}

func init() { register(sysSetsockopt, "setsockopt") }

// sysSetsockopt sees SO_PASSCRED and SO_PASSPIDFD (the filter lets every
// other option through): turned on for a connected, unbound AF_UNIX
// socket, the kernel would bind it at its next datagram send (a write(2)
// too, which kbox never sees), outside the tag space; kbox binds it
// first, inside. The option itself is the kernel's to set.
func sysSetsockopt(e *Engine, r *Request) Result {
	if r.Int(1) != unix.SOL_SOCKET || r.Ptr(3) == 0 || r.Int(4) < 4 {
		return Cont()
	}
	var v [4]byte
	if r.Mem.Read(r.Ptr(3), v[:]) != nil || binary.LittleEndian.Uint32(v[:]) == 0 {
		return Cont()
	}
	s, err := r.FDs.DupFD(r.Int(0))
	if err != nil {
		return Cont()
	}
	defer unix.Close(s)
	if d, err := sockDomain(s); err != nil || d != unix.AF_UNIX {
		return Cont()
	}
	if t, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || t == unix.SOCK_STREAM {
		return Cont() // a stream send never binds
	}
	if _, err := unix.Getpeername(s); err != nil || !unbound(s) {
		return Cont() // unconnected: connect and sendto bind (bindBeforeSend)
	}
	if err := e.abstract.autobind(s); err != nil && err != unix.EINVAL {
		return Fail(err)
	}
	return Cont()
}

// bindBeforeSend does, inside the tag space, the autobind the kernel
// would do for AF_UNIX socket s when it connects or sends with
// credentials passing on and no address yet.
func (a *abstractNS) bindBeforeSend(s int) error {
	if !passesCreds(s) || !unbound(s) {
		return nil
	}
	err := a.autobind(s)
	if err == unix.EINVAL {
		return nil // bound meanwhile by another thread: as the kernel
	}
	return err
}
