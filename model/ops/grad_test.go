package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestScatterFreeGradients compares the hand-written gradients of Conv2D
// and the max-pools (gathers from StopGradient(x) + bridge + col2im /
// convInputGrad) with GoMLX's automatic gradient of the plain gather
// formulation (a scatter-add, correct on the pure-Go backend), in float64,
// over kernel sizes, strides, paddings and channel counts that take both
// patch layouts — including k < stride, 1×1 stride 2 and ceil-mode pools.
func TestScatterFreeGradients(t *testing.T) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	randT := func(dims ...int) *tensors.Tensor {
		n := 1
		for _, d := range dims {
			n *= d
		}
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
	type conv struct{ h, k, stride, pad, cin, cout int }
	for _, c := range []conv{
		{9, 3, 1, 1, 2, 3}, {9, 3, 2, 1, 2, 3}, {11, 5, 1, 2, 16, 4}, {12, 3, 2, 0, 16, 5},
		{10, 1, 2, 0, 16, 3}, {13, 7, 4, 0, 3, 4}, {8, 2, 3, 0, 2, 2}, {7, 3, 1, 1, 20, 6},
		{10, 2, 3, 0, 2, 2}, {10, 3, 2, 1, 16, 4}, {227, 7, 4, 0, 3, 2}, {7, 1, 1, 0, 16, 4},
	} {
		t.Run(fmt.Sprintf("conv%+v", c), func(t *testing.T) {
			x, k := randT(c.h, c.h, 2, c.cin), randT(c.k, c.k, c.cin, c.cout)
			oh := ConvOutSize(c.h, c.k, c.stride, c.pad)
			w := randT(oh, oh, 2, c.cout)
			got := MustExecOnceN(b, func(x, k, w *Node) []*Node {
				l := ReduceAllSum(Mul(Conv2D(Portable, x, k, c.stride, c.pad), w))
				return Gradient(l, x, k)
			}, x, k, w)
			want := MustExecOnceN(b, func(x, k, w *Node) []*Node {
				xp := padSpatial(x, c.pad)
				h := xp.Shape().Dimensions[0]
				p := Gather(xp, windowIndices(x.Graph(), h, h, oh, oh, c.k, c.stride), true)
				y := DotGeneral(p, []int{2, 3, 5}, nil, k, []int{0, 1, 2}, nil)
				return Gradient(ReduceAllSum(Mul(y, w)), x, k)
			}, x, k, w)
			for i, name := range []string{"input", "kernel"} {
				if e := maxRelDiff(got[i], want[i]); e > 1e-12 {
					t.Errorf("%s gradient differs by %.3g (relative)", name, e)
				}
			}
		})
	}
	type pool struct{ h, k, stride int }
	for _, c := range []pool{{8, 3, 2}, {9, 3, 2}, {8, 2, 2}, {7, 3, 1}, {56, 3, 2}} {
		t.Run(fmt.Sprintf("pool%+v", c), func(t *testing.T) {
			x := randT(c.h, c.h, 2, 3)
			oh := PoolOutSize(c.h, c.k, c.stride)
			w := randT(oh, oh, 2, 3)
			got := MustExecOnceN(b, func(x, w *Node) []*Node {
				return Gradient(ReduceAllSum(Mul(MaxPool2D(Portable, x, c.k, c.stride), w)), x)
			}, x, w)[0]
			want := MustExecOnceN(b, func(x, w *Node) []*Node {
				xp := padLow(x, (oh-1)*c.stride+c.k-c.h, (oh-1)*c.stride+c.k-c.h, -1e30)
				h := xp.Shape().Dimensions[0]
				y := ReduceMax(Gather(xp, windowIndices(x.Graph(), h, h, oh, oh, c.k, c.stride), true), 2, 3)
				return Gradient(ReduceAllSum(Mul(y, w)), x)
			}, x, w)[0]
			if e := maxRelDiff(got, want); e > 1e-12 {
				t.Errorf("gradient differs by %.3g (relative)", e)
			}
		})
	}
	t.Run("poolSame", func(t *testing.T) {
		x, w := randT(6, 6, 2, 3), randT(6, 6, 2, 3)
		got := MustExecOnceN(b, func(x, w *Node) []*Node {
			return Gradient(ReduceAllSum(Mul(MaxPoolSame(x, 3), w)), x)
		}, x, w)[0]
		// Reference: each element's gradient is the sum of w over the
		// 3×3 windows (centred on output positions) whose maximum it is.
		xs, ws := tensors.MustCopyFlatData[float64](x), tensors.MustCopyFlatData[float64](w)
		ref := make([]float64, len(xs))
		at := func(i, j, n, c int) int { return ((i*6+j)*2+n)*3 + c }
		for i := 0; i < 6; i++ {
			for j := 0; j < 6; j++ {
				for n := 0; n < 2; n++ {
					for c := 0; c < 3; c++ {
						best, bi := math.Inf(-1), -1
						for di := -1; di <= 1; di++ {
							for dj := -1; dj <= 1; dj++ {
								ii, jj := i+di, j+dj
								if ii < 0 || jj < 0 || ii >= 6 || jj >= 6 {
									continue
								}
								if v := xs[at(ii, jj, n, c)]; v > best {
									best, bi = v, at(ii, jj, n, c)
								}
							}
						}
						ref[bi] += ws[at(i, j, n, c)]
					}
				}
			}
		}
		if e := maxRelDiff(got, tensors.FromFlatDataAndDimensions(ref, 6, 6, 2, 3)); e > 1e-12 {
			t.Errorf("gradient differs by %.3g (relative)", e)
		}
	})
}

func maxRelDiff(a, b *tensors.Tensor) float64 {
	x, y := tensors.MustCopyFlatData[float64](a), tensors.MustCopyFlatData[float64](b)
	var d, s float64
	for i := range x {
		d = max(d, math.Abs(x[i]-y[i]))
		s = max(s, math.Abs(y[i]))
	}
	if len(x) != len(y) {
		return math.Inf(1)
	}
	return d / max(s, 1e-300)
}

// windowIndices builds int64 indices of shape [OH, OW, K, K, 2] pointing at
// the input positions each output position reads. Positions past the end are
// clamped to the last row/column (callers pad so that this never happens).
func windowIndices(g *Graph, h, w, oh, ow, k, stride int) *Node {
	idx := make([]int64, 0, oh*ow*k*k*2)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			for ky := 0; ky < k; ky++ {
				for kx := 0; kx < k; kx++ {
					y, x := min(oy*stride+ky, h-1), min(ox*stride+kx, w-1)
					idx = append(idx, int64(y), int64(x))
				}
			}
		}
	}
	t := Const(g, idx)
	return Reshape(t, oh, ow, k, k, 2)
}

// TestNeedsGradient checks the rule that decides whether Conv2D builds an
// input gradient: only where a parameter is reachable without crossing a
// StopGradient.
func TestNeedsGradient(t *testing.T) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	g := NewGraph(b, "needsGradient")
	p := Parameter(g, "x", shapes.Make(dtypes.Float32, 2, 3))
	c := Const(g, [][]float32{{1, 2, 3}, {4, 5, 6}})
	for _, tc := range []struct {
		name string
		x    *Node
		want bool
	}{
		{"parameter", p, true},
		{"through ops", Add(Mul(p, c), c), true},
		{"stopped", Add(StopGradient(p), c), false},
		{"constant", Mul(c, c), false},
		{"one of two paths stopped", Add(StopGradient(p), Neg(p)), true},
	} {
		if got := needsGradient(tc.x); got != tc.want {
			t.Errorf("%s: needsGradient = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestAutoResolve checks that Auto picks portable ops for small batches
// and native ones from AutoNativeBatch.
func TestAutoResolve(t *testing.T) {
	for n, want := range map[int]Impl{1: Portable, AutoNativeBatch - 1: Portable, AutoNativeBatch: Native, 64: Native} {
		if got := Auto.resolve(n); got != want {
			t.Errorf("Auto.resolve(%d) = %s, want %s", n, got, want)
		}
	}
	if Portable.resolve(64) != Portable || Native.resolve(1) != Native {
		t.Error("resolve must leave Portable and Native alone")
	}
}
