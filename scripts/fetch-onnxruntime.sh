#!/usr/bin/env bash
# Fetches the onnxruntime CPU shared library from the npm package
# onnxruntime-node (no package scripts run) into a cache outside the
# repository, and prints the library's path.
set -euo pipefail
version="${ORT_VERSION:-1.30.0}"
cache="${PARE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pare}/onnxruntime-$version"
lib="$cache/libonnxruntime.so.1"
if [ ! -s "$lib" ]; then
  mkdir -p "$cache"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$version" >/dev/null)
  tar -xzf "$tmp"/onnxruntime-node-"$version".tgz -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
  mv "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$lib.part"
  mv "$lib.part" "$lib"
fi
echo "$lib"
