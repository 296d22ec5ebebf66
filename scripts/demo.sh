#!/usr/bin/env bash
# The main job on a bundled fixture: prune the trained Fashion-MNIST CNN,
# quantize it to int8, and check the result against the dense model on
# the bundled test set, failing if accuracy drops more than 3 points.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_LIB="$(bash scripts/fetch-onnxruntime.sh)"
pare=bin/pare
out="${DEMO_OUT:-/tmp/pare-demo}"
mkdir -p "$out"
model=fixtures/models/fmnist_resnet_op13.onnx
x=fixtures/data/fmnist_test_x.npy
y=fixtures/data/fmnist_test_y.npy
calib=fixtures/data/fmnist_calib_x.npy

echo "== inspect"
$pare inspect "$model"
echo "== prune 30% of channels: OBS scores with weight compensation, then least-squares reconstruction"
$pare prune "$model" -o "$out/pruned.onnx" --ratio 0.3 --criterion obs --calib "$calib" --reconstruct \
  --plan-out "$out/plan.json"
echo "== quantize to int8 QDQ, calibrated"
$pare quant "$out/pruned.onnx" -o "$out/pruned-int8.onnx" --format qdq --bits 8 --calib "$calib"
echo "== check pruned + quantized against the dense model"
$pare check "$model" "$out/pruned-int8.onnx" --inputs "$x" --labels "$y" --max-acc-drop 3
echo "== latency"
$pare bench "$model" "$out/pruned.onnx" "$out/pruned-int8.onnx" --batch 1,32
