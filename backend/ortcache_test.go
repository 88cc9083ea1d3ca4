package backend_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestORTCache checks ONNX Runtime's optimized-model cache (the "cache"
// option of third_party/compute-onnx, set by OpenInference in
// ORTCacheDir): the first process of a graph writes one file, later ones
// load it and compute the same values, and a damaged or truncated file is
// replaced, never trusted.
func TestORTCache(t *testing.T) {
	if !slices.Contains(compute.List(), "onnx") {
		t.Skip("ONNX Runtime is not compiled in; run with -tags onnx (./test.sh does)")
	}
	if backend.ORTLibrary() == "" {
		t.Skip("ONNX Runtime library not installed; run ./setup.sh")
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir := backend.ORTCacheDir()
	if !strings.HasPrefix(dir, os.Getenv("XDG_CACHE_HOME")) {
		t.Fatalf("ORTCacheDir() = %q, want a folder under XDG_CACHE_HOME", dir)
	}
	w := make([]float32, 64*32)
	for i := range w {
		w[i] = float32(i%17)/8 - 1
	}
	x := make([]float32, 4*64)
	for i := range x {
		x[i] = float32(i%5) - 2
	}
	// Each run opens a backend as a new process would, and builds a graph
	// with a constant weight (as a Predictor does), a matmul and a ReLU.
	run := func() []float32 {
		t.Helper()
		b, err := backend.OpenInference("onnx:cpu")
		if err != nil {
			t.Fatal(err)
		}
		defer b.Finalize()
		out := MustExecOnce(b, func(xn *Node) *Node {
			wn := ConstTensor(xn.Graph(), tensors.FromFlatDataAndDimensions(w, 64, 32))
			return Max(AddScalar(Dot(xn, wn).Product(), 0.5), ScalarZero(xn.Graph(), xn.DType()))
		}, tensors.FromFlatDataAndDimensions(x, 4, 64))
		return tensors.MustCopyFlatData[float32](out)
	}
	files := func() []string {
		t.Helper()
		m, err := filepath.Glob(filepath.Join(dir, "*"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	want := run()
	cached := files()
	if len(cached) != 1 || !strings.HasSuffix(cached[0], ".ort") {
		t.Fatalf("after one run the cache %s holds %v, want one .ort file", dir, cached)
	}
	sealed, err := os.ReadFile(cached[0])
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(cached[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := run(); relErr(want, got) != 0 {
		t.Errorf("from the cache: %v, want %v", got, want)
	}
	// A hit reads the file; a miss would have replaced it (a new file
	// renamed over it).
	if after, err := os.Stat(cached[0]); err != nil || !os.SameFile(before, after) {
		t.Errorf("the second run rewrote the cache file instead of reading it (err %v)", err)
	}
	damage := map[string][]byte{
		"truncated": sealed[:len(sealed)/2],
		"garbage":   []byte(strings.Repeat("not a model ", 100)),
		"bit flip":  append(append([]byte{}, sealed[:100]...), append([]byte{sealed[100] ^ 0x40}, sealed[101:]...)...),
		"empty":     nil,
	}
	for name, data := range damage {
		if err := os.WriteFile(cached[0], data, 0o600); err != nil {
			t.Fatal(err)
		}
		if got := run(); relErr(want, got) != 0 {
			t.Errorf("%s cache file: %v, want %v", name, got, want)
		}
		again, err := os.ReadFile(cached[0])
		if err != nil || len(again) != len(sealed) {
			t.Errorf("%s cache file was not rebuilt: %d bytes (err %v), want %d", name, len(again), err, len(sealed))
		}
		if f := files(); len(f) != 1 {
			t.Errorf("%s cache file: the cache holds %v, want one file", name, f)
		}
	}
	// "cache=" turns the cache off.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	b, err := backend.OpenInference("onnx:cpu,cache=")
	if err != nil {
		t.Fatal(err)
	}
	MustExecOnce(b, func(xn *Node) *Node { return Neg(xn) }, x)
	b.Finalize()
	if f := files(); len(f) != 0 {
		t.Errorf("with cache= the cache holds %v, want nothing", f)
	}
}
