#!/usr/bin/env bash
# Side by side on the UTKFace test split (FNV-1a-64(file name) % 100 >= 90,
# n = 2,068): the built-in origin nets (the paper's, one per task) and a
# pretrained trunk, frozen, with joint gender + age-in-years heads trained
# here (agegender train --trunk NAME --task both). For each: gender
# accuracy, age-group exact and 1-off accuracy, MAE and CS@5 in years, ECE,
# training time, and inference ms per face at batch 1 and 32 on pure Go and
# ONNX Runtime (bench/infer). Prints a markdown table; logs and JSON go to
# OUT.
#
#   bench/backbones.sh runs/backbones                  # faceres, 30 epochs
#   TRUNKS="faceres mobilefacenet" EPOCHS=20 bench/backbones.sh runs/bb
#
# Features are cached (CACHE, default the user's cache folder), so a second
# run only trains the heads: about 44 ms per image for faceres on ONNX
# Runtime, so 19k train+val images take 15–45 minutes the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT=simd GOMLX_NO_AUTO_INSTALL=1
OUT=${1:-runs/backbones}
TRUNKS=${TRUNKS:-faceres}
EPOCHS=${EPOCHS:-30}
SECS=${SECS:-5}
BACKEND=${BACKEND:-onnx}
MIRROR=${MIRROR:-false}
mkdir -p "$OUT"
[ -x ./agegender ] || ./setup.sh
CACHE_ARG=()
[ -n "${CACHE:-}" ] && CACHE_ARG=(--cache "$CACHE")
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "command: bench/backbones.sh $OUT (TRUNKS=$TRUNKS EPOCHS=$EPOCHS BACKEND=$BACKEND MIRROR=$MIRROR)"
} | tee "$OUT/header.txt"

infer() { # model args -> "b1 b32" ms per face on a backend
  local be=$1; shift
  CGO_ENABLED=1 go run -tags onnx ./bench/infer --backend "$be" --secs "$SECS" "$@" 2>/dev/null | awk -F'\t' '{split($5,a," "); printf "%s ", a[1]}'
}

# The built-in origin nets.
./agegender eval --backend "$BACKEND" --task gender --confusion "$OUT/origin_gender_confusion.png" --json \
  > "$OUT/origin_gender.json" 2> "$OUT/origin_gender.log"
./agegender eval --backend "$BACKEND" --task age --confusion "$OUT/origin_age_confusion.png" --json \
  > "$OUT/origin_age.json" 2> "$OUT/origin_age.log"
echo "origin $(infer go --builtin gender) $(infer onnx --builtin gender)" > "$OUT/origin_speed.txt"

for t in $TRUNKS; do
  start=$(date +%s)
  ./agegender train --backend "$BACKEND" --trunk "$t" --task both --epochs "$EPOCHS" --lr 1e-3 --batch 64 \
    --mirror="$MIRROR" "${CACHE_ARG[@]}" --out "$OUT/$t" > "$OUT/$t.train.log" 2>&1
  echo $(( $(date +%s) - start )) > "$OUT/$t.train_seconds"
  ./agegender eval --backend "$BACKEND" --task both --model "$OUT/$t/model.agm" --calibrate "$OUT/$t/calibrated.agm" --json \
    > "$OUT/$t.eval.json" 2> "$OUT/$t.eval.log"
  echo "$t $(infer go --model "$OUT/$t/model.agm") $(infer onnx --model "$OUT/$t/model.agm")" > "$OUT/$t.speed.txt"
done

python3 - "$OUT" $TRUNKS <<'PY'
import json, sys, os
out, trunks = sys.argv[1], sys.argv[2:]
def pct(x): return f"{100*x:.2f} %"
print("| model | gender | age exact | age 1-off | MAE (years) | CS@5 | ECE gender / age (calibrated) | training | ms/face Go b1 / b32 | ms/face ORT b1 / b32 |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
g = json.load(open(f"{out}/origin_gender.json")); a = json.load(open(f"{out}/origin_age.json"))
sp = open(f"{out}/origin_speed.txt").read().split()[1:]
for mode, key in (("centre", "center"), ("10-crop", "ten_crop")):
    print(f"| origin, built-in, 2 nets ({mode}) | {pct(g[key]['accuracy'])} | {pct(a[key]['accuracy'])} | {pct(a[key]['one_off'])} | – | – | – | (earlier) | {' / '.join(sp[:2])} ×2 | {' / '.join(sp[2:4])} ×2 |")
for t in trunks:
    e = json.load(open(f"{out}/{t}.eval.json"))
    secs = int(open(f"{out}/{t}.train_seconds").read())
    sp = open(f"{out}/{t}.speed.txt").read().split()[1:]
    for mode, key in (("centre", "center"), ("mirror avg", "ten_crop")):
        r = e[key]
        cal = f" ({r['gender_ece_calibrated']:.3f} / {r['age_ece_calibrated']:.3f})" if r.get('gender_ece_calibrated') else ""
        print(f"| {t} frozen + joint heads ({mode}) | {pct(r['gender']['accuracy'])} | {pct(r['age']['accuracy'])} | {pct(r['age']['one_off'])} | {r['years']['mae']:.2f} | {pct(r['years']['cs5'])} | {r['gender_ece']:.3f} / {r['age_ece']:.3f}{cal} | {secs//60} min | {' / '.join(sp[:2])} | {' / '.join(sp[2:4])} |")
PY
