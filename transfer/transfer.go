package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/data/utkface"
	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/predict"
	"github.com/agegender/agegender/train"
	"github.com/gomlx/compute"
)

// Options configures [Run].
type Options struct {
	Backend   compute.Backend // required
	ModelsDir string          // holds the TF.js trunks (mobilefacenet.json, faceres.json, ...)
	ImagesDir string          // UTKFace images (utkface.Load)
	CacheDir  string          // feature cache files; "" disables the cache
	// Backbone names the trunk (its Name, one of model.TrunkNames); default
	// MobileFaceNet.
	Backbone Backbone
	Task     data.Task

	// MaxTrain and MaxTest, when > 0, keep only so many samples of the
	// train and of the validation and test splits, drawn at random with
	// Seed (for quick runs and tests).
	MaxTrain, MaxTest int

	Hidden int     // head width; default 512
	Epochs int     // default 30
	Batch  int     // default 64 (at most the training set)
	LR     float64 // Adam learning rate; default 1e-3 (3e-4 for the fine-tuning stage)
	Seed   int64
	// FineTune adds stage 2: starting from the stage-1 model, the trunk's
	// last block (model.Trunk.Tune) trains with the head on its cached Cut
	// activations.
	FineTune bool
	// OutDir keeps each stage's run (checkpoint, model, curves) in
	// OutDir/<backbone>-<task>[-ft]; "" uses a temporary folder removed
	// at the end.
	OutDir  string
	Workers int       // image decoding goroutines; 0: all CPUs
	Log     io.Writer // progress lines and bars, or nil
}

func (o *Options) defaults() error {
	if o.Backend == nil {
		return errors.New("transfer: Options.Backend is nil")
	}
	if o.Backbone.Name == "" {
		o.Backbone = MobileFaceNet
	}
	if o.Epochs <= 0 {
		o.Epochs = 30
	}
	if o.Batch <= 0 {
		o.Batch = 64
	}
	if o.LR <= 0 {
		o.LR = 1e-3
	}
	return nil
}

// Result reports a [Run].
type Result struct {
	Backbone        string
	Task            data.Task
	Train, Test     int       // labelled, decoded samples used
	EpochLoss       []float64 // mean training loss per epoch (of the last stage)
	TestAccuracy    float64
	TestOneOff      float64       // age only: predictions within one group
	ExtractPerImage time.Duration // 0 when every feature came from the cache
	ExtractedImages int
	// Fine-tuning: how many trunk weight tensors the second stage changed,
	// and the largest relative change ‖w − w₀‖ / ‖w₀‖ among them.
	TunedWeights     int
	BlockChange      float64
	TrainingDuration time.Duration
	// ModelPath is the trained model file (trunk and head), which eval,
	// predict and serve take like any other; empty when OutDir is "".
	ModelPath string
}

// Run is the transfer-learning experiment on the UTKFace split, as one
// call: it trains a head on the frozen trunk's cached features with
// [TrainHeads] (the same loop, cache and model file as agegender train
// --trunk), optionally tunes the trunk's last block with the head (stage
// 2), and scores the resulting model on the test images through
// package predict, as eval does. The train split trains; the validation
// split chooses the epoch kept.
func Run(opts Options) (Result, error) {
	if err := opts.defaults(); err != nil {
		return Result{}, err
	}
	res := Result{Backbone: opts.Backbone.Name, Task: opts.Task}
	all, _, err := utkface.Load(opts.ImagesDir)
	if err != nil {
		return res, err
	}
	trainS, valS, testS := utkface.SplitSamples(all)
	trainS = subset(trainS, opts.MaxTrain, opts.Seed)
	valS = subset(valS, opts.MaxTest, opts.Seed)
	testS = subset(testS, opts.MaxTest, opts.Seed)
	out := opts.OutDir
	if out == "" {
		if out, err = os.MkdirTemp("", "agegender-transfer-"); err != nil {
			return res, err
		}
		defer os.RemoveAll(out)
	}
	name := opts.Backbone.Name + "-" + opts.Task.String()
	ho := HeadsOptions{ModelsDir: opts.ModelsDir, Trunk: opts.Backbone.Name, Heads: model.HeadsSingle, Task: opts.Task,
		Train: trainS, Val: valS, CacheDir: opts.CacheDir, Workers: opts.Workers, Log: opts.Log,
		Run: train.Options{Model: model.Config{Seed: opts.Seed, Hidden: opts.Hidden}, LR: opts.LR,
			Batch: min(opts.Batch, len(trainS)), Epochs: opts.Epochs, OutDir: filepath.Join(out, name),
			Impl: backend.Impl(opts.Backend), Progress: opts.Log}}
	ctx := context.Background()
	start := time.Now()
	r, ex, err := trainHeads(ctx, opts.Backend, ho)
	if err != nil {
		return res, err
	}
	res.ExtractedImages, res.TrainingDuration = ex.images, time.Since(start)-ex.time
	extractTime := ex.time
	if opts.FineTune {
		stage1 := r.ModelPath
		ho.From, ho.Run.OutDir = stage1, filepath.Join(out, name+"-ft")
		if opts.LR == 1e-3 {
			ho.Run.LR = 3e-4
		}
		start = time.Now()
		if r, ex, err = trainHeads(ctx, opts.Backend, ho); err != nil {
			return res, err
		}
		res.ExtractedImages += ex.images
		res.TrainingDuration += time.Since(start) - ex.time
		extractTime += ex.time
		if res.TunedWeights, res.BlockChange, err = changed(stage1, r.ModelPath); err != nil {
			return res, err
		}
	}
	if res.ExtractedImages > 0 {
		res.ExtractPerImage = extractTime / time.Duration(res.ExtractedImages)
	}
	for _, e := range r.History {
		res.EpochLoss = append(res.EpochLoss, e.TrainLoss)
	}
	if opts.OutDir != "" {
		res.ModelPath = r.ModelPath
	}
	for _, s := range trainS {
		if opts.Task.Label(s) >= 0 {
			res.Train++
		}
	}
	res.Test, res.TestAccuracy, res.TestOneOff, err = score(opts.Backend, r.ModelPath, testS, opts.Task)
	return res, err
}

// score runs a model file on the test images (centre crop) and returns
// the number of labelled, readable images, the accuracy and, for the age
// task, the share within one group.
func score(b compute.Backend, path string, test []data.Sample, task data.Task) (n int, acc, oneOff float64, err error) {
	m, err := model.Load(path)
	if err != nil {
		return 0, 0, 0, err
	}
	p, err := model.NewPredictor(b, m, backend.InferenceImpl(b))
	if err != nil {
		return 0, 0, 0, err
	}
	defer p.Close()
	const chunk = 32
	var pix [][]uint8
	var labels []int
	flush := func() error {
		if len(pix) == 0 {
			return nil
		}
		probs, err := predict.Probs(p, pix, predict.Center)
		if err != nil {
			return err
		}
		for i, pr := range probs {
			best := 0
			for c := range pr {
				if pr[c] > pr[best] {
					best = c
				}
			}
			d := best - labels[i]
			if d == 0 {
				acc++
			}
			if d >= -1 && d <= 1 {
				oneOff++
			}
		}
		n += len(pix)
		pix, labels = pix[:0], labels[:0]
		return nil
	}
	for _, s := range test {
		y := task.Label(s)
		if y < 0 {
			continue
		}
		img, _, err := imageio.DecodeFile(s.Path, imageio.DefaultLimits)
		if err != nil {
			continue // unreadable: skipped, as in training
		}
		pix, labels = append(pix, predict.Resized(p, img)), append(labels, y)
		if len(pix) == chunk {
			if err := flush(); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, 0, 0, err
	}
	if n == 0 {
		return 0, 0, 0, fmt.Errorf("transfer: no readable, labelled test images")
	}
	if task != data.TaskAge {
		oneOff = 0
	}
	return n, acc / float64(n), oneOff / float64(n), nil
}

// changed compares the trunk weights of two model files (stage 1 and 2):
// how many tensors differ, and the largest relative change among them.
func changed(before, after string) (n int, maxRel float64, err error) {
	a, err := model.Load(before)
	if err != nil {
		return 0, 0, err
	}
	b, err := model.Load(after)
	if err != nil {
		return 0, 0, err
	}
	old := map[string][]float32{}
	for _, t := range a.Weights {
		old[t.Name] = t.F32
	}
	for _, t := range b.Weights {
		w0, ok := old[t.Name]
		if !ok || len(w0) != len(t.F32) || len(w0) == 0 {
			continue
		}
		var d, w float64
		for i := range w0 {
			d += float64(t.F32[i]-w0[i]) * float64(t.F32[i]-w0[i])
			w += float64(w0[i]) * float64(w0[i])
		}
		if d > 0 && w > 0 {
			n++
			maxRel = max(maxRel, math.Sqrt(d/w))
		}
	}
	return n, maxRel, nil
}

// subset returns max samples drawn at random (seeded) from s, in their
// original order, or s itself if max <= 0 or s is not longer. UTKFace
// files are listed by name, that is by age, so a prefix would hold only
// the youngest or oldest faces.
func subset(s []data.Sample, max int, seed int64) []data.Sample {
	if max <= 0 || len(s) <= max {
		return s
	}
	pick := rand.New(rand.NewPCG(uint64(seed), 7)).Perm(len(s))[:max]
	keep := make([]bool, len(s))
	for _, i := range pick {
		keep[i] = true
	}
	out := make([]data.Sample, 0, max)
	for i, x := range s {
		if keep[i] {
			out = append(out, x)
		}
	}
	return out
}

// BaselineResult is FaceRes's own zero-training accuracy.
type BaselineResult struct {
	N              int     // test images
	GenderAccuracy float64 // output > 0.5 read as male
	AgeAccuracy    float64 // 8 Adience groups
	AgeOneOff      float64
	AgeMAE         float64 // years, expected age vs true age
}

// Baseline runs faceres.json's own heads on the UTKFace test split (the
// maxTest samples drawn at random if maxTest > 0): gender_pred/Sigmoid is P(male)
// (above 0.5 is male, as in vladmandic/human, and as the UTKFace labels
// confirm), and the expected age Σ a·p(a) of age_pred/Softmax (ages
// 0..99) is mapped to its Adience group with data.AgeGroupOf.
func Baseline(backend compute.Backend, modelsDir, imagesDir string, maxTest, workers int) (BaselineResult, error) {
	var r BaselineResult
	all, _, err := utkface.Load(imagesDir)
	if err != nil {
		return r, err
	}
	_, _, test := utkface.SplitSamples(all)
	test = subset(test, maxTest, 0)
	e, err := NewExtractor(backend, modelsDir, FaceRes, "gender_pred/Sigmoid", "age_pred/Softmax")
	if err != nil {
		return r, err
	}
	paths := make([]string, len(test))
	for i, s := range test {
		paths[i] = s.Path
	}
	cfg := FaceRes.Config()
	cfg.Workers = workers
	cache, _ := prep.BuildCache(context.Background(), paths, cfg, nil)
	if cache == nil || cache.Len() == 0 {
		return r, fmt.Errorf("transfer: no decodable test images in %s", imagesDir)
	}
	imgs := make([][]uint8, cache.Len())
	for i := range imgs {
		imgs[i] = cache.Pixels(i)
	}
	out, err := e.Run(imgs)
	if err != nil {
		return r, err
	}
	var g, gn, a, a1, an, mae float64
	for i := range imgs {
		s := test[cache.Index(i)]
		male := out[0][i][0] > 0.5
		if s.Gender == data.Male || s.Gender == data.Female {
			gn++
			if male == (s.Gender == data.Male) {
				g++
			}
		}
		ex := 0.0
		for age, p := range out[1][i] {
			ex += float64(age) * float64(p)
		}
		if s.AgeGroup >= 0 {
			an++
			d := int(data.AgeGroupOf(int(math.Round(ex)))) - int(s.AgeGroup)
			if d == 0 {
				a++
			}
			if d >= -1 && d <= 1 {
				a1++
			}
			mae += math.Abs(ex - float64(s.Age))
		}
	}
	r.N = len(imgs)
	if gn > 0 {
		r.GenderAccuracy = g / gn
	}
	if an > 0 {
		r.AgeAccuracy, r.AgeOneOff, r.AgeMAE = a/an, a1/an, mae/an
	}
	return r, nil
}

// ResolveImages returns dir/data/utkface/images and dir/models/tfjs for a
// shared directory laid out as ../shared next to the module.
func ResolveImages(shared string) (imagesDir, modelsDir string) {
	return filepath.Join(shared, "data", "utkface", "images"), filepath.Join(shared, "models", "tfjs")
}
