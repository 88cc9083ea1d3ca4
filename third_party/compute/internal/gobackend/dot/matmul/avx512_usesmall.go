// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package matmul

import "github.com/gomlx/compute/internal/gobackend/dot"

// avx512UseSmall reports whether the small kernel is the faster one for
// a product of this many multiply-adds (agegender patch). The small
// kernel runs on one core and re-reads the output for every contracted
// value; it wins only for small products, and for non-transposed ones
// whose output width is not a multiple of 16 (BlazeFace's 24 and 28
// channels: the columns past it are scalar) only for the smallest:
// [4096, 24]×[24, 24] took 3 ms on it and 0.5 ms on the large one,
// [256, 96]×[96, 96] 0.48 ms and 0.16–0.29 ms, while [128, 96]×[96, 96]
// and [256, 48]×[48, 48] stay faster on the small one (agegender's
// BENCHMARKS.md §7, 2 cores).
func avx512UseSmall(layout dot.Layout, flops, rhsCrossSize int) bool {
	if layout != dot.LayoutNonTransposed {
		return flops < noSIMDSmallMatMulSizeThreshold
	}
	if rhsCrossSize%16 != 0 {
		return flops < 300_000
	}
	return flops < 2_000_000
}
