package dispatch

import (
	"crypto/rand"
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/identity"
	"github.com/kbox-go/kbox/internal/vfs"
)

// sliceMem is guest memory backed by a slice at address memBase.
type sliceMem struct{ b []byte }

const memBase = 0x10000

func (m *sliceMem) Read(addr uint64, p []byte) error {
	if addr < memBase || addr-memBase+uint64(len(p)) > uint64(len(m.b)) {
		return unix.EFAULT
	}
	copy(p, m.b[addr-memBase:])
	return nil
}

func (m *sliceMem) Write(addr uint64, p []byte) error {
	if addr < memBase || addr-memBase+uint64(len(p)) > uint64(len(m.b)) {
		return unix.EFAULT
	}
	copy(m.b[addr-memBase:], p)
	return nil
}

func (m *sliceMem) ReadString(addr uint64, max int) (string, error) { return "", unix.EFAULT }

// ipcEngine is an engine for IPC handler tests (identity as given).
func ipcEngine(t *testing.T, id identity.Config) (*Engine, *Process, *sliceMem) {
	t.Helper()
	ns := vfs.NewNamespace()
	if err := ns.Add("/", t.TempDir(), false, vfs.KindBind); err != nil {
		t.Fatal(err)
	}
	ns.Seal()
	t.Cleanup(ns.Close)
	e, err := New(Config{Arch: abi.Host(), NS: ns, Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e, e.Procs.AddInitial(os.Getpid()), &sliceMem{b: make([]byte, 4096)}
}

func (e *Engine) call(p *Process, mem Memory, name string, args ...uint64) Result {
	r := &Request{Nr: e.arch.MustNr(name), Tgid: p.Tgid, Tid: p.Tgid, Proc: p, Mem: mem}
	copy(r.Args[:], args)
	return e.Dispatch(r)
}

func randomKey(t *testing.T) uint64 {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return uint64(binary.LittleEndian.Uint32(b[:])&0x3fffffff | 0x40000000)
}

func wantErr(t *testing.T, what string, res Result, en unix.Errno) {
	t.Helper()
	if res.Kind != Errno || res.Err != en {
		t.Errorf("%s: got %+v, want %s", what, res, unix.ErrnoName(en))
	}
}

func wantOK(t *testing.T, what string, res Result) int64 {
	t.Helper()
	if res.Kind != Value {
		t.Fatalf("%s: got %+v, want a value", what, res)
	}
	return res.Val
}

func hostShmExists(id int) bool {
	_, err := ipcctl(ipcShm, id, ipcStat, make([]byte, 256))
	return err == nil
}

func TestIPCGuestSeesOnlyItsObjects(t *testing.T) {
	e, p, mem := ipcEngine(t, identity.Config{})
	key, hostKey := randomKey(t), randomKey(t)
	hostID, err := unix.SysvShmGet(int(hostKey), 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		t.Skipf("SysV shared memory unavailable: %v", err)
	}
	defer unix.SysvShmCtl(hostID, unix.IPC_RMID, nil)

	// The host's object is invisible by key and refused by id.
	wantErr(t, "shmget of the host's key", e.call(p, mem, "shmget", hostKey, 0, 0), unix.ENOENT)
	wantErr(t, "shmat of the host's id", e.call(p, mem, "shmat", uint64(hostID), 0, 0), unix.EINVAL)
	for _, cmd := range []uint64{ipcStat, ipcSet, ipcRmid, shmLock} {
		wantErr(t, "shmctl of the host's id", e.call(p, mem, "shmctl", uint64(hostID), cmd, memBase), unix.EINVAL)
	}
	wantErr(t, "SHM_STAT_ANY at the host's index", e.call(p, mem, "shmctl", uint64(hostID)&0x7fff, shmStatAny, memBase), unix.EINVAL)
	if !hostShmExists(hostID) {
		t.Fatal("the host's segment is gone")
	}

	// The guest's own object, by key: IPC_CREAT, IPC_EXCL, size and mode
	// checks as the kernel makes them.
	wantErr(t, "shmget without IPC_CREAT", e.call(p, mem, "shmget", key, 4096, 0o600), unix.ENOENT)
	id := wantOK(t, "shmget IPC_CREAT", e.call(p, mem, "shmget", key, 4096, ipcCreat|0o600))
	if id == int64(hostID) {
		t.Fatal("the guest's key reached the host's object")
	}
	if got := wantOK(t, "shmget again", e.call(p, mem, "shmget", key, 0, 0)); got != id {
		t.Errorf("shmget of the same key: %d, want %d", got, id)
	}
	wantErr(t, "shmget IPC_EXCL", e.call(p, mem, "shmget", key, 0, ipcCreat|ipcExcl|0o600), unix.EEXIST)
	wantErr(t, "shmget larger", e.call(p, mem, "shmget", key, 8192, 0), unix.EINVAL)
	if res := e.call(p, mem, "shmat", uint64(id), 0, 0); res.Kind != Continue {
		t.Errorf("shmat of the guest's id: %+v, want CONTINUE", res)
	}
	wantOK(t, "IPC_STAT", e.call(p, mem, "shmctl", uint64(id), ipcStat, memBase))
	if ds := parsePerm(mem.b); ds.key != int32(key) || ds.mode&0o777 != 0o600 || ds.uid != uint32(os.Geteuid()) {
		t.Errorf("IPC_STAT: %+v, want the guest's key %d, mode 0600, uid %d", ds, int32(key), os.Geteuid())
	}
	if got := wantOK(t, "SHM_STAT of the guest's index", e.call(p, mem, "shmctl", uint64(id)&0x7fff, shmStat, memBase)); got != id {
		t.Errorf("SHM_STAT: id %d, want %d", got, id)
	}
	if res := e.call(p, mem, "shmctl", 0, shmInfo, memBase); res.Kind != Continue {
		t.Errorf("SHM_INFO: %+v, want CONTINUE", res)
	}
	wantErr(t, "unknown command", e.call(p, mem, "shmctl", uint64(id), 99, memBase), unix.EINVAL)

	// IPC_RMID frees the key; a private object is recorded too, and
	// whatever the guest leaves is removed at exit.
	wantOK(t, "IPC_RMID", e.call(p, mem, "shmctl", uint64(id), ipcRmid, 0))
	if hostShmExists(int(id)) {
		t.Error("IPC_RMID left the segment")
	}
	wantErr(t, "shmget after IPC_RMID", e.call(p, mem, "shmget", key, 0, 0), unix.ENOENT)
	priv := wantOK(t, "shmget IPC_PRIVATE", e.call(p, mem, "shmget", ipcPrivate, 4096, 0o600))
	keyed := wantOK(t, "shmget IPC_CREAT", e.call(p, mem, "shmget", key, 4096, ipcCreat|0o600))
	e.RemoveIPC()
	for _, id := range []int64{priv, keyed} {
		if hostShmExists(int(id)) {
			t.Errorf("segment %d outlived the run", id)
		}
	}
	if !hostShmExists(hostID) {
		t.Error("RemoveIPC removed the host's segment")
	}
}

func TestIPCSemaphoresAndQueues(t *testing.T) {
	e, p, mem := ipcEngine(t, identity.Config{})
	key := randomKey(t)
	sem := wantOK(t, "semget", e.call(p, mem, "semget", key, 2, ipcCreat|0o400))
	wantErr(t, "semget more semaphores", e.call(p, mem, "semget", key, 3, 0o400), unix.EINVAL)
	wantErr(t, "semget negative", e.call(p, mem, "semget", key, uint64(0xffffffff), 0), unix.EINVAL)
	// Even when kbox runs as root: the guest has no CAP_IPC_OWNER.
	wantErr(t, "semget for writing a read-only set", e.call(p, mem, "semget", key, 1, 0o600), unix.EACCES)
	if got := wantOK(t, "semget read", e.call(p, mem, "semget", key, 1, 0o400)); got != sem {
		t.Errorf("semget: %d, want %d", got, sem)
	}
	for _, cmd := range []uint64{semGetval, semSetval, semGetall} {
		if res := e.call(p, mem, "semctl", uint64(sem), 0, cmd, 0); res.Kind != Continue {
			t.Errorf("semctl %d on the guest's set: %+v, want CONTINUE", cmd, res)
		}
	}
	wantOK(t, "semctl IPC_STAT", e.call(p, mem, "semctl", uint64(sem), 0, ipcStat, memBase))
	if n := binary.LittleEndian.Uint64(mem.b[e.dsSize(ipcSem)-24:]); n != 2 {
		t.Errorf("sem_nsems %d, want 2", n)
	}
	q := wantOK(t, "msgget", e.call(p, mem, "msgget", key, ipcCreat|0o600))
	for _, name := range []string{"msgsnd", "msgrcv"} {
		if res := e.call(p, mem, name, uint64(q), 0, 0, 0); res.Kind != Continue {
			t.Errorf("%s on the guest's queue: %+v", name, res)
		}
		wantErr(t, name+" on another id", e.call(p, mem, name, uint64(q)+1, 0, 0, 0), unix.EINVAL)
	}
	wantErr(t, "semop on another id", e.call(p, mem, "semop", uint64(sem)+1, memBase, 1), unix.EINVAL)
	wantOK(t, "msgctl IPC_RMID", e.call(p, mem, "msgctl", uint64(q), ipcRmid, 0))
	wantErr(t, "msgsnd after IPC_RMID", e.call(p, mem, "msgsnd", uint64(q), 0, 0, 0), unix.EINVAL)
	e.RemoveIPC()
	if _, err := ipcctl(ipcSem, int(sem), ipcStat, make([]byte, 256)); err == nil {
		t.Error("the semaphore set outlived the run")
	}
}

func TestIPCVirtualOwner(t *testing.T) {
	e, p, mem := ipcEngine(t, identity.Config{Virtual: true, UID: 0, GID: 0})
	id := wantOK(t, "shmget", e.call(p, mem, "shmget", ipcPrivate, 4096, 0o640))
	wantOK(t, "IPC_STAT", e.call(p, mem, "shmctl", uint64(id), ipcStat, memBase))
	if ds := parsePerm(mem.b); ds.uid != 0 || ds.cuid != 0 || ds.gid != 0 {
		t.Errorf("IPC_STAT under -0: %+v, want owner 0:0", ds)
	}
	// IPC_SET with the guest's view of the owner keeps the host owner.
	binary.LittleEndian.PutUint32(mem.b[20:], 0o600)
	wantOK(t, "IPC_SET", e.call(p, mem, "shmctl", uint64(id), ipcSet, memBase))
	ds, err := e.ipcStat(ipcShm, int(id))
	if err != nil {
		t.Fatal(err)
	}
	if pp := parsePerm(ds); pp.uid != uint32(os.Geteuid()) || pp.mode&0o777 != 0o600 {
		t.Errorf("after IPC_SET: %+v, want uid %d mode 0600", pp, os.Geteuid())
	}
}

func TestFilterSysvipc(t *testing.T) {
	e, _, _ := ipcEngine(t, identity.Config{})
	e.ipc.objs[ipcShm][2] = &ipcObject{key: 4660}
	host := "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n" +
		"1801613176          1   600                  4096 15522     0      0     0     0     0     0          0          0 1796477577                     0                     0\n" +
		"         0          2   600                  4096 15522     0      0     0     0     0     0          0          0 1796477577                     0                     0\n"
	got := e.filterSysvipc(ipcShm, host)
	ls := strings.Split(got, "\n")
	if len(ls) != 3 || ls[2] != "" {
		t.Fatalf("filtered:\n%s", got)
	}
	if want := "      4660          2   600"; !strings.HasPrefix(ls[1], want) || len(ls[1]) != len(strings.Split(host, "\n")[2]) {
		t.Errorf("line %q, want it to start %q and keep the layout", ls[1], want)
	}
	if strings.Contains(got, "1801613176") {
		t.Error("the host's segment is listed")
	}
	for _, c := range []struct {
		line string
		i    int
		v    string
		want string
	}{
		{"   a   b c\n", 1, "xy", "   a  xy c\n"},
		{"   a   b c\n", 0, "12345", "12345   b c\n"},
		{"   a   b c\n", 2, "long", "   a   b long\n"},
		{"   a   b c\n", 5, "x", "   a   b c\n"},
	} {
		if got := replaceField(c.line, c.i, c.v); got != c.want {
			t.Errorf("replaceField(%q, %d, %q) = %q, want %q", c.line, c.i, c.v, got, c.want)
		}
	}
}
