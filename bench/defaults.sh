#!/bin/bash
# Accuracy and cost of `pare prune` on trained models, one prune after
# the other: the default (`--ratio R --target params --calib X`, nothing
# else) unless FLAGS names a path, then `pare check` on the test set.
# Prints one markdown row per model and ratio: what the search picked,
# what was removed, the block fit's note, the test accuracy (or
# perplexity / top-1) against the dense model's, CPU (user + sys) and
# peak RSS of the prune.
#
#   CALIB=fixtures/data/fmnist_unlabelled_x.npy bench/defaults.sh
#   MODELS=llama_char_op17 CALIB=fixtures/data/llama_unlabelled_ids.npy \
#     TEST=fixtures/data/llama_test_ids.npy METRIC=ppl RATIOS=0.7 bench/defaults.sh
#   FLAGS="--criterion obs --reconstruct --allocate global --max-layer-ratio 0.8 --round-to 8 \
#     --fit-blocks 640 --fit-output 0.5" MODELS=fmnist_densenet_op17 RATIOS=0.7 bench/defaults.sh
#
# The Fashion-MNIST test set is the 10000 images `go run
# ./fixtures/gen/fmnisttest` writes (fixtures/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${MODELS:-"fmnist_resnet_bn_op17 fmnist_resnet_op17 fmnist_vit_op17 fmnist_opnet_op12 fmnist_mobilenet_op17 fmnist_densenet_op17"}
RATIOS=${RATIOS:-"0.5 0.7"}
CALIB=${CALIB:-fixtures/data/fmnist_calib_x.npy}
TEST=${TEST:-$HOME/.cache/pare/fmnist/fmnist_test10k_x.npy}
LABELS=${LABELS:-$HOME/.cache/pare/fmnist/fmnist_test10k_y.npy}
METRIC=${METRIC:-}
FLAGS=${FLAGS:-}
WORK=${WORK:-$(mktemp -d)}
go build -o "$WORK/pare" ./cmd/pare
check() { # check MODEL OUT: the test metric, "candidate (against dense)"
	if [ "$METRIC" = ppl ]; then
		"$WORK/pare" check "fixtures/models/$1.onnx" "$2" --inputs "$TEST" --metric ppl 2>&1 | tr '\n' ' ' |
			sed -E 's/.*reference ([0-9.]+), candidate ([0-9.]+).*top-1 +reference ([0-9.]+%), candidate ([0-9.]+%).*/\2 \/ \4 (dense \1 \/ \3)/'
	else
		"$WORK/pare" check "fixtures/models/$1.onnx" "$2" --inputs "$TEST" --labels "$LABELS" 2>&1 | grep 'accuracy' | tail -1 |
			sed -E 's/.*reference ([0-9.]+%), candidate ([0-9.]+%), drop ([-0-9.]+) points.*/\2 (drop \3 from \1)/'
	fi
}
fitNote() { # fitNote LOG: "N steps per block", and the output term's weight
	grep -o '[0-9]* Adam steps each\|blocks weighed the model output ([A-Za-z ]*) at [0-9.]*' "$1" |
		sed -E 's/ Adam steps each/ steps per block/; s/blocks weighed the model output \(([A-Za-z ]*)\) at/output \1/' | paste -sd ';' - | sed 's/;/; /' || true
}
echo "calibration $CALIB; ${FLAGS:-the default}"
echo
echo "| model | ratio | pick | removed | block fit | accuracy | CPU, peak RSS |"
echo "|---|---|---|---|---|---|---|"
for m in $MODELS; do
	for r in $RATIOS; do
		out=$WORK/$m-$r.onnx
		# shellcheck disable=SC2086 # FLAGS is a list of flags
		/usr/bin/time -f "%U %S %M" -o "$WORK/time" "$WORK/pare" prune "fixtures/models/$m.onnx" -o "$out" \
			--ratio "$r" --target params --calib "$CALIB" $FLAGS >"$WORK/log" 2>&1
		pick=$(grep -o 'search: picked [^(]*' "$WORK/log" | sed 's/search: picked //' || true)
		removed=$(grep -m1 -E '^ *params' "$WORK/log" | awk '{print $NF}')
		fit=$(fitNote "$WORK/log")
		cost=$(awk '{printf "%.0f s, %.2f GB", $1+$2, $3/1048576}' "$WORK/time")
		echo "| $m | $r | ${pick:-path} | $removed | ${fit:-none} | $(check "$m" "$out") | $cost |"
	done
done
