// Command gen generates the syscall number tables of package abi
// (zsysnum_amd64_table.go and zsysnum_arm64_table.go) from the
// golang.org/x/sys/unix zsysnum_linux_<arch>.go files of the x/sys version
// required by the main module.
//
// Run it through "go generate" in internal/abi; it writes into the current
// directory. x/sys constant names are lower-cased to obtain the kernel
// spelling; the few places where x/sys deviates from the kernel's syscall
// table are handled by the renames and skips below.
package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

type archSpec struct {
	name string // GOARCH, also the table prefix
	// renames maps lower-cased x/sys names to the kernel's name.
	renames map[string]string
	// skips lists lower-cased x/sys names that are not syscalls.
	skips map[string]bool
	// anchors are known kernel (name, number) pairs checked after
	// generation, to catch an x/sys renaming we did not anticipate.
	anchors map[string]int
}

var arches = []archSpec{
	{
		name:    "amd64",
		renames: map[string]string{},
		skips:   map[string]bool{},
		anchors: map[string]int{
			"read": 0, "write": 1, "open": 2, "stat": 4, "fstat": 5,
			"pread64": 17, "execve": 59, "newfstatat": 262,
			"clone3": 435, "openat2": 437, "fchmodat2": 452,
		},
	},
	{
		name: "arm64",
		// Older x/sys releases spelled 79 as SYS_FSTATAT; the kernel
		// (include/uapi/asm-generic/unistd.h, 64-bit) calls it newfstatat.
		renames: map[string]string{"fstatat": "newfstatat"},
		// __NR_arch_specific_syscall (244) is the base of the reserved
		// per-arch range in asm-generic/unistd.h, not a syscall.
		skips: map[string]bool{"arch_specific_syscall": true},
		anchors: map[string]int{
			"openat": 56, "read": 63, "newfstatat": 79, "fstat": 80,
			"clone": 220, "execve": 221, "clone3": 435, "openat2": 437,
		},
	},
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("abi/gen: ")

	dir, version := xsysDir()
	for _, a := range arches {
		src := filepath.Join(dir, "unix", "zsysnum_linux_"+a.name+".go")
		table, err := parse(src, a)
		if err != nil {
			log.Fatal(err)
		}
		out, err := render(a.name, version, table)
		if err != nil {
			log.Fatal(err)
		}
		dst := "zsysnum_" + a.name + "_table.go"
		if err := os.WriteFile(dst, out, 0o644); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s (%d syscalls) from %s", dst, len(table), src)
	}
}

// xsysDir returns the module cache directory and version of golang.org/x/sys
// as selected by the main module's go.mod.
func xsysDir() (dir, version string) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}\t{{.Version}}", "golang.org/x/sys")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		log.Fatalf("go list -m golang.org/x/sys: %v", err)
	}
	dir, version, _ = strings.Cut(strings.TrimSpace(string(out)), "\t")
	if dir == "" {
		log.Fatal("golang.org/x/sys is not in the module cache; run: go mod download golang.org/x/sys")
	}
	return dir, version
}

// parse extracts SYS_* = <int literal> constants from an x/sys zsysnum file.
func parse(path string, a archSpec) (map[string]int, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		return nil, err
	}
	table := map[string]int{}
	byNr := map[int]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, id := range vs.Names {
				if !strings.HasPrefix(id.Name, "SYS_") || i >= len(vs.Values) {
					continue
				}
				name := strings.ToLower(strings.TrimPrefix(id.Name, "SYS_"))
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.INT {
					// An alias of another constant (SYS_X = SYS_Y): the
					// kernel name is the one with the literal.
					log.Printf("%s: skipping non-literal %s", a.name, id.Name)
					continue
				}
				if a.skips[name] {
					log.Printf("%s: skipping %s (not a syscall)", a.name, id.Name)
					continue
				}
				if k, ok := a.renames[name]; ok {
					log.Printf("%s: renaming %s to kernel name %q", a.name, id.Name, k)
					name = k
				}
				nr, err := strconv.ParseInt(lit.Value, 0, 64)
				if err != nil {
					return nil, fmt.Errorf("%s: %s: %v", fset.Position(lit.Pos()), id.Name, err)
				}
				if prev, ok := byNr[int(nr)]; ok {
					return nil, fmt.Errorf("%s: %s: number %d already used by %q", fset.Position(lit.Pos()), id.Name, nr, prev)
				}
				if _, ok := table[name]; ok {
					return nil, fmt.Errorf("%s: %s: duplicate name %q", fset.Position(lit.Pos()), id.Name, name)
				}
				table[name] = int(nr)
				byNr[int(nr)] = name
			}
		}
	}
	if len(table) == 0 {
		return nil, fmt.Errorf("%s: no SYS_* constants found", path)
	}
	for name, want := range a.anchors {
		if got, ok := table[name]; !ok || got != want {
			return nil, fmt.Errorf("%s: anchor %s: got %d (present=%v), want %d; x/sys naming changed?", a.name, name, got, ok, want)
		}
	}
	return table, nil
}

func render(arch, version string, table map[string]int) ([]byte, error) {
	names := make([]string, 0, len(table))
	for n := range table {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return table[names[i]] < table[names[j]] })

	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by \"go run ./internal/gen\" from golang.org/x/sys@%s unix/zsysnum_linux_%s.go. DO NOT EDIT.\n\n", version, arch)
	fmt.Fprintf(&b, "package abi\n\n")
	fmt.Fprintf(&b, "// %sSyscalls maps kernel syscall names to numbers on linux/%s (%d entries).\n", arch, arch, len(table))
	fmt.Fprintf(&b, "var %sSyscalls = map[string]int{\n", arch)
	for _, n := range names {
		fmt.Fprintf(&b, "\t%q: %d,\n", n, table[n])
	}
	fmt.Fprintf(&b, "}\n")
	return format.Source(b.Bytes())
}
