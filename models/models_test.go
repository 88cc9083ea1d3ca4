package models

import (
	"path/filepath"
	"testing"
)

func TestBuiltinModelsLoad(t *testing.T) {
	for _, task := range []string{Gender, Age} {
		m, err := Builtin(task)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{Gender: 2, Age: 8}[task]
		if m.Info.Task.String() != task || m.Info.Config.Classes != want || len(m.Info.ClassNames) != want || m.NumParams() < 1_000_000 {
			t.Errorf("%s: info %+v, %d params", task, m.Info, m.NumParams())
		}
	}
	if _, err := Builtin("race"); err == nil {
		t.Error("a built-in race model was found")
	}
	if _, err := Load("", "gender"); err != nil {
		t.Error(err)
	}
	// A model file for the wrong task is refused.
	m, _ := Builtin(Age)
	p := filepath.Join(t.TempDir(), "age.agm")
	if err := m.Save(p, true); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p, "gender"); err == nil {
		t.Error("an age model was accepted as a gender model")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.agm"), "age"); err == nil {
		t.Error("a missing file loaded")
	}
}
