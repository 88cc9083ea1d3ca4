package tfjs

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// This file holds what [BuildOptions.Inference] changes: the patterns that
// TensorFlow's converters leave in MobileNet-style graphs are rewritten
// while the graph is built:
//
//   - a convolution (regular or depthwise) followed by a Mul by a
//     per-channel constant (a batch norm's scale) has the scale folded into
//     its kernel;
//   - a convolution (or the above) followed by an Add of a per-channel
//     constant (the batch norm's shift, or a bias) gets it as a bias added
//     with implicit broadcasting, not a materialised copy;
//   - a chain of Relu, Relu6, and Maximum/Minimum with scalar constants
//     (Keras's ReLU6 as "Relu, clip_by_value") becomes one clamp, which
//     ONNX Runtime runs as Clip fused into the convolution before it.
//
// Each rewrite applies only where the intermediate values have no other
// consumer, so the values computed are the same (up to float rounding: the
// folded kernel rounds k·s once where the original rounded conv(x, k)·s).
// The folding itself is graph ops on the weights (a product of the kernel
// and the scale, the clamp's bounds from the chain's constants), so a
// weight read from a variable keeps its current value; when the weights
// are graph constants (in the manifest, or a Store with
// WithVariableAsConst), the runtime folds those ops once: ONNX Runtime at
// session creation.

// weightShape returns the dimensions of the float Const node ref, from the
// graph's weights or else (a graph stored without them) from Scope's
// variable of that name; ok is false for anything else.
func (b *builder) weightShape(ref string) (dims []int, ok bool) {
	name, _ := splitOutput(ref)
	n := b.m.byName[name]
	if n == nil || n.Op != "Const" {
		return nil, false
	}
	if t, ok := b.m.Weights[name]; ok {
		return t.Shape, t.DType == Float32
	}
	if b.opts.Scope == nil {
		return nil, false
	}
	v := b.opts.Scope.GetVariable(VariableName(name))
	if v == nil || v.DType() != dtypes.Float32 {
		return nil, false
	}
	return v.Shape().Dimensions, true
}

// weight returns the value of the float Const node ref (which weightShape
// accepted) as a graph node: a constant from the graph's weights, else its
// variable's value.
func (b *builder) weight(ref string) *graph.Node {
	name, _ := splitOutput(ref)
	if t, ok := b.m.Weights[name]; ok {
		return graph.ConstTensor(b.g, tensors.FromFlatDataAndDimensions(t.F32, t.Shape...))
	}
	return b.opts.Scope.GetVariable(VariableName(name)).NodeValue(b.g)
}

// consumers counts, once per graph, how many data inputs read each node.
func (b *builder) consumers(name string) int {
	if b.uses == nil {
		b.uses = map[string]int{}
		for _, n := range b.m.Nodes {
			for _, r := range dataInputs(n) {
				nm, _ := splitOutput(r)
				b.uses[nm]++
			}
		}
	}
	return b.uses[name]
}

// inner returns the node that n's data input i names, if it has no
// consumer besides n, no output index and is not fed by the caller.
func (b *builder) inner(n *Node, i int) *Node {
	in := dataInputs(n)
	if i >= len(in) {
		return nil
	}
	name, k := splitOutput(in[i])
	if k != 0 || b.consumers(name) != 1 {
		return nil
	}
	if x, ok := b.inputs[name]; ok && x != nil {
		return nil
	}
	return b.m.byName[name]
}

// isScalarConst reports whether n's data input i is a float Const holding
// one value.
func (b *builder) isScalarConst(n *Node, i int) bool {
	in := dataInputs(n)
	if i >= len(in) {
		return false
	}
	d, ok := b.weightShape(in[i])
	return ok && sizeOf(d) == 1
}

// isChannelConst reports whether n's data input i is a float Const of c
// values along its last axis (shape [c] or [1, ..., 1, c]).
func (b *builder) isChannelConst(n *Node, i, c int) bool {
	in := dataInputs(n)
	if i >= len(in) {
		return false
	}
	d, ok := b.weightShape(in[i])
	return ok && len(d) > 0 && d[len(d)-1] == c && sizeOf(d) == c
}

func sizeOf(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// fold emits n through one of the rewrites above when it matches one;
// handled is false when it does not (n is then built as usual).
func (b *builder) fold(n *Node) (y *graph.Node, handled bool, err error) {
	switch n.Op {
	case "Relu", "Relu6", "Maximum", "Minimum":
		return b.foldClamp(n)
	case "Add", "AddV2", "BiasAdd":
		for i := range 2 {
			conv := b.inner(n, i)
			if conv == nil {
				continue
			}
			if c, ok := b.convChannels(conv); ok && b.isChannelConst(n, 1-i, c) {
				return b.foldConv(conv, dataInputs(n)[1-i])
			}
		}
	case "Mul":
		if _, ok := b.convChannels(n); ok {
			return b.foldConv(n, "")
		}
	}
	return nil, false, nil
}

// convChannels reports whether n is an unfused convolution with a constant
// kernel, or such a convolution (without other consumers) times a
// per-channel constant, and returns its number of output channels.
func (b *builder) convChannels(n *Node) (int, bool) {
	conv, _ := b.scaledConv(n)
	if conv == nil {
		return 0, false
	}
	dims, _ := b.weightShape(dataInputs(conv)[1])
	if conv.Op == "DepthwiseConv2dNative" {
		return dims[2] * dims[3], true
	}
	return dims[3], true
}

// scaledConv splits n into an unfused convolution with a constant kernel
// and the per-channel constant it is multiplied by ("" when n is the
// convolution itself); conv is nil when n is neither.
func (b *builder) scaledConv(n *Node) (conv *Node, scale string) {
	switch n.Op {
	case "Conv2D", "DepthwiseConv2dNative":
		in := dataInputs(n)
		if len(in) != 2 {
			return nil, ""
		}
		if d, ok := b.weightShape(in[1]); !ok || len(d) != 4 {
			return nil, ""
		}
		return n, ""
	case "Mul":
		for i := range 2 {
			cv := b.inner(n, i)
			if cv == nil || (cv.Op != "Conv2D" && cv.Op != "DepthwiseConv2dNative") {
				continue
			}
			if c, ok := b.convChannels(cv); ok && b.isChannelConst(n, 1-i, c) {
				return cv, dataInputs(n)[1-i]
			}
		}
	}
	return nil, ""
}

// foldConv emits n (a node convChannels accepts) with any per-channel scale
// folded into the kernel, then adds the per-channel constant bias ("":
// none).
func (b *builder) foldConv(n *Node, bias string) (*graph.Node, bool, error) {
	conv, scale := b.scaledConv(n)
	in := dataInputs(conv)
	k := b.weight(in[1])
	if scale != "" {
		// The output channel of kernel element i is i mod c, for a regular
		// kernel [kh, kw, Cin, Cout] (c = Cout) and a depthwise one
		// [kh, kw, C, M] (c = C·M, channel c·M+m) alike.
		kd := k.Shape().Dimensions
		sd := []int{1, 1, 1, kd[3]}
		if conv.Op == "DepthwiseConv2dNative" {
			sd = []int{1, 1, kd[2], kd[3]}
		}
		k = graph.Mul(k, graph.Reshape(b.weight(scale), sd...))
	}
	x, err := b.eval(in[0])
	if err != nil {
		return nil, false, err
	}
	y, err := b.emit(opTable[conv.Op], conv, []*graph.Node{x, k})
	if err != nil {
		return nil, false, fmt.Errorf("tfjs: %s: node %q (%s): %w", b.m.Path, conv.Name, conv.Op, err)
	}
	if bias != "" {
		d := y.Shape().Dimensions
		bd := make([]int, len(d))
		for i := range bd {
			bd[i] = 1
		}
		bd[len(bd)-1] = d[len(d)-1]
		y = graph.Add(y, graph.Reshape(b.weight(bias), bd...))
	}
	return y, true, nil
}

// foldClamp turns a chain of Relu, Relu6 and Maximum/Minimum with a scalar
// constant, ending at n, into one clamp of the chain's input.
func (b *builder) foldClamp(n *Node) (*graph.Node, bool, error) {
	type step struct {
		max bool        // Maximum(x, c), else Minimum(x, c)
		c   *graph.Node // scalar
	}
	var chain []step // outermost first
	var src string   // the chain's input
	scalar := func(v float64) *graph.Node { return graph.Scalar(b.g, dtypes.Float32, v) }
	for cur := n; cur != nil; {
		var steps []step // this node's, innermost first
		next := -1       // data input that continues the chain
		switch cur.Op {
		case "Relu":
			steps, next = []step{{true, nil}}, 0
		case "Relu6":
			steps, next = []step{{true, nil}, {false, nil}}, 0
		case "Maximum", "Minimum":
			for i := range 2 {
				if b.isScalarConst(cur, i) {
					c := graph.Reshape(b.weight(dataInputs(cur)[i]))
					steps, next = []step{{cur.Op == "Maximum", c}}, 1-i
					break
				}
			}
		}
		if next < 0 {
			break
		}
		if cur.Op == "Relu" || cur.Op == "Relu6" {
			steps[0].c = scalar(0)
			if len(steps) == 2 {
				steps[1].c = scalar(6)
			}
		}
		for i := len(steps) - 1; i >= 0; i-- {
			chain = append(chain, steps[i])
		}
		src = dataInputs(cur)[next]
		cur = b.inner(cur, next)
	}
	if len(chain) < 2 {
		return nil, false, nil
	}
	x, err := b.eval(src)
	if err != nil {
		return nil, false, err
	}
	if x.DType() != dtypes.Float32 {
		return nil, false, nil // built as usual, which reports the problem
	}
	// Applying Maximum(·, c) to [lo, hi] gives [max(lo, c), max(hi, c)],
	// and Minimum likewise: any such chain is a clamp (nil: unbounded).
	var lo, hi *graph.Node
	for i := len(chain) - 1; i >= 0; i-- { // innermost first
		s := chain[i]
		if s.max {
			lo = pick(graph.Max, lo, s.c, true)
			hi = pick(graph.Max, hi, s.c, false)
		} else {
			lo = pick(graph.Min, lo, s.c, false)
			hi = pick(graph.Min, hi, s.c, true)
		}
	}
	switch {
	case lo == nil && hi == nil:
		return x, true, nil
	case lo == nil:
		return graph.Min(x, hi), true, nil
	case hi == nil:
		return graph.Max(x, lo), true, nil
	}
	return graph.Clamp(lo, x, hi), true, nil
}

// pick applies f to a bound and c; an unbounded (nil) bound becomes c
// when it moves to c (towards), else stays unbounded.
func pick(f func(a, b *graph.Node) *graph.Node, bound, c *graph.Node, towards bool) *graph.Node {
	if bound == nil {
		if towards {
			return c
		}
		return nil
	}
	return f(bound, c)
}
