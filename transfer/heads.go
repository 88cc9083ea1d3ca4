package transfer

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/augment"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/modelfile"
	"github.com/agegender/agegender/train"
	"github.com/gomlx/compute"
)

// FeatureExamples are trunk features with their labels, as train.Examples
// for the heads of a model.TrunkNet net (stage 1 of fine-tuning: the trunk
// frozen, its features computed once). Augmented picks the features of one
// of the views of the face at random (the original, mirrored, augmented);
// Center those of the original.
type FeatureExamples struct {
	Rows [][]float32 // features of each face as it is
	// Views holds other views' features: Views[v][i] is face i seen in
	// view v (mirrored, augmented), or nil where it could not be read.
	Views       [][][]float32
	Gender, Age []int     // class 0/1 and years; -1 unknown
	Task        data.Task // the single task of a HeadsSingle net
	Joint       bool      // labels for a HeadsGenderAge net
	Shape       []int     // shape of one example; nil: [len(Rows[0])]
}

func (f *FeatureExamples) Len() int { return len(f.Rows) }
func (f *FeatureExamples) Dims() []int {
	if f.Shape != nil {
		return f.Shape
	}
	return []int{len(f.Rows[0])}
}
func (f *FeatureExamples) Labels(i int) (int, int) { return f.Gender[i], f.Age[i] }

// Label is the class of example i: the gender of a joint net, else the
// task's class.
func (f *FeatureExamples) Label(i int) int {
	if f.Joint || f.Task == data.TaskGender {
		return f.Gender[i]
	}
	return int(data.AgeGroupOf(f.Age[i]))
}

func (f *FeatureExamples) Augmented(i int, rng *rand.Rand, dst []float32) {
	if v := rng.IntN(len(f.Views) + 1); v > 0 && f.Views[v-1][i] != nil {
		copy(dst, f.Views[v-1][i])
		return
	}
	copy(dst, f.Rows[i])
}

func (f *FeatureExamples) Center(i int, dst []float32) { copy(dst, f.Rows[i]) }

// HeadsOptions configures [TrainHeads].
type HeadsOptions struct {
	// ModelsDir holds the TF.js trunks (../shared/models/tfjs).
	ModelsDir string
	// Trunk is the trunk's name (model.TrunkNames).
	Trunk string
	// Heads is model.HeadsGenderAge for one net for both tasks, or
	// model.HeadsSingle for one Task.
	Heads model.Heads
	Task  data.Task
	// Train and Val are the labelled samples (UTKFace: exact ages; a
	// sample without a label masks that loss term).
	Train, Val []data.Sample
	// CacheDir keeps the features between runs ("" recomputes them).
	CacheDir string
	// Mirror also extracts (and trains on) the mirrored faces.
	Mirror bool
	// Augment is the number of augmented views of each training face to
	// extract and train on (0: none), each drawn with AugmentSpec
	// (nil: augment.Default()) and seeded by Run.Model.Seed.
	Augment     int
	AugmentSpec *augment.Spec
	// From, for stage 2, is a stage-1 model file (trunk and heads) whose
	// weights the run starts from; it then feeds the trunk's Cut
	// activations (cached like features) and trains the heads together
	// with the trunk's last block (Trunk.Tune), the rest staying frozen.
	// Use a learning rate well below stage 1's (say 1e-4).
	From string
	// Train holds the run's settings; Model, Task, ClassNames, Resize,
	// Mean and Init are filled in here.
	Run     train.Options
	Workers int
	Log     io.Writer
}

// TrainHeads trains heads on a frozen pretrained trunk: the trunk's
// features of every image are computed once (streamed, cached on disk),
// then the heads train on them through train.Run (progress bar,
// checkpoints, resume, curves). The model file it writes holds the whole
// network, trunk and heads, and runs on images like any other.
func TrainHeads(ctx context.Context, b compute.Backend, o HeadsOptions) (*train.Result, error) {
	r, _, err := trainHeads(ctx, b, o)
	return r, err
}

// extraction counts the images a run put through the trunk (0 when every
// feature came from the cache) and the time that took.
type extraction struct {
	images int
	time   time.Duration
}

func trainHeads(ctx context.Context, b compute.Backend, o HeadsOptions) (*train.Result, extraction, error) {
	var ex extraction
	// One read of the trunk: its weights (for the model file) and its
	// graph (for extraction) share memory (VGG-Face's are 537 MB).
	spec, weights, g, err := model.ImportTrunk(o.ModelsDir, o.Trunk)
	if err != nil {
		return nil, ex, err
	}
	bb := Backbone{Name: spec.Name, File: o.Trunk + ".json", Input: spec.Input, Size: spec.Size,
		Feature: spec.Output, Dim: spec.Dim, Scale: spec.Scale, Offset: spec.Offset}
	output, dim, shape := spec.Output, spec.Dim, []int(nil)
	if o.From != "" {
		if spec.Cut == "" {
			return nil, ex, fmt.Errorf("transfer: trunk %s has no last block to tune (no Cut)", spec.Name)
		}
		from, err := model.Load(o.From)
		if err != nil {
			return nil, ex, err
		}
		if t := from.Info.Config.Trunk; t == nil || t.Name != spec.Name || from.Info.Config.Heads != o.Heads {
			return nil, ex, fmt.Errorf("transfer: %s is not a %s model with %q heads; train stage 1 with the same trunk and heads first", o.From, spec.Name, o.Heads)
		}
		weights = from.Weights
		o.Run.Model.Hidden, o.Run.Model.Standardize = from.Info.Config.Hidden, from.Info.Config.Standardize
		output, shape = spec.Cut, spec.CutShape
		dim = 1
		for _, d := range shape {
			dim *= d
		}
	}
	ext, err := newExtractor(b, g, bb, output)
	if err != nil {
		return nil, ex, err
	}
	joint := o.Heads == model.HeadsGenderAge
	spec0 := o.AugmentSpec
	if spec0 == nil {
		d := augment.Default()
		spec0 = &d
	}
	var views []View // the extra views of training faces
	if o.Mirror {
		views = append(views, View{Mirror: true})
	}
	for k := range o.Augment {
		views = append(views, View{Augment: spec0, Seed: o.Run.Model.Seed, Number: k + 1})
	}
	examples := func(split string, samples []data.Sample, views []View) (*FeatureExamples, error) {
		name := strings.ReplaceAll(output, "/", "_") + "-" + split
		start := time.Now()
		f, n, err := CachedStreamFeatures(ctx, ext, samples, View{}, o.CacheDir, name, dim, o.Workers, o.Log)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			ex.images, ex.time = ex.images+n, ex.time+time.Since(start)
		}
		fe := &FeatureExamples{Rows: f.Rows, Task: o.Task, Joint: joint, Shape: shape}
		for _, v := range views {
			start := time.Now()
			m, n, err := CachedStreamFeatures(ctx, ext, samples, v, o.CacheDir, name, dim, o.Workers, o.Log)
			if err != nil {
				return nil, err
			}
			if n > 0 {
				ex.images, ex.time = ex.images+n, ex.time+time.Since(start)
			}
			at := make(map[int][]float32, len(m.Index))
			for k, i := range m.Index {
				at[i] = m.Rows[k]
			}
			rows := make([][]float32, len(f.Index))
			for k, i := range f.Index {
				rows[k] = at[i]
			}
			fe.Views = append(fe.Views, rows)
		}
		for _, i := range f.Index {
			s := samples[i]
			g := -1
			if s.Gender == data.Male || s.Gender == data.Female {
				g = int(s.Gender)
			}
			fe.Gender = append(fe.Gender, g)
			fe.Age = append(fe.Age, min(s.Age, model.AgeBins-1))
		}
		if fe.Len() == 0 {
			return nil, fmt.Errorf("transfer: no readable images in the %s split", split)
		}
		return fe, nil
	}
	trainSet, err := examples("train", o.Train, views)
	if err != nil {
		return nil, ex, err
	}
	var valSet train.Examples
	if len(o.Val) > 0 {
		if valSet, err = examples("val", o.Val, nil); err != nil {
			return nil, ex, err
		}
	}
	if spec.Unscaled && o.From == "" {
		o.Run.Model.Standardize = true
	}
	if o.Run.Model.Standardize && o.From == "" {
		weights = append(weights, featureMoments(trainSet.Rows)...)
	}
	opts := o.Run
	opts.Model.Net, opts.Model.Trunk, opts.Model.Heads, opts.Model.Input = model.TrunkNet, &spec, o.Heads, spec.Size
	opts.Model.FreezeTrunk = true
	opts.Resize, opts.Mean, opts.Init = spec.Size, [3]float32{}, weights
	if joint {
		opts.Model.Classes, opts.Task, opts.ClassNames = model.JointClasses, data.TaskGenderAge, JointClassNames()
	} else {
		opts.Model.Classes, opts.Task, opts.ClassNames = o.Task.Classes(), o.Task, o.Task.ClassNames()
	}
	// The record says which features the heads saw, so that resuming
	// with other views (--mirror, --augment) is refused.
	var names []string
	for _, v := range views {
		names = append(names, v.String())
	}
	desc := fmt.Sprintf("%d train faces, %s of %s (%s), views %v", trainSet.Len(), output, spec.Name, filepath.Base(o.ModelsDir), append([]string{"plain"}, names...))
	if opts.Dataset == "" {
		opts.Dataset = desc
	} else {
		opts.Dataset += "; " + desc
	}
	r, err := train.Run(ctx, b, opts, trainSet, valSet)
	return r, ex, err
}

// featureMoments returns the per-dimension mean and standard deviation of
// the training features as the model.FeatureMean and model.FeatureStd
// variables of a Config.Standardize net (a deviation below 1e-6 counts as
// 1e-6, so a constant dimension does not divide by zero).
func featureMoments(rows [][]float32) []modelfile.Tensor {
	dim := len(rows[0])
	mean, std := make([]float32, dim), make([]float32, dim)
	sum, sq := make([]float64, dim), make([]float64, dim)
	for _, r := range rows {
		for j, v := range r {
			sum[j] += float64(v)
			sq[j] += float64(v) * float64(v)
		}
	}
	n := float64(len(rows))
	for j := range dim {
		m := sum[j] / n
		mean[j] = float32(m)
		std[j] = float32(math.Sqrt(max(sq[j]/n-m*m, 1e-12)))
	}
	return []modelfile.Tensor{
		{Name: model.FeatureMean, Dims: []int{dim}, Store: modelfile.Float32, F32: mean},
		{Name: model.FeatureStd, Dims: []int{dim}, Store: modelfile.Float32, F32: std},
	}
}

// JointClassNames are the class names of a model.HeadsGenderAge net: the
// genders, then the ages in years.
func JointClassNames() []string {
	names := append([]string{}, data.TaskGender.ClassNames()...)
	for y := range model.AgeBins {
		names = append(names, strconv.Itoa(y))
	}
	return names
}
