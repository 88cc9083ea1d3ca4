// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

// agegender patch: a fast path for depthwise convolutions (MobileNet's),
// which the generic ConvGeneral loop runs one output value at a time on one
// core (3 s for faceres's 13 depthwise layers at 224×224; this path: a few
// ms). See the README's patch list.

import (
	"sync"
	"sync/atomic"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/internal/gobackend"
)

// depthwiseRowsFloat32 computes output rows [y0, y1) of image n, writing
// every value of them. It is replaced by a SIMD version where the CPU has
// one (convdepthwise_avx512.go).
var depthwiseRowsFloat32 = depthwiseRowsFloat32Generic

// depthwiseRowsFloat32Grouped tells that depthwiseRowsFloat32 uses
// depthwisePlan.grouped.
var depthwiseRowsFloat32Grouped bool

// depthwisePlan describes a depthwise convolution in NHWC layout: input
// [N, H, W, C], kernel [KH, KW, 1, C], output [N, OH, OW, C], channel c
// of the output reading channel c of the input only.
type depthwisePlan struct {
	in, kernel, out              []float32
	h, w, c, kh, kw, oh, ow      int
	strideH, strideW, padH, padW int // padH, padW: padding before

	// group > 0 (stride 1 only): group neighbouring output pixels hold a
	// whole number of 16-value registers (24 channels: 4 pixels, 6
	// registers), and grouped holds each kernel tap's c weights repeated
	// group times, [KH, KW, group·C]; see depthwiseGroup.
	group   int
	grouped []float32
}

// depthwiseGroup returns the number of neighbouring output pixels of c
// channels whose values fill 4 to 8 whole 16-value registers, or 0 for
// none (c a multiple of 16: its pixels already fill whole registers).
func depthwiseGroup(c int) int {
	if c%16 == 0 {
		return 0
	}
	g := 16 / gcdInt(c, 16)
	if g*c/16 < 4 {
		g *= 2
	}
	if g*c/16 > 8 {
		return 0
	}
	return g
}

func gcdInt(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// groupKernel sets p.group and fills p.grouped, in buf's storage, where
// depthwiseRowsFloat32 uses them.
func (p *depthwisePlan) groupKernel(buf *[]float32) {
	g := depthwiseGroup(p.c)
	if p.strideW != 1 || !depthwiseRowsFloat32Grouped || g == 0 {
		return
	}
	taps := p.kh * p.kw
	if cap(*buf) < taps*g*p.c {
		*buf = make([]float32, taps*g*p.c)
	}
	p.group, p.grouped = g, (*buf)[:taps*g*p.c]
	for t := range taps {
		for i := range g {
			copy(p.grouped[(t*g+i)*p.c:], p.kernel[t*p.c:(t+1)*p.c])
		}
	}
}

// depthwiseGrouped holds the repeated kernels between calls.
var depthwiseGrouped = sync.Pool{New: func() any { return new([]float32) }}

// isDepthwiseNHWC reports whether a ConvGeneral is a float32 depthwise
// convolution (one kernel per channel, multiplier 1) in NHWC layout with
// an HWIO kernel, without dilations or batch groups: what the fast path
// computes.
func isDepthwiseNHWC(params *convNode, dtype dtypes.DType, inDims, kDims []int) bool {
	a := params.axes
	if dtype != dtypes.Float32 || len(inDims) != 4 || len(kDims) != 4 || params.hasInputDilations || params.hasKernelDilations || params.batchGroupCount > 1 {
		return false
	}
	if a.InputBatch != 0 || a.InputChannels != 3 || len(a.InputSpatial) != 2 || a.InputSpatial[0] != 1 || a.InputSpatial[1] != 2 ||
		a.KernelInputChannels != 2 || a.KernelOutputChannels != 3 || len(a.KernelSpatial) != 2 || a.KernelSpatial[0] != 0 || a.KernelSpatial[1] != 1 ||
		a.OutputBatch != 0 || a.OutputChannels != 3 || len(a.OutputSpatial) != 2 || a.OutputSpatial[0] != 1 || a.OutputSpatial[1] != 2 {
		return false
	}
	c := inDims[3]
	return c > 1 && params.channelGroupCount == c && kDims[2] == 1 && kDims[3] == c
}

// execDepthwiseNHWC runs a convolution that isDepthwiseNHWC accepted,
// spreading its output rows over the backend's workers.
func execDepthwiseNHWC(backend *gobackend.Backend, params *convNode, input, kernel, output *gobackend.Buffer) {
	inDims, kDims, outDims := input.RawShape.Dimensions, kernel.RawShape.Dimensions, output.RawShape.Dimensions
	p := depthwisePlan{
		in: input.Flat.([]float32), kernel: kernel.Flat.([]float32), out: output.Flat.([]float32),
		h: inDims[1], w: inDims[2], c: inDims[3], kh: kDims[0], kw: kDims[1], oh: outDims[1], ow: outDims[2],
		strideH: params.strides[0], strideW: params.strides[1], padH: params.paddings[0][0], padW: params.paddings[1][0],
	}
	gp := depthwiseGrouped.Get().(*[]float32)
	defer depthwiseGrouped.Put(gp)
	p.groupKernel(gp)
	// Work items of one output row each, taken in turn by the workers.
	total := outDims[0] * p.oh
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= total {
				return
			}
			depthwiseRowsFloat32(&p, i/p.oh, i%p.oh, i%p.oh+1)
		}
	}
	if total == 1 || backend.Workers == nil {
		work()
		return
	}
	backend.Workers.Saturate(work)
}

// depthwiseRowsFloat32Generic is the portable version of
// depthwiseRowsFloat32.
func depthwiseRowsFloat32Generic(p *depthwisePlan, n, y0, y1 int) {
	c := p.c
	for oy := y0; oy < y1; oy++ {
		outRow := p.out[((n*p.oh+oy)*p.ow)*c:]
		clear(outRow[:p.ow*c])
		for i := range p.kh {
			iy := oy*p.strideH - p.padH + i
			if iy < 0 || iy >= p.h {
				continue
			}
			inRow := p.in[((n*p.h+iy)*p.w)*c:]
			for j := range p.kw {
				k := p.kernel[(i*p.kw+j)*c : (i*p.kw+j+1)*c]
				for ox := range p.ow {
					ix := ox*p.strideW - p.padW + j
					if ix < 0 || ix >= p.w {
						continue
					}
					src := inRow[ix*c : ix*c+c]
					dst := outRow[ox*c : ox*c+c]
					for ch, kv := range k {
						dst[ch] += src[ch] * kv
					}
				}
			}
		}
	}
}
