package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SysV IPC (F9 in the hostile-guest report): the guest sees only the IPC
// objects it created. The IPC handlers are the seccomp tier's; the
// in-process tiers do not serve SysV IPC.

// hostIPC is a set of host SysV objects a guest must not reach: a shared
// memory segment holding a secret, a semaphore set and a message queue
// holding a message, all with one key, owned by uid (mode 0600).
type hostIPC struct {
	key                    int
	shm, sem, msg          int // ids
	shmIdx, semIdx, msgIdx int // the kernel's indices of the ids
	secret                 string
	semVal0                int
}

func ipcKey(t *testing.T) int {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return int(binary.LittleEndian.Uint32(b[:])&0x3fffffff | 0x40000000)
}

func sysvCtl(nr uintptr, id, cmd int, buf []byte) (int, error) {
	var p uintptr
	if buf != nil {
		p = uintptr(unsafe.Pointer(&buf[0]))
	}
	var r uintptr
	var en unix.Errno
	if nr == unix.SYS_SEMCTL {
		r, _, en = unix.Syscall6(nr, uintptr(id), 0, uintptr(cmd), p, 0, 0)
	} else {
		r, _, en = unix.Syscall(nr, uintptr(id), uintptr(cmd), p)
	}
	if en != 0 {
		return -1, en
	}
	return int(r), nil
}

// ipcIndex is the kernel's index of id (found with the *_STAT_ANY of the
// default IPCMNI and of ipcmni_extend).
func ipcIndex(nr uintptr, statAny, id int) int {
	buf := make([]byte, 256)
	for _, mask := range []int{1<<15 - 1, 1<<24 - 1} {
		if got, err := sysvCtl(nr, id&mask, statAny, buf); err == nil && got == id {
			return id & mask
		}
	}
	return id & (1<<15 - 1)
}

// setOwner gives a host object to uid:uid (IPC_SET; the test runs as root
// when uid differs).
func setOwner(t *testing.T, nr uintptr, id, uid int) {
	t.Helper()
	buf := make([]byte, 256)
	if _, err := sysvCtl(nr, id, unix.IPC_STAT, buf); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(buf[4:], uint32(uid))
	binary.LittleEndian.PutUint32(buf[8:], uint32(uid))
	if _, err := sysvCtl(nr, id, unix.IPC_SET, buf); err != nil {
		t.Fatal(err)
	}
}

func newHostIPC(t *testing.T, uid int) *hostIPC {
	t.Helper()
	h := &hostIPC{key: ipcKey(t), secret: "kbox-ipc-secret-" + randomHex(t, 8), semVal0: 42}
	var err error
	h.shm, err = unix.SysvShmGet(h.key, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		t.Skipf("SysV shared memory unavailable: %v", err)
	}
	t.Cleanup(func() { unix.SysvShmCtl(h.shm, unix.IPC_RMID, nil) })
	mem, err := unix.SysvShmAttach(h.shm, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	copy(mem, h.secret)
	if err := unix.SysvShmDetach(mem); err != nil {
		t.Fatal(err)
	}
	r, _, en := unix.Syscall(unix.SYS_SEMGET, uintptr(h.key), 1, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if en != 0 {
		t.Fatal(en)
	}
	h.sem = int(r)
	t.Cleanup(func() { sysvCtl(unix.SYS_SEMCTL, h.sem, unix.IPC_RMID, nil) })
	if _, _, en := unix.Syscall6(unix.SYS_SEMCTL, uintptr(h.sem), 0, 16 /* SETVAL */, uintptr(h.semVal0), 0, 0); en != 0 {
		t.Fatal(en)
	}
	r, _, en = unix.Syscall(unix.SYS_MSGGET, uintptr(h.key), unix.IPC_CREAT|unix.IPC_EXCL|0o600, 0)
	if en != 0 {
		t.Fatal(en)
	}
	h.msg = int(r)
	t.Cleanup(func() { sysvCtl(unix.SYS_MSGCTL, h.msg, unix.IPC_RMID, nil) })
	msg := append(binary.LittleEndian.AppendUint64(nil, 1), h.secret...)
	if _, _, en := unix.Syscall6(unix.SYS_MSGSND, uintptr(h.msg), uintptr(unsafe.Pointer(&msg[0])), uintptr(len(h.secret)), unix.IPC_NOWAIT, 0, 0); en != 0 {
		t.Fatal(en)
	}
	if uid != os.Getuid() {
		setOwner(t, unix.SYS_SHMCTL, h.shm, uid)
		setOwner(t, unix.SYS_SEMCTL, h.sem, uid)
		setOwner(t, unix.SYS_MSGCTL, h.msg, uid)
	}
	h.shmIdx = ipcIndex(unix.SYS_SHMCTL, 15, h.shm)
	h.semIdx = ipcIndex(unix.SYS_SEMCTL, 20, h.sem)
	h.msgIdx = ipcIndex(unix.SYS_MSGCTL, 13, h.msg)
	return h
}

// checkUntouched fails unless the host objects still hold what the test
// put there.
func (h *hostIPC) checkUntouched(t *testing.T, what string) {
	t.Helper()
	mem, err := unix.SysvShmAttach(h.shm, 0, unix.SHM_RDONLY)
	if err != nil {
		t.Errorf("%s: the host's segment: %v", what, err)
	} else {
		if !bytes.HasPrefix(mem, []byte(h.secret)) {
			t.Errorf("%s: the host's segment was changed: %q", what, mem[:len(h.secret)])
		}
		unix.SysvShmDetach(mem)
	}
	v, _, en := unix.Syscall6(unix.SYS_SEMCTL, uintptr(h.sem), 0, 12 /* GETVAL */, 0, 0, 0)
	if en != 0 || int(v) != h.semVal0 {
		t.Errorf("%s: the host's semaphore: %d %v, want %d", what, v, en, h.semVal0)
	}
	buf := make([]byte, 256)
	if _, err := sysvCtl(unix.SYS_MSGCTL, h.msg, unix.IPC_STAT, buf); err != nil || binary.LittleEndian.Uint64(buf[80:]) != 1 {
		t.Errorf("%s: the host's queue: %v, %d messages, want 1", what, err, binary.LittleEndian.Uint64(buf[80:]))
	}
}

// TestIPCHostObjectsInvisible: a guest cannot find the host's objects by
// key, use them by id (attach, stat, remove, semop, msgrcv) nor
// enumerate them by index or in /proc/sysvipc; they are untouched after.
func TestIPCHostObjectsInvisible(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		for _, mode := range []string{"-R", "-S"} {
			h := newHostIPC(t, v.uid())
			root := freshRoot(t, v.uid())
			k, shm, sem, msg := strconv.Itoa(h.key), strconv.Itoa(h.shm), strconv.Itoa(h.sem), strconv.Itoa(h.msg)
			ops := [][]string{
				{"shmget", k, "0", "0"},
				{"shmget", k, "4096", "0600"},
				{"shmat", shm, "0"},
				{"shmat", shm, "SHM_RDONLY"},
				{"shmctl", shm, "IPC_STAT"},
				{"shmctl", shm, "IPC_SET"},
				{"shmctl", shm, "IPC_RMID"},
				{"shmctl", strconv.Itoa(h.shmIdx), "SHM_STAT"},
				{"shmctl", strconv.Itoa(h.shmIdx), "SHM_STAT_ANY"},
				{"semget", k, "0", "0"},
				{"semctl", sem, "0", "GETVAL"},
				{"semctl", sem, "0", "SETVAL", "7"},
				{"semop", sem, "0", "-1", "IPC_NOWAIT"},
				{"semctl", sem, "0", "IPC_STAT"},
				{"semctl", sem, "0", "IPC_RMID"},
				{"semctl", strconv.Itoa(h.semIdx), "0", "SEM_STAT_ANY"},
				{"msgget", k, "0"},
				{"msgrcv", msg, "0", "IPC_NOWAIT"},
				{"msgsnd", msg, "1", "injected", "IPC_NOWAIT"},
				{"msgctl", msg, "IPC_STAT"},
				{"msgctl", msg, "IPC_RMID"},
				{"msgctl", strconv.Itoa(h.msgIdx), "MSG_STAT_ANY"},
				{"shmctl", "0", "SHM_INFO"},
			}
			want := []string{
				"shmget: err ENOENT", "shmget: err ENOENT", "shmat: err EINVAL", "shmat: err EINVAL",
				"shmctl: err EINVAL", "shmctl: err EINVAL", "shmctl: err EINVAL", "shmctl: err EINVAL", "shmctl: err EINVAL",
				"semget: err ENOENT", "semctl: err EINVAL", "semctl: err EINVAL", "semop: err EINVAL",
				"semctl: err EINVAL", "semctl: err EINVAL", "semctl: err EINVAL",
				"msgget: err ENOENT", "msgrcv: err EINVAL", "msgsnd: err EINVAL", "msgctl: err EINVAL",
				"msgctl: err EINVAL", "msgctl: err EINVAL",
				"shmctl: ok *",
			}
			opts := runOpts{Unpriv: v.unpriv, Args: append([]string{"-v", mode, root, "--", "/bin/sc"}, scOps(ops...)...)}
			out, errOut, code := runKbox(t, opts)
			if code != 0 {
				t.Errorf("%s: exit status %d\nstderr:\n%s", cmdline(opts), code, errOut)
			}
			if diff := compareLines(want, lines(out)); diff != "" {
				t.Errorf("%s\n%s", cmdline(opts), diff)
			}
			if !strings.Contains(errOut, "shmat denied (EINVAL): shared memory segment "+shm+" is not one the guest created") {
				t.Errorf("%s: no -v line for the refused shmat:\n%s", cmdline(opts), errOut)
			}
			h.checkUntouched(t, cmdline(opts))

			// /proc/sysvipc lists none of the host's objects.
			opts = runOpts{Unpriv: v.unpriv, Args: []string{mode, root, "--", "/bin/sh", "-c",
				"cat /proc/sysvipc/shm /proc/sysvipc/sem /proc/sysvipc/msg"}}
			out, errOut, code = runKbox(t, opts)
			if code != 0 || len(lines(out)) != 3 || strings.Contains(out, k) {
				t.Errorf("%s: exit %d, want the three headers only:\n%s\nstderr:\n%s", cmdline(opts), code, out, errOut)
			}
		}
	})
}

// ipcOwnOps is a guest's use of its own objects: keyed creation and
// lookup, a segment shared with a child process, semaphores, a queue,
// removal. Its output is the same natively and under kbox.
func ipcOwnOps(key int, uid string) ([][]string, []string) {
	k := strconv.Itoa(key)
	ops := [][]string{
		{"shmget", k, "4096", "IPC_CREAT|0600"},
		{"shmget", k, "0", "0"},
		{"shmget", k, "0", "IPC_CREAT|IPC_EXCL|0600"},
		{"shmget", k, "8192", "0"},
		{"shmat", "@1", "0"},
		{"memwrite", "@5", "from-parent"},
		{"shmfork", "@1", "from-child"},
		{"memread", "@5", "11"},
		{"shmctl", "@1", "IPC_STAT"},
		{"shmdt", "@5"},
		{"shmctl", "@1", "IPC_RMID"},
		{"shmget", k, "0", "0"},
		{"semget", k, "2", "IPC_CREAT|0600"},
		{"semctl", "@13", "1", "SETVAL", "5"},
		{"semop", "@13", "1", "-2", "0"},
		{"semctl", "@13", "1", "GETVAL"},
		{"semop", "@13", "0", "-1", "IPC_NOWAIT"},
		{"semctl", "@13", "0", "IPC_STAT"},
		{"semctl", "@13", "0", "IPC_RMID"},
		{"msgget", k, "IPC_CREAT|0600"},
		{"msgsnd", "@20", "3", "hello", "0"},
		{"msgctl", "@20", "IPC_STAT"},
		{"msgrcv", "@20", "0", "IPC_NOWAIT"},
		{"msgrcv", "@20", "0", "IPC_NOWAIT"},
		{"msgctl", "@20", "IPC_RMID"},
		{"msgget", k, "0"},
	}
	owner := "uid=" + uid + " gid=" + uid + " cuid=" + uid + " cgid=" + uid
	want := []string{
		"shmget: ok *", "shmget: ok *", "shmget: err EEXIST", "shmget: err EINVAL", "shmat: ok",
		"memwrite: ok 11", "shmfork: ok from-child", "memread: ok from-childt",
		"shmctl: ok key=" + k + " " + owner + " mode=0600 size=4096 nattch=1",
		"shmdt: ok 0", "shmctl: ok 0", "shmget: err ENOENT",
		"semget: ok *", "semctl: ok 0", "semop: ok 0", "semctl: ok 3", "semop: err EAGAIN",
		"semctl: ok key=" + k + " " + owner + " mode=0600 nsems=2", "semctl: ok 0",
		"msgget: ok *", "msgsnd: ok 0", "msgctl: ok key=" + k + " " + owner + " mode=0600 qnum=1",
		"msgrcv: ok type=3 text=hello", "msgrcv: err ENOMSG", "msgctl: ok 0", "msgget: err ENOENT",
	}
	return ops, want
}

// TestIPCGuestOwnObjects: a guest creates, shares between two of its
// processes and removes its own segment, semaphores and queue (the same
// output as natively: TestIPCGuestOwnObjectsNativeOracle); what it leaves
// is removed when kbox exits.
func TestIPCGuestOwnObjects(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		for _, mode := range rootModes() {
			root := freshRoot(t, v.uid())
			key, leftKey := ipcKey(t), ipcKey(t)
			uid := strconv.Itoa(v.uid())
			if mode == "-S" {
				uid = "0" // the guest's view: its objects are its own
			}
			ops, want := ipcOwnOps(key, uid)
			// Left behind: removed at exit.
			ops = append(ops, []string{"shmget", "0", "4096", "0600"}, []string{"shmget", strconv.Itoa(leftKey), "4096", "IPC_CREAT|0600"},
				[]string{"semget", "0", "1", "0600"}, []string{"msgget", strconv.Itoa(leftKey), "IPC_CREAT|0600"},
				[]string{"shmat", "@27", "0"})
			want = append(want, "shmget: ok *", "shmget: ok *", "semget: ok *", "msgget: ok *", "shmat: ok")
			opts := runOpts{Unpriv: v.unpriv, Args: append([]string{mode, root, "--", "/bin/sc"}, scOps(ops...)...)}
			out, errOut, code := runKbox(t, opts)
			got := lines(out)
			if code != 0 {
				t.Errorf("%s: exit status %d\nstderr:\n%s", cmdline(opts), code, errOut)
			}
			if diff := compareLines(want, got); diff != "" {
				t.Errorf("%s\n%sstderr:\n%s", cmdline(opts), diff, errOut)
				continue
			}
			if got[0] != got[1] {
				t.Errorf("%s: shmget of the same key gave %q then %q", cmdline(opts), got[0], got[1])
			}
			for i, nr := range map[int]uintptr{26: unix.SYS_SHMCTL, 27: unix.SYS_SHMCTL, 28: unix.SYS_SEMCTL, 29: unix.SYS_MSGCTL} {
				id, _ := strconv.Atoi(strings.Fields(got[i])[2])
				if _, err := sysvCtl(nr, id, unix.IPC_STAT, make([]byte, 256)); err == nil {
					t.Errorf("%s: %s survived kbox", cmdline(opts), got[i])
					sysvCtl(nr, id, unix.IPC_RMID, nil)
				}
			}
			for _, f := range []string{"shm", "sem", "msg"} {
				b, _ := os.ReadFile("/proc/sysvipc/" + f)
				for _, l := range strings.Split(string(b), "\n") {
					if fs := strings.Fields(l); len(fs) > 1 && (fs[0] == strconv.Itoa(key) || fs[0] == strconv.Itoa(leftKey)) {
						t.Errorf("%s: /proc/sysvipc/%s still lists %q", cmdline(opts), f, l)
					}
				}
			}
		}
	})
}

// TestIPCGuestOwnObjectsNativeOracle runs the same operations natively:
// a failure here is a bug in the expectations, not in kbox.
func TestIPCGuestOwnObjectsNativeOracle(t *testing.T) {
	t.Parallel()
	sc := filepath.Join(fixtureRoot(t), "bin", "sc")
	ops, want := ipcOwnOps(ipcKey(t), strconv.Itoa(os.Getuid()))
	cmd := exec.Command(sc, scOps(ops...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", sc, err)
	}
	if diff := compareLines(want, lines(string(out))); diff != "" {
		t.Errorf("native %s\n%s", sc, diff)
	}
}
