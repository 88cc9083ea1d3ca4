// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package ops

// agegender patch: AVX-512 float32 Add and Max (see binary_fast.go).

import (
	"math"
	"simd/archsimd"
	"unsafe"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/compute/support/envutil"
)

func init() {
	if !envutil.MustReadBool(envutil.SIMD_AVX512_Env, true) || !archsimd.X86.AVX512() {
		return
	}
	addFloat32 = func(lhs, rhs, out []float32, lhsShape, rhsShape, outShape shapes.Shape) bool {
		return binaryLayouts(lhs, rhs, out, lhsShape, rhsShape, outShape, addVecFloat32,
			func(a []float32, c float32, out []float32, _ bool) { addScalarFloat32(a, c, out) })
	}
	maxFloat32 = func(lhs, rhs, out []float32, lhsShape, rhsShape, outShape shapes.Shape) bool {
		if (len(rhs) == 1 && math.IsNaN(float64(rhs[0]))) || (len(lhs) == 1 && math.IsNaN(float64(lhs[0]))) {
			return false // every value NaN: the generic loop
		}
		return binaryLayouts(lhs, rhs, out, lhsShape, rhsShape, outShape, maxVecFloat32,
			func(a []float32, c float32, out []float32, _ bool) { maxScalarFloat32(a, c, out) })
	}
}

func load16(s []float32, i int) archsimd.Float32x16 {
	return archsimd.LoadFloat32x16((*[16]float32)(unsafe.Pointer(&s[i])))
}

func store16(v archsimd.Float32x16, s []float32, i int) {
	v.Store((*[16]float32)(unsafe.Pointer(&s[i])))
}

func addVecFloat32(a, b, out []float32) {
	if len(out) == 0 {
		return
	}
	n := len(out) &^ 15
	_, _ = a[len(out)-1], b[len(out)-1]
	for i := 0; i < n; i += 16 {
		store16(load16(a, i).Add(load16(b, i)), out, i)
	}
	for i := n; i < len(out); i++ {
		out[i] = a[i] + b[i]
	}
}

func addScalarFloat32(a []float32, c float32, out []float32) {
	if len(out) == 0 {
		return
	}
	n := len(out) &^ 15
	_ = a[len(out)-1]
	cv := archsimd.BroadcastFloat32x16(c)
	for i := 0; i < n; i += 16 {
		store16(load16(a, i).Add(cv), out, i)
	}
	for i := n; i < len(out); i++ {
		out[i] = a[i] + c
	}
}

// maxVecFloat32 is Go's max of each pair: NaN if either is NaN. VMAXPS
// returns its second operand when either is NaN, so b.Max(a) gives a's
// NaNs, and b's are merged in. (It may differ from Go's max in the sign
// of a zero: max(−0, +0) can be −0.)
func maxVecFloat32(a, b, out []float32) {
	if len(out) == 0 {
		return
	}
	n := len(out) &^ 15
	_, _ = a[len(out)-1], b[len(out)-1]
	for i := 0; i < n; i += 16 {
		bv := load16(b, i)
		store16(bv.Merge(bv.Max(load16(a, i)), bv.IsNaN()), out, i)
	}
	for i := n; i < len(out); i++ {
		out[i] = max(a[i], b[i])
	}
}

// maxScalarFloat32 is maxVecFloat32 against one value c, which is not NaN.
func maxScalarFloat32(a []float32, c float32, out []float32) {
	if len(out) == 0 {
		return
	}
	n := len(out) &^ 15
	_ = a[len(out)-1]
	cv := archsimd.BroadcastFloat32x16(c)
	for i := 0; i < n; i += 16 {
		store16(cv.Max(load16(a, i)), out, i)
	}
	for i := n; i < len(out); i++ {
		out[i] = max(a[i], c)
	}
}
