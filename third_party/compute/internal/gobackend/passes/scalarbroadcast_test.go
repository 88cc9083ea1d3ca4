package passes_test

// agegender patch: a broadcast scalar operand of a binary op is fused
// (ReLU's Max(x, zeros)).

import (
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/compute/support/testutil"
)

func TestImplicitBroadcastFusionScalar(t *testing.T) {
	backend := compute.MustNew()
	defer backend.Finalize()
	builder := backend.Builder("ScalarFusion").(*gobackend.Builder)
	main := builder.Main().(*gobackend.Function)
	x, _ := main.Parameter("x", shapes.Make(dtypes.Float32, 2, 3), nil)
	// A parameter, not a constant, which constant folding would broadcast.
	zero, _ := main.Parameter("zero", shapes.Make(dtypes.Float32), nil)
	zeros, _ := main.BroadcastInDim(zero, shapes.Make(dtypes.Float32, 2, 3), nil)
	relu, _ := main.Max(x, zeros)
	_ = main.Return([]compute.Value{relu}, nil)
	exec, err := builder.Compile()
	if err != nil {
		t.Fatalf("Failed to compile: %+v", err)
	}
	node := relu.(*gobackend.Node)
	if node.Inputs[1].OpType == compute.OpTypeBroadcastInDim || !node.Shape.Equal(shapes.Make(dtypes.Float32, 2, 3)) {
		t.Errorf("Max's scalar operand was not fused: %s, shape %s", node.Inputs[1].OpType, node.Shape)
	}
	xBuf, _ := backend.BufferFromFlatData(0, []float32{-1, 2, -3, 4, 0, -0.5}, shapes.Make(dtypes.Float32, 2, 3))
	zeroBuf, _ := backend.BufferFromFlatData(0, []float32{0}, shapes.Make(dtypes.Float32))
	outputs, err := exec.Execute([]compute.Buffer{xBuf, zeroBuf}, nil, 0)
	if err != nil {
		t.Fatalf("Execute failed: %+v", err)
	}
	if ok, diff := testutil.IsEqual([]float32{0, 2, 0, 4, 0, 0}, outputs[0].(*gobackend.Buffer).Flat.([]float32)); !ok {
		t.Errorf("Incorrect result:\n%s", diff)
	}
}
