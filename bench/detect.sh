#!/bin/sh
# Face detector speed, decode included, in a warm process (bench/detect), on
# the pure-Go backend (also with libjpeg-turbo decoding big JPEGs, when
# installed) and on ONNX Runtime, the networks' floor (their native ONNX
# export) and each stage of Detect (go test -bench), then whole
# `agegender predict` processes on one photo (five runs each, builds
# alternated; wall and CPU time: the CPU time varies less on a shared
# machine). Results go to BENCHMARKS.md section "Face detection". Usage,
# from the repository root: bench/detect.sh [RUNS]
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
# The same on pure Go with JPEGs over 2 MP decoded by libjpeg-turbo.
if imageio/libjpeg-check.sh; then
  CGO_ENABLED=1 go build -tags libjpeg -o "$out/detect-libjpeg" ./bench/detect
  echo "with libjpeg-turbo (-tags libjpeg):"
  "$out/detect-libjpeg" --backend go --runs "$RUNS" --detectors blazeface
fi
if [ -f .deps/onnxruntime/libonnxruntime.so.1 ]; then
  CGO_ENABLED=1 go build -tags onnx -o "$out/detect-onnx" ./bench/detect
  "$out/detect-onnx" --backend onnx --runs "$RUNS"
  if imageio/libjpeg-check.sh; then
    CGO_ENABLED=1 go build -tags onnx,libjpeg -o "$out/detect-onnx-libjpeg" ./bench/detect
    echo "with libjpeg-turbo (-tags onnx,libjpeg):"
    "$out/detect-onnx-libjpeg" --backend onnx --runs "$RUNS" --detectors blazeface
  fi
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
# Builds: pure Go (no cgo); the binary ./setup.sh builds (-tags onnx, and
# libjpeg when imageio/libjpeg-check.sh passes), on its default backend
# (pure Go for one photo) and forced onto ONNX Runtime. Runs alternate
# between the builds, so that a change of load hits all of them.
tags=""
if [ -f .deps/onnxruntime/libonnxruntime.so.1 ]; then tags=onnx; fi
if imageio/libjpeg-check.sh; then tags="$tags,libjpeg"; fi
if [ -n "$tags" ]; then
  CGO_ENABLED=1 go build -tags "$tags" -o "$out/agegender-setup" ./cmd/agegender
fi
echo "process builds: agegender = pure Go; agegender-setup = -tags ${tags:-none}"
for photo in 448x448 1MP 12MP; do
  for run in 1 2 3 4 5; do
    for cmd in "agegender --backend go" "agegender-setup" "agegender-setup --backend onnx"; do
      set -- $cmd
      bin=$1; shift
      [ -x "$out/$bin" ] || continue
      case "$cmd,$tags" in *"--backend onnx",onnx*) ;; *"--backend onnx",*) continue ;; esac
      if [ -x /usr/bin/time ]; then
        /usr/bin/time -f "process: $cmd predict $photo.jpg (run $run): %e s wall, %U s user + %S s system CPU" \
          "$out/$bin" predict --quiet "$@" "$out/$photo.jpg" >/dev/null
      else
        s=$(date +%s.%N)
        "$out/$bin" predict --quiet "$@" "$out/$photo.jpg" >/dev/null
        e=$(date +%s.%N)
        echo "process: $cmd predict $photo.jpg (run $run): $(echo "$e - $s" | bc) s wall"
      fi
    done
  done
done
