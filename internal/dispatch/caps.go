package dispatch

import (
	"encoding/binary"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

// Capabilities under a virtual identity (see internal/identity/caps.go):
// capget, capset and the capability options of prctl read and change the
// calling process's virtual sets. Without a virtual identity capget and
// those prctl options reach the kernel (the policy allows them) and capset
// is refused: the guest's real capabilities are kbox's own in the
// in-process tiers.

func init() {
	register(sysCapget, "capget")
	register(sysCapset, "capset")
	register(sysPrctl, "prctl")
}

// Capability header versions (linux/capability.h).
const (
	capV1 = 0x19980330 // one 32-bit word per set
	capV2 = 0x20071026 // deprecated; two words, treated as v3
	capV3 = 0x20080522 // two words per set
)

// capHeader reads the header: the number of words the version carries, or
// EINVAL after writing the preferred version back, as the kernel does.
func capHeader(r *Request) (words int, pid int32, err error) {
	var b [8]byte
	if err := r.Mem.Read(r.Ptr(0), b[:]); err != nil {
		return 0, 0, err
	}
	switch binary.LittleEndian.Uint32(b[:4]) {
	case capV1:
		words = 1
	case capV2, capV3:
		words = 2
	default:
		binary.LittleEndian.PutUint32(b[:4], capV3)
		if err := r.Mem.Write(r.Ptr(0), b[:4]); err != nil {
			return 0, 0, err
		}
		return 0, 0, unix.EINVAL
	}
	return words, int32(binary.LittleEndian.Uint32(b[4:])), nil
}

func sysCapget(e *Engine, r *Request) Result {
	words, pid, err := capHeader(r)
	if r.Ptr(1) == 0 || err != nil {
		if r.Ptr(1) == 0 && err == unix.EINVAL {
			return Ok(0) // a query of the preferred version
		}
		return errOf(err)
	}
	if pid < 0 {
		return Fail(unix.EINVAL)
	}
	c := r.Proc.Creds()
	if pid != 0 && int(pid) != r.Tid && int(pid) != r.Tgid {
		p := e.Procs.guestProcess(int(pid))
		if p == nil {
			return Fail(unix.ESRCH)
		}
		c = p.Creds()
	}
	b := make([]byte, 12*words)
	for i := 0; i < words; i++ {
		sh := uint(32 * i)
		binary.LittleEndian.PutUint32(b[12*i:], uint32(c.Caps.Eff>>sh))
		binary.LittleEndian.PutUint32(b[12*i+4:], uint32(c.Caps.Prm>>sh))
		binary.LittleEndian.PutUint32(b[12*i+8:], uint32(c.Caps.Inh>>sh))
	}
	return errOf(r.Mem.Write(r.Ptr(1), b))
}

func sysCapset(e *Engine, r *Request) Result {
	if !e.cfg.Identity.Virtual {
		return e.denied(r, unix.EPERM, "the guest's real capabilities are not its to change (-0 gives it virtual ones)")
	}
	words, pid, err := capHeader(r)
	if err != nil {
		return errOf(err)
	}
	if pid != 0 && int(pid) != r.Tid && int(pid) != r.Tgid {
		return Fail(unix.EPERM)
	}
	b := make([]byte, 12*words)
	if err := r.Mem.Read(r.Ptr(1), b); err != nil {
		return Fail(err)
	}
	var eff, prm, inh uint64
	for i := 0; i < words; i++ {
		sh := uint(32 * i)
		eff |= uint64(binary.LittleEndian.Uint32(b[12*i:])) << sh
		prm |= uint64(binary.LittleEndian.Uint32(b[12*i+4:])) << sh
		inh |= uint64(binary.LittleEndian.Uint32(b[12*i+8:])) << sh
	}
	return errOf(e.Procs.update(r.Proc, func(p *Process) error {
		err := p.creds.CapSet(eff, prm, inh)
		if err != nil {
			e.Verbosef("pid %d: capset denied (EPERM): eff %#x prm %#x inh %#x exceed the process's virtual sets (prm %#x inh %#x bnd %#x)",
				r.Tgid, eff, prm, inh, p.creds.Caps.Prm, p.creds.Caps.Inh, p.creds.Caps.Bnd)
		}
		return err
	}))
}

func sysPrctl(e *Engine, r *Request) Result {
	if !e.cfg.Identity.Virtual {
		return Cont()
	}
	a := r.Args
	refused := func(err error) error {
		if err == unix.EPERM {
			e.Verbosef("pid %d: prctl(%d, %d) denied (EPERM): not permitted to the process's virtual capabilities", r.Tgid, a[0], a[1])
		}
		return err
	}
	switch a[0] {
	case unix.PR_GET_KEEPCAPS:
		c := r.Proc.Creds()
		if c.Caps.Securebits&identity.SecbitKeepCaps != 0 {
			return Ok(1)
		}
		return Ok(0)
	case unix.PR_SET_KEEPCAPS:
		return errOf(refused(e.Procs.update(r.Proc, func(p *Process) error { return p.creds.SetKeepCaps(a[1]) })))
	case unix.PR_GET_SECUREBITS:
		c := r.Proc.Creds()
		return Ok(int64(c.Caps.Securebits))
	case unix.PR_SET_SECUREBITS:
		return errOf(refused(e.Procs.update(r.Proc, func(p *Process) error { return p.creds.SetSecurebits(a[1]) })))
	case unix.PR_CAPBSET_READ:
		if !identity.ValidCap(a[1]) {
			return Fail(unix.EINVAL)
		}
		c := r.Proc.Creds()
		return Ok(int64(c.Caps.Bnd >> a[1] & 1))
	case unix.PR_CAPBSET_DROP:
		return errOf(refused(e.Procs.update(r.Proc, func(p *Process) error { return p.creds.DropBound(a[1]) })))
	case unix.PR_CAP_AMBIENT:
		var v int64
		err := e.Procs.update(r.Proc, func(p *Process) error {
			var err error
			v, err = p.creds.Ambient(a[1], a[2], a[3], a[4])
			return err
		})
		if err != nil {
			return errOf(refused(err))
		}
		return Ok(v)
	}
	// Any other option the policy sends here is the kernel's.
	return e.denied(r, unix.EINVAL, "prctl option "+strconv.FormatUint(a[0], 10)+" is not emulated")
}
