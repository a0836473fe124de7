package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzParts are the path pieces fuzzed members are made of: the names
// that matter to confinement, whiteouts and links.
var fuzzParts = []string{"a", "b", "..", ".", "", "/", "up", ".wh.a", ".wh.b", ".wh..wh..opq", ".wh.up", "etc", "..."}

// fuzzEntries decodes data into tar members, four bytes each: type, two
// name pieces, one link piece pair.
func fuzzEntries(data []byte) []ent {
	types := []byte{tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeFifo, tar.TypeBlock}
	var out []ent
	for len(data) >= 4 && len(out) < 64 {
		p := func(b byte) string { return fuzzParts[int(b)%len(fuzzParts)] }
		e := ent{typ: types[int(data[0])%len(types)], mode: int64(data[0]) << 4 & 0o7777}
		e.name = p(data[1]) + "/" + p(data[2]>>4)
		if data[0]&0x80 != 0 {
			e.name = p(data[1])
		}
		e.link = p(data[3]) + "/" + p(data[3]>>4)
		if data[2]&1 != 0 {
			e.link = "/" + e.link
		}
		if e.typ == tar.TypeReg {
			e.body = "x"
		}
		out = append(out, e)
		data = data[4:]
	}
	return out
}

// FuzzApply: layers of fuzzed members never write outside the root,
// never panic, and leave the root a directory.
func FuzzApply(f *testing.F) {
	f.Add([]byte{2, 6, 0, 2, 0, 6, 0x10, 0})          // up -> .., then up/a
	f.Add([]byte{0x82, 6, 0, 0x22, 3, 0, 0x20, 0x22}) // a hard link through up
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0xa0, 0, 0, 1, 0x90, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		ents := fuzzEntries(data)
		half := len(ents) / 2
		outside := t.TempDir()
		if err := os.WriteFile(filepath.Join(outside, "sentinel"), []byte("s"), 0o644); err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(outside, "r1", "r2", "root")
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		x, err := newExtractor(root, func(string, ...any) {})
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		for _, layer := range [][]ent{ents[:half], ents[half:]} {
			b, ok := tryTar(layer)
			if !ok {
				t.Skip("archive/tar cannot write these members")
			}
			if err := x.apply(bytes.NewReader(b)); err != nil {
				break
			}
		}
		var stray []string
		filepath.Walk(outside, func(p string, fi os.FileInfo, err error) error {
			rel, _ := filepath.Rel(outside, p)
			switch {
			case rel == ".", rel == "r1", rel == "r1/r2", rel == "r1/r2/root", rel == "sentinel", strings.HasPrefix(rel, "r1/r2/root/"):
			default:
				stray = append(stray, rel)
			}
			return nil
		})
		if len(stray) > 0 {
			t.Fatalf("members %+v wrote outside the root: %v", ents, stray)
		}
		if b, err := os.ReadFile(filepath.Join(outside, "sentinel")); err != nil || string(b) != "s" {
			t.Fatalf("members %+v changed a file outside the root", ents)
		}
		if fi, err := os.Lstat(root); err != nil || !fi.IsDir() {
			t.Fatalf("members %+v replaced the root: %v", ents, err)
		}
	})
}

// tryTar is mkTar for members archive/tar may refuse to write.
func tryTar(ents []ent) ([]byte, bool) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if tw.WriteHeader(h) != nil {
			return nil, false
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			return nil, false
		}
	}
	return buf.Bytes(), tw.Close() == nil
}
