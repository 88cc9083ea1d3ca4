// Package testmodel makes small models with random weights for tests that
// need a working gender or age predictor but not a trained one (the real,
// built-in models are large and are trained separately).
//
// The weights are the network's deterministic initial values (see
// model.InitialValue), so two calls with the same task give identical
// models and identical predictions.
package testmodel

import (
	"fmt"
	"path/filepath"
	"sync"

	"github.com/agegender/agegender/backend"
	"github.com/agegender/agegender/data"
	"github.com/agegender/agegender/data/prep"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/modelfile"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
)

// Input and Resize are the sizes of the test models: small, so that tests
// run fast on the pure-Go backend.
const (
	Input  = 64
	Resize = 72
	// Temperature divides the logits (see model.Info.Temperature).
	Temperature = 0.05
)

// Info describes the test model for task ("gender" or "age").
func Info(task string) (model.Info, error) {
	var names []string
	switch task {
	case "gender":
		names = []string{"m", "f"}
	case "age":
		names = []string{"0-2", "4-6", "8-12", "15-20", "25-32", "38-43", "48-53", "60-100"}
	default:
		return model.Info{}, fmt.Errorf("testmodel: unknown task %q; use \"gender\" or \"age\"", task)
	}
	return model.Info{
		Config:     model.Config{Net: "origin", Classes: len(names), Input: Input, Seed: 1},
		Task:       map[string]data.Task{"gender": data.TaskGender, "age": data.TaskAge}[task],
		ClassNames: names,
		Spec:       prep.Spec{Resize: Resize, Crop: Input, Mean: [3]float32{128, 128, 128}},
		// A freshly initialised network gives nearly the same output for
		// every input; dividing its logits by a small temperature spreads
		// the probabilities so that tests can tell inputs apart.
		Temperature: Temperature,
	}, nil
}

// New returns a model for task whose weights are the network's initial
// (random, seeded) values. It materialises them by building the network
// once on the pure-Go backend.
func New(task string) (*model.Model, error) {
	info, err := Info(task)
	if err != nil {
		return nil, err
	}
	b, err := backend.Open("go")
	if err != nil {
		return nil, err
	}
	defer b.Finalize()
	store := mlx.NewStore()
	cfg := info.Config
	cfg.Impl = backend.Impl(b)
	exec, err := mlx.NewExec(b, store, func(s *mlx.Scope, x *Node) *Node {
		return model.Logits(s.In(model.Scope), cfg, x)
	})
	if err != nil {
		return nil, err
	}
	in := tensors.FromFlatDataAndDimensions(make([]float32, Input*Input*3), 1, Input, Input, 3)
	res, err := exec.Exec(in)
	if err != nil {
		return nil, fmt.Errorf("testmodel: building the %s network: %w", task, err)
	}
	for _, r := range res {
		r.FinalizeAll()
	}
	m := &model.Model{Info: info}
	for v := range store.IterVariables() {
		val, err := v.Value()
		if err != nil {
			return nil, err
		}
		m.Weights = append(m.Weights, modelfile.Tensor{
			Name:  v.Path(),
			Dims:  val.Shape().Dimensions,
			Store: modelfile.Float32,
			F32:   tensors.MustCopyFlatData[float32](val),
		})
	}
	if len(m.Weights) == 0 {
		return nil, fmt.Errorf("testmodel: building the %s network created no variables", task)
	}
	return m, nil
}

var cache struct {
	sync.Mutex
	models map[string]*model.Model
}

// Files writes the gender and age test models into dir and returns their
// paths. The models are built once per process and cached.
func Files(dir string) (gender, age string, err error) {
	paths := [2]string{}
	for i, task := range []string{"gender", "age"} {
		cache.Lock()
		m := cache.models[task]
		if m == nil {
			m, err = New(task)
			if err != nil {
				cache.Unlock()
				return "", "", err
			}
			if cache.models == nil {
				cache.models = map[string]*model.Model{}
			}
			cache.models[task] = m
		}
		cache.Unlock()
		paths[i] = filepath.Join(dir, task+".agm")
		if err := m.Save(paths[i], false); err != nil {
			return "", "", err
		}
	}
	return paths[0], paths[1], nil
}
