package model_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/internal/testmodel"
	"github.com/agegender/agegender/model"
)

// A model read by Load or Decode lends its weights' memory to its first
// Predictor (no copy); a second Predictor, or one of a model whose weights
// were replaced, copies them. All give the same answers.
func TestPredictorSharesLoadedWeights(t *testing.T) {
	src, err := testmodel.New("gender")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.agm")
	if err := src.Save(path, true); err != nil {
		t.Fatal(err)
	}
	loaded, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := model.Decode("m.agm", bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range loaded.Weights {
		if !slices.Equal(w.F32, decoded.Weights[i].F32) {
			t.Fatalf("weight %s: Load and Decode differ", w.Name)
		}
	}
	replaced := &model.Model{Info: loaded.Info, Weights: slices.Clone(loaded.Weights)}
	for i := range replaced.Weights {
		replaced.Weights[i].F32 = slices.Clone(replaced.Weights[i].F32)
	}
	b, err := backend.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	in := loaded.Info.Config.Input
	pix := make([]float32, in*in*3)
	for i := range pix {
		pix[i] = float32(i%251) - 125
	}
	var want []float32
	for i, m := range []*model.Model{loaded, loaded, decoded, replaced} {
		p, err := model.NewPredictor(b, m, backend.InferenceImpl(b))
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Probs(pix, 1)
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			want = got[0]
		} else if !slices.Equal(got[0], want) {
			t.Fatalf("predictor %d: %v, want %v", i, got[0], want)
		}
	}
}
