package trace

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/kbox-go/kbox/internal/abi"
	"github.com/kbox-go/kbox/internal/policy"
)

// Filter selects the calls a trace shows, like strace's -e trace=...
type Filter struct {
	names map[string]bool
	// negate: every call except names.
	negate bool
}

// classes are the call classes a filter names (strace's %file, %process...),
// each a set of syscall names. Built on first use, like familyOf and the
// decoder's signatures: most runs trace nothing, and package initialisers
// run at every kbox start.
var classes = sync.OnceValue(buildClasses)

// ClassNames lists the classes, sorted.
func ClassNames() []string {
	out := make([]string, 0, len(classes()))
	for c := range classes() {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// familyOf is the policy table's Family of each call, by name.
var familyOf = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	for _, e := range policy.Table {
		m[e.Name] = e.Family
	}
	return m
})

// Family returns the policy table's family of the call ("" when the table
// does not list it).
func Family(name string) string { return familyOf()[name] }

func buildClasses() map[string]map[string]bool {
	c := map[string]map[string]bool{}
	add := func(class string, names ...string) {
		if c[class] == nil {
			c[class] = map[string]bool{}
		}
		for _, n := range names {
			c[class][n] = true
		}
	}
	for _, e := range policy.Table {
		switch e.Family {
		case "path", "exec":
			add("file", e.Name)
		case "net":
			add("network", e.Name)
		case "memory":
			add("memory", e.Name)
		case "ipc":
			add("ipc", e.Name)
		case "fd_io", "fd_meta", "fd_new", "dir":
			add("desc", e.Name)
		case "signals":
			if strings.Contains(e.Name, "sig") || strings.Contains(e.Name, "kill") {
				add("signal", e.Name)
			}
		}
		if strings.HasPrefix(e.Name, "mq_") {
			add("ipc", e.Name)
		}
	}
	// A call taking a path is a file call, one taking a descriptor a desc
	// call, as the decoder's signatures say.
	for name, sig := range signatures() {
		for _, k := range sig {
			switch k {
			case aPath:
				add("file", name)
			case aFD, aDirFD:
				add("desc", name)
			}
		}
	}
	add("file", "chdir", "chroot")
	add("process", "clone", "clone3", "fork", "vfork", "execve", "execveat", "exit", "exit_group",
		"wait4", "waitid", "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
		"pidfd_open", "pidfd_send_signal", "unshare", "setns")
	add("signal", "pause", "signalfd", "signalfd4", "sigaltstack")
	add("network", "socket", "socketpair")
	return c
}

// ParseFilter parses a trace filter: a comma-separated list of syscall
// names and classes (file, process, network, signal, ipc, desc, memory;
// with or without strace's % prefix), optionally after "trace=", and
// optionally negated as a whole by a leading "!". "all" selects every
// call, "none" none. The empty string selects every call.
func ParseFilter(spec string) (*Filter, error) {
	s := strings.TrimPrefix(strings.TrimSpace(spec), "trace=")
	f := &Filter{names: map[string]bool{}}
	if s == "" || s == "all" {
		f.negate = true
		return f, nil
	}
	neg := strings.HasPrefix(s, "!")
	s = strings.TrimPrefix(s, "!")
	all := false
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
			return nil, fmt.Errorf("trace filter %q: empty item", spec)
		case item == "all":
			all = true
			continue
		case item == "none":
			continue
		}
		class := strings.TrimPrefix(item, "%")
		if set, ok := classes()[class]; ok {
			for n := range set {
				f.names[n] = true
			}
			continue
		}
		if strings.HasPrefix(item, "%") || !knownName(item) {
			return nil, fmt.Errorf("trace filter %q: %q is neither a syscall nor a class (classes: %s)",
				spec, item, strings.Join(ClassNames(), ", "))
		}
		f.names[item] = true
	}
	f.negate = neg
	if all {
		// "all" selects everything ("!all" nothing), whatever else is listed.
		f.names = map[string]bool{}
		f.negate = !neg
	}
	return f, nil
}

func knownName(n string) bool {
	_, a := abi.AMD64.Nr(n)
	_, b := abi.ARM64.Nr(n)
	return a || b
}

// Match reports whether the filter selects call name.
func (f *Filter) Match(name string) bool {
	if f == nil {
		return true
	}
	return f.names[name] != f.negate
}

// byNr resolves the filter for arch: selected[nr].
func (f *Filter) byNr(arch *abi.Arch) []bool {
	sel := make([]bool, arch.MaxNr()+1)
	for nr := range sel {
		sel[nr] = f.Match(arch.SyscallName(nr))
	}
	return sel
}
