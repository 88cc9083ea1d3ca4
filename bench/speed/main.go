// Command speed times a network on one backend: inference at the given
// batch sizes and one training step (Adam), in images per second. It
// prints one JSON object per measurement; bench/speed.sh runs it for every
// backend next to PyTorch.
//
//	go run ./bench/speed --backend go --net origin --input 227
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/bench/internal/timing"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/ops"
	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
	gtrain "github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/loss"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

type result struct {
	Impl     string  `json:"impl"`
	Backend  string  `json:"backend"`
	Ops      string  `json:"ops"`
	Net      string  `json:"net"`
	Input    int     `json:"input"`
	What     string  `json:"what"`
	Batch    int     `json:"batch"`
	ImgPerS  float64 `json:"img_per_s"`
	MsPerRun float64 `json:"ms_per_batch"`
	Threads  int     `json:"threads"`
}

func main() {
	be := flag.String("backend", "go", "backend: go, onnx, xla[:plugin]")
	net := flag.String("net", "origin", "network")
	input := flag.Int("input", 227, "input side")
	batches := flag.String("batches", "1,32", "inference batch sizes")
	trainBatch := flag.Int("train-batch", 32, "training batch size (0: skip)")
	impl := flag.String("ops", "auto", "ops: auto, portable or native")
	secs := flag.Float64("secs", 8, "seconds to spend on each measurement (after warm-up)")
	flag.Parse()
	b, err := backend.Open(*be)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "backend:", backend.Describe(b))
	cfg := model.Config{Net: *net, Classes: 8, Input: *input, Seed: 1, Impl: backend.Impl(b)}
	switch *impl {
	case "portable":
		cfg.Impl = ops.Portable
	case "native":
		cfg.Impl = ops.Native
	}
	base := result{Impl: "gomlx", Backend: *be, Ops: cfg.Impl.String(), Net: *net, Input: *input, Threads: runtime.NumCPU()}
	enc := json.NewEncoder(os.Stdout)
	for _, s := range strings.Split(*batches, ",") {
		n, _ := strconv.Atoi(s)
		r := base
		r.What, r.Batch = "inference", n
		r.MsPerRun = timing.MsPerCall(*secs, inference(b, cfg, n))
		r.ImgPerS = float64(n) / r.MsPerRun * 1000
		enc.Encode(r)
	}
	if *trainBatch > 0 {
		r := base
		r.What, r.Batch = "train_step", *trainBatch
		r.MsPerRun = timing.MsPerCall(*secs, trainStep(b, cfg, *trainBatch))
		r.ImgPerS = float64(*trainBatch) / r.MsPerRun * 1000
		enc.Encode(r)
	}
}

func images(n, side int) []float32 {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*side*side*3)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 50)
	}
	return x
}

// inference returns a function running one forward pass on a batch that
// stays on the device between calls.
func inference(b compute.Backend, cfg model.Config, n int) func() {
	store := mlx.NewStore()
	exec := mlx.MustNewExec(b, store, func(s *mlx.Scope, x *Node) *Node {
		return Softmax(model.Logits(s.In(model.Scope), cfg, x), -1)
	})
	x := tensors.FromFlatDataAndDimensions(images(n, cfg.Input), n, cfg.Input, cfg.Input, 3)
	return func() {
		out := exec.MustCall(x)
		out[0].ToLocal()
		out[0].FinalizeAll()
	}
}

func trainStep(b compute.Backend, cfg model.Config, n int) func() {
	store := mlx.NewStore()
	store.SetRNGStateFromSeed(1)
	tr := gtrain.NewTrainer(b, store, func(s *mlx.Scope, x *Node) *Node { return model.Logits(s.In(model.Scope), cfg, x) },
		loss.SparseCategoricalCrossEntropyLogits, optimizer.Adam().LearningRate(5e-4).Done(), nil, nil)
	img := images(n, cfg.Input)
	labels := make([]int32, n)
	for i := range labels {
		labels[i] = int32(i % 8)
	}
	// The batch is uploaded once and stays on the device: on a GPU, feeding
	// it from host memory every step costs more than the step itself. The
	// trainer consumes (donates) its batch, so each step gets a fresh
	// on-device copy.
	x := tensors.FromFlatDataAndDimensions(img, n, cfg.Input, cfg.Input, 3)
	y := tensors.FromFlatDataAndDimensions(labels, n, 1)
	clone := MustNewExec(b, func(x, y *Node) (*Node, *Node) { return Identity(x), Identity(y) })
	return func() {
		xy := clone.MustExec(x, y)
		m, err := tr.TrainStep(gtrain.Batch{Inputs: xy[:1], Labels: xy[1:]})
		if err != nil {
			panic(err)
		}
		for _, t := range m {
			t.FinalizeAll()
		}
	}
}
