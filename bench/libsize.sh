#!/usr/bin/env bash
# What the agegender library costs a program that imports it: builds
# bench/libsize (New + Info + Close on the built-in models) as a module of
# its own that requires this repository (as a `go get` user would), then
# prints the binary's size, the modules in its module graph and linked into
# it, and the plotting, PDF, LaTeX and font modules among them (there must
# be none), and the same check on `go list -deps` of the root package and
# serve. Needs the Go module proxy (or a warm module cache).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT=simd GOMLX_NO_AUTO_INSTALL=1
repo=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp bench/libsize/main.go "$tmp/"
{
  echo "module example.com/libsize"
  echo
  echo "go $(go list -m -f '{{.GoVersion}}')"
  echo
  echo "require github.com/agegender/agegender v0.0.0"
  echo
  echo "replace github.com/agegender/agegender => $repo"
  # A consumer needs the repository's own replacements too.
  go mod edit -json | python3 -c 'import json,sys
for r in json.load(sys.stdin).get("Replace") or []:
    print("replace %s => %s" % (r["Old"]["Path"], r["New"]["Path"].replace("./", sys.argv[1] + "/", 1)))' "$repo"
} > "$tmp/go.mod"
(cd "$tmp" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 && go build -o libsize .)
heavy='gonum.org/v1/plot|go-pdf|go-latex|go-fonts|golang/freetype|ajstarks/svgo|sbinet/gg'
echo "binary: $(stat -c %s "$tmp/libsize") bytes"
echo "modules in the program's module graph (go list -m all, less itself): $(cd "$tmp" && go list -m all | tail -n +2 | wc -l)"
echo "modules linked into it (go version -m): $(go version -m "$tmp/libsize" | grep -c $'^\tdep')"
echo "modules whose source it downloads (go.sum, less /go.mod lines): $(grep -vc '/go.mod ' "$tmp/go.sum")"
echo "plot/PDF/LaTeX/font modules among them: $(grep -v '/go.mod ' "$tmp/go.sum" | grep -Ec "$heavy" || true)"
for p in . ./serve; do
  echo "plot/PDF/LaTeX/font packages in go list -deps $p: $(go list -deps "$p" | grep -Ec "$heavy" || true)"
done
