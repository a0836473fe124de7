package integration

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostSecretDir creates a host directory outside every guest root holding
// secret.txt (0644, containing a random secret), a subdirectory, a listening
// unix socket "sock" and an executable "prog" (a copy of /bin/true).
func hostSecretDir(t *testing.T, owner int) (dir, secret string) {
	t.Helper()
	dir = mkTempDir(t, "kbox-it-host-")
	secret = "kbox-secret-" + randomHex(t, 12)
	writeFile(t, filepath.Join(dir, "secret.txt"), "the secret is "+secret+"\n", 0o644)
	writeFile(t, filepath.Join(dir, "subdir", "inner.txt"), secret+"\n", 0o644)
	if src, err := exec.LookPath("true"); err == nil {
		if b, err := os.ReadFile(src); err == nil {
			writeFile(t, filepath.Join(dir, "prog"), string(b), 0o755)
		}
	}
	if l, err := net.Listen("unix", filepath.Join(dir, "sock")); err == nil {
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.SetDeadline(time.Now().Add(time.Second)) //nolint:errcheck
				io.WriteString(c, secret+"\n")             //nolint:errcheck
				c.Close()
			}
		}()
		os.Chmod(filepath.Join(dir, "sock"), 0o777) //nolint:errcheck
	} else {
		t.Logf("no host unix socket: %v", err)
	}
	chownTree(t, dir, owner)
	return dir, secret
}

// TestEscape runs the escape-attempt suite under -r and -S, as the invoking
// user and unprivileged: every attempt must be blocked.
func TestEscape(t *testing.T) {
	t.Parallel()
	// Under the trap tier fork fails, so escape runs every attempt in its
	// own process, one after the other; its threaded races report
	// "pthread_create failed" (threads are refused).
	forEachTierModeVariant(t, func(t *testing.T, tier, mode string, v variant) {
		root := freshRoot(t, v.uid())
		host, secret := hostSecretDir(t, v.uid())
		// escape's hijack_kbox_threads reads the tier from the
		// environment (kbox adds nothing to the guest's own).
		opts := runOpts{Unpriv: v.unpriv, Tout: 120 * time.Second * time.Duration(timeoutScale),
			Args: []string{"--syscall-mode=" + tier, "--setenv", "KBOX_SYSCALL_MODE=" + tier, mode, root, "--", "/bin/escape", host, secret}}
		out, errOut, code := runKbox(t, opts)
		var escaped []string
		for _, l := range lines(out) {
			if strings.Contains(l, "ESCAPED") {
				escaped = append(escaped, l)
			}
		}
		if code != 0 || len(escaped) > 0 || !strings.Contains(out, "summary: 0 escaped") {
			t.Errorf("%s\nexit status %d (want 0), escapes:\n%s\n\nfull stdout:\n%s\nstderr:\n%s",
				cmdline(opts), code, strings.Join(escaped, "\n"), out, errOut)
		}
		if strings.Contains(errOut, secret) {
			t.Errorf("%s: the secret appeared on stderr:\n%s", cmdline(opts), errOut)
		}
		// hijack_kbox_threads makes code injected into kbox's threads
		// create this file if any thread of the process can reach the host.
		if _, err := os.Lstat(filepath.Join(host, "PWNED")); err == nil {
			t.Errorf("%s: a thread of kbox's process created %s/PWNED: in-process confinement broken", cmdline(opts), host)
		}
	})
}

// TestEscapeDirect probes the host directory with sc.
func TestEscapeDirect(t *testing.T) {
	t.Parallel()
	forEachVariant(t, "", func(t *testing.T, v variant) {
		root := freshRoot(t, v.uid())
		host, secret := hostSecretDir(t, v.uid())
		rel := strings.TrimPrefix(host, "/")
		cases := []struct {
			mode string
			args []string
			want []string // matchLine syntax
		}{
			{"-r", []string{"open", host + "/secret.txt", "O_RDONLY", ",", "stat", host, ",", "ls", host, ",",
				"readfile", host + "/subdir/inner.txt", ",", "unix_connect", host + "/sock", ",", "chdir", host},
				[]string{"open: err ENOENT", "stat: err ENOENT", "ls: err ENOENT", "readfile: err ENOENT",
					"unix_connect: err ENOENT", "chdir: err ENOENT"}},
			{"-S", []string{"open", host + "/secret.txt", "O_RDONLY", ",", "readfile", "/proc/self/root" + host + "/secret.txt", ",",
				"readfile", "/proc/self/cwd/../../../../" + rel + "/secret.txt", ",", "readfile", "/proc/1/root" + host + "/secret.txt"},
				[]string{"open: err ENOENT", "readfile: err *", "readfile: err *", "readfile: err *"}},
			{"-r", []string{"chdir", "/etc", ",", "ls", "/proc/self/cwd/..", ",", "ls", "../../../..", ",",
				"symlink", host, "/tmp/hl-" + v.name, ",", "ls", "/tmp/hl-" + v.name, ",", "readfile", "/tmp/hl-" + v.name + "/secret.txt"},
				[]string{"chdir: ok 0", "ls: err ENOENT", "ls: ok " + rootListing(t, root), "symlink: ok 0", "ls: err ENOENT",
					"readfile: err ENOENT"}},
			{"-S", []string{"chdir", "/etc", ",", "ls", "/proc/self/cwd/..", ",", "readfile", "/proc/self/cwd/hostname", ",",
				"readlink", "/proc/self/cwd", ",", "readlink", "/proc/self/root"},
				[]string{"chdir: ok 0", "ls: ok " + rootListing(t, root), "readfile: ok kbox-guest", "readlink: ok /etc", "readlink: ok /"}},
		}
		for _, c := range cases {
			opts := runOpts{Unpriv: v.unpriv, Args: append([]string{c.mode, root, "--", "/bin/sc"}, c.args...)}
			out, errOut, code := runKbox(t, opts)
			if code != 0 {
				t.Errorf("%s: exit status %d\nstderr:\n%s", cmdline(opts), code, errOut)
			}
			if diff := compareLines(c.want, lines(out)); diff != "" {
				t.Errorf("%s\n%s", cmdline(opts), diff)
			}
			if strings.Contains(out, secret) {
				t.Errorf("%s: the secret leaked:\n%s", cmdline(opts), out)
			}
		}
	})
}

// rootListing is what sc ls prints for the guest's / (the -S mode adds
// proc, sys, dev and tmp, which the fixture already has).
func rootListing(t *testing.T, root string) string {
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return strings.Join(names, ",")
}
