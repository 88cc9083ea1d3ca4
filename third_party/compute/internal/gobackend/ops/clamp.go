package ops

import (
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/internal/gobackend"
	"github.com/pkg/errors"
)

func init() {
	gobackend.RegisterClamp.Register(Clamp, gobackend.PriorityGeneric)
	gobackend.SetNodeExecutor(compute.OpTypeClamp, gobackend.PriorityGeneric, execClampFloat32) // agegender patch
}

// Clamp returns the element-wise clamping operation.
//
// The values max and min can either be a scalar or have the same shape as x.
//
// agegender patch: float32 x with scalar bounds (ReLU6) is one node, one
// pass over x; upstream (and every other case here) is Max then Min.
func Clamp(f *gobackend.Function, minV, x, maxV compute.Value) (compute.Value, error) {
	if nodes, err := f.VerifyAndCastValues("Clamp", minV, x, maxV); err == nil {
		lo, xn, hi := nodes[0], nodes[1], nodes[2]
		if xn.Shape.DType == dtypes.Float32 && !xn.Shape.IsDynamic() && lo.Shape.IsScalar() && hi.Shape.IsScalar() &&
			lo.Shape.DType == dtypes.Float32 && hi.Shape.DType == dtypes.Float32 {
			node, _ := f.GetOrCreateNode(compute.OpTypeClamp, xn.Shape.Clone(), []*gobackend.Node{lo, xn, hi}, nil)
			return node, nil
		}
	}
	clamped, err := f.Max(minV, x)
	if err != nil {
		return nil, errors.WithMessagef(err, "gobackend.Backend %q: failed Clamp", gobackend.BackendName)
	}
	clamped, err = f.Min(clamped, maxV)
	if err != nil {
		return nil, errors.WithMessagef(err, "gobackend.Backend %q: failed Clamp", gobackend.BackendName)
	}
	return clamped, nil
}

// execClampFloat32 runs the Clamp node of Clamp's fast case (agegender
// patch), in place when x's buffer is owned.
func execClampFloat32(backend *gobackend.Backend, node *gobackend.Node, inputs []*gobackend.Buffer, inputsOwned []bool) (*gobackend.Buffer, error) {
	lo, x, hi := inputs[0].Flat.([]float32)[0], inputs[1], inputs[2].Flat.([]float32)[0]
	output := x
	if inputsOwned[1] {
		inputs[1] = nil
	} else {
		var err error
		if output, err = backend.GetBuffer(x.RawShape); err != nil {
			return nil, err
		}
	}
	clampFloat32(x.Flat.([]float32), output.Flat.([]float32), lo, hi)
	return output, nil
}

// clampFloat32 sets out[i] to in[i] limited to [lo, hi]. It is replaced by
// a SIMD version where the CPU has one (convdepthwise_avx512.go).
var clampFloat32 = func(in, out []float32, lo, hi float32) {
	for i, v := range in {
		if v < lo {
			v = lo
		}
		if v > hi {
			v = hi
		}
		out[i] = v
	}
}
