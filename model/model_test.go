package model_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/ops"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/loss"
)

func goBackend(t testing.TB) compute.Backend {
	t.Helper()
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPoolOutSizeMatchesCaffe(t *testing.T) {
	// Caffe: ceil((in - k) / s) + 1, dropping a last window that would start past the input.
	for _, c := range []struct{ in, want int }{{56, 28}, {28, 14}, {14, 7}, {15, 7}, {7, 3}, {3, 1}, {13, 6}, {27, 13}} {
		if got := ops.PoolOutSize(c.in, 3, 2); got != c.want {
			t.Errorf("PoolOutSize(%d, 3, 2) = %d, want %d", c.in, got, c.want)
		}
	}
	if got := ops.ConvOutSize(227, 7, 4, 0); got != 56 {
		t.Errorf("conv1 on 227 gives %d, want 56", got)
	}
}

// weightShapes builds the net once and returns its variables' shapes.
func weightShapes(t *testing.T, cfg model.Config) map[string][]int {
	t.Helper()
	store := mlx.NewStore()
	exec := mlx.MustNewExec(goBackend(t), store, func(s *mlx.Scope, x *Node) *Node {
		return model.Logits(s.In(model.Scope), cfg, x)
	})
	out := exec.MustCall(tensors.FromShape(shapeImg(1, cfg.Input)))
	if d := out[0].Shape().Dimensions; d[0] != 1 || d[1] != cfg.Classes {
		t.Fatalf("logits shape %v, want [1 %d]", d, cfg.Classes)
	}
	m := map[string][]int{}
	for v := range store.IterVariables() {
		m[v.Path()] = v.Shape().Dimensions
	}
	return m
}

func TestOriginMatchesCaffeDefinition(t *testing.T) {
	// At 227×227 the layer shapes are those of the paper's prototxt.
	got := weightShapes(t, model.Config{Net: "origin", Classes: 8, Input: 227, Seed: 1})
	want := map[string][]int{
		"/net/conv1/weights": {7, 7, 3, 96}, "/net/conv1/biases": {96},
		"/net/conv2/weights": {5, 5, 96, 256}, "/net/conv2/biases": {256},
		"/net/conv3/weights": {3, 3, 256, 384}, "/net/conv3/biases": {384},
		"/net/fc6/weights": {7 * 7 * 384, 512}, "/net/fc6/biases": {512},
		"/net/fc7/weights": {512, 512}, "/net/fc7/biases": {512},
		"/net/fc8/weights": {512, 8}, "/net/fc8/biases": {8},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d variables %v, want %d", len(got), got, len(want))
	}
	total := 0
	for k, w := range want {
		g, ok := got[k]
		if !ok || len(g) != len(w) {
			t.Fatalf("%s: got %v, want %v", k, g, w)
		}
		n := 1
		for i := range w {
			if g[i] != w[i] {
				t.Fatalf("%s: got %v, want %v", k, g, w)
			}
			n *= w[i]
		}
		total += n
	}
	if total != 11_415_048 {
		t.Errorf("origin (8 classes) has %d parameters, want 11,415,048", total)
	}
}

func TestInitialisationFollowsThePaper(t *testing.T) {
	c := model.InitialValue(1, "/net/fc6/weights", []int{1000, 100}, "normal", 0.005, 0)
	v := tensors.MustCopyFlatData[float32](c)
	var s, s2 float64
	for _, x := range v {
		s += float64(x)
		s2 += float64(x) * float64(x)
	}
	mean, std := s/float64(len(v)), math.Sqrt(s2/float64(len(v)))
	if math.Abs(mean) > 1e-4 || math.Abs(std-0.005) > 1e-4 {
		t.Errorf("fc6 init mean %g std %g, want 0 and 0.005", mean, std)
	}
	again := tensors.MustCopyFlatData[float32](model.InitialValue(1, "/net/fc6/weights", []int{1000, 100}, "normal", 0.005, 0))
	if again[12345] != v[12345] {
		t.Error("initial values are not reproducible for the same seed and name")
	}
}

func shapeImg(n, side int) shapesT { return shapesMake(dtypes.Float32, n, side, side, 3) }

// naiveConv is a direct loop convolution over NHWC input, the reference
// the gather-based ops.Conv2D is checked against.
func naiveConv(x []float64, n, h, w, cin int, k []float64, ks, cout, stride, pad int) ([]float64, int, int) {
	oh, ow := ops.ConvOutSize(h, ks, stride, pad), ops.ConvOutSize(w, ks, stride, pad)
	out := make([]float64, n*oh*ow*cout)
	for b := 0; b < n; b++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				for co := 0; co < cout; co++ {
					var s float64
					for ky := 0; ky < ks; ky++ {
						for kx := 0; kx < ks; kx++ {
							y, xx := oy*stride+ky-pad, ox*stride+kx-pad
							if y < 0 || y >= h || xx < 0 || xx >= w {
								continue
							}
							for ci := 0; ci < cin; ci++ {
								s += x[((b*h+y)*w+xx)*cin+ci] * k[((ky*ks+kx)*cin+ci)*cout+co]
							}
						}
					}
					out[((b*oh+oy)*ow+ox)*cout+co] = s
				}
			}
		}
	}
	return out, oh, ow
}

func randSlice(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

func TestPortableOpsMatchReference(t *testing.T) {
	be := goBackend(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const n, h, w, cin, cout = 2, 11, 9, 3, 4
	x := randSlice(rng, n*h*w*cin)
	for _, c := range []struct{ ks, stride, pad int }{{3, 1, 1}, {5, 1, 2}, {7, 4, 0}, {3, 2, 0}, {1, 1, 0}} {
		k := randSlice(rng, c.ks*c.ks*cin*cout)
		want, oh, ow := naiveConv(x, n, h, w, cin, k, c.ks, cout, c.stride, c.pad)
		if oh <= 0 || ow <= 0 {
			continue
		}
		for _, impl := range []ops.Impl{ops.Portable, ops.Native} {
			got := MustExecOnce(be, func(xn, kn *Node) *Node {
				return ops.FromHWNC(ops.Conv2D(impl, ops.ToHWNC(xn), kn, c.stride, c.pad))
			}, tensors.FromFlatDataAndDimensions(x, n, h, w, cin), tensors.FromFlatDataAndDimensions(k, c.ks, c.ks, cin, cout))
			g := tensors.MustCopyFlatData[float64](got)
			if len(g) != len(want) {
				t.Fatalf("%s conv %+v: %d outputs, want %d", impl, c, len(g), len(want))
			}
			for i := range g {
				if math.Abs(g[i]-want[i]) > 1e-9 {
					t.Fatalf("%s conv %+v: output %d = %g, want %g", impl, c, i, g[i], want[i])
				}
			}
		}
	}
	// Max-pool 3/2 in ceil mode, portable vs native, on a size whose last window is clipped.
	for _, impl := range []ops.Impl{ops.Portable, ops.Native} {
		got := tensors.MustCopyFlatData[float64](MustExecOnce(be, func(xn *Node) *Node {
			return ops.FromHWNC(ops.MaxPool2D(impl, ops.ToHWNC(xn), 3, 2))
		}, tensors.FromFlatDataAndDimensions(x, n, h, w, cin)))
		oh, ow := ops.PoolOutSize(h, 3, 2), ops.PoolOutSize(w, 3, 2)
		if len(got) != n*oh*ow*cin {
			t.Fatalf("%s pool: %d outputs, want %d", impl, len(got), n*oh*ow*cin)
		}
		for b := 0; b < n; b++ {
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					for ch := 0; ch < cin; ch++ {
						m := math.Inf(-1)
						for y := oy * 2; y < min(h, oy*2+3); y++ {
							for xx := ox * 2; xx < min(w, ox*2+3); xx++ {
								m = math.Max(m, x[((b*h+y)*w+xx)*cin+ch])
							}
						}
						if g := got[((b*oh+oy)*ow+ox)*cin+ch]; g != m {
							t.Fatalf("%s pool (%d,%d,%d,%d) = %g, want %g", impl, b, oy, ox, ch, g, m)
						}
					}
				}
			}
		}
	}
	// LRN across channels, Caffe's formula.
	const c = 7
	xl := randSlice(rng, 3*c)
	for i := range xl {
		xl[i] *= 30
	}
	got := tensors.MustCopyFlatData[float64](MustExecOnce(be, func(xn *Node) *Node { return ops.LRN(xn, 5, 1e-4, 0.75) },
		tensors.FromFlatDataAndDimensions(xl, 3, c)))
	for r := 0; r < 3; r++ {
		for i := 0; i < c; i++ {
			var s float64
			for j := max(0, i-2); j <= min(c-1, i+2); j++ {
				s += xl[r*c+j] * xl[r*c+j]
			}
			want := xl[r*c+i] / math.Pow(1+1e-4/5*s, 0.75)
			if math.Abs(got[r*c+i]-want) > 1e-9*math.Abs(want)+1e-12 {
				t.Fatalf("LRN[%d,%d] = %g, want %g", r, i, got[r*c+i], want)
			}
		}
	}
}

// TestGradientCheck compares the analytic gradient of the origin net's loss
// with central finite differences, in float64, for entries of every weight.
func TestGradientCheck(t *testing.T) {
	be := goBackend(t)
	cfg := model.Config{Net: "origin", Classes: 3, Input: 48, Seed: 7, DType: dtypes.Float64}
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 2
	img := randSlice(rng, n*48*48*3)
	for i := range img {
		img[i] *= 60 // the scale of mean-subtracted pixels
	}
	x := tensors.FromFlatDataAndDimensions(img, n, 48, 48, 3)
	y := tensors.FromFlatDataAndDimensions([]int32{0, 2}, n, 1)

	store := mlx.NewStore()
	var names []string
	exec := mlx.MustNewExec(be, store, func(s *mlx.Scope, in []*Node) []*Node {
		logits := model.Logits(s.In(model.Scope), cfg, in[0])
		l := ReduceAllMean(loss.SparseCategoricalCrossEntropyLogits([]*Node{in[1]}, []*Node{logits}))
		var vs []*Node
		names = names[:0]
		for v := range s.Store().IterVariables() {
			names = append(names, v.Path())
			vs = append(vs, v.NodeValue(in[0].Graph()))
		}
		return append([]*Node{l}, Gradient(l, vs...)...)
	})
	out := exec.MustCall(x, y)
	lossAt := func() float64 { return exec.MustCall(x, y)[0].Value().(float64) }
	checked := 0
	for i, name := range names {
		grad := tensors.MustCopyFlatData[float64](out[i+1])
		v := store.GetVariable(name)
		orig := tensors.MustCopyFlatData[float64](v.MustValue())
		dims := v.Shape().Dimensions
		// The entries with the largest gradient, where finite differences are well conditioned.
		best := 0
		for k := range grad {
			if math.Abs(grad[k]) > math.Abs(grad[best]) {
				best = k
			}
		}
		for _, k := range []int{best, rng.IntN(len(grad))} {
			if math.Abs(grad[k]) < 1e-7 {
				continue
			}
			eps := 1e-4 * math.Max(1, math.Abs(orig[k]))
			set := func(val float64) {
				p := append([]float64(nil), orig...)
				p[k] = val
				if err := v.SetValue(tensors.FromFlatDataAndDimensions(p, dims...)); err != nil {
					t.Fatal(err)
				}
			}
			set(orig[k] + eps)
			lp := lossAt()
			set(orig[k] - eps)
			lm := lossAt()
			set(orig[k])
			fd := (lp - lm) / (2 * eps)
			rel := math.Abs(fd-grad[k]) / math.Max(math.Abs(fd)+math.Abs(grad[k]), 1e-12)
			if rel > 1e-4 {
				t.Errorf("%s[%d]: analytic %g, finite difference %g (relative error %.2g)", name, k, grad[k], fd, rel)
			}
			checked++
		}
	}
	if checked < len(names) {
		t.Errorf("only %d gradient entries were large enough to check over %d variables", checked, len(names))
	}
}

type shapesT = shapes.Shape

var shapesMake = shapes.Make

// TestNetworksBuildTrainAndCount builds every registered network, runs a
// forward pass in inference and in training mode, and reports its size.
func TestNetworksBuildTrainAndCount(t *testing.T) {
	be := goBackend(t)
	for _, name := range model.Names() {
		in := map[string]int{"origin": 227, "origin-bn": 227, "origin-selu": 227, "origin-leaky": 227, "vgg16": 224}[name]
		if in == 0 {
			in = 112
		}
		params, flops, err := model.Stats(be, model.Config{Net: name, Classes: 8, Input: in, Seed: 1})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%-13s input %d: %6.2fM params, %6.3f GFLOP/image", name, in, float64(params)/1e6, float64(flops)/1e9)
		if params <= 0 || flops <= 0 {
			t.Errorf("%s: %d params, %d flops", name, params, flops)
		}
		if name == "origin" {
			if params != 11_415_048 {
				t.Errorf("origin: %d params, want 11,415,048", params)
			}
			if flops < 1.40e9 || flops > 1.43e9 {
				t.Errorf("origin: %.3f GFLOP, want ≈1.42 (conv1 0.089 + conv2 0.963 + conv3 0.347 + fc 0.020)", float64(flops)/1e9)
			}
		}
		// A small forward pass, in training mode too (dropout, batch-norm statistics).
		cfg := model.Config{Net: name, Classes: 3, Input: model.MinInput(name), Seed: 1}
		for _, training := range []bool{false, true} {
			store := mlx.NewStore()
			store.SetRNGStateFromSeed(1)
			exec := mlx.MustNewExec(be, store, func(s *mlx.Scope, x *Node) *Node {
				s.Store().SetTraining(x.Graph(), training)
				return model.Logits(s.In(model.Scope), cfg, x)
			})
			out := tensors.MustCopyFlatData[float32](exec.MustCall(tensors.FromShape(shapeImg(2, cfg.Input)))[0])
			for _, v := range out {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%s (training=%v): non-finite logits %v", name, training, out)
				}
			}
		}
	}
}
