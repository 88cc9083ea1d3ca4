package train

import (
	"fmt"
	"math"
	"path"
	"strings"

	"github.com/agegender/agegender/model"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	mlx "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

// Optimizer is the solver of a run. Its JSON form is its name (String).
type Optimizer int

// The optimisers.
const (
	// Adam is Adam with the learning rate 5e-4 by default, as the later
	// reproduction (the zero value).
	Adam Optimizer = iota
	// SGD is the paper's solver, PaperSGD (learning rate 1e-3 by default).
	SGD
)

// String returns "adam" or "sgd".
func (o Optimizer) String() string {
	switch o {
	case Adam:
		return "adam"
	case SGD:
		return "sgd"
	}
	return fmt.Sprintf("Optimizer(%d)", int(o))
}

// DefaultLR is the optimiser's learning rate when none is given.
func (o Optimizer) DefaultLR() float64 {
	if o == SGD {
		return 1e-3
	}
	return 5e-4
}

// ParseOptimizer parses "adam" or "sgd" (any case).
func ParseOptimizer(s string) (Optimizer, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "adam", "":
		return Adam, nil
	case "sgd":
		return SGD, nil
	}
	return 0, fmt.Errorf("train: unknown optimizer %q; use adam or sgd", s)
}

// MarshalText writes the optimiser's name.
func (o Optimizer) MarshalText() ([]byte, error) {
	if o != Adam && o != SGD {
		return nil, fmt.Errorf("train: no such optimizer %d", int(o))
	}
	return []byte(o.String()), nil
}

// UnmarshalText reads a name written by MarshalText.
func (o *Optimizer) UnmarshalText(b []byte) error {
	v, err := ParseOptimizer(string(b))
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// Schedule shapes the learning rate over a run. Its JSON form is its
// name (String).
type Schedule int

// The learning-rate schedules.
const (
	// ConstantLR keeps the optimiser's own learning rate (the zero value;
	// the paper's SGD still divides it by 10 every 10,000 steps).
	ConstantLR Schedule = iota
	// CosineLR raises the learning rate linearly from LR/Warmup to LR over
	// the first Warmup steps, then lowers it along half a cosine to 0 at
	// the run's last step:
	//
	//	step s < W:  lr = LR · (s+1)/W
	//	step s ≥ W:  lr = LR · (1 + cos(π · (s−W)/(T−W))) / 2
	//
	// with T the run's steps (epochs × steps per epoch). On SGD it
	// multiplies the paper's step schedule.
	CosineLR
)

// String returns "constant" or "cosine".
func (s Schedule) String() string {
	switch s {
	case ConstantLR:
		return "constant"
	case CosineLR:
		return "cosine"
	}
	return fmt.Sprintf("Schedule(%d)", int(s))
}

// ParseSchedule parses "constant" (or "" or "none") or "cosine".
func ParseSchedule(s string) (Schedule, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "constant", "none", "":
		return ConstantLR, nil
	case "cosine":
		return CosineLR, nil
	}
	return 0, fmt.Errorf("train: unknown learning-rate schedule %q; use constant or cosine", s)
}

// MarshalText writes the schedule's name.
func (s Schedule) MarshalText() ([]byte, error) {
	if s != ConstantLR && s != CosineLR {
		return nil, fmt.Errorf("train: no such schedule %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads a name written by MarshalText.
func (s *Schedule) UnmarshalText(b []byte) error {
	v, err := ParseSchedule(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// lrFactor returns the schedule's multiplier of the learning rate at a
// 0-based step (a float scalar of dtype), for a run of total steps with
// warmup warm-up steps.
func lrFactor(s Schedule, step *Node, warmup, total int64, dtype dtypes.DType) *Node {
	g := step.Graph()
	if s != CosineLR {
		return Scalar(g, dtype, 1)
	}
	x := ConvertDType(step, dtype)
	w := float64(max(warmup, 0))
	span := math.Max(float64(total)-w, 1)
	progress := MinScalar(MaxScalar(DivScalar(SubScalar(x, w), span), 0), 1)
	cosine := DivScalar(OnePlus(Cos(MulScalar(progress, math.Pi))), 2)
	if warmup <= 0 {
		return cosine
	}
	ramp := MinScalar(DivScalar(OnePlus(x), w), 1)
	return Where(LessThan(x, Scalar(g, dtype, w)), ramp, cosine)
}

// scheduled applies a Schedule to Adam: it sets Adam's learning-rate
// variable for the step before Adam's update reads it.
type scheduled struct {
	optimizer.Interface
	lr            float64
	schedule      Schedule
	warmup, total int64
}

// UpdateGraph implements optimizer.Interface.
func (o *scheduled) UpdateGraph(scope *mlx.Scope, g *Graph, loss *Node) {
	// The global step before this step's increment: the 0-based step.
	step := optimizer.GetGlobalStepVar(scope).NodeValue(g)
	lr := MulScalar(lrFactor(o.schedule, step, o.warmup, o.total, loss.DType()), o.lr)
	optimizer.LearningRateVarWithValue(scope, loss.DType(), o.lr).SetNodeValue(lr)
	o.Interface.UpdateGraph(scope, g, loss)
}

// newOptimizer returns the optimiser of opts for a run of total steps,
// with the trunk's weights at opts.TrunkLRMult times its rate.
func newOptimizer(opts Options, total int64) optimizer.Interface {
	o := baseOptimizer(opts, total)
	if m := opts.TrunkLRMult; m != 0 && m != 1 {
		return &trunkRates{Interface: o, mult: m}
	}
	return o
}

// baseOptimizer returns the optimiser of opts with its schedule, one rate
// for every weight.
func baseOptimizer(opts Options, total int64) optimizer.Interface {
	if opts.Optimizer == SGD {
		sgd := PaperSGD()
		sgd.LR = opts.LR
		sgd.Schedule, sgd.Warmup, sgd.Total = opts.Schedule, int64(opts.Warmup), total
		return sgd
	}
	adam := optimizer.Adam().LearningRate(opts.LR).Done()
	if opts.Schedule == ConstantLR {
		return adam
	}
	return &scheduled{Interface: adam, lr: opts.LR, schedule: opts.Schedule, warmup: int64(opts.Warmup), total: total}
}

// SGDMomentum is the paper's Caffe solver: stochastic gradient descent
// with momentum, L2 weight decay and a step learning-rate schedule.
//
//	v ← μ·v + lr·(∇w + λ·w)
//	w ← w − v
//	lr = base · γ^⌊(step−1)/stepSize⌋
//
// The paper uses base 1e-3, μ 0.9, λ 5e-4, γ 0.1 every 10,000 iterations
// (solver_test_fold_is_*.prototxt).
type SGDMomentum struct {
	LR, Momentum, WeightDecay, Gamma float64
	StepSize                         int64
	// Schedule, over a run of Total steps with Warmup warm-up steps,
	// multiplies the step schedule (ConstantLR: no change).
	Schedule      Schedule
	Warmup, Total int64
}

// PaperSGD returns the paper's solver settings.
func PaperSGD() *SGDMomentum {
	return &SGDMomentum{LR: 1e-3, Momentum: 0.9, WeightDecay: 5e-4, Gamma: 0.1, StepSize: 10_000}
}

// UpdateGraph implements optimizer.Interface.
func (o *SGDMomentum) UpdateGraph(scope *mlx.Scope, g *Graph, loss *Node) {
	if !loss.Shape().IsScalar() {
		panic(fmt.Sprintf("SGDMomentum: loss must be a scalar, got %s", loss.Shape()))
	}
	grads := scope.BuildTrainableVariablesGradientsGraph(loss)
	dtype := loss.DType()
	step := optimizer.IncrementGlobalStep(g, dtypes.Int64)
	lr := Scalar(g, dtype, o.LR)
	if o.StepSize > 0 && o.Gamma > 0 && o.Gamma != 1 {
		k := ConvertDType(Div(Sub(step, Const(g, int64(1))), Const(g, o.StepSize)), dtype)
		lr = Mul(lr, Pow(Scalar(g, dtype, o.Gamma), k))
	}
	if o.Schedule != ConstantLR {
		lr = Mul(lr, lrFactor(o.Schedule, Sub(step, Const(g, int64(1))), o.Warmup, o.Total, dtype))
	}
	i := 0
	for v := range scope.IterVariables() {
		if !v.Trainable || !v.InUseByGraph(g) {
			continue
		}
		grad := grads[i]
		i++
		w := v.NodeValue(g)
		if o.WeightDecay > 0 {
			grad = Add(grad, MulScalar(w, o.WeightDecay))
		}
		vel := scope.Store().Scope(path.Join("/", optimizer.Scope, "sgdm", v.Scope())).
			WithInitializer(initializer.Zero).
			VariableWithShape(v.Name()+"_velocity", v.Shape()).SetTrainable(false)
		nv := Add(MulScalar(vel.NodeValue(g), o.Momentum), Mul(grad, ConvertDType(lr, grad.DType())))
		vel.SetNodeValue(nv)
		v.SetNodeValue(Sub(w, nv))
	}
}

// Clear implements optimizer.Interface.
func (o *SGDMomentum) Clear(scope *mlx.Scope) error {
	return scope.Store().DeleteVariablesInScope(path.Join("/", optimizer.Scope, "sgdm"))
}

// trunkRates scales the update of the trunk's trainable weights (the
// variables under model.Scope/model.TrunkScope) by mult, so the trunk
// learns at mult times the heads' rate (Caffe's lr_mult, per parameter
// group). GoMLX's optimisers have one learning rate for every variable
// and Adam's step does not depend on the gradient's scale, so the update
// itself is scaled: the inner optimiser moves w0 to w1, and the weight
// ends at w0 + mult·(w1 − w0). For Adam (and SGD without weight decay)
// that is exactly a learning rate of mult·lr for those weights; the
// optimiser's moments are those of the unscaled gradients, as they would
// be.
type trunkRates struct {
	optimizer.Interface
	mult float64
}

// UpdateGraph implements optimizer.Interface.
func (o *trunkRates) UpdateGraph(scope *mlx.Scope, g *Graph, loss *Node) {
	prefix := "/" + model.Scope + "/" + model.TrunkScope + "/"
	before := map[*mlx.Variable]*Node{}
	for v := range scope.IterVariables() {
		if v.Trainable && v.InUseByGraph(g) && strings.HasPrefix(v.Path(), prefix) {
			before[v] = v.NodeValue(g)
		}
	}
	o.Interface.UpdateGraph(scope, g, loss)
	for v, w0 := range before {
		w1 := v.NodeValue(g)
		v.SetNodeValue(Add(w0, MulScalar(Sub(w1, w0), o.mult)))
	}
}
