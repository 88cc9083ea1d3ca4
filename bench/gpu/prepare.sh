#!/usr/bin/env bash
# Prepares .gpu/ for one call on the lent GPU machine (../shared/gpu/README.md),
# where at most 64 MiB travels: the working tree (~11 MiB) plus what `carry`
# names. One folder per call, so two modes:
#
#   bench/gpu/prepare.sh speed   GoMLX-XLA vs PyTorch speed (bench/speed, xz)
#   bench/gpu/prepare.sh train   origin at 227 trained on UTKFace's train and
#                                validation faces, packed small (bench/gpu/pack)
#   FROM=STAGE1.agm bench/gpu/prepare.sh finetune
#                                stage 2 of a trunk model (train --from FROM
#                                --tune all) on the packed faces; the built-in
#                                models (17 MiB) are moved to .gpu-hold/ so the
#                                call fits: put them back afterwards with
#   bench/gpu/prepare.sh restore
#
# then:  device run (carry .gpu, timeout_s 600): bash .gpu/run.sh
# BUILD_TAGS=onnx builds the ONNX Runtime backend instead, to rehearse on a
# CPU (see run.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=${1:?usage: bench/gpu/prepare.sh speed|train|finetune|restore}
if [ "$MODE" = restore ]; then
  [ -d .gpu-hold ] && mv .gpu-hold/*.agm models/builtin/ && rmdir .gpu-hold
  git status --short models/builtin; exit 0
fi
export GOEXPERIMENT=simd GOMLX_NO_AUTO_INSTALL=1
TAGS=${BUILD_TAGS:-xla}
rm -rf .gpu && mkdir -p .gpu
grep -qx '.gpu/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info && echo '.gpu/' >> .git/info/exclude; }
build() { # stripped and xz-compressed: 37 MiB → 16 MiB for agegender
  CGO_ENABLED=1 go build -trimpath -ldflags='-s -w' -tags "$TAGS" -o ".gpu/$1" "$2"
  xz -T0 -6 ".gpu/$1"
}
faces() { # SIDE QUALITY: the train and validation faces as .gpu/utkface.tar.xz.
  # Test is evaluated back here, on the returned model. One tar.xz, not
  # 19,000 files: a device call counts each file's overhead (run.sh unpacks
  # it; xz takes back the tar's padding).
  go run ./bench/gpu/pack -dst .gpu/utkface -side "$1" -quality "$2" -splits train,val
  tar -C .gpu -cf .gpu/utkface.tar utkface && rm -rf .gpu/utkface && xz -T0 -1 .gpu/utkface.tar
}
case "$MODE" in
speed)
  build speed ./bench/speed
  cp bench/torch_speed.py .gpu/ ;;
train)
  TAGS="$TAGS,nobuiltin" build agegender ./cmd/agegender # no embedded models: 24 → 9 MiB
  # 80 px, JPEG quality 75 (25 MiB as tar.xz) fits the budget; the loader
  # resizes them to 256 and crops 227, like any other input.
  faces "${SIDE:-80}" "${QUALITY:-75}" ;;
finetune)
  FROM=${FROM:?finetune: set FROM to a stage-1 trunk model (agegender train --trunk faceres --task both ...)}
  TAGS="$TAGS,nobuiltin" build agegender ./cmd/agegender
  cp "$FROM" .gpu/from.agm
  # The trunk reads 224 px, so the faces go larger than for origin: 96 px,
  # quality 75 (31 MiB as tar.xz).
  faces "${SIDE:-96}" "${QUALITY:-75}"
  # Tracked files travel too: the built-in models wait in .gpu-hold/.
  grep -qx '.gpu-hold/' .git/info/exclude || echo '.gpu-hold/' >> .git/info/exclude
  mkdir -p .gpu-hold && mv models/builtin/*.agm .gpu-hold/
  echo "built-in models moved to .gpu-hold/: after the call, bench/gpu/prepare.sh restore" >&2 ;;
*)
  echo "prepare.sh: mode must be speed, train, finetune or restore, got $MODE" >&2; exit 2 ;;
esac
cp bench/gpu/run.sh .gpu/
echo "$MODE" > .gpu/mode
carried=$(du -sb .gpu | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
total=$(( (carried + tree) / 1048576 ))
echo "prepared .gpu ($MODE): $(( carried / 1048576 )) MiB + working tree $(( tree / 1048576 )) MiB = $total MiB of 64" >&2
if [ "$total" -ge 63 ]; then
  echo "prepare.sh: over the 64 MiB a device call carries; lower SIDE/QUALITY" >&2
  exit 1
fi
