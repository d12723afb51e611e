#!/bin/sh
# Runs Go's standard-library tests for the file packages as wasip1 guests
# under `librahost run` (scripts/go_wasip1_exec as go test -exec), printing
# one line per package with its outcome and time. Extra arguments go to go
# test (for example -short or -run). Exits non-zero if a package fails.
#
#   scripts/stdlib.sh            # the whole list
#   PKGS="os io/fs" scripts/stdlib.sh -short
set -u
cd "$(dirname "$0")/.." || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/librahost" ./cmd/librahost || exit 1
export LIBRAHOST="$tmp/librahost"
exec_script="$PWD/scripts/go_wasip1_exec"
pkgs=${PKGS:-"os io/fs path/filepath io/ioutil bufio archive/tar archive/zip testing/fstest"}
status=0
for p in $pkgs; do
	start=$(date +%s.%N)
	if out=$(GOOS=wasip1 GOARCH=wasm go test -exec "$exec_script" "$@" "$p" 2>&1); then
		res=ok
	else
		res=FAIL
		status=1
	fi
	end=$(date +%s.%N)
	printf '%-16s %-4s %6.1fs\n' "$p" "$res" "$(echo "$end - $start" | bc)"
	if [ "$res" = FAIL ]; then
		echo "$out" | grep -E '^(--- FAIL|FAIL|panic)' | head -20
	fi
done
exit $status
