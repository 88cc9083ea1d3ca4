// Package model defines the networks agegender trains: the paper's net
// ("origin", Levi & Hassner 2015) and its variants, as GoMLX model functions.
//
// A network is chosen by name in a [Config], which also fixes the input size,
// the number of classes and the seed of the initial weights. [Logits] builds
// the graph: it takes a batch of images [N, S, S, 3] (float32, RGB, 0..255
// scale minus the dataset mean — see package prep) and returns unnormalised
// class scores [N, Classes].
//
// Weights are created on first use with values drawn on the host from a
// generator seeded by the config seed and the variable's name, so a net's
// initial weights do not depend on the backend or on the order in which
// layers are built, and two runs with the same seed start identical.
//
// The primitives (convolution, pooling, LRN) come from package ops, which
// holds every backend-specific workaround; this package stays
// backend-agnostic.
package model

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/agegender/agegender/model/ops"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
)

// Config selects and sizes a network.
type Config struct {
	// Net is the network's name; see [Names].
	Net string `json:"net"`
	// Classes is the number of outputs: 2 for gender, 8 for age groups.
	Classes int `json:"classes"`
	// Input is the side of the square input crop: 227 in the paper.
	Input int `json:"input"`
	// Seed seeds the initial weights and dropout.
	Seed int64 `json:"seed"`
	// Trunk is the pretrained body of a TrunkNet network (nil otherwise).
	Trunk *Trunk `json:"trunk,omitempty"`
	// Heads is the output layout: HeadsSingle or HeadsGenderAge.
	Heads Heads `json:"heads,omitempty"`
	// FreezeTrunk keeps a TrunkNet's trunk weights fixed in training.
	FreezeTrunk bool `json:"freeze_trunk,omitempty"`
	// Hidden is the width of a TrunkNet head's hidden layer; 0 means 512.
	Hidden int `json:"hidden,omitempty"`
	// Standardize makes a TrunkNet's heads read the trunk's features
	// standardised, (f − mean) / std per dimension, with the mean and
	// deviation of the training features held as frozen variables
	// (FeatureMean, FeatureStd). Trunks whose features are tiny or huge
	// (MobileFaceNet's embedding) train only so.
	Standardize bool `json:"standardize,omitempty"`
	// AgeSigma and AgeL1 tune a joint net's age loss (see JointLoss); 0
	// means DefaultAgeSigma and DefaultAgeL1.
	AgeSigma float64 `json:"age_sigma,omitempty"`
	AgeL1    float64 `json:"age_l1,omitempty"`
	// GenderWeight weighs a joint net's gender loss against its age loss
	// (see JointLoss); 0 means 1.
	GenderWeight float64 `json:"gender_weight,omitempty"`
	// Impl chooses how convolutions and pools are expressed (see ops.Impl).
	// It is a property of the run, not of the trained weights.
	Impl ops.Impl `json:"-"`
	// DType of the weights: float32 (zero value) or float64 (used by the
	// gradient check).
	DType dtypes.DType `json:"-"`
}

// Same reports whether c and o describe the same network (a trunk by its
// name, input, output and size, not by pointer).
func (c Config) Same(o Config) bool {
	ct, ot := c.Trunk, o.Trunk
	c.Trunk, o.Trunk = nil, nil
	if c != o || (ct == nil) != (ot == nil) {
		return false
	}
	return ct == nil || (ct.Name == ot.Name && ct.Input == ot.Input && ct.Output == ot.Output && ct.Size == ot.Size &&
		ct.Dim == ot.Dim && ct.Scale == ot.Scale && ct.Offset == ot.Offset && ct.Cut == ot.Cut &&
		strings.Join(ct.Tune, ",") == strings.Join(ot.Tune, ","))
}

// Validate reports a config no network can be built from.
func (c Config) Validate() error {
	n, ok := registry[c.Net]
	if !ok {
		return fmt.Errorf("model: unknown network %q; known networks: %s", c.Net, strings.Join(Names(), ", "))
	}
	if c.Classes < 2 {
		return fmt.Errorf("model: %d classes; a classifier needs at least 2", c.Classes)
	}
	switch c.Heads {
	case HeadsSingle:
	case HeadsGenderAge:
		if c.Classes != JointClasses {
			return fmt.Errorf("model: a %s net has %d outputs, not %d", c.Heads, JointClasses, c.Classes)
		}
	default:
		return fmt.Errorf("model: unknown output layout %q; use %q or %q", c.Heads, HeadsSingle, HeadsGenderAge)
	}
	if (c.Net == TrunkNet) != (c.Trunk != nil) {
		return fmt.Errorf("model: a trunk is set only for the %q network (net %q)", TrunkNet, c.Net)
	}
	if c.Trunk != nil && (c.Input != c.Trunk.Size || c.Trunk.Dim <= 0) {
		return fmt.Errorf("model: trunk %s takes %d×%d images, not %d×%d", c.Trunk.Name, c.Trunk.Size, c.Trunk.Size, c.Input, c.Input)
	}
	if c.Input < n.minInput || c.Input > 1024 {
		return fmt.Errorf("model: input %d×%d is outside %s's range %d..1024", c.Input, c.Input, c.Net, n.minInput)
	}
	return nil
}

// Net describes one network.
type Net struct {
	Name string
	// Doc is a one-line description.
	Doc string
	// minInput is the smallest input side the layer stack accepts.
	minInput int
	build    func(b *builder, x *Node) *Node
}

var registry = map[string]Net{}

func register(n Net) { registry[n.Name] = n }

// Names lists the networks built by name alone, sorted (a TrunkNet net
// also needs its Config.Trunk, from ImportTrunk).
func Names() []string {
	out := make([]string, 0, len(registry))
	for k, n := range registry {
		if n.build != nil { // TrunkNet nets are made from a Trunk, not by name
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// MinInput is the smallest input side the named network accepts.
func MinInput(name string) int { return registry[name].minInput }

// Logits builds the network on a batch of images [N, S, S, 3] and returns
// class scores [N, Classes]. Variables are created in scope. Dropout is
// active when the scope's store is in training mode.
func Logits(scope *mlx.Scope, cfg Config, images *Node) *Node {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if cfg.Net == TrunkNet {
		return trunkLogits(scope, cfg, images)
	}
	d := images.Shape().Dimensions
	if len(d) != 4 || d[1] != cfg.Input || d[2] != cfg.Input || d[3] != 3 {
		panic(fmt.Sprintf("model: images must be [N, %d, %d, 3], got %s", cfg.Input, cfg.Input, images.Shape()))
	}
	b := &builder{scope: scope, cfg: cfg, g: images.Graph(), training: scope.IsTraining(images.Graph())}
	// Images are data: no gradient flows into them (see ops.Conv2D).
	return registry[cfg.Net].build(b, ops.ToHWNC(StopGradient(images)))
}

// builder carries what layer helpers need while a graph is built.
type builder struct {
	scope    *mlx.Scope
	cfg      Config
	g        *Graph
	training bool
	// flops counts 2× multiply-adds of convolutions and dense layers per image.
	flops int64
}

func dtypeOf(cfg Config) dtypes.DType {
	if cfg.DType == dtypes.Float64 {
		return dtypes.Float64
	}
	return dtypes.Float32
}

// countConv adds a convolution's FLOPs per image to the tally.
func (b *builder) countConv(x *Node, k, stride, pad, out int) {
	d := x.Shape().Dimensions
	oh, ow := ops.ConvOutSize(d[0], k, stride, pad), ops.ConvOutSize(d[1], k, stride, pad)
	b.flops += int64(2 * oh * ow * k * k * d[3] * out)
}

// initSpec describes how a variable's initial values are drawn.
type initSpec struct {
	kind string // "normal", "const"
	std  float64
	val  float64
}

func normal(std float64) initSpec    { return initSpec{kind: "normal", std: std} }
func constant(v float64) initSpec    { return initSpec{kind: "const", val: v} }
func heNormal(fanIn int) initSpec    { return normal(math.Sqrt(2 / float64(fanIn))) }
func lecunNormal(fanIn int) initSpec { return normal(math.Sqrt(1 / float64(fanIn))) }

// param returns the variable scope/name, creating it with host-drawn
// initial values if it does not exist yet.
func (b *builder) param(scope *mlx.Scope, name string, dims []int, in initSpec) *Node {
	full := mlx.JoinPath(scope.Scope(), name)
	if v := b.scope.Store().GetVariable(full); v != nil {
		return v.NodeValue(b.g)
	}
	init := InitialValue(b.cfg.Seed, full, dims, in.kind, in.std, in.val)
	if b.cfg.DType == dtypes.Float64 {
		init = tensors.FromFlatDataAndDimensions(toF64(tensors.MustCopyFlatData[float32](init)), dims...)
	}
	v := scope.VariableWithValue(name, init)
	return v.NodeValue(b.g)
}

// InitialValue draws a variable's initial tensor. The generator is seeded
// by (seed, path), so values depend only on those and on the shape.
func InitialValue(seed int64, path string, dims []int, kind string, std, val float64) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	data := make([]float32, n)
	switch kind {
	case "const":
		for i := range data {
			data[i] = float32(val)
		}
	default:
		h := fnv.New64a()
		h.Write([]byte(path))
		rng := rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
		for i := range data {
			data[i] = float32(rng.NormFloat64() * std)
		}
	}
	return tensors.FromFlatDataAndDimensions(data, dims...)
}

// conv adds a convolution with bias: x [H, W, N, Cin] → [OH, OW, N, out].
func (b *builder) conv(name string, x *Node, out, k, stride, pad int, wInit, bInit initSpec) *Node {
	s := b.scope.In("%s", name)
	cin := x.Shape().Dimensions[3]
	w := b.param(s, "weights", []int{k, k, cin, out}, wInit)
	bias := b.param(s, "biases", []int{out}, bInit)
	b.countConv(x, k, stride, pad, out)
	return Add(ops.Conv2D(b.cfg.Impl, x, w, stride, pad), Reshape(bias, 1, 1, 1, out))
}

// dense adds a fully connected layer: x [N, In] → [N, out].
func (b *builder) dense(name string, x *Node, out int, wInit, bInit initSpec) *Node {
	s := b.scope.In("%s", name)
	in := x.Shape().Dimensions[1]
	w := b.param(s, "weights", []int{in, out}, wInit)
	bias := b.param(s, "biases", []int{out}, bInit)
	b.flops += int64(2 * in * out)
	return Add(DotGeneral(x, []int{1}, nil, w, []int{0}, nil), Reshape(bias, 1, out))
}

// dropout zeroes a fraction rate of x while training (scaled to keep the mean).
func (b *builder) dropout(x *Node, rate float64) *Node {
	if !b.training || rate <= 0 {
		return x
	}
	keep := Scalar(b.g, x.DType(), 1-rate)
	rnd := b.scope.RandomUniform(b.g, shapes.Make(x.DType(), x.Shape().Dimensions...))
	mask := ConvertDType(LessThan(rnd, keep), x.DType())
	return Div(Mul(x, mask), keep)
}

func toF64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}
