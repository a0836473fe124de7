package policy

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/kbox-go/kbox/internal/abi"
)

var update = flag.Bool("update", false, "rewrite docs/syscalls.md from the table")

// TestTableConsistent: every column names rows of the table, and every form
// the filter lets run on the host can be served by the in-process tiers.
func TestTableConsistent(t *testing.T) {
	if err := Check(); err != nil {
		t.Fatal(err)
	}
}

// TestAnnotateCatchesStrays: a column naming a call that is not a row, and
// a fast-path call that is not a descriptor call, are reported.
func TestAnnotateCatchesStrays(t *testing.T) {
	var trimmed []Entry
	for _, e := range buildTable() {
		if e.Name != "pread64" && e.Name != "close" {
			trimmed = append(trimmed, e)
		}
	}
	errs := strings.Join(annotate(trimmed), "\n")
	for _, want := range []string{"native: pread64 is not a row", "own rule: close is not a row", "fast path: pread64 is not a row"} {
		if !strings.Contains(errs, want) {
			t.Errorf("annotate did not report %q; it reported:\n%s", want, errs)
		}
	}
	saved := fastKinds["getppid"]
	fastKinds["getppid"] = FastFD
	defer func() { fastKinds["getppid"] = saved }()
	if errs := strings.Join(annotate(buildTable()), "\n"); !strings.Contains(errs, "getppid is not a call on the descriptor") {
		t.Errorf("getppid as a descriptor fast call was not reported: %s", errs)
	}
}

// TestFastPathCalls: the numbers the interception filter allows from the
// fast path's syscall are exactly the descriptor rows of the Fast column.
func TestFastPathCalls(t *testing.T) {
	r, err := Resolve(abi.AMD64, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, nr := range r.FastPathCalls() {
		got = append(got, r.ByNr[nr].Name)
	}
	slices.Sort(got)
	want := []string{"fstat", "lseek", "pread64", "pwrite64", "read", "readv", "write", "writev"}
	if !slices.Equal(got, want) {
		t.Errorf("fast path calls %v, want %v", got, want)
	}
}

// TestSyscallDoc: docs/syscalls.md is the table's rendering.
func TestSyscallDoc(t *testing.T) {
	const path = "../../docs/syscalls.md"
	doc := Doc()
	if *update {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != doc {
		t.Errorf("docs/syscalls.md differs from the table; run go test ./internal/policy -run TestSyscallDoc -update")
	}
}

// TestNotifyDenied: under -v the dangerous set's rows are notified (the
// engine refuses them by name), while the argument forms denied in BPF
// stay denied there.
func TestNotifyDenied(t *testing.T) {
	r, err := Resolve(abi.AMD64, Options{NotifyDenied: true})
	if err != nil {
		t.Fatal(err)
	}
	mount := abi.AMD64.MustNr("mount")
	if got := r.Expect(mount, [6]uint64{}); got != Notify {
		t.Errorf("mount under NotifyDenied: %v, want notify", got)
	}
	if _, ok := r.Denied()["mount"]; !ok {
		t.Errorf("Denied() lacks mount: %v", r.Denied())
	}
	clone := abi.AMD64.MustNr("clone")
	if got := r.Expect(clone, [6]uint64{0x10000000}); got != Deny { // CLONE_NEWUSER
		t.Errorf("clone(CLONE_NEWUSER) under NotifyDenied: %v, want deny in BPF", got)
	}
	plain, _ := Resolve(abi.AMD64, Options{})
	if got := plain.Expect(mount, [6]uint64{}); got != Deny || plain.Denied() != nil {
		t.Errorf("without NotifyDenied mount is %v (Denied %v), want deny", got, plain.Denied())
	}
}
