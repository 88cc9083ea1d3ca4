package train

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/agegender/agegender/eval/plot"
	"github.com/agegender/agegender/model"
	"github.com/agegender/agegender/model/modelfile"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	mlx "github.com/gomlx/gomlx/ml/model"
)

func info(o Options, hist []Epoch) model.Info {
	rec := map[string]any{
		"dataset": o.Dataset, "optimizer": o.Optimizer, "lr": o.LR, "batch": o.Batch,
		"epochs": len(hist), "history": hist,
	}
	if o.Schedule != ConstantLR {
		rec["schedule"], rec["warmup"] = o.Schedule, o.Warmup
	}
	if o.TrunkLRMult != 0 {
		rec["trunk_lr_mult"] = o.TrunkLRMult
	}
	if o.MaxSteps != 0 {
		rec["max_steps"] = o.MaxSteps
	}
	training, _ := json.Marshal(rec)
	return model.Info{Config: o.Model, Task: o.Task, ClassNames: o.ClassNames, Spec: o.Spec, Training: training}
}

// tensorsOf converts the store's variables to file tensors; only those
// under prefix when prefix is non-empty.
func tensorsOf(store *mlx.Store, prefix string) ([]modelfile.Tensor, []string, error) {
	var out []modelfile.Tensor
	var frozen []string
	for v := range store.IterVariables() {
		p := v.Path()
		if prefix != "" && !strings.HasPrefix(p, prefix) {
			continue
		}
		if strings.HasPrefix(p, "/metrics/") {
			// Running metrics are named with a fresh UUID per process, so
			// they cannot be restored; after a resume the epoch's training
			// accuracy covers the steps since the resume.
			continue
		}
		val, err := v.Value()
		if err != nil {
			return nil, nil, err
		}
		t := modelfile.Tensor{Name: p, Dims: val.Shape().Dimensions}
		switch val.DType() {
		case dtypes.Float32:
			t.Store, t.F32 = modelfile.Float32, tensors.MustCopyFlatData[float32](val)
		case dtypes.Int64:
			t.Store, t.I64 = modelfile.Int64, tensors.MustCopyFlatData[int64](val)
		case dtypes.Uint64:
			t.Store, t.U64 = modelfile.Uint64, tensors.MustCopyFlatData[uint64](val)
		case dtypes.Int32:
			t.Store, t.I32 = modelfile.Int32, tensors.MustCopyFlatData[int32](val)
		default:
			return nil, nil, fmt.Errorf("train: variable %s has unsupported dtype %s", p, val.DType())
		}
		if t.Dims == nil {
			t.Dims = []int{}
		}
		out = append(out, t)
		if !v.Trainable {
			frozen = append(frozen, p)
		}
	}
	return out, frozen, nil
}

func saveModel(path string, store *mlx.Store, st state) error {
	ts, _, err := tensorsOf(store, "/"+model.Scope+"/")
	if err != nil {
		return err
	}
	m := &model.Model{Info: info(st.Options, st.History), Weights: ts}
	return m.Save(path, true)
}

func saveCheckpoint(path string, store *mlx.Store, st state) error {
	ts, frozen, err := tensorsOf(store, "")
	if err != nil {
		return err
	}
	st.Frozen = frozen
	payload, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return modelfile.Write(path, modelfile.Meta{Kind: "checkpoint", Payload: payload}, ts)
}

// restore loads a checkpoint into an empty store, after checking that it
// belongs to a run with the same options.
func restore(path string, store *mlx.Store, st *state, opts Options) error {
	meta, ts, err := modelfile.Read(path)
	if err != nil {
		return fmt.Errorf("train: cannot resume: %w (delete %s to start over)", err, path)
	}
	if meta.Kind != "checkpoint" {
		return fmt.Errorf("train: %s is a %q file, not a checkpoint", path, meta.Kind)
	}
	var saved state
	if err := json.Unmarshal(meta.Payload, &saved); err != nil {
		return fmt.Errorf("train: %s: %v", path, err)
	}
	a, b := saved.Options, opts
	if !a.Model.Same(b.Model) || a.Task != b.Task || a.Optimizer != b.Optimizer || a.LR != b.LR || a.Batch != b.Batch ||
		a.Resize != b.Resize || a.Schedule != b.Schedule || a.Warmup != b.Warmup || a.Dataset != b.Dataset ||
		a.TrunkLRMult != b.TrunkLRMult || a.MaxSteps != b.MaxSteps {
		return fmt.Errorf("train: %s was written by a run with other options (%s %s input %d, %s lr %g batch %d, data %q); use another output directory or delete it",
			path, a.Model.Net, a.Task, a.Model.Input, a.Optimizer, a.LR, a.Batch, a.Dataset)
	}
	frozen := map[string]bool{}
	for _, f := range saved.Frozen {
		frozen[f] = true
	}
	for _, t := range ts {
		var val *tensors.Tensor
		switch t.Store {
		case modelfile.Float32, modelfile.Float16:
			val = tensors.FromFlatDataAndDimensions(t.F32, t.Dims...)
		case modelfile.Int64:
			val = tensors.FromFlatDataAndDimensions(t.I64, t.Dims...)
		case modelfile.Uint64:
			val = tensors.FromFlatDataAndDimensions(t.U64, t.Dims...)
		case modelfile.Int32:
			val = tensors.FromFlatDataAndDimensions(t.I32, t.Dims...)
		}
		v := store.GetVariable(t.Name)
		if v != nil {
			if err := v.SetValue(val); err != nil {
				return err
			}
		} else if v, err = store.CreateVariable(t.Name, val); err != nil {
			return fmt.Errorf("train: restoring %s: %w", t.Name, err)
		}
		v.SetTrainable(!frozen[t.Name])
	}
	saved.Options = opts
	*st = saved
	return nil
}

func saveCurves(path string, hist []Epoch) error {
	var x, tl, ta, va []float64
	for _, e := range hist {
		x = append(x, float64(e.Epoch))
		tl = append(tl, e.TrainLoss)
		ta = append(ta, e.TrainAcc)
		va = append(va, e.ValAcc)
	}
	return plot.SaveCurvesPNG(path, "training curves", "epoch", "loss / accuracy",
		plot.Curve{Name: "train loss", X: x, Y: tl},
		plot.Curve{Name: "train accuracy", X: x, Y: ta},
		plot.Curve{Name: "validation accuracy", X: x, Y: va})
}

// initVariables creates the variables of opts.Init in a fresh store. A
// pretrained trunk's weights start frozen (not trainable): the trunk's
// graph makes those it trains trainable when it is built.
func initVariables(store *mlx.Store, opts Options) error {
	trunk := "/" + model.Scope + "/" + model.TrunkScope + "/"
	for _, t := range opts.Init {
		if t.F32 == nil {
			return fmt.Errorf("train: initial value %s is not float32", t.Name)
		}
		v, err := store.CreateVariable(t.Name, tensors.FromFlatDataAndDimensions(t.F32, t.Dims...))
		if err != nil {
			return fmt.Errorf("train: initial value %s: %w", t.Name, err)
		}
		if strings.HasPrefix(t.Name, trunk) {
			v.SetTrainable(false)
		}
	}
	return nil
}
