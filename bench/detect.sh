#!/bin/sh
# Face detector speed, decode included, in a warm process (bench/detect), on
# the pure-Go backend and on ONNX Runtime, the networks' floor (their
# native ONNX export) and each stage of Detect (go test -bench), then
# whole `agegender predict` processes on one photo (three runs each, wall
# and CPU time: the CPU time varies less on a shared machine). Results go to BENCHMARKS.md section
# "Face detection". Usage, from the repository root: bench/detect.sh [RUNS]
set -eu
RUNS=${1:-20}
export GOEXPERIMENT=simd GOMLX_NO_AUTO_INSTALL=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
go build -o "$out/detect" ./bench/detect
go build -o "$out/agegender" ./cmd/agegender
"$out/detect" --backend go --runs "$RUNS" --write "$out"
if [ -f .deps/onnxruntime/libonnxruntime.so.1 ]; then
  CGO_ENABLED=1 go build -tags onnx -o "$out/detect-onnx" ./bench/detect
  CGO_ENABLED=1 go build -tags onnx -o "$out/agegender-onnx" ./cmd/agegender
  "$out/detect-onnx" --backend onnx --runs "$RUNS"
  # The floor: each network's run, the native ONNX export against ours.
  if [ -d ../shared/models/onnx ]; then
    "$out/detect-onnx" --backend onnx --floor ../shared/models/onnx --runs "$RUNS"
  fi
fi
# Per stage of Detect (decode, the 256 copy, each network run, the
# refining pass), ns/op, on each backend.
go test -run XXX -bench BlazeFaceStages -benchtime "${RUNS}x" ./face/ | grep '^Benchmark' | sed 's/^/pure Go: /'
if [ -f .deps/onnxruntime/libonnxruntime.so.1 ]; then
  GOMLX_BACKEND=onnx:cpu CGO_ENABLED=1 go test -tags onnx -run XXX -bench BlazeFaceStages -benchtime "${RUNS}x" ./face/ |
    grep '^Benchmark' | sed 's/^/ONNX Runtime: /'
fi
# The Node peer: human's BlazeFace on the tfjs wasm backend, same frames.
if command -v npm >/dev/null; then
  (cd "$out" && npm install --no-audit --no-fund --silent @vladmandic/human@3.3.5 \
      @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0 jpeg-js@0.4.4 >/dev/null 2>&1 &&
    cp "$OLDPWD/bench/detect/peer.js" . && node peer.js "$out" "$RUNS") ||
    echo "Node peer failed (npm registry reachable? ../shared/models/tfjs present?)"
fi
# Whole processes: start, load the models, decode, detect, classify, print.
for bin in agegender agegender-onnx; do
  [ -x "$out/$bin" ] || continue
  be=go; [ "$bin" = agegender-onnx ] && be=onnx
  for photo in 448x448 1MP 12MP; do
    for run in 1 2 3; do
      if [ -x /usr/bin/time ]; then
        /usr/bin/time -f "process: $bin predict $photo.jpg (run $run): %e s wall, %U s user + %S s system CPU" \
          "$out/$bin" predict --quiet --backend "$be" "$out/$photo.jpg" >/dev/null
      else
        s=$(date +%s.%N)
        "$out/$bin" predict --quiet --backend "$be" "$out/$photo.jpg" >/dev/null
        e=$(date +%s.%N)
        echo "process: $bin predict $photo.jpg (run $run): $(echo "$e - $s" | bc) s wall"
      fi
    done
  done
done
