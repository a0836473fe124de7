// Package fdtable owns the in-process tiers' virtual descriptor table: guest
// descriptor numbers, the host descriptors behind them, close-on-exec flags,
// and the reverse map from host descriptor to guest numbers. It never closes
// a host descriptor while another guest number still refers to it.
//
// # Layout
//
// Guest numbers below FlatSize live in a flat slice indexed by the number,
// with a two-level bitmap (one bit per number, one summary bit per 64-bit
// word) that finds the lowest free number in at most FlatSize/64/64 + 2
// word reads, starting from a hint below which every number is in use (the
// kernel's next_fd). Guest numbers at or above FlatSize live in a map;
// allocating there probes the map upward from the starting number.
//
// Host descriptors below FlatSize have a flat record (holder, reference
// count) indexed by the host number; larger host numbers use a map. The
// record is the reverse map: NONE (no guest number holds the host
// descriptor; authoritative), a single holder, or MULTI (several holders
// were assigned; FindByHost scans). The reference count is the number of
// guest numbers holding the host descriptor; the host descriptor is closed
// when it drops to zero.
//
// # The single setter
//
// Every assignment of a host descriptor to a guest number goes through
// setHost, and every removal through clearHost. They are the only code that
// writes a slot's host field, and they keep the reverse record and the
// reference count exact. A write to the slot arrays that bypassed them would
// not be visible to FindByHost (a NONE record is trusted, never
// double-checked by a scan) and would not be counted; the tests demonstrate
// this with a test-only hook.
//
// # Concurrency
//
// A Table is safe for concurrent use. Lookups (Get, Cloexec, FindByHost in
// the NONE and single-holder states, Len, Limit) take a read lock;
// mutations take the write lock. Host descriptors are closed after the lock
// is released, so a slow close (a socket lingering, a network file system
// flushing) never blocks lookups. Get returns a host descriptor number, not
// a reference: a caller that uses it while another goroutine may Close the
// same guest number must serialise the two itself.
package fdtable

import (
	"math"
	"math/bits"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// FlatSize is the number of guest numbers (0..FlatSize-1) and host numbers
// held in flat, directly indexed arrays. Numbers at or above it fall back to
// maps.
const FlatSize = 1 << 16

// MaxLimit is the largest limit a Table accepts (Linux's default
// fs.nr_open is 1<<20; its hard ceiling is just below 1<<31).
const MaxLimit = 1 << 30

// DefaultLimit is the limit New uses when given zero or a negative limit:
// the usual soft RLIMIT_NOFILE.
const DefaultLimit = 1024

const (
	flatWords   = FlatSize / 64  // bitmap words for the flat range
	summaryWord = flatWords / 64 // summary words (one bit per bitmap word)
	minGrow     = 64             // smallest flat slice length once grown
	allOnes     = ^uint64(0)     // a full bitmap word
	revNone     = int32(0)       // hostRec.holder: no guest number holds it
	revMulti    = int32(-1)      // hostRec.holder: several holders; scan
	maxHostFD   = math.MaxInt32  // host descriptors are stored as int32
	cloexecFlag = unix.O_CLOEXEC // the only flag Dup3 accepts
)

// FlatSize must be a positive multiple of 64*64 for the two-level bitmap.
const (
	_ uint = -(FlatSize % 4096)
	_ uint = summaryWord - 1
)

// Kind says what kind of object a guest descriptor refers to. The table
// stores it and copies it to duplicates; it never interprets it.
type Kind uint8

// Kinds of backing object.
const (
	KindUnknown  Kind = iota
	KindFile          // regular file or device
	KindDir           // directory
	KindPath          // O_PATH descriptor
	KindPipe          // pipe or FIFO end
	KindSocket        // socket
	KindEventFD       // eventfd
	KindTimerFD       // timerfd
	KindSignalFD      // signalfd
	KindEpoll         // epoll instance
	KindInotify       // inotify instance
	KindMemFD         // memfd
	KindPidFD         // pidfd
)

var kindNames = [...]string{
	KindUnknown:  "unknown",
	KindFile:     "file",
	KindDir:      "dir",
	KindPath:     "path",
	KindPipe:     "pipe",
	KindSocket:   "socket",
	KindEventFD:  "eventfd",
	KindTimerFD:  "timerfd",
	KindSignalFD: "signalfd",
	KindEpoll:    "epoll",
	KindInotify:  "inotify",
	KindMemFD:    "memfd",
	KindPidFD:    "pidfd",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Entry is what a guest descriptor number refers to.
type Entry struct {
	HostFD  int    // the host descriptor kbox owns
	Cloexec bool   // FD_CLOEXEC on this guest number
	Kind    Kind   // what the backing object is
	Path    string // the guest path it was opened by ("" if none)
}

// slot is the stored form of an Entry: 24 bytes on 64-bit platforms. Whether
// a flat slot is in use is recorded in the bitmap, not here.
type slot struct {
	host    int32
	cloexec bool
	kind    Kind
	path    string
}

func (s *slot) entry() Entry {
	return Entry{HostFD: int(s.host), Cloexec: s.cloexec, Kind: s.kind, Path: s.path}
}

// hostRec is the reverse record of one host descriptor: 8 bytes.
// holder is revNone, revMulti, or (guest number + 1). refs is the number of
// guest numbers holding the host descriptor. refs == 0 exactly when holder
// is revNone; a single holder implies refs == 1; revMulti implies refs >= 1
// (it is collapsed back to a single holder lazily, by FindByHost).
type hostRec struct {
	holder int32
	refs   int32
}

// Table is a virtual descriptor table. The zero value is not usable; call
// New.
type Table struct {
	mu sync.RWMutex

	limit int
	n     int // open guest numbers
	next  int // no guest number below next is free (Linux's next_fd)
	close func(int) error

	// Flat guest range: slots[g] is valid when bit g of used is set.
	// full[i] bit j is set when used[i*64+j] == allOnes.
	used  [flatWords]uint64
	full  [summaryWord]uint64
	slots []slot
	over  map[int]slot // guest numbers >= FlatSize

	// Reverse map and reference counts, by host descriptor.
	hosts     []hostRec
	hostsOver map[int]hostRec // host descriptors >= FlatSize

	// observe, when set, hears every assignment (host >= 0) and release
	// (host == -1) of a guest number, from the single setter.
	observe func(guest, host int)
}

// SetObserver installs fn to be called, under the table's lock, whenever a
// guest number is given a host descriptor or released (host -1). The
// rewrite tier mirrors the flat range into a plain array its assembly
// fast path reads. fn must not call back into the table.
func (t *Table) SetObserver(fn func(guest, host int)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.observe = fn
}

// New returns an empty table whose guest numbers are below limit (like
// RLIMIT_NOFILE; DefaultLimit if limit <= 0, at most MaxLimit) and that
// closes host descriptors with closer (unix.Close if nil).
//
// The table owns every host descriptor handed to Open from then on.
func New(limit int, closer func(int) error) *Table {
	if limit <= 0 {
		limit = DefaultLimit
	}
	if limit > MaxLimit {
		limit = MaxLimit
	}
	if closer == nil {
		closer = unix.Close
	}
	return &Table{
		limit:     limit,
		close:     closer,
		over:      map[int]slot{},
		hostsOver: map[int]hostRec{},
	}
}

// Limit returns the current limit: guest numbers are below it.
func (t *Table) Limit() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.limit
}

// SetLimit changes the limit (EINVAL if negative or above MaxLimit).
// Guest numbers already open at or above the new limit stay open, as after
// setrlimit(RLIMIT_NOFILE); new allocations respect it.
func (t *Table) SetLimit(limit int) error {
	if limit < 0 || limit > MaxLimit {
		return unix.EINVAL
	}
	t.mu.Lock()
	t.limit = limit
	t.mu.Unlock()
	return nil
}

// Len returns the number of open guest numbers.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.n
}

// Get returns what guest number fd refers to.
func (t *Table) Get(fd int) (Entry, bool) {
	t.mu.RLock()
	s, ok := t.slotOf(fd)
	var e Entry
	if ok {
		e = s.entry()
	}
	t.mu.RUnlock()
	return e, ok
}

// Cloexec reports guest number fd's close-on-exec flag (EBADF if not open).
func (t *Table) Cloexec(fd int) (bool, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s, ok := t.slotOf(fd)
	if !ok {
		return false, unix.EBADF
	}
	return s.cloexec, nil
}

// SetCloexec sets or clears guest number fd's close-on-exec flag (EBADF if
// not open). The flag belongs to the guest number, not the backing object:
// duplicates keep their own.
func (t *Table) SetCloexec(fd int, on bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fd >= 0 && fd < FlatSize {
		if !t.isUsed(fd) {
			return unix.EBADF
		}
		t.slots[fd].cloexec = on
		return nil
	}
	s, ok := t.over[fd]
	if !ok {
		return unix.EBADF
	}
	s.cloexec = on
	t.over[fd] = s
	return nil
}

// Open installs hostFD at the lowest free guest number and returns it.
// On success the table owns hostFD and closes it when the last guest
// number referring to it goes. On failure (EMFILE at the limit, EBADF for
// a negative hostFD) the caller still owns hostFD.
//
// Opening a host descriptor the table already holds adds a holder, as Dup
// would.
func (t *Table) Open(hostFD int, kind Kind, path string, cloexec bool) (int, error) {
	if hostFD < 0 || hostFD > maxHostFD {
		return -1, unix.EBADF
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.lowestFree(0)
	if g < 0 {
		return -1, unix.EMFILE
	}
	t.setHost(g, slot{host: int32(hostFD), cloexec: cloexec, kind: kind, path: path})
	return g, nil
}

// Close releases guest number fd. It closes the host descriptor behind it
// only when no other guest number refers to it, and reports whether it did.
// err is EBADF if fd was not open, or the closer's error; the guest number
// is released either way, as with close(2).
func (t *Table) Close(fd int) (hostClosed bool, err error) {
	t.mu.Lock()
	if _, ok := t.slotOf(fd); !ok {
		t.mu.Unlock()
		return false, unix.EBADF
	}
	host, last := t.clearHost(fd)
	t.mu.Unlock()
	if !last {
		return false, nil
	}
	return true, t.close(host)
}

// Dup duplicates guest number fd to the lowest free number, with
// close-on-exec clear (EBADF, EMFILE).
func (t *Table) Dup(fd int) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.slotOf(fd)
	if !ok {
		return -1, unix.EBADF
	}
	g := t.lowestFree(0)
	if g < 0 {
		return -1, unix.EMFILE
	}
	s.cloexec = false
	t.setHost(g, s)
	return g, nil
}

// DupFrom duplicates guest number fd to the lowest free number >= min, with
// the given close-on-exec flag: fcntl F_DUPFD and F_DUPFD_CLOEXEC. Errors
// are fcntl's: EBADF for fd, EINVAL for min outside [0, limit), EMFILE when
// no number in [min, limit) is free.
func (t *Table) DupFrom(fd, min int, cloexec bool) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.slotOf(fd)
	if !ok {
		return -1, unix.EBADF
	}
	if min < 0 || min >= t.limit {
		return -1, unix.EINVAL
	}
	g := t.lowestFree(min)
	if g < 0 {
		return -1, unix.EMFILE
	}
	s.cloexec = cloexec
	t.setHost(g, s)
	return g, nil
}

// Dup2 makes guest number newfd refer to what oldfd refers to, with
// close-on-exec clear. If newfd was open it is replaced atomically: no other
// caller sees it free in between. The host descriptor it referred to is
// closed if newfd was its last holder (and its close error is ignored, as
// dup2(2) does). Dup2(x, x) returns x if x is open. Errors: EBADF for an
// unopened oldfd or a newfd outside [0, limit).
func (t *Table) Dup2(oldfd, newfd int) (int, error) {
	if oldfd == newfd {
		t.mu.RLock()
		_, ok := t.slotOf(oldfd)
		t.mu.RUnlock()
		if !ok {
			return -1, unix.EBADF
		}
		return newfd, nil
	}
	return t.dup3(oldfd, newfd, false)
}

// Dup3 is Dup2 with flags: EINVAL if oldfd == newfd or flags has a bit
// other than O_CLOEXEC; O_CLOEXEC sets close-on-exec on newfd.
func (t *Table) Dup3(oldfd, newfd, flags int) (int, error) {
	if flags&^cloexecFlag != 0 || oldfd == newfd {
		return -1, unix.EINVAL
	}
	return t.dup3(oldfd, newfd, flags&cloexecFlag != 0)
}

func (t *Table) dup3(oldfd, newfd int, cloexec bool) (int, error) {
	t.mu.Lock()
	if newfd < 0 || newfd >= t.limit {
		t.mu.Unlock()
		return -1, unix.EBADF
	}
	s, ok := t.slotOf(oldfd)
	if !ok {
		t.mu.Unlock()
		return -1, unix.EBADF
	}
	s.cloexec = cloexec
	var (
		replaced int
		last     bool
	)
	if _, open := t.slotOf(newfd); open {
		// Clearing first cannot drop s.host to zero references: oldfd still
		// holds it, even when newfd held the same host descriptor.
		replaced, last = t.clearHost(newfd)
	}
	t.setHost(newfd, s)
	t.mu.Unlock()
	if last {
		_ = t.close(replaced)
	}
	return newfd, nil
}

// Exec applies close-on-exec: every guest number with the flag set is
// released, and host descriptors left with no holder are closed (close
// errors are ignored, as execve does). It returns how many host descriptors
// it closed.
func (t *Table) Exec() int {
	return t.releaseWhere(func(s *slot) bool { return s.cloexec })
}

// CloseAll releases every guest number and closes every host descriptor
// the table holds, once each. It returns how many host descriptors it
// closed.
func (t *Table) CloseAll() int {
	return t.releaseWhere(func(*slot) bool { return true })
}

func (t *Table) releaseWhere(pred func(*slot) bool) int {
	var toClose []int
	t.mu.Lock()
	for w := range t.used {
		for b := t.used[w]; b != 0; b &= b - 1 {
			g := w<<6 | bits.TrailingZeros64(b)
			if !pred(&t.slots[g]) {
				continue
			}
			if host, last := t.clearHost(g); last {
				toClose = append(toClose, host)
			}
		}
	}
	for g, s := range t.over {
		if !pred(&s) {
			continue
		}
		if host, last := t.clearHost(g); last {
			toClose = append(toClose, host)
		}
	}
	t.mu.Unlock()
	for _, h := range toClose {
		_ = t.close(h)
	}
	return len(toClose)
}

// FindByHost returns a guest number holding host descriptor hostFD; any
// holder when there are several. A host descriptor with no holder is an
// O(1) miss; one with a single holder an O(1) hit; one that has had several
// holders since it last had one is found by a scan of the open guest
// numbers, which collapses the record back to a single holder when only
// one is left.
func (t *Table) FindByHost(hostFD int) (int, bool) {
	t.mu.RLock()
	r := t.hostRecOf(hostFD)
	t.mu.RUnlock()
	switch {
	case r.holder == revNone:
		return -1, false
	case r.holder > 0:
		return int(r.holder - 1), true
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	r = t.hostRecOf(hostFD)
	switch {
	case r.holder == revNone:
		return -1, false
	case r.holder > 0:
		return int(r.holder - 1), true
	}
	g := t.scanHolder(hostFD)
	if g < 0 {
		// Unreachable while the invariants hold: refs >= 1 in MULTI.
		return -1, false
	}
	if r.refs == 1 {
		r.holder = int32(g) + 1
		t.putHostRec(hostFD, r)
	}
	return g, true
}

// scanHolder returns the lowest guest number holding host, or -1.
func (t *Table) scanHolder(host int) int {
	h := int32(host)
	for w := range t.used {
		for b := t.used[w]; b != 0; b &= b - 1 {
			g := w<<6 | bits.TrailingZeros64(b)
			if t.slots[g].host == h {
				return g
			}
		}
	}
	best := -1
	for g, s := range t.over {
		if s.host == h && (best < 0 || g < best) {
			best = g
		}
	}
	return best
}

// setHost is the single setter: it assigns s (host descriptor, flags, kind,
// path) to the free guest number g, marks g used, and counts g as a holder
// of s.host in the reverse map. Every write of a host descriptor into a slot
// goes through it. Caller holds the write lock; g is free and below the
// limit.
func (t *Table) setHost(g int, s slot) {
	if g < FlatSize {
		if g >= len(t.slots) {
			t.slots = growTo(t.slots, g)
		}
		t.slots[g] = s
		w := g >> 6
		t.used[w] |= 1 << (g & 63)
		if t.used[w] == allOnes {
			t.full[w>>6] |= 1 << (w & 63)
		}
	} else {
		t.over[g] = s
	}
	t.n++
	if g == t.next {
		t.next = g + 1
	}

	host := int(s.host)
	r := t.hostRecOf(host)
	if r.refs == 0 {
		r.holder = int32(g) + 1
	} else {
		r.holder = revMulti
	}
	r.refs++
	t.putHostRec(host, r)
	if t.observe != nil {
		t.observe(g, host)
	}
}

// clearHost releases the open guest number g and drops its holding of its
// host descriptor. It returns the host descriptor and whether g was its
// last holder (the caller closes it, after unlocking). Caller holds the
// write lock.
func (t *Table) clearHost(g int) (host int, last bool) {
	var s slot
	if g < FlatSize {
		s = t.slots[g]
		t.slots[g] = slot{} // drop the path for the collector
		w := g >> 6
		t.used[w] &^= 1 << (g & 63)
		t.full[w>>6] &^= 1 << (w & 63)
	} else {
		s = t.over[g]
		delete(t.over, g)
	}
	t.n--
	if g < t.next {
		t.next = g
	}

	host = int(s.host)
	r := t.hostRecOf(host)
	r.refs--
	if r.refs == 0 {
		r.holder = revNone
	}
	// A single holder is g itself (refs was 1, now 0); MULTI stays MULTI
	// until FindByHost scans and collapses it.
	t.putHostRec(host, r)
	if t.observe != nil {
		t.observe(g, -1)
	}
	return host, r.refs == 0
}

// slotOf returns guest number fd's slot. Caller holds a lock.
func (t *Table) slotOf(fd int) (slot, bool) {
	if uint(fd) < FlatSize {
		if t.isUsed(fd) {
			return t.slots[fd], true
		}
		return slot{}, false
	}
	s, ok := t.over[fd]
	return s, ok
}

func (t *Table) isUsed(g int) bool {
	return t.used[g>>6]&(1<<(g&63)) != 0
}

func (t *Table) hostRecOf(host int) hostRec {
	if uint(host) < uint(len(t.hosts)) {
		return t.hosts[host]
	}
	if host < FlatSize {
		return hostRec{}
	}
	return t.hostsOver[host]
}

func (t *Table) putHostRec(host int, r hostRec) {
	if host < FlatSize {
		if host >= len(t.hosts) {
			t.hosts = growTo(t.hosts, host)
		}
		t.hosts[host] = r
		return
	}
	if r.refs == 0 {
		delete(t.hostsOver, host)
		return
	}
	t.hostsOver[host] = r
}

// growTo returns s extended to the next power of two above i (at least
// minGrow, at most FlatSize), new elements zero.
func growTo[T any](s []T, i int) []T {
	n := minGrow
	for n <= i {
		n <<= 1
	}
	if n > FlatSize {
		n = FlatSize
	}
	ns := make([]T, n)
	copy(ns, s)
	return ns
}

// lowestFree returns the lowest free guest number in [min, limit), or -1.
// Caller holds the write lock.
func (t *Table) lowestFree(min int) int {
	if min < t.next {
		min = t.next
	}
	if min < FlatSize {
		end := t.limit
		if end > FlatSize {
			end = FlatSize
		}
		if min < end {
			if g := t.lowestFreeFlat(min); g >= 0 && g < end {
				return g
			}
		}
		min = FlatSize
	}
	// Beyond the flat range: probe the map upward.
	for g := min; g < t.limit; g++ {
		if _, ok := t.over[g]; !ok {
			return g
		}
	}
	return -1
}

// lowestFreeFlat returns the lowest clear bit >= from in the flat bitmap,
// or -1 if the flat range is full from there on. It reads at most one
// bitmap word, then summary words (FlatSize/4096 of them), then one more
// bitmap word.
func (t *Table) lowestFreeFlat(from int) int {
	w := from >> 6
	if free := ^t.used[w] & (allOnes << (from & 63)); free != 0 {
		return w<<6 | bits.TrailingZeros64(free)
	}
	w++
	for s := w >> 6; s < summaryWord; s++ {
		notFull := ^t.full[s]
		if s == w>>6 {
			notFull &= allOnes << (w & 63)
		}
		if notFull != 0 {
			w = s<<6 | bits.TrailingZeros64(notFull)
			return w<<6 | bits.TrailingZeros64(^t.used[w])
		}
	}
	return -1
}
