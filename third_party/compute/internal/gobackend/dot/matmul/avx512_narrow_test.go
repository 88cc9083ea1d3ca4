// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package matmul

// agegender patch: tests of the narrow kernel against plain loops.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"simd/archsimd"
	"testing"

	"github.com/gomlx/compute/internal/gobackend"
)

// narrowShapes are [B, M, K, N]: BlazeFace's pointwise convolutions and
// edge cases (rows not a multiple of 4 or of a chunk, N of 1–3 registers
// with and without a partial one).
var narrowShapes = [][4]int{
	{1, 16384, 24, 24}, {1, 4096, 24, 28}, {1, 1024, 48, 48}, {1, 256, 96, 96}, {1, 64, 96, 6},
	{1, 256, 96, 2}, {1, 256, 48, 96}, {1, 1024, 24, 48}, {2, 67, 5, 17}, {3, 130, 33, 64},
	{1, 99, 7, 80}, {1, 65, 3, 112}, {1, 64, 1, 128}, {2, 201, 75, 24}, {1, 70, 16, 1},
}

func TestNarrowFloat32(t *testing.T) {
	if !archsimd.X86.AVX512() {
		t.Skip("AVX-512 not present")
	}
	backend, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Finalize()
	for _, s := range narrowShapes {
		b, m, k, n := s[0], s[1], s[2], s[3]
		t.Run(fmt.Sprintf("%dx%dx%dx%d", b, m, k, n), func(t *testing.T) {
			if !avx512UseNarrow(b, m, n, k) {
				t.Fatalf("avx512UseNarrow refuses %v", s)
			}
			r := rand.New(rand.NewPCG(uint64(m), uint64(n)))
			lhs, rhs := make([]float32, b*m*k), make([]float32, b*k*n)
			for i := range lhs {
				lhs[i] = r.Float32()*2 - 1
			}
			for i := range rhs {
				rhs[i] = r.Float32()*2 - 1
			}
			out := make([]float32, b*m*n+1)
			for i := range out {
				out[i] = float32(math.NaN()) // every value must be written
			}
			out[len(out)-1] = 7 // and nothing past the end
			avx512NarrowFloat32(backend.(*gobackend.Backend), lhs, rhs, b, m, n, k, out[:b*m*n])
			if out[len(out)-1] != 7 {
				t.Fatalf("wrote past the output")
			}
			for bi := range b {
				for i := range m {
					for j := range n {
						var want float64
						for kk := range k {
							want += float64(lhs[(bi*m+i)*k+kk]) * float64(rhs[(bi*k+kk)*n+j])
						}
						got := out[(bi*m+i)*n+j]
						if math.Abs(float64(got)-want) > 1e-5*float64(k) || got != got {
							t.Fatalf("out[%d, %d, %d] = %g, want %g", bi, i, j, got, want)
						}
					}
				}
			}
		})
	}
}

func BenchmarkNarrowFloat32(b *testing.B) {
	if !archsimd.X86.AVX512() {
		b.Skip("AVX-512 not present")
	}
	backend, err := gobackend.New("")
	if err != nil {
		b.Fatal(err)
	}
	defer backend.Finalize()
	for _, s := range narrowShapes[:8] {
		bs, m, k, n := s[0], s[1], s[2], s[3]
		lhs, rhs, out := make([]float32, bs*m*k), make([]float32, bs*k*n), make([]float32, bs*m*n)
		b.Run(fmt.Sprintf("narrow/%dx%dx%d", m, k, n), func(b *testing.B) {
			for b.Loop() {
				avx512NarrowFloat32(backend.(*gobackend.Backend), lhs, rhs, bs, m, n, k, out)
			}
		})
		b.Run(fmt.Sprintf("router/%dx%dx%d", m, k, n), func(b *testing.B) {
			for b.Loop() {
				if avx512UseSmall(0, bs*m*n*k, n) {
					avx512SmallFloat32Parallel(backend.(*gobackend.Backend), 0, lhs, rhs, bs, m, n, k, out)
				} else {
					avx512LargeFloat32(backend.(*gobackend.Backend), 0, lhs, rhs, bs, m, n, k, out)
				}
			}
		})
	}
}

func BenchmarkNarrowRows(b *testing.B) {
	for _, s := range narrowShapes[:4] {
		m, k, n := s[1], s[2], s[3]
		np := (n + 15) &^ 15
		lhs, rhs, out := make([]float32, m*k), make([]float32, k*np), make([]float32, m*n)
		b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
			for b.Loop() {
				narrowRowsFloat32(lhs, rhs, out, m, n, k)
			}
		})
	}
}
