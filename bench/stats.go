package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// summary is the median, minimum and maximum of a set of samples.
type summary struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// summarize returns the summary of xs; all zero (N 0) when xs is empty, so
// that it still encodes as JSON.
func summarize(xs []float64) summary {
	if len(xs) == 0 {
		return summary{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return summary{Median: med, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// median returns the median of xs (0 when empty).
func median(xs []float64) float64 { return summarize(xs).Median }

// fmtNum prints v with about three significant digits.
func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v):
		return "-"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// fmtRatio prints v/base as "×N.NN", or "" when either is unusable.
func fmtRatio(v, base float64) string {
	if math.IsNaN(v) || math.IsNaN(base) || base <= 0 {
		return ""
	}
	r := v / base
	if r >= 100 {
		return fmt.Sprintf("×%.0f", r)
	}
	return fmt.Sprintf("×%.2f", r)
}

// fmtSummary prints "median [min–max]", or the median alone for one
// sample, with "(n=K)" appended when K differs from the runs asked for.
func fmtSummary(s summary, want int) string {
	if s.N == 0 {
		return "-"
	}
	out := fmtNum(s.Median)
	if s.N > 1 {
		out += " [" + fmtNum(s.Min) + "–" + fmtNum(s.Max) + "]"
	}
	if s.N != want {
		out += fmt.Sprintf(" (n=%d)", s.N)
	}
	return out
}

// fmtCell prints a table cell: the summary and, unless this is the
// baseline column, the ratio of medians to the baseline.
func fmtCell(s summary, want int, base summary, isBase bool) string {
	cell := fmtSummary(s, want)
	if !isBase && s.N > 0 {
		if r := fmtRatio(s.Median, base.Median); r != "" {
			cell += " " + r
		}
	}
	return cell
}

// table renders rows of cells in aligned columns (widths in runes, since
// cells contain µ, – and ×).
func table(rows [][]string) string {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			if i > 0 {
				line.WriteString("  ")
			}
			line.WriteString(c)
			if i < len(r)-1 {
				line.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	return b.String()
}
