//go:build onnx

// Package onnx exports a trained agegender model to an ONNX file that any
// ONNX runtime can run, and checks the export against the Go model.
//
// The exported graph takes "images" [N, S, S, 3] (float32, RGB, 0..255
// minus the model's mean — see model.Info) and returns "probs" [N, C]. It
// is built with GoMLX's ONNX Runtime backend (binaries built with
// -tags onnx, such as the ./agegender that ./setup.sh builds when it
// installed ONNX Runtime).
package onnx

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/ops"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
	gonnx "github.com/gomlx/gomlx/ml/model/onnx"
)

// Available reports whether this binary can export ONNX.
const Available = true

// Export writes m to path as an ONNX graph for a fixed batch size, using
// the ONNX Runtime backend ortBackend, then runs the file through ONNX
// Runtime and compares it with m run by the pure-Go backend goBackend on
// random inputs. It returns the largest absolute difference of the
// probabilities; above 1e-4 it returns an error.
func Export(ortBackend, goBackend compute.Backend, m *model.Model, path string, batch int) (float64, error) {
	store := mlx.NewStore().WithVariableAsConst(true) // weights as initializers, which runtimes pre-pack
	if err := m.LoadInto(store); err != nil {
		return 0, err
	}
	cfg := m.Info.Config
	cfg.Impl = ops.Native // standard Conv/MaxPool nodes: forward passes are exact on every runtime
	temp := m.Info.Temperature
	exec, err := mlx.NewExec(ortBackend, store, func(s *mlx.Scope, x *Node) *Node {
		return model.Probabilities(cfg, model.Logits(s.In(model.Scope), cfg, x), temp, m.Info.AgeTemperature)
	})
	if err != nil {
		return 0, err
	}
	in := shapes.Make(dtypes.Float32, batch, cfg.Input, cfg.Input, 3)
	if err := gonnx.SaveToFile(ortBackend, exec, path, []shapes.Shape{in}, []string{"images"}, []string{"probs"}); err != nil {
		return 0, fmt.Errorf("onnx: exporting %s: %w", path, err)
	}
	// Check: the exported file on ONNX Runtime vs the model on pure Go.
	loaded, err := gonnx.LoadFromFile(ortBackend, path)
	if err != nil {
		return 0, fmt.Errorf("onnx: reloading %s: %w", path, err)
	}
	defer loaded.Finalize()
	ref, err := model.NewPredictor(goBackend, m, ops.Portable)
	if err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewPCG(7, 7))
	x := make([]float32, batch*cfg.Input*cfg.Input*3)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 60)
	}
	got, err := loaded.Call(tensors.FromFlatDataAndDimensions(x, batch, cfg.Input, cfg.Input, 3))
	if err != nil {
		return 0, fmt.Errorf("onnx: running %s: %w", path, err)
	}
	g := tensors.MustCopyFlatData[float32](got[0])
	want, err := ref.Probs(x, batch)
	if err != nil {
		return 0, err
	}
	var maxDiff float64
	c := cfg.Classes
	for i := range want {
		for j := range want[i] {
			maxDiff = math.Max(maxDiff, math.Abs(float64(g[i*c+j]-want[i][j])))
		}
	}
	if maxDiff > 1e-4 {
		return maxDiff, fmt.Errorf("onnx: exported model differs from the Go model by %.3g (> 1e-4)", maxDiff)
	}
	return maxDiff, nil
}
