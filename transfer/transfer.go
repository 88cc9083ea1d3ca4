package transfer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/data/utkface"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers"
	mlx "github.com/gomlx/gomlx/ml/model"
	gtrain "github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/loss"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

// Options configures [Run].
type Options struct {
	Backend   compute.Backend // required
	ModelsDir string          // holds mobilefacenet.json, faceres.json and their .bin
	ImagesDir string          // UTKFace images (utkface.Load)
	CacheDir  string          // feature cache files; "" disables the cache
	Backbone  Backbone        // default MobileFaceNet
	Task      data.Task

	// MaxTrain and MaxTest, when > 0, keep only so many samples of the
	// train and test splits, drawn at random with Seed (for quick runs and
	// tests).
	MaxTrain, MaxTest int

	Hidden  int     // head width; default 512
	Dropout float64 // default 0.5; negative disables
	Epochs  int     // default 30
	Batch   int     // default 64 (at most the training set)
	LR      float64 // Adam learning rate; default 1e-3 (3e-4 when fine-tuning)
	Seed    int64
	// FineTune also trains the backbone's last block (Backbone.LastBlock)
	// with the head, on activations at Backbone.Cut extracted once per run
	// (in memory: 25k floats per image for MobileFaceNet, too large for
	// the disk cache).
	FineTune bool
	// Activations, if not nil, keeps the extracted Cut activations between
	// runs that share it (say the gender and the age run of one command),
	// keyed by backbone, split and samples.
	Activations map[string]Features
	Workers     int       // image decoding goroutines; 0: all CPUs
	Log         io.Writer // progress lines, or nil
}

func (o *Options) defaults() error {
	if o.Backend == nil {
		return errors.New("transfer: Options.Backend is nil")
	}
	if o.Backbone.Name == "" {
		o.Backbone = MobileFaceNet
	}
	if o.Hidden <= 0 {
		o.Hidden = 512
	}
	if o.Dropout == 0 {
		o.Dropout = 0.5
	}
	if o.Epochs <= 0 {
		o.Epochs = 30
	}
	if o.Batch <= 0 {
		o.Batch = 64
	}
	if o.LR <= 0 {
		o.LR = 1e-3
		if o.FineTune {
			o.LR = 3e-4 // one rate for head and pretrained block
		}
	}
	return nil
}

// Result reports a [Run].
type Result struct {
	Backbone        string
	Task            data.Task
	Train, Test     int       // labelled, decoded samples used
	EpochLoss       []float64 // mean training loss per epoch
	TestAccuracy    float64
	TestOneOff      float64       // age only: predictions within one group
	ExtractPerImage time.Duration // 0 when every feature came from the cache
	// Fine-tuning: how many backbone weight tensors were trained, and the
	// largest relative change ‖w − w₀‖ / ‖w₀‖ among them.
	TunedWeights     int
	BlockChange      float64
	ExtractedImages  int
	TrainingDuration time.Duration
}

// labelled is a split's features with their labels.
type labelled struct {
	x      [][]float32
	feat   [][]float32 // fine-tuning: the frozen backbone features of x
	y      []int32
	sample []data.Sample
}

// Run extracts (or reads from the cache) the backbone features of the
// UTKFace train and test splits, trains the head on the training features
// and evaluates it on the test split. Features are standardised with the
// training split's per-dimension mean and deviation before the head.
func Run(opts Options) (Result, error) {
	if err := opts.defaults(); err != nil {
		return Result{}, err
	}
	res := Result{Backbone: opts.Backbone.Name, Task: opts.Task}
	all, _, err := utkface.Load(opts.ImagesDir)
	if err != nil {
		return res, err
	}
	train, _, test := utkface.SplitSamples(all)
	train = subset(train, opts.MaxTrain, opts.Seed)
	test = subset(test, opts.MaxTest, opts.Seed)
	if opts.FineTune && opts.Backbone.Cut == "" {
		return res, fmt.Errorf("transfer: backbone %s has no last block defined for fine-tuning (Backbone.Cut); use %s", opts.Backbone.Name, MobileFaceNet.Name)
	}
	var ext *Extractor
	features := func(split string, samples []data.Sample) (labelled, error) {
		fetch := cachedFeatures
		if opts.FineTune {
			fetch = cutActivations
		}
		f, n, per, err := fetch(&opts, &ext, split, samples)
		if err != nil {
			return labelled{}, err
		}
		if n > 0 {
			res.ExtractPerImage = (res.ExtractPerImage*time.Duration(res.ExtractedImages) + per*time.Duration(n)) / time.Duration(res.ExtractedImages+n)
			res.ExtractedImages += n
		}
		var l labelled
		for i, row := range f.Rows {
			s := samples[f.Index[i]]
			if y := opts.Task.Label(s); y >= 0 {
				l.x, l.y, l.sample = append(l.x, row), append(l.y, int32(y)), append(l.sample, s)
				if opts.FineTune {
					l.feat = append(l.feat, f.More[0][i])
				}
			}
		}
		return l, nil
	}
	tr, err := features("train", train)
	if err != nil {
		return res, err
	}
	te, err := features("test", test)
	if err != nil {
		return res, err
	}
	res.Train, res.Test = len(tr.y), len(te.y)
	if res.Train == 0 || res.Test == 0 {
		return res, fmt.Errorf("transfer: %d labelled training and %d test samples; need both", res.Train, res.Test)
	}
	// Standardise each feature with the training mean and deviation: the
	// L2-normalised embeddings are tiny (|x| = 1 over 192 dims), which
	// leaves a freshly initialised head with almost no signal.
	var body func(s *mlx.Scope, x *Node) *Node
	if opts.FineTune {
		// The rows are Cut activations; the last block turns them into
		// features, standardised with the frozen features' moments.
		mean, std := moments(tr.feat)
		body = lastBlock(ext.Model, opts.Backbone, mean, std)
	} else {
		mean, std := moments(tr.x)
		tr.x, te.x = standardise(tr.x, mean, std), standardise(te.x, mean, std)
	}
	start := time.Now()
	head, err := trainHead(opts, tr, body)
	if err != nil {
		return res, err
	}
	res.TrainingDuration = time.Since(start)
	res.EpochLoss = head.epochLoss
	if opts.FineTune {
		res.TunedWeights, res.BlockChange = blockChange(head.store, ext.Model)
	}
	pred, err := head.predict(te.x)
	if err != nil {
		return res, err
	}
	res.TestAccuracy, res.TestOneOff = score(pred, te.y)
	return res, nil
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

// moments returns the per-column mean and standard deviation of x (a
// deviation of 0 is replaced by 1).
func moments(x [][]float32) (mean, std []float32) {
	d := len(x[0])
	sum, sq := make([]float64, d), make([]float64, d)
	for _, r := range x {
		for j, v := range r {
			sum[j] += float64(v)
			sq[j] += float64(v) * float64(v)
		}
	}
	mean, std = make([]float32, d), make([]float32, d)
	n := float64(len(x))
	for j := range d {
		m := sum[j] / n
		v := math.Sqrt(max(sq[j]/n-m*m, 0))
		if v < 1e-12 {
			v = 1
		}
		mean[j], std[j] = float32(m), float32(v)
	}
	return mean, std
}

// standardise returns (x-mean)/std row by row, in new rows.
func standardise(x [][]float32, mean, std []float32) [][]float32 {
	out := make([][]float32, len(x))
	for i, r := range x {
		o := make([]float32, len(r))
		for j, v := range r {
			o[j] = (v - mean[j]) / std[j]
		}
		out[i] = o
	}
	return out
}

// score returns accuracy and 1-off accuracy (|pred-label| <= 1).
func score(pred []int, y []int32) (acc, oneOff float64) {
	for i, p := range pred {
		d := p - int(y[i])
		if d == 0 {
			acc++
		}
		if d >= -1 && d <= 1 {
			oneOff++
		}
	}
	return acc / float64(len(pred)), oneOff / float64(len(pred))
}

// cachedFeatures returns the features of samples from the cache file of
// the backbone and split, computing and writing it when absent or stale.
// extracted is the number of images run through the backbone here.
func cachedFeatures(o *Options, ext **Extractor, split string, samples []data.Sample) (f Features, extracted int, perImage time.Duration, err error) {
	bb := o.Backbone
	key := cacheKey(bb, samples)
	var path string
	if o.CacheDir != "" {
		path = CachePath(o.CacheDir, bb, split)
		f, err = ReadCache(path, key, bb.Dim, len(samples))
		switch {
		case err == nil:
			logf(o.Log, "%s %s: %d features from %s", bb.Name, split, len(f.Rows), path)
			return f, 0, 0, nil
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, errStale):
		default:
			return f, 0, 0, err
		}
	}
	if *ext == nil {
		if *ext, err = NewExtractor(o.Backend, o.ModelsDir, bb); err != nil {
			return f, 0, 0, err
		}
	}
	f, skipped, perImage, err := (*ext).ExtractSamples(samples, o.Workers)
	if err != nil {
		return f, 0, 0, err
	}
	logf(o.Log, "%s %s: extracted %d features (%d images undecodable), %v per image", bb.Name, split, len(f.Rows), skipped, perImage)
	if path != "" {
		if err := WriteCache(path, key, bb.Dim, f); err != nil {
			return f, 0, 0, err
		}
	}
	return f, len(f.Rows), perImage, nil
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// head is a trained classifier on features.
type head struct {
	store     *mlx.Store
	exec      *mlx.Exec
	dim       int
	epochLoss []float64
}

// headLogits is the FC head: Dense(h)-ReLU-Dropout, twice, then Dense(N).
func headLogits(s *mlx.Scope, x *Node, hidden, classes int, dropout float64) *Node {
	for i := range 2 {
		x = layers.DenseWithBias(s.In("fc%d", i), x, hidden)
		x = Max(x, ZerosLike(x))
		if dropout > 0 {
			x = layers.DropoutStatic(s, x, dropout)
		}
	}
	return layers.DenseWithBias(s.In("logits"), x, classes)
}

// trainHead trains the head with Adam on l, in shuffled full batches
// (the remainder of each epoch is dropped so one graph is compiled).
// body, if not nil, maps a batch of input rows to the head's input (the
// backbone's last block when fine-tuning); its variables train too.
func trainHead(o Options, l labelled, body func(s *mlx.Scope, x *Node) *Node) (*head, error) {
	classes := o.Task.Classes()
	dim := len(l.x[0])
	store := mlx.NewStore()
	if err := store.SetRNGStateFromSeed(o.Seed); err != nil {
		return nil, err
	}
	modelFn := func(s *mlx.Scope, x *Node) *Node {
		if body != nil {
			x = body(s, x)
		}
		return headLogits(s.In("head"), x, o.Hidden, classes, o.Dropout)
	}
	trainer := gtrain.NewTrainer(o.Backend, store, modelFn, loss.SparseCategoricalCrossEntropyLogits,
		optimizer.Adam().LearningRate(o.LR).Done(), nil, nil)
	batch := min(o.Batch, len(l.y))
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 1))
	xb := make([]float32, batch*dim)
	yb := make([]int32, batch)
	h := &head{store: store, dim: dim}
	for epoch := range o.Epochs {
		perm := rng.Perm(len(l.y))
		sum, steps := 0.0, 0
		for start := 0; start+batch <= len(perm); start += batch {
			for i := range batch {
				j := perm[start+i]
				copy(xb[i*dim:], l.x[j])
				yb[i] = l.y[j]
			}
			m, err := trainer.TrainStep(gtrain.Batch{
				Inputs: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(xb, batch, dim)},
				Labels: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(yb, batch, 1)}})
			if err != nil {
				return nil, fmt.Errorf("transfer: training step: %w", err)
			}
			v := tensors.ToScalar[float32](m[0])
			if math.IsNaN(float64(v)) {
				return nil, fmt.Errorf("transfer: training loss is NaN at epoch %d", epoch+1)
			}
			sum += float64(v)
			steps++
		}
		h.epochLoss = append(h.epochLoss, sum/float64(steps))
		logf(o.Log, "epoch %d: loss %.4f", epoch+1, sum/float64(steps))
	}
	exec, err := mlx.NewExec(o.Backend, store, func(s *mlx.Scope, x *Node) *Node {
		return ArgMax(modelFn(s, x), -1, dtypes.Int32)
	})
	if err != nil {
		return nil, err
	}
	h.exec = exec
	return h, nil
}

// predict returns the class of every feature row.
func (h *head) predict(x [][]float32) ([]int, error) {
	out := make([]int, 0, len(x))
	const batch = 256
	buf := make([]float32, batch*h.dim)
	for start := 0; start < len(x); start += batch {
		n := min(batch, len(x)-start)
		for i := range n {
			copy(buf[i*h.dim:], x[start+i])
		}
		r, err := h.exec.Call(tensors.FromFlatDataAndDimensions(buf[:n*h.dim], n, h.dim))
		if err != nil {
			return nil, err
		}
		for _, c := range tensors.MustCopyFlatData[int32](r[0]) {
			out = append(out, int(c))
		}
	}
	return out, nil
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
	cache, _ := prep.BuildCache(paths, cfg, nil)
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
