package model_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/internal/datatest"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/modelfile"
)

// TestJointTaskMatchesHeads: the joint task's outputs are the joint
// heads' (data cannot import model, so the counts are kept twice).
func TestJointTaskMatchesHeads(t *testing.T) {
	if data.TaskGenderAge.Classes() != model.JointClasses || data.AgeYears != model.AgeBins || data.TaskGenderAge.String() != string(model.HeadsGenderAge) {
		t.Errorf("data.TaskGenderAge: %d classes, %d years, %q; model: %d, %d, %q", data.TaskGenderAge.Classes(), data.AgeYears,
			data.TaskGenderAge, model.JointClasses, model.AgeBins, model.HeadsGenderAge)
	}
}

// TestInfoFormat: the preprocessing spec is stored at the top level of the
// metadata, as the fields of files written before it existed; a file
// without "crop" takes it from the network's input; the built-in models
// (old files) load with their spec.
func TestInfoFormat(t *testing.T) {
	w := []modelfile.Tensor{{Name: "/net/fc8/biases", Dims: []int{2}, F32: []float32{0, 0}}}
	write := func(payload string) (*model.Model, error) {
		return model.FromFile("test.agm", modelfile.Meta{Kind: "model", Payload: json.RawMessage(payload)}, w)
	}
	old := `{"config":{"net":"origin","classes":2,"input":64,"seed":1},"task":"gender","class_names":["m","f"],"resize":72,"mean":[1,2,3]}`
	m, err := write(old)
	if err != nil {
		t.Fatal(err)
	}
	want := prep.Spec{Resize: 72, Crop: 64, Mean: [3]float32{1, 2, 3}}
	if m.Info.Spec != want || m.Info.Task != data.TaskGender {
		t.Errorf("old-format info: task %v, spec %+v; want %+v", m.Info.Task, m.Info.Spec, want)
	}
	js, err := json.Marshal(m.Info)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"task":"gender"`, `"resize":72`, `"crop":64`, `"mean":[1,2,3]`} {
		if !strings.Contains(string(js), field) {
			t.Errorf("info JSON lacks %s: %s", field, js)
		}
	}
	if _, err := write(strings.Replace(old, `"resize":72`, `"resize":72,"crop":60`, 1)); err == nil || !strings.Contains(err.Error(), "crop 60") {
		t.Errorf("crop differing from the input: error %v", err)
	}
	if _, err := write(strings.Replace(old, `"task":"gender"`, `"task":"race"`, 1)); err == nil || !strings.Contains(err.Error(), "race") {
		t.Errorf("unknown task: error %v", err)
	}
	for _, name := range []string{"gender", "age", "gender+age"} {
		m, err := model.Load(filepath.Join(datatest.RepoRoot(), "models", "builtin", name+".agm"))
		if err != nil {
			t.Fatal(err)
		}
		if m.Info.Task.String() != name || m.Info.Crop != m.Info.Config.Input || m.Info.Resize < m.Info.Crop {
			t.Errorf("built-in %s: task %v, spec %+v, input %d", name, m.Info.Task, m.Info.Spec, m.Info.Config.Input)
		}
	}
}
