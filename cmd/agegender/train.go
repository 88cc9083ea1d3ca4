package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/data/sources"
	"github.com/agegender/agegender/internal/dataroot"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/pipeline"
	"github.com/agegender/agegender/train"
)

// dataFlags are the flags that choose a dataset, shared by train and eval.
type dataFlags struct {
	kind, dir, folds string
	fold             int
	task             string
	limit            int
}

// register adds the flags to fs; task is --task's default and taskHelp
// its usage.
func (d *dataFlags) register(fs *flag.FlagSet, task, taskHelp string) {
	fs.StringVar(&d.kind, "dataset", "utkface", "dataset: utkface or adience")
	fs.StringVar(&d.dir, "data", dataPath("utkface/images"), "UTKFace image folder, or Adience image root (with aligned/)")
	fs.StringVar(&d.folds, "folds", dataPath("adience/folds"), "Adience: folder with fold_{0..4}_data.txt")
	fs.IntVar(&d.fold, "fold", 0, "Adience: test fold 0..4")
	fs.StringVar(&d.task, "task", task, taskHelp)
	fs.IntVar(&d.limit, "limit", 0, "use at most this many images per split (0: all); for quick runs")
}

// data is the pipeline's description of the chosen data.
func (d *dataFlags) data() (pipeline.Data, error) {
	task, err := data.ParseTask(d.task)
	if err != nil {
		return pipeline.Data{}, err
	}
	if st, err := os.Stat(d.dir); err != nil || !st.IsDir() {
		return pipeline.Data{}, fmt.Errorf("--data %s: not a folder; pass --data (the UTKFace image folder, or the Adience image root) or set AGEGENDER_DATA to the folder holding utkface/ and adience/ (relative paths count from the working directory; now %s)", d.dir, dataroot.Dir())
	}
	return pipeline.Data{Source: sources.Spec{Kind: d.kind, Dir: d.dir, Folds: d.folds, Fold: d.fold}, Task: task, Limit: d.limit}, nil
}

func cmdTrain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("train", flag.ExitOnError)
	fs.Usage = usageFor(fs)
	var d dataFlags
	d.register(fs, "", "task: gender, age, or both (a joint gender + age-in-years net, with --trunk) (default: gender; both with --trunk)")
	net := fs.String("net", "origin", "network: "+fmt.Sprint(model.Names()))
	input := fs.Int("input", 227, "input crop side (paper 227; 64 trains ~20× faster on a CPU)")
	resize := fs.Int("resize", 0, "side images are resized to before cropping (0: input×256/227)")
	epochs := fs.Int("epochs", 30, "epochs")
	batch := fs.Int("batch", 50, "batch size (paper 50)")
	var opt train.Optimizer
	fs.TextVar(&opt, "optimizer", train.Adam, "`solver`: adam (lr 5e-4) or sgd (the paper's solver: momentum 0.9, wd 5e-4, lr 1e-3 ÷10 every 10k steps)")
	lr := fs.Float64("lr", 0, "learning rate (0: the optimiser's default)")
	var schedule train.Schedule
	fs.TextVar(&schedule, "lr-schedule", train.ConstantLR, "learning-rate `schedule`: constant, or cosine (linear warm-up for --warmup steps, then half a cosine down to 0 at the last step)")
	warmup := fs.Int("warmup", 0, "--lr-schedule cosine: steps of linear warm-up")
	seed := fs.Int64("seed", 1, "seed for weights, shuffling, augmentation and dropout")
	out := fs.String("out", "", "output directory (checkpoint.agm, model.agm, curves.png); required")
	be := fs.String("backend", "", "compute backend: go, onnx or xla (default $GOMLX_BACKEND, else ONNX Runtime if available, else go)")
	noAug := fs.Bool("no-augment", false, "disable augmentation (random crop only)")
	trunk := fs.String("trunk", "", "pretrained trunk under trained heads: "+strings.Join(model.TrunkNames(), ", ")+" (instead of --net; --task defaults to both: one net for gender and age in years)")
	modelsDir := fs.String("models", modelsPath("tfjs"), "folder of the trunk: the TF.js trunks; for faceapi the npm package's model folder; for vggface the unpacked Caffe release (VGG_FACE.caffemodel, from vgg_face_caffe.tar.gz), not in ../shared")
	cacheDir := fs.String("cache", defaultCacheDir(), "trunk feature cache folder (\"\" disables it)")
	mirror := fs.Bool("mirror", true, "trunk: also train on the features of mirrored faces")
	augN := fs.Int("augment", 0, "trunk: also train on this many augmented views of each face (scale, shift, roll, mirror, colour, gray, blur, JPEG, occlusion: data/augment), each extracted once and cached")
	hidden := fs.Int("hidden", 0, "trunk: width of each head's hidden layer (0: 512)")
	sigma := fs.Float64("age-sigma", 0, "trunk, --task both: spread in years of the age target distribution (0: 3)")
	ageL1 := fs.Float64("age-l1", 0, "trunk, --task both: weight of |expected − true age| in the loss (0: 0.05)")
	standardize := fs.Bool("standardize", false, "trunk: the heads read the trunk's features standardised by their training mean and deviation (always on for trunks that need it: mobilefacenet)")
	genderW := fs.Float64("gender-weight", 0, "trunk, --task both: weight of the gender loss against the age loss (0: 1)")
	from := fs.String("from", "", "trunk, stage 2: start from this stage-1 `model` and also train the trunk (--tune; use a low --lr, say 1e-4)")
	tune := fs.String("tune", pipeline.TuneLast, "trunk, stage 2 (--from): `what` to train with the heads: last (the last block, on its cached activations) or all (the whole trunk, on the images, augmented on line)")
	trunkLR := fs.Float64("trunk-lr-mult", 0, "trunk, stage 2: the trunk's learning rate as a multiple of --lr, the heads' (0: 0.1 with --tune all, 1 with --tune last)")
	maxSteps := fs.Int("max-steps", 0, "stop after this many steps in all (0: --epochs full epochs); the schedule spans them and the last, partial epoch is validated")
	parse(fs, args)
	if *out == "" {
		return fmt.Errorf("train: --out is required")
	}
	if d.task == "" { // a trunk trains the joint net unless told otherwise
		d.task = data.TaskGender.String()
		if *trunk != "" {
			d.task = data.TaskGenderAge.String()
		}
	}
	// Names are checked before the data set loads (minutes for a full split).
	if *trunk == "" && !slices.Contains(model.Names(), *net) {
		return fmt.Errorf("train: unknown network %q; known networks: %s", *net, strings.Join(model.Names(), ", "))
	}
	if *trunk != "" && !slices.Contains(model.TrunkNames(), *trunk) {
		return fmt.Errorf("train: unknown trunk %q; known trunks: %s", *trunk, strings.Join(model.TrunkNames(), ", "))
	}
	if *trunk != "" {
		if err := model.CheckTrunkFolder(*modelsDir, *trunk); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	dt, err := d.data()
	if err != nil {
		return err
	}
	o := pipeline.TrainOptions{Data: dt, Resize: *resize, Augment: prep.DefaultAugment(), Log: os.Stderr,
		Run: train.Options{Model: model.Config{Net: *net, Input: *input, Seed: *seed, Hidden: *hidden, AgeSigma: *sigma, AgeL1: *ageL1, GenderWeight: *genderW, Standardize: *standardize},
			Optimizer: opt, LR: *lr, TrunkLRMult: *trunkLR, Schedule: schedule, Warmup: *warmup, Batch: *batch, Epochs: *epochs, MaxSteps: *maxSteps,
			OutDir: *out, Progress: os.Stderr}}
	if *noAug {
		o.Augment = prep.Augment{}
	}
	if *trunk != "" {
		o.Trunk = &pipeline.TrunkOptions{Name: *trunk, ModelsDir: *modelsDir, CacheDir: *cacheDir, Mirror: *mirror, Augment: *augN, From: *from, Tune: *tune}
	}
	b, err := backend.Open(*be)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "backend:", backend.Describe(b))
	res, err := pipeline.Train(ctx, b, o)
	if err != nil {
		return err
	}
	if *trunk != "" {
		score := "accuracy"
		if dt.Task == data.TaskGenderAge {
			score = "score (mean of gender and exact age-group accuracy, the \"val acc\" above)"
		}
		what := "heads on the frozen " + *trunk + " trunk"
		switch {
		case *from != "" && *tune == pipeline.TuneAll:
			what = "the whole " + *trunk + " trunk and its heads"
		case *from != "":
			what = "the last block of the " + *trunk + " trunk and its heads"
		}
		fmt.Printf("trained %s for %s: best validation %s %.4f in %.0f s; model in %s\n",
			what, dt.Task, score, res.BestVal, res.Seconds, res.ModelPath)
		return nil
	}
	fmt.Printf("trained %s for %s: best validation accuracy %.4f in %.0f s; model in %s\n",
		*net, dt.Task, res.BestVal, res.Seconds, res.ModelPath)
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
