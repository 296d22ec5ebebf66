#!/usr/bin/env bash
# Recovery by distillation (pare prune --recover kd) on the trained
# Llama-style decoder, for docs/RESULTS.md and docs/BENCHMARKS.md
# ("Recovery by distillation"):
#
#   bench/kd-llm.sh    # WORK=/tmp/pare-kd-llm RATIOS="0.5 0.7" STEPS=200
#
# For each ratio of $RATIOS, under /usr/bin/time -v:
#   pare prune llama_char_op17.onnx -o plain.onnx --ratio R --target params --calib llama_calib_ids.npy
#   the same with --recover kd --recover-steps $STEPS --recover-data llama_unlabelled_ids.npy
# and global unstructured magnitude at $UNSTRUCTURED (--unstructured
# --sparsity S), then pare check --metric ppl (dense against each) on
# the 256 held-out windows of llama_test_ids.npy, and prints one
# markdown row per run: perplexity, next-token top-1, the checkpoint
# kept (from the kd notes), user+sys CPU and peak RSS, and for kd the
# CPU seconds per step ((kd − plain) / STEPS). SUMMARY_ONLY=1 prints
# the rows of an earlier run in $WORK.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/pare-kd-llm}
RATIOS=${RATIOS:-0.5 0.7}
STEPS=${STEPS:-200}
UNSTRUCTURED=${UNSTRUCTURED:-0.7}
M=fixtures/models/llama_char_op17.onnx
CALIB=fixtures/data/llama_calib_ids.npy
mkdir -p "$WORK"
[ -n "${SUMMARY_ONLY:-}" ] || go build -o "$WORK/pare" ./cmd/pare

run() { # name, prune flags...
  local name=$1; shift
  /usr/bin/time -v "$WORK/pare" prune "$M" -o "$WORK/$name.onnx" "$@" >"$WORK/$name.log" 2>"$WORK/$name.time"
  "$WORK/pare" check "$M" "$WORK/$name.onnx" --inputs fixtures/data/llama_test_ids.npy --metric ppl --json >"$WORK/$name.check.json" || true
}
# num FILE KEY: a number of the perplexity block of pare check --json.
num() { sed -n '/"perplexity"/,/}/p' "$1" | sed -n "s/.*\"$2\": *\([0-9.]*\).*/\1/p" | head -1; }
cpu() { awk '/User time|System time/ {s += $NF} END {print s}' "$1"; }
rss() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }
row() { # name, label
  local f="$WORK/$1.check.json" ck
  ck=$(cat "$WORK/$1.log" "$WORK/$1.time" | grep -o 'weights of step [0-9]* kept' | head -1 | awk '{print "step " $4}' || true)
  awk -v l="$2" -v p="$(num "$f" candidate)" -v a="$(num "$f" candidate_top1)" -v ck="${ck:--}" \
    -v c="$(cpu "$WORK/$1.time")" -v r="$(rss "$WORK/$1.time")" 'BEGIN {
    printf "| %s | %.3f | %.1f%% | %s | %.1f s | %.0f MB |\n", l, p, 100*a, ck, c, r/1024 }'
}

[ -n "${SUMMARY_ONLY:-}" ] || for r in $RATIOS; do
  run "plain-$r" --ratio "$r" --target params --calib "$CALIB"
  run "kd-$r" --ratio "$r" --target params --calib "$CALIB" --recover kd --recover-steps "$STEPS" \
    --recover-data fixtures/data/llama_unlabelled_ids.npy
done
[ -n "${SUMMARY_ONLY:-}" ] || run "unstructured-$UNSTRUCTURED" --unstructured --sparsity "$UNSTRUCTURED"

f="$WORK/plain-${RATIOS%% *}.check.json"
echo "dense: perplexity $(num "$f" reference), next-token top-1 $(num "$f" reference_top1)"
echo "| run | perplexity | top-1 | checkpoint | CPU (user+sys) | peak RSS |"
echo "|---|---|---|---|---|---|"
for r in $RATIOS; do
  row "plain-$r" "$r removed, --calib"
  row "kd-$r" "$r removed, --calib + --recover kd ($STEPS steps)"
  awk -v a="$(cpu "$WORK/kd-$r.time")" -v b="$(cpu "$WORK/plain-$r.time")" -v s="$STEPS" -v r="$r" \
    'BEGIN { printf "kd at %s: %.2f s CPU per step\n", r, (a-b)/s }' >&2
done
row "unstructured-$UNSTRUCTURED" "unstructured magnitude $UNSTRUCTURED"
