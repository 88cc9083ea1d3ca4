#!/usr/bin/env bash
# Sets agegender up on a fresh Debian machine with Go, from hosts this
# machine can reach (the Go module proxy, npm), and builds one binary,
# ./agegender:
#   1. installs ONNX Runtime 1.26 into .deps/onnxruntime/ from the npm
#      package onnxruntime-node (checksum-verified), unless --no-onnx is
#      given or npm is missing (then with a note);
#   2. builds ./agegender: with ONNX Runtime compiled in (-tags onnx, cgo)
#      when step 1 left the library in place, so its default backend is
#      ONNX Runtime; otherwise pure Go. Either way GOEXPERIMENT=simd (the
#      pure-Go backend's SIMD kernels), and --backend go|onnx picks one
#      explicitly. The binary finds .deps/onnxruntime next to itself or
#      in or above the working directory (or set
#      ONNXRUNTIME_SHARED_LIBRARY_PATH).
#      When the system has libjpeg-turbo's headers (Debian:
#      libjpeg62-turbo-dev; imageio/libjpeg-check.sh asks), the build also
#      gets -tags libjpeg: JPEGs over 2 megapixels are decoded at reduced
#      scale and in regions (a 12-megapixel photo in about 60 ms instead
#      of 220), never whole.
set -euo pipefail
cd "$(dirname "$0")"
export GOEXPERIMENT=simd GOMLX_NO_AUTO_INSTALL=1
# The separate ONNX Runtime binary of earlier versions is gone.
rm -f agegender-onnx

ORT_VERSION=1.26.0
ORT_TGZ_SHA256=874e97b8840c16db3a3997a4cc75976ee46fb4828bc95dda909d8d4e134bed02
ORT_LIB_SHA256=57625571931dd813257ed422fe73ba2c25aadcc5640d9c6743e71540135c227e
LIB=.deps/onnxruntime/libonnxruntime.so.1

ort_ok() { [ -f "$LIB" ] && echo "$ORT_LIB_SHA256  $LIB" | sha256sum -c --quiet - 2>/dev/null; }

install_ort() {
  if ! command -v npm >/dev/null; then
    echo "setup: npm not found, so ONNX Runtime (the faster backend) was not installed; apt-get install npm, then rerun ./setup.sh" >&2
    return 0
  fi
  tmp=$(mktemp -d) # global: the EXIT trap runs after this function returns
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
  echo "$ORT_TGZ_SHA256  $tmp/onnxruntime-node-$ORT_VERSION.tgz" | sha256sum -c --quiet -
  tar -xzf "$tmp/onnxruntime-node-$ORT_VERSION.tgz" -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
  mkdir -p .deps/onnxruntime
  cp "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$LIB"
  echo "$ORT_LIB_SHA256  $LIB" | sha256sum -c --quiet -
  echo "installed ONNX Runtime $ORT_VERSION into .deps/onnxruntime (sha256 verified)" >&2
}

if [ "${1:-}" != "--no-onnx" ] && ! ort_ok; then
  install_ort
fi

jpeg_note="JPEG: Go's decoder (apt-get install libjpeg62-turbo-dev and rerun ./setup.sh to decode big photos scaled, with libjpeg-turbo)"
libjpeg=""
if imageio/libjpeg-check.sh; then
  libjpeg=libjpeg
  jpeg_note="JPEG: libjpeg-turbo for photos over 2 megapixels"
fi
# ONNX Runtime and libjpeg-turbo are reached through cgo, which needs a C
# compiler ($CC, else gcc).
cc_ok=1
if ! command -v "${CC:-gcc}" >/dev/null 2>&1; then
  cc_ok=0
  jpeg_note="no C compiler (${CC:-gcc}), so neither ONNX Runtime nor libjpeg-turbo could be built in: apt-get install gcc libjpeg62-turbo-dev and rerun ./setup.sh"
fi
if [ "$cc_ok" = 0 ]; then
  go build -o agegender ./cmd/agegender
  echo "built ./agegender ($(go version | cut -d' ' -f3)); backend: pure Go; $jpeg_note" >&2
elif [ "${1:-}" != "--no-onnx" ] && ort_ok; then
  CGO_ENABLED=1 go build -tags "onnx,$libjpeg" -o agegender ./cmd/agegender
  echo "built ./agegender ($(go version | cut -d' ' -f3)); default backend: ONNX Runtime $ORT_VERSION (--backend go for pure Go; predict on up to 4 photos uses pure Go, which starts faster); $jpeg_note" >&2
elif [ -n "$libjpeg" ]; then
  CGO_ENABLED=1 go build -tags libjpeg -o agegender ./cmd/agegender
  echo "built ./agegender ($(go version | cut -d' ' -f3)); backend: pure Go; $jpeg_note" >&2
else
  go build -o agegender ./cmd/agegender
  echo "built ./agegender ($(go version | cut -d' ' -f3)); backend: pure Go; $jpeg_note" >&2
fi
