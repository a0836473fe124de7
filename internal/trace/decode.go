package trace

import (
	"encoding/binary"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Memory reads the calling guest's memory (dispatch.Memory satisfies it).
// Implementations turn a bad pointer into an error, never a crash.
type Memory interface {
	Read(addr uint64, p []byte) error
	ReadString(addr uint64, max int) (string, error)
}

// argKind says how one argument is shown.
type argKind uint8

const (
	aHex           argKind = iota // a pointer or an opaque word: 0x..., NULL for 0
	aInt                          // a C int, signed decimal
	aLong                         // a 64-bit signed value
	aUint                         // an unsigned size or count
	aFD                           // a descriptor, annotated with what it points to
	aDirFD                        // a descriptor or AT_FDCWD
	aPath                         // a NUL-terminated path
	aStr                          // a NUL-terminated string (not a path: xattr names...)
	aBufIn                        // a buffer whose length is the next argument, read on entry
	aBufOut                       // a buffer filled by the call, length the result
	aStrOut                       // a string filled by the call (getcwd), length the result
	aMode                         // a permission mode, octal
	aModeType                     // a mode with a file type (mknod)
	aOpenFlags                    // O_* flags
	aOpenMode                     // mode of open: shown only with O_CREAT or O_TMPFILE
	aAtFlags                      // AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH...
	aUnlinkFlags                  // AT_REMOVEDIR
	aAccessAtFlags                // AT_EACCESS, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH
	aAccessMode                   // F_OK or R_OK|W_OK|X_OK
	aProt                         // PROT_*
	aMapFlags                     // MAP_*
	aCloneFlags                   // CLONE_* with the exit signal in the low byte
	aSignal                       // a signal number
	aSigHow                       // SIG_BLOCK...
	aWhence                       // SEEK_*
	aFcntlCmd                     // F_*
	aFcntlArg                     // fcntl's third argument, by command
	aDomain                       // AF_*
	aSockType                     // SOCK_* with SOCK_NONBLOCK|SOCK_CLOEXEC
	aArgv                         // a NULL-terminated array of strings
	aEnvp                         // an environment: pointer and count
	aWaitOpts                     // WNOHANG...
	aRenameFlags                  // RENAME_*
	aPipeFDs                      // int[2] filled by the call
	aOctal                        // octal number (umask)
)

// Limits on what a record copies from the guest.
const (
	// StringMax is how many bytes of a buffer or a non-path string are
	// shown (strace's default -s 32).
	StringMax = 32
	// PathMax bounds a path read from the guest.
	PathMax = 4096
	// ArgvMax is how many entries of an argv array are shown.
	ArgvMax = 32
)

// signatures: the arguments of each call kbox decodes, by name. A call
// missing here shows its six arguments in hex.
var signatures = sync.OnceValue(signatureTable)

func signatureTable() map[string][]argKind {
	return map[string][]argKind{
		"read":              {aFD, aBufOut, aUint},
		"write":             {aFD, aBufIn, aUint},
		"pread64":           {aFD, aBufOut, aUint, aLong},
		"pwrite64":          {aFD, aBufIn, aUint, aLong},
		"readv":             {aFD, aHex, aUint},
		"writev":            {aFD, aHex, aUint},
		"open":              {aPath, aOpenFlags, aOpenMode},
		"openat":            {aDirFD, aPath, aOpenFlags, aOpenMode},
		"openat2":           {aDirFD, aPath, aHex, aUint},
		"creat":             {aPath, aMode},
		"close":             {aFD},
		"close_range":       {aUint, aUint, aHex},
		"stat":              {aPath, aHex},
		"lstat":             {aPath, aHex},
		"fstat":             {aFD, aHex},
		"newfstatat":        {aDirFD, aPath, aHex, aAtFlags},
		"statx":             {aDirFD, aPath, aAtFlags, aHex, aHex},
		"statfs":            {aPath, aHex},
		"fstatfs":           {aFD, aHex},
		"access":            {aPath, aAccessMode},
		"faccessat":         {aDirFD, aPath, aAccessMode},
		"faccessat2":        {aDirFD, aPath, aAccessMode, aAccessAtFlags},
		"readlink":          {aPath, aBufOut, aUint},
		"readlinkat":        {aDirFD, aPath, aBufOut, aUint},
		"mkdir":             {aPath, aMode},
		"mkdirat":           {aDirFD, aPath, aMode},
		"mknod":             {aPath, aModeType, aHex},
		"mknodat":           {aDirFD, aPath, aModeType, aHex},
		"unlink":            {aPath},
		"unlinkat":          {aDirFD, aPath, aUnlinkFlags},
		"rmdir":             {aPath},
		"rename":            {aPath, aPath},
		"renameat":          {aDirFD, aPath, aDirFD, aPath},
		"renameat2":         {aDirFD, aPath, aDirFD, aPath, aRenameFlags},
		"link":              {aPath, aPath},
		"linkat":            {aDirFD, aPath, aDirFD, aPath, aAtFlags},
		"symlink":           {aStr, aPath},
		"symlinkat":         {aStr, aDirFD, aPath},
		"chmod":             {aPath, aMode},
		"fchmod":            {aFD, aMode},
		"fchmodat":          {aDirFD, aPath, aMode},
		"fchmodat2":         {aDirFD, aPath, aMode, aAtFlags},
		"chown":             {aPath, aInt, aInt},
		"lchown":            {aPath, aInt, aInt},
		"fchown":            {aFD, aInt, aInt},
		"fchownat":          {aDirFD, aPath, aInt, aInt, aAtFlags},
		"truncate":          {aPath, aLong},
		"ftruncate":         {aFD, aLong},
		"utimensat":         {aDirFD, aPath, aHex, aAtFlags},
		"utime":             {aPath, aHex},
		"utimes":            {aPath, aHex},
		"futimesat":         {aDirFD, aPath, aHex},
		"getxattr":          {aPath, aStr, aHex, aUint},
		"lgetxattr":         {aPath, aStr, aHex, aUint},
		"fgetxattr":         {aFD, aStr, aHex, aUint},
		"setxattr":          {aPath, aStr, aHex, aUint, aInt},
		"lsetxattr":         {aPath, aStr, aHex, aUint, aInt},
		"fsetxattr":         {aFD, aStr, aHex, aUint, aInt},
		"listxattr":         {aPath, aHex, aUint},
		"llistxattr":        {aPath, aHex, aUint},
		"flistxattr":        {aFD, aHex, aUint},
		"removexattr":       {aPath, aStr},
		"lremovexattr":      {aPath, aStr},
		"fremovexattr":      {aFD, aStr},
		"inotify_add_watch": {aFD, aPath, aHex},
		"chdir":             {aPath},
		"fchdir":            {aFD},
		"chroot":            {aPath},
		"getcwd":            {aStrOut, aUint},
		"getdents":          {aFD, aHex, aUint},
		"getdents64":        {aFD, aHex, aUint},
		"execve":            {aPath, aArgv, aEnvp},
		"execveat":          {aDirFD, aPath, aArgv, aEnvp, aAtFlags},
		"mmap":              {aHex, aUint, aProt, aMapFlags, aFD, aHex},
		"munmap":            {aHex, aUint},
		"mprotect":          {aHex, aUint, aProt},
		"brk":               {aHex},
		"clone":             {aCloneFlags, aHex, aHex, aHex, aHex},
		"fork":              {},
		"vfork":             {},
		"exit":              {aInt},
		"exit_group":        {aInt},
		"wait4":             {aInt, aHex, aWaitOpts, aHex},
		"kill":              {aInt, aSignal},
		"tkill":             {aInt, aSignal},
		"tgkill":            {aInt, aInt, aSignal},
		"rt_sigaction":      {aSignal, aHex, aHex, aUint},
		"rt_sigprocmask":    {aSigHow, aHex, aHex, aUint},
		"rt_sigreturn":      {},
		"rt_sigqueueinfo":   {aInt, aSignal, aHex},
		"rt_tgsigqueueinfo": {aInt, aInt, aSignal, aHex},
		"dup":               {aFD},
		"dup2":              {aFD, aInt},
		"dup3":              {aFD, aInt, aOpenFlags},
		"pipe":              {aPipeFDs},
		"pipe2":             {aPipeFDs, aOpenFlags},
		"lseek":             {aFD, aLong, aWhence},
		"fcntl":             {aFD, aFcntlCmd, aFcntlArg},
		"ioctl":             {aFD, aHex, aHex},
		"fsync":             {aFD},
		"fdatasync":         {aFD},
		"socket":            {aDomain, aSockType, aInt},
		"socketpair":        {aDomain, aSockType, aInt, aHex},
		"connect":           {aFD, aHex, aUint},
		"bind":              {aFD, aHex, aUint},
		"listen":            {aFD, aInt},
		"accept":            {aFD, aHex, aHex},
		"accept4":           {aFD, aHex, aHex, aSockType},
		"sendto":            {aFD, aBufIn, aUint, aHex, aHex, aUint},
		"recvfrom":          {aFD, aBufOut, aUint, aHex, aHex, aHex},
		"sendmsg":           {aFD, aHex, aHex},
		"recvmsg":           {aFD, aHex, aHex},
		"getsockname":       {aFD, aHex, aHex},
		"getpeername":       {aFD, aHex, aHex},
		"shutdown":          {aFD, aInt},
		"getpid":            {},
		"getppid":           {},
		"gettid":            {},
		"getuid":            {},
		"geteuid":           {},
		"getgid":            {},
		"getegid":           {},
		"setuid":            {aInt},
		"setgid":            {aInt},
		"setpgid":           {aInt, aInt},
		"getpgid":           {aInt},
		"setsid":            {},
		"umask":             {aOctal},
		"prlimit64":         {aInt, aInt, aHex, aHex},
		"sched_yield":       {},
		"nanosleep":         {aHex, aHex},
		"set_tid_address":   {aHex},
		"arch_prctl":        {aHex, aHex},
		"uname":             {aHex},
		"sync":              {},
		"pause":             {},
		"alarm":             {aUint},
	}
}

// decoder renders one call's arguments.
type decoder struct {
	mem    Memory
	fdName func(fd int) string
	args   [6]uint64
	ret    int64
	known  bool
}

// Decode renders the arguments of call name: one string per argument, as
// strace shows them. mem may be nil (pointers are then shown in hex);
// fdName, when set, names what a descriptor points to (shown as
// 3</etc/passwd>). ret and known are the result, for the arguments the
// call fills.
func Decode(name string, args [6]uint64, mem Memory, fdName func(int) string, ret int64, known bool) []string {
	return compact(name, decodeAll(name, args, mem, fdName, ret, known, nil))
}

// decodeAll renders each argument of the signature (unknown calls: six in
// hex); entry, when set, holds the input arguments rendered when the call
// started, and only the arguments the call fills are rendered again.
func decodeAll(name string, args [6]uint64, mem Memory, fdName func(int) string, ret int64, known bool, entry []string) []string {
	d := decoder{mem: mem, fdName: fdName, args: args, ret: ret, known: known}
	sig, ok := signatures()[name]
	if !ok {
		out := make([]string, 6)
		for i := range out {
			out[i] = hex(args[i])
		}
		return out
	}
	out := make([]string, len(sig))
	for i, k := range sig {
		if entry != nil && len(entry) == len(sig) && !filled(k) {
			out[i] = entry[i]
			continue
		}
		if k == aOpenMode && args[i-1]&(unix.O_CREAT|unix.O_TMPFILE&^unix.O_DIRECTORY) == 0 {
			continue
		}
		out[i] = d.arg(i, k, name)
	}
	return out
}

// filled reports whether the call writes the argument (rendered at exit).
func filled(k argKind) bool { return k == aBufOut || k == aStrOut || k == aPipeFDs }

// compact drops the arguments not shown (open's mode without O_CREAT,
// fcntl's unused argument).
func compact(name string, all []string) []string {
	out := all[:0:0]
	for _, a := range all {
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}

func hex(v uint64) string {
	if v == 0 {
		return "NULL"
	}
	return "0x" + strconv.FormatUint(v, 16)
}

func (d *decoder) arg(i int, k argKind, name string) string {
	v := d.args[i]
	i32 := int(int32(uint32(v)))
	switch k {
	case aInt:
		return strconv.Itoa(i32)
	case aLong:
		return strconv.FormatInt(int64(v), 10)
	case aUint:
		return strconv.FormatUint(v, 10)
	case aFD:
		return d.fd(i32)
	case aDirFD:
		if i32 == unix.AT_FDCWD {
			return "AT_FDCWD"
		}
		return d.fd(i32)
	case aPath:
		return d.str(v, PathMax, false)
	case aStr:
		return d.str(v, StringMax, true)
	case aBufIn:
		n := int(min(d.args[i+1], 1<<20))
		return d.buf(v, n)
	case aBufOut:
		if !d.known || d.ret < 0 {
			return hex(v)
		}
		return d.buf(v, int(min(d.ret, 1<<20)))
	case aStrOut:
		if !d.known || d.ret < 0 {
			return hex(v)
		}
		return d.str(v, PathMax, false)
	case aMode:
		return octal(uint32(v) &^ unix.S_IFMT)
	case aOpenMode:
		return octal(uint32(v))
	case aModeType:
		return ModeType(uint32(v))
	case aOctal:
		return octal(uint32(v))
	case aOpenFlags:
		if name == "dup3" || name == "pipe2" {
			return Flags(uint64(uint32(v)), openBits, "0")
		}
		return OpenFlags(uint32(v))
	case aAtFlags:
		return Flags(uint64(uint32(v)), atBits, "0")
	case aUnlinkFlags:
		return Flags(uint64(uint32(v)), unlinkBits, "0")
	case aAccessAtFlags:
		return Flags(uint64(uint32(v)), accessAtBits, "0")
	case aAccessMode:
		return Flags(uint64(uint32(v)), accessBits, "F_OK")
	case aProt:
		return Flags(uint64(uint32(v)), protBits, "PROT_NONE")
	case aMapFlags:
		return MapFlags(uint32(v))
	case aCloneFlags:
		return CloneFlags(v)
	case aSignal:
		return Signal(i32)
	case aSigHow:
		return enum(i32, sigHows)
	case aWhence:
		return enum(i32, whences)
	case aFcntlCmd:
		return enum(i32, fcntlCmds)
	case aFcntlArg:
		switch int32(uint32(d.args[1])) {
		case unix.F_SETFD:
			return Flags(uint64(uint32(v)), fdBits, "0")
		case unix.F_SETFL:
			return OpenFlags(uint32(v))
		case unix.F_DUPFD, unix.F_DUPFD_CLOEXEC, unix.F_SETOWN, unix.F_SETSIG, unix.F_SETPIPE_SZ:
			return strconv.Itoa(i32)
		case unix.F_GETFD, unix.F_GETFL, unix.F_GETOWN, unix.F_GETSIG, unix.F_GETPIPE_SZ:
			return ""
		}
		return hex(v)
	case aDomain:
		return enum(i32, domains)
	case aSockType:
		t := uint32(v)
		base := enum(int(t&0xf), sockTypes)
		if name == "accept4" {
			base = ""
		}
		rest := Flags(uint64(t&^0xf), sockFlagBits, "")
		switch {
		case base == "":
			if rest == "" {
				return "0"
			}
			return rest
		case rest == "":
			return base
		}
		return base + "|" + rest
	case aArgv:
		return d.argv(v)
	case aEnvp:
		return d.envp(v)
	case aWaitOpts:
		return Flags(uint64(uint32(v)), waitBits, "0")
	case aRenameFlags:
		return Flags(uint64(uint32(v)), renameBits, "0")
	case aPipeFDs:
		if !d.known || d.ret < 0 || d.mem == nil {
			return hex(v)
		}
		var b [8]byte
		if d.mem.Read(v, b[:]) != nil {
			return hex(v)
		}
		return "[" + strconv.Itoa(int(int32(binary.LittleEndian.Uint32(b[:4])))) + ", " +
			strconv.Itoa(int(int32(binary.LittleEndian.Uint32(b[4:])))) + "]"
	}
	return hex(v)
}

func (d *decoder) fd(fd int) string {
	s := strconv.Itoa(fd)
	if d.fdName != nil && fd >= 0 {
		if n := d.fdName(fd); n != "" {
			return s + "<" + escape([]byte(n), false) + ">"
		}
	}
	return s
}

// str reads a NUL-terminated string at addr; cut shortens it to max bytes
// with "..." as strace does.
func (d *decoder) str(addr uint64, max int, cut bool) string {
	if addr == 0 {
		return "NULL"
	}
	if d.mem == nil {
		return hex(addr)
	}
	s, err := d.mem.ReadString(addr, PathMax)
	if err != nil {
		return hex(addr)
	}
	if cut && len(s) > max {
		return `"` + escape([]byte(s[:max]), true) + `"...`
	}
	return `"` + escape([]byte(s), true) + `"`
}

// buf reads n bytes at addr, showing at most StringMax.
func (d *decoder) buf(addr uint64, n int) string {
	if d.mem == nil || n < 0 {
		return hex(addr)
	}
	show := min(n, StringMax)
	b := make([]byte, show)
	if show > 0 && d.mem.Read(addr, b) != nil {
		return hex(addr)
	}
	s := `"` + escape(b, true) + `"`
	if n > show {
		s += "..."
	}
	return s
}

func (d *decoder) argv(addr uint64) string {
	if addr == 0 {
		return "NULL"
	}
	if d.mem == nil {
		return hex(addr)
	}
	var parts []string
	var p [8]byte
	for i := 0; ; i++ {
		if d.mem.Read(addr+uint64(i)*8, p[:]) != nil {
			return hex(addr)
		}
		a := binary.LittleEndian.Uint64(p[:])
		if a == 0 {
			break
		}
		if i == ArgvMax {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, d.str(a, PathMax, false))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Argv reads a NULL-terminated array of strings (for the summary's
// processes); nil when it cannot be read.
func Argv(mem Memory, addr uint64) []string {
	if mem == nil || addr == 0 {
		return nil
	}
	var out []string
	var p [8]byte
	for i := 0; i < ArgvMax*8; i++ {
		if mem.Read(addr+uint64(i)*8, p[:]) != nil {
			return out
		}
		a := binary.LittleEndian.Uint64(p[:])
		if a == 0 {
			break
		}
		s, err := mem.ReadString(a, PathMax)
		if err != nil {
			return out
		}
		out = append(out, s)
	}
	return out
}

func (d *decoder) envp(addr uint64) string {
	if addr == 0 || d.mem == nil {
		return hex(addr)
	}
	var p [8]byte
	n := 0
	for ; n < 4096; n++ {
		if d.mem.Read(addr+uint64(n)*8, p[:]) != nil {
			return hex(addr)
		}
		if binary.LittleEndian.Uint64(p[:]) == 0 {
			break
		}
	}
	return hex(addr) + " /* " + strconv.Itoa(n) + " vars */"
}

// escape quotes b as strace does: printable ASCII as is, C escapes for
// \n \t \r \v \f, " and \ escaped, everything else in octal. quoteMeta
// false leaves " and \ alone (descriptor names).
func escape(b []byte, quoteMeta bool) string {
	var s strings.Builder
	for i, c := range b {
		switch {
		case c == '"' && quoteMeta:
			s.WriteString(`\"`)
		case c == '\\' && quoteMeta:
			s.WriteString(`\\`)
		case c == '\n':
			s.WriteString(`\n`)
		case c == '\t':
			s.WriteString(`\t`)
		case c == '\r':
			s.WriteString(`\r`)
		case c == '\v':
			s.WriteString(`\v`)
		case c == '\f':
			s.WriteString(`\f`)
		case c >= 0x20 && c < 0x7f:
			s.WriteByte(c)
		default:
			// Three digits when a digit follows, so the escape stays
			// unambiguous.
			if i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '7' {
				s.WriteString(`\` + pad3(strconv.FormatUint(uint64(c), 8)))
			} else {
				s.WriteString(`\` + strconv.FormatUint(uint64(c), 8))
			}
		}
	}
	return s.String()
}

func pad3(s string) string {
	for len(s) < 3 {
		s = "0" + s
	}
	return s
}

func octal(v uint32) string {
	if v == 0 {
		return "0"
	}
	return "0" + strconv.FormatUint(uint64(v), 8)
}

type bit struct {
	v    uint64
	name string
}

// Flags renders v as names joined by |, leftover bits in hex; zero is
// shown as zero.
func Flags(v uint64, bits []bit, zero string) string {
	if v == 0 {
		return zero
	}
	var parts []string
	for _, b := range bits {
		if b.v != 0 && v&b.v == b.v {
			parts = append(parts, b.name)
			v &^= b.v
		}
	}
	if v != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(v, 16))
	}
	return strings.Join(parts, "|")
}

func enum(v int, names map[int]string) string {
	if n, ok := names[v]; ok {
		return n
	}
	return strconv.Itoa(v)
}

// OpenFlags renders open(2) flags: the access mode, then the other flags.
func OpenFlags(v uint32) string {
	var acc string
	switch v & unix.O_ACCMODE {
	case unix.O_RDONLY:
		acc = "O_RDONLY"
	case unix.O_WRONLY:
		acc = "O_WRONLY"
	case unix.O_RDWR:
		acc = "O_RDWR"
	default:
		acc = "O_ACCMODE"
	}
	rest := Flags(uint64(v&^unix.O_ACCMODE), openBits, "")
	if rest == "" {
		return acc
	}
	return acc + "|" + rest
}

// MapFlags renders mmap flags: the sharing type, then the other flags.
func MapFlags(v uint32) string {
	var typ string
	switch v & 0x3 {
	case unix.MAP_SHARED:
		typ = "MAP_SHARED"
	case unix.MAP_PRIVATE:
		typ = "MAP_PRIVATE"
	case unix.MAP_SHARED_VALIDATE:
		typ = "MAP_SHARED_VALIDATE"
	default:
		typ = "0"
	}
	rest := Flags(uint64(v&^0x3), mapBits, "")
	if rest == "" {
		return typ
	}
	return typ + "|" + rest
}

// CloneFlags renders clone(2)'s flags word: CLONE_* and the exit signal.
func CloneFlags(v uint64) string {
	sig := int(v & 0xff)
	s := Flags(v&^0xff, cloneBits, "")
	if sig != 0 {
		if s != "" {
			s += "|"
		}
		s += Signal(sig)
	}
	if s == "" {
		return "0"
	}
	return s
}

// ModeType renders a mode with its file type (mknod).
func ModeType(v uint32) string {
	typ := enum(int(v&unix.S_IFMT), fileTypes)
	if v&unix.S_IFMT == 0 {
		return octal(v)
	}
	return typ + "|" + octal(v&^unix.S_IFMT)
}

// Signal names a signal (SIGTERM), or gives its number.
func Signal(sig int) string {
	if sig > 0 && sig < 32 {
		if n := unix.SignalName(unix.Signal(sig)); n != "" {
			return n
		}
	}
	if sig >= 32 && sig <= 64 {
		return "SIGRT_" + strconv.Itoa(sig-32)
	}
	return strconv.Itoa(sig)
}

// ErrnoName names an errno (ENOENT), or gives its number.
func ErrnoName(e unix.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return "E" + strconv.Itoa(int(e))
}

// errnoText is strerror's text, capitalized as strace shows it.
func errnoText(e unix.Errno) string {
	s := e.Error()
	if s == "" {
		return s
	}
	if c := s[0]; c >= 'a' && c <= 'z' {
		s = string(c-'a'+'A') + s[1:]
	}
	return s
}

var openBits = []bit{
	{unix.O_TMPFILE, "O_TMPFILE"},
	{unix.O_SYNC, "O_SYNC"},
	{unix.O_CREAT, "O_CREAT"}, {unix.O_EXCL, "O_EXCL"}, {unix.O_NOCTTY, "O_NOCTTY"},
	{unix.O_TRUNC, "O_TRUNC"}, {unix.O_APPEND, "O_APPEND"}, {unix.O_NONBLOCK, "O_NONBLOCK"},
	{unix.O_DSYNC, "O_DSYNC"}, {unix.O_ASYNC, "O_ASYNC"}, {unix.O_DIRECT, "O_DIRECT"},
	{unix.O_LARGEFILE, "O_LARGEFILE"}, {unix.O_DIRECTORY, "O_DIRECTORY"}, {unix.O_NOFOLLOW, "O_NOFOLLOW"},
	{unix.O_NOATIME, "O_NOATIME"}, {unix.O_CLOEXEC, "O_CLOEXEC"}, {unix.O_PATH, "O_PATH"},
}

var atBits = []bit{
	{unix.AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW"}, {unix.AT_SYMLINK_FOLLOW, "AT_SYMLINK_FOLLOW"},
	{unix.AT_NO_AUTOMOUNT, "AT_NO_AUTOMOUNT"}, {unix.AT_EMPTY_PATH, "AT_EMPTY_PATH"},
	{unix.AT_STATX_FORCE_SYNC, "AT_STATX_FORCE_SYNC"}, {unix.AT_STATX_DONT_SYNC, "AT_STATX_DONT_SYNC"},
	{0x8000, "AT_RECURSIVE"},
}

var unlinkBits = []bit{{unix.AT_REMOVEDIR, "AT_REMOVEDIR"}}

var accessAtBits = []bit{{unix.AT_EACCESS, "AT_EACCESS"}, {unix.AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW"},
	{unix.AT_EMPTY_PATH, "AT_EMPTY_PATH"}}

var accessBits = []bit{{unix.R_OK, "R_OK"}, {unix.W_OK, "W_OK"}, {unix.X_OK, "X_OK"}}

var protBits = []bit{{unix.PROT_READ, "PROT_READ"}, {unix.PROT_WRITE, "PROT_WRITE"}, {unix.PROT_EXEC, "PROT_EXEC"},
	{unix.PROT_GROWSDOWN, "PROT_GROWSDOWN"}, {unix.PROT_GROWSUP, "PROT_GROWSUP"}}

var mapBits = []bit{
	{unix.MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"},
	{unix.MAP_FIXED, "MAP_FIXED"}, {unix.MAP_ANONYMOUS, "MAP_ANONYMOUS"}, {unix.MAP_GROWSDOWN, "MAP_GROWSDOWN"},
	{unix.MAP_DENYWRITE, "MAP_DENYWRITE"}, {unix.MAP_EXECUTABLE, "MAP_EXECUTABLE"}, {unix.MAP_LOCKED, "MAP_LOCKED"},
	{unix.MAP_NORESERVE, "MAP_NORESERVE"}, {unix.MAP_POPULATE, "MAP_POPULATE"}, {unix.MAP_NONBLOCK, "MAP_NONBLOCK"},
	{unix.MAP_STACK, "MAP_STACK"}, {unix.MAP_HUGETLB, "MAP_HUGETLB"}, {unix.MAP_SYNC, "MAP_SYNC"},
}

var cloneBits = []bit{
	{unix.CLONE_VM, "CLONE_VM"}, {unix.CLONE_FS, "CLONE_FS"}, {unix.CLONE_FILES, "CLONE_FILES"},
	{unix.CLONE_SIGHAND, "CLONE_SIGHAND"}, {unix.CLONE_PIDFD, "CLONE_PIDFD"}, {unix.CLONE_PTRACE, "CLONE_PTRACE"},
	{unix.CLONE_VFORK, "CLONE_VFORK"}, {unix.CLONE_PARENT, "CLONE_PARENT"}, {unix.CLONE_THREAD, "CLONE_THREAD"},
	{unix.CLONE_NEWNS, "CLONE_NEWNS"}, {unix.CLONE_SYSVSEM, "CLONE_SYSVSEM"}, {unix.CLONE_SETTLS, "CLONE_SETTLS"},
	{unix.CLONE_PARENT_SETTID, "CLONE_PARENT_SETTID"}, {unix.CLONE_CHILD_CLEARTID, "CLONE_CHILD_CLEARTID"},
	{unix.CLONE_DETACHED, "CLONE_DETACHED"}, {unix.CLONE_UNTRACED, "CLONE_UNTRACED"},
	{unix.CLONE_CHILD_SETTID, "CLONE_CHILD_SETTID"}, {unix.CLONE_NEWCGROUP, "CLONE_NEWCGROUP"},
	{unix.CLONE_NEWUTS, "CLONE_NEWUTS"}, {unix.CLONE_NEWIPC, "CLONE_NEWIPC"}, {unix.CLONE_NEWUSER, "CLONE_NEWUSER"},
	{unix.CLONE_NEWPID, "CLONE_NEWPID"}, {unix.CLONE_NEWNET, "CLONE_NEWNET"}, {unix.CLONE_IO, "CLONE_IO"},
}

var fdBits = []bit{{unix.FD_CLOEXEC, "FD_CLOEXEC"}}

var sockFlagBits = []bit{{unix.SOCK_NONBLOCK, "SOCK_NONBLOCK"}, {unix.SOCK_CLOEXEC, "SOCK_CLOEXEC"}}

var waitBits = []bit{{unix.WNOHANG, "WNOHANG"}, {unix.WUNTRACED, "WUNTRACED"}, {unix.WCONTINUED, "WCONTINUED"},
	{unix.WEXITED, "WEXITED"}, {unix.WNOWAIT, "WNOWAIT"}, {0x20000000, "__WNOTHREAD"}, {0x40000000, "__WALL"},
	{0x80000000, "__WCLONE"}}

var renameBits = []bit{{unix.RENAME_NOREPLACE, "RENAME_NOREPLACE"}, {unix.RENAME_EXCHANGE, "RENAME_EXCHANGE"},
	{unix.RENAME_WHITEOUT, "RENAME_WHITEOUT"}}

var sigHows = map[int]string{unix.SIG_BLOCK: "SIG_BLOCK", unix.SIG_UNBLOCK: "SIG_UNBLOCK", unix.SIG_SETMASK: "SIG_SETMASK"}

var whences = map[int]string{unix.SEEK_SET: "SEEK_SET", unix.SEEK_CUR: "SEEK_CUR", unix.SEEK_END: "SEEK_END",
	unix.SEEK_DATA: "SEEK_DATA", unix.SEEK_HOLE: "SEEK_HOLE"}

var fcntlCmds = map[int]string{
	unix.F_DUPFD: "F_DUPFD", unix.F_GETFD: "F_GETFD", unix.F_SETFD: "F_SETFD", unix.F_GETFL: "F_GETFL",
	unix.F_SETFL: "F_SETFL", unix.F_GETLK: "F_GETLK", unix.F_SETLK: "F_SETLK", unix.F_SETLKW: "F_SETLKW",
	unix.F_SETOWN: "F_SETOWN", unix.F_GETOWN: "F_GETOWN", unix.F_SETSIG: "F_SETSIG", unix.F_GETSIG: "F_GETSIG",
	unix.F_SETOWN_EX: "F_SETOWN_EX", unix.F_GETOWN_EX: "F_GETOWN_EX", unix.F_OFD_GETLK: "F_OFD_GETLK",
	unix.F_OFD_SETLK: "F_OFD_SETLK", unix.F_OFD_SETLKW: "F_OFD_SETLKW", unix.F_SETLEASE: "F_SETLEASE",
	unix.F_GETLEASE: "F_GETLEASE", unix.F_NOTIFY: "F_NOTIFY", unix.F_DUPFD_CLOEXEC: "F_DUPFD_CLOEXEC",
	unix.F_SETPIPE_SZ: "F_SETPIPE_SZ", unix.F_GETPIPE_SZ: "F_GETPIPE_SZ", unix.F_ADD_SEALS: "F_ADD_SEALS",
	unix.F_GET_SEALS: "F_GET_SEALS",
}

var domains = map[int]string{unix.AF_UNSPEC: "AF_UNSPEC", unix.AF_UNIX: "AF_UNIX", unix.AF_INET: "AF_INET",
	unix.AF_INET6: "AF_INET6", unix.AF_NETLINK: "AF_NETLINK", unix.AF_PACKET: "AF_PACKET", unix.AF_VSOCK: "AF_VSOCK"}

var sockTypes = map[int]string{unix.SOCK_STREAM: "SOCK_STREAM", unix.SOCK_DGRAM: "SOCK_DGRAM", unix.SOCK_RAW: "SOCK_RAW",
	unix.SOCK_RDM: "SOCK_RDM", unix.SOCK_SEQPACKET: "SOCK_SEQPACKET", unix.SOCK_PACKET: "SOCK_PACKET"}

var fileTypes = map[int]string{unix.S_IFREG: "S_IFREG", unix.S_IFCHR: "S_IFCHR", unix.S_IFBLK: "S_IFBLK",
	unix.S_IFIFO: "S_IFIFO", unix.S_IFSOCK: "S_IFSOCK", unix.S_IFDIR: "S_IFDIR", unix.S_IFLNK: "S_IFLNK"}
