// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

// agegender patch: SIMD paths for float32 Add and Max (biases, residual
// sums, ReLU as Max(x, 0), max pools), which the generated code runs one
// value at a time. They are set where the CPU has SIMD
// (binary_avx512.go) and report false for the layouts they do not cover,
// which then take the generic loops.

import (
	"sync"

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
		rep, buf := repeated(rhs, len(out))
		base := 0
		for ; base+len(rep) <= len(out); base += len(rep) {
			vec(lhs[base:base+len(rep)], rep, out[base:base+len(rep)])
		}
		for ; base < len(out); base += len(rhs) {
			vec(lhs[base:base+len(rhs)], rhs, out[base:base+len(rhs)])
		}
		putRepeated(buf)
	case rhsShape.Equal(outShape) && gobackend.BroadcastsOnLeadingAxes(lhsShape, outShape) && len(lhs) > 0:
		rep, buf := repeated(lhs, len(out))
		base := 0
		for ; base+len(rep) <= len(out); base += len(rep) {
			vec(rep, rhs[base:base+len(rep)], out[base:base+len(rep)])
		}
		for ; base < len(out); base += len(lhs) {
			vec(lhs, rhs[base:base+len(lhs)], out[base:base+len(lhs)])
		}
		putRepeated(buf)
	default:
		return false
	}
	return true
}

// repeatedLen is the length of the copies repeated makes: a multiple of
// 16 values (whole registers) of at least 256.
const repeatedLen = 1024

var repeatedPool = sync.Pool{New: func() any { return new([repeatedLen]float32) }}

// repeated returns v, or, for a short v repeated along an output of n
// values (a per-channel bias of 24 values: one call per pixel, each with
// a scalar tail), v repeated to a multiple of 16 values of at least 256
// that divides n... or fits in it: the caller finishes the rest with v.
// buf goes back with putRepeated.
func repeated(v []float32, n int) (rep []float32, buf *[repeatedLen]float32) {
	if len(v)%16 == 0 && len(v) >= 256 || len(v) > 64 || n < 4*len(v) {
		return v, nil
	}
	k := 16 / gcd(len(v), 16) // copies for a multiple of 16
	for k*len(v) < 256 {
		k *= 2
	}
	if k*len(v) > repeatedLen || k*len(v) > n {
		return v, nil
	}
	buf = repeatedPool.Get().(*[repeatedLen]float32)
	rep = buf[:k*len(v)]
	for i := 0; i < len(rep); i += len(v) {
		copy(rep[i:], v)
	}
	return rep, buf
}

func putRepeated(buf *[repeatedLen]float32) {
	if buf != nil {
		repeatedPool.Put(buf)
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
