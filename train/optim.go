package train

import (
	"fmt"
	"path"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	mlx "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

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
