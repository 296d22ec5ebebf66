#!/usr/bin/env bash
# Prunes the KV groups of a cached decoding step and times it against the
# dense step at several past lengths (docs/BENCHMARKS.md, "KV groups with
# the cache").
#
#   bench/kvcache/run.sh [WORK]
#
# Needs /usr/bin/python3 with torch 1.13 (the export) and onnxruntime
# (ONNXRUNTIME_LIB or scripts/fetch-onnxruntime.sh). PAST lists the past
# lengths (default "128 512 2048"), RUNS the timed runs (default 50).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-/tmp/pare-kvcache}
mkdir -p "$WORK"
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$("$ROOT/scripts/fetch-onnxruntime.sh")}
PARE=$WORK/pare
(cd "$ROOT" && go build -o "$PARE" ./cmd/pare)
# 4 layers, hidden 1024, 8 query / 4 KV heads of 128, SwiGLU 2816, vocab 4096
[ -f "$WORK/kv.onnx" ] || /usr/bin/python3 -W ignore "$ROOT/bench/kvcache/export.py" "$WORK/kv.onnx"
"$PARE" prune "$WORK/kv.onnx" -o "$WORK/kv_groups.onnx" --kv-groups 0.5 --scope local
for P in ${PAST:-128 512 2048}; do
  S="input_ids=1,1;position_ids=1,1;attention_mask=1,$((P + 1))"
  for i in 0 1 2 3; do S="$S;past_k$i=1,4,$P,128;past_v$i=1,4,$P,128"; done
  echo "== past $P"
  "$PARE" bench "$WORK/kv.onnx" "$WORK/kv_groups.onnx" --input-shape "$S" --runs "${RUNS:-50}" --warmup 10
done
