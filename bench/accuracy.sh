#!/usr/bin/env bash
# Trains origin for gender and age on the UTKFace train split, evaluates on
# its test split (centre crop and 10-crop), and runs the PyTorch reference of
# the same net, data, split and settings side by side.
#
#   bench/accuracy.sh [OUT]     (default OUT=runs/accuracy)
#
# Environment: INPUT (crop side, default 64), EPOCHS (default 15), BATCH (50),
# NET (origin), BACKEND (go, or onnx: built with -tags onnx, needs ./setup.sh),
# TASKS ("gender age"), SKIP_GO=1 / SKIP_TORCH=1 to run one side only.
# Results: OUT/{gender,age}/ (checkpoint, model, curves), OUT/*_eval.json,
# OUT/torch_*.json, and OUT/summary.md (the table for BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT=simd GOMLX_NO_AUTO_INSTALL=1
OUT=${1:-runs/accuracy}
INPUT=${INPUT:-64}
EPOCHS=${EPOCHS:-15}
BATCH=${BATCH:-50}
NET=${NET:-origin}
BACKEND=${BACKEND:-go}
TASKS=${TASKS:-gender age}
DATA=${AGEGENDER_DATA:-../shared/data}/utkface/images
mkdir -p "$OUT"
if [ "$BACKEND" = onnx ]; then
  CGO_ENABLED=1 go build -tags onnx -o "$OUT/agegender" ./cmd/agegender
else
  go build -o "$OUT/agegender" ./cmd/agegender
fi
{
  echo "date: $(date -u +%F' '%T) UTC"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB"
  echo "command: bench/accuracy.sh $OUT (INPUT=$INPUT EPOCHS=$EPOCHS BATCH=$BATCH NET=$NET BACKEND=$BACKEND TASKS=$TASKS)"
} > "$OUT/machine.txt"
if [ -z "${SKIP_GO:-}" ]; then
  for task in $TASKS; do
    /usr/bin/time -v "$OUT/agegender" train --backend "$BACKEND" --data "$DATA" --task $task --net "$NET" --input "$INPUT" \
      --epochs "$EPOCHS" --batch "$BATCH" --optimizer adam --out "$OUT/$task" 2> >(tr '\r' '\n' | grep -v '^decoding\|batch/' > "$OUT/${task}_train.log")
    "$OUT/agegender" eval --backend "$BACKEND" --data "$DATA" --task $task --model "$OUT/$task/model.agm" --json \
      --confusion "$OUT/$task/confusion.png" > "$OUT/${task}_eval.json" 2> "$OUT/${task}_eval.log" ||
      echo "eval of $task failed: see $OUT/${task}_eval.log" >&2
  done
fi
if [ -z "${SKIP_TORCH:-}" ]; then
  for task in $TASKS; do
    /usr/bin/python3 bench/torch_origin.py --data "$DATA" --task $task --input "$INPUT" --epochs "$EPOCHS" \
      --batch "$BATCH" --out "$OUT/torch_${task}.json" > "$OUT/torch_${task}.log" 2>&1
  done
fi
"$OUT/agegender" 2>/dev/null || true
go run ./bench/summarize "$OUT" > "$OUT/summary.md"
cat "$OUT/summary.md"
