# vm-run.sh - runs inside the arm64 test VM (scripts/arm64/init starts it
# with busybox sh): the unit-test binaries, then the integration suite, from
# the disk mounted at /mnt. Results go to /mnt/kbox/logs (read back by
# scripts/arm64-vm-test) and one line per binary to the console.
K=/mnt/kbox
L=$K/logs
mkdir -p "$L" /mnt/tmp
chmod 1777 /mnt/tmp
. "$K/vm-config"
export TMPDIR=/mnt/tmp HOME=/root LANG=C LC_ALL=C KBOX_FIXTURE_ROOT=$K/fixture KBOX_TEST_TIMEOUT_SCALE=4
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
: >"$L/results"
now() { cut -d' ' -f1 /proc/uptime; }
# run NAME DIR TIMEOUT BINARY ARGS...: one test binary in its package
# directory, in a session of its own (init's process group is 0).
run() {
	name=$1 dir=$2 tout=$3
	shift 3
	t0=$(now)
	(cd "$dir" && timeout "$tout" /usr/local/sbin/setsid-wait "$@" >"$L/$name.log" 2>&1)
	rc=$?
	t1=$(now)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
	echo "$name $rc $secs" >>"$L/results"
	echo "VM: $name exit $rc (${secs}s)"
}
if [ -s "$K/vm-cmd" ]; then
	# scripts/arm64-vm-test --cmd: a debugging command instead of the tests
	cd "$K" && KBOX_PREBUILT=$K/bin setsid-wait sh "$K/vm-cmd" 2>&1 | sed 's/^/VM: /'
	sync
	exit 0
fi
echo "VM: mode=$MODE unit=[$UNIT]"
for u in $UNIT; do
	name=${u%%:*}
	run "unit-$name" "$K/src/${u#*:}" 900 "$K/unit/$name.test" -test.v -test.timeout 15m $UNITFLAGS
done
if [ -n "$INTEGRATION" ]; then
	KBOX_PREBUILT=$K/bin KBOX_FIXTURE_ROOT=$K/fixture KBOX_REQUIRE_FIXTURE=1 \
		run integration "$K/src/tests/integration" 3600 "$K/unit/integration.test" -test.v -test.timeout 55m $ITFLAGS
fi
sync
