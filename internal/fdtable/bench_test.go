package fdtable

import (
	"fmt"
	"testing"
)

func nopClose(int) error { return nil }

// benchSizes are the numbers of descriptors open before the timed loop:
// if an operation is O(1) its cost does not grow between them.
var benchSizes = []int{1, 30000}

// benchTable returns a table with n guest numbers 0..n-1 open on host
// descriptors 1000..1000+n-1.
func benchTable(b *testing.B, n int) *Table {
	b.Helper()
	tb := New(1<<20, nopClose)
	for i := range n {
		if _, err := tb.Open(1000+i, KindFile, "/bench", false); err != nil {
			b.Fatal(err)
		}
	}
	return tb
}

// BenchmarkLookup is Get on the open numbers in turn (all of them: with
// 30000 open, the slots are 720 KB, so this includes cache misses).
func BenchmarkLookup(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("open=%d", n), func(b *testing.B) {
			tb := benchTable(b, n)
			b.ResetTimer()
			g := 0
			for range b.N {
				if _, ok := tb.Get(g); !ok {
					b.Fatal("miss")
				}
				if g++; g == n {
					g = 0
				}
			}
		})
	}
}

// BenchmarkOpenClose opens a descriptor at the lowest free number (n, past
// every open one) and closes it, closing the host descriptor.
func BenchmarkOpenClose(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("open=%d", n), func(b *testing.B) {
			tb := benchTable(b, n)
			b.ResetTimer()
			for range b.N {
				g, err := tb.Open(999, KindFile, "/bench", false)
				if err != nil || g != n {
					b.Fatal(g, err)
				}
				if closed, _ := tb.Close(g); !closed {
					b.Fatal("not closed")
				}
			}
		})
	}
}

// BenchmarkFindByHost looks up host descriptors with one holder each (the
// O(1) path), and, for comparison, ones with two holders (the MULTI
// fallback: a scan of the open numbers up to the lowest holder).
func BenchmarkFindByHost(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("open=%d", n), func(b *testing.B) {
			tb := benchTable(b, n)
			b.ResetTimer()
			i := 0
			for range b.N {
				if _, ok := tb.FindByHost(1000 + i); !ok {
					b.Fatal("miss")
				}
				if i++; i == n {
					i = 0
				}
			}
		})
	}
	// MULTI: a second holder at number n; the first holder is number 0
	// (the scan stops at once) or number n-1 (the scan reads every open
	// number: the worst case).
	for _, n := range benchSizes {
		for _, first := range []int{0, n - 1} {
			name := fmt.Sprintf("open=%d/multi-first=%d", n, first)
			b.Run(name, func(b *testing.B) {
				tb := benchTable(b, n)
				if _, err := tb.Dup(first); err != nil {
					b.Fatal(err)
				}
				host := 1000 + first
				b.ResetTimer()
				for range b.N {
					if g, ok := tb.FindByHost(host); !ok || g != first {
						b.Fatal(g, ok)
					}
				}
			})
			if n == 1 {
				break
			}
		}
	}
}
