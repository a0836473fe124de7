package dispatch

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

// direntStrings decodes records: name=type@d_off.
func direntStrings(t *testing.T, b []byte, is64 bool) []string {
	t.Helper()
	nameOff := 19
	if !is64 {
		nameOff = 18
	}
	var out []string
	for off := 0; off < len(b); {
		reclen := int(binary.LittleEndian.Uint16(b[off+16:]))
		if reclen < nameOff || reclen%8 != 0 || off+reclen > len(b) {
			t.Fatalf("bad record at %d: reclen %d", off, reclen)
		}
		rec := b[off : off+reclen]
		name, _, _ := strings.Cut(string(rec[nameOff:]), "\x00")
		typ := rec[18]
		if !is64 {
			typ = rec[reclen-1]
		}
		out = append(out, name+"="+string('0'+rune(typ)))
		off += reclen
	}
	return out
}

func TestAppendAndEditDirents(t *testing.T) {
	for _, is64 := range []bool{true, false} {
		var b []byte
		for _, d := range []vfs.DirEntry{{Name: "a", Type: unix.S_IFDIR, Ino: 5}, {Name: "longer-name", Type: unix.S_IFREG, Ino: 6},
			{Name: "seven77", Type: unix.S_IFCHR, Ino: 7}} {
			b = appendDirent(b, d, is64)
		}
		if got := strings.Join(direntStrings(t, b, is64), " "); got != "a=4 longer-name=8 seven77=2" {
			t.Errorf("is64 %v: records %q", is64, got)
		}
		out, _ := editDirents(b, is64, map[string]bool{"longer-name": true}, map[string]uint32{"seven77": unix.S_IFBLK})
		if got := strings.Join(direntStrings(t, out, is64), " "); got != "a=4 seven77=6" {
			t.Errorf("is64 %v: edited %q", is64, got)
		}
	}
}

// TestMountPointDentsReal lists a real directory through rawGetdents as
// mountPointDents does: every host entry once, the mount points once,
// whatever the buffer size.
func TestMountPointDentsReal(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := 0; i < 200; i++ {
		n := "file-" + strings.Repeat("x", i%40) + string(rune('a'+i%26)) + "-" + string(rune('0'+i%10)) + "-" + string(rune('A'+i/26))
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
		want = append(want, n+"=8")
	}
	os.Mkdir(filepath.Join(dir, "hidden"), 0o755)
	ents := []vfs.DirEntry{{Name: "mnt", Type: unix.S_IFDIR, Ino: 9}, {Name: "hidden", Type: unix.S_IFREG, Ino: 10}}
	want = append(want, ".=4", "..=4", "mnt=4", "hidden=8")
	sort.Strings(want)
	if f, err := os.Open(dir); err == nil {
		if _, err := mountPointBatch(int(f.Fd()), 100, true, ents, nil); err != unix.EINVAL {
			t.Errorf("a buffer too small for the mount points and one record: %v, want EINVAL", err)
		}
		f.Close()
	}
	for _, size := range []int{len(appendDirent(appendDirent(nil, ents[0], true), ents[1], true)) + maxDirent, 1000, 32768} {
		f, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			b, err := mountPointBatch(int(f.Fd()), size, true, ents, nil)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if len(b) == 0 {
				break
			}
			got = append(got, direntStrings(t, b, true)...)
		}
		f.Close()
		sort.Strings(got)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("size %d: %d entries, want %d:\n%q", size, len(got), len(want), got)
		}
	}
}
