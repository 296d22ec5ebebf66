#!/usr/bin/env bash
# Peak RSS of pare quant --format qdq (the default minmax calibration on
# synthetic data) against the number of calibration samples, beside the
# issue-15 goal 1.5 × model size + 200 MB (docs/BENCHMARKS.md,
# "Calibration memory against the number of samples").
#
#   bench/calib-memory.sh                    # SAMPLES="2 16 64 256"
#   SAMPLES="2 64" MODELS="dec110 densenet121" bench/calib-memory.sh
#
# Models: untrained torchvision ResNet-50 and DenseNet-121 exported by
# bench/prunelat/export.py, and a 110 MB Llama-shaped decoder with
# external data from fixtures/gen/llama_big.py --size-mb 100; all
# generated once into $WORK (default /tmp/pare-calib-memory), not
# committed. Peak RSS does not depend on the machine's load; wall times
# do, so they are printed but not compared. PARE=path runs another build.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/pare-calib-memory}
SAMPLES=${SAMPLES:-2 16 64 256}
MODELS=${MODELS:-dec110 densenet121 resnet50}
PY=${PY:-/usr/bin/python3}
export ONNXRUNTIME_LIB="${ONNXRUNTIME_LIB:-$(bash scripts/fetch-onnxruntime.sh)}"
mkdir -p "$WORK/out"
if [ -z "${PARE:-}" ]; then
	go build -trimpath -o "$WORK/pare" ./cmd/pare
	PARE=$WORK/pare
fi
model() {
	case $1 in
	dec110)
		[ -f "$WORK/dec110/llama_big.onnx" ] || "$PY" fixtures/gen/llama_big.py "$WORK/dec110" --size-mb 100 >&2
		echo "$WORK/dec110/llama_big.onnx" ;;
	*)
		[ -f "$WORK/$1.onnx" ] || "$PY" bench/prunelat/export.py "$WORK" "$1" >&2
		echo "$WORK/$1.onnx" ;;
	esac
}
echo "load avg: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "| model | size | samples | peak RSS | goal | wall (load-dependent) |"
echo "|---|---:|---:|---:|---:|---:|"
for name in $MODELS; do
	M=$(model "$name")
	bytes=$(($(stat -c %s "$M") + $( [ -f "$M.data" ] && stat -c %s "$M.data" || echo 0)))
	for n in $SAMPLES; do
		/usr/bin/time -f '%e %M' -o "$WORK/time.log" "$PARE" quant "$M" --format qdq --calib-samples "$n" -o "$WORK/out/q.onnx" >/dev/null
		read -r s kb <"$WORK/time.log"
		rm -f "$WORK"/out/*
		awk -v m="$name" -v b="$bytes" -v n="$n" -v kb="$kb" -v s="$s" 'BEGIN {
			rss = kb * 1024 / 1e6; goal = 1.5 * b / 1e6 + 200
			printf "| %s | %.0f MB | %d | %.0f MB | %.0f MB %s | %s s |\n", m, b / 1e6, n, rss, goal, (rss <= goal ? "met" : "**missed**"), s }'
	done
done
echo "load avg: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
