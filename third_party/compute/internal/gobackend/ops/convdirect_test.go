package ops

// agegender patch: tests of the direct-convolution fast path against
// plain loops.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// directCase is a convolution: input [n, h, w, ci], kernel [k, k, ci, co].
type directCase struct {
	n, h, w, ci, co, k, stride int
	pad                        [2][2]int // before and after, per spatial axis
}

// newDirectPlan returns a plan of c with random input and kernel, packed
// as execDirectNHWC packs them, and the kernel unpacked.
func newDirectPlan(c directCase, rng *rand.Rand) (*directPlan, []float32) {
	oh := (c.h+c.pad[0][0]+c.pad[0][1]-c.k)/c.stride + 1
	ow := (c.w+c.pad[1][0]+c.pad[1][1]-c.k)/c.stride + 1
	np := (c.co + directPackWidth - 1) / directPackWidth * directPackWidth
	p := &directPlan{in: make([]float32, c.n*c.h*c.w*c.ci), packed: make([]float32, c.k*c.k*c.ci*np), out: make([]float32, c.n*oh*ow*c.co+1),
		h: c.h, w: c.w, ci: c.ci, co: c.co, np: np, kh: c.k, kw: c.k, oh: oh, ow: ow,
		strideH: c.stride, strideW: c.stride, padH: c.pad[0][0], padW: c.pad[1][0]}
	kernel := make([]float32, c.k*c.k*c.ci*c.co)
	for i := range p.in {
		p.in[i] = rng.Float32()*2 - 1
	}
	for i := range kernel {
		kernel[i] = rng.Float32()*2 - 1
		q, o := i/c.co, i%c.co
		p.packed[q*np+o] = kernel[i]
	}
	for i := range p.out {
		p.out[i] = float32(math.NaN()) // every value must be written
	}
	p.out[len(p.out)-1] = 7 // and none past the end
	p.out = p.out[:len(p.out)-1]
	return p, kernel
}

func TestDirectRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var cases []directCase
	for _, ch := range [][2]int{{3, 24}, {3, 32}, {1, 5}, {8, 40}, {4, 16}, {3, 70}} {
		for _, stride := range []int{1, 2} {
			for _, pad := range [][2][2]int{{{0, 0}, {0, 0}}, {{1, 2}, {1, 2}}, {{2, 2}, {2, 2}}, {{0, 1}, {3, 0}}} {
				k := 3
				if ch[1] == 24 || ch[1] == 40 {
					k = 5 // BlazeFace's first layer
				}
				cases = append(cases, directCase{n: 2, h: 9, w: 13, ci: ch[0], co: ch[1], k: k, stride: stride, pad: pad})
			}
		}
	}
	cases = append(cases, directCase{n: 1, h: 2, w: 3, ci: 3, co: 24, k: 5, stride: 1, pad: [2][2]int{{4, 4}, {4, 4}}}) // rows and columns outside
	for _, c := range cases {
		t.Run(fmt.Sprintf("%v", c), func(t *testing.T) {
			p, kernel := newDirectPlan(c, rng)
			for img := range c.n {
				for y := range p.oh {
					directRowsFloat32(p, img, y, y+1)
				}
			}
			if p.out[:len(p.out)+1][len(p.out)] != 7 {
				t.Fatal("wrote past the output")
			}
			for img := range c.n {
				for y := range p.oh {
					for x := range p.ow {
						for o := range c.co {
							var want float64
							for i := range c.k {
								for j := range c.k {
									iy, ix := y*c.stride-c.pad[0][0]+i, x*c.stride-c.pad[1][0]+j
									if iy < 0 || iy >= c.h || ix < 0 || ix >= c.w {
										continue
									}
									for ci := range c.ci {
										want += float64(p.in[((img*c.h+iy)*c.w+ix)*c.ci+ci]) * float64(kernel[((i*c.k+j)*c.ci+ci)*c.co+o])
									}
								}
							}
							got := p.out[((img*p.oh+y)*p.ow+x)*c.co+o]
							if !(math.Abs(float64(got)-want) <= 1e-5*float64(c.k*c.k*c.ci)) {
								t.Fatalf("out[%d,%d,%d,%d] = %g, want %g", img, y, x, o, got, want)
							}
						}
					}
				}
			}
		})
	}
}

func BenchmarkDirectRows(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []directCase{
		{n: 1, h: 256, w: 256, ci: 3, co: 24, k: 5, stride: 2, pad: [2][2]int{{1, 2}, {1, 2}}}, // BlazeFace back
		{n: 1, h: 128, w: 128, ci: 3, co: 24, k: 5, stride: 2, pad: [2][2]int{{1, 2}, {1, 2}}}, // front
	} {
		p, _ := newDirectPlan(c, rng)
		b.Run(fmt.Sprintf("%dx%dx%d-%d", c.h, c.w, c.ci, c.co), func(b *testing.B) {
			loopCPU(b, func() { directRowsFloat32(p, 0, 0, p.oh) })
		})
	}
}
