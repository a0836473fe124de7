package identity

import "testing"

func TestRecord(t *testing.T) {
	for _, c := range []struct {
		r    Record
		text string
	}{
		{Record{UID: 0, GID: 0, Mode: 0o4755, Type: "file"}, "0:0:4755:file"},
		{Record{UID: 1000, GID: 50, Mode: 0o750, Type: "dir"}, "1000:50:0750:dir"},
		{Record{Mode: 0o666, Type: DeviceType(true, 1, 3)}, "0:0:0666:char-1-3"},
		{Record{GID: 6, Mode: 0o660, Type: DeviceType(false, 8, 16)}, "0:6:0660:block-8-16"},
		{Record{Mode: 0o17777}, "0:0:7777:file"},
	} {
		if got := string(c.r.Encode()); got != c.text {
			t.Errorf("%+v encodes as %q, want %q", c.r, got, c.text)
		}
		back, ok := ParseRecord(c.text + "\x00")
		want := c.r
		want.Mode &= 0o7777
		if want.Type == "" {
			want.Type = "file"
		}
		if !ok || back != want {
			t.Errorf("ParseRecord(%q) = %+v %v, want %+v", c.text, back, ok, want)
		}
	}
	if r, ok := ParseRecord("1:2:0644"); !ok || r != (Record{UID: 1, GID: 2, Mode: 0o644}) {
		t.Errorf("a record without a type: %+v %v", r, ok)
	}
	for _, bad := range []string{"", "1:2", "x:2:0644", "1:2:9", "1:-2:0644", "4294967296:0:0644"} {
		if _, ok := ParseRecord(bad); ok {
			t.Errorf("ParseRecord(%q) accepted", bad)
		}
	}
	if c, ma, mi, ok := (Record{Type: "char-1-3"}).Device(); !ok || !c || ma != 1 || mi != 3 {
		t.Errorf("char-1-3: %v %d %d %v", c, ma, mi, ok)
	}
	if c, ma, mi, ok := (Record{Type: "block-259-0"}).Device(); !ok || c || ma != 259 || mi != 0 {
		t.Errorf("block-259-0: %v %d %d %v", c, ma, mi, ok)
	}
	for _, bad := range []string{"file", "dir", "char", "char-1", "char-x-1", "pipe-1-2", "char-1-99999999999"} {
		if _, _, _, ok := (Record{Type: bad}).Device(); ok {
			t.Errorf("Device(%q) accepted", bad)
		}
	}
}
