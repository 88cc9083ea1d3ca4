package model_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/sources"
	"github.com/agegender/agegender/internal/datatest"
	"github.com/agegender/agegender/interop/tfjs"
	"github.com/agegender/agegender/interop/vggface/vggfacetest"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/ops"
	"github.com/agegender/agegender/pipeline"
	"github.com/agegender/agegender/train"
)

// TestTrainVGGFaceTrunk trains joint heads on a VGG-Face trunk (a
// synthetic net of its shape: the real one is not in ../shared) through
// the normal trainer for a few steps on real UTKFace faces, then stage 2
// (fc6 and fc7 tuned on the cached pool5) from that model, and checks that
// each run's model file loads and predicts.
func TestTrainVGGFaceTrunk(t *testing.T) {
	dir := datatest.SharedDir(t, "utkface/images")
	b, err := backend.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	models := t.TempDir()
	if _, err := vggfacetest.Write(models, vggfacetest.Tiny, true); err != nil {
		t.Fatal(err)
	}
	d := pipeline.Data{Source: sources.Spec{Kind: "utkface", Dir: dir}, Task: data.TaskGenderAge, Limit: 8}
	stage1 := filepath.Join(t.TempDir(), "stage1")
	res, err := pipeline.Train(context.Background(), b, pipeline.TrainOptions{Data: d,
		Trunk: &pipeline.TrunkOptions{Name: model.VGGFace, ModelsDir: models, Mirror: true},
		Run:   train.Options{Model: model.Config{Seed: 1}, LR: 1e-3, Batch: 4, Epochs: 2, OutDir: stage1, Workers: 2}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stage 1: %d epochs, best validation %.3f, model %s", len(res.History), res.BestVal, res.ModelPath)
	check := func(path string) *model.Model {
		t.Helper()
		m, err := model.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg := m.Info.Config
		if cfg.Trunk == nil || cfg.Trunk.Name != model.VGGFace || cfg.Heads != model.HeadsGenderAge || cfg.Input != vggfacetest.Tiny.Side {
			t.Fatalf("%s: config %+v", path, cfg)
		}
		p, err := model.NewPredictor(b, m, ops.Portable)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		probs, err := p.Probs(make([]float32, 2*cfg.Input*cfg.Input*3), 2)
		if err != nil || len(probs) != 2 || len(probs[0]) != model.JointClasses {
			t.Fatalf("%s: predictions %d (%v)", path, len(probs), err)
		}
		return m
	}
	m1 := check(res.ModelPath)
	weight := func(m *model.Model, name string) []float32 {
		full := "/" + model.Scope + "/" + model.TrunkScope + "/" + tfjs.VariableName(name)
		for _, w := range m.Weights {
			if w.Name == full {
				return w.F32
			}
		}
		t.Fatalf("no weight %s", full)
		return nil
	}
	res2, err := pipeline.Train(context.Background(), b, pipeline.TrainOptions{Data: d,
		Trunk: &pipeline.TrunkOptions{Name: model.VGGFace, ModelsDir: models, From: res.ModelPath, Tune: pipeline.TuneLast},
		Run:   train.Options{Model: model.Config{Seed: 1}, LR: 1e-4, Batch: 4, Epochs: 1, OutDir: filepath.Join(t.TempDir(), "stage2"), Workers: 2}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stage 2: best validation %.3f, model %s", res2.BestVal, res2.ModelPath)
	m2 := check(res2.ModelPath)
	res3, err := pipeline.Train(context.Background(), b, pipeline.TrainOptions{Data: d,
		Trunk: &pipeline.TrunkOptions{Name: model.VGGFace, ModelsDir: models, From: res.ModelPath, Tune: pipeline.TuneAll},
		Run:   train.Options{Model: model.Config{Seed: 1}, LR: 1e-4, Batch: 4, Epochs: 1, MaxSteps: 2, OutDir: filepath.Join(t.TempDir(), "all"), Workers: 2}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("whole trunk: best validation %.3f, model %s", res3.BestVal, res3.ModelPath)
	m3 := check(res3.ModelPath)
	if slices.Equal(weight(m1, "conv1_1/kernel"), weight(m3, "conv1_1/kernel")) {
		t.Error("tuning the whole trunk left conv1_1 as it was")
	}
	// Stage 2 trains fc6 and fc7 (Trunk.Tune); the convolutions stay.
	for _, c := range []struct {
		name    string
		changed bool
	}{{"fc6/kernel", true}, {"fc7/bias", true}, {"conv5_3/kernel", false}, {"conv1_1/bias", false}} {
		if got := !slices.Equal(weight(m1, c.name), weight(m2, c.name)); got != c.changed {
			t.Errorf("stage 2 changed %s: %t, want %t", c.name, got, c.changed)
		}
	}
}
