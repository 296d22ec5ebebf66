#!/usr/bin/env bash
# Regenerates onnx/onnx.pb.go from onnx/onnx.proto.
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="$(go env GOPATH)/bin:$PATH" protoc --go_out=. --go_opt=paths=source_relative onnx/onnx.proto
