package policy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kbox-go/kbox/internal/abi"
)

// Doc renders the table as docs/syscalls.md: every row with its number on
// each architecture, what the seccomp tier's filter does, how the
// in-process tiers serve it, the fast path, and the in-process filter's
// refinements. TestSyscallDoc keeps the file equal to this output
// (`go test ./internal/policy -run TestSyscallDoc -update` rewrites it).
func Doc() string {
	var b strings.Builder
	b.WriteString(`# Syscall table

Generated from ` + "`internal/policy`" + ` (policy.go, serve.go, inprocess.go) by
` + "`go test ./internal/policy -run TestSyscallDoc -update`" + `; a test fails when
this file and the table disagree. Do not edit by hand.

Columns:

- **seccomp tier**: what the guest's BPF filter does. *allow* runs in the
  kernel, *notify* sends the call to the supervisor (internal/dispatch),
  *deny* fails with EPERM, *unsupported* with ENOSYS. *identity* and
  *ownership* rows are allowed when the guest's identity is the host
  user's and notified when kbox virtualizes it. Argument forms (first
  match wins) refine the row's disposition.
- **in-process**: how the trap and rewrite tiers answer it: *native* (run
  on the host with descriptors translated), *engine* (internal/dispatch,
  as in the seccomp tier), *core* (the in-process core's own rule: it owns
  that state in-process), *EPERM*/*ENOSYS*.
- **fast**: the rewrite tier's fast path (fd: descriptor calls on regular
  files and directories; pid: answered; native: run unchanged; stat cache:
  answered from the in-process stat cache when the path is in it, also in
  the trap tier's signal handler).
- **process filter**: the filter every thread of a process hosting an
  in-process guest runs (kbox's own threads included).

Calls not listed are notified and answered ENOSYS (counted under -v).

`)
	procRows := map[string]inProcessRow{}
	for _, row := range inProcessRows() {
		for _, n := range row.names {
			procRows[n] = row
		}
	}
	families := map[string][]Entry{}
	var order []string
	for _, e := range Table {
		if _, seen := families[e.Family]; !seen {
			order = append(order, e.Family)
		}
		families[e.Family] = append(families[e.Family], e)
	}
	for _, fam := range order {
		rows := families[fam]
		sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
		fmt.Fprintf(&b, "## %s\n\n", fam)
		b.WriteString("| call | amd64 | arm64 | seccomp tier | in-process | fast | process filter | why |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|\n")
		for _, e := range rows {
			pf := ""
			if row, ok := procRows[e.Name]; ok {
				pf = row.why
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", e.Name, nrOf(abi.AMD64, e.Name),
				nrOf(abi.ARM64, e.Name), seccompCell(e), inProcCell(e), fastCell(e.Fast), pf, e.Why)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func nrOf(a *abi.Arch, name string) string {
	if nr, ok := a.Nr(name); ok {
		return fmt.Sprint(nr)
	}
	return "–"
}

func dispWord(d Disposition) string {
	switch d {
	case Deny:
		return "deny"
	case Unsupported:
		return "unsupported"
	}
	return d.String()
}

func seccompCell(e Entry) string {
	s := dispWord(e.Disp)
	if e.InDomain {
		s += "; notify with Landlock (the guest's own processes)"
	}
	for _, c := range e.Conds {
		if c.Mask == ^uint64(0) || (c.Int && c.Mask == 0xffffffff) {
			s += fmt.Sprintf("; arg%d = %#x: %s", c.Arg, c.Value, dispWord(c.Disp))
		} else {
			s += fmt.Sprintf("; arg%d & %#x = %#x: %s", c.Arg, c.Mask, c.Value, dispWord(c.Disp))
		}
	}
	return s
}

func inProcCell(e Entry) string {
	switch e.InProc {
	case OwnRule:
		return "core"
	case NotInProcess:
		return "ENOSYS"
	}
	run := "engine"
	switch e.Disp {
	case Deny:
		run = "EPERM"
	case Unsupported:
		run = "ENOSYS"
	case Allow:
		run = "native"
	case Identity, Ownership:
		run = "native or engine"
	}
	if len(e.Conds) > 0 {
		run += " (by argument)"
	}
	return run
}

func fastCell(k FastKind) string {
	switch k {
	case FastFD, FastFstat:
		return "fd"
	case FastPid:
		return "pid"
	case FastNative:
		return "native"
	case FastStat:
		return "stat cache"
	}
	return ""
}
