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
scripts/build-kbox -o "$work/bin/kbox" || exit 2

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
	section=$(mktemp)
	{
		echo "<!-- realprog:begin (written by scripts/realprog.sh) -->"
		echo "kbox commit ${commit}${dirty}, $(date -u +%Y-%m-%d), Linux $(uname -r),"
		echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; suite wall"
		echo "time ${elapsed} s. Times are per task (all of its invocations)."
		echo
		cat "$report"
		echo "<!-- realprog:end -->"
	} > "$section"
	doc_file=docs/compatibility.md
	if [ -f "$doc_file" ] && grep -q '^<!-- realprog:begin' "$doc_file" && grep -q '^<!-- realprog:end' "$doc_file"; then
		# Replace the generated section only: the text around it is kept.
		awk -v sec="$section" '
			/^<!-- realprog:begin/ { while ((getline l < sec) > 0) print l; skip = 1; next }
			/^<!-- realprog:end/ { skip = 0; next }
			!skip { print }' "$doc_file" > "$doc_file.new" && mv "$doc_file.new" "$doc_file"
	else
		{
			cat <<HDR
# Compatibility with real programs

The real-programs suite (\`tests/realprog\`) runs everyday developer tasks in
a Debian 12 (bookworm) root built with debootstrap. Each task runs natively
(\`chroot\` as root), under \`kbox -S ROOT\` as root and under \`kbox -S ROOT\`
as uid 65534; a kbox run passes when its exit status and stdout equal the
native run's. Reproduce with \`sudo scripts/realprog.sh\`.

## Last result

HDR
			cat "$section"
		} > "$doc_file"
	fi
	rm -f "$section"
	echo "wrote $doc_file"
fi
rm -f "$report"
exit $rc
