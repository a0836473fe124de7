package seccomp

import "testing"

// The ioctl request numbers encode the struct sizes; check ours match.
func TestNotifLayout(t *testing.T) {
	cases := []struct {
		name      string
		got, want uintptr
	}{
		{"seccomp_notif", sizeofNotif, 80},
		{"seccomp_notif_resp", sizeofNotifResp, 24},
		{"seccomp_notif_addfd", sizeofNotifAddFD, 24},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: size %d, kernel ABI %d", c.name, c.got, c.want)
		}
	}
}
