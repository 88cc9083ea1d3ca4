package model

import (
	"fmt"

	"github.com/agegender/agegender/model/ops"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
)

// The seed reproduction's variants beyond the activation swaps in origin.go:
//
//   - origin-bn: origin with batch normalisation after each convolution in
//     place of LRN (and no LRN at all), He initialisation.
//   - resnet: a ResNet-50-like net sized for faces — a stem of 3×3 convs
//     with 32 and 64 channels and a max-pool, then bottleneck stages
//     64-64-256 ×3, 128-128-512 ×4 and 256-256-1024 ×6 (the first block of
//     each stage has a 1×1 projection shortcut; stages 2 and 3 start with
//     stride 2), global average pooling and a dense classifier.
//   - inception: a GoogLeNet-like net — a stem like resnet's, then eight
//     inception blocks (1×1, 1×1→3×3, 1×1→5×5 and 3×3-pool→1×1 branches
//     concatenated) in three groups separated by max-pools, global average
//     pooling and a dense classifier; its widths put its cost close to
//     resnet's.
//
// All batch norms are written with ops every backend differentiates
// (ReduceMean, Sqrt, Div — ONNX Runtime's backend lacks Rsqrt and the
// BatchNorm ops), and keep moving averages for inference.
func init() {
	register(Net{Name: "origin-bn", Doc: "origin with batch norm after each conv in place of LRN", minInput: 48, build: originBN})
	register(Net{Name: "resnet", Doc: "ResNet-like: 3×3 stem 32/64, bottleneck stages 256×3, 512×4, 1024×6, GAP", minInput: 32, build: resnet})
	register(Net{Name: "inception", Doc: "Inception-like: 3×3 stem, 8 GoogLeNet-style blocks in 3 groups, GAP", minInput: 32, build: inception})
}

// batchNorm normalises x over every axis but the last (channels).
// Training uses the batch statistics and updates moving averages
// (momentum 0.9); inference uses the moving averages.
func (b *builder) batchNorm(name string, x *Node) *Node {
	s := b.scope.In("%s", name)
	c := x.Shape().Dimensions[x.Rank()-1]
	gamma := b.param(s, "gamma", []int{c}, constant(1))
	beta := b.param(s, "beta", []int{c}, constant(0))
	meanV := b.stat(s, "moving_mean", c, 0)
	varV := b.stat(s, "moving_var", c, 1)
	axes := make([]int, x.Rank()-1)
	for i := range axes {
		axes[i] = i
	}
	bshape := make([]int, x.Rank())
	for i := range bshape {
		bshape[i] = 1
	}
	bshape[len(bshape)-1] = c
	var mean, variance *Node
	if b.training {
		mean = ReduceMean(x, axes...)
		variance = ReduceMean(Square(Sub(x, Reshape(mean, bshape...))), axes...)
		const m = 0.9
		meanV.SetNodeValue(Add(MulScalar(meanV.NodeValue(b.g), m), MulScalar(StopGradient(mean), 1-m)))
		varV.SetNodeValue(Add(MulScalar(varV.NodeValue(b.g), m), MulScalar(StopGradient(variance), 1-m)))
	} else {
		mean, variance = meanV.NodeValue(b.g), varV.NodeValue(b.g)
	}
	norm := Div(Sub(x, Reshape(mean, bshape...)), Sqrt(AddScalar(Reshape(variance, bshape...), 1e-5)))
	return Add(Mul(norm, Reshape(gamma, bshape...)), Reshape(beta, bshape...))
}

// stat returns a non-trainable per-channel statistic variable.
func (b *builder) stat(s *mlx.Scope, name string, c int, init float64) *mlx.Variable {
	full := mlx.JoinPath(s.Scope(), name)
	if v := b.scope.Store().GetVariable(full); v != nil {
		return v.SetTrainable(false)
	}
	val := InitialValue(0, full, []int{c}, "const", 0, init)
	if b.cfg.DType == dtypes.Float64 {
		val = tensors.FromFlatDataAndDimensions(toF64(tensors.MustCopyFlatData[float32](val)), c)
	}
	return s.VariableWithValue(name, val).SetTrainable(false)
}

// convBN is conv (no bias, "same" padding (k-1)/2) → batch norm →
// optional ReLU.
func (b *builder) convBN(name string, x *Node, out, k, stride int, relu bool) *Node {
	return b.convBNPad(name, x, out, k, stride, (k-1)/2, relu)
}

// convBNPad is convBN with an explicit zero padding.
func (b *builder) convBNPad(name string, x *Node, out, k, stride, pad int, relu bool) *Node {
	s := b.scope.In("%s", name)
	cin := x.Shape().Dimensions[3]
	w := b.param(s, "weights", []int{k, k, cin, out}, heNormal(k*k*cin))
	b.countConv(x, k, stride, pad, out)
	y := b.batchNormIn(s, ops.Conv2D(b.cfg.Impl, x, w, stride, pad))
	if relu {
		y = ops.Relu(y)
	}
	return y
}

// batchNormIn applies batchNorm inside scope s (as "bn").
func (b *builder) batchNormIn(s *mlx.Scope, x *Node) *Node {
	saved := b.scope
	b.scope = s
	defer func() { b.scope = saved }()
	return b.batchNorm("bn", x)
}

func originBN(b *builder, x *Node) *Node {
	impl := b.cfg.Impl
	// origin's convolutions exactly (conv1 unpadded), batch norm for LRN.
	x = b.convBNPad("conv1", x, 96, 7, 4, 0, true)
	x = ops.MaxPool2D(impl, x, 3, 2)
	x = b.convBNPad("conv2", x, 256, 5, 1, 2, true)
	x = ops.MaxPool2D(impl, x, 3, 2)
	x = b.convBNPad("conv3", x, 384, 3, 1, 1, true)
	x = ops.MaxPool2D(impl, x, 3, 2)
	x = ops.Flatten(x)
	in := x.Shape().Dimensions[1]
	x = b.dropout(ops.Relu(b.dense("fc6", x, 512, heNormal(in), constant(0))), 0.5)
	x = b.dropout(ops.Relu(b.dense("fc7", x, 512, heNormal(512), constant(0))), 0.5)
	return b.dense("fc8", x, b.cfg.Classes, normal(0.01), constant(0))
}

// stem is two 3×3 conv-BN-ReLU layers (32 then 64 channels, the first with
// stride 2) and a 3/2 max-pool: a 112 input leaves 28×28×64.
func stem(b *builder, x *Node) *Node {
	x = b.convBN("stem1", x, 32, 3, 2, true)
	x = b.convBN("stem2", x, 64, 3, 1, true)
	return ops.MaxPool2D(b.cfg.Impl, x, 3, 2)
}

// globalPoolDense averages the spatial axes and adds the classifier.
func globalPoolDense(b *builder, x *Node) *Node {
	x = ReduceMean(x, 0, 1) // [N, C]
	x = b.dropout(x, 0.2)
	return b.dense("fc", x, b.cfg.Classes, normal(0.01), constant(0))
}

func resnet(b *builder, x *Node) *Node {
	x = stem(b, x)
	stages := []struct{ mid, out, blocks, stride int }{{64, 256, 3, 1}, {128, 512, 4, 2}, {256, 1024, 6, 2}}
	for si, st := range stages {
		for i := 0; i < st.blocks; i++ {
			stride := 1
			if i == 0 {
				stride = st.stride
			}
			name := fmt.Sprintf("res%d_%d", si+2, i+1)
			short := x
			if i == 0 {
				short = b.convBN(name+"_proj", x, st.out, 1, stride, false)
			}
			y := b.convBN(name+"_a", x, st.mid, 1, 1, true)
			y = b.convBN(name+"_b", y, st.mid, 3, stride, true)
			y = b.convBN(name+"_c", y, st.out, 1, 1, false)
			x = ops.Relu(Add(y, short))
		}
	}
	return globalPoolDense(b, x)
}

// inceptionBlock concatenates four branches along channels.
func (b *builder) inceptionBlock(name string, x *Node, c1, c3r, c3, c5r, c5, cp int) *Node {
	br1 := b.convBN(name+"_1x1", x, c1, 1, 1, true)
	br3 := b.convBN(name+"_3x3", b.convBN(name+"_3x3r", x, c3r, 1, 1, true), c3, 3, 1, true)
	br5 := b.convBN(name+"_5x5", b.convBN(name+"_5x5r", x, c5r, 1, 1, true), c5, 5, 1, true)
	brp := b.convBN(name+"_pool", ops.MaxPoolSame(x, 3), cp, 1, 1, true)
	return Concatenate([]*Node{br1, br3, br5, brp}, 3)
}

func inception(b *builder, x *Node) *Node {
	impl := b.cfg.Impl
	x = stem(b, x)
	x = b.convBN("stem3", x, 128, 3, 1, true)
	// GoogLeNet's 3a, 3b | 4a..4d | 5a, 5b widths (4e dropped and a
	// 128-channel stem) so that the cost stays near resnet's.
	x = b.inceptionBlock("inc3a", x, 64, 96, 128, 16, 32, 32)
	x = b.inceptionBlock("inc3b", x, 128, 128, 192, 32, 96, 64)
	x = ops.MaxPool2D(impl, x, 3, 2)
	x = b.inceptionBlock("inc4a", x, 192, 96, 208, 16, 48, 64)
	x = b.inceptionBlock("inc4b", x, 160, 112, 224, 24, 64, 64)
	x = b.inceptionBlock("inc4c", x, 128, 128, 256, 24, 64, 64)
	x = b.inceptionBlock("inc4d", x, 112, 144, 288, 32, 64, 64)
	x = ops.MaxPool2D(impl, x, 3, 2)
	x = b.inceptionBlock("inc5a", x, 256, 160, 320, 32, 128, 128)
	x = b.inceptionBlock("inc5b", x, 384, 192, 384, 48, 128, 128)
	return globalPoolDense(b, x)
}

// Stats returns a network's number of weights (trainable and statistics)
// and its multiply-add FLOPs ×2 per image, by building its graph once.
func Stats(backend compute.Backend, cfg Config) (params, flops int64, err error) {
	if err := cfg.Validate(); err != nil {
		return 0, 0, err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("model: building %s: %v", cfg.Net, r)
		}
	}()
	store := mlx.NewStore()
	g := NewGraph(backend, "stats")
	x := Parameter(g, "x", shapes.Make(dtypeOf(cfg), 1, cfg.Input, cfg.Input, 3))
	mlx.SetStore(g, store)
	b := &builder{scope: store.RootScope().In(Scope), cfg: cfg, g: g}
	registry[cfg.Net].build(b, ops.ToHWNC(x))
	for v := range store.IterVariables() {
		params += int64(v.Shape().Size())
	}
	return params, b.flops, nil
}
