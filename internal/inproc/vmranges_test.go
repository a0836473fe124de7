//go:build linux

package inproc

import (
	"math/rand"
	"testing"

	"github.com/kbox-go/kbox/internal/abi"
)

// TestVMRanges checks the guest range set against a page bitmap.
func TestVMRanges(t *testing.T) {
	const pages = 256
	rng := rand.New(rand.NewSource(1))
	var v vmRanges
	var model [pages]bool
	for i := 0; i < 5000; i++ {
		a, b := uint64(rng.Intn(pages)), uint64(rng.Intn(pages))
		if a > b {
			a, b = b, a
		}
		if rng.Intn(2) == 0 {
			v.add(a*abi.PageSize, b*abi.PageSize)
			for p := a; p < b; p++ {
				model[p] = true
			}
		} else {
			v.remove(a*abi.PageSize, b*abi.PageSize)
			for p := a; p < b; p++ {
				model[p] = false
			}
		}
		for j := 1; j < len(v.r); j++ {
			if v.r[j-1].hi >= v.r[j].lo {
				t.Fatalf("step %d: spans not sorted and disjoint: %v", i, v.r)
			}
		}
		x, y := uint64(rng.Intn(pages)), uint64(rng.Intn(pages))
		if x > y {
			x, y = y, x
		}
		want := true
		var gapPages int
		for p := x; p < y; p++ {
			if !model[p] {
				want = false
				gapPages++
			}
		}
		if got := v.contains(x*abi.PageSize, y*abi.PageSize); got != want {
			t.Fatalf("step %d: contains(%d,%d) = %v, want %v", i, x, y, got, want)
		}
		var got int
		for _, g := range v.gaps(x*abi.PageSize, y*abi.PageSize) {
			got += int((g.hi - g.lo) / abi.PageSize)
		}
		if got != gapPages {
			t.Fatalf("step %d: gaps cover %d pages, want %d", i, got, gapPages)
		}
	}
}
