#!/bin/bash
# Cost of the gradient block fit (--fit-blocks) against the least-squares
# path it refines, on the same model, plan and calibration data, one run
# after the other: CPU seconds (user+sys) and peak RSS of `pare prune`,
# and their ratios.
#
#   MODEL=fmnist_vit_op17 FLAGS="--allocate sensitivity --prune-embed --head-dim --round-to 8" STEPS=200 bench/blockfit.sh
#
# With OUTPUT=W, the fit is also run with --fit-output W (the model
# output in every inner block's loss), and its CPU and peak RSS are
# given against the fit without it.
#
# With REF=<revision>, the fit is also run by pare built at that
# revision (a git worktree under WORK), after the current one, and its
# CPU and peak RSS are given against the reference's.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-fmnist_vit_op17}
FLAGS=${FLAGS:-"--allocate sensitivity --prune-embed --head-dim --round-to 8"}
STEPS=${STEPS:-200}
CALIB=${CALIB:-fixtures/data/fmnist_calib_x.npy}
WORK=${WORK:-$(mktemp -d)}
go build -o "$WORK/pare" ./cmd/pare
BIN=$WORK/pare
run() { # run NAME FIT [FLAGS...]: prints "cpu_seconds peak_kb"
	name=$1 fit=$2
	shift 2
	/usr/bin/time -f "%U %S %M" -o "$WORK/$name.time" "$BIN" prune "fixtures/models/$MODEL.onnx" -o "$WORK/$name.onnx" \
		--ratio 0.7 --target params --max-layer-ratio 0.8 --calib "$CALIB" --criterion obs --reconstruct $FLAGS --fit-blocks "$fit" "$@" >/dev/null 2>&1
	awk '{printf "%.1f %d\n", $1+$2, $3}' "$WORK/$name.time"
}
read -r lsCPU lsKB < <(run ls 0)
read -r fitCPU fitKB < <(run fit "$STEPS")
echo "model $MODEL, 70% of the parameters, $FLAGS, calibration $CALIB"
echo "least squares: ${lsCPU} s CPU, peak ${lsKB} KB"
echo "+ block fit ($STEPS steps per block): ${fitCPU} s CPU, peak ${fitKB} KB"
awk -v a="$lsCPU" -v b="$fitCPU" -v c="$lsKB" -v d="$fitKB" 'BEGIN{printf "ratio: CPU %.1f×, peak RSS %.2f×\n", b/a, d/c}'
if [ -n "${OUTPUT:-}" ]; then
	read -r outCPU outKB < <(run out "$STEPS" --fit-output "$OUTPUT")
	echo "+ block fit with --fit-output $OUTPUT: ${outCPU} s CPU, peak ${outKB} KB"
	awk -v a="$fitCPU" -v b="$outCPU" -v c="$fitKB" -v d="$outKB" 'BEGIN{printf "against the fit without it: CPU %.2f×, peak RSS %.2f×\n", b/a, d/c}'
fi
if [ -n "${REF:-}" ]; then
	git worktree add -q --detach "$WORK/ref" "$REF"
	(cd "$WORK/ref" && go build -o "$WORK/pare-ref" ./cmd/pare)
	git worktree remove --force "$WORK/ref"
	BIN=$WORK/pare-ref
	read -r refCPU refKB < <(run ref "$STEPS")
	echo "+ block fit at $REF: ${refCPU} s CPU, peak ${refKB} KB"
	awk -v a="$refCPU" -v b="$fitCPU" -v c="$refKB" -v d="$fitKB" 'BEGIN{printf "against %s: CPU %.2f×, peak RSS %.2f×\n", "'"$REF"'", b/a, d/c}'
fi
