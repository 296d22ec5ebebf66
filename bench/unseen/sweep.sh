#!/usr/bin/env bash
# Wider prune settings on a subset of the unseen models (after run.sh made them):
# one line per model and setting with pare prune's exit code, pare check's exit
# code (1 = ran, gate failed; 0 = outputs unchanged; 3/4 = does not run) and
# onnx.checker's verdict. Prints to stdout; the notes in docs/UNSEEN.md quote it.
#
#   PARE=/path/to/pare bench/unseen/sweep.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
P=${PARE:-/tmp/pare-unseen-work/pare}
TV=${UNSEEN_TV:-/tmp/pare-unseen}
W=${UNSEEN_WORK:-/tmp/pare-unseen-work}
D=$W/sweep; mkdir -p "$D"
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$("$ROOT/scripts/fetch-onnxruntime.sh")}
CNN="$TV/shufflenet_v2_x1_0_op13.onnx $TV/mnasnet0_5_op13.onnx $TV/mobilenet_v3_large_op17.onnx
     $TV/efficientnet_b0_op13.onnx $TV/regnet_y_400mf_op13.onnx $TV/squeezenet1_1_op13.onnx
     $TV/densenet121_op13.onnx $TV/googlenet_op13.onnx $TV/inception_v3_op13.onnx
     $TV/regnet_x_400mf_op13.onnx $ROOT/fixtures/models/shufflenet_v2_x05_op13.onnx"
TR="$W/models/bert_hf_op13.onnx $W/models/gpt2_tied_op17.onnx $TV/swin_t_op13.onnx
    $W/derived/vit_b_16_4layers_op13_novi.onnx $TV/convnext_tiny_op13.onnx $TV/maxvit_t_op17.onnx"
run() { # MODEL LABEL FLAGS...
  local m=$1 l=$2; shift 2
  local o=$D/$(basename "$m" .onnx).$l.onnx prc crc=- chk=-
  rm -f "$o"
  "$P" prune "$m" -o "$o" "$@" >/dev/null 2>"$D/err"; prc=$?
  if [ -f "$o" ]; then
    "$P" check "$m" "$o" --samples 2 >/dev/null 2>"$D/cerr"; crc=$?
    chk=$(/usr/bin/python3 "$ROOT/bench/unseen/helper.py" checker "$o" | head -c 120)
  fi
  echo "$(basename "$m" .onnx) $* | prune=$prc file=$([ -f "$o" ] && echo yes || echo no) check=$crc checker=$chk | $(tail -1 "$D/err" | head -c 200)"
  rm -f "$o"
}
for m in $CNN; do
  run "$m" r07 --ratio 0.7
  run "$m" local05 --ratio 0.5 --scope local
  run "$m" macs03 --ratio 0.3 --target macs
  run "$m" params05 --ratio 0.5 --target params
  run "$m" round8 --ratio 0.5 --round-to 8
  run "$m" rand05 --ratio 0.5 --criterion random --seed 3
done
for m in $TR; do
  run "$m" hm05 --heads 0.5 --mlp 0.5
  run "$m" hd05 --heads 0.5 --head-dim
  run "$m" r07e --ratio 0.7 --prune-embed
  run "$m" params05 --ratio 0.5 --target params
  run "$m" emb05 --embed 0.5
done
