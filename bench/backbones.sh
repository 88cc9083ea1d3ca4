#!/usr/bin/env bash
# Side by side on the UTKFace test split (FNV-1a-64(file name) % 100 >= 90,
# n = 2,068): the built-in origin nets (the paper's, one per task) and
# pretrained trunks, frozen, with joint gender + age-in-years heads trained
# here (agegender train --trunk NAME --task both). For each: gender
# accuracy, age-group exact and 1-off accuracy, MAE and CS@5 in years, ECE,
# training time, and inference ms per face at batch 1 and 32 on pure Go and
# ONNX Runtime (bench/infer). Prints a markdown table; logs and JSON go to
# OUT.
#
#   bench/backbones.sh runs/backbones                  # every trunk, 30 epochs
#   TRUNKS="faceres gear" EPOCHS=20 bench/backbones.sh runs/bb
#
# TRUNKS defaults to every trunk: faceres, faceres-deep, gear and
# mobilefacenet (from ../shared/models/tfjs) and faceapi, face-api's
# age/gender net, read from the npm package's model folder FACEAPI_MODELS
# (default: bench/faceapi/node_modules/…, installed here from
# bench/faceapi's lock file when missing, as bench/faceapi.sh does).
#
# AUGMENT=N also trains on N augmented views of each face (train
# --augment); FINETUNE=1 adds, per trunk, stage 2: its last block tuned
# with the heads from the stage-1 model (train --from, FT_EPOCHS at
# FT_LR, trained on FT_BACKEND, default BACKEND);
# BASELINE=1 adds faceres's own heads (agegender transfer
# --baseline). Rows whose files already exist in OUT are not recomputed
# (delete OUT/<trunk> to redo one). BIN is the agegender binary
# (default ./agegender, built by ./setup.sh); INFER a bench/infer binary
# built with -tags onnx (default: go run of the working tree's
# bench/infer). A blank ms column means bench/infer failed: run it by hand
# to see why.
#
# Features are cached (CACHE, default the user's cache folder), so a second
# run only trains the heads: about 44 ms per image for faceres on ONNX
# Runtime, so 19k train+val images take 15–45 minutes the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT=simd GOMLX_NO_AUTO_INSTALL=1
OUT=${1:-runs/backbones}
TRUNKS=${TRUNKS:-faceres faceres-deep gear mobilefacenet faceapi}
FACEAPI_PKG_MODELS=bench/faceapi/node_modules/@vladmandic/face-api/model
FACEAPI_MODELS=${FACEAPI_MODELS:-$FACEAPI_PKG_MODELS}
EPOCHS=${EPOCHS:-30}
SECS=${SECS:-5}
BACKEND=${BACKEND:-onnx}
MIRROR=${MIRROR:-false}
AUGMENT=${AUGMENT:-0}
FINETUNE=${FINETUNE:-0}
FT_EPOCHS=${FT_EPOCHS:-2}
FT_LR=${FT_LR:-3e-5}
FT_ARGS=${FT_ARGS:---lr-schedule cosine --warmup 100}
FT_BACKEND=${FT_BACKEND:-$BACKEND}
BIN=${BIN:-./agegender}
BASELINE=${BASELINE:-0}
mkdir -p "$OUT"
[ -x "$BIN" ] || ./setup.sh
CACHE_ARG=()
[ -n "${CACHE:-}" ] && CACHE_ARG=(--cache "$CACHE")
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "command: bench/backbones.sh $OUT (TRUNKS=$TRUNKS EPOCHS=$EPOCHS BACKEND=$BACKEND MIRROR=$MIRROR AUGMENT=$AUGMENT FINETUNE=$FINETUNE FT_EPOCHS=$FT_EPOCHS FT_LR=$FT_LR FT_ARGS=$FT_ARGS BASELINE=$BASELINE)"
} | tee "$OUT/header.txt"

INFER_CMD=(env CGO_ENABLED=1 go run -tags onnx ./bench/infer)
[ -n "${INFER:-}" ] && INFER_CMD=("$INFER")
infer() { # model args -> "b1 b32" ms per face on a backend
  local be=$1; shift
  "${INFER_CMD[@]}" --backend "$be" --secs "$SECS" "$@" 2>/dev/null | awk -F'\t' '{split($5,a," "); printf "%s ", a[1]}'
}

# The built-in origin nets.
if [ ! -s "$OUT/origin_speed.txt" ]; then
  "$BIN" eval --backend "$BACKEND" --task gender --confusion "$OUT/origin_gender_confusion.png" --json \
    > "$OUT/origin_gender.json" 2> "$OUT/origin_gender.log"
  "$BIN" eval --backend "$BACKEND" --task age --confusion "$OUT/origin_age_confusion.png" --json \
    > "$OUT/origin_age.json" 2> "$OUT/origin_age.log"
  echo "origin $(infer go --builtin gender) $(infer onnx --builtin gender)" > "$OUT/origin_speed.txt"
fi
if [ "$BASELINE" = 1 ] && [ ! -s "$OUT/baseline.txt" ]; then
  "$BIN" transfer --backend "$BACKEND" --train-heads=false --baseline > "$OUT/baseline.txt" 2> "$OUT/baseline.log"
fi
# row NAME TRAIN-ARGS...: trains OUT/NAME, evaluates and times it.
row() {
  local name=$1; shift
  [ -s "$OUT/$name.speed.txt" ] && return
  local start=$(date +%s)
  "$BIN" train --backend "${TRAIN_BACKEND:-$BACKEND}" --task both --batch 64 "${CACHE_ARG[@]}" --out "$OUT/$name" "$@" \
    > "$OUT/$name.train.log" 2>&1
  echo $(( $(date +%s) - start )) > "$OUT/$name.train_seconds"
  "$BIN" eval --backend "$BACKEND" --task both --model "$OUT/$name/model.agm" --calibrate "$OUT/$name/calibrated.agm" --json \
    > "$OUT/$name.eval.json" 2> "$OUT/$name.eval.log"
  echo "$name $(infer go --model "$OUT/$name/model.agm") $(infer onnx --model "$OUT/$name/model.agm")" > "$OUT/$name.speed.txt"
}
ROWS=""
for t in $TRUNKS; do
  MODELS_ARG=() # the trunk's folder: train's default (../shared/models/tfjs) but for face-api
  if [ "$t" = faceapi ]; then
    if [ ! -f "$FACEAPI_MODELS/age_gender_model.bin" ] && [ "$FACEAPI_MODELS" = "$FACEAPI_PKG_MODELS" ]; then
      (cd bench/faceapi && npm ci --ignore-scripts --no-audit --no-fund --silent)
    fi
    MODELS_ARG=(--models "$FACEAPI_MODELS")
  fi
  row "$t" --trunk "$t" "${MODELS_ARG[@]}" --epochs "$EPOCHS" --lr 1e-3 --mirror="$MIRROR" --augment "$AUGMENT"
  ROWS="$ROWS $t"
  if [ "$FINETUNE" = 1 ]; then
    # shellcheck disable=SC2086 # FT_ARGS is a list of flags
    TRAIN_BACKEND=$FT_BACKEND
    row "$t-ft" --trunk "$t" "${MODELS_ARG[@]}" --from "$OUT/$t/model.agm" --epochs "$FT_EPOCHS" --lr "$FT_LR" --mirror=false $FT_ARGS
    TRAIN_BACKEND=$BACKEND
    ROWS="$ROWS $t-ft"
  fi
done
python3 - "$OUT" $ROWS <<'PY'
import json, sys, os, re
out, trunks = sys.argv[1], sys.argv[2:]
def pct(x): return f"{100*x:.2f} %"
print("| model | gender | age exact | age 1-off | MAE (years) | CS@5 | ECE gender / age (calibrated) | training | ms/face Go b1 / b32 | ms/face ORT b1 / b32 |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
g = json.load(open(f"{out}/origin_gender.json")); a = json.load(open(f"{out}/origin_age.json"))
sp = open(f"{out}/origin_speed.txt").read().split()[1:]
for mode, key in (("centre", "center"), ("10-crop", "ten_crop")):
    print(f"| origin, built-in, 2 nets ({mode}) | {pct(g[key]['accuracy'])} | {pct(a[key]['accuracy'])} | {pct(a[key]['one_off'])} | – | – | – | (earlier) | {' / '.join(sp[:2])} ×2 | {' / '.join(sp[2:4])} ×2 |")
b = f"{out}/baseline.txt"
if os.path.exists(b):
    m = dict(re.findall(r"(\w+):([0-9.]+)", open(b).read()))
    print(f"| faceres's own heads (no training) | {pct(float(m['GenderAccuracy']))} | {pct(float(m['AgeAccuracy']))} | {pct(float(m['AgeOneOff']))} | {float(m['AgeMAE']):.2f} | – | – | – | – | – |")
for t in trunks:
    e = json.load(open(f"{out}/{t}.eval.json"))
    secs = int(open(f"{out}/{t}.train_seconds").read())
    sp = open(f"{out}/{t}.speed.txt").read().split()[1:]
    for mode, key in (("centre", "center"), ("mirror avg", "ten_crop")):
        r = e[key]
        cal = f" ({r['gender_ece_calibrated']:.3f} / {r['age_ece_calibrated']:.3f})" if r.get('gender_ece_calibrated') else ""
        what = f"{t[:-3]} last block tuned + joint heads" if t.endswith("-ft") else f"{t} frozen + joint heads"
        print(f"| {what} ({mode}) | {pct(r['gender']['accuracy'])} | {pct(r['age']['accuracy'])} | {pct(r['age']['one_off'])} | {r['years']['mae']:.2f} | {pct(r['years']['cs5'])} | {r['gender_ece']:.3f} / {r['age_ece']:.3f}{cal} | {secs//60} min | {' / '.join(sp[:2])} | {' / '.join(sp[2:4])} |")
PY
