#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each (default 10m), one after the
# other, and appends a line per target to OUT (default runs/fuzz/log.txt).
# Crashers are kept by `go test` in the package's testdata/fuzz/ folder,
# which is the seed corpus committed with the code.
#
#   FUZZTIME=10m bench/fuzz.sh          # the issue's 10 minutes per parser
#   FUZZTIME=5s  bench/fuzz.sh          # what ./test.sh runs
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT=simd GOMLX_NO_AUTO_INSTALL=1
T=${FUZZTIME:-10m}
OUT=${OUT:-runs/fuzz/log.txt}
mkdir -p "$(dirname "$OUT")"
status=0
for f in $(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do
  pkg=./$(dirname "${f#./}")
  # Targets behind the libjpeg tag (imageio's libjpeg-turbo path) run with
  # it where the library is installed.
  tags=""
  if head -1 "$f" | grep -q 'libjpeg'; then
    imageio/libjpeg-check.sh || { echo "$(date -u +%FT%TZ) $pkg $f skipped: libjpeg-turbo not installed" | tee -a "$OUT"; continue; }
    # Its seed is an 80 KB JPEG, each run ~20 ms: minimizing every new
    # interesting input (execs the log does not count) would take the
    # whole short run, so minimization is capped.
    tags="-tags=libjpeg -fuzzminimizetime=2s"
  fi
  for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | cut -d' ' -f2); do
    start=$(date +%s)
    run() { CGO_ENABLED=1 go test $tags -run '^$' -fuzz "^${name}\$" -fuzztime "$T" -parallel "${PARALLEL:-$(nproc)}" "$pkg" > /tmp/fuzz-$name.log 2>&1; }
    # Go's fuzzer sometimes ends a short run with "context deadline
    # exceeded" and no failing input (a harness race when -fuzztime runs
    # out); that is retried once. A real failure writes its input.
    if run || { grep -q 'context deadline exceeded' /tmp/fuzz-$name.log &&
      ! grep -q 'Failing input written' /tmp/fuzz-$name.log && run; }; then
      res=ok
    else
      res=FAIL; status=1; tail -20 /tmp/fuzz-$name.log >&2
    fi
    execs=$(grep -o 'execs: [0-9]*' /tmp/fuzz-$name.log | tail -1 | cut -d' ' -f2 || true)
    echo "$(date -u +%FT%TZ) $pkg $name $T $res execs=${execs:-?} wall=$(( $(date +%s) - start ))s" | tee -a "$OUT"
  done
done
exit $status
