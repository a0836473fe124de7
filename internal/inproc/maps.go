//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// mapping is one line of /proc/self/maps.
type mapping struct {
	lo, hi uint64
	perms  string // "r-xp"
	off    uint64 // file offset of lo
	path   string // "" for anonymous memory; "[vdso]" and the like
}

// readMaps reads kbox's (and so the guest's) memory map.
func readMaps() ([]mapping, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		lohi := strings.SplitN(fields[0], "-", 2)
		if len(lohi) != 2 {
			continue
		}
		lo, err1 := strconv.ParseUint(lohi[0], 16, 64)
		hi, err2 := strconv.ParseUint(lohi[1], 16, 64)
		off, err3 := strconv.ParseUint(fields[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		m := mapping{lo: lo, hi: hi, perms: fields[1], off: off}
		if len(fields) >= 6 {
			m.path = strings.Join(fields[5:], " ")
		}
		out = append(out, m)
	}
	return out, sc.Err()
}
