package pipeline_test

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/data/sources"
	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/internal/datatest"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/modelfile"
	"github.com/agegender/agegender/model/ops"
	"github.com/agegender/agegender/models"
	"github.com/agegender/agegender/pipeline"
	"github.com/agegender/agegender/train"
)

// TestTrainWholeTrunk runs stage 2 with the whole trunk (`train --from M
// --tune all`) for two steps on real UTKFace faces, from the built-in
// joint model: weights far from the last block change, the ReLU6 bounds
// and faceres's own unused heads do not, the trunk moves less than the
// heads (its rate is a tenth of theirs), and the model file written loads
// and predicts.
func TestTrainWholeTrunk(t *testing.T) {
	dir := datatest.SharedDir(t, "utkface/images")
	b, err := backend.Open("go") // ONNX Runtime has no gradient for the trunk's slices
	if err != nil {
		t.Fatal(err)
	}
	start, err := models.Builtin(models.Joint)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	from := filepath.Join(tmp, "stage1.agm")
	if err := start.Save(from, false); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "run")
	d := pipeline.Data{Source: sources.Spec{Kind: "utkface", Dir: dir}, Task: data.TaskGenderAge, Limit: 4}
	res, err := pipeline.Train(context.Background(), b, pipeline.TrainOptions{Data: d,
		Trunk: &pipeline.TrunkOptions{Name: "faceres", From: from, Tune: pipeline.TuneAll},
		Run:   train.Options{Model: model.Config{Seed: 1}, LR: 1e-3, Batch: 2, Epochs: 1, MaxSteps: 2, OutDir: out, Workers: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.ModelPath == "" || len(res.History) != 1 || res.History[0].Step != 2 {
		t.Fatalf("result %+v", res)
	}

	_, ckpt, err := modelfile.Read(filepath.Join(out, train.CheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	before := map[string][]float32{}
	for _, w := range start.Weights {
		before[w.Name] = w.F32
	}
	change := func(name string) float64 {
		for _, w := range ckpt {
			if w.Name != name {
				continue
			}
			var d float64
			for i, v := range w.F32 {
				d = math.Max(d, math.Abs(float64(v-before[name][i])))
			}
			return d
		}
		t.Fatalf("no weight %s in the checkpoint", name)
		return 0
	}
	trunk := "/" + model.Scope + "/" + model.TrunkScope + "/"
	first := change(trunk + "conv1_convolution_merged_input") // the first convolution
	for _, name := range []string{"conv_dw_1_depthwise_kernel", "conv_pw_6_convolution_merged_input", "conv_dw_6_bn_batchnorm_1_mul", "conv_pw_13_convolution_merged_input"} {
		if c := change(trunk + name); c == 0 {
			t.Errorf("trunk weight %s did not change", name)
		}
	}
	if first == 0 {
		t.Error("the trunk's first convolution did not change")
	}
	for _, name := range []string{"conv1_relu_Cast", "conv_pw_6_relu_Cast", "feats_kernel"} {
		if c := change(trunk + name); c != 0 {
			t.Errorf("%s (a ReLU6 bound, or faceres's own head) changed by %g", name, c)
		}
	}
	// Adam moves each weight by about its rate a step: 2 steps at 1e-4
	// for the trunk, 1e-3 for the heads.
	if h := change("/" + model.Scope + "/gender_out/weights"); first > 4e-4 || h < 5e-4 {
		t.Errorf("largest change: trunk's first convolution %g (rate 1e-4), gender head %g (rate 1e-3)", first, h)
	}

	m, err := model.Load(res.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Info.Config; c.Trunk == nil || c.FreezeTrunk || c.Heads != model.HeadsGenderAge || m.Info.Resize != 224 {
		t.Errorf("model config %+v, spec %+v", c, m.Info.Spec)
	}
	var rec map[string]any
	if err := json.Unmarshal(m.Info.Training, &rec); err != nil || rec["trunk_lr_mult"] != pipeline.DefaultTrunkLRMult || !strings.Contains(rec["dataset"].(string), "whole faceres trunk") {
		t.Errorf("training record %v (%v)", rec, err)
	}
	p, err := model.NewPredictor(b, m, ops.Auto)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, err := pipeline.Load(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := imageio.DecodeFile(sources.Paths(dir, s.Test[:1])[0], imageio.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	crop := make([]float32, m.Info.CropLen())
	prep.CenterCropPixels(prep.FromImage(img, m.Info.Spec), m.Info.Spec, crop)
	probs, err := p.Probs(crop, 1)
	if err != nil {
		t.Fatal(err)
	}
	g, years := model.SplitJoint(probs[0])
	age, _, _ := model.AgeEstimate(years)
	if len(g) != 2 || math.Abs(float64(g[0]+g[1])-1) > 1e-4 || age <= 0 || age >= model.AgeBins {
		t.Errorf("prediction: gender %v, age %.1f", g, age)
	}
}
