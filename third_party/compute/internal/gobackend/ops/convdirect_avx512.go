// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package ops

// agegender patch: the AVX-512 version of directRowsFloat32.

import (
	"simd/archsimd"
	"unsafe"

	"github.com/gomlx/compute/support/envutil"
)

func init() {
	if envutil.MustReadBool(envutil.SIMD_AVX512_Env, true) && archsimd.X86.AVX512() {
		directRowsFloat32 = directRowsFloat32AVX512
	}
}

// directRowsFloat32AVX512 computes two neighbouring output pixels at a
// time, 32 output channels (two registers) at a time: for every kernel row
// inside the image, the input values under the kernel are contiguous
// (kernel width × input channels), and each is broadcast and multiplied by
// its packed row of weights, the sums kept in four registers from the first
// tap to the last and stored once (masked past the last channel). A pixel
// whose kernel crosses the left or right edge of the image reads the
// columns inside only.
func directRowsFloat32AVX512(p *directPlan, n, y0, y1 int) {
	ci, co, np := p.ci, p.co, p.np
	_ = p.in[len(p.in)-1]
	_ = p.packed[len(p.packed)-1]
	_ = p.out[len(p.out)-1]
	in := unsafe.Pointer(unsafe.SliceData(p.in))
	wts := unsafe.Pointer(unsafe.SliceData(p.packed))
	out := unsafe.Pointer(unsafe.SliceData(p.out))
	pix := uintptr(ci) * 4         // input bytes per pixel
	rs := uintptr(p.w) * pix       // input bytes per row
	wq := uintptr(np) * 4          // packed bytes per tap and input channel
	wrs := uintptr(p.kw*ci) * wq   // packed bytes per kernel row
	ops := uintptr(co) * 4         // output bytes per pixel
	xs := uintptr(p.strideW) * pix // input bytes between neighbouring outputs
	for oy := y0; oy < y1; oy++ {
		iy0 := oy*p.strideH - p.padH
		i0, i1 := max(0, -iy0), min(p.kh, p.h-iy0)
		rowIn := unsafe.Add(in, uintptr((n*p.h+iy0+i0)*p.w)*pix)
		rowW := unsafe.Add(wts, uintptr(i0)*wrs)
		rowOut := unsafe.Add(out, uintptr((n*p.oh+oy)*p.ow)*ops)
		for ox := 0; ox < p.ow; {
			ix0 := ox*p.strideW - p.padW
			if i1 <= i0 {
				// No kernel row inside the image: zeros.
				clear(p.out[((n*p.oh+oy)*p.ow+ox)*co : ((n*p.oh+oy)*p.ow+ox+1)*co])
				ox++
				continue
			}
			if ox+2 <= p.ow && ix0 >= 0 && ix0+p.strideW+p.kw <= p.w {
				x := unsafe.Add(rowIn, uintptr(ix0)*pix)
				o := unsafe.Add(rowOut, uintptr(ox)*ops)
				for c := 0; c < co; c += directPackWidth {
					m0, m1 := directMasks(co - c)
					directPairAVX512(x, xs, unsafe.Add(rowW, c*4), i1-i0, p.kw*ci, rs, wrs, wq,
						unsafe.Add(o, c*4), ops, m0, m1)
				}
				ox += 2
				continue
			}
			j0, j1 := max(0, -ix0), min(p.kw, p.w-ix0)
			o := unsafe.Add(rowOut, uintptr(ox)*ops)
			if j1 <= j0 {
				clear(p.out[((n*p.oh+oy)*p.ow+ox)*co : ((n*p.oh+oy)*p.ow+ox+1)*co])
				ox++
				continue
			}
			x := unsafe.Add(rowIn, uintptr(ix0+j0)*pix)
			w := unsafe.Add(rowW, uintptr(j0*ci)*wq)
			for c := 0; c < co; c += directPackWidth {
				m0, m1 := directMasks(co - c)
				directOneAVX512(x, unsafe.Add(w, c*4), i1-i0, (j1-j0)*ci, rs, wrs, wq, unsafe.Add(o, c*4), m0, m1)
			}
			ox++
		}
	}
}

// directMasks returns the store masks of two registers of output channels
// when left channels remain.
func directMasks(left int) (m0, m1 archsimd.Mask32x16) {
	bits := func(k int) archsimd.Mask32x16 {
		k = max(0, min(16, k))
		return archsimd.Mask32x16FromBits(uint16(uint32(1)<<k - 1))
	}
	return bits(left), bits(left - 16)
}

// directPairAVX512 computes 32 output channels of two output pixels: x is
// the first input value under the first kernel row of the first pixel, the
// second's is xs bytes on; for each of rows kernel rows (rs bytes apart in
// the input, wrs in the packed weights w), seg contiguous input values are
// multiplied by weight rows wq bytes apart. The sums go to out and out+os.
func directPairAVX512(x unsafe.Pointer, xs uintptr, w unsafe.Pointer, rows, seg int, rs, wrs, wq uintptr, out unsafe.Pointer, os uintptr, m0, m1 archsimd.Mask32x16) {
	a00, a01 := archsimd.BroadcastFloat32x16(0), archsimd.BroadcastFloat32x16(0)
	a10, a11 := archsimd.BroadcastFloat32x16(0), archsimd.BroadcastFloat32x16(0)
	// Addresses advance before all but the first step, never past the last
	// element read (an address past an operand's end is invalid in Go even
	// unread).
	for r := 0; r < rows; r++ {
		if r > 0 {
			x = unsafe.Add(x, rs)
			w = unsafe.Add(w, wrs)
		}
		xp, wp := x, w
		for j := 0; j < seg; j++ {
			if j > 0 {
				xp = unsafe.Add(xp, 4)
				wp = unsafe.Add(wp, wq)
			}
			w0 := archsimd.LoadFloat32x16((*[16]float32)(wp))
			w1 := archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(wp, 64)))
			b := archsimd.BroadcastFloat32x16(*(*float32)(xp))
			a00, a01 = b.MulAdd(w0, a00), b.MulAdd(w1, a01)
			b = archsimd.BroadcastFloat32x16(*(*float32)(unsafe.Add(xp, xs)))
			a10, a11 = b.MulAdd(w0, a10), b.MulAdd(w1, a11)
		}
	}
	a00.StoreMasked((*[16]float32)(out), m0)
	a01.StoreMasked((*[16]float32)(unsafe.Add(out, 64)), m1)
	a10.StoreMasked((*[16]float32)(unsafe.Add(out, os)), m0)
	a11.StoreMasked((*[16]float32)(unsafe.Add(out, os+64)), m1)
}

// directOneAVX512 is directPairAVX512 for one output pixel.
func directOneAVX512(x unsafe.Pointer, w unsafe.Pointer, rows, seg int, rs, wrs, wq uintptr, out unsafe.Pointer, m0, m1 archsimd.Mask32x16) {
	a0, a1 := archsimd.BroadcastFloat32x16(0), archsimd.BroadcastFloat32x16(0)
	for r := 0; r < rows; r++ {
		if r > 0 {
			x = unsafe.Add(x, rs)
			w = unsafe.Add(w, wrs)
		}
		xp, wp := x, w
		for j := 0; j < seg; j++ {
			if j > 0 {
				xp = unsafe.Add(xp, 4)
				wp = unsafe.Add(wp, wq)
			}
			b := archsimd.BroadcastFloat32x16(*(*float32)(xp))
			a0 = b.MulAdd(archsimd.LoadFloat32x16((*[16]float32)(wp)), a0)
			a1 = b.MulAdd(archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(wp, 64))), a1)
		}
	}
	a0.StoreMasked((*[16]float32)(out), m0)
	a1.StoreMasked((*[16]float32)(unsafe.Add(out, 64)), m1)
}
