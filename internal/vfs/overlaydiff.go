package vfs

import (
	"os"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Diff walks an overlay's upper directory and reports what it changes in
// lower, in path order: 'A' a path the lower directory does not have,
// 'C' one it has (a file copied up and changed, a directory with changes
// inside, a name removed and made again), 'D' one a whiteout removes.
// The entries of an added directory are reported too, as docker diff
// does; the overlay's own reserved entries are not.
func Diff(upper, lower string, emit func(kind byte, guestPath string)) error {
	up, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: upper, Err: err}
	}
	defer unix.Close(up)
	lo, err := unix.Open(lower, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: lower, Err: err}
	}
	defer unix.Close(lo)
	return diffDir(up, lo, "/", emit, 0)
}

// diffDir reports the changes upper directory up makes to lower directory
// lo (-1: none, or hidden by opacity), at guest path dir.
func diffDir(up, lo int, dir string, emit func(byte, string), depth int) error {
	if depth > 4096 {
		return unix.ELOOP
	}
	ents, err := readDir(up)
	if err != nil {
		return err
	}
	names := map[string]DirEntry{}
	var whiteouts []string
	opq := false
	for _, d := range ents {
		switch {
		case d.Name == "." || d.Name == "..":
		case d.Name == OpaqueMarker:
			opq = true
		case d.Name == InfoName || strings.HasPrefix(d.Name, copyUpTemp):
		case ReservedName(d.Name):
			whiteouts = append(whiteouts, d.Name[len(WhiteoutPrefix):])
		default:
			names[d.Name] = d
		}
	}
	if opq {
		lo = -1
	}
	type item struct {
		name string
		kind byte
	}
	var items []item
	white := map[string]bool{}
	for _, w := range whiteouts {
		white[w] = true
		if _, ok := names[w]; !ok {
			items = append(items, item{w, 'D'})
		}
	}
	for name := range names {
		var st unix.Stat_t
		kind := byte('A')
		if lo >= 0 && unix.Fstatat(lo, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			kind = 'C'
		}
		items = append(items, item{name, kind})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].name < items[j].name })
	for _, it := range items {
		p := path.Join(dir, it.name)
		emit(it.kind, p)
		d, ok := names[it.name]
		if !ok || d.Type != unix.S_IFDIR {
			continue
		}
		sub, err := unix.Openat(up, it.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		sublo := -1
		if it.kind == 'C' && !white[it.name] {
			sublo, _ = unix.Openat(lo, it.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		err = diffDir(sub, sublo, p, emit, depth+1)
		unix.Close(sub)
		if sublo >= 0 {
			unix.Close(sublo)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
