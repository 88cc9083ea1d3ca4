#!/usr/bin/env bash
# Runs on the GPU machine from the folder prepare.sh filled; every step is
# bounded by `timeout` and writes to $OUT (default ./out). BACKEND may be
# set to "go", DEVICE to "cpu" and PYTHON to /usr/bin/python3 to rehearse
# the script on a CPU machine.
set -uo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-./out}
mkdir -p "$OUT"
if [ -z "${BACKEND:-}" ]; then
  PLUGIN=$(python3 -c 'import importlib.util as u, glob, os; s = u.find_spec("jax_plugins"); print(sorted(glob.glob(os.path.join(list(s.submodule_search_locations)[0], "*", "xla_cuda_plugin.so")))[0])')
  export GOMLX_BACKEND="xla:$PLUGIN" GOMLX_NO_AUTO_INSTALL=1 TF_CPP_MIN_LOG_LEVEL=1
  export XLA_FLAGS=--xla_gpu_cuda_data_dir=/usr/local/cuda-13.0
  BACKEND=$GOMLX_BACKEND
fi
DEVICE=${DEVICE:-cuda}
INPUT=${INPUT:-227}
FWD=${FWD:-256}
TRAIN=${TRAIN:-128}
SECS=${SECS:-10}
{ date -u; nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"; } > "$OUT/machine.txt"
timeout 180 ./speed --backend "$BACKEND" --input "$INPUT" --batches "$FWD" --train-batch "$TRAIN" --secs "$SECS" > "$OUT/gomlx.jsonl" 2> "$OUT/gomlx.log"
timeout 120 "${PYTHON:-python3}" torch_speed.py --device "$DEVICE" --input "$INPUT" --batches "$FWD" --train-batch "$TRAIN" --secs "$SECS" > "$OUT/torch_fp32.jsonl" 2> "$OUT/torch_fp32.log"
if [ "$DEVICE" != cpu ]; then
  timeout 120 "${PYTHON:-python3}" torch_speed.py --device "$DEVICE" --bf16 --input "$INPUT" --batches "$FWD" --train-batch "$TRAIN" --secs "$SECS" > "$OUT/torch_bf16.jsonl" 2> "$OUT/torch_bf16.log"
fi
cat "$OUT"/*.jsonl
