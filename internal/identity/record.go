package identity

import (
	"fmt"
	"strconv"
	"strings"
)

// OverrideXattr is the extended attribute that holds an object's recorded
// owner and mode (docs/identity.md): "uid:gid:mode:type", the mode in
// octal, the convention of containers/storage and fuse-overlayfs.
const OverrideXattr = "user.containers.override_stat"

// Record is one ownership record: the owner, the permission and set-id
// bits, and the type name of the object it describes ("file", "dir",
// "symlink", "pipe", "socket", or "char-MAJOR-MINOR" and
// "block-MAJOR-MINOR" for a device node kept as a placeholder file).
type Record struct {
	UID, GID uint32
	Mode     uint32 // permission and set-id bits only
	Type     string
}

// Encode is the attribute value of r.
func (r Record) Encode() []byte {
	t := r.Type
	if t == "" {
		t = "file"
	}
	return []byte(fmt.Sprintf("%d:%d:%04o:%s", r.UID, r.GID, r.Mode&0o7777, t))
}

// DeviceType is the type name of a device node placeholder.
func DeviceType(char bool, major, minor uint32) string {
	kind := "block"
	if char {
		kind = "char"
	}
	return fmt.Sprintf("%s-%d-%d", kind, major, minor)
}

// ParseRecord reads an attribute value; the type field is optional.
func ParseRecord(v string) (Record, bool) {
	f := strings.Split(strings.TrimRight(v, "\x00"), ":")
	if len(f) < 3 {
		return Record{}, false
	}
	u, err1 := strconv.ParseUint(f[0], 10, 32)
	g, err2 := strconv.ParseUint(f[1], 10, 32)
	m, err3 := strconv.ParseUint(f[2], 8, 32)
	if err1 != nil || err2 != nil || err3 != nil {
		return Record{}, false
	}
	r := Record{UID: uint32(u), GID: uint32(g), Mode: uint32(m) & 0o7777}
	if len(f) > 3 {
		r.Type = f[3]
	}
	return r, true
}

// Device returns the device node a placeholder's type names.
func (r Record) Device() (char bool, major, minor uint32, ok bool) {
	kind, rest, found := strings.Cut(r.Type, "-")
	if !found || (kind != "char" && kind != "block") {
		return false, 0, 0, false
	}
	ma, mi, found := strings.Cut(rest, "-")
	if !found {
		return false, 0, 0, false
	}
	a, err1 := strconv.ParseUint(ma, 10, 32)
	b, err2 := strconv.ParseUint(mi, 10, 32)
	if err1 != nil || err2 != nil {
		return false, 0, 0, false
	}
	return kind == "char", uint32(a), uint32(b), true
}
