package train

import (
	"fmt"

	"github.com/agegender/agegender/model"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
	gtrain "github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/loss"
	"github.com/gomlx/gomlx/ml/train/metric"
)

// Short names of the training metrics the loop reads. GoMLX's trainer
// reports its own batch loss as "loss"; the accuracy is ours.
const (
	metricLoss = "loss"
	metricAcc  = "acc"
)

// graphs are a run's compiled computations: the training step and the
// validation pass (class choices, or a joint net's two choices).
type graphs struct {
	trainer *gtrain.Trainer
	eval    *mlx.Exec
	// at maps a training metric's short name to its index in TrainStep's
	// answer.
	at map[string]int
}

// newGraphs builds the network, loss, optimiser and metrics of opts on
// store, for a run of totalSteps steps (the learning-rate schedule's
// length).
func newGraphs(backend compute.Backend, store *mlx.Store, opts Options, totalSteps int64) (*graphs, error) {
	cfg := opts.Model
	cfg.Impl = opts.Impl
	joint := cfg.Heads == model.HeadsGenderAge
	modelFn := func(s *mlx.Scope, x *Node) *Node { return model.Logits(s.In(model.Scope), cfg, x) }
	lossFn, accuracy := loss.SparseCategoricalCrossEntropyLogits, metric.NewSparseCategoricalAccuracy("Accuracy", metricAcc)
	if joint {
		sigma, l1 := cfg.AgeSigma, cfg.AgeL1
		if sigma == 0 {
			sigma = model.DefaultAgeSigma
		}
		if l1 == 0 {
			l1 = model.DefaultAgeL1
		}
		gw := cfg.GenderWeight
		if gw == 0 {
			gw = 1
		}
		lossFn = model.JointLoss(sigma, l1, gw)
		accuracy = metric.NewMeanMetric("Gender accuracy", metricAcc, metric.AccuracyMetricType, jointGenderAccuracy, nil)
	}
	g := &graphs{trainer: gtrain.NewTrainer(backend, store, modelFn, lossFn, newOptimizer(opts, totalSteps), []metric.Interface{accuracy}, nil),
		at: map[string]int{}}
	for i, m := range g.trainer.TrainMetrics() {
		g.at[m.ShortName()] = i
	}
	for _, name := range []string{metricLoss, metricAcc} {
		if _, ok := g.at[name]; !ok {
			g.close()
			return nil, fmt.Errorf("train: the trainer reports no %q metric", name)
		}
	}
	var err error
	g.eval, err = mlx.NewExec(backend, store, func(s *mlx.Scope, x *Node) *Node {
		if joint {
			return model.JointChoices(modelFn(s, x))
		}
		return ArgMax(modelFn(s, x), -1, dtypes.Int32)
	})
	if err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// close releases the compiled graphs' backend memory (ONNX Runtime
// sessions keep their arenas), so that one process can train many models
// (agegender experiments).
func (g *graphs) close() {
	g.trainer.ResetComputationGraphs()
	if g.eval != nil {
		g.eval.Finalize()
	}
}

// stepMetrics are the values one training step reports.
type stepMetrics struct {
	loss, acc float64 // the batch's loss; the epoch's running accuracy
}

// step runs one training step on a batch of images [batch, dims...] and
// labels [batch, nLabels].
func (g *graphs) step(images, labels *tensors.Tensor) (stepMetrics, error) {
	ms, err := g.trainer.TrainStep(gtrain.Batch{Inputs: []*tensors.Tensor{images}, Labels: []*tensors.Tensor{labels}})
	if err != nil {
		return stepMetrics{}, err
	}
	defer func() {
		for _, m := range ms {
			m.FinalizeAll()
		}
	}()
	return stepMetrics{loss: scalar(ms[g.at[metricLoss]]), acc: scalar(ms[g.at[metricAcc]])}, nil
}

func scalar(t *tensors.Tensor) float64 {
	switch v := t.Value().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	}
	return 0
}

// jointGenderAccuracy is the training metric of a joint net: the accuracy
// of its gender head over the examples with a gender label.
func jointGenderAccuracy(_ *mlx.Scope, labels, predictions []*Node) *Node {
	lab, logits := labels[0], predictions[0]
	n := lab.Shape().Dimensions[0]
	gl := Reshape(Slice(lab, AxisRange(), AxisRange(0, 1)), n)
	choice := ArgMax(Slice(logits, AxisRange(), AxisRange(0, 2)), -1, gl.DType())
	known := GreaterOrEqual(gl, ScalarZero(lab.Graph(), gl.DType()))
	hit := ConvertDType(And(known, Equal(choice, gl)), logits.DType())
	return Div(ReduceAllSum(hit), Max(ReduceAllSum(ConvertDType(known, logits.DType())), Scalar(lab.Graph(), logits.DType(), 1)))
}
