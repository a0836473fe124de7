//go:build cgo && linux && (amd64 || arm64)

package inproc

import (
	"testing"
)

func TestOriginMap(t *testing.T) {
	var m originMap
	defer m.reset()
	if m.add([]uint64{30, 10}) != nil || m.add([]uint64{20}) != nil {
		t.Fatal("add failed")
	}
	for a, want := range map[uint64]bool{10: true, 20: true, 30: true, 15: false, 0: false, 31: false} {
		if m.contains(a) != want {
			t.Errorf("contains(%d) = %v", a, !want)
		}
	}
	// Sealed: a write to the map faults.
	defer setPanicOnFault()()
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the origin map is writable outside add")
			}
		}()
		m.mem[0] = 1
	}()
	many := make([]uint64, 1000)
	for i := range many {
		many[i] = uint64(1000 + 2*i)
	}
	if err := m.add(many); err != nil {
		t.Fatal(err)
	}
	if !m.contains(2998) || m.contains(2999) || !m.contains(20) {
		t.Error("lookups after growing the map")
	}
}
