#!/bin/sh
# Builds kbox-init (init.c) for each architecture into init_<arch>.bin, the
# programs internal/tier/unotify embeds. Run by `go generate` in that
# package; TestInitProgramUpToDate rebuilds and compares.
# Usage: build.sh [OUTDIR [ARCH...]]   (default: this directory, amd64 arm64)
# The compilers' versions are recorded in COMPILERS: the test compares only
# when its compilers are the same.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
[ $# -gt 0 ] && shift
arches=${*:-amd64 arm64}
flags="-static -nostdlib -ffreestanding -fno-stack-protector -fno-asynchronous-unwind-tables
  -fno-unwind-tables -fno-ident -fno-pie -no-pie -Os -Wall -Wextra -Werror
  -Wl,--build-id=none -Wl,-z,noexecstack -Wl,-z,norelro -Wl,-z,max-page-size=4096"
for arch in $arches; do
	case $arch in
	amd64) cc=x86_64-linux-gnu-gcc strip=x86_64-linux-gnu-strip ;;
	arm64) cc=aarch64-linux-gnu-gcc strip=aarch64-linux-gnu-strip ;;
	*) echo "build.sh: unknown architecture $arch" >&2; exit 2 ;;
	esac
	$cc $flags -o "$out/init_$arch.bin" "$here/init.c"
	$strip --strip-all "$out/init_$arch.bin"
	if [ "$out" = "$here" ]; then
		sed -i "/^$arch /d" "$here/COMPILERS" 2>/dev/null || true
		echo "$arch $($cc --version | head -1)" >>"$here/COMPILERS"
	fi
done
