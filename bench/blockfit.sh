#!/bin/bash
# Cost of the gradient block fit (--fit-blocks) against the least-squares
# path it refines, on the same model, plan and calibration data, one run
# after the other: CPU seconds (user+sys) and peak RSS of `pare prune`,
# and their ratios.
#
#   MODEL=fmnist_vit_op17 FLAGS="--allocate sensitivity --prune-embed --head-dim --round-to 8" STEPS=200 bench/blockfit.sh
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
run() { # run NAME FIT: prints "cpu_seconds peak_kb"
	/usr/bin/time -f "%U %S %M" -o "$WORK/$1.time" "$BIN" prune "fixtures/models/$MODEL.onnx" -o "$WORK/$1.onnx" \
		--ratio 0.7 --target params --max-layer-ratio 0.8 --calib "$CALIB" --criterion obs --reconstruct $FLAGS --fit-blocks "$2" >/dev/null 2>&1
	awk '{printf "%.1f %d\n", $1+$2, $3}' "$WORK/$1.time"
}
read -r lsCPU lsKB < <(run ls 0)
read -r fitCPU fitKB < <(run fit "$STEPS")
echo "model $MODEL, 70% of the parameters, $FLAGS, calibration $CALIB"
echo "least squares: ${lsCPU} s CPU, peak ${lsKB} KB"
echo "+ block fit ($STEPS steps per block): ${fitCPU} s CPU, peak ${fitKB} KB"
awk -v a="$lsCPU" -v b="$fitCPU" -v c="$lsKB" -v d="$fitKB" 'BEGIN{printf "ratio: CPU %.1f×, peak RSS %.2f×\n", b/a, d/c}'
if [ -n "${REF:-}" ]; then
	git worktree add -q --detach "$WORK/ref" "$REF"
	(cd "$WORK/ref" && go build -o "$WORK/pare-ref" ./cmd/pare)
	git worktree remove --force "$WORK/ref"
	BIN=$WORK/pare-ref
	read -r refCPU refKB < <(run ref "$STEPS")
	echo "+ block fit at $REF: ${refCPU} s CPU, peak ${refKB} KB"
	awk -v a="$refCPU" -v b="$fitCPU" -v c="$refKB" -v d="$fitKB" 'BEGIN{printf "against %s: CPU %.2f×, peak RSS %.2f×\n", "'"$REF"'", b/a, d/c}'
fi
