package tfjs

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// TestCutInput checks that feeding an inner node's value (a cut) gives the
// same outputs as computing it: MobileFaceNet's embeddings from its input,
// and from its Conv2d_7 activations with the last block's weights as
// variables (as transfer's fine-tuning builds it).
func TestCutInput(t *testing.T) {
	m, err := Load(filepath.Join(modelsDir(t), "mobilefacenet.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	const cut = "MobileFaceNet/MobileFaceNet/Conv2d_7/add"
	full, err := m.NewExec(b, "img_inputs", cut, "embeddings")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 2*112*112*3)
	for i := range x {
		x[i] = rng.Float32()*2 - 1
	}
	outs, err := full.Call(tensors.FromFlatDataAndDimensions(x, 2, 112, 112, 3))
	if err != nil {
		t.Fatal(err)
	}
	act, want := outs[0], tensors.MustCopyFlatData[float32](outs[1])
	if d := act.Shape().Dimensions; len(d) != 4 || d[1] != 7 || d[2] != 7 || d[3] != 512 {
		t.Fatalf("cut activations %v, want [2 7 7 512]", d)
	}
	store := model.NewStore()
	vars := 0
	top, err := model.NewExec(b, store, func(s *model.Scope, a *graph.Node) *graph.Node {
		o, err := m.BuildWith(a.Graph(), map[string]*graph.Node{cut: a}, []string{"embeddings"}, BuildOptions{
			Scope: s.In("backbone"),
			AsVariables: func(w string) bool {
				if len(w) > 21 && w[:21] == "MobileFaceNet/Logits/" {
					vars++
					return true
				}
				return false
			},
		})
		if err != nil {
			panic(err)
		}
		return o[0]
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := top.Call(act)
	if err != nil {
		t.Fatal(err)
	}
	if vars == 0 {
		t.Error("no weight of the last block became a variable")
	}
	g := tensors.MustCopyFlatData[float32](got[0])
	var maxDiff, scale float64
	for i := range want {
		maxDiff = max(maxDiff, abs64(float64(g[i]-want[i])))
		scale = max(scale, abs64(float64(want[i])))
	}
	if maxDiff > 1e-5*scale {
		t.Errorf("embeddings from the cut differ by %g (scale %g)", maxDiff, scale)
	}
}

func abs64(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
