#!/usr/bin/env bash
# Cost growth with model size (docs/BENCHMARKS.md, "Cost growth"): wall
# time and peak RSS of load+save, inspect, prune (analysis = --dry-run,
# apply, OBS), and quant (nbits RTN, GPTQ, QDQ with its calibration) on
# Llama-shaped decoders of about 1 MB to 3 GB (fixtures/gen/llama_big.py,
# seeded, weights in external data), each beside a synced copy (dd
# conv=fsync) of the model's files measured in the same run. Prints one
# Markdown table (wall and user+system CPU time, time / copy, peak RSS,
# RSS / size) and the log-log slope of each step's time and peak RSS
# against size (least squares over the sizes it ran at).
#
#   bench/cost-growth.sh                           # SIZES="1 10 100 1000 3000"
#   SIZES="1 10 100" MAX_GPTQ=100 bench/cost-growth.sh
#
# GPTQ and OBS are cubic in layer width and run only up to MAX_GPTQ and
# MAX_OBS MB (default 100); QDQ up to MAX_QDQ (default 1000). Models are
# generated once into $WORK (default ~/.cache/pare/growth) and kept.
# Takes tens of minutes at the largest size; not run in CI. Run it alone:
# the 3 GB steps need several GB of memory.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$(bash scripts/fetch-onnxruntime.sh)}
WORK=${WORK:-$HOME/.cache/pare/growth}
SIZES=${SIZES:-1 10 100 1000 3000}
MAX_GPTQ=${MAX_GPTQ:-100}
MAX_OBS=${MAX_OBS:-100}
MAX_QDQ=${MAX_QDQ:-1000}
mkdir -p "$WORK"
PARE=$WORK/pare
go build -o "$PARE" ./cmd/pare
go build -o "$WORK/loadsave" ./bench/loadsave
RES=$WORK/results.txt
: >"$RES"
echo "load avg: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# run SIZE LABEL CMD... : appends "SIZE LABEL seconds maxrss_kb cpu_s rc"
run() {
	local size=$1 label=$2
	shift 2
	local log=$WORK/time.log rc=0
	/usr/bin/time -f '%e %M %U %S' -o "$log" "$@" >"$WORK/$label.out" 2>&1 || rc=$?
	read -r s kb u sy <"$log" || true
	echo "$size $label $s $kb $(echo "$u + $sy" | bc) $rc" | tee -a "$RES" >&2
}

for size in $SIZES; do
	dir=$WORK/$size
	M=$dir/llama_big.onnx
	if [ ! -f "$M" ]; then
		/usr/bin/python3 fixtures/gen/llama_big.py "$dir" --size-mb "$size" 2>&1 | grep -v -i warn >&2
	fi
	if [ ! -f "$dir/calib.npy" ]; then
		/usr/bin/python3 -c 'import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(0).integers(0, 256, (16, 8), dtype=np.int64))' "$dir/calib.npy"
	fi
	bytes=$(($(stat -c %s "$M") + $(stat -c %s "$M.data")))
	out=$WORK/out
	mkdir -p "$out"
	rm -f "$out"/*
	run "$bytes" copy bash -c "dd if=$M of=$out/c.onnx bs=4M conv=fsync status=none && dd if=$M.data of=$out/c.onnx.data bs=4M conv=fsync status=none"
	rm -f "$out"/*
	run "$bytes" load+save "$WORK/loadsave" "$M" "$out/ls.onnx"
	rm -f "$out"/*
	run "$bytes" inspect "$PARE" inspect "$M"
	run "$bytes" prune-analysis "$PARE" prune "$M" --mlp 0.25 --heads 0.25 --dry-run
	run "$bytes" prune "$PARE" prune "$M" --mlp 0.25 --heads 0.25 -o "$out/p.onnx"
	rm -f "$out"/*
	if [ "$size" -le "$MAX_OBS" ]; then
		run "$bytes" prune-obs "$PARE" prune "$M" --mlp 0.25 --heads 0.25 --criterion obs --calib "$dir/calib.npy" -o "$out/o.onnx"
		rm -f "$out"/*
	fi
	run "$bytes" quant-rtn "$PARE" quant "$M" --format nbits --bits 4 --method rtn -o "$out/r.onnx"
	rm -f "$out"/*
	if [ "$size" -le "$MAX_GPTQ" ]; then
		run "$bytes" quant-gptq "$PARE" quant "$M" --format nbits --bits 4 --method gptq --calib-samples 16 -o "$out/g.onnx"
		rm -f "$out"/*
	fi
	if [ "$size" -le "$MAX_QDQ" ]; then
		run "$bytes" quant-qdq "$PARE" quant "$M" --format qdq -o "$out/q.onnx"
		rm -f "$out"/*
	fi
done
echo "load avg: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

/usr/bin/python3 - "$RES" <<'PYEOF'
import math, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
sizes = sorted({int(r[0]) for r in rows})
steps = []
for r in rows:
    if r[1] not in steps:
        steps.append(r[1])
val = {(int(r[0]), r[1]): (float(r[2]), int(r[3]) / 1024, float(r[4]), r[5]) for r in rows}
MB = 1e6
print("| step | " + " | ".join("%.0f MB" % (s / MB) if s >= MB else "%.1f MB" % (s / MB) for s in sizes) + " | slope time | slope RSS |")
print("|---|" + "---:|" * len(sizes) + "---:|---:|")
def slope(pts):
    pts = [(math.log(x), math.log(y)) for x, y in pts if y > 0]
    if len(pts) < 2:
        return float("nan")
    mx = sum(p[0] for p in pts) / len(pts); my = sum(p[1] for p in pts) / len(pts)
    den = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / den
for st in steps:
    cells, tp, rp = [], [], []
    for s in sizes:
        v = val.get((s, st))
        if v is None:
            cells.append("—")
            continue
        t, rss, cpu, rc = v
        copy = val[(s, "copy")][0]
        flag = "" if rc == "0" else " (exit %s)" % rc
        if st == "copy":
            cells.append("%.2f s%s" % (t, flag))
        else:
            cells.append("%.2f s (cpu %.2f) · %.1f× copy · %.0f MB · %.2f× size%s" % (t, cpu, t / copy if copy else 0, rss, rss * 1024 * 1024 / s, flag))
        tp.append((s, t)); rp.append((s, rss))
    print("| %s | %s | %.2f | %.2f |" % (st, " | ".join(cells), slope(tp), slope(rp)))
PYEOF
