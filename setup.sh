#!/usr/bin/env bash
# Sets agegender up on a fresh Debian machine with Go, from hosts this
# machine can reach (the Go module proxy, npm):
#   1. builds ./agegender (pure-Go backend, GOEXPERIMENT=simd for its SIMD kernels)
#   2. installs ONNX Runtime 1.26 into .deps/onnxruntime/ from the npm package
#      onnxruntime-node (checksum-verified) and builds ./agegender-onnx, a
#      binary that can also run on the faster ONNX Runtime CPU backend.
# Step 2 is skipped with --no-onnx, or (with a note) when npm is missing.
set -euo pipefail
cd "$(dirname "$0")"
export GOEXPERIMENT=simd GOMLX_NO_AUTO_INSTALL=1
go build -o agegender ./cmd/agegender
echo "built ./agegender ($(go version | cut -d' ' -f3), pure-Go backend)" >&2

[ "${1:-}" = "--no-onnx" ] && exit 0
ORT_VERSION=1.26.0
ORT_TGZ_SHA256=874e97b8840c16db3a3997a4cc75976ee46fb4828bc95dda909d8d4e134bed02
ORT_LIB_SHA256=57625571931dd813257ed422fe73ba2c25aadcc5640d9c6743e71540135c227e
LIB=.deps/onnxruntime/libonnxruntime.so.1
if [ ! -f "$LIB" ] || ! echo "$ORT_LIB_SHA256  $LIB" | sha256sum -c --quiet - 2>/dev/null; then
  if ! command -v npm >/dev/null; then
    echo "setup: npm not found, so the optional ONNX Runtime backend was skipped (apt-get install npm, then rerun ./setup.sh); ./agegender is ready" >&2
    exit 0
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
  echo "$ORT_TGZ_SHA256  $tmp/onnxruntime-node-$ORT_VERSION.tgz" | sha256sum -c --quiet -
  tar -xzf "$tmp/onnxruntime-node-$ORT_VERSION.tgz" -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
  mkdir -p .deps/onnxruntime
  cp "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$LIB"
  echo "$ORT_LIB_SHA256  $LIB" | sha256sum -c --quiet -
  echo "installed ONNX Runtime $ORT_VERSION into .deps/onnxruntime (sha256 verified)" >&2
fi
CGO_ENABLED=1 go build -tags onnx -o agegender-onnx ./cmd/agegender
echo "built ./agegender-onnx (--backend onnx available)" >&2
