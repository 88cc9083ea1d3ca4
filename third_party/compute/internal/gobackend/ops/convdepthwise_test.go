package ops

// agegender patch: tests of the depthwise-convolution, clamp and
// leading-axes broadcast fast paths against plain loops.

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/shapes"
)

func TestDepthwiseRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []int{3, 16, 24, 28, 40, 56, 44} {
		for _, stride := range []int{1, 2} {
			for _, pad := range [][2]int{{0, 0}, {1, 1}, {0, 1}, {2, 2}} {
				const n, h, w = 2, 7, 23 // wide enough for the four-pixel and grouped blocks
				k := 3
				if c%8 == 4 || c == 24 {
					k = 5 // BlazeFace's
				}
				oh := (h+pad[0]+pad[1]-k)/stride + 1
				ow := (w+pad[0]+pad[1]-k)/stride + 1
				p := depthwisePlan{in: make([]float32, n*h*w*c), kernel: make([]float32, k*k*c), out: make([]float32, n*oh*ow*c),
					h: h, w: w, c: c, kh: k, kw: k, oh: oh, ow: ow, strideH: stride, strideW: stride, padH: pad[0], padW: pad[0]}
				for i := range p.in {
					p.in[i] = rng.Float32()*2 - 1
				}
				for i := range p.kernel {
					p.kernel[i] = rng.Float32()*2 - 1
				}
				p.groupKernel(new([]float32))
				for img := range n {
					for y := range oh {
						depthwiseRowsFloat32(&p, img, y, y+1)
					}
				}
				for img := range n {
					for y := range oh {
						for x := range ow {
							for ch := range c {
								var want float64
								for i := range k {
									for j := range k {
										iy, ix := y*stride-pad[0]+i, x*stride-pad[0]+j
										if iy >= 0 && iy < h && ix >= 0 && ix < w {
											want += float64(p.in[((img*h+iy)*w+ix)*c+ch]) * float64(p.kernel[(i*k+j)*c+ch])
										}
									}
								}
								got := p.out[((img*oh+y)*ow+x)*c+ch]
								if math.Abs(float64(got)-want) > 1e-5 {
									t.Fatalf("c %d, stride %d, pad %v: out[%d,%d,%d,%d] = %g, want %g", c, stride, pad, img, y, x, ch, got, want)
								}
							}
						}
					}
				}
			}
		}
	}
}

func TestClampFloat32(t *testing.T) {
	in := make([]float32, 37)
	for i := range in {
		in[i] = float32(i) - 10
	}
	out := make([]float32, len(in))
	clampFloat32(in, out, 0, 6)
	for i, v := range in {
		if want := min(max(v, 0), 6); out[i] != want {
			t.Fatalf("clamp(%g) = %g, want %g", v, out[i], want)
		}
	}
}

func TestBroadcastLeadingAxes(t *testing.T) {
	f32 := dtypes.Float32
	out := shapes.Make(f32, 2, 3, 4)
	for _, c := range []struct {
		s    shapes.Shape
		want bool
	}{
		{shapes.Make(f32, 1, 1, 4), true},
		{shapes.Make(f32, 1, 3, 4), true},
		{shapes.Make(f32, 2, 1, 4), false},
		{shapes.Make(f32, 1, 3, 1), false},
	} {
		if got := gobackend.BroadcastsOnLeadingAxes(c.s, out); got != c.want {
			t.Errorf("BroadcastsOnLeadingAxes(%s, %s) = %v, want %v", c.s, out, got, c.want)
		}
		if !c.want {
			continue
		}
		lhs, rhs := make([]float32, out.Size()), make([]float32, c.s.Size())
		for i := range lhs {
			lhs[i] = float32(i)
		}
		for i := range rhs {
			rhs[i] = float32(100 * (i + 1))
		}
		fast, want := make([]float32, out.Size()), make([]float32, out.Size())
		execAddNumericGeneric(lhs, rhs, fast, out, c.s, out)
		zip := gobackend.NewZippedBroadcastIterator(out, c.s, out)
		for ix := range zip.IterFlatIndices() {
			want[ix.TgtFlatIdx] = lhs[ix.LHSFlatIdx] + rhs[ix.RHSFlatIdx]
		}
		for i := range want {
			if fast[i] != want[i] {
				t.Fatalf("%s + %s: value %d is %g, want %g", out, c.s, i, fast[i], want[i])
			}
		}
		execSubNumericGeneric(rhs, lhs, fast, c.s, out, out) // lhs broadcast
		for i := range want {
			if w := rhs[i%len(rhs)] - lhs[i]; fast[i] != w {
				t.Fatalf("%s − %s: value %d is %g, want %g", c.s, out, i, fast[i], w)
			}
		}
	}
}

// TestSliceRuns checks Slice's contiguous-run copy against the index
// arithmetic of every value.
func TestSliceRuns(t *testing.T) {
	dims := []int{2, 5, 6, 7}
	in := make([]float32, 2*5*6*7)
	for i := range in {
		in[i] = float32(i)
	}
	operand := &gobackend.Buffer{RawShape: shapes.Make(dtypes.Float32, dims...), Flat: in}
	for _, c := range []struct{ starts, limits, strides []int }{
		{[]int{0, 0, 0, 0}, []int{2, 5, 6, 7}, []int{1, 1, 1, 1}}, // all
		{[]int{0, 1, 0, 0}, []int{2, 5, 6, 7}, []int{1, 2, 2, 1}}, // a max pool's tap
		{[]int{1, 0, 1, 0}, []int{2, 5, 6, 7}, []int{1, 1, 1, 1}}, // whole rows after a partial axis
		{[]int{0, 0, 0, 2}, []int{2, 5, 6, 7}, []int{1, 1, 1, 1}}, // a partial last axis
		{[]int{0, 0, 0, 0}, []int{2, 5, 6, 7}, []int{1, 1, 1, 2}}, // strided last axis: no runs
		{[]int{0, 2, 3, 1}, []int{1, 4, 6, 6}, []int{1, 1, 2, 1}},
	} {
		var od []int
		for a := range dims {
			od = append(od, (c.limits[a]-c.starts[a]+c.strides[a]-1)/c.strides[a])
		}
		out := &gobackend.Buffer{RawShape: shapes.Make(dtypes.Float32, od...), Flat: make([]float32, od[0]*od[1]*od[2]*od[3])}
		execSliceGeneric[float32](operand, out, &sliceNode{starts: c.starts, limits: c.limits, strides: c.strides})
		got := out.Flat.([]float32)
		i := 0
		for a := range od[0] {
			for b := range od[1] {
				for d := range od[2] {
					for e := range od[3] {
						idx := (((c.starts[0]+a*c.strides[0])*dims[1]+c.starts[1]+b*c.strides[1])*dims[2]+c.starts[2]+d*c.strides[2])*dims[3] + c.starts[3] + e*c.strides[3]
						if got[i] != in[idx] {
							t.Fatalf("slice %v: value %d is %g, want %g", c, i, got[i], in[idx])
						}
						i++
					}
				}
			}
		}
	}
}

// TestBinaryFloat32Fast checks the SIMD Add and Max against Go's + and max
// (NaNs included) in every layout they cover.
func TestBinaryFloat32Fast(t *testing.T) {
	if addFloat32 == nil {
		t.Skip("no SIMD paths on this CPU")
	}
	f32 := dtypes.Float32
	rng := rand.New(rand.NewPCG(3, 4))
	data := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = rng.Float32()*2 - 1
			if i%13 == 5 {
				v[i] = float32(math.NaN())
			}
		}
		return v
	}
	full := shapes.Make(f32, 3, 5, 37)
	type layout struct{ l, r, out shapes.Shape }
	cases := []layout{
		{full, full, full},
		{full, shapes.Make(f32), full},
		{shapes.Make(f32), full, full},
		{full, shapes.Make(f32, 1, 1, 37), full},
		{shapes.Make(f32, 1, 5, 37), full, full},
	}
	// Short per-channel operands repeated to whole registers (binary_fast.go
	// repeated), with and without a remainder past the last whole copy.
	for _, d := range [][3]int{{4, 64, 24}, {7, 9, 37}, {3, 11, 28}, {2, 5, 6}} {
		big, ch := shapes.Make(f32, d[0], d[1], d[2]), shapes.Make(f32, 1, 1, d[2])
		cases = append(cases, layout{big, ch, big}, layout{ch, big, big})
	}
	for _, c := range cases {
		full := c.out
		lhs, rhs := data(c.l.Size()), data(c.r.Size())
		if c.l.Size() == 1 {
			lhs[0] = 0.25
		}
		if c.r.Size() == 1 {
			rhs[0] = 0
		}
		for _, op := range []struct {
			name string
			f    binaryFloat32
			want func(a, b float32) float32
		}{
			{"Add", addFloat32, func(a, b float32) float32 { return a + b }},
			{"Max", maxFloat32, func(a, b float32) float32 { return max(a, b) }},
		} {
			out := make([]float32, full.Size())
			if !op.f(lhs, rhs, out, c.l, c.r, full) {
				t.Fatalf("%s(%s, %s): layout not handled", op.name, c.l, c.r)
			}
			for i := range out {
				a, b := lhs[i%len(lhs)], rhs[i%len(rhs)]
				w := op.want(a, b)
				if out[i] != w && !(math.IsNaN(float64(out[i])) && math.IsNaN(float64(w))) {
					t.Fatalf("%s(%s, %s): value %d is %g, want %g (%g, %g)", op.name, c.l, c.r, i, out[i], w, a, b)
				}
			}
		}
	}
}
