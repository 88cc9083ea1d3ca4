package pipeline

import (
	"context"
	"fmt"
	"io"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/data/sources"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/train"
	"github.com/agegender/agegender/transfer"
	"github.com/gomlx/compute"
)

// TrainOptions describe a training run of [Train].
type TrainOptions struct {
	Data Data
	// Run holds the network (Model.Net, Input, Seed; Hidden, AgeSigma and
	// AgeL1 for a trunk), the optimiser, batch, epochs, OutDir and
	// Progress. Train fills in the task, class names, preprocessing,
	// dataset description and Impl.
	Run train.Options
	// Resize is the side images are resized to before cropping; 0 means
	// prep.ResizeFor(Run.Model.Input). Unused with a trunk.
	Resize int
	// Augment distorts the training crops (prep.DefaultAugment; the zero
	// value only picks a random crop position). Unused with a trunk.
	Augment prep.Augment
	// Trunk, when set, trains heads on this pretrained trunk
	// (model.TrunkNames) through transfer.TrainHeads instead; it is
	// required for Data.Task TaskGenderAge.
	Trunk *TrunkOptions
	// Log receives skipped files and decoding progress (nil: none).
	Log io.Writer
}

// TrunkOptions are the settings of a run on a pretrained trunk; see
// transfer.HeadsOptions.
type TrunkOptions struct {
	Name      string // model.TrunkNames
	ModelsDir string // the TF.js trunks
	CacheDir  string // feature cache ("" recomputes the features)
	Mirror    bool   // also train on the mirrored faces' features
	// Augment is the number of augmented views of each training face
	// (data/augment.Default, seeded) whose features are also trained on.
	Augment int
	From    string // stage 2: the stage-1 model to start from
	// Tune is what stage 2 trains with the heads: TuneLast ("" too) or
	// TuneAll.
	Tune string
}

// Train loads o.Data and trains on its training split, validating on its
// validation split after every epoch; the model goes to o.Run.OutDir (see
// train.Run, which also resumes an interrupted run there).
func Train(ctx context.Context, b compute.Backend, o TrainOptions) (*train.Result, error) {
	if o.Data.Task == data.TaskGenderAge && o.Trunk == nil {
		return nil, fmt.Errorf("pipeline: a joint gender + age net (task both) trains on a pretrained trunk only; set one, e.g. --trunk faceres (the built-in model's)")
	}
	s, err := Load(o.Data, o.Log)
	if err != nil {
		return nil, err
	}
	o.Run.Impl = backend.Impl(b)
	// The record names the data closely enough (split, its size) that a
	// run resumed with another --limit, fold or dataset is refused.
	o.Run.Dataset = fmt.Sprintf("%s (train, %d images)", s.Name, len(s.Train))
	if o.Trunk != nil {
		return trainTrunk(ctx, b, s, o)
	}
	if o.Resize == 0 {
		o.Resize = prep.ResizeFor(o.Run.Model.Input)
	}
	if o.Log != nil {
		fmt.Fprintf(o.Log, "%s: %d train, %d validation images (%s)\n", s.Task, len(s.Train), len(s.Val), s.Name)
	}
	cfg := prep.Spec{Resize: o.Resize, Crop: o.Run.Model.Input}
	tr, err := s.Decode(ctx, "train", s.Train, cfg, o.Log)
	if err != nil {
		return nil, err
	}
	cfg.Mean = prep.MeanOf(tr.Cache)
	var val train.Examples
	if len(s.Val) > 0 {
		v, err := s.Decode(ctx, "validation", s.Val, cfg, o.Log)
		if err != nil {
			return nil, err
		}
		val = &train.CacheExamples{Cache: v.Cache, Labels: v.Labels, Spec: cfg}
	}
	run := o.Run
	run.Model.Classes, run.Task, run.ClassNames, run.Spec = s.Task.Classes(), s.Task, s.Task.ClassNames(), cfg
	return train.Run(ctx, b, run, &train.CacheExamples{Cache: tr.Cache, Labels: tr.Labels, Spec: cfg, Augment: o.Augment}, val)
}

// trainTrunk trains heads on a frozen pretrained trunk, or in stage 2
// with its last block (transfer.TrainHeads), or with the whole trunk
// (trainWholeTrunk).
func trainTrunk(ctx context.Context, b compute.Backend, s *Splits, o TrainOptions) (*train.Result, error) {
	heads, task := model.HeadsSingle, s.Task
	if task == data.TaskGenderAge {
		heads, task = model.HeadsGenderAge, data.TaskGender
	}
	t := o.Trunk
	switch t.Tune {
	case "", TuneLast:
	case TuneAll:
		if t.From == "" {
			return nil, fmt.Errorf("pipeline: tuning the whole trunk is stage 2: give the stage-1 model to start from (--from)")
		}
		return trainWholeTrunk(ctx, b, s, o)
	default:
		return nil, fmt.Errorf("pipeline: unknown trunk tuning %q; use %q (its last block) or %q (the whole trunk)", t.Tune, TuneLast, TuneAll)
	}
	return transfer.TrainHeads(ctx, b, transfer.HeadsOptions{ModelsDir: t.ModelsDir, Trunk: t.Name, Heads: heads, Task: task,
		Train: withDir(s.Dir, s.Train), Val: withDir(s.Dir, s.Val), CacheDir: t.CacheDir, Mirror: t.Mirror, Augment: t.Augment, From: t.From,
		Run: o.Run, Log: o.Log})
}

// withDir returns samples with paths joined to dir (sources.Paths).
func withDir(dir string, s []data.Sample) []data.Sample {
	paths := sources.Paths(dir, s)
	out := make([]data.Sample, len(s))
	for i := range s {
		out[i] = s[i]
		out[i].Path = paths[i]
	}
	return out
}
