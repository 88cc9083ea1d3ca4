package backend_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/ops"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/loss"
)

// others lists the non-default backends compiled into this test binary
// (build with -tags onnx to add ONNX Runtime).
func others(t *testing.T) []compute.Backend {
	var out []compute.Backend
	for _, k := range compute.List() {
		if k == "go" || k == "onnxruntime" {
			continue
		}
		b, err := backend.Open(k)
		if err != nil {
			t.Fatalf("backend %s is compiled in but does not start: %v", k, err)
		}
		out = append(out, b)
	}
	return out
}

// lossAndGrads computes the loss of net on a fixed batch and its gradient
// with respect to every weight, on backend b, in cfg.DType.
func lossAndGrads(t *testing.T, b compute.Backend, cfg model.Config, img []float64, labels []int32) (float64, map[string][]float64) {
	t.Helper()
	var x *tensors.Tensor
	if cfg.DType == dtypes.Float64 {
		x = tensors.FromFlatDataAndDimensions(img, len(labels), cfg.Input, cfg.Input, 3)
	} else {
		img32 := make([]float32, len(img))
		for i, v := range img {
			img32[i] = float32(v)
		}
		x = tensors.FromFlatDataAndDimensions(img32, len(labels), cfg.Input, cfg.Input, 3)
	}
	y := tensors.FromFlatDataAndDimensions(labels, len(labels), 1)
	cfg.Impl = backend.Impl(b)
	store := mlx.NewStore()
	var names []string
	exec, err := mlx.NewExec(b, store, func(s *mlx.Scope, in []*Node) []*Node {
		logits := model.Logits(s.In(model.Scope), cfg, in[0])
		l := ReduceAllMean(loss.SparseCategoricalCrossEntropyLogits([]*Node{in[1]}, []*Node{logits}))
		var vs []*Node
		names = names[:0]
		for v := range s.Store().IterVariables() {
			names = append(names, v.Path())
			vs = append(vs, v.NodeValue(in[0].Graph()))
		}
		return append([]*Node{ConvertDType(l, dtypes.Float64)}, Gradient(l, vs...)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec(x, y)
	if err != nil {
		t.Fatalf("%s on %s: %v", cfg.Net, b.Name(), err)
	}
	grads := map[string][]float64{}
	for i, n := range names {
		if cfg.DType == dtypes.Float64 {
			grads[n] = tensors.MustCopyFlatData[float64](out[i+1])
			continue
		}
		g := tensors.MustCopyFlatData[float32](out[i+1])
		g64 := make([]float64, len(g))
		for j, v := range g {
			g64[j] = float64(v)
		}
		grads[n] = g64
	}
	return out[0].Value().(float64), grads
}

// TestBackendsAgreeOnGradients checks, for every network, that each
// compiled-in backend computes the same loss and weight gradients as the
// pure-Go backend on the same weights and input — relative error ≤ 1e-4 in
// float32, ≤ 1e-7 in float64 — and the same bits when run twice, so a
// backend that silently gets a gradient wrong, or computes it racily,
// cannot go unnoticed. (ONNX Runtime's parallel scatter-add lost updates
// with repeated indices; model/ops/grad.go explains the cure.)
func TestBackendsAgreeOnGradients(t *testing.T) {
	alts := others(t)
	if len(alts) == 0 {
		if os.Getenv("AGEGENDER_REQUIRE_ONNX") != "" {
			t.Fatal("AGEGENDER_REQUIRE_ONNX is set but no other backend is compiled in; build the test with -tags onnx")
		}
		t.Skip("only the pure-Go backend is compiled in; run with -tags onnx (./test.sh does) to compare backends")
	}
	ref, err := backend.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, dt := range []struct {
		dtype dtypes.DType
		tol   float64
	}{{dtypes.Float32, 1e-4}, {dtypes.Float64, 1e-7}} {
		for _, net := range model.Names() {
			cfg := model.Config{Net: net, Classes: 8, Input: model.MinInput(net), Seed: 3, DType: dt.dtype}
			const n = 2
			img := make([]float64, n*cfg.Input*cfg.Input*3)
			for i := range img {
				img[i] = rng.NormFloat64() * 50
			}
			labels := []int32{1, 6}
			l0, g0 := lossAndGrads(t, ref, cfg, img, labels)
			for _, b := range alts {
				t.Run(fmt.Sprintf("%s/%s/%s", dt.dtype, net, b.Name()), func(t *testing.T) {
					l1, g1 := lossAndGrads(t, b, cfg, img, labels)
					if math.Abs(l1-l0) > dt.tol*math.Abs(l0) {
						t.Errorf("loss %g on %s vs %g on go", l1, b.Name(), l0)
					}
					if len(g1) != len(g0) {
						t.Fatalf("%d gradients vs %d", len(g1), len(g0))
					}
					for name, a := range g0 {
						if e := relErr(a, g1[name]); e > dt.tol {
							t.Errorf("gradient of %s: relative error %.2g between go and %s", name, e, b.Name())
						}
					}
					if dt.dtype != dtypes.Float64 {
						return
					}
					_, again := lossAndGrads(t, b, cfg, img, labels)
					for name, a := range g1 {
						if e := relErr(a, again[name]); e != 0 {
							t.Errorf("gradient of %s differs between two runs on %s (relative %.2g): nondeterministic", name, b.Name(), e)
						}
					}
				})
			}
		}
	}
}

// relErr is max|a-b| / max|a|, robust for tensors with near-zero entries.
func relErr[T float32 | float64](a, b []T) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var diff, scale float64
	for i := range a {
		diff = math.Max(diff, math.Abs(float64(a[i])-float64(b[i])))
		scale = math.Max(scale, math.Abs(float64(a[i])))
	}
	if scale == 0 {
		return diff
	}
	return diff / scale
}

func TestMissingBackendSaysHowToInstall(t *testing.T) {
	_, err := backend.Open("xla")
	if err == nil {
		t.Skip("xla is compiled in")
	}
	if want := "-tags xla"; !contains(err.Error(), want) {
		t.Errorf("error %q does not say how to get the backend (%q)", err, want)
	}
	if _, err := backend.Open("nosuch"); err == nil {
		t.Error("an unknown backend opened")
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestInferenceImplAgrees checks that the ops each backend uses for
// inference (backend.InferenceImpl: on ONNX Runtime, portable ops for small
// batches and its native convolution and pooling from ops.AutoNativeBatch)
// give the same probabilities as the pure-Go portable ops, for both batch
// sizes, at the paper's 227×227 input (where ceil-mode pooling pads the
// edges) and at every network's smallest input.
func TestInferenceImplAgrees(t *testing.T) {
	alts := others(t)
	if len(alts) == 0 {
		t.Skip("only the pure-Go backend is compiled in; run with -tags onnx")
	}
	ref, _ := backend.Open("go")
	rng := rand.New(rand.NewPCG(5, 5))
	probs := func(b compute.Backend, cfg model.Config, img []float32, n int) []float32 {
		cfg.Impl = backend.InferenceImpl(b)
		store := mlx.NewStore()
		exec, err := mlx.NewExec(b, store, func(s *mlx.Scope, x *Node) *Node {
			return Softmax(model.Logits(s.In(model.Scope), cfg, x), -1)
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Exec(tensors.FromFlatDataAndDimensions(img, n, cfg.Input, cfg.Input, 3))
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](out[0])
	}
	for _, net := range model.Names() {
		inputs := []int{model.MinInput(net)}
		if net == "origin" {
			inputs = append(inputs, 227)
		}
		for _, in := range inputs {
			for _, n := range []int{1, ops.AutoNativeBatch} {
				cfg := model.Config{Net: net, Classes: 8, Input: in, Seed: 9}
				img := make([]float32, n*in*in*3)
				for i := range img {
					img[i] = float32(rng.NormFloat64() * 60)
				}
				want := probs(ref, cfg, img, n)
				for _, b := range alts {
					got := probs(b, cfg, img, n)
					if e := relErr(want, got); e > 1e-4 {
						t.Errorf("%s at %d, batch %d, on %s (%s ops): probabilities differ by %.2g from pure Go", net, in, n, b.Name(), backend.InferenceImpl(b), e)
					}
				}
			}
		}
	}
}

// TestDefaultPicksFastestAvailable checks Default: ONNX Runtime when it is
// compiled in and its library is found, pure Go otherwise — with a note
// only when ONNX Runtime is compiled in but missing — and that Open of an
// explicit "onnx" stays strict when the library is missing.
func TestDefaultPicksFastestAvailable(t *testing.T) {
	onnxIn := false
	for _, k := range compute.List() {
		onnxIn = onnxIn || k == "onnx"
	}
	name, note := backend.Default()
	switch {
	case !onnxIn && (name != "go" || note != ""):
		t.Errorf("without ONNX Runtime compiled in, Default() = %q, %q; want \"go\" and no note", name, note)
	case onnxIn && backend.ORTLibrary() != "" && (name != "onnx:cpu" || note != ""):
		t.Errorf("with ONNX Runtime compiled in and found, Default() = %q, %q; want \"onnx:cpu\" and no note", name, note)
	}

	if lib := backend.ORTLibrary(); lib != "" {
		// The folder of a library names it too.
		t.Setenv("ONNXRUNTIME_SHARED_LIBRARY_PATH", filepath.Dir(lib))
		if got := backend.ORTLibrary(); filepath.Dir(got) != filepath.Dir(lib) {
			t.Errorf("ORTLibrary() = %q with ONNXRUNTIME_SHARED_LIBRARY_PATH=%s; want the library in that folder", got, filepath.Dir(lib))
		}
	}
	t.Setenv("ONNXRUNTIME_SHARED_LIBRARY_PATH", "/nonexistent/libonnxruntime.so")
	t.Setenv(compute.ConfigEnvVar, "")
	if lib := backend.ORTLibrary(); lib != "" {
		t.Fatalf("ORTLibrary() = %q for a path that does not exist", lib)
	}
	name, note = backend.Default()
	if name != "go" {
		t.Errorf("with the library missing, Default() = %q; want \"go\"", name)
	}
	if onnxIn != (note != "") {
		t.Errorf("with the library missing and ONNX Runtime compiled in = %v, note = %q", onnxIn, note)
	}
	b, err := backend.Open("")
	if err != nil {
		t.Fatalf("Open(\"\") with the library missing: %v", err)
	}
	if d := backend.Describe(b); onnxIn && !contains(d, note) {
		t.Errorf("Describe = %q; want it to carry the note %q", d, note)
	}
	if !onnxIn {
		return
	}
	if _, err := backend.Open("onnx"); err == nil || !contains(err.Error(), "neither libonnxruntime.so nor a folder") {
		t.Errorf("Open(\"onnx\") with the library missing: err = %v; want an error naming the missing file", err)
	}
}

// TestOpenLeavesEnvironmentAlone checks that opening backends sets no
// process environment variable (it used to set GOMLX_NO_AUTO_INSTALL and
// ONNXRUNTIME_SHARED_LIBRARY_PATH).
func TestOpenLeavesEnvironmentAlone(t *testing.T) {
	before := fmt.Sprint(os.Environ())
	for _, name := range append([]string{"", "go"}, compute.List()...) {
		if b, err := backend.Open(name); err == nil {
			b.Finalize()
		}
	}
	if after := fmt.Sprint(os.Environ()); after != before {
		t.Errorf("backend.Open changed the process environment:\nbefore %s\nafter  %s", before, after)
	}
}

// TestOpenInference checks that an inference backend computes with graph
// constants that share the caller's memory (on pure Go) and takes the same
// names and configurations as Open.
func TestOpenInference(t *testing.T) {
	for _, name := range []string{"go", "go:parallelism=1", "go:share_constants"} {
		b, err := backend.OpenInference(name)
		if err != nil {
			t.Fatalf("OpenInference(%q): %v", name, err)
		}
		w := tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
		got := MustExecOnce(b, func(x *Node) *Node {
			return Add(x, Reshape(ConstTensor(x.Graph(), w), 3, 2))
		}, [][]float32{{1, 1}, {1, 1}, {1, 1}}).Value().([][]float32)
		if want := [][]float32{{2, 3}, {4, 5}, {6, 7}}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("OpenInference(%q): x + reshape(w) = %v, want %v", name, got, want)
		}
		b.Finalize()
	}
	if _, err := backend.OpenInference("nosuch"); err == nil {
		t.Error("OpenInference(\"nosuch\") gave no error")
	}
}
