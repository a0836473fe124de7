#!/usr/bin/env bash
# The real-programs suite (tests/realprog): builds kbox, builds (once,
# cached at /var/cache/kbox-realprog/root or $KBOX_REALPROG_ROOT) a Debian 12
# developer root with debootstrap, runs ~50 everyday tasks natively (chroot),
# under kbox -S as root and under kbox -S as uid 65534, prints the table of
# tasks x variants with times and the time ratio kbox/native, and writes it
# into docs/compatibility.md.
#
# Usage: sudo scripts/realprog.sh [--no-doc] [TASK,TASK...]
#   --no-doc   do not rewrite docs/compatibility.md
#   TASKS      run only these tasks (comma-separated names)
# Needs root (chroot, debootstrap, setpriv). Exits non-zero when any kbox run
# differs from the native one.
set -uo pipefail
cd "$(dirname "$0")/.."

doc=1
if [ "${1:-}" = "--no-doc" ]; then doc=0; shift; fi
only="${1:-}"
[ -n "$only" ] && doc=0 # a partial run does not describe the suite

if [ "$(id -u)" -ne 0 ]; then
	echo "realprog.sh: must run as root (chroot, debootstrap, setpriv)" >&2
	exit 2
fi

work="${KBOX_REALPROG_WORK:-/var/tmp/kbox-realprog-work}"
mkdir -p "$work" && chmod 755 "$work"
echo "== building kbox"
mkdir -p "$work/bin" && chmod 755 "$work/bin"
go build -buildmode=pie -o "$work/bin/kbox" ./cmd/kbox || exit 2

report=$(mktemp)
log=$(mktemp)
start=$(date +%s)
KBOX_REALPROG=1 KBOX_BIN="$work/bin/kbox" KBOX_REALPROG_REPORT="$report" KBOX_REALPROG_ONLY="$only" \
	go test -count=1 -timeout 60m -v -run '^TestRealPrograms$' ./tests/realprog/ >"$log" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
grep -E '^\s+realprog_test.go:[0-9]+: [a-z0-9-]+: (kbox|kbox-u|native)|^\*\*\*' "$log" | head -200
echo
if [ -s "$report" ]; then
	cat "$report"
else
	echo "realprog.sh: no report written; the test log follows" >&2
	tail -50 "$log" >&2
fi
echo "(suite wall time ${elapsed}s; full log: $log)"

if [ $doc -eq 1 ] && [ -s "$report" ]; then
	commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	dirty=""
	git diff --quiet HEAD 2>/dev/null || dirty=" (with uncommitted changes)"
	{
		cat <<HDR
# Compatibility with real programs

The real-programs suite (\`tests/realprog\`) runs everyday developer tasks in
a Debian 12 (bookworm) root built with debootstrap: shells and pipelines,
coreutils, tar/xz/gzip with symlinks and modes, python3 (subprocess,
multiprocessing, asyncio, threads), gcc and make, a configure-style script,
git, sqlite3, perl, ssh-keygen, dpkg-deb and dpkg, useradd and su, chown and
chmod sequences, umask, /dev/fd, /proc/self, node, and (when the network is
reachable) apt-get and curl to the Debian mirror. Each task runs

- **native**: \`chroot\` into a copy of the root, as root, with /proc, /dev and
  a private /tmp mounted;
- **kbox**: \`kbox -S ROOT\` as root;
- **kbox-u**: \`kbox -S ROOT\` as uid 65534 (\`setpriv --reuid=65534
  --regid=65534 --clear-groups\`) on a copy of the root owned by 65534.

A kbox run passes when its exit status and its stdout equal the native run's
(every task's output is deterministic; stderr is not compared). Failures are
not expected-failure-marked: the table shows what a user meets today.
Tasks are defined in \`tests/realprog/tasks_test.go\`.

## Reproduce

\`\`\`sh
sudo scripts/realprog.sh            # builds kbox and the cached root, runs all tasks, rewrites this file
sudo scripts/realprog.sh --no-doc sh-pipeline,umask   # some tasks only
# or directly:
sudo KBOX_REALPROG=1 go test -count=1 -v -run TestRealPrograms ./tests/realprog/
\`\`\`

The root is cached at \`/var/cache/kbox-realprog/root\` (\`\$KBOX_REALPROG_ROOT\`);
the per-variant copies are in \`/var/tmp/kbox-realprog-work\`.

## Last result

kbox commit ${commit}${dirty}, $(date -u +%Y-%m-%d), Linux $(uname -r),
$(nproc) CPUs; suite wall time ${elapsed} s. Times are per task (all of its
invocations).

HDR
		cat "$report"
	} > docs/compatibility.md
	echo "wrote docs/compatibility.md"
fi
rm -f "$report"
exit $rc
