//go:build linux

package rewrite

import (
	"debug/elf"
	"io"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"github.com/kbox-go/kbox/internal/vfs"
)

// libDirs are where the parent looks for a program's DT_NEEDED libraries
// in the guest: the dynamic loader's default paths and the multiarch
// directory of the program's machine.
func libDirs(m elf.Machine) []string {
	dirs := []string{}
	if triplet, ok := map[elf.Machine]string{elf.EM_X86_64: "x86_64-linux-gnu", elf.EM_AARCH64: "aarch64-linux-gnu"}[m]; ok {
		dirs = append(dirs, "/lib/"+triplet, "/usr/lib/"+triplet)
	}
	return append(dirs, "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib")
}

// Prime stores, in the plan cache, the patch plans of the guest
// program at guest path prog, its interpreter and the libraries it needs
// (transitively, found in libDirs), computed here from the files' own
// bytes. It runs in kbox's supervisor, never in the process that hosts
// the guest: that process reads the cache but may not write it (a guest
// that controls it could plant plans that corrupt later runs), so plans
// exist only for what an unconfined kbox computed. Errors are ignored:
// a plan not cached is computed by the child, as before.
func Prime(ns *vfs.Namespace, isa ISA, prog string) (primed int) {
	c := NewCache(false)
	if c.dir == "" {
		return 0
	}
	seen := map[string]bool{}
	queue := []string{prog}
	for len(queue) > 0 && len(seen) < 64 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		f := openGuest(ns, p)
		if f == nil {
			continue
		}
		n, interp, needed := primeFile(c, isa, f)
		f.Close()
		primed += n
		if interp != "" {
			queue = append(queue, interp)
		}
		for _, lib := range needed {
			for _, dir := range libDirs(isa.Machine()) {
				if g := path.Join(dir, lib); !seen[g] {
					if f := openGuest(ns, g); f != nil {
						f.Close()
						queue = append(queue, g)
						break
					}
				}
			}
		}
	}
	return primed
}

// openGuest opens the regular file at guest path p, or returns nil.
func openGuest(ns *vfs.Namespace, p string) *os.File {
	f, err := ns.OpenFile("/", p)
	if err != nil {
		return nil
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil
	}
	return f
}

// primeFile plans every executable section of f that the cache lacks and
// returns how many it stored, the interpreter and the needed libraries.
func primeFile(c Cache, isa ISA, f *os.File) (int, string, []string) {
	ef, err := elf.NewFile(f)
	if err != nil || ef.Machine != isa.Machine() {
		return 0, "", nil
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return 0, "", nil
	}
	stored := 0
	for _, s := range ef.Sections {
		if s.Flags&elf.SHF_EXECINSTR == 0 || s.Type != elf.SHT_PROGBITS || s.Size == 0 || s.Size > 256<<20 {
			continue
		}
		key := Key(&st, s.Offset, s.Size)
		if _, _, ok := c.Load(key); ok {
			continue
		}
		code := make([]byte, s.Size)
		if _, err := f.ReadAt(code, int64(s.Offset)); err != nil && err != io.EOF {
			continue
		}
		plan, found := isa.Plan(code)
		c.Store(key, plan, found)
		stored++
	}
	interp := ""
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP && p.Filesz > 1 && p.Filesz <= unix.PathMax {
			b := make([]byte, p.Filesz)
			if _, err := f.ReadAt(b, int64(p.Off)); err == nil && b[len(b)-1] == 0 {
				interp = string(b[:len(b)-1])
			}
		}
	}
	needed, _ := ef.ImportedLibraries()
	return stored, interp, needed
}
