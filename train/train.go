// Package train trains a network of package model on labelled face crops.
//
// A run is described by [Options] and fed by two [Examples] sets (training
// and validation). [Run] builds a GoMLX trainer, streams augmented batches
// into it, evaluates the validation set after every epoch, and keeps
// everything needed to continue in OutDir:
//
//	checkpoint.agm   the whole training state (weights, optimiser moments,
//	                 step, random-generator state, history), written
//	                 atomically every CheckpointEvery steps, at each epoch's
//	                 end and on interruption
//	model.agm        the best model so far by validation accuracy (float16)
//	curves.png       loss and accuracy per epoch
//	history.json     the same numbers, with seconds and images/s
//
// Starting Run again with the same options and OutDir resumes from the
// checkpoint. Every random choice (weight init, shuffling, augmentation,
// dropout) derives from Options.Seed and the step number, so an interrupted
// and resumed run ends with the same weights as an uninterrupted one
// (bit-exact on the pure-Go backend).
package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/eval/plot"
	"github.com/agegender/agegender/internal/atomicfile"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/modelfile"
	"github.com/agegender/agegender/model/ops"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
	gtrain "github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/loss"
	"github.com/gomlx/gomlx/ml/train/metric"
	"github.com/gomlx/gomlx/ml/train/optimizer"
	"github.com/schollz/progressbar/v3"
)

// Examples is a labelled set of images, ready to be cropped.
type Examples interface {
	Len() int
	// Label is the class of example i.
	Label(i int) int
	// Augmented writes a randomly augmented crop of example i into dst.
	Augmented(i int, rng *rand.Rand, dst []float32)
	// Center writes the centre crop of example i into dst.
	Center(i int, dst []float32)
}

// Shaped is implemented by Examples whose inputs are not the model's
// Input×Input×3 crops: Dims is the shape of one example, such as [1024]
// for the features of a pretrained trunk (model.TrunkNet heads trained on
// cached features).
type Shaped interface {
	Dims() []int
}

// JointLabeled is implemented by the Examples of a model.HeadsGenderAge
// net: both labels of example i, -1 where unknown (Label then returns the
// gender).
type JointLabeled interface {
	Labels(i int) (gender, ageYears int)
}

// exampleDims returns the shape of one example of set under opts.
func exampleDims(set Examples, opts Options) []int {
	if s, ok := set.(Shaped); ok {
		return s.Dims()
	}
	return []int{opts.Model.Input, opts.Model.Input, 3}
}

// labelsOf writes example i's labels into dst: one class, or (gender, age
// in years) for a joint net.
func labelsOf(set Examples, i int, dst []int32) {
	if j, ok := set.(JointLabeled); ok && len(dst) == 2 {
		g, a := j.Labels(i)
		dst[0], dst[1] = int32(g), int32(a)
		return
	}
	dst[0] = int32(set.Label(i))
}

// CacheExamples adapts a prep.Cache and its labels to Examples.
type CacheExamples struct {
	Cache   *prep.Cache
	Labels  []int // Labels[i] is the class of Cache image i
	Config  prep.Config
	Augment prep.Augment
}

func (c *CacheExamples) Len() int        { return c.Cache.Len() }
func (c *CacheExamples) Label(i int) int { return c.Labels[i] }
func (c *CacheExamples) Augmented(i int, rng *rand.Rand, dst []float32) {
	prep.RandomCrop(c.Cache, i, c.Config, c.Augment, rng, dst)
}
func (c *CacheExamples) Center(i int, dst []float32) { prep.CenterCrop(c.Cache, i, c.Config, dst) }

// Options describe a training run.
type Options struct {
	Model      model.Config `json:"model"`
	Task       string       `json:"task"`
	ClassNames []string     `json:"class_names"`
	Resize     int          `json:"resize"`
	Mean       [3]float32   `json:"mean"`
	// Optimizer is "adam" (Adam, LR default 5e-4, as the later reproduction)
	// or "sgd" (the paper's solver, see SGDMomentum).
	Optimizer string  `json:"optimizer"`
	LR        float64 `json:"lr"`
	Batch     int     `json:"batch"`
	Epochs    int     `json:"epochs"`
	// CheckpointEvery is the number of steps between checkpoints (0: 200).
	CheckpointEvery int `json:"checkpoint_every"`
	// Dataset names the data for the record (e.g. "utkface train split").
	Dataset string `json:"dataset"`
	// OutDir receives checkpoint.agm, model.agm and curves.png.
	OutDir string `json:"-"`
	// Impl is how ops are expressed on this backend (not saved).
	Impl ops.Impl `json:"-"`
	// Workers prepare batches in parallel (0: all cores).
	Workers int `json:"-"`
	// Progress receives the progress bar (nil: no bar).
	Progress io.Writer `json:"-"`
	// Init holds initial values of network variables (say a pretrained
	// trunk's weights, from model.ImportTrunk), set before the first step
	// of a fresh run; a resumed run takes them from its checkpoint.
	Init []modelfile.Tensor `json:"-"`
	// StopAfterSteps stops the run (with a checkpoint) after this many steps
	// in this process; 0 means no limit. Used by tests of resumption.
	StopAfterSteps int `json:"-"`
}

func (o *Options) defaults() error {
	if o.Optimizer == "" {
		o.Optimizer = "adam"
	}
	if o.LR == 0 {
		if o.Optimizer == "sgd" {
			o.LR = 1e-3
		} else {
			o.LR = 5e-4
		}
	}
	if o.Batch == 0 {
		o.Batch = 50
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = 200
	}
	if o.Workers == 0 {
		o.Workers = runtime.NumCPU()
	}
	if err := o.Model.Validate(); err != nil {
		return err
	}
	switch {
	case o.Optimizer != "adam" && o.Optimizer != "sgd":
		return fmt.Errorf("train: unknown optimizer %q; use adam or sgd", o.Optimizer)
	case o.Epochs <= 0:
		return fmt.Errorf("train: epochs must be positive, got %d", o.Epochs)
	case o.Batch <= 0:
		return fmt.Errorf("train: batch must be positive, got %d", o.Batch)
	case o.OutDir == "":
		return errors.New("train: an output directory is required")
	case len(o.ClassNames) != o.Model.Classes:
		return fmt.Errorf("train: %d class names for %d classes", len(o.ClassNames), o.Model.Classes)
	}
	return nil
}

// Epoch records one epoch of training.
type Epoch struct {
	Epoch     int     `json:"epoch"`
	Step      int64   `json:"step"`
	TrainLoss float64 `json:"train_loss"`
	TrainAcc  float64 `json:"train_acc"`
	ValAcc    float64 `json:"val_acc"`
	Seconds   float64 `json:"seconds"`
	ImgPerSec float64 `json:"img_per_sec"`
}

// state is the checkpoint's metadata payload.
type state struct {
	Options   Options  `json:"options"`
	Step      int64    `json:"step"`
	History   []Epoch  `json:"history"`
	EpochLoss float64  `json:"epoch_loss"` // running sum within the current epoch
	EpochN    int      `json:"epoch_n"`
	EpochSecs float64  `json:"epoch_secs"`
	BestVal   float64  `json:"best_val"`
	Frozen    []string `json:"frozen"` // non-trainable variables
}

// Result summarises a finished run.
type Result struct {
	History   []Epoch
	BestVal   float64
	ModelPath string
	Resumed   bool
	Seconds   float64
}

// CheckpointName and ModelName are the files Run keeps in OutDir.
const (
	CheckpointName = "checkpoint.agm"
	ModelName      = "model.agm"
	CurvesName     = "curves.png"
	HistoryName    = "history.json"
)

// Run trains until Options.Epochs are done, resuming from OutDir's
// checkpoint if there is one. Cancelling ctx stops at the next step
// boundary, after writing a checkpoint.
func Run(ctx context.Context, backend compute.Backend, opts Options, trainSet, valSet Examples) (*Result, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if trainSet.Len() < opts.Batch {
		return nil, fmt.Errorf("train: %d training examples, fewer than one batch of %d", trainSet.Len(), opts.Batch)
	}
	joint := opts.Model.Heads == model.HeadsGenderAge
	if joint {
		if _, ok := trainSet.(JointLabeled); !ok {
			return nil, fmt.Errorf("train: a %s net needs examples with both labels (train.JointLabeled)", model.HeadsGenderAge)
		}
	}
	for i := 0; i < trainSet.Len(); i++ {
		if joint {
			g, a := trainSet.(JointLabeled).Labels(i)
			if g < -1 || g > 1 || a < -1 || a >= model.AgeBins {
				return nil, fmt.Errorf("train: example %d has gender %d and age %d; want 0..1 and 0..%d, or -1 for unknown", i, g, a, model.AgeBins-1)
			}
			continue
		}
		if l := trainSet.Label(i); l < 0 || l >= opts.Model.Classes {
			return nil, fmt.Errorf("train: example %d has label %d outside 0..%d", i, l, opts.Model.Classes-1)
		}
	}
	start := time.Now()
	store := mlx.NewStore()
	if err := store.SetRNGStateFromSeed(opts.Model.Seed); err != nil {
		return nil, err
	}
	st := state{Options: opts}
	ckpt := filepath.Join(opts.OutDir, CheckpointName)
	resumed := false
	if _, err := os.Stat(ckpt); err == nil {
		if err := restore(ckpt, store, &st, opts); err != nil {
			return nil, err
		}
		resumed = true
	} else if err := initVariables(store, opts); err != nil {
		return nil, err
	}
	cfg := opts.Model
	cfg.Impl = opts.Impl
	modelFn := func(s *mlx.Scope, x *Node) *Node { return model.Logits(s.In(model.Scope), cfg, x) }
	var opt optimizer.Interface
	if opts.Optimizer == "sgd" {
		sgd := PaperSGD()
		sgd.LR = opts.LR
		opt = sgd
	} else {
		opt = optimizer.Adam().LearningRate(opts.LR).Done()
	}
	lossFn, accuracy := loss.SparseCategoricalCrossEntropyLogits, metric.NewSparseCategoricalAccuracy("Accuracy", "acc")
	if joint {
		sigma, l1 := cfg.AgeSigma, cfg.AgeL1
		if sigma == 0 {
			sigma = model.DefaultAgeSigma
		}
		if l1 == 0 {
			l1 = model.DefaultAgeL1
		}
		lossFn = model.JointLoss(sigma, l1)
		accuracy = metric.NewMeanMetric("Gender accuracy", "acc", metric.AccuracyMetricType, jointGenderAccuracy, nil)
	}
	trainer := gtrain.NewTrainer(backend, store, modelFn, lossFn, opt, []metric.Interface{accuracy}, nil)
	// Compiled graphs hold backend memory (ONNX Runtime sessions keep their
	// arenas) until finalized: release them when the run ends, so that one
	// process can train many models (agegender experiments).
	defer trainer.ResetComputationGraphs()
	evalExec, err := mlx.NewExec(backend, store, func(s *mlx.Scope, x *Node) *Node {
		if joint {
			return model.JointChoices(modelFn(s, x))
		}
		return ArgMax(modelFn(s, x), -1, dtypes.Int32)
	})
	if err != nil {
		return nil, err
	}
	defer evalExec.Finalize()

	n := trainSet.Len()
	perEpoch := int64(n / opts.Batch)
	total := perEpoch * int64(opts.Epochs)
	dims := exampleDims(trainSet, opts)
	per := 1
	for _, d := range dims {
		per *= d
	}
	nLabels := 1
	if joint {
		nLabels = 2
	}

	// Batches are produced ahead of the trainer by a goroutine; each batch
	// depends only on (seed, step).
	type batch struct {
		step   int64
		images []float32
		labels []int32
	}
	ahead := make(chan batch, 2)
	prodCtx, cancelProd := context.WithCancel(ctx)
	defer cancelProd()
	go func() {
		defer close(ahead)
		var perm []int
		permEpoch := int64(-1)
		for s := st.Step; s < total; s++ {
			e := s / perEpoch
			if e != permEpoch {
				perm = rand.New(rand.NewPCG(uint64(opts.Model.Seed), uint64(e)+1)).Perm(n)
				permEpoch = e
			}
			b := batch{step: s, images: make([]float32, opts.Batch*per), labels: make([]int32, opts.Batch*nLabels)}
			idx := perm[(s%perEpoch)*int64(opts.Batch):]
			var wg sync.WaitGroup
			next := make(chan int, opts.Batch)
			for j := 0; j < opts.Batch; j++ {
				next <- j
			}
			close(next)
			for w := 0; w < opts.Workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range next {
						i := idx[j]
						rng := rand.New(rand.NewPCG(uint64(opts.Model.Seed)^0x9e3779b97f4a7c15, uint64(s)*uint64(opts.Batch)+uint64(j)))
						trainSet.Augmented(i, rng, b.images[j*per:(j+1)*per])
						labelsOf(trainSet, i, b.labels[j*nLabels:(j+1)*nLabels])
					}
				}()
			}
			wg.Wait()
			select {
			case ahead <- b:
			case <-prodCtx.Done():
				return
			}
		}
	}()

	var bar *progressbar.ProgressBar
	newBar := func(epoch int) {
		if opts.Progress == nil {
			return
		}
		bar = progressbar.NewOptions64(perEpoch,
			progressbar.OptionSetWriter(opts.Progress),
			progressbar.OptionSetDescription(fmt.Sprintf("epoch %d/%d", epoch+1, opts.Epochs)),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetItsString("batch"),
			progressbar.OptionShowIts(),
			progressbar.OptionSetWidth(20),
			progressbar.OptionThrottle(500*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(opts.Progress) }),
		)
		bar.Set64(st.Step % perEpoch)
	}
	if st.Step < total {
		newBar(int(st.Step / perEpoch))
	}
	stepsHere := 0
	epochStart := time.Now()
	var lastAcc float64
	for b := range ahead {
		if err := ctx.Err(); err != nil {
			break
		}
		if b.step%perEpoch == 0 {
			if err := trainer.ResetTrainMetrics(); err != nil {
				return nil, err
			}
			st.EpochLoss, st.EpochN, st.EpochSecs = 0, 0, 0
			epochStart = time.Now()
		}
		imgs := tensors.FromFlatDataAndDimensions(b.images, append([]int{opts.Batch}, dims...)...)
		labs := tensors.FromFlatDataAndDimensions(b.labels, opts.Batch, nLabels)
		metrics, err := trainer.TrainStep(gtrain.Batch{Inputs: []*tensors.Tensor{imgs}, Labels: []*tensors.Tensor{labs}})
		if err != nil {
			return nil, fmt.Errorf("train: step %d: %w", b.step, err)
		}
		lossV := scalar(metrics[0])
		if math.IsNaN(lossV) || math.IsInf(lossV, 0) {
			for _, m := range metrics {
				m.FinalizeAll()
			}
			return nil, fmt.Errorf("train: the loss became %v at step %d: training diverged; lower the learning rate (--lr) or use another optimiser (the last good checkpoint is kept in %s)",
				lossV, b.step, opts.OutDir)
		}
		lastAcc = scalar(metrics[2])
		for _, m := range metrics {
			m.FinalizeAll()
		}
		st.Step = b.step + 1
		st.EpochLoss += lossV
		st.EpochN++
		stepsHere++
		if bar != nil {
			bar.Describe(fmt.Sprintf("epoch %d/%d loss %.3f acc %.3f", b.step/perEpoch+1, opts.Epochs, st.EpochLoss/float64(st.EpochN), lastAcc))
			bar.Add(1)
		}
		endOfEpoch := st.Step%perEpoch == 0
		if endOfEpoch {
			secs := st.EpochSecs + time.Since(epochStart).Seconds()
			valAcc, err := validate(evalExec, valSet, opts)
			if err != nil {
				return nil, err
			}
			ep := Epoch{Epoch: int(st.Step / perEpoch), Step: st.Step, TrainLoss: st.EpochLoss / float64(st.EpochN),
				TrainAcc: lastAcc, ValAcc: valAcc, Seconds: secs, ImgPerSec: float64(st.EpochN*opts.Batch) / secs}
			st.History = append(st.History, ep)
			if opts.Progress != nil {
				fmt.Fprintf(opts.Progress, "epoch %d: loss %.4f train acc %.4f val acc %.4f (%.0f img/s)\n",
					ep.Epoch, ep.TrainLoss, ep.TrainAcc, ep.ValAcc, ep.ImgPerSec)
			}
			if valAcc > st.BestVal || st.BestVal == 0 {
				st.BestVal = valAcc
				if err := saveModel(filepath.Join(opts.OutDir, ModelName), store, st); err != nil {
					return nil, err
				}
			}
			if err := saveCurves(filepath.Join(opts.OutDir, CurvesName), st.History); err != nil {
				return nil, err
			}
			if hj, err := json.MarshalIndent(st.History, "", "  "); err == nil {
				if err := atomicfile.WriteFile(filepath.Join(opts.OutDir, HistoryName), hj, 0o644); err != nil {
					return nil, err
				}
			}
			if st.Step < total {
				newBar(int(st.Step / perEpoch))
			}
		}
		if endOfEpoch || st.Step%int64(opts.CheckpointEvery) == 0 {
			if !endOfEpoch {
				st.EpochSecs += time.Since(epochStart).Seconds()
				epochStart = time.Now()
			}
			if err := saveCheckpoint(ckpt, store, st); err != nil {
				return nil, err
			}
		}
		if opts.StopAfterSteps > 0 && stepsHere >= opts.StopAfterSteps {
			cancelProd()
			break
		}
	}
	if st.Step < total {
		// Interrupted: keep what was done.
		st.EpochSecs += time.Since(epochStart).Seconds()
		if err := saveCheckpoint(ckpt, store, st); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("train: interrupted at step %d of %d; run again to resume: %w", st.Step, total, err)
		}
		return &Result{History: st.History, BestVal: st.BestVal, Resumed: resumed, Seconds: time.Since(start).Seconds()}, nil
	}
	return &Result{History: st.History, BestVal: st.BestVal, ModelPath: filepath.Join(opts.OutDir, ModelName),
		Resumed: resumed, Seconds: time.Since(start).Seconds()}, nil
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

// validate returns centre-crop accuracy on set (0 if it is empty); for a
// joint net, the mean of the gender accuracy and the exact age-group
// accuracy (each over the examples that have that label).
func validate(exec *mlx.Exec, set Examples, opts Options) (float64, error) {
	if set == nil || set.Len() == 0 {
		return 0, nil
	}
	dims := exampleDims(set, opts)
	per := 1
	for _, d := range dims {
		per *= d
	}
	const b = 64
	correct := 0
	var jc [2]int // joint: correct gender, correct age group
	var jn [2]int // joint: examples with each label
	jl, joint := set.(JointLabeled)
	joint = joint && opts.Model.Heads == model.HeadsGenderAge
	buf := make([]float32, b*per)
	for start := 0; start < set.Len(); start += b {
		k := min(b, set.Len()-start)
		clear(buf)
		for j := 0; j < k; j++ {
			set.Center(start+j, buf[j*per:(j+1)*per])
		}
		res, err := exec.Exec(tensors.FromFlatDataAndDimensions(buf, append([]int{b}, dims...)...))
		if err != nil {
			return 0, fmt.Errorf("train: validation: %w", err)
		}
		pred := tensors.MustCopyFlatData[int32](res[0])
		res[0].FinalizeAll()
		for j := 0; j < k; j++ {
			if joint {
				g, a := jl.Labels(start + j)
				if g >= 0 {
					jn[0]++
					if int(pred[2*j]) == g {
						jc[0]++
					}
				}
				if a >= 0 {
					jn[1]++
					if int(pred[2*j+1]) == int(data.AgeGroupOf(a)) {
						jc[1]++
					}
				}
				continue
			}
			if int(pred[j]) == set.Label(start+j) {
				correct++
			}
		}
	}
	if joint {
		return (float64(jc[0])/float64(max(jn[0], 1)) + float64(jc[1])/float64(max(jn[1], 1))) / 2, nil
	}
	return float64(correct) / float64(set.Len()), nil
}

func info(o Options, hist []Epoch) model.Info {
	training, _ := json.Marshal(map[string]any{
		"dataset": o.Dataset, "optimizer": o.Optimizer, "lr": o.LR, "batch": o.Batch,
		"epochs": len(hist), "history": hist,
	})
	return model.Info{Config: o.Model, Task: o.Task, ClassNames: o.ClassNames, Resize: o.Resize, Mean: o.Mean,
		Training: training}
}

// tensorsOf converts the store's variables to file tensors; only those
// under prefix when prefix is non-empty.
func tensorsOf(store *mlx.Store, prefix string) ([]modelfile.Tensor, []string, error) {
	var out []modelfile.Tensor
	var frozen []string
	for v := range store.IterVariables() {
		p := v.Path()
		if prefix != "" && !strings.HasPrefix(p, prefix) {
			continue
		}
		if strings.HasPrefix(p, "/metrics/") {
			// Running metrics are named with a fresh UUID per process, so
			// they cannot be restored; after a resume the epoch's training
			// accuracy covers the steps since the resume.
			continue
		}
		val, err := v.Value()
		if err != nil {
			return nil, nil, err
		}
		t := modelfile.Tensor{Name: p, Dims: val.Shape().Dimensions}
		switch val.DType() {
		case dtypes.Float32:
			t.Store, t.F32 = modelfile.Float32, tensors.MustCopyFlatData[float32](val)
		case dtypes.Int64:
			t.Store, t.I64 = modelfile.Int64, tensors.MustCopyFlatData[int64](val)
		case dtypes.Uint64:
			t.Store, t.U64 = modelfile.Uint64, tensors.MustCopyFlatData[uint64](val)
		case dtypes.Int32:
			t.Store, t.I32 = modelfile.Int32, tensors.MustCopyFlatData[int32](val)
		default:
			return nil, nil, fmt.Errorf("train: variable %s has unsupported dtype %s", p, val.DType())
		}
		if t.Dims == nil {
			t.Dims = []int{}
		}
		out = append(out, t)
		if !v.Trainable {
			frozen = append(frozen, p)
		}
	}
	return out, frozen, nil
}

func saveModel(path string, store *mlx.Store, st state) error {
	ts, _, err := tensorsOf(store, "/"+model.Scope+"/")
	if err != nil {
		return err
	}
	m := &model.Model{Info: info(st.Options, st.History), Weights: ts}
	return m.Save(path, true)
}

func saveCheckpoint(path string, store *mlx.Store, st state) error {
	ts, frozen, err := tensorsOf(store, "")
	if err != nil {
		return err
	}
	st.Frozen = frozen
	payload, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return modelfile.Write(path, modelfile.Meta{Kind: "checkpoint", Payload: payload}, ts)
}

// restore loads a checkpoint into an empty store, after checking that it
// belongs to a run with the same options.
func restore(path string, store *mlx.Store, st *state, opts Options) error {
	meta, ts, err := modelfile.Read(path)
	if err != nil {
		return fmt.Errorf("train: cannot resume: %w (delete %s to start over)", err, path)
	}
	if meta.Kind != "checkpoint" {
		return fmt.Errorf("train: %s is a %q file, not a checkpoint", path, meta.Kind)
	}
	var saved state
	if err := json.Unmarshal(meta.Payload, &saved); err != nil {
		return fmt.Errorf("train: %s: %v", path, err)
	}
	a, b := saved.Options, opts
	if !a.Model.Same(b.Model) || a.Task != b.Task || a.Optimizer != b.Optimizer || a.LR != b.LR || a.Batch != b.Batch || a.Resize != b.Resize {
		return fmt.Errorf("train: %s was written by a run with other options (%s %s input %d, %s lr %g batch %d); use another output directory or delete it",
			path, a.Model.Net, a.Task, a.Model.Input, a.Optimizer, a.LR, a.Batch)
	}
	frozen := map[string]bool{}
	for _, f := range saved.Frozen {
		frozen[f] = true
	}
	for _, t := range ts {
		var val *tensors.Tensor
		switch t.Store {
		case modelfile.Float32, modelfile.Float16:
			val = tensors.FromFlatDataAndDimensions(t.F32, t.Dims...)
		case modelfile.Int64:
			val = tensors.FromFlatDataAndDimensions(t.I64, t.Dims...)
		case modelfile.Uint64:
			val = tensors.FromFlatDataAndDimensions(t.U64, t.Dims...)
		case modelfile.Int32:
			val = tensors.FromFlatDataAndDimensions(t.I32, t.Dims...)
		}
		v := store.GetVariable(t.Name)
		if v != nil {
			if err := v.SetValue(val); err != nil {
				return err
			}
		} else if v, err = store.CreateVariable(t.Name, val); err != nil {
			return fmt.Errorf("train: restoring %s: %w", t.Name, err)
		}
		v.SetTrainable(!frozen[t.Name])
	}
	saved.Options = opts
	*st = saved
	return nil
}

func saveCurves(path string, hist []Epoch) error {
	var x, tl, ta, va []float64
	for _, e := range hist {
		x = append(x, float64(e.Epoch))
		tl = append(tl, e.TrainLoss)
		ta = append(ta, e.TrainAcc)
		va = append(va, e.ValAcc)
	}
	return plot.SaveCurvesPNG(path, "training curves", "epoch", "loss / accuracy",
		plot.Curve{Name: "train loss", X: x, Y: tl},
		plot.Curve{Name: "train accuracy", X: x, Y: ta},
		plot.Curve{Name: "validation accuracy", X: x, Y: va})
}

// initVariables creates the variables of opts.Init in a fresh store. A
// pretrained trunk's weights start frozen (not trainable): the trunk's
// graph makes those it trains trainable when it is built.
func initVariables(store *mlx.Store, opts Options) error {
	trunk := "/" + model.Scope + "/" + model.TrunkScope + "/"
	for _, t := range opts.Init {
		if t.F32 == nil {
			return fmt.Errorf("train: initial value %s is not float32", t.Name)
		}
		v, err := store.CreateVariable(t.Name, tensors.FromFlatDataAndDimensions(t.F32, t.Dims...))
		if err != nil {
			return fmt.Errorf("train: initial value %s: %w", t.Name, err)
		}
		if strings.HasPrefix(t.Name, trunk) {
			v.SetTrainable(false)
		}
	}
	return nil
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
