//go:build onnx

package onnx_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/interop/onnx"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/modelfile"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
)

// randomModel builds an origin model with its initial weights.
func randomModel(t *testing.T, net string, input int) *model.Model {
	b, err := backend.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	cfg := model.Config{Net: net, Classes: 8, Input: input, Seed: 2}
	store := mlx.NewStore()
	exec := mlx.MustNewExec(b, store, func(s *mlx.Scope, x *Node) *Node { return model.Logits(s.In(model.Scope), cfg, x) })
	exec.MustCall(tensors.FromFlatDataAndDimensions(make([]float32, input*input*3), 1, input, input, 3))
	m := &model.Model{Info: model.Info{Config: cfg, Task: data.TaskAge, ClassNames: data.TaskAge.ClassNames(), Spec: prep.Spec{Resize: input + 8, Crop: input}}}
	for v := range store.IterVariables() {
		m.Weights = append(m.Weights, modelfile.Tensor{Name: v.Path(), Dims: v.Shape().Dimensions, Store: modelfile.Float32, F32: tensors.MustCopyFlatData[float32](v.MustValue())})
	}
	return m
}

func TestExportMatchesGoModel(t *testing.T) {
	ort, err := backend.Open("onnx")
	if err != nil {
		t.Fatal(err)
	}
	goB, _ := backend.Open("go")
	for _, c := range []struct {
		net   string
		input int
	}{{"origin", 64}, {"origin-bn", 64}} {
		path := filepath.Join(t.TempDir(), c.net+".onnx")
		diff, err := onnx.Export(ort, goB, randomModel(t, c.net, c.input), path, 2)
		if err != nil {
			t.Fatalf("%s: %v", c.net, err)
		}
		st, _ := os.Stat(path)
		t.Logf("%s: %d bytes, max |Δp| = %.2g", c.net, st.Size(), diff)
	}
}
