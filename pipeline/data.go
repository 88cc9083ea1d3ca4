// Package pipeline runs agegender's train → evaluate pipeline, the one
// path behind the train, eval and experiments commands:
//
//	Load       the dataset's splits for a task, at most Limit per split
//	Decode     each split decoded and resized once (prep.Cache)
//	Train      the mean of the training cache, then train.Run on augmented
//	           crops; or, with a pretrained trunk, transfer.TrainHeads
//	Eval       a model file on the test (or validation) split: centre
//	           crop and 10-crop reports, a per-group breakdown, and
//	           temperature calibration on the validation split
//
// Progress bars and skipped files go to the Log writer of each call's
// options (nil: silent); results are returned, never printed.
package pipeline

import (
	"context"
	"fmt"
	"io"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/data/sources"
	"github.com/agegender/agegender/internal/progress"
)

// Data chooses the labelled images of a run.
type Data struct {
	// Source names the dataset on disk (UTKFace, or one Adience fold).
	Source sources.Spec
	// Task is the task the splits are labelled for. A TaskGenderAge run
	// takes the faces labelled with a gender (their age in years, or -1,
	// comes with each sample).
	Task data.Task
	// Limit keeps at most this many samples per split, spread evenly
	// (data.Spread); 0 keeps all.
	Limit int
}

// Splits are one run's loaded samples.
type Splits struct {
	*sources.Splits
	// Dir is the image root the samples' paths are relative to.
	Dir  string
	Task data.Task
}

// Load reads d's splits, reports the dataset entries it skipped to log
// (nil: none), and keeps at most d.Limit samples per split.
func Load(d Data, log io.Writer) (*Splits, error) {
	s, err := sources.Load(d.Source, d.Task)
	if err != nil {
		return nil, err
	}
	if log != nil {
		for _, sk := range s.Skipped {
			fmt.Fprintln(log, "skipped:", sk)
		}
	}
	if d.Limit > 0 {
		s.Train, s.Val, s.Test = data.Spread(s.Train, d.Limit), data.Spread(s.Val, d.Limit), data.Spread(s.Test, d.Limit)
	}
	return &Splits{Splits: s, Dir: d.Source.Dir, Task: d.Task}, nil
}

// Split returns the samples of the split named "train", "val" or "test".
func (s *Splits) Split(name string) ([]data.Sample, error) {
	switch name {
	case "train":
		return s.Train, nil
	case "val":
		return s.Val, nil
	case "test":
		return s.Test, nil
	}
	return nil, fmt.Errorf("pipeline: unknown split %q; use train, val or test", name)
}

// Decoded is a split decoded once: its cache, and the sample and task
// label of every cached image (unreadable files are left out).
type Decoded struct {
	Cache   *prep.Cache
	Samples []data.Sample // Samples[i] is cached image i
	Labels  []int         // Labels[i] is the task label of cached image i
}

// Decode decodes and resizes samples (paths relative to s.Dir) once with
// cfg, showing a progress bar on log and naming every unreadable file
// there (nil: silent). It fails when no image of the split is readable,
// and with ctx's error when ctx ends first.
func (s *Splits) Decode(ctx context.Context, name string, samples []data.Sample, cfg prep.Spec, log io.Writer) (*Decoded, error) {
	var report func(done, total int)
	bar := progress.New(log, len(samples), "decoding "+name, "img")
	if bar != nil {
		report = func(done, total int) { bar.Set(done) }
	}
	c, errs := prep.BuildCache(ctx, sources.Paths(s.Dir, samples), cfg, report)
	if err := ctx.Err(); err != nil {
		bar.Finish()
		return nil, err // interrupted: the caller says so
	}
	if bar != nil {
		bar.Finish()
		for _, e := range errs {
			fmt.Fprintln(log, "skipped:", e)
		}
	}
	if c == nil {
		return nil, fmt.Errorf("pipeline: decoding the %s split: %w", name, errs[0])
	}
	if c.Len() == 0 {
		return nil, fmt.Errorf("pipeline: no readable images among the %d of the %s split", len(samples), name)
	}
	d := &Decoded{Cache: c, Samples: make([]data.Sample, c.Len()), Labels: make([]int, c.Len())}
	for i := range d.Labels {
		d.Samples[i] = samples[c.Index(i)]
		d.Labels[i] = s.Task.Label(d.Samples[i])
	}
	return d, nil
}
