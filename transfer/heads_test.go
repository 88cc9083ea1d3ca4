package transfer

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/imageio"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/modelfile"
	"github.com/agegender/agegender/model/ops"
	"github.com/agegender/agegender/train"
)

// TestTrainHeadsJoint trains a joint gender + age-in-years net (faceres
// trunk, frozen) on 24 real UTKFace faces through train.Run, then checks
// that the model file holds the whole network and predicts on images like
// any model, that the feature cache is reused, and that bad files and
// mismatched resumes are refused with clear errors.
func TestTrainHeadsJoint(t *testing.T) {
	models, tr, val, b := headsSetup(t)
	out, cache := t.TempDir(), t.TempDir()
	o := HeadsOptions{ModelsDir: models, Trunk: "faceres", Heads: model.HeadsGenderAge, Train: tr, Val: val,
		CacheDir: cache, Mirror: true,
		Run: train.Options{Model: model.Config{Seed: 1, Hidden: 32}, LR: 1e-3, Batch: 8, Epochs: 3, OutDir: out, Impl: backend.Impl(b)}}
	res, err := TrainHeads(context.Background(), b, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.History) != 3 || !(res.History[2].TrainLoss < res.History[0].TrainLoss) {
		t.Errorf("training loss did not fall: %+v", res.History)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "*.f16"))
	if len(files) != 3 { // train, train mirrored, val
		t.Errorf("feature cache holds %v; want train, train-mirror and val", files)
	}

	m, err := model.Load(res.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	if m.Info.Task != data.TaskGenderAge || m.Info.Config.Trunk == nil || m.NumParams() < 3_000_000 {
		t.Fatalf("model file: task %q, trunk %v, %d weights; want the whole joint net", m.Info.Task, m.Info.Config.Trunk != nil, m.NumParams())
	}
	p, err := model.NewPredictor(b, m, ops.Auto)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cfg := prep.Spec{Resize: m.Info.Resize, Crop: m.Info.Config.Input}
	var buf []float32
	for _, s := range val[:2] {
		img, _, err := imageio.DecodeFile(s.Path, imageio.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		crop := make([]float32, cfg.CropLen())
		prep.CenterCropPixels(prep.FromImage(img, cfg), cfg, crop)
		buf = append(buf, crop...)
	}
	probs, err := p.Probs(buf, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range probs {
		if len(pr) != model.JointClasses {
			t.Fatalf("%d outputs, want %d", len(pr), model.JointClasses)
		}
		g, years := model.SplitJoint(pr)
		var sg, sy float32
		for _, v := range g {
			sg += v
		}
		for _, v := range years {
			sy += v
		}
		// Each head is a softmax of its own: both sum to 1 before splitting.
		if math.Abs(float64(sg-1)) > 1e-4 || math.Abs(float64(sy-1)) > 1e-4 || math.Abs(float64(pr[0]+pr[1]-1)) > 1e-4 {
			t.Errorf("head probabilities do not sum to 1: gender %v, years %v", sg, sy)
		}
		mean, std, _ := model.AgeEstimate(years)
		if mean < 0 || mean > 100 || std <= 0 {
			t.Errorf("age estimate %.1f ± %.1f years", mean, std)
		}
	}

	// Stage 2: from the stage-1 model, the last block trains with the
	// heads on cached cut activations; the rest of the trunk stays put.
	o2 := o
	o2.From, o2.Mirror = res.ModelPath, false
	o2.Run.OutDir, o2.Run.Epochs, o2.Run.LR = t.TempDir(), 1, 1e-4
	res2, err := TrainHeads(context.Background(), b, o2)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := model.Load(res2.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	moved := func(name string) bool {
		a, b := weight(t, m, name), weight(t, m2, name)
		for i := range a {
			if a[i] != b[i] {
				return true
			}
		}
		return false
	}
	if !moved("conv_pw_13_convolution_merged_input") || moved("conv_pw_12_convolution_merged_input") {
		t.Errorf("stage 2: last block moved %v (want true), block 12 moved %v (want false)",
			moved("conv_pw_13_convolution_merged_input"), moved("conv_pw_12_convolution_merged_input"))
	}

	// A second run with other heads in a fresh folder reads the cache.
	o.Run.OutDir, o.Run.Epochs = t.TempDir(), 1
	o.Heads, o.Task = model.HeadsSingle, data.TaskGender
	if _, err := TrainHeads(context.Background(), b, o); err != nil {
		t.Fatal(err)
	}
	files2, _ := filepath.Glob(filepath.Join(cache, "*.f16"))
	if len(files2) != len(files)+2 { // + the stage-2 cut activations of train and val

		t.Errorf("the second run wrote new cache files: %v", files2)
	}

	// Resuming a checkpoint of another head layout is refused.
	o.Run.OutDir = out
	o.Run.Epochs = 4
	if _, err := TrainHeads(context.Background(), b, o); err == nil || !strings.Contains(err.Error(), "other options") {
		t.Errorf("resuming a joint checkpoint as a gender net: err = %v; want a refusal naming the other options", err)
	}

	// A model file missing a trunk tensor is refused, naming the tensor.
	meta, ts, err := modelfile.Read(res.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	var kept []modelfile.Tensor
	dropped := ""
	for _, x := range ts {
		if dropped == "" && strings.Contains(x.Name, "/"+model.TrunkScope+"/conv_pw_5") {
			dropped = x.Name
			continue
		}
		kept = append(kept, x)
	}
	bad := filepath.Join(t.TempDir(), "bad.agm")
	if err := modelfile.Write(bad, meta, kept); err != nil {
		t.Fatal(err)
	}
	if _, err := model.Load(bad); err == nil || !strings.Contains(err.Error(), dropped) {
		t.Errorf("model without %s: err = %v; want it named", dropped, err)
	}
	// A truncated file is refused by the model file format.
	raw, _ := os.ReadFile(res.ModelPath)
	if err := os.WriteFile(bad, raw[:len(raw)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := model.Load(bad); err == nil {
		t.Error("a truncated model file loaded")
	}
}

// TestImportTrunkErrors checks the errors of an unknown trunk and of a
// missing trunk file.
func TestImportTrunkErrors(t *testing.T) {
	if _, _, _, err := model.ImportTrunk(t.TempDir(), "vgg-face"); err == nil || !strings.Contains(err.Error(), "faceres") {
		t.Errorf("unknown trunk: err = %v; want the list of known trunks", err)
	}
	if _, _, _, err := model.ImportTrunk(t.TempDir(), "faceres"); err == nil || !strings.Contains(err.Error(), "faceres.json") {
		t.Errorf("missing file: err = %v; want the file named", err)
	}
}

// weight returns the trunk weight whose variable name ends in suffix.
func weight(t *testing.T, m *model.Model, suffix string) []float32 {
	t.Helper()
	for _, w := range m.Weights {
		if strings.HasSuffix(w.Name, "/"+suffix) {
			return w.F32
		}
	}
	t.Fatalf("no weight %s", suffix)
	return nil
}
