// Command layers times each layer of the origin net at 227×227 on one
// backend — the forward pass alone and forward plus gradients — so that a
// training slowdown can be traced to the op that causes it.
//
//	go run -tags onnx ./bench/layers --backend onnx --batch 32
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/bench/internal/timing"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/ops"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
)

// layer is one op of the net with its input shapes ([H, W, N, C] first).
type layer struct {
	name  string
	dims  [][]int
	build func(impl ops.Impl, in []*Node) *Node
	wrt   []int // inputs whose gradient training needs
}

func main() {
	be := flag.String("backend", "onnx", "backend: go, onnx, xla[:plugin]")
	n := flag.Int("batch", 32, "batch size")
	impl := flag.String("ops", "portable", "ops: portable or native")
	only := flag.String("only", "", "comma-separated layer names (default: all)")
	secs := flag.Float64("secs", 3, "seconds per measurement")
	save := flag.String("save", "", "also write each layer's gradient graph as DIR/<layer>.onnx (onnx backend)")
	net := flag.Bool("net", false, "also time the whole net's gradients (and save it as net.onnx)")
	netName := flag.String("net-name", "origin", "network for --net")
	netInput := flag.Int("net-input", 227, "input side for --net")
	flag.Parse()
	b, err := backend.Open(*be)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *save != "" {
		keepModels(b)
	}
	im := ops.Portable
	if *impl == "native" {
		im = ops.Native
	}
	N := *n
	layers := []layer{
		{"conv1", [][]int{{227, 227, N, 3}, {7, 7, 3, 96}}, func(i ops.Impl, in []*Node) *Node { return ops.Conv2D(i, in[0], in[1], 4, 0) }, []int{1}},
		{"pool1", [][]int{{56, 56, N, 96}}, func(i ops.Impl, in []*Node) *Node { return ops.MaxPool2D(i, in[0], 3, 2) }, []int{0}},
		{"lrn1", [][]int{{28, 28, N, 96}}, func(i ops.Impl, in []*Node) *Node { return ops.LRN(in[0], 5, 1e-4, 0.75) }, []int{0}},
		{"conv2", [][]int{{28, 28, N, 96}, {5, 5, 96, 256}}, func(i ops.Impl, in []*Node) *Node { return ops.Conv2D(i, in[0], in[1], 1, 2) }, []int{0, 1}},
		{"pool2", [][]int{{28, 28, N, 256}}, func(i ops.Impl, in []*Node) *Node { return ops.MaxPool2D(i, in[0], 3, 2) }, []int{0}},
		{"lrn2", [][]int{{14, 14, N, 256}}, func(i ops.Impl, in []*Node) *Node { return ops.LRN(in[0], 5, 1e-4, 0.75) }, []int{0}},
		{"conv3", [][]int{{14, 14, N, 256}, {3, 3, 256, 384}}, func(i ops.Impl, in []*Node) *Node { return ops.Conv2D(i, in[0], in[1], 1, 1) }, []int{0, 1}},
		{"pool3", [][]int{{14, 14, N, 384}}, func(i ops.Impl, in []*Node) *Node { return ops.MaxPool2D(i, in[0], 3, 2) }, []int{0}},
		{"fc6", [][]int{{N, 7 * 7 * 384}, {7 * 7 * 384, 512}}, func(i ops.Impl, in []*Node) *Node { return MatMul(in[0], in[1]) }, []int{0, 1}},
	}
	total := [2]float64{}
	for _, l := range layers {
		if *only != "" && !strings.Contains(","+*only+",", ","+l.name+",") {
			continue
		}
		fwd, both := timeLayer(b, im, l, *secs, *save)
		total[0] += fwd
		total[1] += both
		fmt.Printf("%-6s forward %8.1f ms   forward+grad %8.1f ms\n", l.name, fwd, both)
	}
	fmt.Printf("%-6s forward %8.1f ms   forward+grad %8.1f ms\n", "total", total[0], total[1])
	if *net {
		fmt.Printf("whole %s at %d (loss + all gradients, no optimizer): %.1f ms\n", *netName, *netInput, timeNet(b, im, *netName, *netInput, N, *secs, *save))
	}
}

func timeLayer(b compute.Backend, impl ops.Impl, l layer, secs float64, save string) (fwd, both float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	args := make([]any, len(l.dims))
	for i, d := range l.dims {
		size := 1
		for _, v := range d {
			size *= v
		}
		x := make([]float32, size)
		for j := range x {
			x[j] = float32(rng.NormFloat64())
		}
		args[i] = tensors.FromFlatDataAndDimensions(x, d...)
	}
	forward := MustNewExec(b, func(in []*Node) *Node { return l.build(impl, in) })
	grads := MustNewExec(b, func(in []*Node) []*Node {
		y := l.build(impl, in)
		// A fixed pseudo-random weighting makes every output's gradient differ.
		loss := ReduceAllSum(Mul(y, Sin(Iota(y.Graph(), y.Shape(), 0))))
		wrt := make([]*Node, len(l.wrt))
		for i, j := range l.wrt {
			wrt[i] = in[j]
		}
		return Gradient(loss, wrt...)
	})
	if save != "" {
		in := make([]shapes.Shape, len(l.dims))
		for i, d := range l.dims {
			in[i] = shapes.Make(dtypes.Float32, d...)
		}
		if err := saveModel(b, grads, filepath.Join(save, l.name+".onnx"), in...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	run := func(e *Exec) func() {
		return func() {
			for _, t := range e.MustExec(args...) {
				t.FinalizeAll()
			}
		}
	}
	return timing.MsPerCall(secs, run(forward)), timing.MsPerCall(secs, run(grads))
}

// timeNet times a whole net (origin at 227×227 by default) — forward, softmax
// cross-entropy against one-hot labels, and the gradients of every
// variable, without the optimizer — and optionally saves its ONNX graph.
func timeNet(b compute.Backend, impl ops.Impl, net string, side, n int, secs float64, save string) float64 {
	cfg := model.Config{Net: net, Classes: 8, Input: side, Seed: 1, Impl: impl}
	store := mlx.NewStore()
	store.SetRNGStateFromSeed(1)
	exec := mlx.MustNewExec(b, store, func(s *mlx.Scope, x, labels *Node) []*Node {
		logits := model.Logits(s.In(model.Scope), cfg, x)
		loss := ReduceAllMean(Neg(ReduceSum(Mul(labels, LogSoftmax(logits)), -1)))
		var vars []*Node
		for v := range s.IterVariables() {
			if v.Trainable {
				vars = append(vars, v.ValueGraph(x.Graph()))
			}
		}
		return append(Gradient(loss, vars...), loss)
	})
	rng := rand.New(rand.NewPCG(1, 2))
	img := make([]float32, n*side*side*3)
	for i := range img {
		img[i] = float32(rng.NormFloat64() * 50)
	}
	lab := make([]float32, n*8)
	for i := 0; i < n; i++ {
		lab[i*8+i%8] = 1
	}
	x := tensors.FromFlatDataAndDimensions(img, n, side, side, 3)
	y := tensors.FromFlatDataAndDimensions(lab, n, 8)
	if save != "" {
		g, err := exec.Compile(x.Shape(), y.Shape())
		if err == nil {
			err = saveGraph(b, g, filepath.Join(save, "net.onnx"))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	return timing.MsPerCall(secs, func() {
		for _, t := range exec.MustExec(x, y) {
			t.FinalizeAll()
		}
	})
}
