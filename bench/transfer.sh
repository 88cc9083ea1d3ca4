#!/usr/bin/env bash
# Transfer learning from a pretrained face network on the full UTKFace
# train/test split: extracts the frozen backbone's features once into
# CACHE (float16 files), trains the 512-512-N head for gender and age, and
# reports test accuracy (1-off for age), plus faceres's own zero-training
# baseline. A thin wrapper over `agegender transfer`.
#
#   bench/transfer.sh                       # MobileFaceNet, all images
#   MAX=200 bench/transfer.sh               # 200 train + 200 test images
#   BACKBONE=faceres BACKEND=onnx bench/transfer.sh
#   BACKEND=onnx bench/transfer.sh --fine-tune --baseline=false   # + last block
#
# Cost on the pure-Go backend: about 0.1-0.15 s per image for MobileFaceNet
# on 2 cores, so the full ~19k train+test extraction takes 30-50 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT=simd GOMLX_NO_AUTO_INSTALL=1
BIN=./agegender
[ -x "$BIN" ] || ./setup.sh
exec "$BIN" transfer --backend "${BACKEND:-go}" --backbone "${BACKBONE:-mobilefacenet}" --max "${MAX:-0}" \
  --cache "${CACHE:-runs/transfer-cache}" "$@"
