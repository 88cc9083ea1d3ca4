#!/usr/bin/env bash
# bench/transfer.sh: transfer learning from a pretrained face network
# (package transfer) on the full UTKFace train/test split.
#
# Extracts the backbone features of every train and test image once into
# $CACHE (float16, <backbone>-<split>.f16; later runs read them back), trains
# the 512-512-N head for gender and for the 8 age groups, and prints test
# accuracy and 1-off accuracy, plus faceres's own zero-training baseline.
#
#   bench/transfer.sh                      # MobileFaceNet, all images
#   MAX=200 bench/transfer.sh              # 200 train + 200 test images
#   BACKBONE=faceres bench/transfer.sh     # HSE FaceRec feats layer
#
# Cost on the pure-Go backend (2 busy shared cores): about 0.1-0.15 s per
# image for MobileFaceNet and about 0.16-0.3 s for faceres, so the full
# ~21k-image train+test extraction takes roughly 40-60 minutes for
# MobileFaceNet. Set GOMLX_BACKEND (e.g. xla) for a faster backend.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT=simd GOFLAGS=-mod=mod GOMLX_NO_AUTO_INSTALL=1
export AGEGENDER_TRANSFER_BENCH=1
export AGEGENDER_TRANSFER_MAX="${MAX:-0}"
export AGEGENDER_TRANSFER_BACKBONE="${BACKBONE:-mobilefacenet}"
export AGEGENDER_TRANSFER_CACHE="${CACHE:-runs/transfer-cache}"
mkdir -p "$AGEGENDER_TRANSFER_CACHE"
export AGEGENDER_TRANSFER_CACHE="$(cd "$AGEGENDER_TRANSFER_CACHE" && pwd)"
exec go test ./transfer -run '^TestBench$' -count=1 -timeout 0 -v
