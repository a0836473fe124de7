package loader

import (
	"bytes"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add(minimalELF())
	f.Add(dynELF())
	f.Add(minimalELF()[:64])
	f.Add(minimalELF()[:200])
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParse(t, b)
		// Also splice the input over the program header table of a valid
		// file, so that mutations reach the segment checks quickly.
		m := minimalELF()
		copy(m[64:64+5*56], b)
		checkParse(t, m)
	})
}

// checkParse parses b and, if it is accepted, checks the Image and its
// layouts.
func checkParse(t *testing.T, b []byte) {
	t.Helper()
	for _, arch := range []string{"amd64", "arm64"} {
		im, err := Parse(bytes.NewReader(b), int64(len(b)), arch)
		if err != nil {
			continue
		}
		for i := 1; i < len(im.Phdrs); i++ {
			p, s := im.Phdrs[i-1], im.Phdrs[i]
			if s.Vaddr < p.Vaddr || s.Memsz != 0 && p.Memsz != 0 && s.Vaddr < p.Vaddr+p.Memsz {
				t.Fatalf("segments %d and %d out of order or overlapping: %+v %+v", i-1, i, p, s)
			}
		}
		for _, s := range im.Phdrs {
			if s.Filesz > s.Memsz || s.Filesz > 0 && s.Off+s.Filesz > uint64(len(b)) {
				t.Fatalf("bad segment accepted: %+v", s)
			}
		}
		for _, base := range []uint64{0, 0x10000} {
			l, err := im.Layout(base)
			if err != nil {
				continue
			}
			if err := layoutError(im, l, PageSize); err != nil {
				t.Fatalf("base %#x: %v\n%+v", base, err, l)
			}
		}
	}
}
