// Package models holds the default gender and age models, embedded in the
// binary so that agegender works offline with no set-up.
//
// The files live in builtin/ (see its README for what they were trained on
// and their licence). Loading goes through model.FromFile, so an embedded
// file is verified exactly like one read from disk.
package models

import (
	"fmt"
	"io/fs"

	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/model"
)

// Names of the built-in models.
const (
	Gender = "gender"
	Age    = "age"
	// Joint is the one net for gender and age in years (model.HeadsGenderAge).
	Joint = "gender+age"
)

// Builtin returns the embedded model for task ("gender" or "age").
func Builtin(task string) (*model.Model, error) {
	name := "builtin/" + task + ".agm"
	f, err := builtin.Open(name)
	if err != nil {
		if _, ok := err.(*fs.PathError); ok {
			return nil, fmt.Errorf("models: no built-in %s model in this binary; train one (agegender train) and pass --model", task)
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// Streamed from the binary's data, not copied into memory first.
	return model.Decode("built-in "+task+" model", f, st.Size())
}

// HasBuiltin reports whether the binary holds a built-in model for task
// (Gender, Age or Joint).
func HasBuiltin(task string) bool {
	_, err := fs.Stat(builtin, "builtin/"+task+".agm")
	return err == nil
}

// Load opens the model file at path, or the built-in model for task when
// path is empty, and checks that the model was trained for task.
func Load(path, task string) (*model.Model, error) {
	var m *model.Model
	var err error
	if path == "" {
		m, err = Builtin(task)
	} else {
		m, err = model.Load(path)
	}
	if err != nil {
		return nil, err
	}
	if m.Info.Task.String() != task {
		if m.Info.Task == data.TaskGenderAge {
			return nil, fmt.Errorf("models: %s is a joint gender+age model, not a %s model; use it as one: eval --task both --model FILE, predict/serve --model FILE, agegender.Options.Model", path, task)
		}
		if task == Joint {
			return nil, fmt.Errorf("models: %s is a %s model, not a joint gender+age one; pass it as predict/serve --%s-model FILE with the other task's model as --%s-model (agegender.Options.%sModel)", path, m.Info.Task, m.Info.Task, other(m.Info.Task.String()), titleTask(m.Info.Task.String()))
		}
		return nil, fmt.Errorf("models: %s is a %s model; pass a %s model", path, m.Info.Task, task)
	}
	return m, nil
}

// other is the other single task: "age" for "gender" and back.
func other(task string) string {
	if task == "gender" {
		return "age"
	}
	return "gender"
}

// titleTask is task as the Options field prefix: "Gender" or "Age".
func titleTask(task string) string {
	if task == "gender" {
		return "Gender"
	}
	return "Age"
}
