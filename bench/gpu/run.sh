#!/usr/bin/env bash
# Runs on the GPU machine from the folder prepare.sh filled; every step is
# bounded by `timeout` and writes to $OUT (default ./out), keeping to what a
# device call returns (at most 8 files of 16 MiB).
#
#   mode speed: GoMLX-XLA inference (batch FWD) and Adam training step (batch
#     TRAIN) for origin at 227, batches kept on the GPU, next to PyTorch fp32
#     and bf16 on the same GPU → results.txt
#   mode train: origin at 227 trained on the packed UTKFace train split for
#     each task (Adam, EPOCHS, batch BATCH, best epoch by validation
#     accuracy) → results.txt, {gender,age}_history.json and each model.agm
#     split into 15 MiB parts (cat them back together).
#   mode finetune: from.agm's whole trunk and heads trained on the packed
#     train split (train --from --tune all: Adam, cosine schedule with
#     warm-up, EPOCHS, batch BATCH, trunk rate TRUNK_LR_MULT × LR, best
#     epoch by validation score) → results.txt, history.json, curves.png,
#     model.agm (the checkpoint, 50 MiB, stays behind).
#
# To rehearse on a CPU: prepare with BUILD_TAGS=onnx, then run with
# BACKEND=onnx DEVICE=cpu PYTHON=/usr/bin/python3 (and small EPOCHS/LIMIT,
# INPUT, FWD, TRAIN) plus ONNXRUNTIME_SHARED_LIBRARY_PATH.
set -uo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-./out}
mkdir -p "$OUT"
MODE=${MODE:-$(cat mode)}
if [ -z "${BACKEND:-}" ]; then
  PLUGIN=$(python3 -c 'import importlib.util as u, glob, os; s = u.find_spec("jax_plugins"); print(sorted(glob.glob(os.path.join(list(s.submodule_search_locations)[0], "*", "xla_cuda_plugin.so")))[0])')
  export GOMLX_BACKEND="xla:$PLUGIN" GOMLX_NO_AUTO_INSTALL=1 TF_CPP_MIN_LOG_LEVEL=1
  export XLA_FLAGS=--xla_gpu_cuda_data_dir=/usr/local/cuda-13.0
  BACKEND=$GOMLX_BACKEND
fi
for f in *.xz; do [ -e "$f" ] && xz -d -f "$f"; done
[ -e utkface.tar ] && tar -xf utkface.tar && rm utkface.tar
R="$OUT/results.txt"
{ date -u; nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"; echo "mode $MODE backend $BACKEND"; } > "$R"
INPUT=${INPUT:-227}
if [ "$MODE" = speed ]; then
  DEVICE=${DEVICE:-cuda}
  FWD=${FWD:-256} TRAIN=${TRAIN:-128} SECS=${SECS:-10}
  echo "== gomlx" >> "$R"
  timeout 180 ./speed --backend "$BACKEND" --input "$INPUT" --batches "$FWD" --train-batch "$TRAIN" --secs "$SECS" >> "$R" 2> "$OUT/log.txt"
  echo "== torch fp32 (rc $?)" >> "$R"
  timeout 120 "${PYTHON:-python3}" torch_speed.py --device "$DEVICE" --input "$INPUT" --batches "$FWD" --train-batch "$TRAIN" --secs "$SECS" >> "$R" 2>> "$OUT/log.txt"
  if [ "$DEVICE" != cpu ]; then
    echo "== torch bf16 (rc $?)" >> "$R"
    timeout 120 "${PYTHON:-python3}" torch_speed.py --device "$DEVICE" --bf16 --input "$INPUT" --batches "$FWD" --train-batch "$TRAIN" --secs "$SECS" >> "$R" 2>> "$OUT/log.txt"
  fi
  echo "== done (rc $?)" >> "$R"
elif [ "$MODE" = finetune ]; then
  EPOCHS=${EPOCHS:-10} BATCH=${BATCH:-64} TASK_SECS=${TASK_SECS:-300}
  echo "== finetune whole trunk ($EPOCHS epochs, batch $BATCH, lr ${LR:-1e-4}, trunk x${TRUNK_LR_MULT:-0.1}, limit ${TASK_SECS}s)" >> "$R"
  start=$(date +%s)
  timeout "$TASK_SECS" ./agegender train --backend "$BACKEND" --trunk faceres --task both --data utkface \
    --from from.agm --tune all --lr "${LR:-1e-4}" --trunk-lr-mult "${TRUNK_LR_MULT:-0.1}" --lr-schedule cosine \
    --warmup 50 --batch "$BATCH" --epochs "$EPOCHS" --mirror=false --gender-weight 2 --cache "" ${LIMIT:+--limit "$LIMIT"} --out "$OUT/ft" 2>&1 |
    tr '\r' '\n' | grep -E '^(epoch [0-9]+:|trained|stage|agegender)' >> "$R"
  echo "-- finetune: rc ${PIPESTATUS[0]}, $(( $(date +%s) - start )) s" >> "$R"
  rm -f "$OUT/ft/checkpoint.agm"
  mv "$OUT"/ft/* "$OUT"/ 2>/dev/null; rmdir "$OUT/ft" 2>/dev/null
else
  EPOCHS=${EPOCHS:-15} BATCH=${BATCH:-128} TASK_SECS=${TASK_SECS:-240}
  for task in gender age; do
    echo "== train $task (input $INPUT, $EPOCHS epochs, batch $BATCH, limit ${TASK_SECS}s)" >> "$R"
    start=$(date +%s)
    timeout "$TASK_SECS" ./agegender train --backend "$BACKEND" --data utkface --task $task --input "$INPUT" \
      --epochs "$EPOCHS" --batch "$BATCH" --optimizer adam ${LIMIT:+--limit "$LIMIT"} --out "$OUT/$task" 2>&1 \
      | tr '\r' '\n' | grep -v '^\s*$' | grep -v 'batch/' | tail -n 40 >> "$R"
    echo "-- $task: rc ${PIPESTATUS[0]}, $(( $(date +%s) - start )) s" >> "$R"
    if [ -f "$OUT/$task/model.agm" ]; then
      split -b 15M "$OUT/$task/model.agm" "$OUT/${task}_model.agm.part-"
      cp "$OUT/$task/history.json" "$OUT/${task}_history.json" 2>/dev/null
    fi
    rm -rf "${OUT:?}/$task"
  done
fi
cat "$R"
