package dispatch

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

// SysV IPC (seccomp tier). SysV shared memory segments, semaphore sets and
// message queues live in the host's IPC namespace, shared by key with
// every process of the host, and kbox cannot give the guest a namespace of
// its own without privileges. So the guest sees only the objects it
// created:
//
//   - shmget, semget, msgget are served by kbox: it creates every object
//     with IPC_PRIVATE on the guest's behalf and keeps the guest's key ->
//     id map itself (IPC_CREAT, IPC_EXCL, the size/nsems checks and the
//     mode checks as the kernel makes them), so a host object with the
//     same key is never reached; the key is reported back where the guest
//     reads it (IPC_STAT, /proc/sysvipc).
//   - every call naming an id (shmat, shmctl, semop, semtimedop, semctl,
//     msgsnd, msgrcv, msgctl) is refused with EINVAL, as the kernel
//     refuses an id that does not exist, unless the id is one the guest
//     created; then the kernel runs it (CONTINUE: an id is a register
//     value, not guest memory). IPC_STAT, IPC_RMID (and, when the guest
//     identity is virtual, IPC_SET) are performed by kbox, to translate
//     the owner ids and keep the map exact.
//   - the index-based SHM_STAT/SEM_STAT/MSG_STAT (and *_STAT_ANY), with
//     which ipcs enumerates every object of the host, answer only for the
//     guest's objects; /proc/sysvipc/{shm,sem,msg} list only them.
//     IPC_INFO, SHM_INFO, SEM_INFO and MSG_INFO pass: they reveal the
//     system limits and how many objects (and pages, messages, bytes) the
//     whole host uses, not what they are.
//   - when kbox exits, every object the guest created and did not remove
//     is removed: nothing the run created outlives it.
//
// Remaining window: the check and the kernel's action on an id are not
// atomic. An id carries a sequence number (id = seq * IPCMNI + index), so
// a guest object removed meanwhile can only be replaced at the same id by
// a host object after the sequence wraps (65536 creations at that index).
// shmdt stays in BPF: it acts on the caller's own mapping.

func init() {
	register(sysShmget, "shmget")
	register(sysSemget, "semget")
	register(sysMsgget, "msgget")
	register(sysShmat, "shmat")
	register(sysShmctl, "shmctl")
	register(sysSemctl, "semctl")
	register(sysMsgctl, "msgctl")
	register(sysSemop, "semop", "semtimedop")
	register(sysMsgsnd, "msgsnd")
	register(sysMsgrcv, "msgrcv")
}

// Kernel constants (include/uapi/linux/ipc.h, shm.h, sem.h, msg.h).
const (
	ipcPrivate = 0
	ipcCreat   = 0o1000
	ipcExcl    = 0o2000

	ipcRmid = 0
	ipcSet  = 1
	ipcStat = 2
	ipcInfo = 3

	shmLock    = 11
	shmUnlock  = 12
	shmStat    = 13
	shmInfo    = 14
	shmStatAny = 15

	semGetpid  = 11
	semGetval  = 12
	semGetall  = 13
	semGetncnt = 14
	semGetzcnt = 15
	semSetval  = 16
	semSetall  = 17
	semStat    = 18
	semInfo    = 19
	semStatAny = 20

	msgStat    = 11
	msgInfo    = 12
	msgStatAny = 13

	shmDest     = 0o1000  // shm_perm.mode: marked for removal
	shmHugetlb  = 0o4000  // shmget flag
	shmNoreserv = 0o10000 // shmget flag
	shmRdonly   = 0o10000 // shmat flag
	shmHugeMask = 0x3f << 26

	ipcRead  = 4
	ipcWrite = 2
)

type ipcKind uint8

const (
	ipcShm ipcKind = iota
	ipcSem
	ipcMsg
	ipcKinds
)

func (k ipcKind) String() string {
	return [...]string{"shared memory segment", "semaphore set", "message queue"}[k]
}

// ipcPerm is struct ipc64_perm's fields kbox uses (the same offsets on
// amd64 and arm64).
type ipcPerm struct {
	key                  int32
	uid, gid, cuid, cgid uint32
	mode                 uint32
}

func parsePerm(ds []byte) ipcPerm {
	le := binary.LittleEndian
	return ipcPerm{key: int32(le.Uint32(ds[0:])), uid: le.Uint32(ds[4:]), gid: le.Uint32(ds[8:]),
		cuid: le.Uint32(ds[12:]), cgid: le.Uint32(ds[16:]), mode: le.Uint32(ds[20:])}
}

// Offsets in the *id64_ds structures (the same on amd64 and arm64 except
// semid64_ds's size).
const (
	shmSegszOff  = 48
	shmCpidOff   = 80
	msgQbytesOff = 88
)

// dsSize is the size of the kernel's shmid64_ds, semid64_ds or msqid64_ds.
func (e *Engine) dsSize(k ipcKind) int {
	switch k {
	case ipcShm:
		return 112
	case ipcSem:
		if e.arch.Name == "amd64" {
			return 104 // x86-64 keeps two padding words
		}
		return 88
	}
	return 120
}

// ipcObject is one object the guest created.
type ipcObject struct {
	key int32 // the guest's key; 0 for IPC_PRIVATE and after IPC_RMID
}

// ipcTable is the run's registry of the guest's IPC objects.
type ipcTable struct {
	mu     sync.Mutex
	byKey  [ipcKinds]map[int32]int
	objs   [ipcKinds]map[int]*ipcObject
	groups []uint32 // kbox's (and so the guest's) host supplementary groups
}

func newIPCTable() *ipcTable {
	t := &ipcTable{}
	for k := range t.byKey {
		t.byKey[k] = map[int32]int{}
		t.objs[k] = map[int]*ipcObject{}
	}
	if gs, err := unix.Getgroups(); err == nil {
		for _, g := range gs {
			t.groups = append(t.groups, uint32(g))
		}
	}
	return t
}

// owned returns the guest's object of kind k with this id, if it created one.
func (t *ipcTable) owned(k ipcKind, id int) (*ipcObject, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.objs[k][id]
	return o, ok
}

// forgetLocked drops id (and its key) from the table; t.mu is held.
func (t *ipcTable) forgetLocked(k ipcKind, id int) {
	if o := t.objs[k][id]; o != nil && o.key != ipcPrivate && t.byKey[k][o.key] == id {
		delete(t.byKey[k], o.key)
	}
	delete(t.objs[k], id)
}

// ipcctl is shmctl, semctl or msgctl run by kbox itself; buf (when not
// nil) receives or supplies the *id64_ds structure.
func ipcctl(k ipcKind, id, cmd int, buf []byte) (int, error) {
	var p uintptr
	if buf != nil {
		p = ptrOf(buf)
	}
	var r uintptr
	var en unix.Errno
	switch k {
	case ipcShm:
		r, _, en = unix.Syscall(unix.SYS_SHMCTL, uintptr(id), uintptr(cmd), p)
	case ipcSem:
		r, _, en = unix.Syscall6(unix.SYS_SEMCTL, uintptr(id), 0, uintptr(cmd), p, 0, 0)
	default:
		r, _, en = unix.Syscall(unix.SYS_MSGCTL, uintptr(id), uintptr(cmd), p)
	}
	if buf != nil {
		keepAlive(buf)
	}
	if en != 0 {
		return -1, en
	}
	return int(r), nil
}

// statAnyCmd is the index-based stat that skips the read check.
func statAnyCmd(k ipcKind) int {
	return [...]int{shmStatAny, semStatAny, msgStatAny}[k]
}

// ipcStat returns object id's *id64_ds as the kernel reports it to kbox.
// When kbox may not read it (an unprivileged kbox, an object whose owner
// bits lack read), the index-based *_STAT_ANY (Linux 4.17+), which skips
// the read check, is asked at the id's index (IPCMNI 32768, or 16M with
// ipcmni_extend) and accepted only if it names the same id.
func (e *Engine) ipcStat(k ipcKind, id int) ([]byte, error) {
	buf := make([]byte, 256)
	_, err := ipcctl(k, id, ipcStat, buf)
	if err == unix.EACCES {
		for _, mask := range []int{1<<15 - 1, 1<<24 - 1} {
			if got, err2 := ipcctl(k, id&mask, statAnyCmd(k), buf); err2 == nil && got == id {
				return buf[:e.dsSize(k)], nil
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return buf[:e.dsSize(k)], nil
}

// ipcPermitted is the kernel's ipcperms() for the calling guest process:
// the access the mode bits of flg request (read 4, write 2, per class)
// against the object's mode for its owner or creator, group or others.
// The host's check uses kbox's credentials, which are the guest's host
// credentials (a guest without capabilities has no CAP_IPC_OWNER); a
// guest that left its initial virtual identity is also checked with its
// virtual ids, as perm.go does for files.
func (e *Engine) ipcPermitted(r *Request, p ipcPerm, flg int) bool {
	req := uint32((flg>>6)|(flg>>3)|flg) & 7
	check := func(uid, gid uint32, groups []uint32, pu, pg, pcu, pcg uint32) bool {
		granted := p.mode
		switch {
		case uid == pu || uid == pcu:
			granted >>= 6
		case gid == pg || gid == pcg || contains(groups, pg) || contains(groups, pcg):
			granted >>= 3
		}
		return req&^granted&7 == 0
	}
	if !e.cfg.GuestCaps && !check(e.hostUID, e.hostGID, e.ipc.groups, p.uid, p.gid, p.cuid, p.cgid) {
		return false
	}
	c := r.Proc.Creds()
	if e.emulatesPerms(&c) && c.EUID != 0 {
		pu, pg := e.guestOwner(p.uid, p.gid)
		pcu, pcg := e.guestOwner(p.cuid, p.cgid)
		return check(c.EUID, c.EGID, c.Groups, pu, pg, pcu, pcg)
	}
	return true
}

// ipcOwner is the check of IPC_SET and IPC_RMID: the caller is the
// object's owner or creator (or holds CAP_SYS_ADMIN).
func (e *Engine) ipcOwner(r *Request, p ipcPerm) bool {
	if !e.cfg.GuestCaps && e.hostUID != p.uid && e.hostUID != p.cuid {
		return false
	}
	c := r.Proc.Creds()
	if e.emulatesPerms(&c) && c.EUID != 0 {
		pu, _ := e.guestOwner(p.uid, p.gid)
		pcu, _ := e.guestOwner(p.cuid, p.cgid)
		return c.EUID == pu || c.EUID == pcu
	}
	return true
}

// ipcGet serves shmget, semget and msgget. more is the kind's check of
// an existing object against the request (size, nsems); create makes a
// new private object with the request's mode.
func (e *Engine) ipcGet(r *Request, k ipcKind, key int32, flg int, more func(ds []byte) error, create func() (int, error)) Result {
	t := e.ipc
	t.mu.Lock()
	defer t.mu.Unlock()
	if key != ipcPrivate {
		if id, ok := t.byKey[k][key]; ok {
			ds, err := e.ipcStat(k, id)
			if err == nil && (k != ipcShm || parsePerm(ds).mode&shmDest == 0) {
				if flg&ipcCreat != 0 && flg&ipcExcl != 0 {
					return Fail(unix.EEXIST)
				}
				if more != nil {
					if err := more(ds); err != nil {
						return Fail(err)
					}
				}
				if !e.ipcPermitted(r, parsePerm(ds), flg) {
					return Fail(unix.EACCES)
				}
				return Ok(int64(id))
			}
			// Removed behind the guest's back (a host process of the same
			// user ran ipcrm): the key is free again.
			if err != nil {
				t.forgetLocked(k, id)
			} else {
				delete(t.byKey[k], key)
			}
		}
		if flg&ipcCreat == 0 {
			return Fail(unix.ENOENT)
		}
	}
	id, err := create()
	if err != nil {
		return Fail(err)
	}
	t.objs[k][id] = &ipcObject{key: key}
	if key != ipcPrivate {
		t.byKey[k][key] = id
	}
	return Ok(int64(id))
}

func sysShmget(e *Engine, r *Request) Result {
	key, size, flg := int32(r.Uint(0)), r.Args[1], r.Int(2)
	if flg&shmHugetlb != 0 && e.hostUID == 0 && !e.cfg.GuestCaps {
		// kbox itself may create huge-page segments (CAP_IPC_LOCK); the
		// guest may not unless its group is the hugetlb_shm_group.
		if !e.inHugetlbGroup() {
			return e.denied(r, unix.EPERM, "SHM_HUGETLB needs CAP_IPC_LOCK, which the guest does not have")
		}
	}
	more := func(ds []byte) error {
		if binary.LittleEndian.Uint64(ds[shmSegszOff:]) < size {
			return unix.EINVAL
		}
		return nil
	}
	return e.ipcGet(r, ipcShm, key, flg, more, func() (int, error) {
		create := flg & (0o777 | shmHugetlb | shmNoreserv | shmHugeMask)
		id, _, en := unix.Syscall(unix.SYS_SHMGET, ipcPrivate, uintptr(size), uintptr(create))
		return int(id), errOrNil(en)
	})
}

// inHugetlbGroup reports whether the guest's host groups include
// kernel.hugetlb_shm_group.
func (e *Engine) inHugetlbGroup() bool {
	b, err := os.ReadFile("/proc/sys/vm/hugetlb_shm_group")
	if err != nil {
		return false
	}
	g, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	return err == nil && (uint32(g) == e.hostGID || contains(e.ipc.groups, uint32(g)))
}

func sysSemget(e *Engine, r *Request) Result {
	key, nsems, flg := int32(r.Uint(0)), r.Int(1), r.Int(2)
	if nsems < 0 {
		return Fail(unix.EINVAL) // as the kernel, before looking at the key
	}
	more := func(ds []byte) error {
		if uint64(nsems) > binary.LittleEndian.Uint64(ds[e.dsSize(ipcSem)-24:]) {
			return unix.EINVAL
		}
		return nil
	}
	return e.ipcGet(r, ipcSem, key, flg, more, func() (int, error) {
		id, _, en := unix.Syscall(unix.SYS_SEMGET, ipcPrivate, uintptr(nsems), uintptr(flg&0o777))
		return int(id), errOrNil(en)
	})
}

func sysMsgget(e *Engine, r *Request) Result {
	key, flg := int32(r.Uint(0)), r.Int(1)
	return e.ipcGet(r, ipcMsg, key, flg, nil, func() (int, error) {
		id, _, en := unix.Syscall(unix.SYS_MSGGET, ipcPrivate, uintptr(flg&0o777), 0)
		return int(id), errOrNil(en)
	})
}

func errOrNil(en unix.Errno) error {
	if en != 0 {
		return en
	}
	return nil
}

// ipcGuestID checks that id names an object the guest created; the call
// then proceeds (need: the access the kernel will check, for a guest that
// left its initial virtual identity; 0 for none).
func (e *Engine) ipcGuestID(r *Request, k ipcKind, id int, need int) Result {
	if _, ok := e.ipc.owned(k, id); !ok {
		return e.denied(r, unix.EINVAL, fmt.Sprintf("%s %d is not one the guest created", k, id))
	}
	c := r.Proc.Creds()
	if need != 0 && e.emulatesPerms(&c) {
		ds, err := e.ipcStat(k, id)
		if err != nil {
			return Fail(err)
		}
		if !e.ipcPermitted(r, parsePerm(ds), need<<6|need<<3|need) {
			return Fail(unix.EACCES)
		}
	}
	return Cont()
}

func sysShmat(e *Engine, r *Request) Result {
	need := ipcRead | ipcWrite
	if r.Int(2)&shmRdonly != 0 {
		need = ipcRead
	}
	return e.ipcGuestID(r, ipcShm, r.Int(0), need)
}

func sysMsgsnd(e *Engine, r *Request) Result { return e.ipcGuestID(r, ipcMsg, r.Int(0), ipcWrite) }
func sysMsgrcv(e *Engine, r *Request) Result { return e.ipcGuestID(r, ipcMsg, r.Int(0), ipcRead) }

// semBufSize is sizeof(struct sembuf).
const semBufSize = 6

func sysSemop(e *Engine, r *Request) Result {
	id, nsops := r.Int(0), r.Uint(2)
	need := ipcRead
	c := r.Proc.Creds()
	if e.emulatesPerms(&c) && nsops > 0 && nsops <= 4096 {
		// The kernel asks for alter (write) permission when any operation
		// changes a value.
		buf := make([]byte, int(nsops)*semBufSize)
		if err := r.Mem.Read(r.Ptr(1), buf); err != nil {
			return Fail(err)
		}
		for i := 0; i < len(buf); i += semBufSize {
			if int16(binary.LittleEndian.Uint16(buf[i+2:])) != 0 {
				need = ipcWrite
			}
		}
	}
	return e.ipcGuestID(r, ipcSem, id, need)
}

func sysShmctl(e *Engine, r *Request) Result {
	id, cmd := r.Int(0), r.Int(1)
	switch cmd {
	case ipcInfo, shmInfo:
		return Cont()
	case shmStat, shmStatAny:
		return e.ipcStatIndex(r, ipcShm, id, cmd == shmStatAny, r.Ptr(2))
	case shmLock, shmUnlock:
		return e.ipcGuestID(r, ipcShm, id, 0)
	}
	return e.ipcCtl(r, ipcShm, id, cmd, r.Ptr(2))
}

func sysSemctl(e *Engine, r *Request) Result {
	id, cmd := r.Int(0), r.Int(2)
	switch cmd {
	case ipcInfo, semInfo:
		return Cont()
	case semStat, semStatAny:
		return e.ipcStatIndex(r, ipcSem, id, cmd == semStatAny, r.Ptr(3))
	case semGetpid, semGetval, semGetall, semGetncnt, semGetzcnt:
		return e.ipcGuestID(r, ipcSem, id, ipcRead)
	case semSetval, semSetall:
		return e.ipcGuestID(r, ipcSem, id, ipcWrite)
	}
	return e.ipcCtl(r, ipcSem, id, cmd, r.Ptr(3))
}

func sysMsgctl(e *Engine, r *Request) Result {
	id, cmd := r.Int(0), r.Int(1)
	switch cmd {
	case ipcInfo, msgInfo:
		return Cont()
	case msgStat, msgStatAny:
		return e.ipcStatIndex(r, ipcMsg, id, cmd == msgStatAny, r.Ptr(2))
	}
	return e.ipcCtl(r, ipcMsg, id, cmd, r.Ptr(2))
}

// ipcCtl serves IPC_STAT, IPC_SET and IPC_RMID; any other command is
// EINVAL, as the kernel answers an unknown one.
func (e *Engine) ipcCtl(r *Request, k ipcKind, id, cmd int, buf uint64) Result {
	if cmd != ipcStat && cmd != ipcSet && cmd != ipcRmid {
		return Fail(unix.EINVAL)
	}
	if id < 0 {
		return Fail(unix.EINVAL)
	}
	obj, ok := e.ipc.owned(k, id)
	if !ok {
		return e.denied(r, unix.EINVAL, fmt.Sprintf("%s %d is not one the guest created", k, id))
	}
	ds, err := e.ipcStat(k, id)
	if err != nil {
		return Fail(err)
	}
	p := parsePerm(ds)
	switch cmd {
	case ipcStat:
		if !e.ipcPermitted(r, p, ipcRead<<6|ipcRead<<3|ipcRead) {
			return Fail(unix.EACCES)
		}
		if err := e.writeIPCStat(r, k, ds, obj, buf); err != nil {
			return Fail(err)
		}
		return Ok(0)
	case ipcSet:
		if !e.cfg.Identity.Virtual {
			return Cont() // the kernel checks and applies it as for the guest
		}
		return e.ipcSetVirtual(r, k, id, p, ds, buf)
	}
	if !e.ipcOwner(r, p) {
		return Fail(unix.EPERM)
	}
	if _, err := ipcctl(k, id, ipcRmid, nil); err != nil {
		return Fail(err)
	}
	e.ipc.mu.Lock()
	defer e.ipc.mu.Unlock()
	if k == ipcShm {
		// A segment still attached lives on (IPC_PRIVATE, SHM_DEST) until
		// its last detach: the guest may still use its id.
		if _, err := e.ipcStat(k, id); err == nil {
			if obj.key != ipcPrivate && e.ipc.byKey[k][obj.key] == id {
				delete(e.ipc.byKey[k], obj.key)
			}
			obj.key = ipcPrivate
			return Ok(0)
		}
	}
	e.ipc.forgetLocked(k, id)
	return Ok(0)
}

// writeIPCStat writes an *id64_ds to the guest as the guest sees it: its
// own key, and owners translated like a file's.
func (e *Engine) writeIPCStat(r *Request, k ipcKind, ds []byte, obj *ipcObject, buf uint64) error {
	out := append([]byte(nil), ds...)
	le := binary.LittleEndian
	p := parsePerm(ds)
	e.ipc.mu.Lock()
	key := obj.key
	e.ipc.mu.Unlock()
	le.PutUint32(out[0:], uint32(key))
	uid, gid := e.guestOwner(p.uid, p.gid)
	cuid, cgid := e.guestOwner(p.cuid, p.cgid)
	le.PutUint32(out[4:], uid)
	le.PutUint32(out[8:], gid)
	le.PutUint32(out[12:], cuid)
	le.PutUint32(out[16:], cgid)
	return r.Mem.Write(buf, out)
}

// hostID maps a guest uid or gid given to IPC_SET back to the host's.
func (e *Engine) hostID(v, guest, host uint32) uint32 {
	if v == guest {
		return host
	}
	return v
}

// ipcSetVirtual performs IPC_SET for a guest with a virtual identity: the
// owner ids it gives are the guest's view of them.
func (e *Engine) ipcSetVirtual(r *Request, k ipcKind, id int, p ipcPerm, cur []byte, buf uint64) Result {
	in := make([]byte, e.dsSize(k))
	if err := r.Mem.Read(buf, in); err != nil {
		return Fail(err)
	}
	if !e.ipcOwner(r, p) {
		return Fail(unix.EPERM)
	}
	le := binary.LittleEndian
	set := append([]byte(nil), cur...)
	le.PutUint32(set[4:], e.hostID(le.Uint32(in[4:]), e.cfg.Identity.UID, e.hostUID))
	le.PutUint32(set[8:], e.hostID(le.Uint32(in[8:]), e.cfg.Identity.GID, e.hostGID))
	le.PutUint32(set[20:], le.Uint32(in[20:]))
	if k == ipcMsg {
		q := le.Uint64(in[msgQbytesOff:])
		if e.hostUID == 0 && !e.cfg.GuestCaps && q > msgMaxBytes() {
			return Fail(unix.EPERM) // above kernel.msgmnb needs CAP_SYS_RESOURCE
		}
		le.PutUint64(set[msgQbytesOff:], q)
	}
	_, err := ipcctl(k, id, ipcSet, set)
	return errOf(err)
}

// msgMaxBytes is kernel.msgmnb, the queue size an unprivileged process may
// set.
func msgMaxBytes() uint64 {
	b, err := os.ReadFile("/proc/sys/kernel/msgmnb")
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v
}

// ipcStatIndex serves the index-based SHM_STAT, SEM_STAT, MSG_STAT (any:
// the *_STAT_ANY forms, which skip the read check): only an index holding
// one of the guest's objects answers (with its id); every other index is
// EINVAL, as an empty one.
func (e *Engine) ipcStatIndex(r *Request, k ipcKind, idx int, any bool, buf uint64) Result {
	if idx < 0 {
		return Fail(unix.EINVAL)
	}
	tmp := make([]byte, 256)
	id, err := ipcctl(k, idx, statAnyCmd(k), tmp)
	if err == unix.EINVAL {
		// Before Linux 4.17 there is no *_STAT_ANY: the plain form.
		id, err = ipcctl(k, idx, [...]int{shmStat, semStat, msgStat}[k], tmp)
	}
	if err != nil {
		return Fail(unix.EINVAL)
	}
	obj, ok := e.ipc.owned(k, id)
	if !ok {
		return e.denied(r, unix.EINVAL, fmt.Sprintf("index %d holds a %s the guest did not create", idx, k))
	}
	ds, err := e.ipcStat(k, id)
	if err != nil {
		return Fail(unix.EINVAL)
	}
	if !any && !e.ipcPermitted(r, parsePerm(ds), ipcRead<<6|ipcRead<<3|ipcRead) {
		return Fail(unix.EACCES)
	}
	if err := e.writeIPCStat(r, k, ds, obj, buf); err != nil {
		return Fail(err)
	}
	return Ok(int64(id))
}

// RemoveIPC removes every IPC object the guest created and did not
// remove; the engine's Close calls it. A segment is removed only if kbox
// is still its creator (shm_cpid), so an id reused by a host object after
// the guest's segment went away is left alone.
func (e *Engine) RemoveIPC() {
	t := e.ipc
	t.mu.Lock()
	defer t.mu.Unlock()
	self := uint32(os.Getpid())
	for k := ipcKind(0); k < ipcKinds; k++ {
		for id := range t.objs[k] {
			if k == ipcShm {
				ds, err := e.ipcStat(k, id)
				if err != nil || binary.LittleEndian.Uint32(ds[shmCpidOff:]) != self {
					continue
				}
			}
			if _, err := ipcctl(k, id, ipcRmid, nil); err == nil {
				e.Verbosef("removed the guest's %s %d at exit", k, id)
			}
		}
		t.objs[k] = map[int]*ipcObject{}
		t.byKey[k] = map[int32]int{}
	}
}

// sysvipcFile serves an open of /proc/sysvipc/{shm,sem,msg} in a host
// procfs for reading: a snapshot listing only the guest's objects, with
// their keys as the guest gave them. ok is false for every other open.
func (e *Engine) sysvipcFile(l *vfs.Lookup, flags uint64) (res Result, ok bool) {
	if l.Mount == nil || l.Mount.Kind != vfs.KindProc || l.Obj == nil || accessWrites(flags) || flags&(unix.O_CREAT|unix.O_DIRECTORY) != 0 {
		return Result{}, false
	}
	var k ipcKind
	switch strings.TrimPrefix(l.Path, l.Mount.Guest) {
	case "/sysvipc/shm":
		k = ipcShm
	case "/sysvipc/sem":
		k = ipcSem
	case "/sysvipc/msg":
		k = ipcMsg
	default:
		return Result{}, false
	}
	src, err := unix.Open(procFD(l.Obj.FD()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Fail(err), true
	}
	f := os.NewFile(uintptr(src), "sysvipc")
	host, err := io.ReadAll(io.LimitReader(f, 16<<20))
	f.Close()
	if err != nil {
		return Fail(err), true
	}
	text := e.filterSysvipc(k, string(host))
	mfd, err := unix.MemfdCreate("sysvipc", unix.MFD_CLOEXEC)
	if err != nil {
		return Fail(err), true
	}
	defer unix.Close(mfd)
	if _, err := unix.Write(mfd, []byte(text)); err != nil {
		return Fail(err), true
	}
	fd, err := unix.Open(procFD(mfd), unix.O_RDONLY|unix.O_CLOEXEC|int(flags&unix.O_NONBLOCK), 0)
	if err != nil {
		return Fail(err), true
	}
	return InjectFD(fd, flags&unix.O_CLOEXEC != 0), true
}

// Columns of /proc/sysvipc/* (0-based fields): the id is field 1, the key
// field 0; the owner ids uid gid cuid cgid start at ownerField.
var ownerField = [ipcKinds]int{7, 4, 7}

// filterSysvipc keeps the header and the guest's objects' lines of a
// /proc/sysvipc file, with the guest's keys and owners.
func (e *Engine) filterSysvipc(k ipcKind, host string) string {
	lines := strings.SplitAfter(host, "\n")
	var b strings.Builder
	e.ipc.mu.Lock()
	defer e.ipc.mu.Unlock()
	for i, line := range lines {
		f := strings.Fields(line)
		if i == 0 || len(f) < ownerField[k]+4 {
			b.WriteString(line)
			continue
		}
		id, err := strconv.Atoi(f[1])
		obj := e.ipc.objs[k][id]
		if err != nil || obj == nil {
			continue
		}
		line = replaceField(line, 0, strconv.Itoa(int(obj.key)))
		ids := make([]uint32, 4)
		for j := range ids {
			v, _ := strconv.ParseUint(f[ownerField[k]+j], 10, 32)
			ids[j] = uint32(v)
		}
		ids[0], ids[1] = e.guestOwner(ids[0], ids[1])
		ids[2], ids[3] = e.guestOwner(ids[2], ids[3])
		for j, v := range ids {
			line = replaceField(line, ownerField[k]+j, strconv.FormatUint(uint64(v), 10))
		}
		b.WriteString(line)
	}
	return b.String()
}

// replaceField replaces the i-th blank-separated field of line with v,
// right-aligned in the columns the old field and its leading blanks took
// (the kernel's %Nd layout), or after a single blank when v is wider.
func replaceField(line string, i int, v string) string {
	n := -1
	for pos := 0; pos < len(line); {
		start := pos
		for pos < len(line) && (line[pos] == ' ' || line[pos] == '\n') {
			pos++
		}
		if pos >= len(line) {
			break
		}
		for pos < len(line) && line[pos] != ' ' && line[pos] != '\n' {
			pos++
		}
		if n++; n == i {
			pad := pos - start - len(v)
			if pad < 1 && start > 0 {
				pad = 1
			}
			return line[:start] + strings.Repeat(" ", max(pad, 0)) + v + line[pos:]
		}
	}
	return line
}
