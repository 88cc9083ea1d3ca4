#!/usr/bin/env bash
# Speed of the origin net on every CPU backend next to PyTorch, in one run:
# inference at batch 1 and 32 and a training step at batch 32, plus the
# end-to-end `predict --crop` throughput over a folder of real faces.
#
#   bench/speed.sh [OUT]   (default runs/speed; INPUT=227 SECS=8)
#
# Run it on a quiet machine: every number shares the same cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT=simd GOMLX_NO_AUTO_INSTALL=1
OUT=${1:-runs/speed}
INPUT=${INPUT:-227}
SECS=${SECS:-8}
mkdir -p "$OUT"
CGO_ENABLED=1 go build -tags onnx -o "$OUT/speed" ./bench/speed
./setup.sh >/dev/null 2>&1 || true
{
  echo "date: $(date -u +%F' '%T) UTC"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB"
  echo "command: bench/speed.sh $OUT (INPUT=$INPUT SECS=$SECS)"
} > "$OUT/machine.txt"
[ -n "${E2E_ONLY:-}" ] || : > "$OUT/speed.jsonl"
if [ -z "${E2E_ONLY:-}" ]; then
"$OUT/speed" --backend go --input "$INPUT" --secs "$SECS" >> "$OUT/speed.jsonl"
# The pure-Go backend defaults to 2× the cores in workers; try one per core.
"$OUT/speed" --backend "go:parallelism=$(nproc)" --input "$INPUT" --secs "$SECS" | grep '^{' >> "$OUT/speed.jsonl"
"$OUT/speed" --backend onnx --input "$INPUT" --secs "$SECS" >> "$OUT/speed.jsonl"
"$OUT/speed" --backend onnx --ops native --input "$INPUT" --secs "$SECS" --train-batch 0 >> "$OUT/speed.jsonl"
/usr/bin/python3 bench/torch_speed.py --input "$INPUT" --threads "$(nproc)" --secs "$SECS" >> "$OUT/speed.jsonl"
fi
# End to end: predict --crop on 256 real UTKFace crops (every 80th file) with
# the built-in models, centre crop, one process per backend (start-up and
# model loading included). E2E_ONLY=1 runs just this part.
UTK=${AGEGENDER_DATA:-../shared/data}/utkface/images
ls "$UTK" | sed -n "1~80p" | sed -n 1,256p | sed "s#^#$UTK/#" > "$OUT/files.txt"
for be in go onnx; do
  bin=./agegender
  [ -x $bin ] || continue
  # ./setup.sh compiles ONNX Runtime in only when it installed the library.
  [ $be = go ] || [ -f .deps/onnxruntime/libonnxruntime.so.1 ] || continue
  start=$(date +%s.%N)
  xargs $bin predict --crop --tencrop=false --backend $be < "$OUT/files.txt" > "$OUT/predict_$be.jsonl" 2>/dev/null
  end=$(date +%s.%N)
  echo "{\"impl\":\"agegender predict --crop\",\"backend\":\"$be\",\"what\":\"end_to_end_crops\",\"batch\":1,\"img_per_s\":$(echo "256 / ($end - $start)" | bc -l)}" >> "$OUT/speed.jsonl"
done
cat "$OUT/machine.txt" "$OUT/speed.jsonl"
