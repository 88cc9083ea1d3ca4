package ops

import (
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX's idiomatic dot-import.
)

// Scatter-free gradients.
//
// The automatic gradient of a Gather is a scatter-add, and overlapping
// windows (a 3×3 stride-1 convolution, a 3/2 max-pool) gather every input
// element several times, so the scatter-add has duplicate indices. ONNX
// Runtime's CPU ScatterND(reduction="add") runs in parallel without
// atomics: with duplicate indices, concurrent updates to one element are
// lost, and the gradient comes out a few percent wrong and different from
// run to run (microsoft/onnxruntime#18048, #23396; seen here as a 5 %
// float64 gradient mismatch on vgg16). The windowed ops below therefore
// gather from StopGradient(x) and route x's gradient through [bridge],
// which computes it with col2im written as a gather and a sum —
// deterministic on every backend.

// bridge returns y unchanged in value and makes the gradient with respect to
// x equal grad(v), where v is the gradient with respect to y. y must not
// otherwise depend on x through a differentiable path.
//
// It adds to y a term that is exactly zero, u − StopGradient(u), where u
// holds x's elements reshaped to y's shape plus a trailing axis of length
// r (padded with zeros) and summed over that axis; a custom gradient on the
// zero term replaces the incoming v by grad(v) laid out like u, so that the
// reshape carries it back to x.
func bridge(y, x *Node, grad func(v *Node) *Node) *Node {
	g := y.Graph()
	n, m := y.Shape().Size(), x.Shape().Size()
	r := (m + n - 1) / n
	ydims := y.Shape().Dimensions
	packed := append(append([]int(nil), ydims...), r)
	pack := func(t *Node) *Node {
		flat := Reshape(t, m)
		if r*n > m {
			flat = Concatenate([]*Node{flat, Zeros(g, shapes.Make(t.DType(), r*n-m))}, 0)
		}
		return Reshape(flat, packed...)
	}
	u := pack(x)
	zero := IdentityWithCustomGradient(Sub(u, StopGradient(u)), func(_, vu *Node) *Node {
		// vu is v broadcast along the trailing axis; take one copy.
		v := Reshape(Slice(vu, AxisRange().Spacer(), AxisRange(0, 1)), ydims...)
		return pack(grad(v))
	})
	if r == 1 {
		return Add(y, Reshape(zero, ydims...))
	}
	return Add(y, ReduceSum(zero, -1))
}

// gatherWindows returns the k×k windows of x [H, W, N, C] read by an
// output grid oh×ow with the given stride — [OH, OW, K, K, N, C] — with a
// scatter-free gradient (see [col2im]). Windows must lie inside x.
func gatherWindows(x *Node, oh, ow, k, stride int) (win *Node) {
	d := x.Shape().Dimensions
	return Gather(StopGradient(x), windowIndices(x.Graph(), d[0], d[1], oh, ow, k, stride), true)
}

// col2im is the adjoint of gatherWindows: it sums window gradients back
// onto an h×w input grid [H, W, N, C]. v is laid out [OH, OW, K, K, N, C],
// or [OH, OW, N, K, K, C] when nFirst is set (the layout in which a
// convolution's input gradient comes out of its DotGeneral).
//
// It is itself a gather, not a scatter: input row y is read by the windows
// (oy, ky) with oy·s + ky = y, at most q = ⌈k/s⌉ of them, and likewise for
// columns. One Gather collects, for every input position, the q² window
// entries that read it (unused slots point at an extra zero entry) into
// [q, q, H, W, N, C], and a ReduceSum adds the q² blocks — deterministic on
// every backend.
func col2im(v *Node, h, w, stride int, nFirst bool) *Node {
	d := v.Shape().Dimensions
	oh, ow, k, n := d[0], d[1], d[2], d[4]
	if nFirst {
		n, k = d[2], d[3]
	}
	s := stride
	q := (k + s - 1) / s
	type src struct{ o, k int } // output index and kernel offset; o < 0: none
	readers := func(size, out int) [][]src {
		r := make([][]src, size)
		for y := range r {
			r[y] = make([]src, 0, q)
			for kk := 0; kk < k; kk++ {
				if o := y - kk; o >= 0 && o%s == 0 && o/s < out {
					r[y] = append(r[y], src{o / s, kk})
				}
			}
			for len(r[y]) < q {
				r[y] = append(r[y], src{-1, 0})
			}
		}
		return r
	}
	rows, cols := readers(h, oh), readers(w, ow)
	zero := int64(oh * ow) // index of the appended zero entry
	per := 3               // index components: (o, ky, kx), or (o, n, ky, kx)
	if nFirst {
		per = 4
	}
	idx := make([]int64, 0, q*q*h*w*n*per)
	for i := 0; i < q; i++ {
		for j := 0; j < q; j++ {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					r, cc := rows[y][i], cols[x][j]
					o := zero
					if r.o >= 0 && cc.o >= 0 {
						o = int64(r.o*ow + cc.o)
					}
					if !nFirst {
						idx = append(idx, o, int64(r.k), int64(cc.k))
						continue
					}
					for b := 0; b < n; b++ {
						idx = append(idx, o, int64(b), int64(r.k), int64(cc.k))
					}
				}
			}
		}
	}
	g := v.Graph()
	rest := d[2:]
	params := Concatenate([]*Node{
		Reshape(v, append([]int{oh * ow}, rest...)...),
		Zeros(g, shapes.Make(v.DType(), append([]int{1}, rest...)...)),
	}, 0)
	idxDims := []int{q, q, h, w, per}
	if nFirst {
		idxDims = []int{q, q, h, w, n, per}
	}
	gathered := Gather(params, Reshape(Const(g, idx), idxDims...), false) // [q, q, H, W, N, C]
	return ReduceSum(gathered, 0, 1)
}
