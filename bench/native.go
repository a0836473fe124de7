package main

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// nativeRunner starts the baseline's whole commands: under chroot(ROOT)
// when the harness is root (the fair baseline: same binaries, same paths,
// same /dev as the sandboxes get), else with host paths into ROOT.
type nativeRunner struct {
	root, tmp string
	ns        *nsExecutor // nil: host-path mode
	mode      string      // one line describing how commands run
}

func newNativeRunner(e *env) *runner {
	n := &nativeRunner{root: e.root, tmp: filepath.Join(e.work, "tmp")}
	os.MkdirAll(n.tmp, 0o1777)
	var why string
	if isRoot() {
		ns, err := newNSExecutor(e.root)
		if err == nil {
			n.ns = ns
			n.mode = "commands run under chroot(ROOT), with the host's /dev bound on ROOT/dev in a private mount namespace"
		} else {
			why = " (chroot setup failed: " + err.Error() + ")"
		}
	} else {
		why = " (not root, so no chroot)"
	}
	if n.ns == nil {
		n.mode = "commands run with host paths into ROOT: ROOT/bin/sh, PATH=ROOT/bin, /tmp mapped to a temp dir" + why
	}
	return &runner{
		Name: "native", Kind: kindNative, Prog: "/bin/bench", native: n,
		Note: "per-call: ROOT/bin/bench -f ROOT/etc/hostname -w <host temp file>; " + n.mode,
	}
}

func (n *nativeRunner) run(argv []string, timeout time.Duration) outcome {
	if n.ns != nil {
		return n.ns.run(proc{argv: argv, chroot: n.root, timeout: timeout})
	}
	rep := strings.NewReplacer("/bin/", n.root+"/bin/", "/tmp/", n.tmp+"/", guestStamp, n.root+guestStamp)
	host := make([]string, len(argv))
	for i, a := range argv {
		if a == "/" {
			host[i] = n.root
		} else {
			host[i] = rep.Replace(a)
		}
	}
	env := append(os.Environ(), "PATH="+n.root+"/bin")
	return run(proc{argv: host, env: env, timeout: timeout})
}

func (n *nativeRunner) close() {
	if n.ns != nil {
		n.ns.close()
	}
}
