package realprog

// task is one everyday job. Each of runs is a separate /bin/sh -c
// invocation (a separate kbox run) in /srv/rp/<name>, which the wrapper
// creates; stdout must be deterministic (the same natively on every run)
// because it is compared with the native run's. The tasks are independent
// of each other: each uses its own directory, user names and package names.
type task struct {
	name  string
	runs  []string
	net   bool   // needs the network (run only when the mirror answers)
	needs string // a path in the root the task needs (else: skipped)
}

func one(name, script string) task { return task{name: name, runs: []string{script}} }

var tasks = []task{
	// Shells and pipelines.
	one("sh-pipeline", `seq 1 20000 | grep 7 | sort -r | head -3 | tr 7 x; seq 5 | awk '{s+=$1} END {print s}'; echo done`),
	one("bash-features", `bash -c 'arr=(a b c); declare -A m; m[x]=1; echo ${#arr[@]} ${m[x]}; f() { local v=$1; echo $((v*2)); }; f 21; [[ abc == a* ]] && echo glob; echo ${PIPESTATUS[@]}; mapfile -t l < <(printf "1\n2\n"); echo ${#l[@]}; printf "%05.1f|%-3s|\n" 3.14159 ab'`),
	one("bash-jobs-signals", `bash -c 'sleep 0.2 & p=$!; wait $p; echo wait=$?; (exit 3); echo sub=$?; trap "echo trapped" USR1; kill -USR1 $$; echo after; sh -c "kill -TERM \$\$"; echo term=$?; timeout 0.3 sleep 5; echo timeout=$?'`),
	one("redirections-heredoc", `exec 3>out; echo hi >&3; exec 3>&-; cat out; { echo a; echo b 1>&2; } 2>err >o; cat o err
cat <<EOF | wc -l
one
two
EOF
while read -r a b; do echo "[$b/$a]"; done <<EOF
1 x
2 y
EOF
echo "$(echo nested $(echo deep))"`),
	one("shell-script-file", `cat > s.sh <<'EOF'
#!/bin/sh
set -eu
n=0
for f in a b c; do n=$((n+1)); printf '%s=%d\n' "$f" "$n"; done
case "$1" in x*) echo "starts with x";; esac
EOF
chmod +x s.sh; ./s.sh xyz; cat > p.py <<'EOF'
#!/usr/bin/env python3
import sys; print("py", sys.argv[1:])
EOF
chmod 755 p.py; ./p.py 1 2`),
	one("fifo-flock", `mkfifo p; (echo through-fifo > p &); cat p; flock lk -c 'echo locked'; flock -n lk true && echo free; stat -c %F p`),

	// Coreutils.
	one("coreutils-files", `mkdir -p a/b/c; touch a/b/c/f; cp -r a b; mv b c; ls -R c; rm -r a; ln -s c/b l; readlink l; stat -c %F l; ln c/b/c/f hard; stat -c %h hard; ls`),
	one("coreutils-text", `printf 'b\na\nc\na\n' > t; sort t | uniq -c; wc -l < t; cut -c1 t | paste -sd,; tr a-z A-Z < t | head -2; sed -n '2p;$p' t; od -An -c t | head -1; printf '1 x\n2 y\n' > j1; printf '1 p\n2 q\n' > j2; join j1 j2; nl -ba t | tail -1; tac t | head -1; rev t | head -1; expand t >/dev/null; md5sum t`),
	one("find-xargs", `mkdir d; for i in $(seq 1 120); do echo "$i" > d/f$i.txt; done; find d -name '*.txt' | sort | xargs -n 10 cat | wc -l; find d -name 'f1*.txt' -exec cat {} + | sort -n | tail -1; find d -type f -print0 | xargs -0 -P2 -n 20 sha256sum | wc -l; touch -d 2020-01-01 d/f1.txt; touch -d 2030-01-01 d/f2.txt; find d -newer d/f1.txt | wc -l; find d ! -newer d/f1.txt`),
	one("sort-large", `seq 300000 > n; sort -r n > r; sort -n -S 1M r | md5sum; md5sum < n; sort -R --random-source=n n | wc -l`),
	one("dd-truncate", `dd if=/dev/zero bs=1M count=16 2>/dev/null | md5sum; dd if=/dev/urandom of=rnd bs=4k count=10 2>/dev/null; stat -c %s rnd; truncate -s 1M rnd; stat -c %s rnd; truncate -s 10 rnd; stat -c %s rnd; head -c 3 /dev/zero | od -An -tx1`),
	one("install-cp-a", `mkdir -p src/sub; echo x > src/sub/f; chmod 640 src/sub/f; chmod 750 src/sub; ln -s sub/f src/link; cp -a src dst; stat -c '%a %F %n' dst dst/sub dst/sub/f dst/link; install -m 0750 -d inst; install -m 0640 src/sub/f inst/; stat -c '%a %n' inst inst/f; mkdir par; cp --parents src/sub/f par; stat -c '%a %n' par/src/sub par/src/sub/f`),
	one("sed-inplace-modes", `printf 'a\nb\n' > f; chmod 600 f; sed -i 's/a/A/' f; cat f; stat -c %a f; chmod 4755 f; stat -c %a f; chmod g+s,o-rx f; stat -c %a f`),
	one("umask", `umask 077; touch f; mkdir d; stat -c '%a %n' f d; umask 027; touch g; mkdir e; stat -c '%a %n' g e; cd /tmp; umask 077; touch tf; mkdir td; stat -c '%a %n' tf td; umask 022; python3 -c 'import os; os.umask(0o077); open("py","w"); print(oct(os.stat("py").st_mode & 0o777))'`),
	one("dev-fd", `ls /dev/fd/ | sort -n | tr '\n' ' '; echo; ls -l /dev/fd/ > /dev/null; echo ls=$?; readlink /dev/fd/0; exec 5<&0; ls /dev/fd/ | grep -c 5; echo hi > x; cat /dev/fd/3 3<x`),
	one("proc-self", `readlink /proc/self/exe; python3 -c 'import os; print(os.readlink("/proc/self/exe"))'; cat /proc/self/comm; sh -c 'echo $$ > pid; readlink /proc/$$/exe'; test -r /proc/self/status && echo status; grep -c . /proc/self/maps >/dev/null && echo maps; echo cwd $(readlink /proc/self/cwd)`),
	one("trailing-slash-stat", `python3 -c 'import os, stat
for p in ("/etc/", "/etc", "/usr/bin/"):
    print(p, oct(stat.S_IMODE(os.lstat(p).st_mode)), stat.S_ISDIR(os.lstat(p).st_mode))'; mkdir -p q/r; stat -c %a q/ q/r/`),

	// Archives and compressors.
	one("tar-xz-symlinks", `mkdir -p src/d; echo a > src/f; ln -s f src/l; ln -s d src/dl; ln -s /nonexistent src/dangling; ln src/f src/h; chmod 600 src/f; tar -cJf a.tar.xz src; mkdir out; tar -C out -xJf a.tar.xz; echo x=$?; diff -r --no-dereference src out/src && echo same; find out | sort | while read p; do printf '%s %s %s\n' "$p" "$(stat -c '%a %F %h' "$p")" "$(readlink "$p")"; done`),
	one("tar-gz-perms", `mkdir t; for m in 600 644 755 444 000; do echo $m > t/m$m; chmod $m t/m$m; done; tar czf t.tgz t; mkdir o; tar -C o -xpzf t.tgz; echo x=$?; stat -c '%a %n' o/t/*; tar tvzf t.tgz | awk '{print $1, $6}'`),
	one("tar-symlink-as-root", `ln -s x l; tar cf a.tar l; mkdir d; tar -C d -xf a.tar; echo x=$?; readlink d/l`),
	one("gzip-xz-bzip", `seq 100000 > n; gzip -9 -c n | gunzip | md5sum; xz -T2 -c n > n.xz; xz -dc n.xz | md5sum; gzip -k n; ls n n.gz; zcat n.gz | tail -1; xz -l n.xz >/dev/null && echo xzl`),

	// Python.
	one("python-basic", `python3 -c 'import json, hashlib, os, re, datetime
print(json.dumps({"a": [1, 2]}), hashlib.sha256(b"x").hexdigest()[:12], os.getcwd())
print(re.sub(r"(\d+)", lambda m: str(int(m.group(1))*2), "a1b22"), datetime.date(2020, 2, 29).isoformat())'`),
	one("python-subprocess", `python3 -c 'import subprocess
out = [subprocess.check_output(["echo", str(i)]).decode().strip() for i in range(25)]
print(" ".join(out))
r = subprocess.run("echo a | tr a b; exit 4", shell=True, capture_output=True, text=True)
print(r.returncode, r.stdout.strip())
p = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
print(p.communicate(b"piped")[0].decode(), p.returncode)
print(subprocess.call(["sh", "-c", "exit 7"]))'`),
	one("python-multiprocessing", `python3 -c 'import multiprocessing as mp
def sq(x): return x * x
if __name__ == "__main__":
    with mp.Pool(2) as p: print(sum(p.map(sq, range(200))))
    ctx = mp.get_context("spawn")
    q = ctx.Queue(); pr = ctx.Process(target=q.put, args=(42,)); pr.start(); print(q.get()); pr.join(); print(pr.exitcode)'`),
	one("python-asyncio-subprocess", `python3 -c 'import asyncio
async def main():
    p = await asyncio.create_subprocess_exec("sh", "-c", "echo hi; echo err >&2; exit 3", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    o, e = await p.communicate()
    print(o.decode().strip(), e.decode().strip(), p.returncode)
    ps = [await asyncio.create_subprocess_shell("echo %d" % i, stdout=asyncio.subprocess.PIPE) for i in range(5)]
    print(sorted([(await q.communicate())[0].decode().strip() for q in ps]))
asyncio.run(main())'`),
	one("python-threads", `python3 -c 'import threading, queue, concurrent.futures as cf
q = queue.Queue(); lock = threading.Lock(); n = [0]
def work(k):
    for _ in range(1000):
        with lock: n[0] += 1
    q.put(k)
ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(n[0], sorted(q.get() for _ in range(4)))
with cf.ThreadPoolExecutor(3) as ex: print(sum(ex.map(lambda x: x + 1, range(10))))'`),
	one("python-files", `python3 -c 'import os, shutil, tempfile, stat
os.makedirs("a/b/c", exist_ok=True)
for i in range(5): open("a/b/f%d" % i, "w").write(str(i))
os.chmod("a/b/f0", 0o600); os.symlink("f1", "a/b/l")
shutil.copytree("a", "c", symlinks=True)
print(sorted(os.listdir("c/b")), oct(stat.S_IMODE(os.stat("c/b/f0").st_mode)), os.readlink("c/b/l"))
with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, "x"); open(p, "w").close(); print(oct(stat.S_IMODE(os.stat(d).st_mode)), os.path.exists(p))
fd, p = tempfile.mkstemp(dir="."); print(oct(stat.S_IMODE(os.fstat(fd).st_mode)))
os.rename("c", "d"); shutil.rmtree("d"); print(sorted(os.listdir(".")) == sorted(["a", os.path.basename(p)]))'`),
	one("python-sqlite-compileall", `python3 -c 'import sqlite3
c = sqlite3.connect("t.db"); c.execute("pragma journal_mode=wal"); c.execute("create table t(x)")
c.executemany("insert into t values(?)", [(i,) for i in range(1000)]); c.commit()
print(c.execute("select count(*), sum(x) from t").fetchone())'; mkdir pkg; for i in 1 2 3; do echo "X = $i" > pkg/m$i.py; done; python3 -m compileall -q -j2 pkg && ls pkg/__pycache__ | wc -l`),

	// C toolchain.
	one("gcc-hello", `printf '#include <stdio.h>\nint main(void){puts("hello"); return 3;}\n' > h.c; gcc -O2 -Wall -o h h.c && ./h; echo rc=$?`),
	one("gcc-make-multifile", `mkdir src; cat > src/a.c <<'EOF'
#include "p.h"
int add(int a, int b) { return a + b; }
EOF
cat > src/b.c <<'EOF'
#include "p.h"
int mul(int a, int b) { int r = 0; for (int i = 0; i < b; i++) r = add(r, a); return r; }
EOF
cat > src/main.c <<'EOF'
#include <stdio.h>
#include "p.h"
int main(void) { printf("%d %d\n", add(2, 3), mul(6, 7)); return 0; }
EOF
printf 'int add(int, int);\nint mul(int, int);\n' > src/p.h
printf 'OBJS = a.o b.o main.o\nVPATH = src\nCFLAGS = -O2 -Isrc\nprog: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n%%.o: %%.c src/p.h\n\t$(CC) $(CFLAGS) -c -o $@ $<\nclean:\n\trm -f prog $(OBJS)\n.PHONY: clean\n' > Makefile
make -s -j2 && ./prog && make -s clean && ls && make -s -j2 && ./prog && touch src/a.c && make -q; echo q=$?`),
	one("gcc-many-files-make", `for i in $(seq 1 40); do printf 'int f%d(void) { return %d; }\n' $i $i > f$i.c; done
{ for i in $(seq 1 40); do printf 'int f%d(void);\n' $i; done; printf '#include <stdio.h>\nint main(void){int s=0;\n'; for i in $(seq 1 40); do printf 's+=f%d();\n' $i; done; printf 'printf("%%d\\n", s); return 0;}\n'; } > main.c
printf 'SRCS = $(wildcard *.c)\nprog: $(SRCS:.c=.o)\n\t$(CC) -o $@ $^\n' > Makefile; make -s -j2 && ./prog; ls *.o | wc -l`),
	one("gcc-pthread-static", `cat > t.c <<'EOF'
#include <pthread.h>
#include <stdio.h>
static int n; static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static void *run(void *a) { for (int i = 0; i < 100000; i++) { pthread_mutex_lock(&m); n++; pthread_mutex_unlock(&m); } return a; }
int main(void) { pthread_t t[4]; for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, run, 0); for (int i = 0; i < 4; i++) pthread_join(t[i], 0); printf("%d\n", n); return 0; }
EOF
gcc -O2 -pthread -o t t.c && ./t && gcc -O2 -static -pthread -o ts t.c && ./ts`),
	one("gcc-shared-lib-rpath", `printf 'int twice(int x) { return 2 * x; }\n' > lib.c; printf '#include <stdio.h>\nint twice(int);\nint main(void){printf("%%d\\n", twice(21)); return 0;}\n' > m.c
mkdir lib; gcc -shared -fPIC -o lib/libtw.so lib.c && gcc -o m m.c -Llib -ltw -Wl,-rpath,'$ORIGIN/lib' && ./m; LD_LIBRARY_PATH=lib ldd ./m | grep -c libtw`),
	one("configure-script", `cat > configure <<'EOF'
#!/bin/sh
# a configure-style probe script: compiler, headers, functions, substitution
CC=${CC:-cc}
echo "checking for a C compiler... $CC"
cat > conftest.c <<EOC
int main(void) { return 0; }
EOC
$CC conftest.c -o conftest 2>/dev/null && ./conftest || { echo "no working compiler"; exit 1; }
: > config.h
for h in stdio.h unistd.h sys/stat.h nonexistent_header.h; do
  printf '#include <%s>\nint main(void){return 0;}\n' "$h" > conftest.c
  if $CC -c conftest.c -o conftest.o 2>/dev/null; then
    d=$(echo "$h" | tr 'a-z./' 'A-Z__'); echo "#define HAVE_$d 1" >> config.h; echo "checking for $h... yes"
  else echo "checking for $h... no"; fi
done
for f in fork posix_spawn no_such_function_xyz; do
  printf 'char %s(void);\nint main(void){return (int)(long)%s;}\n' "$f" "$f" > conftest.c
  if $CC conftest.c -o conftest 2>/dev/null; then echo "checking for $f... yes"; else echo "checking for $f... no"; fi
done
rm -f conftest*
sed -e "s|@CC@|$CC|" -e "s|@PREFIX@|/usr/local|" Makefile.in > Makefile
echo "config.status: creating Makefile"
EOF
printf 'CC = @CC@\nPREFIX = @PREFIX@\nall:\n\t@echo building with $(CC) into $(PREFIX)\n' > Makefile.in
chmod +x configure; ./configure && make && cat config.h`),

	// Version control, databases, scripting.
	one("git-init-commit", `export GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z
git init -q -b main r && cd r && git config user.email a@b && git config user.name A
for i in 1 2 3; do echo $i > f$i; git add f$i; git commit -q -m "c$i"; done
git log --oneline | wc -l; git status --porcelain | wc -l; git rev-parse HEAD; git show --stat HEAD | tail -1`),
	one("git-branch-merge", `export GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z
git init -q -b main r && cd r && git config user.email a@b && git config user.name A
echo base > f; git add f; git commit -q -m base; git checkout -q -b topic; echo t > t; git add t; git commit -q -m topic
git checkout -q main; echo m > m; git add m; git commit -q -m main; git merge -q --no-edit topic; git log --oneline | wc -l; ls
git tag v1; git describe; git diff HEAD~1 --stat | tail -1; git stash list | wc -l`),
	one("git-clone-gc", `export GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z
git init -q -b main r && cd r && git config user.email a@b && git config user.name A
for i in $(seq 1 20); do echo $i >> f; git add f; git commit -q -m "c$i"; done; cd ..
git clone -q r c && git -C c log --oneline | wc -l; git clone -q --bare r b.git && git -C b.git gc -q && git -C b.git count-objects -v | grep -c packs; git -C c fsck --no-progress 2>&1 | wc -l; git -C c rev-parse HEAD`),
	one("sqlite3-cli", `sqlite3 db 'pragma journal_mode=wal; create table t(a integer primary key, b text); insert into t(b) values ("x"),("y"),("z"); select count(*), group_concat(b) from t;'; sqlite3 db 'select * from t where a=2'; sqlite3 -csv db 'select a, b from t order by a desc' ; echo '.tables' | sqlite3 db`),
	one("perl-basic", `perl -e 'my %h = (a => 1, b => 2); print join(",", map { "$_=$h{$_}" } sort keys %h), "\n"; $_ = "abc123"; /(\d+)/ and print "$1\n"; printf("%.3f\n", atan2(1,1)*4);'
perl -MFile::Find -e 'mkdir "d"; open F, ">d/x"; close F; find(sub { print "$_\n" if -f }, "d")'; perl -MPOSIX -e 'print POSIX::floor(2.7), "\n"'`),
	one("perl-processes", `perl -e 'my $p = fork; if (!$p) { exit 7 } waitpid($p, 0); print $? >> 8, "\n"; print scalar(`+"`echo back`"+`); print system("true") == 0 ? "sys\n" : "nosys\n"; open(my $fh, "-|", "echo", "piped") or die; print <$fh>;'`),

	// Administration.
	one("ssh-keygen", `ssh-keygen -q -t ed25519 -N '' -C rp -f k; echo gen=$?; stat -c '%a %n' k k.pub; ssh-keygen -y -f k | cut -d' ' -f1,2 > y; cut -d' ' -f1,2 k.pub | cmp - y && echo pub-matches; ssh-keygen -l -f k.pub | awk '{print $1, $NF}'; ssh-keygen -q -t rsa -b 2048 -N '' -f r; stat -c '%a' r`),
	one("dpkg-deb-build-install", `mkdir -p pkg/DEBIAN pkg/usr/local/bin pkg/usr/share/rp-hello; printf '#!/bin/sh\necho rp-hello-ran\n' > pkg/usr/local/bin/rp-hello; chmod 755 pkg/usr/local/bin/rp-hello
ln -s ../../local/bin/rp-hello pkg/usr/share/rp-hello/link; printf 'Package: rp-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: rp <rp@example.org>\nDescription: realprog test package\n' > pkg/DEBIAN/control
dpkg-deb --root-owner-group --build pkg rp-hello.deb >/dev/null; echo build=$?; dpkg-deb -c rp-hello.deb | awk '{print $1, $6}'; dpkg -i rp-hello.deb >/dev/null; echo install=$?; rp-hello; dpkg -s rp-hello | grep Status; stat -c '%a %U' /usr/local/bin/rp-hello; dpkg -r rp-hello >/dev/null; echo remove=$?; command -v rp-hello || echo gone`),
	one("dpkg-deb-extract", `mkdir -p pkg/DEBIAN pkg/opt/rpx; echo data > pkg/opt/rpx/f; ln -s f pkg/opt/rpx/l; chmod 444 pkg/opt/rpx/f; printf 'Package: rpx\nVersion: 1\nArchitecture: all\nMaintainer: rp <rp@example.org>\nDescription: x\n' > pkg/DEBIAN/control
dpkg-deb --build pkg x.deb >/dev/null && mkdir out && dpkg-deb -x x.deb out; echo x=$?; stat -c '%a %F %n' out/opt/rpx/f out/opt/rpx/l; readlink out/opt/rpx/l`),
	one("useradd-su", `useradd -m -s /bin/sh rpuser1; echo add=$?; id -u rpuser1 >/dev/null && echo exists; stat -c '%a %U %G' /home/rpuser1; su rpuser1 -c 'id -un; cd && touch mine && stat -c "%a %U" mine && echo $HOME; umask'; ls /home/rpuser1; userdel -r rpuser1; echo del=$?; test -e /home/rpuser1 || echo home-gone`),
	one("chown-dir-then-su", `useradd -M -u 2201 rpuser2; mkdir d; chown rpuser2 d; stat -c '%a %U' d; runuser -u rpuser2 -- touch d/f; echo touch=$?; runuser -u rpuser2 -- stat -c '%U' d/f; echo secret > s; chown rpuser2 s; chmod 600 s; runuser -u rpuser2 -- cat s; userdel rpuser2`),
	{name: "chown-chmod-second-run", runs: []string{
		`touch a b c; mkdir dd; chmod 0444 a; chmod 0 b; chmod 0 dd; chown 1234:4321 a; echo a=$?; chown 7:8 b; echo b=$?; chown 99 dd; echo dd=$?; chown -h 5:5 c; chmod 0 c; stat -c '%a %u %g %n' a b c dd; cat b > /dev/null; echo readb=$?; echo x >> a; echo appenda=$?`,
		`stat -c '%a %u %g %n' a b c dd; chown 0:0 a b c dd; chmod 644 a b c; chmod 755 dd; stat -c '%a %u %g %n' a b c dd`,
	}},
	one("chown-recursive-cp-a", `mkdir -p t/a/b; touch t/a/b/f t/g; chown -R 1000:1000 t; stat -c '%a %u %n' t t/a t/a/b t/a/b/f; cp -a t u; stat -c '%a %u %n' u u/a u/a/b u/a/b/f; mkdir -p x/y; chown 7 x; stat -c %a x`),
	one("ldd-ldconfig", `ldd /usr/bin/python3 | awk '{print $1}' | sort | head -3; ldconfig -p | grep -c libc.so.6; /lib64/ld-linux-x86-64.so.2 --list /bin/true | awk '{print $1}' | sort | head -2`),
	one("setpriv-drop", `setpriv --reuid=1000 --regid=1000 --clear-groups id -u; echo rc=$?; setpriv --reuid=1000 --regid=1000 --clear-groups sh -c 'touch /root/x 2>/dev/null; echo touch=$?'`),
	one("proc-status-ids", `grep -E '^(Uid|Gid):' /proc/self/status | awk '{print $1, $2, $3}'; su nobody -s /bin/sh -c "grep '^Uid:' /proc/self/status | awk '{print \$2}'"`),
	one("env-clean", `env | grep -c '^KBOX_'; env | cut -d= -f1 | sort | tr '\n' ' '`),
	one("gcc-asan", `printf '#include <stdlib.h>\n#include <stdio.h>\nint main(void){char *p = malloc(8); p[0] = 1; printf("%%d\\n", p[0]); free(p); return 0;}\n' > a.c; gcc -g -fsanitize=address,undefined -o a a.c && ./a; echo rc=$?`),
	one("pty-script", `script -qec 'tty >/dev/null && echo tty-ok; stty size >/dev/null 2>&1; echo stty=$?' /dev/null < /dev/null | tr -d '\r'`),
	one("id-env", `id -u; id -g; id -un; whoami; echo $HOME; getent passwd root | cut -d: -f1,3,6; test -w /etc/passwd && echo root-writes-etc`),

	// Local network and tools that need it.
	one("curl-local-http", `echo served > index.txt; python3 -c 'import http.server, socketserver, threading, sys
class Q(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
s = socketserver.TCPServer(("127.0.0.1", 0), Q); open("port", "w").write(str(s.server_address[1]))
s.serve_forever()' & pid=$!; for i in $(seq 1 100); do test -s port && break; sleep 0.1; done; curl -s http://127.0.0.1:$(cat port)/index.txt; echo curl=$?; kill $pid; wait $pid 2>/dev/null; true`),
	task{name: "node", needs: "usr/bin/node", runs: []string{`node -e 'console.log([1,2,3].map(x => x * 2).join(","))'; node -e 'const cp = require("child_process"); console.log(cp.execSync("echo from-child").toString().trim()); const r = cp.spawnSync("sh", ["-c", "exit 5"]); console.log(r.status)'; node -e 'const { Worker } = require("worker_threads"); const w = new Worker("require(\"worker_threads\").parentPort.postMessage(6*7)", { eval: true }); w.on("message", m => { console.log(m); w.terminate() })'; node -e 'require("fs").writeFileSync("n.txt", "x"); console.log(require("fs").statSync("n.txt").size)'`}},
	{name: "apt-get-update", net: true, runs: []string{`apt-get update -qq >/dev/null 2>err; echo update=$?; apt-cache show hello | grep -c '^Package: hello'`}},
	{name: "curl-mirror", net: true, runs: []string{`curl -sSI http://deb.debian.org/debian/dists/bookworm/Release | head -1 | cut -d' ' -f2; curl -sS http://deb.debian.org/debian/dists/bookworm/Release -o r && head -1 r`}},
	{name: "apt-get-install", net: true, runs: []string{`apt-get update -qq >/dev/null 2>&1; apt-get install -y -qq --no-install-recommends hello >/dev/null 2>err; echo install=$?; hello; dpkg -s hello | grep Status; apt-get purge -y -qq hello >/dev/null 2>&1; echo purge=$?`}},
}
