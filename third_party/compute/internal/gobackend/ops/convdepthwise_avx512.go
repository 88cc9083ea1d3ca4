// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package ops

// agegender patch: the AVX-512 versions of depthwiseRowsFloat32 and
// clampFloat32.

import (
	"simd/archsimd"
	"unsafe"

	"github.com/gomlx/compute/support/envutil"
)

func init() {
	if envutil.MustReadBool(envutil.SIMD_AVX512_Env, true) && archsimd.X86.AVX512() {
		depthwiseRowsFloat32 = depthwiseRowsFloat32AVX512
		depthwiseRowsFloat32Grouped = true
		generic := clampFloat32
		clampFloat32 = func(in, out []float32, lo, hi float32) {
			n := len(in) &^ 15
			l, h := archsimd.BroadcastFloat32x16(lo), archsimd.BroadcastFloat32x16(hi)
			for i := 0; i < n; i += 16 {
				v := archsimd.LoadFloat32x16((*[16]float32)(unsafe.Pointer(&in[i])))
				v.Max(l).Min(h).Store((*[16]float32)(unsafe.Pointer(&out[i])))
			}
			generic(in[n:], out[n:], lo, hi)
		}
	}
}

// depthwiseRowsFloat32AVX512 computes each output pixel's channels 16 at a
// time, summing the kernel taps inside the image in a register before one
// store. Inside the image, four neighbouring output pixels are computed
// together: four independent sums hide the latency of the fused
// multiply-adds, and each kernel tap is loaded once for the four. The
// channels past the last multiple of 16 are one more block of masked loads
// and stores. (BlazeFace's 24, 28, 40, 44, ... channels ran most of their
// values through a scalar loop before: its back model's depthwise layers
// took about 34 ms a run.)
func depthwiseRowsFloat32AVX512(p *depthwisePlan, n, y0, y1 int) {
	c := p.c
	all := archsimd.Mask32x16FromBits(0xffff)
	tail := all
	if r := c & 15; r != 0 {
		tail = archsimd.Mask32x16FromBits(uint16(0xffff >> (16 - r)))
	}
	sw := p.strideW
	_ = p.in[len(p.in)-1]
	_ = p.kernel[len(p.kernel)-1]
	for oy := y0; oy < y1; oy++ {
		outRow := p.out[((n*p.oh+oy)*p.ow)*c:]
		iy0 := oy*p.strideH - p.padH
		i0, i1 := max(0, -iy0), min(p.kh, p.h-iy0) // kernel rows inside the image
		for ox := 0; ox < p.ow; {
			ix0 := ox*sw - p.padW
			if g := p.group; g > 0 && ox+g <= p.ow && ix0 >= 0 && ix0+g-1+p.kw <= p.w {
				depthwiseGroupAVX512(p, unsafe.Pointer(&p.in[((n*p.h+iy0+i0)*p.w+ix0)*c]),
					unsafe.Pointer(&p.grouped[i0*p.kw*g*c]), unsafe.Pointer(&outRow[ox*c]), i1-i0)
				ox += g
				continue
			}
			if ox+4 <= p.ow && ix0 >= 0 && ix0+3*sw+p.kw <= p.w {
				depthwise4AVX512(p, unsafe.Pointer(&p.in[((n*p.h+iy0+i0)*p.w+ix0)*c]),
					unsafe.Pointer(&p.kernel[i0*p.kw*c]), unsafe.Pointer(&outRow[ox*c]), i1-i0, all, tail)
				ox += 4
				continue
			}
			j0, j1 := max(0, -ix0), min(p.kw, p.w-ix0) // kernel columns inside the image
			dst := outRow[ox*c : ox*c+c]
			for ch := 0; ch < c; ch += 16 {
				m := all
				if ch+16 > c {
					m = tail
				}
				var acc archsimd.Float32x16
				for i := i0; i < i1; i++ {
					in := p.in[((n*p.h+iy0+i)*p.w+ix0+j0)*c+ch:]
					k := p.kernel[(i*p.kw+j0)*c+ch:]
					for j := range j1 - j0 {
						x := archsimd.LoadMaskedFloat32x16((*[16]float32)(unsafe.Pointer(&in[j*c])), m)
						w := archsimd.LoadMaskedFloat32x16((*[16]float32)(unsafe.Pointer(&k[j*c])), m)
						acc = x.MulAdd(w, acc)
					}
				}
				acc.StoreMasked((*[16]float32)(unsafe.Pointer(&dst[ch])), m)
			}
			ox++
		}
	}
}

// depthwise4AVX512 computes four neighbouring output pixels inside the
// image, all channels: in is the address of the first pixel read in the
// first kernel row inside the image (rows of them), kernel that of the
// weights of that kernel row, out that of the first output pixel. Addresses
// step by bytes, without bounds checks: the caller checked the ranges.
func depthwise4AVX512(p *depthwisePlan, in, kernel, out unsafe.Pointer, rows int, all, tail archsimd.Mask32x16) {
	c := p.c
	cs := uintptr(c) * 4          // bytes per pixel
	ss := uintptr(p.strideW) * cs // between the four outputs' inputs
	rs := uintptr(p.w) * cs       // between input rows
	krs := uintptr(p.kw) * cs     // between kernel rows
	kw := p.kw
	for ch := 0; ch < c; ch += 16 {
		m := all
		if ch+16 > c {
			m = tail
		}
		off := uintptr(ch) * 4
		var a0, a1, a2, a3 archsimd.Float32x16
		ip, kp := unsafe.Add(in, off), unsafe.Add(kernel, off)
		// Addresses advance before all but the first step, never past the
		// last element read (an address past an operand's end is invalid in
		// Go even unread).
		for r := 0; r < rows; r++ {
			if r > 0 {
				ip = unsafe.Add(ip, rs)
				kp = unsafe.Add(kp, krs)
			}
			x, k := ip, kp
			for j := 0; ; {
				w := archsimd.LoadMaskedFloat32x16((*[16]float32)(k), m)
				a0 = archsimd.LoadMaskedFloat32x16((*[16]float32)(x), m).MulAdd(w, a0)
				a1 = archsimd.LoadMaskedFloat32x16((*[16]float32)(unsafe.Add(x, ss)), m).MulAdd(w, a1)
				a2 = archsimd.LoadMaskedFloat32x16((*[16]float32)(unsafe.Add(x, 2*ss)), m).MulAdd(w, a2)
				a3 = archsimd.LoadMaskedFloat32x16((*[16]float32)(unsafe.Add(x, 3*ss)), m).MulAdd(w, a3)
				if j++; j == kw {
					break
				}
				x = unsafe.Add(x, cs)
				k = unsafe.Add(k, cs)
			}
		}
		o := unsafe.Add(out, off)
		a0.StoreMasked((*[16]float32)(o), m)
		a1.StoreMasked((*[16]float32)(unsafe.Add(o, cs)), m)
		a2.StoreMasked((*[16]float32)(unsafe.Add(o, 2*cs)), m)
		a3.StoreMasked((*[16]float32)(unsafe.Add(o, 3*cs)), m)
	}
}

// depthwiseGroupAVX512 computes p.group neighbouring output pixels inside
// the image at stride 1, whose values (all channels) are 4 to 8 whole
// registers: the inputs under one kernel tap for all of them are
// contiguous too, and p.grouped repeats the tap's weights to match, so
// every load is a whole register and no lane is wasted (24 channels in
// blocks of 16 left half of every second register empty). in, kernel and
// out are as for depthwise4AVX512, kernel in p.grouped.
func depthwiseGroupAVX512(p *depthwisePlan, in, kernel, out unsafe.Pointer, rows int) {
	cs := uintptr(p.c) * 4      // bytes per pixel
	rs := uintptr(p.w) * cs     // between input rows
	ts := uintptr(p.group) * cs // between taps in p.grouped
	nv := p.group * p.c / 16    // registers, 4 to 8
	var a0, a1, a2, a3, a4, a5, a6, a7 archsimd.Float32x16
	kw := p.kw
	for r := 0; r < rows; r++ {
		if r > 0 { // never an address past the last element read
			in = unsafe.Add(in, rs)
			kernel = unsafe.Add(kernel, uintptr(kw)*ts)
		}
		x, k := in, kernel
		for j := 0; ; {
			a0 = ld16(x, 0).MulAdd(ld16(k, 0), a0)
			a1 = ld16(x, 64).MulAdd(ld16(k, 64), a1)
			a2 = ld16(x, 128).MulAdd(ld16(k, 128), a2)
			a3 = ld16(x, 192).MulAdd(ld16(k, 192), a3)
			if nv > 4 {
				a4 = ld16(x, 256).MulAdd(ld16(k, 256), a4)
				if nv > 5 {
					a5 = ld16(x, 320).MulAdd(ld16(k, 320), a5)
					if nv > 6 {
						a6 = ld16(x, 384).MulAdd(ld16(k, 384), a6)
						if nv > 7 {
							a7 = ld16(x, 448).MulAdd(ld16(k, 448), a7)
						}
					}
				}
			}
			if j++; j == kw {
				break
			}
			x = unsafe.Add(x, cs)
			k = unsafe.Add(k, ts)
		}
	}
	st16(a0, out, 0)
	st16(a1, out, 64)
	st16(a2, out, 128)
	st16(a3, out, 192)
	if nv > 4 {
		st16(a4, out, 256)
	}
	if nv > 5 {
		st16(a5, out, 320)
	}
	if nv > 6 {
		st16(a6, out, 384)
	}
	if nv > 7 {
		st16(a7, out, 448)
	}
}

func ld16(p unsafe.Pointer, off uintptr) archsimd.Float32x16 {
	return archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(p, off)))
}

func st16(v archsimd.Float32x16, p unsafe.Pointer, off uintptr) {
	v.Store((*[16]float32)(unsafe.Add(p, off)))
}
