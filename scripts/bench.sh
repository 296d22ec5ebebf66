#!/usr/bin/env bash
# Runs the Go benchmarks ten times and summarises them with benchstat.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_LIB="$(bash scripts/fetch-onnxruntime.sh)"
out="${BENCH_OUT:-/tmp/pare-bench.txt}"
go test -run '^$' -bench . -benchmem -count "${BENCH_COUNT:-10}" ./... | tee "$out"
go run golang.org/x/perf/cmd/benchstat@latest "$out"
