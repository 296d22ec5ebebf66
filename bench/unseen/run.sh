#!/usr/bin/env bash
# Runs pare on ONNX models the project has never seen and writes docs/UNSEEN.md.
#
#   bench/unseen/run.sh
#
# Needs /usr/bin/python3 with torch, torchvision and onnx (torch 1.13,
# torchvision 0.14, onnx 1.12 here), Go, and onnxruntime (fetched by
# scripts/fetch-onnxruntime.sh). Environment (all optional):
#   PARE          a pare binary to test (default: built from this tree)
#   UNSEEN_TV     folder of torchvision exports from fixtures/gen/unseen.py
#                 (default /tmp/pare-unseen; exported there when it has no index.json)
#   UNSEEN_EXTRA  more folders of models to include (space separated)
#   UNSEEN_WORK   scratch folder (default /tmp/pare-unseen-work)
#   UNSEEN_JOBS   models run at once (default 2)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
TV=${UNSEEN_TV:-/tmp/pare-unseen}
WORK=${UNSEEN_WORK:-/tmp/pare-unseen-work}
mkdir -p "$WORK/models" "$WORK/derived" "$WORK/retry"
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$("$ROOT/scripts/fetch-onnxruntime.sh")}
export OPENBLAS_NUM_THREADS=1

if [ -z "${PARE:-}" ]; then
  PARE=$WORK/pare
  (cd "$ROOT" && go build -o "$PARE" ./cmd/pare)
fi
export PARE_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- . ':!docs/UNSEEN.md' 2>/dev/null || echo "+local-changes")
[ -n "${PARE_COMMIT_OVERRIDE:-}" ] && PARE_COMMIT=$PARE_COMMIT_OVERRIDE

# 1. torchvision models that are not fixtures, opsets 13 and 17
[ -f "$TV/index.json" ] || "$PY" "$ROOT/fixtures/gen/unseen.py" "$TV"
# exports that failed there (an older unseen.py, say) are tried again with the current one
RETRY=$("$PY" -c 'import json,sys; print(",".join(sorted({e["name"].rsplit("_op",1)[0] for e in json.load(open(sys.argv[1])) if "error" in e})))' "$TV/index.json")
if [ -n "$RETRY" ] && [ ! -f "$WORK/retry/index.json" ]; then
  "$PY" "$ROOT/fixtures/gen/unseen.py" "$WORK/retry" --only "$RETRY" || true
fi
# 2. two transformers written like Hugging Face BERT and GPT-2
[ -f "$WORK/models/gpt2_tied_op17.onnx" ] || "$PY" "$ROOT/bench/unseen/extra.py" "$WORK/models"
# 3. variants: without value_info (torch writes it), and opset 18 (relabelled, see derive.py)
for m in resnet50_op13 mobilenet_v3_large_op17 shufflenet_v2_x1_0_op13 densenet121_op17 \
         inception_v3_op13 vit_b_16_4layers_op13 swin_t_op17 maxvit_t_op13; do
  [ -f "$TV/$m.onnx" ] && { [ -f "$WORK/derived/${m}_novi.onnx" ] || "$PY" "$ROOT/bench/unseen/derive.py" novi "$TV/$m.onnx" "$WORK/derived/${m}_novi.onnx"; }
done
for m in bert_hf_op13 gpt2_tied_op17; do
  [ -f "$WORK/derived/${m}_novi.onnx" ] || "$PY" "$ROOT/bench/unseen/derive.py" novi "$WORK/models/$m.onnx" "$WORK/derived/${m}_novi.onnx"
done
: > "$WORK/op18.log"
OP17=$("$PY" -c 'import json,sys; print(" ".join(sys.argv[2] + "/" + e["path"] for e in json.load(open(sys.argv[1])) if "error" not in e and e["opset"] == 17))' "$TV/index.json" "$TV")
for f in $OP17 "$WORK"/models/*_op17.onnx; do
  [ "$(stat -c %s "$f")" -gt $((300 * 1024 * 1024)) ] && continue
  b=$(basename "$f" _op17.onnx)
  [ -f "$WORK/derived/${b}_op18.onnx" ] && continue
  "$PY" "$ROOT/bench/unseen/derive.py" op18 "$f" "$WORK/derived/${b}_op18.onnx" 2>>"$WORK/op18.log" || true
done

# 4. inspect, groups, prune at 0.3 and 0.5, check in onnxruntime, onnx.checker; the report
"$PY" "$ROOT/bench/unseen/run.py" "$PARE" "$ROOT/docs/UNSEEN.md" "$WORK" "$TV" "$WORK/retry" "$WORK/models" "$WORK/derived" ${UNSEEN_EXTRA:-}
echo "wrote $ROOT/docs/UNSEEN.md"
