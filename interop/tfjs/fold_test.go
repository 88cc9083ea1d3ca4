package tfjs

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// runBoth builds m's outputs twice in one graph, plainly and with
// BuildOptions.Inference (opts, Inference set by runBoth), runs it on x and
// returns the largest difference between the two relative to the largest
// plain value, per output, and the number of graph nodes each way built.
func runBoth(t *testing.T, b compute.Backend, m *Graph, input string, x *tensors.Tensor, outputs []string, opts BuildOptions) (rel []float64, nodes [2]int) {
	t.Helper()
	opts.Inference = true
	store := model.NewStore()
	e, err := model.NewExec(b, store, func(s *model.Scope, in *graph.Node) []*graph.Node {
		n0 := len(in.Graph().Nodes())
		plain, err := m.Build(in.Graph(), map[string]*graph.Node{input: in}, outputs...)
		if err != nil {
			panic(err)
		}
		n1 := len(in.Graph().Nodes())
		fast, err := m.BuildWith(in.Graph(), map[string]*graph.Node{input: in}, outputs, opts)
		if err != nil {
			panic(err)
		}
		nodes[0], nodes[1] = n1-n0, len(in.Graph().Nodes())-n1
		return append(plain, fast...)
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := e.Call(x)
	if err != nil {
		t.Fatal(err)
	}
	rel = make([]float64, len(outputs))
	for i := range outputs {
		p := tensors.MustCopyFlatData[float32](outs[i])
		f := tensors.MustCopyFlatData[float32](outs[len(outputs)+i])
		if len(p) != len(f) {
			t.Fatalf("%s: %d values plain, %d with Inference", outputs[i], len(p), len(f))
		}
		var d, s float64
		for j := range p {
			d = max(d, math.Abs(float64(p[j]-f[j])))
			s = max(s, math.Abs(float64(p[j])))
		}
		rel[i] = d / max(s, 1e-12)
	}
	return rel, nodes
}

// foldGraph is conv → Mul by a per-channel scale → Add of a per-channel
// shift → Relu → Minimum 6 → Maximum 0 (Keras's batch-normed ReLU6
// block, as TF.js stores it), for a regular or depthwise convolution; with
// shared, the conv's output is also an output of its own, so nothing may
// be folded into it.
func foldGraph(depthwise, shared bool) (*Graph, []string) {
	rng := rand.New(rand.NewPCG(3, 4))
	vals := func(n int, lo, hi float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = lo + (hi-lo)*rng.Float32()
		}
		return v
	}
	const c = 8
	kshape, op, cout := []int{3, 3, c, 4}, "Conv2D", 4
	if depthwise {
		kshape, op, cout = []int{3, 3, c, 1}, "DepthwiseConv2dNative", c
	}
	m := &Graph{Path: "fold", Weights: map[string]*Tensor{
		"k":   {Name: "k", DType: Float32, Shape: kshape, F32: vals(9*c*kshape[3], -1, 1)},
		"s":   {Name: "s", DType: Float32, Shape: []int{cout}, F32: vals(cout, 0.5, 2)},
		"b":   {Name: "b", DType: Float32, Shape: []int{cout}, F32: vals(cout, -1, 1)},
		"six": {Name: "six", DType: Float32, Shape: []int{}, F32: []float32{6}},
		"zer": {Name: "zer", DType: Float32, Shape: []int{}, F32: []float32{0}},
	}}
	ints := func(v ...int64) Attr { return Attr{List: &AttrList{I: v}} }
	m.Nodes = []*Node{
		{Name: "x", Op: "Placeholder", Attr: map[string]Attr{"shape": {Shape: []int{-1, 9, 9, c}}}},
		{Name: "k", Op: "Const"}, {Name: "s", Op: "Const"}, {Name: "b", Op: "Const"},
		{Name: "six", Op: "Const"}, {Name: "zer", Op: "Const"},
		{Name: "conv", Op: op, Inputs: []string{"x", "k"}, Attr: map[string]Attr{"strides": ints(1, 2, 2, 1), "padding": {S: ptr("SAME")}}},
		{Name: "mul", Op: "Mul", Inputs: []string{"conv", "s"}},
		{Name: "add", Op: "Add", Inputs: []string{"b", "mul"}},
		{Name: "relu", Op: "Relu", Inputs: []string{"add"}},
		{Name: "min", Op: "Minimum", Inputs: []string{"relu", "six"}},
		{Name: "max", Op: "Maximum", Inputs: []string{"min", "zer"}},
	}
	m.byName = map[string]*Node{}
	for _, n := range m.Nodes {
		m.byName[n.Name] = n
	}
	if shared {
		return m, []string{"max", "conv"}
	}
	return m, []string{"max"}
}

// TestInferenceFolds checks that BuildOptions.Inference (batch norm folded
// into the kernel, bias, one clamp) computes what the plain graph does,
// for regular and depthwise convolutions, with the weights in the graph
// and in a Scope's variables, and where an intermediate value is shared.
func TestInferenceFolds(t *testing.T) {
	b, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, 2*9*9*8)
	for i := range x {
		x[i] = rng.Float32()*4 - 2
	}
	for _, depthwise := range []bool{false, true} {
		for _, shared := range []bool{false, true} {
			m, outs := foldGraph(depthwise, shared)
			rel, nodes := runBoth(t, b, m, "x", tensors.FromFlatDataAndDimensions(x, 2, 9, 9, 8), outs, BuildOptions{})
			t.Logf("depthwise %v, shared %v: %d graph nodes plain, %d with Inference", depthwise, shared, nodes[0], nodes[1])
			if !shared && nodes[1] >= nodes[0] {
				t.Errorf("depthwise %v: %d graph nodes with Inference, not fewer than plain (%d): nothing folded", depthwise, nodes[1], nodes[0])
			}
			for i, r := range rel {
				if r > 1e-6 {
					t.Errorf("depthwise %v, shared %v: %s differs by %.3g (relative) with Inference", depthwise, shared, outs[i], r)
				}
			}
		}
	}
	// Weights read from variables: the graph stored without them.
	m, outs := foldGraph(true, false)
	store := model.NewStore()
	vs := store.RootScope().In("w")
	for name, w := range m.Weights {
		if _, err := vs.CreateVariable(VariableName(name), tensors.FromFlatDataAndDimensions(w.F32, w.Shape...)); err != nil {
			t.Fatal(err)
		}
	}
	e, err := model.NewExec(b, store, func(s *model.Scope, in *graph.Node) []*graph.Node {
		noWeights := *m
		noWeights.Weights = map[string]*Tensor{}
		o, err := noWeights.BuildWith(in.Graph(), map[string]*graph.Node{"x": in}, outs, BuildOptions{Scope: s.In("w"), Inference: true})
		if err != nil {
			panic(err)
		}
		p, err := m.Build(in.Graph(), map[string]*graph.Node{"x": in}, outs...)
		if err != nil {
			panic(err)
		}
		return append(o, p...)
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Call(tensors.FromFlatDataAndDimensions(x, 2, 9, 9, 8))
	if err != nil {
		t.Fatal(err)
	}
	f, p := tensors.MustCopyFlatData[float32](res[0]), tensors.MustCopyFlatData[float32](res[1])
	for i := range p {
		if math.Abs(float64(f[i]-p[i])) > 1e-5 {
			t.Fatalf("weights from variables: value %d is %g, plain graph %g", i, f[i], p[i])
		}
	}
}

// TestInferenceMatchesPlainModels runs the pretrained TF.js models of
// ../shared both ways on random images: BuildOptions.Inference must give
// the plain graph's outputs within 1e-5 of their scale.
func TestInferenceMatchesPlainModels(t *testing.T) {
	dir := modelsDir(t)
	b, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	cases := append([]refCase{}, refCases...)
	cases = append(cases, refCase{"blazeface-front.json", "input", 128, -1, 1, nil})
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			m, err := Load(filepath.Join(dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			outs := c.outputs
			if outs == nil {
				outs = m.Outputs
			}
			rng := rand.New(rand.NewPCG(7, uint64(c.size)))
			x := make([]float32, c.size*c.size*3)
			for i := range x {
				x[i] = c.lo + (c.hi-c.lo)*rng.Float32()
			}
			rel, nodes := runBoth(t, b, m, c.input, tensors.FromFlatDataAndDimensions(x, 1, c.size, c.size, 3), outs, BuildOptions{})
			t.Logf("%d graph nodes plain, %d with Inference", nodes[0], nodes[1])
			for i, r := range rel {
				t.Logf("%s: relative difference %.3g", outs[i], r)
				if r > 1e-5 {
					t.Errorf("%s: relative difference %.3g > 1e-5 with Inference", outs[i], r)
				}
			}
		})
	}
}
