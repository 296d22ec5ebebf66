#!/usr/bin/env bash
# Latency of pruned models against dense, for docs/BENCHMARKS.md "Pruned
# latency":
#
#   bench/prune-latency.sh      # WORK=/tmp/pare-prune-latency RUNS=10 REPEATS=3
#
# 1. Exports untrained torchvision models (bench/prunelat/export.py with
#    /usr/bin/python3: resnet50, mobilenet_v2, efficientnet_b0,
#    densenet121 and a 6-layer ViT-S/16; random weights, opset 13, dynamic
#    batch; cached in $WORK, never committed).
# 2. Prunes each with `pare prune M --ratio $RATIO --target macs` (default
#    flags otherwise) and each variant of $VARIANTS (name:flags, separated
#    by ";", for example "r8:--target macs --round-to 8" or
#    "lat:--target latency").
# 3. Times dense and pruned models together with bench/prunelat (batch 1
#    and 8, one thread, runs interleaved model by model), REPEATS times,
#    and prints one markdown row per model, variant and repeat: MACs
#    ratio, latency ratios to dense (median wall time and median CPU time
#    of the thread running the kernels) and the goal latency ratio ≤ MACs
#    ratio / 0.8 (judged on CPU time).
# CPU=min takes each model's least CPU time of the runs rather than the
# median (steadier on a loaded machine; what `--target latency` measures).
# MODELS picks the models; PY the Python with torch 1.13 / torchvision 0.14.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/pare-prune-latency}
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-2}
REPEATS=${REPEATS:-3}
RATIO=${RATIO:-0.5}
PY=${PY:-/usr/bin/python3}
MODELS=${MODELS:-resnet50 mobilenet_v2 efficientnet_b0 densenet121 vit_s}
VARIANTS=${VARIANTS:-}
CPU=${CPU:-median}
export ONNXRUNTIME_LIB="${ONNXRUNTIME_LIB:-$(bash scripts/fetch-onnxruntime.sh)}"
mkdir -p "$WORK"
# shellcheck disable=SC2086
"$PY" bench/prunelat/export.py "$WORK" $MODELS
go build -trimpath -o "$WORK/pare" ./cmd/pare
go build -trimpath -o "$WORK/prunelat" ./bench/prunelat
PARE="$WORK/pare"

echo "| model | variant | MACs ratio | b1 wall | b1 CPU | b8 wall | b8 CPU | goal (CPU ≤ MACs/0.8) |"
echo "|---|---|---|---|---|---|---|---|"
for M in $MODELS; do
	SRC="$WORK/$M.onnx"
	ARGS=("$SRC")
	"$PARE" prune "$SRC" -o "$WORK/$M.default.onnx" --ratio "$RATIO" --target macs >/dev/null
	ARGS+=("default=$WORK/$M.default.onnx")
	while IFS= read -r V; do
		[ -n "$V" ] || continue
		NAME=${V%%:*}
		FLAGS=${V#*:}
		# shellcheck disable=SC2086
		"$PARE" prune "$SRC" -o "$WORK/$M.$NAME.onnx" --ratio "$RATIO" $FLAGS >/dev/null
		ARGS+=("$NAME=$WORK/$M.$NAME.onnx")
	done < <(printf '%s\n' "$VARIANTS" | tr ';' '\n')
	for _ in $(seq "$REPEATS"); do
		"$WORK/prunelat" -md -cpu "$CPU" -label "$M" -batch 1,8 -warmup "$WARMUP" -runs "$RUNS" "${ARGS[@]}"
	done
done
