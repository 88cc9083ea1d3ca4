package pipeline

import (
	"context"
	"fmt"
	"image"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/augment"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/train"
	"github.com/gomlx/compute"
	"github.com/prometheus/procfs"
)

// What stage 2 of a trunk run (TrunkOptions.From) trains with the heads.
const (
	// TuneLast trains the trunk's last block (model.Trunk.Tune) on its
	// cached Cut activations (transfer.TrainHeads): fast, no augmentation
	// beyond the cached views.
	TuneLast = "last"
	// TuneAll trains the whole trunk on the images themselves, streamed
	// and augmented on line (ImageExamples): every step is a forward and
	// backward pass through the trunk.
	TuneAll = "all"
)

// DefaultTrunkLRMult is the trunk's learning-rate multiplier of a
// TuneAll run when none is given: the trunk learns at a tenth of the
// heads' rate.
const DefaultTrunkLRMult = 0.1

// ImageExamples are face images read from disk at every use, as
// train.Examples for a network that takes images (a whole trunk under its
// heads): no image stays in memory beyond the batch being made. Augmented
// shows a face as it is or, with even odds, as a view rendered by Augment
// (seeded by the training step's generator, so a resumed run sees the same
// views); Center shows it as it is. Both are Spec's centre crop.
type ImageExamples struct {
	Samples []data.Sample // paths readable (see NewImageExamples)
	Spec    prep.Spec
	Augment augment.Spec
	Task    data.Task // the single task of a HeadsSingle net
	Joint   bool      // labels for a HeadsGenderAge net
}

// NewImageExamples decodes every sample's image once (workers goroutines,
// 0: all CPUs) to keep only the readable ones, naming the others on log
// (nil: silent); it fails when none is readable.
func NewImageExamples(ctx context.Context, samples []data.Sample, spec prep.Spec, aug augment.Spec, task data.Task, joint bool, workers int, log io.Writer) (*ImageExamples, error) {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	bad := make([]error, len(samples))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				_, _, bad[i] = imageio.DecodeFile(samples[i].Path, imageio.DefaultLimits)
			}
		})
	}
	for i := range samples {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e := &ImageExamples{Spec: spec, Augment: aug, Task: task, Joint: joint}
	for i, s := range samples {
		if bad[i] != nil {
			if log != nil {
				fmt.Fprintf(log, "skipped: %s: %v\n", s.Path, bad[i])
			}
			continue
		}
		e.Samples = append(e.Samples, s)
	}
	if len(e.Samples) == 0 {
		return nil, fmt.Errorf("pipeline: none of the %d images is readable", len(samples))
	}
	return e, nil
}

func (e *ImageExamples) Len() int { return len(e.Samples) }

// Labels are example i's gender (0/1) and age in years (at most
// model.AgeBins-1), -1 where unknown.
func (e *ImageExamples) Labels(i int) (int, int) {
	s := e.Samples[i]
	g := -1
	if s.Gender == data.Male || s.Gender == data.Female {
		g = int(s.Gender)
	}
	return g, min(s.Age, model.AgeBins-1)
}

// Label is the class of example i: the gender of a joint net, else the
// task's class.
func (e *ImageExamples) Label(i int) int {
	if e.Joint || e.Task == data.TaskGender {
		g, _ := e.Labels(i)
		return g
	}
	return e.Task.Label(e.Samples[i])
}

func (e *ImageExamples) Augmented(i int, rng *rand.Rand, dst []float32) {
	img := e.decode(i)
	if rng.IntN(2) == 1 {
		prep.CenterCropPixels(e.Augment.Apply(img, e.Spec.Resize, rng), e.Spec, dst)
		return
	}
	prep.CenterCropPixels(prep.FromImage(img, e.Spec), e.Spec, dst)
}

func (e *ImageExamples) Center(i int, dst []float32) {
	prep.CenterCropPixels(prep.FromImage(e.decode(i), e.Spec), e.Spec, dst)
}

// decode reads example i's image, which NewImageExamples found readable;
// one that became unreadable since is a fault of the run (the data
// changed under it), and panics with the file's name.
func (e *ImageExamples) decode(i int) image.Image {
	img, _, err := imageio.DecodeFile(e.Samples[i].Path, imageio.DefaultLimits)
	if err != nil {
		panic(fmt.Sprintf("pipeline: %s became unreadable during training: %v", e.Samples[i].Path, err))
	}
	return img
}

// trainWholeTrunk is stage 2 with TuneAll: from the stage-1 model t.From,
// the heads and the whole trunk train on the images (ImageExamples,
// augment.Default), the trunk at Run.TrunkLRMult times the heads' rate
// (DefaultTrunkLRMult when 0), through train.Run.
func trainWholeTrunk(ctx context.Context, b compute.Backend, s *Splits, o TrainOptions) (*train.Result, error) {
	t := o.Trunk
	from, err := model.Load(t.From)
	if err != nil {
		return nil, err
	}
	fc := from.Info.Config
	heads := model.HeadsSingle
	if s.Task == data.TaskGenderAge {
		heads = model.HeadsGenderAge
	}
	if fc.Trunk == nil || fc.Trunk.Name != t.Name || fc.Heads != heads {
		return nil, fmt.Errorf("pipeline: %s is not a %s model with %q heads; train stage 1 with the same trunk and task first", t.From, t.Name, heads)
	}
	if heads == model.HeadsSingle && from.Info.Task != s.Task {
		return nil, fmt.Errorf("pipeline: %s is a %s model, not %s", t.From, from.Info.Task, s.Task)
	}
	joint := heads == model.HeadsGenderAge
	opts := o.Run
	m := &opts.Model
	m.Net, m.Trunk, m.Heads, m.Input, m.Classes = model.TrunkNet, fc.Trunk, heads, fc.Input, fc.Classes
	m.Hidden, m.Standardize, m.FreezeTrunk = fc.Hidden, fc.Standardize, false
	opts.Task, opts.ClassNames, opts.Spec = from.Info.Task, from.Info.ClassNames, from.Info.Spec
	opts.Init = from.Weights
	if opts.TrunkLRMult == 0 {
		opts.TrunkLRMult = DefaultTrunkLRMult
	}
	if opts.ValBatch == 0 {
		opts.ValBatch = opts.Batch
	}
	if err := checkWholeTrunkMemory(b, t.Name, opts.Batch); err != nil {
		return nil, err
	}
	task := s.Task
	if joint {
		task = data.TaskGender
	}
	aug := augment.Default()
	if o.Log != nil {
		fmt.Fprintf(o.Log, "stage 2, whole %s trunk: checking %d train and %d validation images\n", t.Name, len(s.Train), len(s.Val))
	}
	trainSet, err := NewImageExamples(ctx, withDir(s.Dir, s.Train), opts.Spec, aug, task, joint, opts.Workers, o.Log)
	if err != nil {
		return nil, fmt.Errorf("pipeline: train split: %w", err)
	}
	var valSet train.Examples
	if len(s.Val) > 0 {
		if valSet, err = NewImageExamples(ctx, withDir(s.Dir, s.Val), opts.Spec, augment.Spec{}, task, joint, opts.Workers, o.Log); err != nil {
			return nil, fmt.Errorf("pipeline: validation split: %w", err)
		}
	}
	opts.Dataset += fmt.Sprintf("; %d train faces, images through the whole %s trunk from %s, plain or augmented (%s) 1:1",
		trainSet.Len(), t.Name, t.From, aug)
	return train.Run(ctx, b, opts, trainSet, valSet)
}

var _ train.JointLabeled = (*ImageExamples)(nil)

// wholeTrunkBytesPerImage is the memory one image of a batch takes when
// the whole faceres trunk trains at 224 px, by backend, measured with
// /usr/bin/time (maximum resident set) on 2-step runs of
// `train --tune all` (BENCHMARKS.md §8, "Whole trunk on the CPU: memory"):
// ONNX Runtime 7.3 GB at batch 16 and 14.6 GB at 32; pure Go 4.3 GB at
// batch 16. Every depthwise convolution trains as nine strided slices of
// its padded input (the backends' grouped convolutions have no usable
// gradient), which the backends keep for the backward pass. GPUs (XLA)
// are not checked.
var wholeTrunkBytesPerImage = map[string]uint64{"onnx": 460 << 20, "go": 270 << 20}

// checkWholeTrunkMemory refuses, before any image is read, a whole-trunk
// run of faceres whose batch needs more memory than the machine has
// available, saying which batch fits; other trunks are not measured and
// not checked.
func checkWholeTrunkMemory(b compute.Backend, trunk string, batch int) error {
	if trunk != "faceres" && trunk != "faceres-deep" {
		return nil
	}
	kind := "go"
	if strings.HasPrefix(b.Name(), "onnx") {
		kind = "onnx"
	} else if !strings.HasPrefix(strings.ToLower(b.Name()), "go") {
		return nil
	}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil // not Linux: nothing to check against
	}
	mi, err := fs.Meminfo()
	if err != nil || mi.MemAvailable == nil {
		return nil
	}
	avail := *mi.MemAvailable << 10 // kB
	per := wholeTrunkBytesPerImage[kind]
	if need := per * uint64(batch); need > avail {
		fit := max(1, int(avail*9/10/per))
		return fmt.Errorf("pipeline: training the whole %s trunk at --batch %d needs about %.1f GB on this backend (about %d MB an image, measured), and the machine has %.1f GB available: use --batch %d or less (or a GPU, -tags xla)",
			trunk, batch, float64(need)/(1<<30), per>>20, float64(avail)/(1<<30), fit)
	}
	return nil
}
