package tfjs

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// SupportedOps returns the TensorFlow ops [Graph.Build] implements, sorted.
// They cover the converted MobileNet-style models (MobileFaceNet, HSE
// FaceRec) and their common variants.
func SupportedOps() []string {
	ops := make([]string, 0, len(opTable))
	for op := range opTable {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops
}

// Fused activations accepted in the "fused_ops" attribute of _FusedConv2D,
// FusedDepthwiseConv2dNative and _FusedMatMul, after an optional BiasAdd.
var fusedActivations = map[string]bool{"Relu": true, "Relu6": true, "Elu": true, "LeakyRelu": true, "Prelu": true, "Sigmoid": true}

// BuildOptions configures [Graph.BuildWith].
type BuildOptions struct {
	// Scope receives variables for the weights selected by AsVariables.
	// Building twice with the same scope (say a training and an evaluation
	// graph) reuses the variables.
	Scope *model.Scope

	// AsVariables selects, by weight (Const node) name, the float32 weights
	// that become variables of Scope instead of graph constants, so an
	// optimiser can fine-tune them. Nil means none. The variable of weight
	// "a/b/c" is named "a_b_c" in Scope.
	AsVariables func(weight string) bool

	// NativeConv makes convolutions use GoMLX's Convolve op (grouped for
	// depthwise), which maps to cuDNN on XLA/GPU. The default expresses
	// them with strided slices and matrix products, which is several times
	// faster on the pure-Go backend and differentiable everywhere
	// (GoMLX's grouped convolution has no gradient).
	NativeConv bool

	// RelativeStep, when > 0, makes each AsVariables variable hold an
	// offset d from the pretrained weight w₀ (starting at zero), and the
	// weight used is w₀ + RelativeStep·rms(w₀)·d. An optimiser step of
	// about lr on d (Adam's, whatever the gradient's scale) then moves
	// every weight tensor by about lr·RelativeStep of its own scale: how
	// to fine-tune pretrained layers whose weights are tiny with the
	// learning rate of a freshly initialised head.
	RelativeStep float64

	// Frozen, if set, marks the variables it selects as not trainable:
	// they are still read from the Store (so they can be swapped) but no
	// gradient is applied to them.
	Frozen func(weight string) bool

	// Inference builds a graph for forward passes only, the fastest the
	// backends run: batch norms written as a Mul and an Add of
	// per-channel constants after a convolution are folded into its
	// kernel and a bias, ReLU6 written as Relu, Minimum and Maximum
	// becomes one clamp, and depthwise convolutions use the backend's
	// grouped convolution (see fold.go), as do regular convolutions of
	// up to 4 input channels (an image: the pure-Go backend has a direct
	// kernel for them). The values are those of the
	// plain graph up to float rounding. Weights missing from the manifest
	// are read from Scope's variables of those names, which must exist;
	// none is created and their Trainable flags are left as they are
	// (AsVariables, Frozen and RelativeStep are ignored), and nothing in
	// such a graph has a gradient. For a runtime to pre-pack the weights
	// and fold the folding ops away they must be graph constants: in the
	// manifest, or variables of a Store built WithVariableAsConst (ONNX
	// Runtime runs faceres 3× faster so).
	Inference bool
}

// VariableName returns the name of the variable that [BuildOptions]
// creates for a weight.
func VariableName(weight string) string { return model.EscapeScopeName(weight) }

// Build emits the computation of the named outputs into g, with the graph's
// placeholders fed by inputs (keyed by placeholder name). inputs may also
// name an inner node, whose value is then taken as given and nothing below
// it is built: that runs just the top of a network on activations computed
// earlier (how transfer fine-tunes a backbone's last block on cached
// activations). Weights become graph constants. An output may carry a ":0" suffix, as in signatures.
//
// Shapes are checked against the placeholders' declared shapes (a -1
// dimension matches any size). The first problem — a missing input, an
// unsupported op, an attribute the op cannot honour, incompatible shapes —
// is returned as an error naming the node and its op.
func (m *Graph) Build(g *graph.Graph, inputs map[string]*graph.Node, outputs ...string) ([]*graph.Node, error) {
	return m.BuildWith(g, inputs, outputs, BuildOptions{})
}

// BuildWith is [Graph.Build] with options, such as weights as variables.
func (m *Graph) BuildWith(g *graph.Graph, inputs map[string]*graph.Node, outputs []string, opts BuildOptions) ([]*graph.Node, error) {
	if len(outputs) == 0 {
		return nil, fmt.Errorf("tfjs: %s: Build needs at least one output (the model's are %s)", m.Path, strings.Join(m.Outputs, ", "))
	}
	if opts.AsVariables != nil && opts.Scope == nil {
		return nil, fmt.Errorf("tfjs: %s: BuildOptions.AsVariables needs a Scope", m.Path)
	}
	b := &builder{m: m, g: g, inputs: inputs, opts: opts, vals: map[string]*graph.Node{}, state: map[string]int8{}}
	res := make([]*graph.Node, len(outputs))
	for i, o := range outputs {
		v, err := b.eval(o)
		if err != nil {
			return nil, err
		}
		res[i] = v
	}
	return res, nil
}

type builder struct {
	m      *Graph
	g      *graph.Graph
	inputs map[string]*graph.Node
	opts   BuildOptions
	vals   map[string]*graph.Node
	state  map[string]int8 // 1 while visiting, 2 when done
	uses   map[string]int  // consumers of each node (Inference; see fold.go)
}

// opFunc emits one op; in holds the values of the node's data inputs.
type opFunc func(b *builder, n *Node, in []*graph.Node) (*graph.Node, error)

var opTable map[string]opFunc

func init() {
	unary := func(f func(*graph.Node) *graph.Node) opFunc {
		return func(b *builder, n *Node, in []*graph.Node) (*graph.Node, error) {
			if err := wantInputs(n, in, 1); err != nil {
				return nil, err
			}
			return f(in[0]), nil
		}
	}
	binary := func(f func(x, y *graph.Node) *graph.Node) opFunc {
		return func(b *builder, n *Node, in []*graph.Node) (*graph.Node, error) {
			if err := wantInputs(n, in, 2); err != nil {
				return nil, err
			}
			x, y, err := broadcast(in[0], in[1])
			if err != nil {
				return nil, err
			}
			return f(x, y), nil
		}
	}
	opTable = map[string]opFunc{
		"Const":                      (*builder).constant,
		"Placeholder":                (*builder).placeholder,
		"Identity":                   unary(func(x *graph.Node) *graph.Node { return x }),
		"Add":                        binary(graph.Add),
		"AddV2":                      binary(graph.Add),
		"BiasAdd":                    binary(graph.Add),
		"Sub":                        binary(graph.Sub),
		"Mul":                        binary(graph.Mul),
		"RealDiv":                    binary(graph.Div),
		"Maximum":                    binary(graph.Max),
		"Minimum":                    binary(graph.Min),
		"Abs":                        unary(graph.Abs),
		"Neg":                        unary(graph.Neg),
		"Exp":                        unary(graph.Exp),
		"Log":                        unary(graph.Log),
		"Sqrt":                       unary(graph.Sqrt),
		"Rsqrt":                      unary(func(x *graph.Node) *graph.Node { return graph.Reciprocal(graph.Sqrt(x)) }), // GoMLX's Rsqrt has no gradient
		"Square":                     unary(graph.Square),
		"Tanh":                       unary(graph.Tanh),
		"Sigmoid":                    unary(graph.Logistic),
		"Relu":                       unary(relu),
		"Relu6":                      unary(relu6),
		"Softmax":                    unary(func(x *graph.Node) *graph.Node { return graph.Softmax(x, -1) }),
		"Sum":                        reduce(graph.ReduceSum),
		"Mean":                       reduce(graph.ReduceMean),
		"Max":                        reduce(graph.ReduceMax),
		"Squeeze":                    (*builder).squeeze,
		"Reshape":                    (*builder).reshape,
		"Conv2D":                     convOp(false, false),
		"_FusedConv2D":               convOp(false, true),
		"DepthwiseConv2dNative":      convOp(true, false),
		"FusedDepthwiseConv2dNative": convOp(true, true),
		"MatMul":                     matMulOp(false),
		"_FusedMatMul":               matMulOp(true),
		"Pad":                        (*builder).pad,
		"MaxPool":                    (*builder).maxPool,
	}
}

func wantInputs(n *Node, in []*graph.Node, k int) error {
	if len(in) != k {
		return fmt.Errorf("has %d inputs, want %d", len(in), k)
	}
	return nil
}

// eval returns the value of a node output, emitting it and its inputs
// first. Cycles are errors.
func (b *builder) eval(ref string) (*graph.Node, error) {
	name, k := splitOutput(ref)
	n := b.m.byName[name]
	if n == nil {
		return nil, fmt.Errorf("tfjs: %s: no node named %q (outputs are %s)", b.m.Path, name, strings.Join(b.m.Outputs, ", "))
	}
	if k != 0 {
		return nil, fmt.Errorf("tfjs: %s: node %q (%s): output %d requested, only output 0 is supported", b.m.Path, name, n.Op, k)
	}
	if x, ok := b.inputs[name]; ok && x != nil && n.Op != "Placeholder" {
		// A cut: the caller supplies this inner node's value (say cached
		// activations), so nothing below it is built.
		return x, nil
	}
	switch b.state[name] {
	case 2:
		return b.vals[name], nil
	case 1:
		return nil, fmt.Errorf("tfjs: %s: node %q (%s) is part of a cycle", b.m.Path, name, n.Op)
	}
	f, ok := opTable[n.Op]
	if !ok {
		return nil, fmt.Errorf("tfjs: %s: node %q: unsupported op %s (supported: %s)", b.m.Path, name, n.Op, strings.Join(SupportedOps(), ", "))
	}
	b.state[name] = 1
	if b.opts.Inference {
		v, ok, err := b.fold(n)
		if err != nil {
			return nil, err
		}
		if ok {
			b.vals[name], b.state[name] = v, 2
			return v, nil
		}
	}
	var in []*graph.Node
	for _, r := range n.Inputs {
		if strings.HasPrefix(r, "^") { // control dependency: no data flows
			continue
		}
		v, err := b.eval(r)
		if err != nil {
			return nil, err
		}
		in = append(in, v)
	}
	v, err := b.emit(f, n, in)
	if err != nil {
		return nil, fmt.Errorf("tfjs: %s: node %q (%s): %w", b.m.Path, name, n.Op, err)
	}
	b.vals[name], b.state[name] = v, 2
	return v, nil
}

// emit runs f, turning GoMLX's panics on invalid shapes into errors.
func (b *builder) emit(f opFunc, n *Node, in []*graph.Node) (v *graph.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return f(b, n, in)
}

func (b *builder) constant(n *Node, _ []*graph.Node) (*graph.Node, error) {
	if b.opts.Inference {
		if _, ok := b.weightShape(n.Name); ok {
			return b.weight(n.Name), nil
		}
	}
	t, ok := b.m.Weights[n.Name]
	if !ok {
		// A graph without weights (say one stored in a model file) reads
		// them from variables that already exist in the scope.
		if b.opts.AsVariables != nil && b.opts.AsVariables(n.Name) {
			if v := b.opts.Scope.GetVariable(VariableName(n.Name)); v != nil {
				// Frozen decides both ways here: the variable may come
				// frozen from an earlier stage of training.
				v.Trainable = b.opts.Frozen == nil || !b.opts.Frozen(n.Name)
				return v.NodeValue(b.g), nil
			}
			return nil, fmt.Errorf("no weight of that name in the weights manifest, and no variable %q in scope %s", VariableName(n.Name), b.opts.Scope.Scope())
		}
		return nil, fmt.Errorf("no weight of that name in the weights manifest")
	}
	var tt *tensors.Tensor
	if t.DType == Int32 {
		tt = tensors.FromFlatDataAndDimensions(t.I32, t.Shape...)
	} else {
		tt = tensors.FromFlatDataAndDimensions(t.F32, t.Shape...)
	}
	if t.DType == Float32 && b.opts.AsVariables != nil && b.opts.AsVariables(n.Name) {
		init := tt
		if b.opts.RelativeStep > 0 {
			init = tensors.FromFlatDataAndDimensions(make([]float32, len(t.F32)), t.Shape...)
		}
		v, err := b.opts.Scope.CreateVariable(VariableName(n.Name), init)
		if err != nil {
			return nil, err
		}
		if b.opts.Frozen != nil && b.opts.Frozen(n.Name) {
			v.Trainable = false
		}
		if b.opts.RelativeStep > 0 {
			scale := b.opts.RelativeStep * RMS(t.F32)
			return graph.Add(graph.ConstTensor(b.g, tt), graph.MulScalar(v.NodeValue(b.g), scale)), nil
		}
		return v.NodeValue(b.g), nil
	}
	return graph.ConstTensor(b.g, tt), nil
}

func (b *builder) placeholder(n *Node, _ []*graph.Node) (*graph.Node, error) {
	x, ok := b.inputs[n.Name]
	if !ok || x == nil {
		return nil, fmt.Errorf("no input given for this placeholder")
	}
	if a, ok := n.Attr["shape"]; ok && a.Shape != nil {
		dims := x.Shape().Dimensions
		if len(dims) != len(a.Shape) {
			return nil, fmt.Errorf("input has shape %v, want rank %d shape %v", dims, len(a.Shape), a.Shape)
		}
		for i, d := range a.Shape {
			if d >= 0 && dims[i] != d {
				return nil, fmt.Errorf("input has shape %v, want %v (-1: any)", dims, a.Shape)
			}
		}
	}
	if x.DType() != dtypes.Float32 {
		if a, ok := n.Attr["dtype"]; ok && a.Type == "DT_FLOAT" {
			return nil, fmt.Errorf("input has dtype %s, want float32", x.DType())
		}
	}
	return x, nil
}

// constInts returns the int32 value of a Const node, for axes and shapes,
// which must be known while the graph is built.
func (b *builder) constInts(ref string) ([]int, error) {
	name, _ := splitOutput(ref)
	n := b.m.byName[name]
	if n == nil || n.Op != "Const" {
		return nil, fmt.Errorf("input %q must be an int32 Const", ref)
	}
	t := b.m.Weights[name]
	if t == nil || t.DType != Int32 {
		return nil, fmt.Errorf("input %q must be an int32 Const", ref)
	}
	out := make([]int, len(t.I32))
	for i, v := range t.I32 {
		out[i] = int(v)
	}
	return out, nil
}

// dataInputs returns the non-control input names of n.
func dataInputs(n *Node) []string {
	var r []string
	for _, s := range n.Inputs {
		if !strings.HasPrefix(s, "^") {
			r = append(r, s)
		}
	}
	return r
}

// normAxes maps possibly negative axes into 0..rank-1.
func normAxes(axes []int, rank int) ([]int, error) {
	out := make([]int, len(axes))
	seen := map[int]bool{}
	for i, a := range axes {
		if a < 0 {
			a += rank
		}
		if a < 0 || a >= rank {
			return nil, fmt.Errorf("axis %d out of range for rank %d", axes[i], rank)
		}
		if seen[a] {
			return nil, fmt.Errorf("axis %d given twice", axes[i])
		}
		seen[a] = true
		out[i] = a
	}
	return out, nil
}

func reduce(f func(x *graph.Node, axes ...int) *graph.Node) opFunc {
	return func(b *builder, n *Node, in []*graph.Node) (*graph.Node, error) {
		if err := wantInputs(n, in, 2); err != nil {
			return nil, err
		}
		axes, err := b.constInts(dataInputs(n)[1])
		if err != nil {
			return nil, err
		}
		x := in[0]
		axes, err = normAxes(axes, x.Rank())
		if err != nil {
			return nil, err
		}
		if len(axes) == 0 {
			return x, nil
		}
		y := f(x, axes...)
		if a, ok := n.Attr["keep_dims"]; ok && a.B != nil && *a.B {
			dims := append([]int(nil), x.Shape().Dimensions...)
			for _, ax := range axes {
				dims[ax] = 1
			}
			y = graph.Reshape(y, dims...)
		}
		return y, nil
	}
}

func (b *builder) squeeze(n *Node, in []*graph.Node) (*graph.Node, error) {
	if err := wantInputs(n, in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	var axes []int
	if a, ok := n.Attr["squeeze_dims"]; ok && a.List != nil {
		for _, v := range a.List.I {
			axes = append(axes, int(v))
		}
	}
	axes, err := normAxes(axes, x.Rank())
	if err != nil {
		return nil, err
	}
	drop := map[int]bool{}
	for _, ax := range axes {
		if x.Shape().Dimensions[ax] != 1 {
			return nil, fmt.Errorf("cannot squeeze axis %d of shape %v", ax, x.Shape().Dimensions)
		}
		drop[ax] = true
	}
	var dims []int
	for i, d := range x.Shape().Dimensions {
		if drop[i] || (len(axes) == 0 && d == 1) {
			continue
		}
		dims = append(dims, d)
	}
	return graph.Reshape(x, dims...), nil
}

func (b *builder) reshape(n *Node, in []*graph.Node) (*graph.Node, error) {
	if err := wantInputs(n, in, 2); err != nil {
		return nil, err
	}
	dims, err := b.constInts(dataInputs(n)[1])
	if err != nil {
		return nil, err
	}
	x := in[0]
	total := x.Shape().Size()
	known, unknown := 1, -1
	for i, d := range dims {
		switch {
		case d == -1 && unknown < 0:
			unknown = i
		case d < 0:
			return nil, fmt.Errorf("invalid target shape %v", dims)
		default:
			known *= d
		}
	}
	if unknown >= 0 {
		if known == 0 || total%known != 0 {
			return nil, fmt.Errorf("cannot reshape %v to %v", x.Shape().Dimensions, dims)
		}
		dims = append([]int(nil), dims...)
		dims[unknown] = total / known
	} else if known != total {
		return nil, fmt.Errorf("cannot reshape %v to %v", x.Shape().Dimensions, dims)
	}
	return graph.Reshape(x, dims...), nil
}

// pad implements Pad (zeros only, as TensorFlow's Pad; PadV2 and
// MirrorPad are other ops). Its second input is an int32 Const of shape
// [rank, 2]: the zeros added before and after each axis. BlazeFace uses it
// to widen the channels of a residual branch.
func (b *builder) pad(n *Node, in []*graph.Node) (*graph.Node, error) {
	if err := wantInputs(n, in, 2); err != nil {
		return nil, err
	}
	p, err := b.constInts(dataInputs(n)[1])
	if err != nil {
		return nil, err
	}
	x := in[0]
	if len(p) != 2*x.Rank() {
		return nil, fmt.Errorf("paddings %v do not fit an input of rank %d (want [rank, 2])", p, x.Rank())
	}
	for axis := range x.Rank() {
		before, after := p[2*axis], p[2*axis+1]
		if before < 0 || after < 0 {
			return nil, fmt.Errorf("negative paddings %v not supported", p)
		}
		x = zeroPad(x, axis, before, after)
	}
	return x, nil
}

// maxPool implements MaxPool in NHWC layout with VALID or SAME padding, as
// the maximum of one strided slice per window tap (every backend has Slice
// and Max; SAME pads with the input's lowest value, never picked unless
// the whole window is padding, which SAME rules out).
func (b *builder) maxPool(n *Node, in []*graph.Node) (*graph.Node, error) {
	if err := wantInputs(n, in, 1); err != nil {
		return nil, err
	}
	if f := attrString(n, "data_format", "NHWC"); f != "NHWC" {
		return nil, fmt.Errorf("data_format %q not supported (only NHWC)", f)
	}
	x := in[0]
	if x.Rank() != 4 {
		return nil, fmt.Errorf("input rank %d, want 4", x.Rank())
	}
	k := attrInts(n, "ksize", nil)
	s := attrInts(n, "strides", nil)
	if len(k) != 4 || len(s) != 4 || k[0] != 1 || k[3] != 1 || s[0] != 1 || s[3] != 1 || k[1] < 1 || k[2] < 1 || s[1] < 1 || s[2] < 1 {
		return nil, fmt.Errorf("ksize %v and strides %v not supported (want [1, h, w, 1])", k, s)
	}
	xd := x.Shape().Dimensions
	switch p := attrString(n, "padding", "VALID"); p {
	case "VALID":
	case "SAME":
		b0, a0 := SamePadding(xd[1], k[1], s[1], 1)
		b1, a1 := SamePadding(xd[2], k[2], s[2], 1)
		if b0+a0+b1+a1 > 0 {
			low := graph.ReduceAllMin(x)
			x = edgePad(x, 1, b0, a0, low)
			x = edgePad(x, 2, b1, a1, low)
		}
	default:
		return nil, fmt.Errorf("padding %q not supported", p)
	}
	xd = x.Shape().Dimensions
	oh := (xd[1]-k[1])/s[1] + 1
	ow := (xd[2]-k[2])/s[2] + 1
	if oh <= 0 || ow <= 0 {
		return nil, fmt.Errorf("window %v larger than the input %v", k, xd)
	}
	var y *graph.Node
	for i := range k[1] {
		for j := range k[2] {
			t := graph.Slice(x, graph.AxisRange(),
				graph.AxisRange(i, i+(oh-1)*s[1]+1).Stride(s[1]),
				graph.AxisRange(j, j+(ow-1)*s[2]+1).Stride(s[2]),
				graph.AxisRange())
			if y == nil {
				y = t
			} else {
				y = graph.Max(y, t)
			}
		}
	}
	return y, nil
}

// edgePad adds before and after copies of the scalar v along axis.
func edgePad(x *graph.Node, axis, before, after int, v *graph.Node) *graph.Node {
	fill := func(n int) *graph.Node {
		d := append([]int(nil), x.Shape().Dimensions...)
		d[axis] = n
		return graph.BroadcastToDims(v, d...)
	}
	parts := []*graph.Node{}
	if before > 0 {
		parts = append(parts, fill(before))
	}
	parts = append(parts, x)
	if after > 0 {
		parts = append(parts, fill(after))
	}
	if len(parts) == 1 {
		return x
	}
	return graph.Concatenate(parts, axis)
}

// broadcast applies NumPy/TensorFlow broadcasting: shapes are aligned on
// the right and dimensions of 1 stretch.
func broadcast(x, y *graph.Node) (*graph.Node, *graph.Node, error) {
	if x.DType() != y.DType() {
		return nil, nil, fmt.Errorf("operands have dtypes %s and %s", x.DType(), y.DType())
	}
	xd, yd := x.Shape().Dimensions, y.Shape().Dimensions
	r := max(len(xd), len(yd))
	pad := func(d []int) []int {
		out := make([]int, r)
		for i := range out {
			out[i] = 1
		}
		copy(out[r-len(d):], d)
		return out
	}
	xp, yp := pad(xd), pad(yd)
	out := make([]int, r)
	for i := range out {
		switch {
		case xp[i] == yp[i]:
			out[i] = xp[i]
		case xp[i] == 1:
			out[i] = yp[i]
		case yp[i] == 1:
			out[i] = xp[i]
		default:
			return nil, nil, fmt.Errorf("shapes %v and %v do not broadcast", xd, yd)
		}
	}
	fix := func(v *graph.Node, p []int) *graph.Node {
		if len(v.Shape().Dimensions) != r {
			v = graph.Reshape(v, p...)
		}
		if !slices.Equal(p, out) {
			v = graph.BroadcastToDims(v, out...)
		}
		return v
	}
	return fix(x, xp), fix(y, yp), nil
}

func relu(x *graph.Node) *graph.Node { return graph.Max(x, graph.ZerosLike(x)) }

func relu6(x *graph.Node) *graph.Node {
	six := graph.BroadcastToDims(graph.Scalar(x.Graph(), x.DType(), 6), x.Shape().Dimensions...)
	return graph.Min(relu(x), six)
}

// applyFused applies the "fused_ops" of a fused node to y: an optional
// BiasAdd then an optional activation, taking their operands from args
// (the inputs after the op's own two).
func applyFused(n *Node, y *graph.Node, args []*graph.Node) (*graph.Node, error) {
	a, ok := n.Attr["fused_ops"]
	if !ok || a.List == nil {
		return y, nil
	}
	next := 0
	take := func(what string) (*graph.Node, error) {
		if next >= len(args) {
			return nil, fmt.Errorf("fused op %s has no operand (num_args is %d)", what, len(args))
		}
		next++
		return args[next-1], nil
	}
	for i, op := range a.List.S {
		switch {
		case op == "BiasAdd" && i == 0:
			bias, err := take(op)
			if err != nil {
				return nil, err
			}
			if y, bias, err = broadcast(y, bias); err != nil {
				return nil, fmt.Errorf("BiasAdd: %w", err)
			}
			y = graph.Add(y, bias)
		case fusedActivations[op] && i == len(a.List.S)-1:
			switch op {
			case "Relu":
				y = relu(y)
			case "Relu6":
				y = relu6(y)
			case "Sigmoid":
				y = graph.Logistic(y)
			case "Elu":
				y = graph.Where(graph.GreaterThan(y, graph.ZerosLike(y)), y, graph.Sub(graph.Exp(graph.Min(y, graph.ZerosLike(y))), graph.OnesLike(y)))
			case "LeakyRelu":
				alpha := 0.2
				if la, ok := n.Attr["leakyrelu_alpha"]; ok && la.F != nil {
					alpha = *la.F
				}
				y = graph.Max(y, graph.MulScalar(y, alpha))
			case "Prelu":
				// tfjs passes the PReLU weights right after the bias.
				if len(args) < 2 {
					return nil, fmt.Errorf("fused Prelu needs a bias and an alpha operand, got %d operands", len(args))
				}
				alpha := args[1]
				neg, al, err := broadcast(graph.Min(y, graph.ZerosLike(y)), alpha)
				if err != nil {
					return nil, fmt.Errorf("Prelu: %w", err)
				}
				y = graph.Add(relu(y), graph.Mul(neg, al))
			}
		default:
			return nil, fmt.Errorf("unsupported fused_ops %q (supported: BiasAdd, then one of Relu, Relu6, Elu, LeakyRelu, Prelu, Sigmoid)", a.List.S)
		}
	}
	return y, nil
}

func attrInts(n *Node, key string, def []int) []int {
	a, ok := n.Attr[key]
	if !ok || a.List == nil || len(a.List.I) == 0 {
		return def
	}
	out := make([]int, len(a.List.I))
	for i, v := range a.List.I {
		out[i] = int(v)
	}
	return out
}

func attrString(n *Node, key, def string) string {
	if a, ok := n.Attr[key]; ok && a.S != nil {
		return *a.S
	}
	return def
}

// SamePadding returns TensorFlow's SAME padding of one spatial axis: the
// output has ceil(in/stride) positions, and the total padding needed for
// that is split with the odd pixel at the end (bottom/right), unlike the
// symmetric padding of Caffe or PyTorch.
func SamePadding(in, kernel, stride, dilation int) (before, after int) {
	eff := (kernel-1)*dilation + 1
	out := (in + stride - 1) / stride
	total := max((out-1)*stride+eff-in, 0)
	return total / 2, total - total/2
}

// convOp implements Conv2D and DepthwiseConv2dNative, and their fused
// variants, in NHWC layout. A depthwise kernel [kh, kw, C, M] becomes a
// grouped convolution with C groups and kernel [kh, kw, 1, C*M], whose
// output channel c*M+m is TensorFlow's.
func convOp(depthwise, fused bool) opFunc {
	return func(b *builder, n *Node, in []*graph.Node) (*graph.Node, error) {
		if len(in) < 2 || (!fused && len(in) != 2) {
			return nil, fmt.Errorf("has %d inputs", len(in))
		}
		x, k := in[0], in[1]
		if f := attrString(n, "data_format", "NHWC"); f != "NHWC" {
			return nil, fmt.Errorf("data_format %q not supported (only NHWC)", f)
		}
		if x.Rank() != 4 || k.Rank() != 4 {
			return nil, fmt.Errorf("input rank %d and kernel rank %d, want 4 and 4", x.Rank(), k.Rank())
		}
		strides := attrInts(n, "strides", []int{1, 1, 1, 1})
		dil := attrInts(n, "dilations", []int{1, 1, 1, 1})
		if len(strides) != 4 || strides[0] != 1 || strides[3] != 1 || strides[1] < 1 || strides[2] < 1 {
			return nil, fmt.Errorf("strides %v not supported (want [1, sh, sw, 1])", strides)
		}
		if len(dil) != 4 || dil[0] != 1 || dil[3] != 1 || dil[1] < 1 || dil[2] < 1 {
			return nil, fmt.Errorf("dilations %v not supported (want [1, dh, dw, 1])", dil)
		}
		xd, kd := x.Shape().Dimensions, k.Shape().Dimensions
		inC := xd[3]
		var pads [][2]int
		switch p := attrString(n, "padding", "VALID"); p {
		case "VALID":
			pads = [][2]int{{0, 0}, {0, 0}}
		case "SAME":
			b0, a0 := SamePadding(xd[1], kd[0], strides[1], dil[1])
			b1, a1 := SamePadding(xd[2], kd[1], strides[2], dil[2])
			pads = [][2]int{{b0, a0}, {b1, a1}}
		case "EXPLICIT":
			e := attrInts(n, "explicit_paddings", nil)
			if len(e) != 8 || e[0] != 0 || e[1] != 0 || e[6] != 0 || e[7] != 0 {
				return nil, fmt.Errorf("explicit_paddings %v not supported", e)
			}
			for _, v := range e {
				if v < 0 {
					return nil, fmt.Errorf("negative explicit_paddings %v", e)
				}
			}
			pads = [][2]int{{e[2], e[3]}, {e[4], e[5]}}
		default:
			return nil, fmt.Errorf("padding %q not supported", p)
		}
		if depthwise {
			if kd[2] != inC {
				return nil, fmt.Errorf("depthwise kernel %v does not match %d input channels", kd, inC)
			}
		} else if kd[2] != inC {
			return nil, fmt.Errorf("kernel %v does not match %d input channels", kd, inC)
		}
		var y *graph.Node
		// An inference graph also gives a regular convolution of an image
		// (up to 4 channels) to the backend's convolution: on pure Go a
		// direct kernel, where the slices would copy every input value
		// kh·kw times (BlazeFace's first layer, 5×5: 4.5 → 0.5 ms of CPU).
		imageConv := !depthwise && inC <= 4 && kd[3] <= 256 && dil[1] == 1 && dil[2] == 1
		native := b.opts.NativeConv || (b.opts.Inference && (depthwise || imageConv))
		if !native && (!depthwise || kd[3] == 1) {
			y = sliceConv(x, k, strides[1], strides[2], dil[1], dil[2], pads, depthwise)
			if !fused {
				return y, nil
			}
			return applyFused(n, y, in[2:])
		}
		if depthwise {
			k = graph.Reshape(k, kd[0], kd[1], 1, kd[2]*kd[3])
		}
		if (strides[1] > 1 || strides[2] > 1) && (dil[1] > 1 || dil[2] > 1) {
			return nil, fmt.Errorf("strides %v together with dilations %v not supported", strides, dil)
		}
		c := graph.Convolve(x, k).PaddingPerDim(pads)
		if strides[1] > 1 || strides[2] > 1 {
			c = c.StridePerAxis(strides[1], strides[2])
		}
		if dil[1] > 1 || dil[2] > 1 {
			c = c.DilationPerAxis(dil[1], dil[2])
		}
		if depthwise && inC > 1 {
			c = c.ChannelGroupCount(inC)
		}
		y = c.Done()
		if !fused {
			return y, nil
		}
		return applyFused(n, y, in[2:])
	}
}

// matMulOp implements MatMul and _FusedMatMul of two matrices.
func matMulOp(fused bool) opFunc {
	return func(b *builder, n *Node, in []*graph.Node) (*graph.Node, error) {
		if len(in) < 2 || (!fused && len(in) != 2) {
			return nil, fmt.Errorf("has %d inputs", len(in))
		}
		x, w := in[0], in[1]
		if x.Rank() != 2 || w.Rank() != 2 {
			return nil, fmt.Errorf("operands of rank %d and %d, want matrices", x.Rank(), w.Rank())
		}
		if a, ok := n.Attr["transpose_a"]; ok && a.B != nil && *a.B {
			x = graph.Transpose(x, 0, 1)
		}
		if a, ok := n.Attr["transpose_b"]; ok && a.B != nil && *a.B {
			w = graph.Transpose(w, 0, 1)
		}
		if x.Shape().Dimensions[1] != w.Shape().Dimensions[0] {
			return nil, fmt.Errorf("cannot multiply %v by %v", x.Shape().Dimensions, w.Shape().Dimensions)
		}
		y := graph.MatMul(x, w)
		if !fused {
			return y, nil
		}
		return applyFused(n, y, in[2:])
	}
}

// zeroPad adds before and after zeros along axis.
func zeroPad(x *graph.Node, axis, before, after int) *graph.Node {
	return edgePad(x, axis, before, after, graph.ScalarZero(x.Graph(), x.DType()))
}

// sliceConv computes an NHWC convolution from strided slices of the padded
// input, one per kernel tap:
//
//   - a depthwise kernel [kh, kw, C, 1] multiplies each tap's slice by its
//     per-channel weights and sums the kh·kw products;
//   - a regular kernel [kh, kw, C, O] concatenates the taps along the
//     channel axis (im2col, in the kernel's own row-major order) and
//     multiplies by the kernel reshaped to [kh·kw·C, O]; a 1×1 kernel is a
//     plain matrix product.
func sliceConv(x, k *graph.Node, sh, sw, dh, dw int, pads [][2]int, depthwise bool) *graph.Node {
	kd := k.Shape().Dimensions
	kh, kw := kd[0], kd[1]
	if pads[0] != [2]int{} || pads[1] != [2]int{} {
		// Zero padding by concatenation: every backend has Concatenate,
		// while ONNX Runtime's backend has no Pad.
		x = zeroPad(zeroPad(x, 1, pads[0][0], pads[0][1]), 2, pads[1][0], pads[1][1])
	}
	xd := x.Shape().Dimensions
	oh := (xd[1]-((kh-1)*dh+1))/sh + 1
	ow := (xd[2]-((kw-1)*dw+1))/sw + 1
	if oh <= 0 || ow <= 0 {
		panic(fmt.Sprintf("kernel %v larger than the padded input %v", kd, xd))
	}
	tap := func(i, j int) *graph.Node {
		if kh == 1 && kw == 1 && sh == 1 && sw == 1 {
			return x
		}
		return graph.Slice(x, graph.AxisRange(),
			graph.AxisRange(i*dh, i*dh+(oh-1)*sh+1).Stride(sh),
			graph.AxisRange(j*dw, j*dw+(ow-1)*sw+1).Stride(sw),
			graph.AxisRange())
	}
	if depthwise {
		// Each tap's weights are picked by a product with a one-hot vector
		// rather than a Slice, whose gradient (a Pad) ONNX Runtime's
		// backend lacks — needed when the kernel is a variable being
		// fine-tuned.
		kflat := graph.Reshape(k, kh*kw, kd[2]*kd[3])
		var acc *graph.Node
		for i := range kh {
			for j := range kw {
				hot := make([]float32, kh*kw)
				hot[i*kw+j] = 1
				oneHot := graph.Const(x.Graph(), hot)
				if k.DType() != dtypes.Float32 {
					oneHot = graph.ConvertDType(oneHot, k.DType())
				}
				w := graph.Reshape(graph.DotGeneral(oneHot, []int{0}, nil, kflat, []int{0}, nil), 1, 1, 1, kd[2])
				p := tap(i, j)
				term := graph.Mul(p, graph.BroadcastToDims(w, p.Shape().Dimensions...))
				if acc == nil {
					acc = term
				} else {
					acc = graph.Add(acc, term)
				}
			}
		}
		return acc
	}
	var cols *graph.Node
	if kh == 1 && kw == 1 {
		cols = tap(0, 0)
	} else {
		taps := make([]*graph.Node, 0, kh*kw)
		for i := range kh {
			for j := range kw {
				taps = append(taps, tap(i, j))
			}
		}
		cols = graph.Concatenate(taps, 3)
	}
	n, c := xd[0], cols.Shape().Dimensions[3]
	y := graph.MatMul(graph.Reshape(cols, n*oh*ow, c), graph.Reshape(k, kh*kw*kd[2], kd[3]))
	return graph.Reshape(y, n, oh, ow, kd[3])
}

// RMS is the root mean square of w (1 if w is all zeros, so that a zero
// weight can still move under [BuildOptions.RelativeStep]).
func RMS(w []float32) float64 {
	var sq float64
	for _, v := range w {
		sq += float64(v) * float64(v)
	}
	if sq == 0 || len(w) == 0 {
		return 1
	}
	return math.Sqrt(sq / float64(len(w)))
}
