#!/bin/bash
# The default against single paths on several calibration draws of one
# size: how much of the default-against-best gap of one draw's table is
# the draw (docs/RESULTS.md, "Over four calibration draws").
# Draw A is fixtures/data/fmnist_calib_x.npy; B, C, D are training
# images 0-255, 256-511 and 512-767 of `go run ./fixtures/gen/fmnisttest
# -train 4096 -out DIR` (the reproducible draw). For each model and draw
# it prunes with the default (`--ratio R --target params --calib X`)
# and with each path of the tables' block-fit rows, then `pare check` on
# the 10000 test images. Prints one row per prune: model, draw, path,
# accuracy, share of params removed, the default's pick.
#
#   DIR=~/.cache/pare/fmnist bench/draws.sh
#   MODELS=fmnist_vit_op17 RATIO=0.5 bench/draws.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${MODELS:-"fmnist_regnet_op17 fmnist_mobilenet_op17 fmnist_vit_op17"}
RATIO=${RATIO:-0.7}
DIR=${DIR:-$HOME/.cache/pare/fmnist}
TEST=${TEST:-$DIR/fmnist_test10k_x.npy}
LABELS=${LABELS:-$DIR/fmnist_test10k_y.npy}
WORK=${WORK:-$(mktemp -d)}
go build -o "$WORK/pare" ./cmd/pare
cp fixtures/data/fmnist_calib_x.npy "$WORK/A.npy"
from=0
for d in B C D; do
	go run ./bench/npyslice -in "$DIR/fmnist_train_x.npy" -from $from -n 256 -out "$WORK/$d.npy"
	from=$((from + 256))
done
ROW="--max-layer-ratio 0.8 --round-to 8 --criterion obs --reconstruct --fit-blocks 200"
paths() { # paths MODEL: name|flags, one per line
	echo "default|"
	echo "global|$ROW --allocate global"
	echo "sensitivity|$ROW --allocate sensitivity"
	echo "global, 5 steps|$ROW --allocate global --steps 5"
	echo "sensitivity, 5 steps|$ROW --allocate sensitivity --steps 5"
	if [ "$1" = fmnist_vit_op17 ]; then
		echo "sensitivity, embedding width, head dims|$ROW --allocate sensitivity --prune-embed --head-dim"
		echo "sensitivity, embedding width, head dims, 5 steps|$ROW --allocate sensitivity --prune-embed --head-dim --steps 5"
	fi
}
echo "| model | draw | path | accuracy | removed | pick |"
echo "|---|---|---|---|---|---|"
for m in $MODELS; do
	for d in A B C D; do
		paths "$m" | while IFS='|' read -r name flags; do
			out=$WORK/$m-$d.onnx
			# shellcheck disable=SC2086 # flags is a list of flags
			if ! "$WORK/pare" prune "fixtures/models/$m.onnx" -o "$out" --ratio "$RATIO" --target params \
				--calib "$WORK/$d.npy" $flags >"$WORK/log" 2>&1; then
				echo "| $m | $d | $name | refused: $(tail -1 "$WORK/log" | cut -c1-120) | | |"
				continue
			fi
			# pare check exits 1 when the outputs differ, as they do here.
			acc=$("$WORK/pare" check "fixtures/models/$m.onnx" "$out" --inputs "$TEST" --labels "$LABELS" 2>&1 |
				grep accuracy | tail -1 | sed -E 's/.*candidate ([0-9.]+%).*/\1/' || true)
			removed=$(grep -m1 -E '^ *params' "$WORK/log" | awk '{print $NF}')
			pick=$(grep -o 'search: picked [^(]*' "$WORK/log" | sed 's/search: picked //; s/ of [0-9]* candidates *$//' || true)
			echo "| $m | $d | $name | $acc | $removed | $pick |"
			rm -f "$out"
		done
	done
done
