#!/usr/bin/env bash
# Installs what pare's build and tests need on a fresh machine: the
# onnxruntime CPU library (cached outside the repository), protoc and
# protoc-gen-go (for the generated-code freshness test).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-onnxruntime.sh >/dev/null
if ! command -v protoc >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null && apt-get install -y -qq protobuf-compiler >/dev/null
  else
    echo "setup: protoc is missing; install Debian's protobuf-compiler" >&2
    exit 1
  fi
fi
want="v1.36.12"
gen="$(go env GOPATH)/bin/protoc-gen-go"
if ! [ -x "$gen" ] || ! "$gen" --version 2>/dev/null | grep -q "${want#v}"; then
  go install "google.golang.org/protobuf/cmd/protoc-gen-go@$want"
fi
command -v chromium >/dev/null || { [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; } || { echo "setup: chromium is missing (pare run's HTML report test renders with it); install Debian's chromium" >&2; exit 1; }
