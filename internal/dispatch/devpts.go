package dispatch

import (
	"os"
	"strconv"
	"strings"
)

// The guest's view of the host devpts (/dev/pts with -R/-S and the default
// root). kbox cannot give the guest a devpts instance of its own without
// privileges, so it shows the host's, reduced to the terminals the guest
// holds: a pty is visible (in lookups and in listings) when kbox or a guest
// process has its slave (/dev/pts/N) or its master (/dev/ptmx, whose fdinfo
// names the index) open. That covers the terminal kbox was started on and
// every pty the guest creates through /dev/ptmx; another user's terminal
// (or, for a root guest without capabilities, root's) does not exist for
// the guest. The pseudo-file /dev/pts/ptmx is hidden too: the guest uses
// /dev/ptmx.

// GuestPty implements vfs.PtyView. The caller (a guest process making
// the call) is looked at first: it usually holds the pty it names.
func (t *ProcTable) GuestPty(caller, n int) bool {
	if (caller > 0 && ptyHeld(caller, n)) || ptyHeld(t.self, n) {
		return true
	}
	for _, pc := range t.descendants() {
		if ptyHeld(pc[0], n) && ppidOf(pc[0]) == pc[1] {
			// Still the child of the same guest process after the scan:
			// the descriptors read were a guest process's (a reused pid
			// with that parent is a guest process too).
			return true
		}
	}
	return false
}

// guestPtys lists the ptys GuestPty accepts, for a devpts listing.
func (t *ProcTable) guestPtys() map[int]bool {
	set := map[int]bool{}
	ptysOf(t.self, set)
	for _, pc := range t.descendants() {
		held := map[int]bool{}
		ptysOf(pc[0], held)
		if ppidOf(pc[0]) != pc[1] {
			continue
		}
		for n := range held {
			set[n] = true
		}
	}
	return set
}

// descendants lists kbox's live descendants (the guest's processes: kbox
// is their subreaper) as {pid, parent} pairs, from the kernel's children
// lists.
func (t *ProcTable) descendants() [][2]int {
	var out [][2]int
	seen := map[int]bool{t.self: true}
	queue := []int{t.self}
	for len(queue) > 0 && len(out) < 1<<16 {
		parent := queue[0]
		queue = queue[1:]
		for _, c := range ChildrenOf(parent) {
			if !seen[c] {
				seen[c] = true
				out = append(out, [2]int{c, parent})
				queue = append(queue, c)
			}
		}
	}
	return out
}

// ppidOf returns the parent of process pid (0 when it is gone).
func ppidOf(pid int) int {
	return readStatus(pid).ppid
}

// ptyHeld reports whether process pid has pty n open.
func ptyHeld(pid, n int) bool {
	set := map[int]bool{}
	ptysOf(pid, set)
	return set[n]
}

// ptysOf adds the ptys process pid has open (slaves by their path,
// masters by the tty-index of their fdinfo) to set.
func ptysOf(pid int, set map[int]bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	ents, err := os.ReadDir(dir + "fd")
	if err != nil {
		return
	}
	for _, ent := range ents {
		target, err := os.Readlink(dir + "fd/" + ent.Name())
		if err != nil {
			continue
		}
		if rest, ok := strings.CutPrefix(target, "/dev/pts/"); ok {
			if n, err := strconv.Atoi(rest); err == nil {
				set[n] = true
				continue
			}
		}
		if !strings.HasSuffix(target, "/ptmx") {
			continue
		}
		info, err := os.ReadFile(dir + "fdinfo/" + ent.Name())
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "tty-index:"); ok {
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					set[n] = true
				}
			}
		}
	}
}
