#!/usr/bin/env bash
# pare on a Llama-shaped decoder with external data (issue: LLM scale):
# inspect, prune --mlp 0.25 --heads 0.25, nbits int4
# RTN and GPTQ quant, and check of each output in onnxruntime, each timed
# with /usr/bin/time -v (wall time, peak RSS) against a synced copy
# (dd conv=fsync) of the model's files in the same run. Prints a Markdown
# table for docs/BENCHMARKS.md.
#
#   bench/llm-scale.sh                        # ~2.3 GB: hidden 2048, 10 layers
#   GEN="--size-mb 30" bench/llm-scale.sh     # any size fixtures/gen/llama_big.py takes
#   GPTQ=0 bench/llm-scale.sh                 # without GPTQ (the full run takes an hour or more)
#
# Raw rows (label, seconds, peak RSS KB, exit, load average) go to
# $WORK/steps.txt as each step ends (awk may hold them until the end).
# The model is generated into $WORK (fixtures/gen/llama_big.py, seeded) and
# deleted at the end unless KEEP=1. Run it niced on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$(bash scripts/fetch-onnxruntime.sh)}
WORK=${WORK:-/tmp/pare-llm}
GEN=${GEN:---hidden 2048 --layers 10}
PARE=$WORK/pare
mkdir -p "$WORK"
go build -o "$PARE" ./cmd/pare
M=$WORK/llama_big.onnx
if [ ! -f "$M" ]; then
	/usr/bin/python3 fixtures/gen/llama_big.py "$WORK" $GEN 2>&1 | grep -v -i warn >&2
fi
bytes=$(($(stat -c %s "$M") + $(stat -c %s "$M.data")))
echo "load avg: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# run LABEL CMD... : prints "LABEL seconds maxrss_kb rc"
run() {
	local label=$1
	shift
	local log=$WORK/time.log rc=0
	/usr/bin/time -v -o "$log" "$@" >"$WORK/$label.out" 2>&1 || rc=$?
	local s kb
	s=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); t=0; for(i=1;i<=n;i++) t=t*60+a[i]; print t}' "$log")
	kb=$(awk -F': ' '/Maximum resident/ {print $2}' "$log")
	echo "$label $s $kb $rc $(cut -d' ' -f1 /proc/loadavg)"
}

copy() {
	dd if="$M" of="$WORK/copy.onnx" bs=4M conv=fsync status=none
	dd if="$M.data" of="$WORK/copy.onnx.data" bs=4M conv=fsync status=none
}
export -f copy
export M WORK

# Read the files once so that the copy and every step find them in the
# page cache alike (a cold first read made the first copy 3× the second).
cat "$M" "$M.data" >/dev/null
{
	run copy bash -c copy
	run inspect "$PARE" inspect "$M"
	run prune "$PARE" prune "$M" --mlp 0.25 --heads 0.25 -o "$WORK/pruned.onnx"
	run check-prune "$PARE" check --samples 2 --min-cos 0.9 "$M" "$WORK/pruned.onnx"
	rm -f "$WORK"/pruned.onnx*
	run quant-rtn "$PARE" quant "$M" --format nbits --bits 4 --method rtn -o "$WORK/rtn.onnx"
	run check-rtn "$PARE" check --samples 2 --min-cos 0.9 "$M" "$WORK/rtn.onnx"
	rm -f "$WORK"/rtn.onnx*
	# A second copy after prune and RTN: the machine's load moves the
	# reference too.
	run copy-2 bash -c copy
	if [ "${GPTQ:-1}" = 1 ]; then
		run quant-gptq "$PARE" quant "$M" --format nbits --bits 4 --method gptq -o "$WORK/gptq.onnx"
		run check-gptq "$PARE" check --samples 2 --min-cos 0.9 "$M" "$WORK/gptq.onnx"
	fi
	rm -f "$WORK"/gptq.onnx* "$WORK"/copy.onnx*
} | tee "$WORK/steps.txt" | awk -v mb="$(echo "$bytes / 1000000" | bc)" '
	BEGIN { print "model: " mb " MB (graph + external data)\n"
	        print "| step | time s | × synced copy | peak RSS MB | × model size | exit | load avg (1 min, at end) |"
	        print "|---|---:|---:|---:|---:|---:|---:|" }
	$1 == "copy" { ref = $2 }
	{ printf "| %s | %.2f | %.2f | %.0f | %.2f | %s | %s |\n", $1, $2, (ref > 0 ? $2 / ref : 0), $3 / 1024, $3 / 1024 / mb, $4, $5}'
echo "load avg: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
[ "${KEEP:-0}" = 1 ] || rm -f "$M" "$M.data"
