package pipeline_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/data/sources"
	"github.com/agegender/agegender/internal/datatest"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/pipeline"
	"github.com/agegender/agegender/train"
)

// TestTrainEval trains a tiny origin net for age on 24 real UTKFace faces
// per split, then evaluates it with calibration: the path of `agegender
// train` and `agegender eval`.
func TestTrainEval(t *testing.T) {
	dir := datatest.SharedDir(t, "utkface/images")
	b, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	d := pipeline.Data{Source: sources.Spec{Kind: "utkface", Dir: dir}, Task: data.TaskAge, Limit: 24}
	res, err := pipeline.Train(context.Background(), b, pipeline.TrainOptions{Data: d, Augment: prep.DefaultAugment(),
		Run: train.Options{Model: model.Config{Net: "origin", Input: 48, Seed: 1}, Batch: 8, Epochs: 1, OutDir: out, Workers: 2}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(res.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	if m.Info.Task != data.TaskAge || m.Info.Resize != prep.ResizeFor(48) || m.Info.Mean == [3]float32{} {
		t.Errorf("model info: task %q, resize %d, mean %v", m.Info.Task, m.Info.Resize, m.Info.Mean)
	}
	png, cal := filepath.Join(out, "confusion.png"), filepath.Join(out, "cal.agm")
	r, err := pipeline.Eval(context.Background(), b, pipeline.EvalOptions{Data: d, Model: res.ModelPath, Split: "test", Confusion: png, Calibrate: cal})
	if err != nil {
		t.Fatal(err)
	}
	if r.Center.N != 24 || r.TenCrop.N != 24 || r.Center.OneOff < r.Center.Accuracy || len(r.Groups) == 0 || r.Temperature <= 0 {
		t.Errorf("report: centre %+v, 10-crop %+v, %d groups, temperature %g", r.Center, r.TenCrop, len(r.Groups), r.Temperature)
	}
	for _, f := range []string{png, cal, filepath.Join(out, "cal_reliability_before.png")} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	var text strings.Builder
	r.WriteText(&text)
	for _, want := range []string{"age (center)", "age (10-crop)", "1-off", "calibration: temperature", "confusion matrix saved to " + png} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

// TestEvalRejects: an unknown split and a joint evaluation through Eval
// fail before any data is read.
func TestEvalRejects(t *testing.T) {
	b, err := backend.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	d := pipeline.Data{Source: sources.Spec{Kind: "utkface", Dir: t.TempDir()}}
	if _, err := pipeline.Eval(context.Background(), b, pipeline.EvalOptions{Data: d, Split: "train"}); err == nil || !strings.Contains(err.Error(), "split") {
		t.Errorf("split train: error %v", err)
	}
	d.Task = data.TaskGenderAge
	if _, err := pipeline.Eval(context.Background(), b, pipeline.EvalOptions{Data: d, Split: "test"}); err == nil || !strings.Contains(err.Error(), "EvalJoint") {
		t.Errorf("joint through Eval: error %v", err)
	}
	if _, err := pipeline.Train(context.Background(), b, pipeline.TrainOptions{Data: d}); err == nil || !strings.Contains(err.Error(), "trunk") {
		t.Errorf("joint origin training: error %v", err)
	}
}

// TestEvalJoint evaluates the built-in joint model on 8 real test faces,
// with calibration.
func TestEvalJoint(t *testing.T) {
	dir := datatest.SharedDir(t, "utkface/images")
	b, err := backend.Open("")
	if err != nil {
		t.Fatal(err)
	}
	cal := filepath.Join(t.TempDir(), "cal.agm")
	d := pipeline.Data{Source: sources.Spec{Kind: "utkface", Dir: dir}, Task: data.TaskGenderAge, Limit: 8}
	r, err := pipeline.EvalJoint(context.Background(), b, pipeline.EvalOptions{Data: d, Split: "test", Calibrate: cal})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Center
	if c.Gender.N != 8 || c.Age.N != 8 || c.Years.MAE <= 0 || c.GenderECECalibrated <= 0 || r.TenCrop.Gender.N != 8 {
		t.Errorf("report %+v", r)
	}
	if _, err := model.Load(cal); err != nil {
		t.Error(err)
	}
	var text strings.Builder
	r.WriteText(&text)
	if !strings.Contains(text.String(), "MAE") || !strings.Contains(text.String(), "after temperature scaling") {
		t.Errorf("text report:\n%s", text.String())
	}
}
