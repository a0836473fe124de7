//go:build linux

package inproc

import (
	"sort"

	"github.com/kbox-go/kbox/internal/abi"
)

// The memory rules' bookkeeping, pure Go (no cgo): it builds and is
// tested in every build.

// vmRanges is a sorted set of disjoint half-open page ranges.
type vmRanges struct{ r []span }

type span struct{ lo, hi uint64 }

func (v *vmRanges) add(lo, hi uint64) {
	if hi <= lo {
		return
	}
	v.remove(lo, hi)
	i := sort.Search(len(v.r), func(i int) bool { return v.r[i].lo >= lo })
	v.r = append(v.r, span{})
	copy(v.r[i+1:], v.r[i:])
	v.r[i] = span{lo, hi}
	// Merge with neighbours.
	out := v.r[:0]
	for _, s := range v.r {
		if n := len(out); n > 0 && out[n-1].hi >= s.lo {
			out[n-1].hi = max(out[n-1].hi, s.hi)
			continue
		}
		out = append(out, s)
	}
	v.r = out
}

func (v *vmRanges) remove(lo, hi uint64) {
	if hi <= lo {
		return
	}
	var out []span
	for _, s := range v.r {
		if s.hi <= lo || s.lo >= hi {
			out = append(out, s)
			continue
		}
		if s.lo < lo {
			out = append(out, span{s.lo, lo})
		}
		if s.hi > hi {
			out = append(out, span{hi, s.hi})
		}
	}
	v.r = out
}

// gaps returns the parts of [lo, hi) not in the set.
func (v *vmRanges) gaps(lo, hi uint64) []span {
	var out []span
	cur := lo
	for _, s := range v.r {
		if s.hi <= cur {
			continue
		}
		if s.lo >= hi {
			break
		}
		if s.lo > cur {
			out = append(out, span{cur, min(s.lo, hi)})
		}
		cur = max(cur, s.hi)
		if cur >= hi {
			break
		}
	}
	if cur < hi {
		out = append(out, span{cur, hi})
	}
	return out
}

func (v *vmRanges) contains(lo, hi uint64) bool { return len(v.gaps(lo, hi)) == 0 }

func pageUp(v uint64) uint64 { return (v + abi.PageSize - 1) &^ (abi.PageSize - 1) }
