#!/usr/bin/env bash
# The project's test command: installs the Debian packages the tests need
# when they are missing, then runs formatting, vet, staticcheck, the unit and
# integration tests (which also run guests as an unprivileged uid when
# started as root) and a short fuzz run of the parsers.
#
# Usage: scripts/test.sh [--quick]   (--quick: about two minutes here; skips
# staticcheck, -race, fuzzing and the benchmark smoke run, and runs the
# integration suite in -short form)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

need=()
for pkg in musl-tools busybox-static binutils binutils-aarch64-linux-gnu gcc gcc-aarch64-linux-gnu libc6-dev util-linux tmux procps chromium e2fsprogs; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "test.sh: installing ${need[*]}" >&2
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

export KBOX_REQUIRE_FIXTURE=1

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then
	echo "gofmt needed on:" $bad >&2
	exit 1
fi
echo "== go vet"
go vet ./...
echo "== CGO_ENABLED=0 build (seccomp tier only) and the PIE build (every tier)"
CGO_ENABLED=0 go build -o /dev/null ./cmd/kbox
CGO_ENABLED=0 go vet ./internal/tier/... ./internal/inproc/... ./cmd/...
go build -buildmode=pie -o /dev/null ./cmd/kbox
scripts/build-kbox -o /dev/null
if [ $quick -eq 0 ]; then
	echo "== staticcheck"
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
fi
echo "== go test"
if [ $quick -eq 1 ]; then
	# -short: the integration suite runs every tier once, under -S, as
	# the unprivileged uid (tests/integration/main_test.go); the full
	# run covers -r and root too.
	go test -count=1 -timeout 30m -short ./...
else
	go test -count=1 -timeout 45m ./...
	echo "== go test -race (the packages with concurrency; not the integration suite, which runs kbox binaries)"
	go test -race -count=1 ./internal/abi ./internal/dispatch ./internal/fdtable ./internal/inproc ./internal/launch \
		./internal/sandbox ./internal/tier/... ./internal/vfs ./internal/trace ./internal/web ./internal/image
	echo "== benchmark smoke run (no timing assertions)"
	go run ./bench --quick --no-install >/dev/null
fi
if [ $quick -eq 0 ]; then
	echo "== fuzz (short)"
	go test -run=^$ -fuzz=FuzzResolve -fuzztime=400000x -fuzzminimizetime=0s ./internal/vfs/
	go test -run=^$ -fuzz=FuzzApply -fuzztime=3000x -fuzzminimizetime=0s ./internal/image/
	go test -run=^$ -fuzz=FuzzCompileSimulate -fuzztime=150000x -fuzzminimizetime=0s ./internal/seccomp/
	go test -run=^$ -fuzz=FuzzParse -fuzztime=200000x -fuzzminimizetime=0s ./internal/loader/
	go test -run=^$ -fuzz=FuzzScript -fuzztime=200000x -fuzzminimizetime=0s ./internal/loader/
	go test -run=^$ -fuzz=FuzzScan -fuzztime=100000x -fuzzminimizetime=0s ./internal/forkscan/
	go test -run=^$ -fuzz=FuzzSummarize -fuzztime=100000x -fuzzminimizetime=0s ./internal/forkscan/
	go test -run=^$ -fuzz=FuzzPlanSites -fuzztime=200000x -fuzzminimizetime=0s ./internal/rewrite/
	go test -run=^$ -fuzz=FuzzARM64Plan -fuzztime=200000x -fuzzminimizetime=0s ./internal/rewrite/
	go test -run=^$ -fuzz=FuzzLen -fuzztime=200000x -fuzzminimizetime=0s ./internal/x86len/
fi
echo "== all tests passed"
