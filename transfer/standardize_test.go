package transfer

import (
	"context"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/predict"
	"github.com/agegender/agegender/train"
)

// TestStandardizedHeads trains joint heads on MobileFaceNet, whose
// embedding is far from unit scale: the run standardises the features by
// itself, the model file holds the training features' mean and deviation
// (unchanged by training: they are not weights), and the saved network
// runs on an image. (The cache and the model file hold float16: 5e-3 relative.)
func TestStandardizedHeads(t *testing.T) {
	models, tr, val, b := headsSetup(t)
	cache := t.TempDir()
	o := HeadsOptions{ModelsDir: models, Trunk: "mobilefacenet", Heads: model.HeadsGenderAge, Train: tr, Val: val, CacheDir: cache,
		Run: train.Options{Model: model.Config{Seed: 1, Hidden: 16}, LR: 1e-3, Batch: 8, Epochs: 2, OutDir: t.TempDir(), Impl: backend.Impl(b)}}
	res, err := TrainHeads(context.Background(), b, o)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(res.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Info.Config.Standardize {
		t.Fatal("a mobilefacenet run did not standardise its features")
	}
	ext, err := NewExtractor(b, models, MobileFaceNet)
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := CachedStreamFeatures(context.Background(), ext, tr, View{}, cache, "MobileFaceNet_Logits_SpatialSqueeze-train", MobileFaceNet.Dim, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := featureMoments(f.Rows)
	for i, name := range []string{model.FeatureMean, model.FeatureStd} {
		var got []float32
		for _, w := range m.Weights {
			if w.Name == name {
				got = w.F32
			}
		}
		if len(got) != MobileFaceNet.Dim {
			t.Fatalf("%s: %d values in the model file, want %d", name, len(got), MobileFaceNet.Dim)
		}
		for j := range got {
			w := want[i].F32[j]
			if d := got[j] - w; d > 5e-3*max(1, w, -w) || d < -5e-3*max(1, w, -w) { // float16 features and file
				t.Fatalf("%s[%d] = %g, the training features give %g", name, j, got[j], want[i].F32[j])
			}
		}
	}
	p, err := model.NewPredictor(b, m, backend.InferenceImpl(b))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	img, _, err := imageio.DecodeFile(tr[0].Path, imageio.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	probs, err := predict.Probs(p, [][]uint8{predict.Resized(p, img)}, predict.Center)
	if err != nil || len(probs) != 1 || len(probs[0]) != model.JointClasses {
		t.Fatalf("the saved net on an image: %v, %v", probs, err)
	}
}
