// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

// agegender patch: SIMD paths for float32 Add and Max (biases, residual
// sums, ReLU as Max(x, 0), max pools), which the generated code runs one
// value at a time. They are set where the CPU has SIMD
// (binary_avx512.go) and report false for the layouts they do not cover,
// which then take the generic loops.

import (
	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/shapes"
)

// binaryFloat32 computes out = op(lhs, rhs) and reports true when it
// handles the operands' shapes.
type binaryFloat32 func(lhs, rhs, out []float32, lhsShape, rhsShape, outShape shapes.Shape) bool

var addFloat32, maxFloat32 binaryFloat32

// fastFloat32 runs f on float32 operands; false means the caller computes.
func fastFloat32[T gobackend.PODNumericConstraints](f binaryFloat32, lhs, rhs, out []T, lhsShape, rhsShape, outShape shapes.Shape) bool {
	if f == nil {
		return false
	}
	l, ok := any(lhs).([]float32)
	if !ok {
		return false
	}
	return f(l, any(rhs).([]float32), any(out).([]float32), lhsShape, rhsShape, outShape)
}

// binaryLayouts splits a binary op into calls of vec (two operands of the
// same length) and scalar (an operand and one value, in the order given:
// swapped tells that the scalar is the left operand) for the layouts the
// fast paths cover: a scalar operand, equal shapes, and one operand
// repeated along the leading axes (a per-channel bias). It reports false
// for the others.
func binaryLayouts(lhs, rhs, out []float32, lhsShape, rhsShape, outShape shapes.Shape,
	vec func(a, b, out []float32), scalar func(a []float32, c float32, out []float32, swapped bool)) bool {
	switch {
	case len(rhs) == 1 && len(lhs) == len(out):
		scalar(lhs, rhs[0], out, false)
	case len(lhs) == 1 && len(rhs) == len(out):
		scalar(rhs, lhs[0], out, true)
	case lhsShape.Equal(rhsShape):
		vec(lhs, rhs, out)
	case lhsShape.Equal(outShape) && gobackend.BroadcastsOnLeadingAxes(rhsShape, outShape) && len(rhs) > 0:
		for base := 0; base < len(out); base += len(rhs) {
			vec(lhs[base:base+len(rhs)], rhs, out[base:base+len(rhs)])
		}
	case rhsShape.Equal(outShape) && gobackend.BroadcastsOnLeadingAxes(lhsShape, outShape) && len(lhs) > 0:
		for base := 0; base < len(out); base += len(lhs) {
			vec(lhs, rhs[base:base+len(lhs)], out[base:base+len(lhs)])
		}
	default:
		return false
	}
	return true
}
