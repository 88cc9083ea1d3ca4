package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/data/sources"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/train"
	"github.com/agegender/agegender/transfer"
	"github.com/schollz/progressbar/v3"
)

// dataFlags are the flags that choose a dataset, shared by train and eval.
type dataFlags struct {
	kind, dir, folds string
	fold             int
	task             string
	limit            int
}

func (d *dataFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.kind, "dataset", "utkface", "dataset: utkface or adience")
	fs.StringVar(&d.dir, "data", dataPath("utkface/images"), "UTKFace image folder, or Adience image root (with aligned/)")
	fs.StringVar(&d.folds, "folds", dataPath("adience/folds"), "Adience: folder with fold_{0..4}_data.txt")
	fs.IntVar(&d.fold, "fold", 0, "Adience: test fold 0..4")
	fs.StringVar(&d.task, "task", "gender", "task: gender, age, or both (a joint gender + age-in-years net: train --trunk, eval of the built-in model)")
	fs.IntVar(&d.limit, "limit", 0, "use at most this many images per split (0: all); for quick runs")
}

func (d *dataFlags) load() (data.Task, *sources.Splits, error) {
	task, err := data.ParseTask(d.task)
	if err != nil {
		return 0, nil, err
	}
	s, err := sources.Load(sources.Spec{Kind: d.kind, Dir: d.dir, Folds: d.folds, Fold: d.fold}, task)
	if err != nil {
		return 0, nil, err
	}
	for _, sk := range s.Skipped {
		fmt.Fprintln(os.Stderr, "skipped:", sk)
	}
	if d.limit > 0 {
		s.Train, s.Val, s.Test = data.Spread(s.Train, d.limit), data.Spread(s.Val, d.limit), data.Spread(s.Test, d.limit)
	}
	return task, s, nil
}

// cache decodes and resizes a split once, reporting unreadable files.
func cache(name string, dir string, samples []data.Sample, task data.Task, cfg prep.Config) (*prep.Cache, []int, error) {
	bar := progressbar.NewOptions(len(samples), progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription("decoding "+name), progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(20), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(500*time.Millisecond))
	c, errs := prep.BuildCache(sources.Paths(dir, samples), cfg, func(done, total int) { bar.Set(done) })
	bar.Finish()
	for _, e := range errs {
		fmt.Fprintln(os.Stderr, "skipped:", e)
	}
	if c == nil || c.Len() == 0 {
		return nil, nil, fmt.Errorf("no readable images in the %s split", name)
	}
	labels := make([]int, c.Len())
	for i := range labels {
		labels[i] = task.Label(samples[c.Index(i)])
	}
	return c, labels, nil
}

func cmdTrain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("train", flag.ExitOnError)
	fs.Usage = usageFor(fs)
	var d dataFlags
	d.register(fs)
	net := fs.String("net", "origin", "network: "+fmt.Sprint(model.Names()))
	input := fs.Int("input", 227, "input crop side (paper 227; 64 trains ~20× faster on a CPU)")
	resize := fs.Int("resize", 0, "side images are resized to before cropping (0: input×256/227)")
	epochs := fs.Int("epochs", 30, "epochs")
	batch := fs.Int("batch", 50, "batch size (paper 50)")
	opt := fs.String("optimizer", "adam", "adam (lr 5e-4) or sgd (the paper's solver: momentum 0.9, wd 5e-4, lr 1e-3 ÷10 every 10k steps)")
	lr := fs.Float64("lr", 0, "learning rate (0: the optimiser's default)")
	seed := fs.Int64("seed", 1, "seed for weights, shuffling, augmentation and dropout")
	out := fs.String("out", "", "output directory (checkpoint.agm, model.agm, curves.png); required")
	be := fs.String("backend", "", "compute backend: go, onnx or xla (default $GOMLX_BACKEND, else ONNX Runtime if available, else go)")
	noAug := fs.Bool("no-augment", false, "disable augmentation (random crop only)")
	trunk := fs.String("trunk", "", "pretrained trunk under trained heads: "+strings.Join(model.TrunkNames(), ", ")+" (sets --net trunk; --task both trains one net for gender and age in years)")
	modelsDir := fs.String("models", modelsPath("tfjs"), "folder of the TF.js trunks")
	cacheDir := fs.String("cache", defaultCacheDir(), "trunk feature cache folder (\"\" disables it)")
	mirror := fs.Bool("mirror", true, "trunk: also train on the features of mirrored faces")
	hidden := fs.Int("hidden", 0, "trunk: width of each head's hidden layer (0: 512)")
	sigma := fs.Float64("age-sigma", 0, "trunk, --task both: spread in years of the age target distribution (0: 3)")
	ageL1 := fs.Float64("age-l1", 0, "trunk, --task both: weight of |expected − true age| in the loss (0: 0.05)")
	from := fs.String("from", "", "trunk, stage 2: start from this stage-1 `model` and also train the trunk's last block (use --lr 1e-4)")
	fs.Parse(args)
	if *out == "" {
		return fmt.Errorf("train: --out is required")
	}
	if *trunk != "" {
		return trainTrunk(ctx, &d, *trunk, *from, *modelsDir, *cacheDir, *be, *mirror, train.Options{
			Model: model.Config{Seed: *seed, Hidden: *hidden, AgeSigma: *sigma, AgeL1: *ageL1}, Optimizer: *opt, LR: *lr, Batch: *batch, Epochs: *epochs,
			OutDir: *out, Progress: os.Stderr})
	}
	task, splits, err := d.load()
	if err != nil {
		return err
	}
	if *resize == 0 {
		*resize = (*input*256 + 113) / 227
	}
	b, err := backend.Open(*be)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, backend.Describe(b))
	fmt.Fprintf(os.Stderr, "%s: %d train, %d validation images (%s)\n", task, len(splits.Train), len(splits.Val), splits.Name)
	cfg := prep.Config{Resize: *resize, Crop: *input}
	trainC, trainL, err := cache("train", d.dir, splits.Train, task, cfg)
	if err != nil {
		return err
	}
	cfg.Mean = prep.MeanOf(trainC)
	var val train.Examples
	if len(splits.Val) > 0 {
		valC, valL, err := cache("validation", d.dir, splits.Val, task, cfg)
		if err != nil {
			return err
		}
		val = &train.CacheExamples{Cache: valC, Labels: valL, Config: cfg}
	}
	aug := prep.DefaultAugment()
	if *noAug {
		aug = prep.Augment{}
	}
	opts := train.Options{
		Model:      model.Config{Net: *net, Classes: task.Classes(), Input: *input, Seed: *seed},
		Task:       task.String(),
		ClassNames: task.ClassNames(),
		Resize:     *resize,
		Mean:       cfg.Mean,
		Optimizer:  *opt,
		LR:         *lr,
		Batch:      *batch,
		Epochs:     *epochs,
		Dataset:    splits.Name + " (train)",
		OutDir:     *out,
		Impl:       backend.Impl(b),
		Progress:   os.Stderr,
	}
	res, err := train.Run(ctx, b, opts, &train.CacheExamples{Cache: trainC, Labels: trainL, Config: cfg, Augment: aug}, val)
	if err != nil {
		return err
	}
	fmt.Printf("trained %s for %s: best validation accuracy %.4f in %.0f s; model in %s\n",
		*net, task, res.BestVal, res.Seconds, res.ModelPath)
	return nil
}

// defaultCacheDir is where trunk features are cached: the user's cache
// folder, or none when there is no such folder.
func defaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "agegender", "features")
}

// trainTrunk trains heads on a frozen pretrained trunk (transfer.TrainHeads).
func trainTrunk(ctx context.Context, d *dataFlags, trunk, from, modelsDir, cacheDir, be string, mirror bool, run train.Options) error {
	heads, taskName := model.HeadsSingle, d.task
	if d.task == "both" {
		heads, d.task = model.HeadsGenderAge, "gender"
	}
	task, splits, err := d.load()
	if err != nil {
		return err
	}
	b, err := backend.Open(be)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, backend.Describe(b))
	run.Impl = backend.Impl(b)
	run.Dataset = splits.Name + " (train)"
	res, err := transfer.TrainHeads(ctx, b, transfer.HeadsOptions{ModelsDir: modelsDir, Trunk: trunk, Heads: heads, Task: task,
		Train: withDir(d.dir, splits.Train), Val: withDir(d.dir, splits.Val), CacheDir: cacheDir, Mirror: mirror, From: from, Run: run, Log: os.Stderr})
	if err != nil {
		return err
	}
	fmt.Printf("trained %s heads (%s) for %s: best validation score %.4f in %.0f s; model in %s\n",
		trunk, heads, taskName, res.BestVal, res.Seconds, res.ModelPath)
	return nil
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
