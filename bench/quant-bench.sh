#!/usr/bin/env bash
# Quantization benchmarks (docs/BENCHMARKS.md, section "Quantization"):
#
# 1. onnxruntime latency, 1 thread, batch 1 and 32, of each trained fixture
#    as float, static int8 QDQ and 4-bit MatMulNBits (block 32), with
#    `pare bench`, which alternates the models run by run and gives
#    ratios to the first (float).
# 2. Wall time of `pare quant` (RTN and GPTQ, 4-bit MatMulNBits) as a ratio
#    to pare's own load + save of the same model (bench/loadsave), in one
#    hyperfine run, on the fixtures and on a ~100 MB GPT-style decoder with
#    random weights exported here with /usr/bin/python3 (torch), not
#    committed.
#
#   bench/quant-bench.sh        # WORK=/tmp/pare-quant-bench RUNS=10 LAT_RUNS=200
#   PARTS="latency time big biglat" picks the parts (all by default).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${WORK:-/tmp/pare-quant-bench}"
RUNS="${RUNS:-10}"
LAT_RUNS="${LAT_RUNS:-200}"
PY=/usr/bin/python3
mkdir -p "$WORK"
export ONNXRUNTIME_LIB="${ONNXRUNTIME_LIB:-$(bash scripts/fetch-onnxruntime.sh)}"
go build -trimpath -o "$WORK/pare" ./cmd/pare
go build -trimpath -o "$WORK/loadsave" ./bench/loadsave
PARE="$WORK/pare"
PARTS="${PARTS:-latency time big biglat}"
want() { [[ " $PARTS " == *" $1 "* ]]; }

# The trained fixtures: the CNN, and the ViT and decoder when the fixture
# set has them (else their untrained counterparts).
pick() { for m in "$@"; do [ -f "fixtures/models/$m.onnx" ] && { echo "$m"; return; }; done; }
CNN=fmnist_resnet_op13
VIT=$(pick fmnist_vit_op17 vit_nano_op17)
DEC=$(pick char_gpt_op17 gpt_nano_op17)

calib_for() {
	case "$1" in
	fmnist_*) echo "--calib fixtures/data/fmnist_calib_x.npy --calib-samples 256" ;;
	char_gpt_* | gpt_nano_*) echo "--calib fixtures/data/gpt_calib_ids.npy --calib-samples 128" ;;
	*) echo "--calib-samples 32" ;;
	esac
}

want latency && echo "## latency (pare bench, 1 thread, batch 1 and 32, $LAT_RUNS runs)"
want latency && for M in $CNN $VIT $DEC; do
	SRC="fixtures/models/$M.onnx"
	# shellcheck disable=SC2046
	"$PARE" quant "$SRC" -o "$WORK/$M.qdq.onnx" --format qdq $(calib_for "$M") >/dev/null
	"$PARE" quant "$SRC" -o "$WORK/$M.nbits4.onnx" --format nbits --bits 4 --block 32 >/dev/null
	echo "### $M"
	"$PARE" bench "$SRC" "$WORK/$M.qdq.onnx" "$WORK/$M.nbits4.onnx" --batch 1,32 --threads 1 --warmup 20 --runs "$LAT_RUNS"
done

# A ~100 MB decoder: vocab 4096, 64 tokens, width 512, 8 pre-LN blocks.
BIG="$WORK/gpt_100mb.onnx"
if [ ! -s "$BIG" ]; then
	echo "exporting a ~100 MB GPT-style decoder to $BIG" >&2
	"$PY" - "$BIG" <<'EOF'
import sys, torch, torch.nn as nn
torch.manual_seed(0)
D, H, L, V, T = 512, 8, 8, 4096, 64
class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.ln1, s.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        s.qkv, s.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
        s.fc1, s.fc2 = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)
    def forward(s, x):
        b, t, _ = x.shape
        q, k, v = s.qkv(s.ln1(x)).split(D, dim=-1)
        q, k, v = [z.reshape(b, t, H, D // H).transpose(1, 2) for z in (q, k, v)]
        a = torch.softmax(q @ k.transpose(-1, -2) / (D // H) ** 0.5, dim=-1) @ v
        x = x + s.proj(a.transpose(1, 2).reshape(b, t, D))
        return x + s.fc2(torch.nn.functional.gelu(s.fc1(s.ln2(x))))
class GPT(nn.Module):
    def __init__(s):
        super().__init__()
        s.tok, s.pos = nn.Embedding(V, D), nn.Parameter(torch.randn(1, T, D) * 0.02)
        s.blocks = nn.Sequential(*[Block() for _ in range(L)])
        s.ln, s.head = nn.LayerNorm(D), nn.Linear(D, V)
    def forward(s, ids):
        return s.head(s.ln(s.blocks(s.tok(ids) + s.pos)))
m = GPT().eval()
ids = torch.zeros(1, T, dtype=torch.long)
torch.onnx.export(m, (ids,), sys.argv[1], opset_version=17, input_names=["input_ids"],
                  output_names=["logits"], dynamic_axes={"input_ids": {0: "batch"}, "logits": {0: "batch"}})
EOF
fi

want time && echo "## quantization wall time (hyperfine, $RUNS runs)"
want time && for M in $CNN $VIT $DEC; do
	SRC="fixtures/models/$M.onnx"
	echo "### $M"
	hyperfine -N --warmup 2 --runs "$RUNS" --export-markdown "$WORK/$M.time.md" \
		-n load+save "$WORK/loadsave $SRC $WORK/ls.onnx" \
		-n rtn "$PARE quant $SRC -o $WORK/rtn.onnx --format nbits --bits 4" \
		-n gptq "$PARE quant $SRC -o $WORK/gptq.onnx --format nbits --bits 4 --method gptq $(calib_for "$M")"
	cat "$WORK/$M.time.md"
done
if want big; then
echo "### gpt_100mb ($(stat -c %s "$BIG") bytes)"
hyperfine -N --warmup 1 --runs "${BIG_RUNS:-5}" --export-markdown "$WORK/big.time.md" \
	-n load+save "$WORK/loadsave $BIG $WORK/ls.onnx" \
	-n rtn "$PARE quant $BIG -o $WORK/rtn.onnx --format nbits --bits 4"
cat "$WORK/big.time.md"
# GPTQ takes minutes here: one run, load + save again beside it.
hyperfine -N --runs 1 --export-markdown "$WORK/big.gptq.md" \
	-n load+save "$WORK/loadsave $BIG $WORK/ls.onnx" \
	-n gptq "$PARE quant $BIG -o $WORK/gptq.onnx --format nbits --bits 4 --method gptq --calib-samples 16"
cat "$WORK/big.gptq.md"
/usr/bin/time -f "rtn peak RSS %M KiB" "$PARE" quant "$BIG" -o "$WORK/rtn.onnx" --format nbits --bits 4 >/dev/null
fi
want biglat || exit 0
# Latency of the large decoder, batch 1 (64 tokens), float vs QDQ int8
# vs 4-bit MatMulNBits.
"$PARE" quant "$BIG" -o "$WORK/big.qdq.onnx" --format qdq --calib-samples 16 >/dev/null
"$PARE" quant "$BIG" -o "$WORK/big.nbits4.onnx" --format nbits --bits 4 >/dev/null
"$PARE" bench "$BIG" "$WORK/big.qdq.onnx" "$WORK/big.nbits4.onnx" --batch 1 --threads 1 --warmup 5 --runs "${BIG_LAT_RUNS:-30}"
