#!/usr/bin/env bash
# Runs agegender's checks: gofmt, go vet, and the test suite on the pure-Go
# backend; then, when ONNX Runtime is installed (./setup.sh puts it in
# .deps/onnxruntime), the suite again with the ONNX Runtime backend compiled
# in, including the cross-backend gradient comparison. Tests read the
# datasets under AGEGENDER_DATA (default ../shared/data) and skip when they
# are missing, unless AGEGENDER_REQUIRE_DATA=1 (as in CI) makes that a
# failure.
set -euo pipefail
cd "$(dirname "$0")"
export GOEXPERIMENT=simd GOMLX_NO_AUTO_INSTALL=1
unformatted=$(gofmt -l $(git ls-files '*.go' ':!third_party' 2>/dev/null || find . -name '*.go' -not -path './.deps/*' -not -path './third_party/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed:" $unformatted >&2
  exit 1
fi
go vet ./...
go test -count=1 -timeout 20m ./...
# The patches to the pure-Go backend (its own module; see
# third_party/compute/README.md): the worker-pool deadlock and float16
# subnormals must stay fixed.
(cd third_party/compute && go test -count=1 -timeout 2m ./internal/gobackend/workerspool/ ./dtypes/float16/)
# Short runs of every fuzz target (the long ones: FUZZTIME=10m bench/fuzz.sh).
FUZZTIME=${FUZZTIME:-5s} OUT=${TMPDIR:-/tmp}/agegender-fuzz.log bench/fuzz.sh
# libjpeg-turbo (the libjpeg tag, which ./setup.sh's binary gets when the
# library is installed): big JPEGs decoded scaled and in regions.
libjpeg=""
if imageio/libjpeg-check.sh; then
  libjpeg=libjpeg
  echo "--- the photo pipeline again with libjpeg-turbo (-tags libjpeg)" >&2
  CGO_ENABLED=1 go vet -tags libjpeg ./imageio/ ./face/
  CGO_ENABLED=1 go test -count=1 -timeout 10m -tags libjpeg ./imageio/ ./face/ . ./internal/photos/ ./serve/
elif [ -n "${AGEGENDER_REQUIRE_LIBJPEG:-}" ]; then
  echo "libjpeg-turbo's headers are missing (apt-get install libjpeg62-turbo-dev)" >&2
  exit 1
else
  echo "--- libjpeg-turbo not installed (apt-get install libjpeg62-turbo-dev): skipped its suite" >&2
fi
if [ -f .deps/onnxruntime/libonnxruntime.so.1 ]; then
  echo "--- again with the ONNX Runtime backend (-tags onnx,$libjpeg)" >&2
  # GOMLX_BACKEND makes every test that opens the default backend use ONNX
  # Runtime (these packages are the ones whose tests do); the backend test
  # also compares gradients against pure Go.
  GOMLX_BACKEND=onnx:cpu AGEGENDER_REQUIRE_ONNX=1 CGO_ENABLED=1 \
    go test -count=1 -timeout 20m -tags "onnx,$libjpeg" ./backend/ ./interop/onnx/ ./interop/tfjs/ ./transfer/ . ./serve/ ./predict/ \
    ./face/ ./experiments/ ./e2e/
else
  echo "--- ONNX Runtime not installed (run ./setup.sh): skipped the onnx backend suite" >&2
fi
