#!/usr/bin/env bash
# Pruning speed and the latency it buys, for docs/BENCHMARKS.md "Pruning":
#
#   bench/results/prune-speed.sh          # WORK=/tmp/pare-bench RUNS=10
#
# 1. pare prune --ratio 0.5 (magnitude L2, global, channels) of torchvision
#    resnet50 (weights=None, opset 13, dynamic batch; exported with
#    /usr/bin/python3 into $WORK, not committed), timed by hyperfine in the
#    same run as bench/loadsave (pare's own load + save of the same model).
# 2. pare bench of the dense model, the pruned one and one pruned with
#    --round-to 8, batch 1 and 32, 1 thread, next to the MACs ratio from
#    pare prune --json.
# Prints Markdown.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-/tmp/pare-bench}
RUNS=${RUNS:-10}
PY=/usr/bin/python3
mkdir -p "$WORK"
MODEL=$WORK/resnet50_dyn.onnx
if [ ! -f "$MODEL" ]; then
	echo "exporting torchvision resnet50 (weights=None) to $MODEL" >&2
	"$PY" - "$MODEL" <<'PYEOF'
import sys, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.resnet50(weights=None).eval()
torch.onnx.export(m, torch.randn(1, 3, 224, 224), sys.argv[1], opset_version=13,
                  input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
PYEOF
fi
go build -o "$WORK/pare" ./cmd/pare
go build -o "$WORK/loadsave" ./bench/loadsave
PRUNED=$WORK/resnet50_pruned.onnx

hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$WORK/prune-speed.json" \
	-n loadsave "$WORK/loadsave $MODEL $WORK/ls.onnx" \
	-n prune "$WORK/pare prune $MODEL -o $PRUNED --ratio 0.5" >&2
"$WORK/pare" prune "$MODEL" -o "$PRUNED" --ratio 0.5 --json >"$WORK/prune.json"
"$WORK/pare" prune "$MODEL" -o "$WORK/resnet50_pruned_r8.onnx" --ratio 0.5 --round-to 8 --json >"$WORK/prune_r8.json"
"$WORK/pare" bench "$MODEL" "$PRUNED" "$WORK/resnet50_pruned_r8.onnx" --batch 1,32 --threads 1 --warmup 3 --runs "$RUNS" --json >"$WORK/bench.json"

"$PY" - "$WORK/prune-speed.json" "$WORK/prune.json" "$WORK/bench.json" "$(nproc)" <<'PYEOF'
import json, sys
hf = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
pr = json.load(open(sys.argv[2]))
bench = json.load(open(sys.argv[3]))
ls, pm = hf["loadsave"]["median"], hf["prune"]["median"]
print("| | median | mean ± sd |")
print("|---|---|---|")
for n, label in (("loadsave", "pare load + save (bench/loadsave)"), ("prune", "pare prune --ratio 0.5")):
    r = hf[n]
    print("| %s | %.0f ms | %.0f ± %.0f ms |" % (label, r["median"] * 1e3, r["mean"] * 1e3, r["stddev"] * 1e3))
print()
print("prune / load+save: **%.2f×** (goal ≤ 2×: %s); %d CPUs" % (pm / ls, "met" if pm / ls <= 2 else "MISSED", int(sys.argv[4])))
print()
b, a = pr["before"], pr["after"]
macs = b["macs"] / a["macs"]
print("params %d → %d, MACs %d → %d (MACs ratio %.2f×), file %.1f → %.1f MB" % (
    b["params"], a["params"], b["macs"], a["macs"], macs, b["bytes"] / 1e6, a["bytes"] / 1e6))
print()
models = bench["models"] if isinstance(bench, dict) else bench
pr8 = json.load(open(sys.argv[3].replace("bench.json", "prune_r8.json")))
macs8 = b["macs"] / pr8["after"]["macs"]
print("| model | batch | dense median | pruned median | speedup | MACs ratio | speedup / MACs ratio (goal ≥ 0.8) |")
print("|---|---|---|---|---|---|---|")
for label, m, mr in (("--ratio 0.5", models[1], macs), ("--ratio 0.5 --round-to 8", models[2], macs8)):
    for td, tp in zip(models[0]["timings"], m["timings"]):
        sp = td["median_ns"] / tp["median_ns"]
        print("| %s | %d | %.1f ms | %.1f ms | %.2f× | %.2f× | %.2f (%s) |" % (label, td["batch"], td["median_ns"] / 1e6,
              tp["median_ns"] / 1e6, sp, mr, sp / mr, "met" if sp / mr >= 0.8 else "MISSED"))
PYEOF
