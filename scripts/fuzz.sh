#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a while each (the CI smoke
# run uses 10s):
#
#   scripts/fuzz.sh        # 10s per target
#   scripts/fuzz.sh 2m
#
# A target fails when the fuzzer reports a failing input (it then writes a
# reproducer under the package's testdata/fuzz/<Target>/, which this
# script names). Go 1.26's fuzz coordinator can also fail a clean run with
# a bare "context deadline exceeded" when -fuzztime ends while a worker is
# busy (golang/go#75804, fixed in Go 1.27); with no reproducer written and
# that message as the only failure, the run counts as passed.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${1:-${FUZZTIME:-10s}}
# Some targets write and fsync files on every input; on a RAM-backed
# folder that costs nothing.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	export TMPDIR=/dev/shm
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=()
ran=()
for dir in $(go list -f '{{.Dir}}' ./...); do
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
	for target in $targets; do
		pkg=./${dir#"$PWD"/}
		corpus=$dir/testdata/fuzz/$target
		before=$(ls "$corpus" 2>/dev/null | sort || true)
		echo "== $pkg $target ($fuzztime)"
		set +e
		go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" >"$log" 2>&1
		status=$?
		set -e
		ran+=("$target")
		if [ $status -eq 0 ]; then
			tail -n 1 "$log"
			continue
		fi
		after=$(ls "$corpus" 2>/dev/null | sort || true)
		new=$(comm -13 <(echo "$before") <(echo "$after"))
		if [ -z "$new" ] && grep -q '^    context deadline exceeded$' "$log" &&
			[ "$(grep -c -- '--- FAIL' "$log")" -eq 1 ]; then
			echo "   passed: no failing input (the run ended on the Go fuzz coordinator's deadline race)"
			continue
		fi
		cat "$log"
		[ -n "$new" ] && echo "   reproducer: $corpus/$new"
		failed+=("$target")
	done
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: ${#ran[@]} targets, failed: ${failed[*]}"
	exit 1
fi
echo "fuzz: ${#ran[@]} targets passed (${ran[*]})"
