// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

// agegender patch: a fast path for regular (not grouped) float32
// convolutions in NHWC layout, such as the first layer of a MobileNet-style
// network (5×5, stride 2, 3 → 24 channels in BlazeFace). The generic
// ConvGeneral loop computes one output value at a time on one core; the
// alternative, an im2col of strided slices concatenated and multiplied,
// moves every input value 25 times (BlazeFace's back model: 4.5 ms of CPU
// a run for this layer).

import (
	"sync"
	"sync/atomic"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/internal/gobackend"
)

// directRowsFloat32 computes output rows [y0, y1) of image n of a direct
// convolution, writing every value of them. It is replaced by a SIMD
// version where the CPU has one (convdirect_avx512.go).
var directRowsFloat32 = directRowsFloat32Generic

// directPlan describes a convolution in NHWC layout: input [N, H, W, CI],
// kernel [KH, KW, CI, CO] packed as rows of np values (the CO weights of
// one kernel tap and input channel, zero past CO), output [N, OH, OW, CO].
type directPlan struct {
	in, packed, out              []float32
	h, w, ci, co, np             int
	kh, kw, oh, ow               int
	strideH, strideW, padH, padW int // padH, padW: padding before
}

// directPackWidth is the multiple of values the packed kernel rows are
// padded to: two AVX-512 registers.
const directPackWidth = 32

// isDirectNHWC reports whether a ConvGeneral is a float32 convolution
// without groups or dilations in NHWC layout with an HWIO kernel: what
// the direct path computes.
func isDirectNHWC(params *convNode, dtype dtypes.DType, inDims, kDims []int) bool {
	a := params.axes
	if dtype != dtypes.Float32 || len(inDims) != 4 || len(kDims) != 4 || params.hasInputDilations || params.hasKernelDilations ||
		params.batchGroupCount > 1 || params.channelGroupCount > 1 {
		return false
	}
	if a.InputBatch != 0 || a.InputChannels != 3 || len(a.InputSpatial) != 2 || a.InputSpatial[0] != 1 || a.InputSpatial[1] != 2 ||
		a.KernelInputChannels != 2 || a.KernelOutputChannels != 3 || len(a.KernelSpatial) != 2 || a.KernelSpatial[0] != 0 || a.KernelSpatial[1] != 1 ||
		a.OutputBatch != 0 || a.OutputChannels != 3 || len(a.OutputSpatial) != 2 || a.OutputSpatial[0] != 1 || a.OutputSpatial[1] != 2 {
		return false
	}
	// The packed kernel is kept to 256 KB.
	return kDims[2] == inDims[3] && kDims[0]*kDims[1]*kDims[2]*((kDims[3]+directPackWidth-1)/directPackWidth*directPackWidth) <= 1<<16
}

// directPacks holds packed kernels between calls.
var directPacks = sync.Pool{New: func() any { return new([]float32) }}

// execDirectNHWC runs a convolution that isDirectNHWC accepted, spreading
// its output rows over the backend's workers.
func execDirectNHWC(backend *gobackend.Backend, params *convNode, input, kernel, output *gobackend.Buffer) {
	inDims, kDims, outDims := input.RawShape.Dimensions, kernel.RawShape.Dimensions, output.RawShape.Dimensions
	k := kernel.Flat.([]float32)
	co := kDims[3]
	np := (co + directPackWidth - 1) / directPackWidth * directPackWidth
	taps := kDims[0] * kDims[1] * kDims[2]
	pp := directPacks.Get().(*[]float32)
	defer directPacks.Put(pp)
	if cap(*pp) < taps*np {
		*pp = make([]float32, taps*np)
	}
	packed := (*pp)[:taps*np]
	for q := range taps {
		copy(packed[q*np:], k[q*co:(q+1)*co])
		clear(packed[q*np+co : (q+1)*np])
	}
	p := directPlan{
		in: input.Flat.([]float32), packed: packed, out: output.Flat.([]float32),
		h: inDims[1], w: inDims[2], ci: inDims[3], co: co, np: np,
		kh: kDims[0], kw: kDims[1], oh: outDims[1], ow: outDims[2],
		strideH: params.strides[0], strideW: params.strides[1], padH: params.paddings[0][0], padW: params.paddings[1][0],
	}
	total := outDims[0] * p.oh
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= total {
				return
			}
			directRowsFloat32(&p, i/p.oh, i%p.oh, i%p.oh+1)
		}
	}
	if total == 1 || backend.Workers == nil {
		work()
		return
	}
	backend.Workers.Saturate(work)
}

// directRowsFloat32Generic is the portable version of directRowsFloat32.
func directRowsFloat32Generic(p *directPlan, n, y0, y1 int) {
	ci, co := p.ci, p.co
	for oy := y0; oy < y1; oy++ {
		iy0 := oy*p.strideH - p.padH
		i0, i1 := max(0, -iy0), min(p.kh, p.h-iy0)
		for ox := range p.ow {
			dst := p.out[((n*p.oh+oy)*p.ow+ox)*co : ((n*p.oh+oy)*p.ow+ox+1)*co]
			clear(dst)
			ix0 := ox*p.strideW - p.padW
			j0, j1 := max(0, -ix0), min(p.kw, p.w-ix0)
			if j1 <= j0 {
				continue
			}
			for i := i0; i < i1; i++ {
				src := p.in[((n*p.h+iy0+i)*p.w+ix0+j0)*ci : ((n*p.h+iy0+i)*p.w+ix0+j1)*ci]
				wts := p.packed[(i*p.kw+j0)*ci*p.np:]
				for q, x := range src {
					for c, w := range wts[q*p.np : q*p.np+co] {
						dst[c] += x * w
					}
				}
			}
		}
	}
}
