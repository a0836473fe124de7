package image

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kbox-go/kbox/internal/launch"
)

func TestApplyRun(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "root")
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\nstaff:x:50:\n"), 0o644)
	write := func(c Config) {
		if err := WriteMeta(dir, Meta{Source: "test", Config: c}); err != nil {
			t.Fatal(err)
		}
	}
	ep := func(s string) *string { return &s }
	for _, c := range []struct {
		name     string
		cfg      Config
		flags    launch.Options
		run      RunOptions
		argv     string // Command + Args, "" when the default
		env      string
		id       string // "root", "UID:GID" or "" (as the flags said)
		workDir  string
		errorHas string
	}{
		{name: "root, defaults", cfg: Config{Cmd: []string{"sh"}}, argv: "sh",
			env: "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=xterm", id: "root"},
		{name: "entrypoint and cmd", cfg: Config{Entrypoint: []string{"/e", "-x"}, Cmd: []string{"c1", "c2"}, Env: []string{"PATH=/p", "HOME=/h"}},
			argv: "/e -x c1 c2", env: "PATH=/p HOME=/h TERM=xterm", id: "root"},
		{name: "args replace cmd", cfg: Config{Entrypoint: []string{"/e"}, Cmd: []string{"c"}}, run: RunOptions{Args: []string{"a"}}, argv: "/e a", id: "root"},
		{name: "--entrypoint drops cmd", cfg: Config{Entrypoint: []string{"/e"}, Cmd: []string{"c"}}, run: RunOptions{Entrypoint: ep("/x")}, argv: "/x", id: "root"},
		{name: "--entrypoint '' with args", cfg: Config{Entrypoint: []string{"/e"}}, run: RunOptions{Entrypoint: ep(""), Args: []string{"ls", "-l"}}, argv: "ls -l", id: "root"},
		{name: "nothing", cfg: Config{}, argv: "", id: "root"},
		{name: "user by name", cfg: Config{User: "app"}, id: "1000:1001", env: "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/home/app TERM=xterm"},
		{name: "user:group names", cfg: Config{User: "app:staff"}, id: "1000:50"},
		{name: "numeric user not in passwd", cfg: Config{User: "4242"}, id: "4242:0"},
		{name: "numeric user in passwd", cfg: Config{User: "1000"}, id: "1000:1001"},
		{name: "uid:gid", cfg: Config{User: "7:8"}, id: "7:8"},
		{name: "root by name", cfg: Config{User: "root"}, id: "root"},
		{name: "unknown user", cfg: Config{User: "ghost"}, errorHas: `"ghost" is not in its /etc/passwd`},
		{name: "unknown group", cfg: Config{User: "app:ghosts"}, errorHas: `"ghosts" is not in its /etc/group`},
		{name: "-0 overrides the user", cfg: Config{User: "app"}, flags: launch.Options{RootID: true}, id: "root"},
		{name: "--change-id overrides the user", cfg: Config{User: "app"}, flags: launch.Options{ChangeID: "5:5", ChangeSet: true}, id: "5:5"},
		{name: "workdir", cfg: Config{WorkingDir: "/srv"}, id: "root", workDir: "/srv"},
		{name: "-w wins", cfg: Config{WorkingDir: "/srv"}, flags: launch.Options{WorkDir: "/tmp", WorkDirSet: true}, id: "root", workDir: "/tmp"},
	} {
		t.Run(c.name, func(t *testing.T) {
			write(c.cfg)
			o := c.flags
			r := c.run
			r.Dir = dir
			r.HostEnv = []string{"TERM=xterm", "SECRET=host"}
			err := ApplyRun(&o, r)
			if c.errorHas != "" {
				if err == nil || !strings.Contains(err.Error(), c.errorHas) {
					t.Fatalf("error %v, want %q", err, c.errorHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(o.Roots) != 1 || o.Roots[0].Dir != dir || o.Roots[0].Kind != launch.RootRecommended {
				t.Errorf("roots %+v", o.Roots)
			}
			argv := ""
			if o.CommandSet {
				argv = strings.Join(append([]string{o.Command}, o.Args...), " ")
			}
			if argv != c.argv {
				t.Errorf("argv %q, want %q", argv, c.argv)
			}
			if env := strings.Join(o.HostEnv, " "); c.env != "" && env != c.env {
				t.Errorf("env %q, want %q", env, c.env)
			}
			id := ""
			switch {
			case o.RootID:
				id = "root"
			case o.ChangeSet:
				id = o.ChangeID
			}
			if id != c.id {
				t.Errorf("identity %q, want %q", id, c.id)
			}
			if c.workDir != "" && (!o.WorkDirSet || o.WorkDir != c.workDir) {
				t.Errorf("workdir %q (%v), want %q", o.WorkDir, o.WorkDirSet, c.workDir)
			}
		})
	}
	// No metadata.
	o := launch.Options{}
	if err := ApplyRun(&o, RunOptions{Dir: filepath.Join(base, "other")}); err == nil || !strings.Contains(err.Error(), "no image configuration") {
		t.Errorf("no metadata: %v", err)
	}
	// /etc/passwd a symlink to a host file: read inside the root only.
	os.Remove(filepath.Join(dir, "etc/passwd"))
	os.WriteFile(filepath.Join(base, "passwd"), []byte("evil:x:0:0::/:/bin/sh\n"), 0o644)
	os.Symlink("../../passwd", filepath.Join(dir, "etc/passwd"))
	write(Config{User: "evil"})
	if err := ApplyRun(&o, RunOptions{Dir: dir}); err == nil {
		t.Errorf("the user was found through a symlink out of the root")
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "4G": 4 << 30, "500M": 500 << 20, "1.5k": 1536, "2GiB": 2 << 30, "3mb": 3 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1Q", "9999999T"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func TestPruneLRU(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sha256"), 0o700)
	now := time.Now()
	for i, name := range []string{"old", "mid", "new"} {
		p := filepath.Join(dir, "sha256", name)
		os.WriteFile(p, make([]byte, 100), 0o600)
		ts := now.Add(time.Duration(i-3) * time.Hour)
		os.Chtimes(p, ts, ts)
	}
	part := filepath.Join(dir, "sha256", ".part-stale")
	os.WriteFile(part, []byte("x"), 0o600)
	os.Chtimes(part, now.Add(-2*time.Hour), now.Add(-2*time.Hour))
	r, err := Prune(dir, 250)
	if err != nil || r.Removed != 1 || r.Kept != 2 || r.KeptBytes != 200 {
		t.Fatalf("prune to 250: %+v %v", r, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sha256", "old")); !os.IsNotExist(err) {
		t.Error("the least recently used blob stayed")
	}
	if _, err := os.Stat(part); !os.IsNotExist(err) {
		t.Error("a stale partial download stayed")
	}
	if r, _ := Prune(dir, 0); r.Kept != 0 || r.Removed != 2 {
		t.Errorf("prune to 0: %+v", r)
	}
}

func TestProgressPlain(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf, false)
	b := p.Add("layer 1/1 sha256:abc", 2048)
	b.Downloading()
	b.Reader(strings.NewReader("x")).Read(make([]byte, 1))
	b.Extracting()
	b.Done()
	p.Stop()
	got := buf.String()
	for _, w := range []string{"layer 1/1 sha256:abc: downloading 2.0 KiB\n", "layer 1/1 sha256:abc: extracting 2.0 KiB\n", "layer 1/1 sha256:abc: done in"} {
		if !strings.Contains(got, w) {
			t.Errorf("plain progress %q lacks %q", got, w)
		}
	}
	if strings.Contains(got, "\x1b") {
		t.Errorf("escape sequences off a terminal: %q", got)
	}
	var tty bytes.Buffer
	p = NewProgress(&tty, true)
	b = p.Add("layer", 100)
	b.Downloading()
	p.Stop()
	if !strings.Contains(tty.String(), "\r\x1b[K") || !strings.Contains(tty.String(), "downloading") {
		t.Errorf("terminal progress %q", tty.String())
	}
}
