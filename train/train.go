// Package train trains a network of package model on labelled face crops.
//
// A run is described by [Options] and fed by two [Examples] sets (training
// and validation). [Run] builds a GoMLX trainer (graph.go), streams
// augmented batches into it (batches.go), evaluates the validation set
// after every epoch (validate.go), and keeps everything needed to continue
// in OutDir (save.go):
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
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/modelfile"
	"github.com/agegender/agegender/model/ops"
	"github.com/gomlx/compute"
	mlx "github.com/gomlx/gomlx/ml/model"
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
	Labels  []int     // Labels[i] is the class of Cache image i
	Spec    prep.Spec // how crops are cut from the cached images
	Augment prep.Augment
}

func (c *CacheExamples) Len() int        { return c.Cache.Len() }
func (c *CacheExamples) Label(i int) int { return c.Labels[i] }
func (c *CacheExamples) Augmented(i int, rng *rand.Rand, dst []float32) {
	prep.RandomCrop(c.Cache, i, c.Spec, c.Augment, rng, dst)
}
func (c *CacheExamples) Center(i int, dst []float32) { prep.CenterCrop(c.Cache, i, c.Spec, dst) }

// Options describe a training run. Their JSON form is stored in the
// checkpoint, and a resumed run must have the same.
type Options struct {
	Model      model.Config `json:"model"`
	Task       data.Task    `json:"task"`
	ClassNames []string     `json:"class_names"`
	// Spec is the preprocessing the examples were made with, recorded in
	// the model file; its Crop is Model.Input (0 is set to it).
	prep.Spec
	// Optimizer is Adam (LR default 5e-4, as the later reproduction) or
	// SGD (the paper's solver, see SGDMomentum).
	Optimizer Optimizer `json:"optimizer"`
	LR        float64   `json:"lr"`
	// Schedule shapes the learning rate over the run (ConstantLR: none);
	// Warmup is its number of linear warm-up steps.
	Schedule Schedule `json:"schedule,omitempty"`
	Warmup   int      `json:"warmup,omitempty"`
	// TrunkLRMult multiplies LR for the trainable weights of a
	// model.TrunkNet net's trunk (0 means 1: one rate for all), so that a
	// tuned trunk learns well below its heads (say 0.1).
	TrunkLRMult float64 `json:"trunk_lr_mult,omitempty"`
	Batch       int     `json:"batch"`
	Epochs      int     `json:"epochs"`
	// MaxSteps ends the run after this many steps in all (0: Epochs full
	// epochs), for a budget below an epoch: the schedule spans MaxSteps,
	// and the last, partial epoch is validated and recorded like a whole
	// one.
	MaxSteps int `json:"max_steps,omitempty"`
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
	// ValBatch is the batch of the validation pass (0: 64); smaller keeps
	// the memory of a pass over images through a large trunk down.
	ValBatch int `json:"-"`
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
	if o.LR == 0 {
		o.LR = o.Optimizer.DefaultLR()
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
	if o.Crop == 0 {
		o.Crop = o.Model.Input
	}
	if err := o.Model.Validate(); err != nil {
		return err
	}
	switch {
	case o.Optimizer != Adam && o.Optimizer != SGD:
		return fmt.Errorf("train: unknown optimizer %d; use train.Adam or train.SGD", int(o.Optimizer))
	case o.Schedule != ConstantLR && o.Schedule != CosineLR:
		return fmt.Errorf("train: unknown learning-rate schedule %d; use train.ConstantLR or train.CosineLR", int(o.Schedule))
	case o.MaxSteps < 0 || o.ValBatch < 0 || o.TrunkLRMult < 0:
		return fmt.Errorf("train: max steps (%d), validation batch (%d) and trunk rate multiplier (%g) must not be negative", o.MaxSteps, o.ValBatch, o.TrunkLRMult)
	case o.Warmup < 0:
		return fmt.Errorf("train: warm-up steps must not be negative, got %d", o.Warmup)
	case o.Epochs <= 0:
		return fmt.Errorf("train: epochs must be positive, got %d", o.Epochs)
	case o.Batch <= 0:
		return fmt.Errorf("train: batch must be positive, got %d", o.Batch)
	case o.OutDir == "":
		return errors.New("train: an output directory is required")
	case len(o.ClassNames) != o.Model.Classes:
		return fmt.Errorf("train: %d class names for %d classes", len(o.ClassNames), o.Model.Classes)
	case o.Crop != o.Model.Input:
		return fmt.Errorf("train: crop %d differs from the network's input %d", o.Crop, o.Model.Input)
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

// Result summarises a run. ModelPath is empty when the run stopped
// before its last epoch (StopAfterSteps).
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
	if err := checkLabels(trainSet, opts); err != nil {
		return nil, err
	}
	start := time.Now()
	store, st, resumed, err := openStore(opts)
	if err != nil {
		return nil, err
	}
	if resumed && opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "resuming from %s at step %d (epoch %d of %d done)\n",
			filepath.Join(opts.OutDir, CheckpointName), st.Step, len(st.History), opts.Epochs)
	}
	perEpoch := int64(trainSet.Len() / opts.Batch)
	total := perEpoch * int64(opts.Epochs)
	if opts.MaxSteps > 0 {
		total = min(total, int64(opts.MaxSteps))
	}
	g, err := newGraphs(backend, store, opts, total)
	if err != nil {
		return nil, err
	}
	defer g.close()
	r := &run{opts: opts, store: store, g: g, st: st, trainSet: trainSet, valSet: valSet, perEpoch: perEpoch, total: total}
	done, err := r.loop(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{History: r.st.History, BestVal: r.st.BestVal, Resumed: resumed, Seconds: time.Since(start).Seconds()}
	if done {
		res.ModelPath = filepath.Join(opts.OutDir, ModelName)
	}
	return res, nil
}

// checkLabels reports a training example whose label the net cannot
// learn: outside its classes, or for a joint net, not (gender, age).
func checkLabels(set Examples, opts Options) error {
	if set.Len() < opts.Batch {
		return fmt.Errorf("train: %d training examples, fewer than one batch of %d", set.Len(), opts.Batch)
	}
	if opts.Model.Heads != model.HeadsGenderAge {
		for i := 0; i < set.Len(); i++ {
			if l := set.Label(i); l < 0 || l >= opts.Model.Classes {
				return fmt.Errorf("train: example %d has label %d outside 0..%d", i, l, opts.Model.Classes-1)
			}
		}
		return nil
	}
	j, ok := set.(JointLabeled)
	if !ok {
		return fmt.Errorf("train: a %s net needs examples with both labels (train.JointLabeled)", model.HeadsGenderAge)
	}
	for i := 0; i < set.Len(); i++ {
		if g, a := j.Labels(i); g < -1 || g > 1 || a < -1 || a >= model.AgeBins {
			return fmt.Errorf("train: example %d has gender %d and age %d; want 0..1 and 0..%d, or -1 for unknown", i, g, a, model.AgeBins-1)
		}
	}
	return nil
}

// openStore returns the run's variables and state: restored from OutDir's
// checkpoint when there is one (resumed), else fresh with opts.Init.
func openStore(opts Options) (store *mlx.Store, st state, resumed bool, err error) {
	store = mlx.NewStore()
	if err := store.SetRNGStateFromSeed(opts.Model.Seed); err != nil {
		return nil, st, false, err
	}
	st = state{Options: opts}
	ckpt := filepath.Join(opts.OutDir, CheckpointName)
	if _, err := os.Stat(ckpt); err == nil {
		if err := restore(ckpt, store, &st, opts); err != nil {
			return nil, st, false, err
		}
		return store, st, true, nil
	}
	return store, st, false, initVariables(store, opts)
}
