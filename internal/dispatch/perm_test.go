package dispatch

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/identity"
)

func TestMayAccess(t *testing.T) {
	root := identity.Config{Virtual: true}.Initial()
	user := identity.Config{Virtual: true, UID: 1000, GID: 1000}.Initial()
	user.Groups = []uint32{50}
	reg, dir := uint32(unix.S_IFREG), uint32(unix.S_IFDIR)
	for _, c := range []struct {
		name  string
		c     identity.Creds
		ov    override
		ftype uint32
		mask  uint32
		want  error
	}{
		{"root reads 000", root, override{5, 5, 0, ""}, reg, permRead | permWrite, nil},
		{"root exec no x", root, override{5, 5, 0o644, ""}, reg, permExec, unix.EACCES},
		{"root exec other x", root, override{5, 5, 0o001, ""}, reg, permExec, nil},
		{"root searches 000 dir", root, override{5, 5, 0, ""}, dir, permExec | permWrite, nil},
		{"owner bits only", user, override{1000, 50, 0o070, ""}, reg, permRead, unix.EACCES},
		{"supplementary group", user, override{1, 50, 0o040, ""}, reg, permRead, nil},
		{"other", user, override{1, 2, 0o604, ""}, reg, permRead, nil},
		{"other write", user, override{1, 2, 0o604, ""}, reg, permWrite, unix.EACCES},
		{"owner rw", user, override{1000, 2, 0o600, ""}, reg, permRead | permWrite, nil},
	} {
		if got := mayAccess(&c.c, c.ov, c.ftype, c.mask, false); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	// access(2) with real ids: a root real uid keeps its permitted set.
	half := root
	if err := half.SetRESUID(identity.Keep, 1000, identity.Keep); err != nil {
		t.Fatal(err)
	}
	if err := mayAccess(&half, override{5, 5, 0, ""}, reg, permRead, false); err != unix.EACCES {
		t.Errorf("euid 1000 effective check: %v", err)
	}
	if err := mayAccess(&half, override{5, 5, 0, ""}, reg, permRead, true); err != nil {
		t.Errorf("ruid 0 real check: %v", err)
	}
}

func TestHostNeeds(t *testing.T) {
	for _, c := range []struct{ ftype, mode, want uint32 }{
		{unix.S_IFREG, 0o444, 0o600}, {unix.S_IFREG, 0o001, 0o700}, {unix.S_IFDIR, 0, 0o700},
		{unix.S_IFLNK, 0o777, 0}, {unix.S_IFIFO, 0, 0o600},
	} {
		if got := hostNeeds(c.ftype, c.mode); got != c.want {
			t.Errorf("hostNeeds(%o, %o) = %o, want %o", c.ftype, c.mode, got, c.want)
		}
	}
}

func TestVirtualStatus(t *testing.T) {
	c := identity.Config{Virtual: true}.Initial()
	if err := c.SetRESUID(1, 2, 3); err != nil {
		t.Fatal(err)
	}
	host := "Name:\tsh\nUid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\nGroups:\t \n" +
		"CapInh:\t0000000000000000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n"
	got := virtualStatus(host, c)
	for _, w := range []string{"Name:\tsh\n", "Uid:\t1\t2\t3\t2\n", "Gid:\t0\t0\t0\t0\n", "Groups:\t0 \n",
		"CapEff:\t0000000000000000\n", "NoNewPrivs:\t1\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in\n%s", w, got)
		}
	}
}

func TestParseOverride(t *testing.T) {
	if ov, ok := parseOverride("1000:7:4755:file"); !ok || ov != (override{1000, 7, 0o4755, ""}) {
		t.Fatalf("got %+v %v", ov, ok)
	}
	for _, bad := range []string{"", "1:2", "x:2:0644", "1:2:99"} {
		if _, ok := parseOverride(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
