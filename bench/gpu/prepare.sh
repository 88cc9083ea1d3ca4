#!/usr/bin/env bash
# Prepares .gpu/ for the lent GPU machine (see ../shared/gpu/README.md):
# the agegender binaries built with the XLA backend, the PyTorch speed
# script and the run script. Carry .gpu with the run (64 MiB limit):
#
#   bench/gpu/prepare.sh && du -sh .gpu
#   device run (carry .gpu): bash .gpu/run.sh   → results in $OUT
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOEXPERIMENT=simd
mkdir -p .gpu
CGO_ENABLED=1 go build -trimpath -tags xla -o .gpu/speed ./bench/speed
CGO_ENABLED=1 go build -trimpath -tags xla -o .gpu/agegender ./cmd/agegender
cp bench/torch_speed.py bench/gpu/run.sh .gpu/
grep -qx '.gpu/' .git/info/exclude 2>/dev/null || echo '.gpu/' >> .git/info/exclude
du -sh .gpu
