package model

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/model/ops"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	mlx "github.com/gomlx/gomlx/ml/model"
)

// Heads is the output layout of a network (Config.Heads).
type Heads string

// Output layouts of a network.
const (
	// HeadsSingle is one classifier with Config.Classes outputs (the
	// paper's separate gender and age nets).
	HeadsSingle Heads = ""
	// HeadsGenderAge is one network for both tasks: outputs 0..1 are the
	// gender logits (m, f) and outputs 2..2+AgeBins-1 the logits of the
	// age in whole years 0..AgeBins-1, trained as a label distribution
	// (see JointLoss). Config.Classes is then JointClasses.
	HeadsGenderAge Heads = "gender+age"
)

// String is the layout's name: "single" or "gender+age".
func (h Heads) String() string {
	if h == HeadsSingle {
		return "single"
	}
	return string(h)
}

// AgeBins is the number of age classes of a joint net: 0 to 100 years.
const AgeBins = 101

// JointClasses is Config.Classes of a HeadsGenderAge net.
const JointClasses = 2 + AgeBins

// TrunkNet is the Config.Net of a network made of a pretrained [Trunk]
// (Config.Trunk) and trained heads.
const TrunkNet = "trunk"

func init() {
	register(Net{Name: TrunkNet, Doc: "pretrained face network (Config.Trunk, from TF.js) + trained heads", minInput: 32})
}

// Default loss settings of a joint net (see JointLoss).
const (
	// DefaultAgeSigma is the spread, in years, of the Gaussian target
	// distribution around a face's age (DLDL, Gao et al. 2017: σ = 2–3).
	DefaultAgeSigma = 3.0
	// DefaultAgeL1 weighs the L1 distance between the expected and the
	// true age, added to the distribution loss (DLDL-v2, Gao et al. 2018).
	DefaultAgeL1 = 0.05
	// defaultHidden is the width of each head's hidden layer.
	defaultHidden = 512
)

// Names of the variables, under Scope, that hold the mean and the standard
// deviation of a trunk's training features (Config.Standardize), [Dim]
// float32 each.
const (
	FeatureMean = "/" + Scope + "/features/mean"
	FeatureStd  = "/" + Scope + "/features/std"
)

// standardize returns (f − mean) / std with the FeatureMean and FeatureStd
// variables, which must exist (training sets them from the features,
// see transfer.TrainHeads; a model file holds them). They never train.
func standardize(scope *mlx.Scope, f *Node) *Node {
	store := scope.Store()
	mean, std := store.GetVariable(FeatureMean), store.GetVariable(FeatureStd)
	if mean == nil || std == nil {
		panic(fmt.Sprintf("model: Config.Standardize needs the variables %s and %s (the training features' moments)", FeatureMean, FeatureStd))
	}
	mean.SetTrainable(false)
	std.SetTrainable(false)
	g := f.Graph()
	m := ConvertDType(mean.NodeValue(g), f.DType())
	s := ConvertDType(std.NodeValue(g), f.DType())
	return Div(Sub(f, ExpandAxes(m, 0)), ExpandAxes(s, 0))
}

// trunkLogits builds a trunk net: images [N, S, S, 3] (0..255 scale) go
// through the trunk; features [N, Dim] (the trunk's output, computed
// beforehand) go straight to the heads.
func trunkLogits(scope *mlx.Scope, cfg Config, x *Node) *Node {
	t := cfg.Trunk
	var f *Node
	switch d := x.Shape().Dimensions; {
	case len(d) == 2 && d[1] == t.Dim:
		f = x
	case len(d) == 4 && d[1] == t.Size && d[2] == t.Size && d[3] == 3:
		frozen := cfg.FreezeTrunk || !scope.IsTraining(x.Graph())
		ts := scope.In(TrunkScope)
		f = t.build(ts, StopGradient(x), frozen, frozen && cfg.Impl.NativeFor(d[0]), false)
		if !frozen {
			freezeBounds(ts)
		}
	case t.Cut != "" && len(d) == len(t.CutShape)+1 && slices.Equal(d[1:], t.CutShape):
		f = t.build(scope.In(TrunkScope), StopGradient(x), cfg.FreezeTrunk || !scope.IsTraining(x.Graph()), false, true)
	default:
		panic(fmt.Sprintf("model: a %s trunk net takes images [N, %d, %d, 3], %s activations [N, %v] or features [N, %d], got %s",
			t.Name, t.Size, t.Size, t.Cut, t.CutShape, t.Dim, x.Shape()))
	}
	b := &builder{scope: scope, cfg: cfg, g: x.Graph(), training: scope.IsTraining(x.Graph())}
	if cfg.Standardize {
		f = standardize(scope, f)
	}
	hidden := cfg.Hidden
	if hidden == 0 {
		hidden = defaultHidden
	}
	head := func(name string, out int) *Node {
		h := b.dense(name+"_fc1", f, hidden, heNormal(t.Dim), constant(0))
		h = b.dropout(Max(h, ZerosLike(h)), 0.5)
		return b.dense(name+"_out", h, out, normal(0.01), constant(0))
	}
	if cfg.Heads == HeadsGenderAge {
		return Concatenate([]*Node{head("gender", 2), head("age", AgeBins)}, -1)
	}
	return head("head", cfg.Classes)
}

// freezeBounds keeps a trunk trained whole from training its scalar
// weights (faceres's ReLU6 bounds, 0 and 6): the whole trunk tunes its
// kernels and its batch norms' scales and shifts, as its last block alone
// does (Trunk.Tune). The batch norms of the TF.js graphs are folded into
// those scales and shifts (inference mode), so their statistics stay as
// they were by construction.
func freezeBounds(scope *mlx.Scope) {
	prefix := scope.Scope() + "/"
	for v := range scope.Store().IterVariables() {
		if strings.HasPrefix(v.Path(), prefix) && v.Shape().Rank() == 0 {
			v.SetTrainable(false)
		}
	}
}

// JointLoss is the training loss of a HeadsGenderAge net: labels[0] is
// [N, 2] int32 (gender class, age in years; -1 where unknown, which masks
// that term), logits [N, JointClasses]. It is the mean cross-entropy of
// the gender head plus, for the age head, the cross-entropy against a
// Gaussian of spread sigma years centred on the true age (label
// distribution learning) plus l1 times |expected age − true age| in years;
// the gender term is weighted by genderWeight (1: the terms as they are).
func JointLoss(sigma, l1, genderWeight float64) func(labels, predictions []*Node) *Node {
	return func(labels, predictions []*Node) *Node {
		lab, logits := labels[0], predictions[0]
		g := lab.Graph()
		dt := logits.DType()
		n := logits.Shape().Dimensions[0]
		gl := Reshape(Slice(lab, AxisRange(), AxisRange(0, 1)), n)
		al := Reshape(Slice(lab, AxisRange(), AxisRange(1, 2)), n)
		gMask := ConvertDType(GreaterOrEqual(gl, ScalarZero(g, gl.DType())), dt)
		aMask := ConvertDType(GreaterOrEqual(al, ScalarZero(g, al.DType())), dt)
		gLog := LogSoftmax(ops.Columns(logits, 0, 2))
		aLogits := ops.Columns(logits, 2, JointClasses)
		aLog := LogSoftmax(aLogits)

		gOne := OneHot(Max(gl, ScalarZero(g, gl.DType())), 2, dt)
		gCE := Mul(Neg(ReduceSum(Mul(gOne, gLog), -1)), gMask)

		age := ExpandAxes(ConvertDType(al, dt), -1) // [N, 1]
		years := Iota(g, shapes.Make(dt, 1, AgeBins), 1)
		d := Sub(years, age)
		target := Exp(DivScalar(Mul(d, d), -2*sigma*sigma))
		target = Div(target, ReduceAndKeep(target, ReduceSum, -1))
		aCE := Neg(ReduceSum(Mul(target, aLog), -1))
		expected := ReduceSum(Mul(Exp(aLog), years), -1)
		aL1 := Abs(Sub(expected, Reshape(age, n)))
		aLoss := Mul(Add(aCE, MulScalar(aL1, l1)), aMask)

		count := func(m *Node) *Node { return Max(ReduceAllSum(m), Scalar(g, dt, 1)) }
		return Add(MulScalar(Div(ReduceAllSum(gCE), count(gMask)), genderWeight), Div(ReduceAllSum(aLoss), count(aMask)))
	}
}

// JointChoices maps a joint net's logits [N, JointClasses] to its choices
// [N, 2] int32: the gender class and the age group (data.AgeGroup, the
// group whose summed year probabilities are highest).
func JointChoices(logits *Node) *Node {
	g := logits.Graph()
	gender := ArgMax(Slice(logits, AxisRange(), AxisRange(0, 2)), -1, dtypes.Int32)
	p := Softmax(Slice(logits, AxisRange(), AxisRange(2, JointClasses)), -1)
	groups := DotGeneral(p, []int{1}, nil, Const(g, yearsToGroups()), []int{0}, nil)
	group := ArgMax(groups, -1, dtypes.Int32)
	return Stack([]*Node{gender, group}, -1)
}

// yearsToGroups is the [AgeBins, NumAgeGroups] 0/1 matrix that sums the
// probabilities of ages in years into the 8 Adience groups (data.AgeGroupOf).
func yearsToGroups() [][]float32 {
	m := make([][]float32, AgeBins)
	for y := range m {
		m[y] = make([]float32, data.NumAgeGroups)
		m[y][data.AgeGroupOf(y)] = 1
	}
	return m
}

// AgeEstimate summarises a probability distribution over ages in years
// (AgeBins values): the expected age, its standard deviation, and the
// probability of every Adience group (data.AgeGroup order).
func AgeEstimate(p []float32) (mean, std float64, groups [data.NumAgeGroups]float32) {
	var s, s2 float64
	for y, v := range p {
		s += float64(v) * float64(y)
		s2 += float64(v) * float64(y) * float64(y)
		groups[data.AgeGroupOf(y)] += v
	}
	return s, math.Sqrt(max(0, s2-s*s)), groups
}

// SplitJoint splits the probabilities of a HeadsGenderAge net
// (JointClasses values, as Predictor.Probs returns them, possibly averaged
// over crops) into the gender probabilities (m, f) and the distribution
// over ages 0..AgeBins-1 years, each renormalised to sum to 1.
func SplitJoint(p []float32) (gender []float32, years []float32) {
	norm := func(x []float32) []float32 {
		var s float32
		for _, v := range x {
			s += v
		}
		out := make([]float32, len(x))
		for i, v := range x {
			if s > 0 {
				out[i] = v / s
			}
		}
		return out
	}
	return norm(p[:2]), norm(p[2:JointClasses])
}

// Probabilities turns a network's logits [N, Classes] into probabilities,
// dividing them by the calibration temperature temp first (0 or 1: none):
// one softmax over all outputs, or for a HeadsGenderAge net one per head
// (gender, then years), side by side, the age head divided by ageTemp
// (0: temp) instead.
func Probabilities(cfg Config, logits *Node, temp, ageTemp float64) *Node {
	scale := func(x *Node, t float64) *Node {
		if t > 0 && t != 1 {
			return DivScalar(x, t)
		}
		return x
	}
	if cfg.Heads == HeadsGenderAge {
		if ageTemp <= 0 {
			ageTemp = temp
		}
		return Concatenate([]*Node{
			Softmax(scale(Slice(logits, AxisRange(), AxisRange(0, 2)), temp), -1),
			Softmax(scale(Slice(logits, AxisRange(), AxisRange(2, JointClasses)), ageTemp), -1)}, -1)
	}
	return Softmax(scale(logits, temp), -1)
}
