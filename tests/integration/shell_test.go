package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type shellCase struct {
	name   string
	script string
	want   func(root string, sysRoot bool, uid int) string // expected stdout
}

func fixed(s string) func(string, bool, int) string {
	return func(string, bool, int) string { return s }
}

func shellCases() []shellCase {
	return []shellCase{
		{
			name:   "pipeline",
			script: "ls /bin | grep sh | wc -l",
			want: func(root string, _ bool, _ int) string {
				ents, _ := os.ReadDir(filepath.Join(root, "bin"))
				n := 0
				for _, e := range ents {
					if strings.Contains(e.Name(), "sh") {
						n++
					}
				}
				return fmt.Sprintf("%d\n", n)
			},
		},
		{
			name:   "sort_uniq_awk",
			script: `printf 'b\na\nb\n' | sort | uniq -c | awk '{print $2 $1}'`,
			want:   fixed("a1\nb2\n"),
		},
		{
			name:   "command_substitution",
			script: `x=$(echo hello | tr a-z A-Z); echo "got $x"; echo $(( 6 * 7 )); echo "$(cat /etc/hostname)"`,
			want:   fixed("got HELLO\n42\nkbox-guest\n"),
		},
		{
			name:   "subshell_cd",
			script: `(cd /etc && pwd && cat hostname); pwd; cd /usr/bin && pwd && pwd -P && ls -d ../bin/sh`,
			want:   fixed("/etc\nkbox-guest\n/\n/usr/bin\n/bin\n../bin/sh\n"),
		},
		{
			name: "file_ops",
			script: `mkdir /tmp/fo && cd /tmp/fo && echo data > a && mv a b && ln -s b c && cat c && stat -c '%F %s' b && stat -c '%F' c && readlink c && ` +
				`cp b d && chmod 640 d && stat -c '%a' d && mkdir -p x/y/z && touch x/y/z/f && ls -R x | grep -c . && rm -r x && ` +
				`rm b && { cat c 2>/dev/null || echo gone; } && ls`,
			want: fixed("data\nregular file 5\nsymbolic link\nb\n640\n6\ngone\nc\nd\n"),
		},
		{
			name:   "find_xdev",
			script: "find / -xdev -name hostname | sort",
			want:   fixed("/bin/hostname\n/etc/hostname\n"),
		},
		{
			name: "tar",
			script: `mkdir /tmp/ta && cd /tmp/ta && mkdir -p t/sub && echo one > t/sub/f1 && echo two > t/f2 && ln -s sub/f1 t/l && tar cf t.tar t && ` +
				`mkdir out && cd out && tar xf ../t.tar && cat t/sub/f1 t/f2 t/l && readlink t/l && tar tf ../t.tar | sort`,
			want: fixed("one\ntwo\none\nsub/f1\nt/\nt/f2\nt/l\nt/sub/\nt/sub/f1\n"),
		},
		{
			name:   "here_document",
			script: "cat <<EOF > /tmp/h.txt\nline one\nvalue $((1+2))\nEOF\nwc -l < /tmp/h.txt\ncat /tmp/h.txt\ncat <<'EOF'\n$HOME `x`\nEOF\n",
			want:   fixed("2\nline one\nvalue 3\n$HOME `x`\n"),
		},
		{
			name:   "background_wait",
			script: `sleep 0.1 & wait $!; echo done $?; sh -c 'exit 3'; echo $?; (exit 4) || echo sub $?`,
			want:   fixed("done 0\n3\nsub 4\n"),
		},
		{
			name:   "id",
			script: "id -u; id -g",
			want: func(_ string, sysRoot bool, uid int) string {
				if sysRoot {
					return "0\n0\n"
				}
				return fmt.Sprintf("%d\n%d\n", uid, uid)
			},
		},
		{
			name:   "glibc_dynamic",
			script: "/bin/hello-glibc | head -n1; /bin/hello | head -n1; /bin/sc-glibc getpid | cut -d' ' -f1-2",
			want:   fixed("hello from glibc\nhello from musl\ngetpid: ok\n"),
		},
	}
}

// TestShell runs busybox shell scripts in -r and -S modes, as the invoking
// user and unprivileged.
func TestShell(t *testing.T) {
	t.Parallel()
	for _, mode := range rootModes() {
		forEachVariant(t, mode+"/", func(t *testing.T, v variant) {
			root := freshRoot(t, v.uid())
			for _, c := range shellCases() {
				t.Run(c.name, func(t *testing.T) {
					opts := runOpts{Unpriv: v.unpriv, Args: []string{mode, root, "--", "/bin/sh", "-c", c.script}}
					out, errOut, code := runKbox(t, opts)
					want := c.want(root, mode == "-S", v.uid())
					if code != 0 || out != want {
						t.Errorf("%s\nexit status %d (want 0)\nstdout:\n%s\nwant stdout:\n%s\nstderr:\n%s", cmdline(opts), code, out, want, errOut)
					}
				})
			}
		})
	}
}

// TestShellStdinScript feeds a script on standard input (default command).
func TestShellStdinScript(t *testing.T) {
	t.Parallel()
	root := fixtureRoot(t)
	opts := runOpts{Args: []string{"-r", root}, Stdin: "cd /etc\nread -r first < hostname\necho \"[$first]\"\nexit 5\n"}
	out, errOut, code := runKbox(t, opts)
	if code != 5 || out != "[kbox-guest]\n" {
		t.Errorf("%s\nexit %d (want 5), stdout %q (want %q)\nstderr:\n%s", cmdline(opts), code, out, "[kbox-guest]\n", errOut)
	}
}
