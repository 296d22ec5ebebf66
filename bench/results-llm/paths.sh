#!/usr/bin/env bash
# Which structured paths keep the trained decoder closest to dense, no
# fine-tuning, for docs/RESULTS.md ("LLM pruning: paths at 50% and 70%"):
#
#   bench/results-llm/paths.sh    # WORK=/tmp/pare-llm-paths RATIOS="0.5 0.7" MODEL=... CALIB=...
#
# For each ratio of $RATIOS and each configuration below, pare prune
# MODEL --ratio R --target params --calib CALIB plus the configuration's
# flags (a configuration that names --calib replaces CALIB), then
# pare check --metric ppl against the dense model on the
# 256 held-out windows of llama_test_ids.npy; global unstructured
# magnitude at 70% is the reference row. Prints one markdown row per
# configuration run: perplexity and next-token top-1 at each ratio, the
# fraction of the parameters actually removed and the user+sys CPU
# seconds of the prune. ONLY="name1 name2 unstructured" runs a subset;
# SUMMARY_ONLY=1 prints the rows of an earlier run in $WORK.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-/tmp/pare-llm-paths}
RATIOS=${RATIOS:-0.5 0.7}
M=${MODEL:-fixtures/models/llama_char_op17.onnx}
CALIB=${CALIB:-fixtures/data/llama_calib_ids.npy}
TEST=${TEST:-fixtures/data/llama_test_ids.npy}
mkdir -p "$WORK"
if [ -z "${SUMMARY_ONLY:-}" ]; then
  go build -o "$WORK/pare" ./cmd/pare
  echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- '*.go' || echo ' with uncommitted Go changes')" >"$WORK/built"
fi

# name|label|flags
CONFIGS=(
  "glob|obs + reconstruct, global|--criterion obs --reconstruct --allocate global"
  "sens|obs + reconstruct, sensitivity|--criterion obs --reconstruct --allocate sensitivity"
  "glob-emb|obs + reconstruct, global, embedding width|--criterion obs --reconstruct --allocate global --prune-embed"
  "sens-emb|obs + reconstruct, sensitivity, embedding width|--criterion obs --reconstruct --allocate sensitivity --prune-embed"
  "sens-emb-blk|obs + block reconstruct, sensitivity, embedding width|--criterion obs --reconstruct --reconstruct-blocks --allocate sensitivity --prune-embed"
  "sens-emb-hd|obs + reconstruct, sensitivity, embedding width, head dims|--criterion obs --reconstruct --allocate sensitivity --prune-embed --head-dim"
  "sens-emb-3|obs + reconstruct, sensitivity, embedding width, 3 steps|--criterion obs --reconstruct --allocate sensitivity --prune-embed --steps 3"
  "sens-emb-hd-3|obs + reconstruct, sensitivity, embedding width, head dims, 3 steps|--criterion obs --reconstruct --allocate sensitivity --prune-embed --head-dim --steps 3"
  "sens-emb-5|obs + reconstruct, sensitivity, embedding width, 5 steps|--criterion obs --reconstruct --allocate sensitivity --prune-embed --steps 5"
  "sens-emb-hd-5|obs + reconstruct, sensitivity, embedding width, head dims, 5 steps|--criterion obs --reconstruct --allocate sensitivity --prune-embed --head-dim --steps 5"
  "search|search (the default with --calib)|"
)

run() { # name, ratio, flags...
  local name=$1 r=$2; shift 2
  local out="$WORK/$name-$r"
  local calib=(--calib "$CALIB")
  [[ " $* " != *" --calib "* ]] || calib=()
  # shellcheck disable=SC2068
  if /usr/bin/time -v "$WORK/pare" prune "$M" -o "$out.onnx" --ratio "$r" --target params "${calib[@]}" $@ >"$out.log" 2>"$out.time"; then
    "$WORK/pare" check "$M" "$out.onnx" --inputs "$TEST" --metric ppl --json >"$out.check.json" || true
  else
    rm -f "$out.check.json"
  fi
}
num() { sed -n '/"perplexity"/,/}/p' "$1" | sed -n "s/.*\"$2\": *\([0-9.]*\).*/\1/p" | head -1; }
removed() { sed -n 's/^ *params .* \(-[0-9.]*%\)$/\1/p' "$1" | head -1 | tr -d -; }
cpu() { awk '/User time|System time/ {s += $NF} END {printf "%.0f", s}' "$1"; }
cell() { # name, ratio
  local f="$WORK/$1-$2.check.json"
  if [ ! -s "$f" ]; then
    echo -n " n/a ($(grep -o 'target not reachable[^;]*' "$WORK/$1-$2.log" "$WORK/$1-$2.time" 2>/dev/null | head -1 | cut -d: -f2- | cut -c1-60)) |"
    return
  fi
  awk -v p="$(num "$f" candidate)" -v a="$(num "$f" candidate_top1)" -v rm="$(removed "$WORK/$1-$2.log")" -v c="$(cpu "$WORK/$1-$2.time")" \
    'BEGIN { printf " %.3f / %.1f%% (%s removed, %s s) |", p, 100*a, rm, c }'
}

if [ -z "${SUMMARY_ONLY:-}" ]; then
  for c in "${CONFIGS[@]}"; do
    IFS='|' read -r name label flags <<<"$c"
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
    for r in $RATIOS; do
      echo "$(date -u +%T) $name $r (load $(cut -d' ' -f1 /proc/loadavg))" >&2
      run "$name" "$r" $flags
    done
  done
  if [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" unstructured "* ]]; then
    "$WORK/pare" prune "$M" -o "$WORK/unstructured-0.7.onnx" --unstructured --sparsity 0.7 >"$WORK/unstructured-0.7.log" 2>&1
    "$WORK/pare" check "$M" "$WORK/unstructured-0.7.onnx" --inputs "$TEST" --metric ppl --json >"$WORK/unstructured-0.7.check.json" || true
  fi
fi

f=$(ls "$WORK"/*.check.json | head -1)
echo "pare built at $(cat "$WORK/built" 2>/dev/null || echo '?')"
echo "dense: perplexity $(num "$f" reference), next-token top-1 $(num "$f" reference_top1)"
echo -n "| configuration |"; for r in $RATIOS; do echo -n " $r removed: ppl / top-1 |"; done; echo
echo -n "|---|"; for r in $RATIOS; do echo -n "---|"; done; echo
for c in "${CONFIGS[@]}"; do
  IFS='|' read -r name label flags <<<"$c"
  seen=
  for r in $RATIOS; do [ ! -e "$WORK/$name-$r.log" ] || seen=1; done
  [ -n "$seen" ] || continue
  echo -n "| $label |"
  for r in $RATIOS; do cell "$name" "$r"; done
  echo
done
if [ -s "$WORK/unstructured-0.7.check.json" ]; then
  f="$WORK/unstructured-0.7.check.json"
  awk -v p="$(num "$f" candidate)" -v a="$(num "$f" candidate_top1)" 'BEGIN { printf "| unstructured magnitude, 70%% of the weights zeroed (reference) | | %.3f / %.1f%% |\n", p, 100*a }'
fi
