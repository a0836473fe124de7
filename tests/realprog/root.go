// Package realprog runs everyday developer tasks (shells, coreutils, tar,
// python, gcc and make, git, sqlite, perl, ssh-keygen, dpkg, useradd, ...)
// in a Debian 12 root natively (chroot, as root), under `kbox -S` as root
// and under `kbox -S` as the unprivileged uid 65534, and compares each
// run's exit status and output with the native one.
//
// It runs only with KBOX_REALPROG=1 (it needs root, a network connection
// for the first build of the root and several minutes); scripts/realprog.sh
// builds kbox and runs it. The Debian root is built once with debootstrap
// and cached at /var/cache/kbox-realprog/root ($KBOX_REALPROG_ROOT); a lock
// beside it keeps concurrent runs from building it twice.
package realprog

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	// defaultRoot is where the Debian root is cached.
	defaultRoot = "/var/cache/kbox-realprog/root"
	// mirror and suite of the root.
	mirror = "http://deb.debian.org/debian"
	suite  = "bookworm"
	// doneMarker is written into a root whose debootstrap completed; it
	// holds the package list, so a changed list rebuilds the root.
	doneMarker = ".kbox-realprog-complete"
)

// packages are installed on top of debootstrap's minbase variant.
var packages = []string{
	"bash", "coreutils", "tar", "xz-utils", "gzip", "python3", "gcc", "make",
	"libc6-dev", "git", "sqlite3", "perl", "curl", "openssh-client", "nodejs",
	"dpkg", "apt", "passwd", "findutils", "ca-certificates",
}

// rootPath is the cached root's directory.
func rootPath() string {
	if p := os.Getenv("KBOX_REALPROG_ROOT"); p != "" {
		return filepath.Clean(p)
	}
	return defaultRoot
}

func markerContent() string { return suite + " " + strings.Join(packages, ",") + "\n" }

// rootReady reports whether root holds a completed build of this package
// list.
func rootReady(root string) bool {
	b, err := os.ReadFile(filepath.Join(root, doneMarker))
	return err == nil && string(b) == markerContent()
}

// errNoNetwork is returned by ensureRoot when the root must be built and the
// mirror cannot be reached: the suite is skipped, loudly.
var errNoNetwork = errors.New("network unreachable")

// ensureRoot returns the cached Debian root, building it with debootstrap
// when it is missing or was built from another package list. logf reports
// progress.
func ensureRoot(logf func(string, ...any)) (string, error) {
	root := rootPath()
	if rootReady(root) {
		return root, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("the Debian root %s is missing and building it (debootstrap) needs root", root)
	}
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(root+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	if rootReady(root) { // another run built it while we waited
		return root, nil
	}
	proxy := aptProxy()
	if err := probeMirror(proxy); err != nil {
		return "", fmt.Errorf("%w: %s: %v", errNoNetwork, mirror, err)
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		logf("installing debootstrap")
		cmd := exec.Command("apt-get", "install", "-y", "-qq", "debootstrap")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get install debootstrap: %v\n%s", err, out)
		}
	}
	tmp := root + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	logf("building %s with debootstrap (%s, %s; takes minutes)", root, suite, mirror)
	start := time.Now()
	cmd := exec.Command("debootstrap", "--variant=minbase", "--include="+strings.Join(packages, ","), suite, tmp, mirror)
	cmd.Env = os.Environ()
	if proxy != "" {
		cmd.Env = append(cmd.Env, "http_proxy="+proxy, "https_proxy="+proxy)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		tail := string(out)
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return "", fmt.Errorf("debootstrap: %v\n%s", err, tail)
	}
	if err := os.WriteFile(filepath.Join(tmp, doneMarker), []byte(markerContent()), 0o644); err != nil {
		return "", err
	}
	if err := os.RemoveAll(root); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, root); err != nil {
		return "", err
	}
	logf("built %s in %v", root, time.Since(start).Round(time.Second))
	return root, nil
}

// aptProxy returns the host's apt HTTP proxy (Acquire::http::Proxy), or the
// http_proxy environment variable, or "".
func aptProxy() string {
	if out, err := exec.Command("apt-config", "shell", "P", "Acquire::http::Proxy").Output(); err == nil {
		// apt-config shell prints P='value'
		s := strings.TrimSpace(string(out))
		if v, ok := strings.CutPrefix(s, "P="); ok {
			v = strings.Trim(v, "'\"")
			if v != "" && v != "DIRECT" && v != "false" {
				return v
			}
		}
	}
	return os.Getenv("http_proxy")
}

// probeMirror fetches the suite's Release file headers.
func probeMirror(proxy string) error {
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment}
	if proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil {
			return fmt.Errorf("apt proxy %q: %v", proxy, err)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, mirror+"/dists/"+suite+"/Release", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	return nil
}

// networkReachable reports whether the tasks marked net can run: the
// mirror answers from the host (the guests use the host's network).
func networkReachable() bool { return probeMirror(aptProxy()) == nil }
