package forkscan

import (
	"debug/elf"
	"runtime"

	"github.com/kbox-go/kbox/internal/abi"
)

// archSpec is what the scan knows about one architecture: how its code
// names a syscall, which numbers create processes, and where its dynamic
// loaders look for libraries. One scan serves both: the code scanner is
// chosen by the file's machine, the library layout by the host's.
type archSpec struct {
	name    string // GOARCH, and loader.Parse's arch
	machine elf.Machine
	display string // for messages: "x86-64", "AArch64"

	// Fork-family and exec syscall numbers, by name.
	forkNrs map[uint32]string

	// cSonames are the C library's objects (see Checker.Program).
	cSonames []string
	// glibcDirs are the trusted directories of glibc's loader on the
	// distributions kbox meets (Debian's multiarch ones, and lib64),
	// searched all of them.
	glibcDirs []string
	// muslPathFile is musl's search path file.
	muslPathFile string
	// hwcapSubdirs are the subdirectories glibc's loader (2.33 and
	// later: glibc-hwcaps; before 2.37: the legacy platform and tls
	// ones) looks in before each search directory, by their first
	// component, in the order they are looked for.
	hwcapFirst   []string
	hwcapSubdirs map[string][]string
	// libValues and platformValues are every value glibc gives $LIB and
	// $PLATFORM here.
	libValues, platformValues []string
	// ldCacheFlag is the architecture bits of /etc/ld.so.cache entries
	// (FLAG_X8664_LIB64, FLAG_AARCH64_LIB64).
	ldCacheFlag uint32
}

// forkNumbers maps the fork-family and exec syscalls of a to their names.
func forkNumbers(a *abi.Arch, names ...string) map[uint32]string {
	m := map[uint32]string{}
	for _, n := range names {
		m[uint32(a.MustNr(n))] = n
	}
	return m
}

var amd64Spec = &archSpec{
	name:    "amd64",
	machine: elf.EM_X86_64,
	display: "x86-64",
	forkNrs: forkNumbers(abi.AMD64, "clone", "fork", "vfork", "clone3", "execve", "execveat"),
	cSonames: []string{
		"libc.so.6", "ld-linux-x86-64.so.2", "libpthread.so.0", "librt.so.1",
		"libdl.so.2", "libutil.so.1", "libanl.so.1",
	},
	glibcDirs:    []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"},
	muslPathFile: "/etc/ld-musl-x86_64.path",
	hwcapFirst:   []string{"glibc-hwcaps", "tls", "haswell", "xeon_phi", "x86_64"},
	hwcapSubdirs: map[string][]string{
		"glibc-hwcaps": {"x86-64-v4", "x86-64-v3", "x86-64-v2"},
		"tls":          {"", "x86_64", "haswell"},
		"haswell":      {"", "x86_64"},
		"xeon_phi":     {"", "x86_64"},
		"x86_64":       {""},
	},
	libValues:      []string{"lib", "lib64", "lib/x86_64-linux-gnu"},
	platformValues: []string{"x86_64", "haswell", "xeon_phi"},
	ldCacheFlag:    0x0300,
}

// arm64Spec: AArch64 has no fork or vfork syscall (libc's fork is clone)
// and glibc defines no glibc-hwcaps subdirectories for it; the legacy
// search (before 2.37) tried tls and the platform, "aarch64".
var arm64Spec = &archSpec{
	name:    "arm64",
	machine: elf.EM_AARCH64,
	display: "AArch64",
	forkNrs: forkNumbers(abi.ARM64, "clone", "clone3", "execve", "execveat"),
	cSonames: []string{
		"libc.so.6", "ld-linux-aarch64.so.1", "libpthread.so.0", "librt.so.1",
		"libdl.so.2", "libutil.so.1", "libanl.so.1",
	},
	glibcDirs:    []string{"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"},
	muslPathFile: "/etc/ld-musl-aarch64.path",
	hwcapFirst:   []string{"tls", "aarch64"},
	hwcapSubdirs: map[string][]string{
		"tls":     {"", "aarch64"},
		"aarch64": {""},
	},
	libValues:      []string{"lib", "lib64", "lib/aarch64-linux-gnu"},
	platformValues: []string{"aarch64"},
	ldCacheFlag:    0x0a00,
}

// specForMachine returns the spec whose code the scanner reads, nil for
// another machine.
func specForMachine(m elf.Machine) *archSpec {
	switch m {
	case elf.EM_X86_64:
		return amd64Spec
	case elf.EM_AARCH64:
		return arm64Spec
	}
	return nil
}

// specForArch returns the spec of a GOARCH ("" for the host's), nil for
// one the scan does not know.
func specForArch(goarch string) *archSpec {
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	switch goarch {
	case "amd64":
		return amd64Spec
	case "arm64":
		return arm64Spec
	}
	return nil
}

// hostSpec is the host's spec (x86-64's on a host the scan does not know:
// loader.Parse then names the mismatch).
func hostSpec() *archSpec {
	if s := specForArch(""); s != nil {
		return s
	}
	return amd64Spec
}
