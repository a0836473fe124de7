package dispatch

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

// Identity handlers run only when the guest identity is virtual (-0,
// --change-id); otherwise the filter lets these calls reach the kernel.

func init() {
	register(idGet(func(c *identity.Creds) uint32 { return c.RUID }), "getuid")
	register(idGet(func(c *identity.Creds) uint32 { return c.EUID }), "geteuid")
	register(idGet(func(c *identity.Creds) uint32 { return c.RGID }), "getgid")
	register(idGet(func(c *identity.Creds) uint32 { return c.EGID }), "getegid")
	register(sysGetresuid, "getresuid")
	register(sysGetresgid, "getresgid")
	register(sysGetgroups, "getgroups")
	register(idSet(func(c *identity.Creds, r *Request) error { return c.SetUID(r.Uint(0)) }), "setuid")
	register(idSet(func(c *identity.Creds, r *Request) error { return c.SetGID(r.Uint(0)) }), "setgid")
	register(idSet(func(c *identity.Creds, r *Request) error { return c.SetREUID(r.Uint(0), r.Uint(1)) }), "setreuid")
	register(idSet(func(c *identity.Creds, r *Request) error { return c.SetREGID(r.Uint(0), r.Uint(1)) }), "setregid")
	register(idSet(func(c *identity.Creds, r *Request) error { return c.SetRESUID(r.Uint(0), r.Uint(1), r.Uint(2)) }), "setresuid")
	register(idSet(func(c *identity.Creds, r *Request) error { return c.SetRESGID(r.Uint(0), r.Uint(1), r.Uint(2)) }), "setresgid")
	register(sysSetfsuid, "setfsuid")
	register(sysSetfsgid, "setfsgid")
	register(sysSetgroups, "setgroups")
}

func idGet(get func(c *identity.Creds) uint32) Handler {
	return func(e *Engine, r *Request) Result {
		c := r.Proc.Creds()
		return Ok(int64(get(&c)))
	}
}

func idSet(set func(c *identity.Creds, r *Request) error) Handler {
	return func(e *Engine, r *Request) Result {
		return errOf(e.Procs.update(r.Proc, func(p *Process) error {
			c := p.creds.Clone()
			if err := set(&c, r); err != nil {
				return err
			}
			p.creds = c
			return nil
		}))
	}
}

func writeU32s(r *Request, addrs []uint64, vals []uint32) Result {
	for i, a := range addrs {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], vals[i])
		if err := r.Mem.Write(a, b[:]); err != nil {
			return Fail(err)
		}
	}
	return Ok(0)
}

func sysGetresuid(e *Engine, r *Request) Result {
	c := r.Proc.Creds()
	return writeU32s(r, []uint64{r.Ptr(0), r.Ptr(1), r.Ptr(2)}, []uint32{c.RUID, c.EUID, c.SUID})
}

func sysGetresgid(e *Engine, r *Request) Result {
	c := r.Proc.Creds()
	return writeU32s(r, []uint64{r.Ptr(0), r.Ptr(1), r.Ptr(2)}, []uint32{c.RGID, c.EGID, c.SGID})
}

func sysGetgroups(e *Engine, r *Request) Result {
	size := r.Int(0)
	c := r.Proc.Creds()
	if size < 0 {
		return Fail(unix.EINVAL)
	}
	if size == 0 {
		return Ok(int64(len(c.Groups)))
	}
	if size < len(c.Groups) {
		return Fail(unix.EINVAL)
	}
	b := make([]byte, 4*len(c.Groups))
	for i, g := range c.Groups {
		binary.LittleEndian.PutUint32(b[4*i:], g)
	}
	if err := r.Mem.Write(r.Ptr(1), b); err != nil {
		return Fail(err)
	}
	return Ok(int64(len(c.Groups)))
}

func sysSetgroups(e *Engine, r *Request) Result {
	size := r.Int(0)
	if size < 0 || size > identity.MaxGroups {
		return Fail(unix.EINVAL)
	}
	groups := make([]uint32, size)
	if size > 0 {
		b := make([]byte, 4*size)
		if err := r.Mem.Read(r.Ptr(1), b); err != nil {
			return Fail(err)
		}
		for i := range groups {
			groups[i] = binary.LittleEndian.Uint32(b[4*i:])
		}
	}
	return errOf(e.Procs.update(r.Proc, func(p *Process) error { return p.creds.SetGroups(groups) }))
}

func sysSetfsuid(e *Engine, r *Request) Result {
	var old uint32
	e.Procs.update(r.Proc, func(p *Process) error { old = p.creds.SetFSUID(r.Uint(0)); return nil })
	return Ok(int64(old))
}

func sysSetfsgid(e *Engine, r *Request) Result {
	var old uint32
	e.Procs.update(r.Proc, func(p *Process) error { old = p.creds.SetFSGID(r.Uint(0)); return nil })
	return Ok(int64(old))
}
