#!/usr/bin/env bash
# Whole-command benchmark of an unchanged load + save of a >=100 MB model
# (BENCHMARKS.md, first row): pare against cp (the I/O floor) and Debian's
# python3-onnx (onnx.load + onnx.save), measured in one hyperfine run,
# plus peak RSS from /usr/bin/time -v. Prints a Markdown table for
# docs/BENCHMARKS.md.
#
#   bench/load-save.sh                 # resnet50, 102 MB, built in $WORK
#   MODEL=/path/to/model.onnx RUNS=30 bench/load-save.sh
#
# The model is torchvision resnet50 with random weights (weights=None),
# exported with /usr/bin/python3 into $WORK; it is not committed.
# pare's save is atomic and durable (temp file, fsync, rename, fsync of
# the folder); cp and onnx.save do not sync, so they pay less for I/O.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/tmp/pare-bench}
RUNS=${RUNS:-20}
PY=/usr/bin/python3
mkdir -p "$WORK"
MODEL=${MODEL:-$WORK/resnet50.onnx}

need() { # need TOOL PACKAGE
	command -v "$1" >/dev/null 2>&1 && return
	if [ "$(id -u)" = 0 ]; then
		apt-get install -y "$2" >/dev/null
	else
		echo "missing $1: apt-get install $2" >&2
		exit 1
	fi
}
need hyperfine hyperfine
[ -x /usr/bin/time ] || need /usr/bin/time time

if [ ! -f "$MODEL" ]; then
	echo "exporting torchvision resnet50 (weights=None) to $MODEL" >&2
	"$PY" - "$MODEL" <<'PYEOF'
import sys, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.resnet50(weights=None).eval()
torch.onnx.export(m, torch.randn(1, 3, 224, 224), sys.argv[1], opset_version=13)
PYEOF
fi

go build -o "$WORK/loadsave" ./bench/loadsave
size=$(stat -c %s "$MODEL")

hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$WORK/load-save.json" \
	-n cp "cp $MODEL $WORK/cp.onnx" \
	-n pare "$WORK/loadsave $MODEL $WORK/pare.onnx" \
	-n python-onnx "$PY -c 'import onnx,sys; onnx.save(onnx.load(sys.argv[1]), sys.argv[2])' $MODEL $WORK/py.onnx" >&2

# Peak RSS: median of 3 runs each.
rss() {
	for _ in 1 2 3; do
		/usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1
	done | sort -n | sed -n 2p
}
rss_pare=$(rss "$WORK/loadsave" "$MODEL" "$WORK/pare.onnx")
rss_py=$(rss "$PY" -c 'import onnx,sys; onnx.save(onnx.load(sys.argv[1]), sys.argv[2])' "$MODEL" "$WORK/py.onnx")

same="differ"
cmp -s "$WORK/pare.onnx" "$WORK/py.onnx" && same="are byte-identical"

"$PY" - "$WORK/load-save.json" "$size" "$rss_pare" "$rss_py" "$same" "$(nproc)" "$(go version | cut -d' ' -f3)" <<'PYEOF'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
size, rss_pare, rss_py = int(sys.argv[2]), int(sys.argv[3]) * 1024, int(sys.argv[4]) * 1024
MB = 1e6
def t(name):
    r = res[name]
    return "%.0f ms ± %.0f (median %.0f)" % (r["mean"] * 1e3, r["stddev"] * 1e3, r["median"] * 1e3)
cp, pare, py = (res[n]["median"] for n in ("cp", "pare", "python-onnx"))
rss_goal = 1.5 * size + 200 * MB
print("| | time (mean ± sd, median) | peak RSS |")
print("|---|---|---|")
print("| cp | %s | |" % t("cp"))
print("| pare load + save | %s | %.0f MB |" % (t("pare"), rss_pare / MB))
print("| python-onnx load + save | %s | %.0f MB |" % (t("python-onnx"), rss_py / MB))
print()
print("model %.1f MB; %d CPUs; %s; outputs of pare and python-onnx %s" % (size / MB, int(sys.argv[6]), sys.argv[7], sys.argv[5]))
print()
print("| ratio (medians) | measured | goal | |")
print("|---|---|---|---|")
print("| pare / cp | %.2f× | ≤ 3× | %s |" % (pare / cp, "met" if pare / cp <= 3 else "MISSED"))
print("| pare / python-onnx | %.2f× | ≤ 0.5× | %s |" % (pare / py, "met" if pare / py <= 0.5 else "MISSED"))
print("| pare peak RSS / (1.5 × size + 200 MB) | %.0f / %.0f MB | ≤ 1 | %s |" % (rss_pare / MB, rss_goal / MB, "met" if rss_pare <= rss_goal else "MISSED"))
PYEOF
