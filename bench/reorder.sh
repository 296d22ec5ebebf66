#!/bin/bash
# Cost of reordering the channels inside grouped convolutions' groups
# before pruning with calibration data (pruner.AlignBlocks) against the
# same prune with --keep-order, alternating RUNS times: CPU seconds
# (user+sys) and peak RSS of `pare prune`, medians and their ratios.
#
#   MODEL=fmnist_regnet_op17 CALIB=fixtures/data/fmnist_unlabelled_x.npy RUNS=3 bench/reorder.sh
#
# FLAGS is the rest of the prune's command line (default: the one-step
# OBS path at 50% of the parameters, the cheapest data-aware prune, so
# the reordering's share is the largest).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-fmnist_regnet_op17}
CALIB=${CALIB:-fixtures/data/fmnist_unlabelled_x.npy}
FLAGS=${FLAGS:-"--ratio 0.5 --target params --criterion obs"}
RUNS=${RUNS:-3}
WORK=${WORK:-$(mktemp -d)}
go build -o "$WORK/pare" ./cmd/pare
run() { # run NAME [FLAGS...]: appends "cpu_seconds peak_kb" to WORK/NAME.runs
	name=$1
	shift
	/usr/bin/time -f "%U %S %M" -o "$WORK/$name.time" "$WORK/pare" prune "fixtures/models/$MODEL.onnx" -o "$WORK/$name.onnx" \
		--calib "$CALIB" $FLAGS "$@" >/dev/null 2>&1
	awk '{printf "%.2f %d\n", $1+$2, $3}' "$WORK/$name.time" >>"$WORK/$name.runs"
}
rm -f "$WORK"/*.runs
for _ in $(seq "$RUNS"); do
	run kept --keep-order
	run reordered
done
median() { sort -n -k"$2" "$WORK/$1.runs" | awk -v k="$2" '{v[NR]=$k} END{print v[int((NR+1)/2)]}'; }
echo "model $MODEL, $FLAGS, calibration $CALIB, $RUNS runs each, alternating"
echo "--keep-order: $(median kept 1) s CPU, peak $(median kept 2) KB (medians)"
echo "reordered:    $(median reordered 1) s CPU, peak $(median reordered 2) KB"
awk -v a="$(median kept 1)" -v b="$(median reordered 1)" -v c="$(median kept 2)" -v d="$(median reordered 2)" \
	'BEGIN{printf "ratio: CPU %.2f×, peak RSS %.2f×\n", b/a, d/c}'
