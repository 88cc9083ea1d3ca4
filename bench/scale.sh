#!/usr/bin/env bash
# Scale-out of `agegender serve`: 1, then 3 replicas behind nginx on
# loopback, each load driven by wrk with CONNS connections (default 200)
# for DURATION (default 60s), every request POSTing one of IMAGES real
# UTKFace photos in turn. Records, per replica count: requests,
# throughput, p50/p90/p99/max latency, errors (non-2xx, connect, read,
# timeout) and each replica's peak memory (VmHWM), in OUT/summary.md and
# OUT/<n>/result.json.
#
#   bench/scale.sh [OUT]     (default runs/scale)
#
# Environment: REPLICAS ("1 3"), CONNS (200), DURATION (60s), THREADS (2),
# IMAGES (16), QUEUE_TIMEOUT (serve's --queue-timeout, default 30s),
# SERVE_FLAGS (more serve flags, like "--detector pigo"),
# BIN (./agegender; built when missing), BASE_PORT (18180:
# replicas on BASE_PORT+1...), LB_PORT (18190). Installs nginx and wrk
# (Debian packages) when missing. Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT=simd GOMLX_NO_AUTO_INSTALL=1
OUT=${1:-runs/scale}
REPLICAS=${REPLICAS:-"1 3"}
CONNS=${CONNS:-200}
DURATION=${DURATION:-60s}
THREADS=${THREADS:-2}
IMAGES=${IMAGES:-16}
QUEUE_TIMEOUT=${QUEUE_TIMEOUT:-30s}
SERVE_FLAGS=${SERVE_FLAGS:-}
BIN=${BIN:-./agegender}
BASE_PORT=${BASE_PORT:-18180}
LB_PORT=${LB_PORT:-18190}
DATA=../shared/data/utkface/images

need=""
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need="$need nginx"
command -v wrk >/dev/null || need="$need wrk"
if [ -n "$need" ]; then
  echo "installing$need (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -d "$DATA" ] || { echo "no UTKFace photos in $DATA: put ../shared next to the repository" >&2; exit 1; }
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/agegender
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# IMAGES photos spread evenly over the data set (ages, genders, sizes vary).
mapfile -t all < <(ls "$DATA" | grep -i '\.jpg$' | sort)
step=$(( ${#all[@]} / IMAGES ))
{
  echo "local paths = {"
  for i in $(seq 0 $((IMAGES - 1))); do echo "  \"$(cd "$DATA" && pwd)/${all[$((i * step))]}\","; done
  echo "}"
  cat <<'LUA'
local bodies = {}
for _, p in ipairs(paths) do
  local f = assert(io.open(p, "rb"))
  bodies[#bodies + 1] = f:read("*a")
  f:close()
end
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/v1/predict", {["Content-Type"] = "image/jpeg"}, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("JSON {\"requests\":%d,\"errors_status\":%d,\"errors_connect\":%d,\"errors_timeout\":%d,\"errors_read\":%d,\"errors_write\":%d,\"rps\":%.2f,\"p50_ms\":%.1f,\"p90_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f}\n",
    summary.requests, e.status, e.connect, e.timeout, e.read, e.write, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
LUA
} > "$OUT/post.lua"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# wait_ready URL: up to 120 s for 200 from URL.
wait_ready() {
  for _ in $(seq 1 600); do curl -fs "$1" >/dev/null && return 0; sleep 0.2; done
  echo "not ready after 120 s: $1" >&2
  return 1
}

{
  echo "date: $(date -u +%F' '%T) UTC"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "command: bench/scale.sh $OUT (REPLICAS=\"$REPLICAS\" CONNS=$CONNS DURATION=$DURATION THREADS=$THREADS IMAGES=$IMAGES QUEUE_TIMEOUT=$QUEUE_TIMEOUT SERVE_FLAGS=\"$SERVE_FLAGS\" BIN=$BIN)"
  echo "nginx: $($NGINX -v 2>&1 | cut -d/ -f2); wrk: $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
} > "$OUT/machine.txt"
echo "| replicas | requests | throughput | p50 | p90 | p99 | max | errors | peak memory per replica |" > "$OUT/summary.md"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---|" >> "$OUT/summary.md"

for n in $REPLICAS; do
  dir="$OUT/$n"
  rm -rf "$dir"
  mkdir -p "$dir/tmp"
  pids=()
  servers=""
  for i in $(seq 1 "$n"); do
    port=$((BASE_PORT + i))
    "$BIN" serve --addr 127.0.0.1:$port --queue-timeout "$QUEUE_TIMEOUT" $SERVE_FLAGS --log-json > "$dir/replica-$i.log" 2>&1 &
    pids+=($!)
    servers="$servers    server 127.0.0.1:$port max_fails=0;"$'\n'
  done
  for i in $(seq 1 "$n"); do wait_ready "http://127.0.0.1:$((BASE_PORT + i))/readyz"; done
  cat > "$dir/nginx.conf" <<NGINX
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  # The client's X-Request-ID, or nginx's own id: one id in both logs.
  map \$http_x_request_id \$req_id { default \$http_x_request_id; "" \$request_id; }
  upstream agegender {
    least_conn;
$servers    keepalive 64;
  }
  server {
    listen 127.0.0.1:$LB_PORT;
    client_max_body_size 20m;
    client_body_buffer_size 1m;
    location / {
      proxy_pass http://agegender;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Request-ID \$req_id;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_read_timeout 120s;
      # The service is stateless: a request refused by a draining or
      # busy replica (503) may go to another one, POST included.
      proxy_next_upstream error timeout http_503 non_idempotent;
      proxy_next_upstream_tries 2;
    }
  }
}
NGINX
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
  pids+=($!)
  wait_ready "http://127.0.0.1:$LB_PORT/readyz"
  echo "== $n replica(s): wrk -t$THREADS -c$CONNS -d$DURATION"
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 60s -s "$OUT/post.lua" "http://127.0.0.1:$LB_PORT/v1/predict" | tee "$dir/wrk.txt"
  mem=""
  for i in $(seq 1 "$n"); do
    mem="$mem $(awk '/VmHWM/{printf "%.0f MB", $2/1024}' /proc/${pids[$((i - 1))]}/status)"
  done
  cleanup
  wait 2>/dev/null || true
  # Counted after the replicas drained: requests still queued when wrk
  # stopped are answered then, too.
  codes=$(cat "$dir"/replica-*.log | grep -o '"route":"POST /v1/predict","status":[0-9]*' | sed 's/.*://' | sort | uniq -c | awk '{printf "%s×%s ", $2, $1}')
  r=$(grep '^JSON' "$dir/wrk.txt" | sed 's/^JSON //')
  echo "$r" > "$dir/result.json"
  python3 - "$n" "$r" "$mem" "$codes" >> "$OUT/summary.md" <<'PY'
import json, sys
n, r, mem, codes = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3].strip(), sys.argv[4].strip()
errs = r["errors_status"] + r["errors_connect"] + r["errors_timeout"] + r["errors_read"] + r["errors_write"]
s = lambda ms: f"{ms/1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"
print(f"| {n} | {r['requests']:,} | {r['rps']:.1f} req/s | {s(r['p50_ms'])} | {s(r['p90_ms'])} | {s(r['p99_ms'])} | {s(r['max_ms'])} | {errs} (replica statuses: {codes}) | {mem.replace('MB ', 'MB, ')} |")
PY
done
cat "$OUT/machine.txt" "$OUT/summary.md"
