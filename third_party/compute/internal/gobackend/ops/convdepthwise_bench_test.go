package ops

import (
	"fmt"
	"runtime"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"testing"
)

func BenchmarkDepthwiseRows(b *testing.B) {
	for _, s := range [][4]int{{128, 24, 3, 1}, {64, 24, 3, 1}, {32, 48, 3, 1}, {16, 96, 3, 1}, {128, 24, 3, 2}} {
		h, c, k, stride := s[0], s[1], s[2], s[3]
		oh := (h+2-k)/stride + 1
		p := depthwisePlan{in: make([]float32, h*h*c), kernel: make([]float32, k*k*c), out: make([]float32, oh*oh*c),
			h: h, w: h, c: c, kh: k, kw: k, oh: oh, ow: oh, strideH: stride, strideW: stride, padH: 1, padW: 1}
		p.groupKernel(new([]float32))
		b.Run(fmt.Sprintf("%dx%dx%d/s%d", h, h, c, stride), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			loopCPU(b, func() { depthwiseRowsFloat32(&p, 0, 0, oh) })
		})
	}
}

// BenchmarkBiasAdd is BlazeFace's per-channel bias on its largest layers.
func BenchmarkBiasAdd(b *testing.B) {
	if addFloat32 == nil {
		b.Skip("no SIMD paths on this CPU")
	}
	full, ch := shapes.Make(dtypes.Float32, 1, 128, 128, 24), shapes.Make(dtypes.Float32, 1, 1, 1, 24)
	x, bias, out := make([]float32, full.Size()), make([]float32, 24), make([]float32, full.Size())
	loopCPU(b, func() { addFloat32(x, bias, out, full, ch, full) })
}
