package transfer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
)

// TestPipeline runs the whole pipeline on 64 real UTKFace images (48 train,
// 16 test): MobileFaceNet features, the float16 cache, head training, test
// evaluation. It checks that the training loss falls and that a second run
// reads the features back from the cache.
func TestPipeline(t *testing.T) {
	shared := sharedDir(t)
	images, models := ResolveImages(shared)
	b, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Backend: b, ModelsDir: models, ImagesDir: images, CacheDir: t.TempDir(),
		Task: data.TaskGender, MaxTrain: 48, MaxTest: 16, Epochs: 15, Batch: 16, Seed: 1}
	res, err := Run(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.ExtractedImages == 0 {
		t.Error("no features were extracted")
	}
	if n := len(res.EpochLoss); n != 15 || !(mean(res.EpochLoss[n-3:]) < 0.8*mean(res.EpochLoss[:3])) {
		t.Errorf("training loss did not fall: %v", res.EpochLoss)
	}
	for _, split := range []string{"train", "val"} {
		if m, _ := filepath.Glob(filepath.Join(opts.CacheDir, "mobilefacenet-*-"+split+".*.f16")); len(m) != 1 {
			t.Errorf("feature cache of the %s split not written: %v", split, m)
		}
	}
	opts.Task = data.TaskAge
	res2, err := Run(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("age: %+v", res2)
	if res2.ExtractedImages != 0 {
		t.Errorf("second run extracted %d images; want all features from the cache", res2.ExtractedImages)
	}
}

// TestFineTune runs both stages on 48 real faces: the head on frozen
// MobileFaceNet features, then the head with MobileFaceNet's last block on
// its cached Cut activations. The block's weights must move and the
// second stage's loss fall. (TestCutInput in interop/tfjs checks that the
// block computed from the cut activations equals the whole network's.)
func TestFineTune(t *testing.T) {
	shared := sharedDir(t)
	images, models := ResolveImages(shared)
	b, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Backend: b, ModelsDir: models, ImagesDir: images, FineTune: true, CacheDir: t.TempDir(), OutDir: t.TempDir(),
		Task: data.TaskGender, MaxTrain: 48, MaxTest: 16, Epochs: 10, Batch: 16, Seed: 1}
	res, err := Run(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if n := len(res.EpochLoss); n != 10 || !(mean(res.EpochLoss[n-3:]) < mean(res.EpochLoss[:3])) {
		t.Errorf("stage-2 training loss did not fall: %v", res.EpochLoss)
	}
	if res.TunedWeights == 0 || !(res.BlockChange > 1e-5) {
		t.Errorf("last block not trained: %d weights, largest relative change %g", res.TunedWeights, res.BlockChange)
	}
	if _, err := os.Stat(res.ModelPath); err != nil {
		t.Errorf("no model file kept in OutDir: %v", err)
	}
	_, err = Run(Options{Backend: b, ModelsDir: models, ImagesDir: images, Backbone: Backbone{Name: "nosuchnet"},
		Task: data.TaskGender, MaxTrain: 4, MaxTest: 4, Epochs: 1})
	if err == nil || !strings.Contains(err.Error(), "faceres") {
		t.Errorf("unknown backbone: error %v, want one listing the known trunks", err)
	}
}

func TestCacheRoundTripAndHostile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.f16")
	f := Features{Index: []int{0, 2}, Rows: [][]float32{{1, 0.5, -2}, {0.25, 3, 0}}}
	if err := WriteCache(p, 42, 3, f); err != nil {
		t.Fatal(err)
	}
	g, err := ReadCache(p, 42, 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	if g.Index[1] != 2 || g.Rows[1][1] != 3 || g.Rows[0][2] != -2 {
		t.Errorf("round trip gave %+v", g)
	}
	if _, err := ReadCache(p, 43, 3, 3); !errors.Is(err, errStale) {
		t.Errorf("stale key: %v, want errStale", err)
	}
	if _, err := ReadCache(p, 43, 3, 1); !errors.Is(err, errStale) {
		t.Errorf("the cache of more samples than this run's: %v, want errStale (recomputed, not an error)", err)
	}
	if _, err := ReadCache(p, 42, 3, 2); err == nil {
		t.Error("index beyond the sample count accepted")
	}
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[:len(b)-1], 0o644)
	if _, err := ReadCache(p, 42, 3, 3); err == nil {
		t.Error("truncated file accepted")
	}
}

// TestBaseline runs faceres's own gender and age heads on 16 UTKFace test
// images.
func TestBaseline(t *testing.T) {
	shared := sharedDir(t)
	images, models := ResolveImages(shared)
	b, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Baseline(b, models, images, 16, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("faceres zero-training baseline: %+v", r)
	if r.N != 16 || r.GenderAccuracy < 0.5 {
		t.Errorf("baseline %+v: want 16 images and gender accuracy above chance", r)
	}
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
