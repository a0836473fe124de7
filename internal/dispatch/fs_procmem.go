package dispatch

import (
	"strings"

	"github.com/kbox-go/kbox/internal/vfs"
)

// procMemFile reports whether a lookup names a process's memory file in a
// procfs mount (/proc/<pid>/mem, /proc/<pid>/task/<tid>/mem). The guest
// may read it but not open it for writing: writing another process's
// memory is what process_vm_writev and ptrace, both denied, would do, and
// a process writing the memory of one blocked in execve could change the
// exec path after kbox's check (exec_race.go).
func procMemFile(l *vfs.Lookup) bool {
	if l.Mount == nil || l.Mount.Kind != vfs.KindProc {
		return false
	}
	rel := strings.TrimPrefix(l.Path, l.Mount.Guest)
	f := strings.Split(strings.Trim(rel, "/"), "/")
	switch {
	case len(f) == 2 && isDigits(f[0]) && f[1] == "mem":
		return true
	case len(f) == 4 && isDigits(f[0]) && f[1] == "task" && isDigits(f[2]) && f[3] == "mem":
		return true
	}
	return false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
