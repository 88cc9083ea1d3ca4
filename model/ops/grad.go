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

// readers lists, for each of size input positions along one axis, the
// (output index, kernel offset) pairs of the windows that read it — those
// with o·stride + kk = position — padded to q = ⌈k/stride⌉ entries with
// o = out, which callers point at an extra zero entry.
func readers(size, out, k, stride int) [][2]int {
	q := (k + stride - 1) / stride
	r := make([][2]int, 0, size*q)
	for y := 0; y < size; y++ {
		n := 0
		for kk := 0; kk < k; kk++ {
			if o := y - kk; o >= 0 && o%stride == 0 && o/stride < out {
				r = append(r, [2]int{o / stride, kk})
				n++
			}
		}
		for ; n < q; n++ {
			r = append(r, [2]int{out, 0})
		}
	}
	return r
}

// gatherPatches returns the k×k windows of x [H, W, N, C] read by an
// oh×ow output grid, one row per (output position, image) —
// [OH·OW·N, K·K·C] — gathering from StopGradient(x) (see [bridge]).
func gatherPatches(x *Node, oh, ow, k, stride int) *Node {
	d := x.Shape().Dimensions
	h, w, n, c := d[0], d[1], d[2], d[3]
	idx := make([]int64, 0, oh*ow*n*k*k)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			for b := 0; b < n; b++ {
				for ky := 0; ky < k; ky++ {
					for kx := 0; kx < k; kx++ {
						y, xx := min(oy*stride+ky, h-1), min(ox*stride+kx, w-1)
						idx = append(idx, int64((y*w+xx)*n+b))
					}
				}
			}
		}
	}
	rows := Reshape(StopGradient(x), h*w*n, c)
	p := Gather(rows, Reshape(Const(x.Graph(), idx), oh*ow*n, k*k, 1), false) // [OH·OW·N, K·K, C]
	return Reshape(p, oh*ow*n, k*k*c)
}

// col2im is the adjoint of gatherWindows: it sums window gradients
// v [OH, OW, K, K, N, C] back onto an h×w input grid [H, W, N, C].
//
// It is itself a gather, not a scatter: input row y is read by the windows
// (oy, ky) with oy·s + ky = y, at most q = ⌈k/s⌉ of them, and likewise for
// columns. One Gather collects, for every input position, the q² window
// entries that read it (unused slots point at an extra zero entry) into
// [q, q, H, W, N, C], and a ReduceSum adds the q² blocks.
func col2im(v *Node, h, w, stride int) *Node {
	d := v.Shape().Dimensions
	oh, ow, k := d[0], d[1], d[2]
	q := (k + stride - 1) / stride
	rows, cols := readers(h, oh, k, stride), readers(w, ow, k, stride)
	zero := int64(oh * ow) // index of the appended zero entry
	idx := make([]int64, 0, q*q*h*w*3)
	for i := 0; i < q; i++ {
		for j := 0; j < q; j++ {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					r, c := rows[y*q+i], cols[x*q+j]
					o := zero
					if r[0] < oh && c[0] < ow {
						o = int64(r[0]*ow + c[0])
					}
					idx = append(idx, o, int64(r[1]), int64(c[1]))
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
	gathered := Gather(params, Reshape(Const(g, idx), q, q, h, w, 3), false) // [q, q, H, W, N, C]
	return ReduceSum(gathered, 0, 1)
}

// convInputGrad is the gradient of a convolution with respect to its
// (padded) input [H, W, N, Cin], given v [OH, OW, N, Cout] and the kernel
// [K, K, Cin, Cout] — col2im(v·kernelᵀ) without materialising the
// [OH, OW, N, K, K, Cin] window gradient:
//
//  1. rows: U[y, ky] = v[oy] for oy·s + ky = y (a Gather of whole rows,
//     zero where no window row matches) → [H, K, OW, N, Cout];
//  2. T = U contracted with the kernel over (ky, Cout) → [H, OW, N, K, Cin];
//  3. columns: dx[y, x] = Σ T[y, ox, ·, kx] over ox·s + kx = x, a Gather of
//     q = ⌈k/s⌉ entries per column and a ReduceSum.
func convInputGrad(v, kernel *Node, h, w, stride int) *Node {
	g := v.Graph()
	d := v.Shape().Dimensions
	oh, ow, n, cout := d[0], d[1], d[2], d[3]
	k, cin := kernel.Shape().Dimensions[0], kernel.Shape().Dimensions[2]
	q := (k + stride - 1) / stride
	// 1. Rows.
	rowIdx := make([]int64, h*k)
	for y := 0; y < h; y++ {
		for ky := 0; ky < k; ky++ {
			rowIdx[y*k+ky] = int64(oh) // the zero row
			if o := y - ky; o >= 0 && o%stride == 0 && o/stride < oh {
				rowIdx[y*k+ky] = int64(o / stride)
			}
		}
	}
	vz := Concatenate([]*Node{v, Zeros(g, shapes.Make(v.DType(), 1, ow, n, cout))}, 0)
	u := Gather(vz, Reshape(Const(g, rowIdx), h, k, 1), false) // [H, K, OW, N, Cout]
	// 2. Contract with the kernel.
	t := DotGeneral(u, []int{1, 4}, nil, kernel, []int{0, 3}, nil) // [H, OW, N, K, Cin]
	// 3. Columns.
	t = TransposeAllAxes(t, 1, 3, 0, 2, 4) // [OW, K, H, N, Cin]
	t = Concatenate([]*Node{t, Zeros(g, shapes.Make(v.DType(), 1, k, h, n, cin))}, 0)
	cols := readers(w, ow, k, stride)
	colIdx := make([]int64, 0, w*q*2)
	for _, c := range cols {
		colIdx = append(colIdx, int64(c[0]), int64(c[1]))
	}
	dx := ReduceSum(Gather(t, Reshape(Const(g, colIdx), w, q, 2), false), 1) // [W, H, N, Cin]
	return TransposeAllAxes(dx, 1, 0, 2, 3)
}
