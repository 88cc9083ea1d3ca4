#!/bin/sh
# Peer row: face-api's age/gender net (@vladmandic/face-api 1.7.15, weights
# from its npm package) on the UTKFace test split, crops fed straight to the
# net (no detector), tfjs 4.22.0 wasm backend, one thread, batch 1. Installs
# the pinned npm packages of bench/faceapi (package-lock.json, no install
# scripts, nothing downloaded besides the npm registry's tarballs) into the
# gitignored bench/faceapi/node_modules, then prints the metrics and a
# markdown row for BENCHMARKS.md section 8; then the same net imported into
# Go (bench/faceapi/goeval, interop/faceapi) on the same faces, on the
# pure-Go backend and on ONNX Runtime. Usage, from the repository root:
#
#	bench/faceapi.sh [IMAGES_DIR] [extra peer.js flags, e.g. --limit 100]
#
# IMAGES_DIR defaults to ../shared/data/utkface/images. The extra flags go to
# peer.js only; GOEVAL=0 skips the Go runs.
set -eu
IMAGES=${1:-../shared/data/utkface/images}
[ $# -gt 0 ] && shift
if [ ! -d "$IMAGES" ]; then
  echo "bench/faceapi.sh: no UTKFace images folder at $IMAGES (give its path as the first argument)" >&2
  exit 1
fi
command -v node >/dev/null && command -v npm >/dev/null || {
  echo "bench/faceapi.sh: needs Node.js (>= 18) and npm on PATH" >&2
  exit 1
}
IMAGES=$(cd "$IMAGES" && pwd)
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "node: $(node --version)"
if [ ! -f bench/faceapi/node_modules/@vladmandic/face-api/model/age_gender_model.bin ] ||
  ! (cd bench/faceapi && npm ls --silent >/dev/null 2>&1); then
  (cd bench/faceapi && npm ci --ignore-scripts --no-audit --no-fund --silent)
fi
node bench/faceapi/peer.js --images "$IMAGES" "$@"
# The same net imported into Go (interop/faceapi), on the pure-Go backend
# and on ONNX Runtime (skip with GOEVAL=0).
if [ "${GOEVAL:-1}" != 0 ]; then
  export GOEXPERIMENT=simd GOMLX_NO_AUTO_INSTALL=1
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  go build -o "$out/goeval" ./bench/faceapi/goeval
  "$out/goeval" --backend go --images "$IMAGES"
  if [ -f .deps/onnxruntime/libonnxruntime.so.1 ]; then
    CGO_ENABLED=1 go build -tags onnx -o "$out/goeval-onnx" ./bench/faceapi/goeval
    "$out/goeval-onnx" --backend onnx --images "$IMAGES"
  fi
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
