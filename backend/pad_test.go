package backend_test

import (
	"fmt"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestBackendsAgreeOnPad checks Pad (start, end and interior padding; the ONNX Runtime backend builds it from ONNX Pad, Reshape and
// Slice: third_party/compute-onnx/ops_pad.go) and the gradient of a strided
// Slice, which is a Pad, against the pure-Go backend.
func TestBackendsAgreeOnPad(t *testing.T) {
	alts := others(t)
	if len(alts) == 0 {
		t.Skip("only the pure-Go backend is compiled in; run with -tags onnx (./test.sh does) to compare backends")
	}
	ref, err := backend.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 2*3*4)
	for i := range x {
		x[i] = float32(i) - 7.5
	}
	cases := [][]compute.PadAxis{
		{{Start: 1, End: 2}},
		{{}, {Start: 2}, {End: 1}},
		{{}, {Interior: 1}},
		{{Start: 1, Interior: 2}, {Interior: 1}, {Interior: 3, End: 2}},
	}
	for i, cfg := range cases {
		// Pad (forward), and the gradient of a strided Slice, which GoMLX
		// writes as a Pad with interior padding (GoMLX defines no gradient
		// for Pad itself).
		run := func(b compute.Backend) (padded, grad []float32) {
			outs, err := ExecOnceN(b, func(xn *Node) []*Node {
				g := xn.Graph()
				p := Pad(xn, Const(g, float32(0.25)), cfg...)
				s := Slice(xn, AxisRange(1), AxisRange(0, 3).Stride(2), AxisRange(1, 4).Stride(i%3+1))
				w := Add(Iota(g, s.Shape(), -1), OnePlus(Iota(g, s.Shape(), 1)))
				return []*Node{p, Gradient(ReduceAllSum(Mul(s, w)), xn)[0]}
			}, tensors.FromFlatDataAndDimensions(x, 2, 3, 4))
			if err != nil {
				t.Fatalf("case %d on %s: %v", i, b.Name(), err)
			}
			return tensors.MustCopyFlatData[float32](outs[0]), tensors.MustCopyFlatData[float32](outs[1])
		}
		p0, g0 := run(ref)
		for _, b := range alts {
			t.Run(fmt.Sprintf("%d/%s", i, b.Name()), func(t *testing.T) {
				p1, g1 := run(b)
				if e := relErr(p0, p1); e > 1e-6 {
					t.Errorf("Pad %v: relative error %.2g between go and %s\ngo:  %v\n%s: %v", cfg, e, b.Name(), p0, b.Name(), p1)
				}
				if e := relErr(g0, g1); e > 1e-6 {
					t.Errorf("gradient of Pad %v: relative error %.2g between go and %s", cfg, e, b.Name())
				}
			})
		}
	}
}

// TestPadNegative: negative start or end padding crops (XLA's semantics),
// on every backend compiled in (the pure-Go one indexed past its output).
func TestPadNegative(t *testing.T) {
	ref, err := backend.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range append([]compute.Backend{ref}, others(t)...) {
		padNegative(t, b)
	}
}

func padNegative(t *testing.T, b compute.Backend) {
	x := []float32{1, 2, 3, 4, 5, 6} // 2×3
	for _, c := range []struct {
		cfg  []compute.PadAxis
		want []float32
	}{
		{[]compute.PadAxis{{}, {Start: -1}}, []float32{2, 3, 5, 6}},
		{[]compute.PadAxis{{}, {End: -2}}, []float32{1, 4}},
		{[]compute.PadAxis{{Start: -1, End: 1}, {Start: 1, End: -1}}, []float32{0, 4, 5, 0, 0, 0}},
		{[]compute.PadAxis{{}, {Start: -1, Interior: 1}}, []float32{0, 2, 0, 3, 0, 5, 0, 6}},
	} {
		out, err := ExecOnce(b, func(xn *Node) *Node {
			return Pad(xn, ScalarZero(xn.Graph(), xn.DType()), c.cfg...)
		}, tensors.FromFlatDataAndDimensions(x, 2, 3))
		if err != nil {
			t.Errorf("%s: Pad %v: %v", b.Name(), c.cfg, err)
			continue
		}
		if got := tensors.MustCopyFlatData[float32](out); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: Pad %v = %v, want %v", b.Name(), c.cfg, got, c.want)
		}
	}
}
