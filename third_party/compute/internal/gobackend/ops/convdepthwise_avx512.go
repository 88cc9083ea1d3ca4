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
// time, summing all kernel taps in a register before one store; channels
// past the last multiple of 16 go through the portable loop.
func depthwiseRowsFloat32AVX512(p *depthwisePlan, n, y0, y1 int) {
	c := p.c
	c16 := c &^ 15
	for oy := y0; oy < y1; oy++ {
		outRow := p.out[((n*p.oh+oy)*p.ow)*c:]
		iy0 := oy*p.strideH - p.padH
		for ox := range p.ow {
			ix0 := ox*p.strideW - p.padW
			dst := outRow[ox*c : ox*c+c]
			for ch := 0; ch < c16; ch += 16 {
				var acc archsimd.Float32x16
				for i := range p.kh {
					iy := iy0 + i
					if iy < 0 || iy >= p.h {
						continue
					}
					rowBase := ((n*p.h + iy) * p.w) * c
					for j := range p.kw {
						ix := ix0 + j
						if ix < 0 || ix >= p.w {
							continue
						}
						x := archsimd.LoadFloat32x16((*[16]float32)(unsafe.Pointer(&p.in[rowBase+ix*c+ch])))
						k := archsimd.LoadFloat32x16((*[16]float32)(unsafe.Pointer(&p.kernel[(i*p.kw+j)*c+ch])))
						acc = x.MulAdd(k, acc)
					}
				}
				acc.Store((*[16]float32)(unsafe.Pointer(&dst[ch])))
			}
			if c16 == c {
				continue
			}
			for ch := c16; ch < c; ch++ {
				var s float32
				for i := range p.kh {
					iy := iy0 + i
					if iy < 0 || iy >= p.h {
						continue
					}
					for j := range p.kw {
						ix := ix0 + j
						if ix < 0 || ix >= p.w {
							continue
						}
						s += p.in[((n*p.h+iy)*p.w+ix)*c+ch] * p.kernel[(i*p.kw+j)*c+ch]
					}
				}
				dst[ch] = s
			}
		}
	}
}
