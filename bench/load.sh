#!/usr/bin/env bash
# Load test of `agegender serve` on loopback with wrk: CONNS concurrent
# connections (default 200) for DURATION (default 60s), each POSTing a real
# UTKFace face; records throughput, latency percentiles, errors and the
# server's peak memory (VmHWM).
#
#   bench/load.sh [OUT]          (default runs/load; needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT=simd GOMLX_NO_AUTO_INSTALL=1
OUT=${1:-runs/load}
CONNS=${CONNS:-200}
DURATION=${DURATION:-60s}
THREADS=${THREADS:-2}
BIN=${BIN:-./agegender}
PORT=${PORT:-18080}
mkdir -p "$OUT"
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/agegender
IMG=$(ls ../shared/data/utkface/images/*.jpg | sed -n 5000p)
cat > "$OUT/post.lua" <<LUA
local f = io.open("$IMG", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "image/jpeg"
done = function(summary, latency, requests)
  io.write(string.format("JSON {\"requests\":%d,\"errors_status\":%d,\"errors_connect\":%d,\"errors_timeout\":%d,\"errors_read\":%d,\"rps\":%.1f,\"p50_ms\":%.1f,\"p90_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f}\n",
    summary.requests, summary.errors.status, summary.errors.connect, summary.errors.timeout, summary.errors.read,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
LUA
"$BIN" serve --addr 127.0.0.1:$PORT --log-json > "$OUT/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for i in $(seq 1 600); do curl -fs http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done  # ready: models loaded
{
  echo "date: $(date -u +%F' '%T) UTC"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB"
  echo "command: bench/load.sh $OUT (CONNS=$CONNS DURATION=$DURATION THREADS=$THREADS BIN=$BIN), image $(basename "$IMG")"
} > "$OUT/machine.txt"
wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 30s -s "$OUT/post.lua" http://127.0.0.1:$PORT/v1/predict | tee "$OUT/wrk.txt"
peak=$(awk '/VmHWM/{print $2" "$3}' /proc/$pid/status)
codes=$(grep -o "\"route\":\"POST /v1/predict\",\"status\":[0-9]*" "$OUT/server.log" | sed "s/.*://" | sort | uniq -c | tr '\n' ' ')
echo "server peak memory (VmHWM): $peak; status codes: $codes" | tee -a "$OUT/wrk.txt"
kill -INT $pid; wait $pid || true
grep '^JSON' "$OUT/wrk.txt" | sed 's/^JSON //' > "$OUT/result.json"
cat "$OUT/machine.txt" "$OUT/result.json"
