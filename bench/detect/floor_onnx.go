//go:build onnx

package main

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/agegender/agegender/interop/tfjs"
	"github.com/gomlx/compute"
	onnxbackend "github.com/gomlx/compute-onnx"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// floor times one run of each BlazeFace network on ONNX Runtime two ways:
// the native ONNX export of the same network in dir (MediaPipe's models
// as converted for Unity Barracuda, ../shared/models/onnx), loaded as it
// is, and the graph face runs (the embedded TF.js graph built by
// interop/tfjs, inference options, GoMLX's ONNX backend). The first is
// the floor for the second: the same convolutions with nothing around
// them. Both are fed the same input, batch of one.
func floor(b compute.Backend, dir string, runs int) error {
	fmt.Printf("| network | graph | run p50 ms | run min ms | CPU p50 ms |\n|---|---|---:|---:|---:|\n")
	for _, n := range []struct {
		name, onnx, tfjs string
		size             int
	}{
		{"back (256)", "face_detection_back_256x256_barracuda.onnx", "face/blazeface/blazeface-back.json", 256},
		{"front (128)", "face_detection_front_128x128_barracuda.onnx", "face/blazeface/blazeface-front.json", 128},
	} {
		in := make([]float32, n.size*n.size*3)
		for i := range in {
			in[i] = float32(i%255)/127.5 - 1
		}
		data, err := os.ReadFile(dir + "/" + n.onnx)
		if err != nil {
			return err
		}
		ex, err := onnxbackend.LoadModel(b, bytes.NewReader(data))
		if err != nil {
			return err
		}
		buf, err := b.BufferFromFlatData(0, in, shapes.Make(dtypes.Float32, 1, n.size, n.size, 3))
		if err != nil {
			return err
		}
		if err := timeNet(n.name, "native ONNX export", runs, func() error {
			outs, err := ex.Execute([]compute.Buffer{buf}, []bool{false}, 0)
			for _, o := range outs {
				o.Finalize()
			}
			return err
		}); err != nil {
			return err
		}
		m, err := tfjs.LoadFS(os.DirFS("."), n.tfjs)
		if err != nil {
			return err
		}
		var outs []string // the convolutions under the output Reshapes, as face takes them
		for _, o := range []string{"Identity", "Identity_2", "Identity_1", "Identity_3"} {
			outs = append(outs, m.Node(m.Node(o).Inputs[0]).Inputs[0])
		}
		e, err := graph.NewExec(b, func(x *graph.Node) []*graph.Node {
			ys, err := m.BuildWith(x.Graph(), map[string]*graph.Node{"input": x}, outs, tfjs.BuildOptions{NativeConv: true, Inference: true})
			if err != nil {
				panic(err)
			}
			return ys
		})
		if err != nil {
			return err
		}
		x := tensors.FromFlatDataAndDimensions(in, 1, n.size, n.size, 3)
		if err := timeNet(n.name, "TF.js graph through GoMLX", runs, func() error {
			r, err := e.Call(x)
			for _, t := range r {
				t.FinalizeAll()
			}
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

func timeNet(name, what string, runs int, run func() error) error {
	if err := run(); err != nil { // warm-up
		return err
	}
	var wall, cpu []time.Duration
	for range runs {
		start, cpu0 := time.Now(), cpuTime()
		if err := run(); err != nil {
			return err
		}
		wall = append(wall, time.Since(start))
		cpu = append(cpu, cpuTime()-cpu0)
	}
	fmt.Printf("| %s | %s | %.2f | %.2f | %.2f |\n", name, what, ms(pct(wall, 50)), ms(pct(wall, 0)), ms(pct(cpu, 50)))
	return nil
}
