package train

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/agegender/agegender/data"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	_ "github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
	"github.com/gomlx/gomlx/core/tensors"
)

// TestCosineSchedule checks the learning-rate factor at every step of a
// 10-step run with 3 warm-up steps against the formula of CosineLR.
func TestCosineSchedule(t *testing.T) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	const warmup, total = 3, 10
	for _, s := range []Schedule{ConstantLR, CosineLR} {
		for step := int64(0); step < total; step++ {
			got, err := ExecOnce(b, func(x *Node) *Node { return lrFactor(s, x, warmup, total, dtypes.Float32) }, step)
			if err != nil {
				t.Fatal(err)
			}
			f := float64(tensors.MustCopyFlatData[float32](got)[0])
			want := 1.0
			if s == CosineLR && step < warmup {
				want = float64(step+1) / warmup
			} else if s == CosineLR {
				want = (1 + math.Cos(math.Pi*float64(step-warmup)/(total-warmup))) / 2
			}
			if math.Abs(f-want) > 1e-6 {
				t.Errorf("%v step %d: factor %g, want %g", s, step, f, want)
			}
		}
	}
}

// TestOptionsJSON: typed task, optimizer and schedule keep the JSON of the
// checkpoints written when they were strings, and bad names are refused.
func TestOptionsJSON(t *testing.T) {
	old := `{"model":{"net":"origin","classes":2,"input":48,"seed":5},"task":"gender","class_names":["m","f"],"resize":54,"mean":[1,2,3],"optimizer":"sgd","lr":0.001,"batch":8,"epochs":2,"checkpoint_every":1,"dataset":""}`
	var o Options
	if err := json.Unmarshal([]byte(old), &o); err != nil {
		t.Fatal(err)
	}
	if o.Task != data.TaskGender || o.Optimizer != SGD || o.Resize != 54 || o.Mean != [3]float32{1, 2, 3} || o.Schedule != ConstantLR {
		t.Errorf("old options read as %+v", o)
	}
	o.Schedule, o.Warmup = CosineLR, 5
	js, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var back Options
	if err := json.Unmarshal(js, &back); err != nil || back.Schedule != CosineLR || back.Warmup != 5 || back.Optimizer != SGD {
		t.Errorf("round trip of %s: %+v, %v", js, back, err)
	}
	for _, bad := range []string{`{"optimizer":"rmsprop"}`, `{"schedule":"step"}`, `{"task":"race"}`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	for _, name := range []string{"adam", "sgd"} {
		if o, err := ParseOptimizer(name); err != nil || o.String() != name {
			t.Errorf("ParseOptimizer(%q) = %v, %v", name, o, err)
		}
	}
}
