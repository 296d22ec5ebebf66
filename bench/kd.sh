#!/usr/bin/env bash
# Recovery by distillation (pare prune --recover kd) on the trained
# Fashion-MNIST models, for docs/RESULTS.md and docs/BENCHMARKS.md
# ("Recovery by distillation"):
#
#   bench/kd.sh        # WORK=/tmp/pare-kd RATIO=0.7 STEPS=200 JOBS=1
#
# For each model of $MODELS, under /usr/bin/time -v:
#   pare prune M -o plain.onnx --ratio $RATIO --target params --calib fmnist_calib_x.npy
#   the same with --recover kd --recover-steps $STEPS $KDFLAGS
#     (KDFLAGS defaults to --recover-data fixtures/data/fmnist_unlabelled_x.npy)
#   and, when REFFLAGS is set, once more with --recover kd --recover-steps
#     $REFSTEPS (default $STEPS) $REFFLAGS: a second setting measured
#     against the same pruned model, for example the plain distillation
#     of before, REFFLAGS="--recover-data fixtures/data/fmnist_unlabelled_x.npy
#     --recover-schedule constant --recover-mixup=false"
# then pare check (dense against each) on the labelled test images
# ($TESTX and $TESTY: the committed 1000 unless set, for example to the
# 10000 of `go run ./fixtures/gen/fmnisttest`),
# and prints one markdown row per model and setting: dense, pruned and
# distilled top-1, the checkpoint kept (from the kd notes), CPU
# (user+sys) and peak RSS of the runs without and with kd, and CPU
# seconds per step ((with − without) / steps), after a line with the
# commit built, the date and the load averages at the start and the
# end. JOBS models run at a time, niced.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/pare-kd}
RATIO=${RATIO:-0.7}
STEPS=${STEPS:-200}
JOBS=${JOBS:-1}
KDFLAGS=${KDFLAGS:---recover-data fixtures/data/fmnist_unlabelled_x.npy}
REFFLAGS=${REFFLAGS:-}
REFSTEPS=${REFSTEPS:-$STEPS}
TESTX=${TESTX:-fixtures/data/fmnist_test_x.npy}
TESTY=${TESTY:-fixtures/data/fmnist_test_y.npy}
MODELS=${MODELS:-fmnist_resnet_op17 fmnist_resnet_bn_op17 fmnist_vit_op17 fmnist_mobilenet_op17 fmnist_densenet_op17 fmnist_opnet_op12}
mkdir -p "$WORK"
go build -o "$WORK/pare" ./cmd/pare
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo +changes)
load0=$(cut -d' ' -f1-3 /proc/loadavg)

one() {
  local m=$1 d="$WORK/$1"
  mkdir -p "$d"; rm -f "$d"/*.onnx
  local common=(fixtures/models/$m.onnx --ratio "$RATIO" --target params --calib fixtures/data/fmnist_calib_x.npy)
  local variants=(plain kd)
  /usr/bin/time -v nice -n 10 "$WORK/pare" prune "${common[@]}" -o "$d/plain.onnx" >"$d/plain.log" 2>"$d/plain.time"
  # shellcheck disable=SC2086
  /usr/bin/time -v nice -n 10 "$WORK/pare" prune "${common[@]}" -o "$d/kd.onnx" --recover kd --recover-steps "$STEPS" $KDFLAGS >"$d/kd.log" 2>"$d/kd.time"
  if [ -n "$REFFLAGS" ]; then
    # shellcheck disable=SC2086
    /usr/bin/time -v nice -n 10 "$WORK/pare" prune "${common[@]}" -o "$d/ref.onnx" --recover kd --recover-steps "$REFSTEPS" $REFFLAGS >"$d/ref.log" 2>"$d/ref.time"
    variants+=(ref)
  fi
  for v in "${variants[@]}"; do
    nice -n 10 "$WORK/pare" check fixtures/models/$m.onnx "$d/$v.onnx" --inputs "$TESTX" \
      --labels "$TESTY" --max-acc-drop 100 --json >"$d/$v.check.json" || true
  done
}
export -f one
export WORK RATIO STEPS KDFLAGS REFFLAGS REFSTEPS TESTX TESTY
printf '%s\n' $MODELS | xargs -P "$JOBS" -I{} bash -c 'one {}'

acc() { sed -n '/"accuracy"/,/}/p' "$1" | sed -n "s/.*\"$2\": *\([0-9.]*\).*/\1/p" | head -1; }
cpu() { awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$1"; }
rss() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }
echo "built at $commit, $(date -u '+%Y-%m-%d %H:%M UTC'), load $load0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "kd: --recover-steps $STEPS $KDFLAGS; test images $TESTX"
[ -n "$REFFLAGS" ] && echo "ref: --recover-steps $REFSTEPS $REFFLAGS"
echo "| model | setting | dense | pruned | + kd | checkpoint | CPU without / with kd | CPU per step | peak RSS without / with kd |"
echo "|---|---|---|---|---|---|---|---|---|"
for m in $MODELS; do
  d="$WORK/$m"
  for v in kd ref; do
    [ -f "$d/$v.time" ] || continue
    s=$STEPS; [ "$v" = ref ] && s=$REFSTEPS
    dense=$(acc "$d/plain.check.json" reference); before=$(acc "$d/plain.check.json" candidate); after=$(acc "$d/$v.check.json" candidate)
    ck=$(cat "$d/$v.log" "$d/$v.time" | grep -o 'weights of step [0-9]* kept' | head -1 | awk '{print $4}')
    u0=$(cpu "$d/plain.time"); u1=$(cpu "$d/$v.time"); r0=$(rss "$d/plain.time"); r1=$(rss "$d/$v.time")
    awk -v m="$m" -v v="$v" -v a="$dense" -v b="$before" -v c="$after" -v k="$ck" -v u0="$u0" -v u1="$u1" -v r0="$r0" -v r1="$r1" -v s="$s" 'BEGIN {
      printf "| %s | %s | %.1f%% | %.1f%% | %.1f%% | step %s | %.1f s / %.1f s | %.3f s | %.0f MB / %.0f MB (%.1f×) |\n",
        m, v, 100*a, 100*b, 100*c, k, u0, u1, (u1-u0)/s, r0/1024, r1/1024, r1/r0 }'
  done
done
